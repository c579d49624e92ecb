"""Scoring prediction files and the roberta-oracle reranking (lcr.report.evaluation)."""

from __future__ import annotations

import json

import pytest

from lcr.errors import LcrError
from lcr.report.evaluation import (compare_prediction_files, ensemble_prediction_files, evaluate_prediction_file,
                                   oracle_prediction_file)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture()
def files(tmp_path):
    gold = write_jsonl(tmp_path / "gold.jsonl", [
        {"id": "a", "labels": ["x", "y"]},
        {"id": "b", "labels": ["z"]},
        {"id": "c", "labels": ["x"]},
    ])
    pred = write_jsonl(tmp_path / "pred.jsonl", [
        {"id": "a", "labels": ["z", "q", "y", "x"], "scores": [0.9, 0.8, 0.7, 0.6]},  # q: not in gold vocab
        {"id": "b", "labels": ["x", "y"], "scores": [0.5, 0.4]},  # no hit at all
        {"id": "c", "labels": ["y", "z", "x"], "scores": [0.3, 0.2, 0.1]},
    ])
    return gold, pred


def test_oracle_moves_hits_of_the_top_m_first_and_keeps_the_rest(files, tmp_path):
    gold, pred = files
    out = tmp_path / "oracle.jsonl"
    result = oracle_prediction_file(str(gold), pred, out, m=3)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # a: hits in the top 3 = y (col 2); x sits at col 4, outside m = 3, so it stays last.
    assert rows[0] == {"id": "a", "labels": ["y", "z", "q", "x"], "scores": [0.7, 0.9, 0.8, 0.6]}
    assert rows[1] == {"id": "b", "labels": ["x", "y"], "scores": [0.5, 0.4]}
    assert rows[2] == {"id": "c", "labels": ["x", "y", "z"], "scores": [0.1, 0.3, 0.2]}
    assert result["metrics"]["full"]["P@1"] == pytest.approx(2 / 3)
    before = evaluate_prediction_file(str(gold), pred)["metrics"]["full"]
    assert before["P@1"] == 0.0 and result["metrics"]["full"]["nDCG@3"] > before["nDCG@3"]


def test_oracle_rejects_bad_input(files, tmp_path):
    gold, pred = files
    with pytest.raises(LcrError, match="no such file"):
        oracle_prediction_file(str(gold), tmp_path / "missing.jsonl", tmp_path / "o.jsonl")
    with pytest.raises(LcrError, match="at least 1"):
        oracle_prediction_file(str(gold), pred, tmp_path / "o.jsonl", m=0)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "zzz", "labels": ["x"], "scores": [1.0]}])
    with pytest.raises(LcrError, match="zzz"):
        oracle_prediction_file(str(gold), bad, tmp_path / "o.jsonl")
    assert not (tmp_path / "o.jsonl").exists()


def test_per_label_file_writes_one_row_per_label(files, tmp_path):
    import pandas as pd

    from lcr.report.evaluation import per_label_file

    gold, pred = files
    out = per_label_file(str(gold), pred, tmp_path / "out" / "per_label.csv", threshold=0.5)
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["label", "train_freq", "support", "predicted", "true_positives", "precision",
                                   "recall", "f1"]
    by_label = frame.set_index("label")
    # scores >= 0.5: a {z, (q), y, x}, b {x}; gold: x in a and c, y in a, z in b
    assert by_label.loc["x", ["support", "predicted", "true_positives"]].tolist() == [2, 2, 1]
    assert by_label.loc["z", ["support", "predicted", "true_positives"]].tolist() == [1, 1, 0]
    assert by_label.loc["y", "f1"] == pytest.approx(1.0)
    with pytest.raises(LcrError, match="no such file"):
        per_label_file(str(gold), tmp_path / "missing.jsonl", tmp_path / "x.csv")


