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
    # the file is what `lcr train` takes, and what `lcr tune --start-from` reads back
    from lcr.config import read_settings_file

    values = read_settings_file(tmp_path / "best.txt")
    assert set(values) == set(best) and values["lr"] == pytest.approx(best["lr"], rel=1e-5)  # 6 digits written
    assert toy_config.train("toy", settings=values).gamma == best["gamma"]


def test_a_hopeless_trial_is_pruned_after_the_warmup_epoch(toy_config, tmp_path):
    """Trial 0 learns (large rates), trial 1 cannot move (rates of 1e-9): after the warm-up epoch
    its dev metric trails trial 0's, so the median pruner stops it; its run ends KILLED and tagged."""
    import mlflow

    from lcr.tracking import metric_key
    from lcr.tuning import tune

    config = toy_config.model_copy(update={"tune": toy_config.tune.model_copy(update={"space": {
        "lr": toy_config.tune.space["lr"].model_copy(update={"low": 1e-9}),
        "head_lr": toy_config.tune.space["lr"].model_copy(update={"low": 1e-9, "high": 1e-1})}})})
    result = tune("toy", config, trials=2, output=tmp_path / "best.txt", settings={"epochs": 4},
                  start_from=[{"lr": 1e-2, "head_lr": 5e-2}, {"lr": 1e-9, "head_lr": 1e-9}])
    states = {r["trial"]: r["state"] for r in result["trials"]}
    assert states == {0: "complete", 1: "pruned"}, result["trials"]
    assert result["best_settings"] == {"lr": 1e-2, "head_lr": 5e-2}
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    pruned = [r for r in runs if r.data.tags.get("lcr.tune.trial") == "1"]
    assert len(pruned) == 1 and pruned[0].info.status == "KILLED" and pruned[0].data.tags["lcr.pruned"] == "true"
    # it stopped early: fewer dev epochs logged than the complete trial's four
    history = mlflow.MlflowClient().get_metric_history(pruned[0].info.run_id, "dev_" + metric_key("nDCG@5"))
    assert 1 <= len(history) < 4


def test_start_from_settings_outside_the_space_are_refused(toy_config, tmp_path):
    from lcr.tuning import tune

    with pytest.raises(LcrError, match=r"tune --start-from #1: beta not in params.yaml's tune.space"):
        tune("toy", toy_config, trials=1, output=tmp_path / "best.txt", start_from=[{"beta": 0.5}])


def test_settings_files_are_read_back_with_line_numbers(tmp_path):
    from lcr.config import read_settings_file

    good = tmp_path / "best.txt"
    good.write_text("--set lr=5e-05 --set final_head=dense\n--set max_train_docs=null\n")
    assert read_settings_file(good) == {"lr": 5e-05, "final_head": "dense", "max_train_docs": None}
    bad = tmp_path / "bad.txt"
    bad.write_text("--set lr=5e-05\n--set gamma\n")
    with pytest.raises(LcrError, match=r"bad.txt:2: expected '--set key=value"):
        read_settings_file(bad)
    with pytest.raises(LcrError, match="no such settings file"):
        read_settings_file(tmp_path / "missing.txt")


def test_bad_search_spaces_are_named():
    with pytest.raises(LcrError, match=r"tune\.space\.learning_rate: not a training setting"):
        parse_params({"tune": {"space": {"learning_rate": {"type": "float", "low": 0, "high": 1}}}})
    with pytest.raises(LcrError, match=r"tune\.space\.lr: a log scale needs low > 0"):
        parse_params({"tune": {"space": {"lr": {"type": "float", "low": 0, "high": 1, "log": True}}}})
    with pytest.raises(LcrError, match=r"tune\.space\.gamma: type must be float, int or categorical"):
        parse_params({"tune": {"space": {"gamma": {"type": "integer", "low": 1, "high": 2}}}})
