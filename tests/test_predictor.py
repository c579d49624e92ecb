"""lcr.serve.predictor on a real trained model folder (the session's ``registered`` toy model)."""

from __future__ import annotations

import pytest

from lcr.errors import LcrError
from lcr.serve.predictor import REQUIRED, Predictor


@pytest.fixture(scope="module")
def predictor(registered):
    return Predictor.load(registered["folder"])


def test_predict_ranks_best_first_with_names(predictor):
    rows = predictor.predict(["report 1: wheat grain harvest", "report 2: oil crude opec"], k=3)
    assert len(rows) == 2 and all(len(row) == 3 for row in rows)
    for row in rows:
        scores = [r["score"] for r in row]
        assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
        assert all(r["label"] in predictor.labels and r["name"] for r in row)
    assert len(predictor.predict(["x y z"], k=10_000)[0]) == len(predictor.labels)  # k capped at K
    # batching does not change the scores
    one = predictor.predict(["report 1: wheat grain harvest"], k=3, batch_size=1)[0]
    assert [r["label"] for r in one] == [r["label"] for r in rows[0]]
    assert [r["score"] for r in one] == pytest.approx([r["score"] for r in rows[0]], abs=1e-5)


def test_threshold_and_explain(predictor):
    full = predictor.predict(["report 3: wheat"], k=len(predictor.labels))[0]
    cut = full[len(full) // 2]["score"]
    kept = predictor.predict(["report 3: wheat"], k=len(predictor.labels), threshold=cut)[0]
    assert kept and all(r["score"] >= cut for r in kept) and len(kept) < len(full)
    explained = predictor.predict(["report 3: wheat"], k=2, explain=True)[0]
    assert set(explained) == {"ranked", "extended"} and len(explained["ranked"]) == 2
    gamma = predictor.model.config.gamma
    assert 1 <= len(explained["extended"]) <= gamma
    assert all(e["label"] in predictor.labels for e in explained["extended"])


def test_a_huge_text_is_cut_before_tokenising(predictor):
    text = "report 4: wheat grain " * 10
    huge = text + "oil " * 200_000
    a = predictor.predict([text[:predictor.max_chars]], k=3)[0]
    b = predictor.predict([huge], k=3)[0]
    assert [r["label"] for r in a] == [r["label"] for r in b]


@pytest.mark.parametrize("texts, message", [
    (["fine", None], "text 1: missing"),
    ([float("nan")], "text 0: missing"),
    (["fine", 3], "text 1: expected a string, got int"),
    (["  "], "text 0: empty string"),
])
def test_bad_texts_are_named(predictor, texts, message):
    with pytest.raises(LcrError, match=message):
        predictor.predict(texts)


def test_bad_k_and_incomplete_folders(predictor, registered, tmp_path):
    with pytest.raises(LcrError, match="k must be at least 1"):
        predictor.predict(["wheat"], k=0)
    with pytest.raises(LcrError, match="is not an lcr model folder .missing: " + ", ".join(REQUIRED)):
        Predictor.load(tmp_path)
