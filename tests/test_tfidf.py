"""The TF-IDF + one-vs-rest logistic regression baseline through `train_job`: tracked like the
neural runs, predictions that `lcr metrics` reads, and well above chance on the toy corpus."""

from __future__ import annotations

import json

import pytest

from lcr.config import train_params
from lcr.datasets import store
from lcr.errors import LcrError
from lcr.evaluation import evaluate_prediction_file
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
