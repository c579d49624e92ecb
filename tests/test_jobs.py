"""lcr.jobs: library functions wired to a real MLflow store (train, oracle, stage runs)."""

from __future__ import annotations

import json

import pytest

from lcr import jobs
from lcr.config import train_params
from lcr.errors import LcrError


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A prepared toy dataset and a tiny encoder."""
    from tests.tiny_encoder import make_tiny_encoder
    from tests.toy_data import write_toy_store

    root = tmp_path_factory.mktemp("jobs")
    write_toy_store(root / "data" / "toy")
    return {"root": root, "data": root / "data", "encoder": make_tiny_encoder(root / "encoder")}


@pytest.fixture
def store_uri(mlflow_store):
    return mlflow_store


def _params(toy, **extra):
    return train_params(dict(encoder=toy["encoder"], gamma=3, num_heads=2, batch_size=8, max_length=32,
                             epochs=1, lr=3e-3, device="cpu", **extra))


def test_run_dir_names_gamma_only_when_chosen(toy):
    params = _params(toy, seed=2)
    assert jobs.run_dir("runs", "toy", params).as_posix() == "runs/toy/labelcorank-s2"
    assert jobs.run_dir("runs", "toy", params, named_gamma=True).as_posix() == "runs/toy/labelcorank-g3-s2"
    roberta = _params(toy, variant="roberta")
    assert jobs.run_dir("runs", "toy", roberta, named_gamma=True).as_posix() == "runs/toy/roberta-s0"


def test_train_then_oracle_are_tracked_runs(toy, store_uri, tmp_path):
    import mlflow

    out = tmp_path / "runs" / "toy" / "roberta-s0"
    result = jobs.train_job("toy", _params(toy, variant="roberta"), data_dir=toy["data"], output_dir=out,
                            progress=False, tags={"dvc.stage": "train@toy"})
    run = mlflow.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["lcr.variant"] == "roberta" and run.data.tags["dvc.stage"] == "train@toy"
    assert "data.label_vocab.tsv" in run.data.tags and run.data.params["variant"] == "roberta"
    assert run.data.metrics["full_P_at_1"] == pytest.approx(result["eval"]["full"]["P@1"])
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["dataset"] == "toy" and config["variant"] == "roberta"
    assert json.loads((out / "mlflow_run.json").read_text(encoding="utf-8"))["run_id"] == result["run_id"]

    oracle = jobs.oracle_job("toy", out, m=5, data_dir=toy["data"])
    assert oracle["output_dir"].endswith("roberta-s0-oracle-m5")
    # moving the gold labels of the top 5 first can only help P@1
    assert oracle["eval"]["full"]["P@1"] >= result["eval"]["full"]["P@1"]
    oracle_run = mlflow.get_run(oracle["run_id"])
    assert oracle_run.data.params["m"] == "5" and oracle_run.data.tags["lcr.variant"] == "roberta-oracle"
    with pytest.raises(LcrError, match="metrics.json is missing: train the model first"):
        jobs.oracle_job("toy", tmp_path / "nothing", data_dir=toy["data"], track=False)


def test_untracked_training_starts_no_run(toy, store_uri, tmp_path):
    import mlflow

    result = jobs.train_job("toy", _params(toy, variant="roberta", max_train_docs=8), data_dir=toy["data"],
                            output_dir=tmp_path / "untracked", track=False, progress=False)
    assert "run_id" not in result and not (tmp_path / "untracked" / "mlflow_run.json").exists()
    assert mlflow.search_runs(search_all_experiments=True).empty


def test_stage_run_tags_the_stage_and_the_data(toy, store_uri, monkeypatch):
    import mlflow

    monkeypatch.delenv("DVC_STAGE", raising=False)
    with jobs.stage_run(None) as nothing:
        assert nothing is None
    with jobs.stage_run("prepare@toy", dataset="toy", data_dir=toy["data"]) as tracker:
        tracker.log_metrics({"labels": 5})
    tags = mlflow.get_run(tracker.run_id).data.tags
    assert tags["dvc.stage"] == "prepare@toy" and tags["lcr.dataset"] == "toy"
    assert any(key.startswith("data.") for key in tags)


def test_register_sets_champion_and_challenger(toy, store_uri, tmp_path):
    from mlflow import MlflowClient

    from lcr.serve.pyfunc import load_predictor

    out = tmp_path / "run"
    jobs.train_job("toy", _params(toy, max_train_docs=16), data_dir=toy["data"], output_dir=out, track=False,
                   progress=False)
    first = jobs.register_job("toy", out, name="lcr-toy")
    assert (first["version"], first["alias"]) == (1, "champion") and first["alias_uri"] == "models:/lcr-toy@champion"
    second = jobs.register_job("toy", out, name="lcr-toy")  # the same dev metric does not beat it
    assert (second["version"], second["alias"]) == (2, "challenger")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    metrics["dev"]["nDCG@5"] += 0.1
    (out / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    third = jobs.register_job("toy", out, name="lcr-toy", record=tmp_path / "models" / "toy.json")
    assert third["alias"] == "champion"
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("lcr-toy", "champion").version) == "3"
    assert str(client.get_model_version_by_alias("lcr-toy", "challenger").version) == "2"
    assert json.loads((tmp_path / "models" / "toy.json").read_text())["alias"] == "champion"
    predictor = load_predictor("models:/lcr-toy@champion")
    assert len(predictor.predict(["report 1: wheat"], k=2)[0]) == 2
