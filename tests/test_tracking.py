"""lcr.tracking against a real sqlite MLflow store: where runs go, what they carry, nesting."""

from __future__ import annotations

import json

import pytest

from lcr import tracking


@pytest.fixture
def store(mlflow_store):
    return mlflow_store


def test_tracking_uri_follows_the_environment_and_leaves_dvc_temp_copies(tmp_path, monkeypatch):
    monkeypatch.delenv(tracking.TRACKING_ENV, raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert tracking.tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    temp_copy = tmp_path / "project" / ".dvc" / "tmp" / "exps" / "tmpab12"
    temp_copy.mkdir(parents=True)
    assert tracking.tracking_uri(temp_copy) == f"sqlite:///{(tmp_path / 'project').resolve() / 'mlflow.db'}"
    monkeypatch.setenv(tracking.TRACKING_ENV, "sqlite:////elsewhere/m.db")
    assert tracking.tracking_uri(tmp_path) == "sqlite:////elsewhere/m.db"


def test_flatten_data_hashes_and_git_commit(tmp_path):
    assert tracking.flatten("", {"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": "1", "a.c": "[1, 2]", "d": "None"}
    (tmp_path / "train.parquet").write_bytes(b"abc")
    (tmp_path / "label_vocab.tsv").write_text("x\n", encoding="utf-8")
    hashes = tracking.data_hashes(tmp_path)
    assert hashes == {"data.train.parquet": "900150983cd24fb0d6963f7d28e17f72",
                      "data.label_vocab.tsv": "401b30e3b8b5d629635a5c613cdb7919"}
    assert tracking.git_commit(tmp_path) is None  # not a checkout


def test_tracker_logs_resumes_and_marks_failures(store, tmp_path):
    import mlflow

    run_file = tmp_path / "run" / "mlflow_run.json"
    artifact = tmp_path / "notes.txt"
    artifact.write_text("hello", encoding="utf-8")
    with tracking.MlflowTracker("toy-labelcorank", tags={"lcr.dataset": "toy"}, run_file=run_file) as tracker:
        tracker.log_params({"lr": 5e-5, "nested": {"gamma": 3}})
        tracker.log_metrics({"dev_P@1": 0.5}, step=1)
        tracker.log_artifact(artifact)
        tracker.log_artifact(tmp_path / "missing.txt")  # absent files are skipped, not an error
    first = tracker.run_id
    recorded = json.loads(run_file.read_text(encoding="utf-8"))
    assert recorded["run_id"] == first and recorded["tracking_uri"] == store
    run = mlflow.get_run(first)
    assert run.info.status == "FINISHED" and run.info.run_name == "toy-labelcorank"
    assert run.data.params == {"lr": "5e-05", "nested.gamma": "3"}
    assert run.data.metrics == {"dev_P_at_1": 0.5} and run.data.tags["lcr.dataset"] == "toy"
    assert mlflow.get_experiment(run.info.experiment_id).name == "lcr"
    assert [a.path for a in mlflow.MlflowClient().list_artifacts(first)] == ["notes.txt"]
    # the same run file continues the same run; an exception marks it failed
    with pytest.raises(RuntimeError):
        with tracking.MlflowTracker("ignored", run_file=run_file) as again:
            again.log_metrics({"dev_P@1": 0.75}, step=2)
            raise RuntimeError("killed")
    assert again.run_id == first
    run = mlflow.get_run(first)
    assert run.info.status == "FAILED"
    history = mlflow.MlflowClient().get_metric_history(first, "dev_P_at_1")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.75)]


def test_runs_nest_under_a_parent_and_the_environment_is_restored(store, monkeypatch):
    import mlflow
    import os

    with tracking.parent_run("lcr repro", tags={"lcr.profile": "demo"}) as parent:
        assert os.environ[tracking.PARENT_ENV] == parent
        mlflow.end_run()  # a stage runs in another process: no active run there
        with tracking.MlflowTracker("child") as child:
            pass
        mlflow.start_run(run_id=parent)  # parent_run ends the run it started
    assert tracking.PARENT_ENV not in os.environ
    assert mlflow.get_run(child.run_id).data.tags["mlflow.parentRunId"] == parent
    assert mlflow.get_run(parent).data.tags["lcr.profile"] == "demo"
    # `mlflow run` exports MLFLOW_RUN_ID: it becomes the parent instead of being resumed
    monkeypatch.setenv("MLFLOW_RUN_ID", parent)
    assert tracking.parent_run_id() == parent and "MLFLOW_RUN_ID" not in os.environ