def test_compare_prediction_files_pairs_the_documents_of_two_models(files, tmp_path):
    gold, pred = files
    # The candidate puts each document's gold labels first, in another line order than the gold's.
    perfect = write_jsonl(tmp_path / "perfect.jsonl", [
        {"id": "c", "labels": ["x", "y"], "scores": [0.9, 0.1]},
        {"id": "a", "labels": ["x", "y", "z"], "scores": [0.9, 0.8, 0.1]},
        {"id": "b", "labels": ["z"], "scores": [0.9]},
    ])
    result = compare_prediction_files(str(gold), [pred], [perfect], resamples=200)
    before = evaluate_prediction_file(str(gold), pred)["metrics"]["full"]
    p1 = result["metrics"]["P@1"]
    assert p1["baseline"] == before["P@1"] == 0.0 and p1["candidate"] == 1.0
    assert p1["difference"] == p1["low"] == p1["high"] == 1.0 and p1["p_not_better"] == 0.0
    assert result["metrics"]["nDCG@5"]["baseline"] == pytest.approx(before["nDCG@5"])
    assert result["report"][str(pred)]["unknown_labels"] == 1  # q
    # Against itself: no difference at all.
    same = compare_prediction_files(str(gold), [pred], [pred], resamples=50)["metrics"]["nDCG@3"]
    assert same["difference"] == 0.0 and same["better"] == same["worse"] == 0


def test_compare_prediction_files_names_what_is_wrong(files, tmp_path):
    gold, pred = files
    with pytest.raises(LcrError, match="--candidate .*missing.jsonl: no such file"):
        compare_prediction_files(str(gold), [pred], [tmp_path / "missing.jsonl"])
    with pytest.raises(LcrError, match="at least one --baseline"):
        compare_prediction_files(str(gold), [], [pred])
    with pytest.raises(LcrError, match="resamples"):
        compare_prediction_files(str(gold), [pred], [pred], resamples=0)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "zzz", "labels": ["x"], "scores": [1.0]}])
    with pytest.raises(LcrError, match="zzz"):
        compare_prediction_files(str(gold), [bad], [pred])


def test_ensemble_averages_the_scores_of_its_members(files, tmp_path):
    gold, pred = files
    other = write_jsonl(tmp_path / "other.jsonl", [
        {"id": "c", "labels": ["x", "y"], "scores": [0.9, 0.1]},  # document order of the first file is kept
        {"id": "a", "labels": ["x", "y"], "scores": [0.9, 0.5]},
        {"id": "b", "labels": ["z"], "scores": [0.8]},
    ])
    out = ensemble_prediction_files([pred, other], tmp_path / "sub" / "ens.jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # a: x (0.6 + 0.9) / 2, y (0.7 + 0.5) / 2, z and q only in the first file (0 in the other).
    assert rows[0] == {"id": "a", "labels": ["x", "y", "z", "q"], "scores": [0.75, 0.6, 0.45, 0.4]}
    assert rows[1] == {"id": "b", "labels": ["z", "x", "y"], "scores": [0.4, 0.25, 0.2]}
    assert rows[2] == {"id": "c", "labels": ["x", "y", "z"], "scores": [0.5, 0.2, 0.1]}
    assert evaluate_prediction_file(str(gold), pred)["metrics"]["full"]["P@1"] == 0.0
    assert evaluate_prediction_file(str(gold), out)["metrics"]["full"]["P@1"] == 1.0  # scored like any file
    narrow = ensemble_prediction_files([pred, other], tmp_path / "top1.jsonl", top_k=1)
    assert [json.loads(line)["labels"] for line in narrow.read_text().splitlines()] == [["x"], ["z"], ["x"]]
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["ens.jsonl"]  # no temporary file left


def test_ensemble_names_what_is_wrong(files, tmp_path):
    gold, pred = files
    out = tmp_path / "ens.jsonl"
    with pytest.raises(LcrError, match="at least two"):
        ensemble_prediction_files([pred], out)
    with pytest.raises(LcrError, match="no such file"):
        ensemble_prediction_files([pred, tmp_path / "missing.jsonl"], out)
    bare = write_jsonl(tmp_path / "bare.jsonl", [{"id": i, "labels": ["x"]} for i in "abc"])
    with pytest.raises(LcrError, match="bare.jsonl: no scores"):
        ensemble_prediction_files([pred, bare], out)
    short = write_jsonl(tmp_path / "short.jsonl", [{"id": i, "labels": ["x"], "scores": [1.0]} for i in "ab"])
    with pytest.raises(LcrError, match="short.jsonl: not the documents of .*1 of them missing.*'c'"):
        ensemble_prediction_files([pred, short], out)
    with pytest.raises(LcrError, match="at least 1"):
        ensemble_prediction_files([pred, pred], out, top_k=0)
    assert not out.exists()
