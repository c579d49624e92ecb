"""lcr.runs: the run folder's name and its files."""

from __future__ import annotations

import json
import os

import pytest

from lcr import runs
from lcr.config import train_params
from lcr.errors import LcrError


def test_run_names():
    assert runs.run_name("labelcorank", 1) == "labelcorank-s1"
    assert runs.run_name("labelcorank", 1, 30) == "labelcorank-g30-s1"
    assert runs.run_dir("runs", "aapd", "no_pos", 0, 10).as_posix() == "runs/aapd/no_pos-g10-s0"
    assert runs.run_dir("runs", "aapd", "tfidf", 0, 10).as_posix() == "runs/aapd/tfidf-s0"  # no gamma
    assert runs.predictions_file("dev") == "predictions-dev.jsonl"


def test_result_record_round_trip(tmp_path):
    evaluation = {"full": {"P@1": 0.5, "n_docs": 2}, "head": {"P@1": 1.0, "n_docs": 1}}
    params = train_params({"variant": "no_rank", "gamma": 7, "seed": 3})
    result = runs.run_result("toy", params, "test", evaluation, dev={"P@1": 0.4}, best_epoch=2, steps=10,
                             history=[], train_seconds=12.345, output_dir=tmp_path, features=5)
    assert result["run"] == {"dataset": "toy", "variant": "no_rank", "seed": 3, "gamma": 7, "eval_split": "test"}
    assert result["train_seconds"] == 12.3 and result["features"] == 5
    baseline = runs.run_result("toy", train_params({"variant": "roberta"}), "dev", evaluation, dev=None,
                               best_epoch=1, steps=1, history=[], train_seconds=1, output_dir=tmp_path)
    assert baseline["run"]["gamma"] is None
    runs.write_results(tmp_path, result)
    assert runs.read_results(tmp_path) == json.loads(json.dumps(result))
    assert json.loads((tmp_path / runs.SCORES_FILE).read_text()) == {
        "full_P_at_1": 0.5, "full_n_docs": 2, "head_P_at_1": 1.0, "head_n_docs": 1}
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / runs.METRICS_FILE).stat().st_mode & 0o777 == 0o666 & ~mask  # the user's umask
    assert runs.mlflow_run_id(tmp_path) is None
    (tmp_path / runs.MLFLOW_RUN_FILE).write_text('{"run_id": "abc"}')
    assert runs.mlflow_run_id(tmp_path) == "abc"


def test_read_results_errors_name_the_file(tmp_path):
    with pytest.raises(LcrError, match="metrics.json is missing: train it"):
        runs.read_results(tmp_path, "train it")
    (tmp_path / runs.METRICS_FILE).write_text("{oops")
    with pytest.raises(LcrError, match="not a valid metrics file"):
        runs.read_results(tmp_path)
