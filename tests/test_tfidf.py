"""The TF-IDF + one-vs-rest logistic regression baseline through `train_job`: tracked like the
neural runs, predictions that `lcr metrics` reads, and well above chance on the toy corpus."""

from __future__ import annotations

import json

import pytest

from lcr.config import train_params
from lcr.datasets import store
from lcr.errors import LcrError
from lcr.report.evaluation import evaluate_prediction_file
from lcr.jobs import train_job
from lcr.labels import prepare
from tests.toy_data import toy_documents


@pytest.fixture
def toy_store(tmp_path):
    data = tmp_path / "data"
    store.write_store(data / "toy", {"train": toy_documents(48, 0), "dev": toy_documents(16, 1),
                                     "test": toy_documents(16, 2)}, progress=False)
    prepare(data / "toy", show_progress=False)
    return data


def test_tfidf_job(toy_store, tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    params = train_params(variant="tfidf", word_min_freq=1, encoder=str(tmp_path / "not-needed"))
    result = train_job("toy", params, data_dir=toy_store, output_dir=tmp_path / "run", progress=False)
    full = result["eval"]["full"]
    # Each toy topic has its own words: TF-IDF finds the first label almost always.
    assert full["P@1"] >= 0.9 and full["nDCG@3"] >= 0.9
    assert set(result["eval"]) == {"full", "head", "tail"} and result["run"]["gamma"] is None
    rescored = evaluate_prediction_file("toy:test", tmp_path / "run" / "predictions-test.jsonl", data_dir=toy_store)
    assert rescored["metrics"]["full"]["P@1"] == pytest.approx(full["P@1"])
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["run"]["variant"] == "tfidf" and saved["history"][0]["P@1"] > 0
    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(result["run_id"])
    assert run.data.tags["lcr.variant"] == "tfidf" and "full_P_at_1" in run.data.metrics
    assert run.data.params["variant"] == "tfidf" and float(run.data.params["tfidf_c"]) == params.tfidf_c


def test_tfidf_bad_settings():
    with pytest.raises(LcrError, match="tfidf needs"):
        train_params(variant="tfidf", tfidf_c=0.0)


def test_tfidf_fits_the_same_weights_in_parallel_and_ranks_like_a_full_sort():
    import numpy as np
    import scipy.sparse as sp

    from lcr.models.baselines.tfidf import LABELS_PER_TASK, _fit, _rank

    docs = toy_documents(80, 3)
    texts = [d.text for d in docs]
    names = sorted({label for d in docs for label in d.labels})
    gold = sp.lil_matrix((len(docs), LABELS_PER_TASK + len(names) + 2), dtype=np.int8)
    for i, d in enumerate(docs):
        for label in d.labels:
            gold[i, names.index(label)] = 1
        gold[i, len(names) + (i % LABELS_PER_TASK)] = 1  # more labels than one task holds
    gold[:, -1] = 1  # only positives: always scores 1; the column before it has none: always 0
    gold[:, -2] = 0
    gold = gold.tocsr()
    fits = {jobs: _fit(texts, gold, train_params(variant="tfidf", word_min_freq=1, tfidf_jobs=jobs))
            for jobs in (1, 2)}
    (vectorizer, weights, bias), (_, weights2, bias2) = fits[1], fits[2]
    np.testing.assert_array_equal(weights, weights2)
    np.testing.assert_array_equal(bias, bias2)
    assert bias[-1] == np.inf and bias[-2] == -np.inf and not weights[-2:].any()
    assert np.abs(weights[: len(names)]).sum(axis=1).min() > 0  # every real label was fitted

    idx, scores = _rank(vectorizer, weights, bias, texts, k=5)
    logits = np.asarray(vectorizer.transform(texts) @ weights.T) + bias  # (N, K)
    expected = np.sort(1.0 / (1.0 + np.exp(-logits)), axis=1)[:, ::-1][:, :5]  # (N, 5)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(1.0 / (1.0 + np.exp(-logits)), idx, axis=1), scores, rtol=1e-6)
    assert (idx[:, 0] == gold.shape[1] - 1).all() and scores[:, 0].min() == 1.0


def test_parallel_fit_works_when_joblib_memory_maps_the_features(monkeypatch):
    """Above joblib's threshold the features reach the workers memory-mapped; a tiny threshold
    forces that here (read-only maps made liblinear fail: WRITEBACKIFCOPY base is read-only)."""
    import numpy as np
    import scipy.sparse as sp

    import lcr.models.baselines.tfidf as tfidf

    docs = toy_documents(60, 4)
    names = sorted({label for d in docs for label in d.labels})
    gold = sp.lil_matrix((len(docs), len(names)), dtype=np.int8)
    for i, d in enumerate(docs):
        for label in d.labels:
            gold[i, names.index(label)] = 1
    texts = [d.text for d in docs]
    params = {jobs: train_params(variant="tfidf", word_min_freq=1, tfidf_jobs=jobs) for jobs in (1, 2)}
    _, weights, bias = tfidf._fit(texts, gold.tocsr(), params[1])
    monkeypatch.setattr(tfidf, "MEMMAP_BYTES", 1)
    _, weights2, bias2 = tfidf._fit(texts, gold.tocsr(), params[2])
    np.testing.assert_array_equal(weights, weights2)
    np.testing.assert_array_equal(bias, bias2)
