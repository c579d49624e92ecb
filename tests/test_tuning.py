"""lcr tune: two Optuna trials on the toy corpus, nested under one MLflow parent run."""

from __future__ import annotations

import pytest

from lcr.config import parse_params
from lcr.errors import LcrError


@pytest.fixture
def toy_config(tmp_path, monkeypatch):
    import mlflow

    from tests.tiny_encoder import make_tiny_encoder
    from tests.toy_data import write_toy_store

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("LCR_PARENT_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    write_toy_store(tmp_path / "data" / "toy")
    encoder = make_tiny_encoder(tmp_path / "encoder")
    config = parse_params({
        "data_dir": str(tmp_path / "data"), "runs_dir": str(tmp_path / "runs"),
        "training": {"encoder": encoder, "gamma": 3, "num_heads": 2, "batch_size": 8, "max_length": 32,
                     "epochs": 2, "device": "cpu"},
        "tune": {"metric": "nDCG@5", "trials": 2, "seed": 1,
                 "space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
                           "gamma": {"type": "int", "low": 2, "high": 4},
                           "final_head": {"type": "categorical", "choices": ["dense", "per_label"]}}}})
    yield config
    while mlflow.active_run() is not None:
        mlflow.end_run()


def test_two_trials_nest_under_one_parent_and_write_the_best_settings(toy_config, tmp_path):
    import mlflow

    from lcr.tuning import tune

    result = tune("toy", toy_config, trials=2, output=tmp_path / "best.txt")
    assert [r["trial"] for r in result["trials"]] == [0, 1]
    assert all(r["state"] in ("complete", "pruned") for r in result["trials"])
    best = result["best_settings"]
    assert set(best) == {"lr", "gamma", "final_head"} and 1e-3 <= best["lr"] <= 1e-2 and 2 <= best["gamma"] <= 4
    line = (tmp_path / "best.txt").read_text().strip()
    assert line == result["set"] and f"--set gamma={best['gamma']}" in line and "--set lr=" in line
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    parent = [r for r in runs if r.info.run_id == result["parent_run_id"]][0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2 and {r.data.tags["lcr.tune.trial"] for r in children} == {"0", "1"}
    assert float(parent.data.params["best.gamma"]) == best["gamma"]
    # the file is what `lcr train` takes
    from lcr.cli import _overrides

    values = _overrides([item.split(" ", 1)[1] for item in line.replace(" --set ", "\n--set ").splitlines()])
    assert toy_config.train("toy", settings=values).gamma == best["gamma"]


def test_bad_search_spaces_are_named():
    with pytest.raises(LcrError, match=r"tune\.space\.learning_rate: not a training setting"):
        parse_params({"tune": {"space": {"learning_rate": {"type": "float", "low": 0, "high": 1}}}})
    with pytest.raises(LcrError, match=r"tune\.space\.lr: a log scale needs low > 0"):
        parse_params({"tune": {"space": {"lr": {"type": "float", "low": 0, "high": 1, "log": True}}}})
    with pytest.raises(LcrError, match=r"tune\.space\.gamma: type must be float, int or categorical"):
        parse_params({"tune": {"space": {"gamma": {"type": "integer", "low": 1, "high": 2}}}})
