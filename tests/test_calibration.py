"""lcr.serve.calibration: label sets chosen on dev, stored in the model folder, used when serving."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lcr.errors import LcrError
from lcr.serve.calibration import (CALIBRATION_FILE, Calibration, evaluate_calibration, fit_calibration,
                                   load_calibration, save_calibration, set_micro_f1)

VOCAB = ["a", "b", "c", "d"]


def test_fit_by_hand():
    # doc 0: gold {a}; doc 1: gold {b, c}; doc 2: gold {d}
    gold = [{0}, {1, 2}, {3}]
    topk = np.array([[0, 1, 2], [1, 2, 0], [3, 0, 1]])
    scores = np.array([[0.9, 0.3, 0.1], [0.8, 0.6, 0.2], [0.7, 0.4, 0.05]])
    calibration = fit_calibration(gold, topk, scores, VOCAB)
    # every gold label scores >= 0.6 and every other < 0.45: a threshold in (0.4, 0.6] with 2
    # labels is perfect; the lowest such grid value is chosen
    assert calibration.max_labels == 2 and calibration.threshold == pytest.approx(0.41)
    assert calibration.dev_micro_f1 == pytest.approx(1.0)
    assert evaluate_calibration(calibration, gold, topk, scores, VOCAB) == pytest.approx(1.0)
    ranked = [{"label": "b", "score": 0.8}, {"label": "c", "score": 0.6}, {"label": "a", "score": 0.55}]
    assert [r["label"] for r in calibration.select(ranked)] == ["b", "c"]  # max_labels cuts "a"
    # micro-F1 of a hand-made choice: 1 TP of 2 chosen, 2 gold -> 2 * 1 / (2 + 2)
    assert set_micro_f1(np.array([[True, False]]), np.array([[True, True]]), 2) == pytest.approx(0.5)


def test_per_label_thresholds_fall_back_to_the_global_one():
    gold, topk, scores = [], [], []
    for _ in range(60):  # x is gold at a low score 0.3, behind y at 0.5, which is wrong here
        gold.append({0})
        topk.append([1, 0, 2])
        scores.append([0.5, 0.3, 0.01])
    for _ in range(10):  # y is right when it scores 0.9
        gold.append({1})
        topk.append([1, 2, 0])
        scores.append([0.9, 0.02, 0.001])
    vocab = ["x", "y", "z"]
    global_only = fit_calibration(gold, np.array(topk), np.array(scores), vocab)
    assert global_only.dev_micro_f1 < 0.9  # no single threshold keeps x and drops y at 0.5
    calibration = fit_calibration(gold, np.array(topk), np.array(scores), vocab, per_label=True, min_support=5)
    assert set(calibration.label_thresholds) == {"x", "y"}  # z has no dev document: the global one
    assert calibration.label_thresholds["x"] <= 0.3 and 0.5 < calibration.label_thresholds["y"] <= 0.9
    assert calibration.threshold_of("z") == calibration.threshold
    assert calibration.dev_micro_f1 == pytest.approx(1.0)
    with pytest.raises(LcrError, match="needs dev documents with gold labels"):
        fit_calibration([set()], np.array([[0]]), np.array([[0.5]]), ["x"])


def test_save_and_load(tmp_path):
    assert load_calibration(tmp_path) is None
    saved = Calibration(threshold=0.4, max_labels=3, label_thresholds={"a": 0.2}, dev_micro_f1=0.7)
    save_calibration(tmp_path, saved)
    assert load_calibration(tmp_path) == saved
    (tmp_path / CALIBRATION_FILE).write_text("{}")
    with pytest.raises(LcrError, match="not a calibration file"):
        load_calibration(tmp_path)
    # or a file of its own (the DVC stage's output), which must then exist
    written = save_calibration(tmp_path / "calibrations" / "toy.json", saved)
    assert written == tmp_path / "calibrations" / "toy.json" and load_calibration(written) == saved
    with pytest.raises(LcrError, match="no such calibration file"):
        load_calibration(tmp_path / "missing.json")


def test_calibrate_a_trained_model_then_serve_sets(registered, tmp_path):
    from lcr.jobs import calibrate_job
    from lcr.serve.predictor import Predictor
    from lcr.serve.pyfunc import LabelCoRankPyfunc

    run = tmp_path / "run"
    shutil.copytree(registered["folder"], run / "best_model")
    ranking_only = Predictor.load(run / "best_model")
    with pytest.raises(LcrError, match="run `lcr calibrate`"):
        ranking_only.predict(["wheat"], mode="set")
    result = calibrate_job("toy", run, data_dir=registered["data"], track=False)
    assert (run / "best_model" / CALIBRATION_FILE).exists()
    assert 1 <= result["max_labels"] <= 20 and 0 < result["threshold"] < 1
    assert 0.0 <= result["test_micro_f1"] <= 1.0 and result["dev_micro_f1"] > 0
    predictor = Predictor.load(run / "best_model")
    texts = ["report 1: wheat grain harvest", "report 2: oil crude opec"]
    sets = predictor.predict(texts, mode="set")
    ranking = predictor.predict(texts, k=len(predictor.labels))
    for chosen, ranked in zip(sets, ranking):
        assert len(chosen) <= result["max_labels"]
        assert [r["label"] for r in chosen] == [r["label"] for r in ranked if r["score"] >= result["threshold"]][:len(chosen)]
    with pytest.raises(LcrError, match="mode must be"):
        predictor.predict(texts, mode="bag")

    class Context:  # what MLflow hands to load_context
        artifacts = {"model_folder": str(run / "best_model")}

    model = LabelCoRankPyfunc()
    model.load_context(Context())
    frame = model.predict(None, texts, params={"mode": "set"})
    assert [list(ids) for ids in frame["label_ids"]] == [[r["label"] for r in row] for row in sets]


def test_calibration_file_goes_into_the_registered_model_only(registered, tmp_path, mlflow_store):
    """``lcr calibrate --output FILE`` leaves the run folder alone (a DVC output of the train
    stage); ``lcr register --calibration FILE`` serves the registered model with that choice."""
    import mlflow
    import pandas as pd

    from lcr.jobs import calibrate_job, register_job
    from lcr.runs import METRICS_FILE, write_results

    run = tmp_path / "run"
    shutil.copytree(registered["folder"], run / "best_model")
    before = sorted(p.name for p in (run / "best_model").iterdir())
    target = tmp_path / "calibrations" / "toy.json"
    result = calibrate_job("toy", run, data_dir=registered["data"], track=False, output=target)
    assert result["file"] == str(target) and target.exists()
    assert sorted(p.name for p in (run / "best_model").iterdir()) == before  # nothing written into the run
    chosen = json.loads(target.read_text())
    chosen["max_labels"] = 1  # a choice the model folder could not have made itself
    target.write_text(json.dumps(chosen))
    write_results(run, {"eval": {"full": {"nDCG@5": 0.5}}, "dev": {"nDCG@5": 0.5}, "run": {}})
    assert (run / METRICS_FILE).exists()
    record = register_job("toy", run, calibration=target)
    model = mlflow.pyfunc.load_model(record["uri"])
    frame = model.predict(pd.DataFrame({"text": ["wheat grain harvest", "oil crude opec"]}), params={"mode": "set"})
    assert all(len(labels) <= 1 for labels in frame["labels"])
    assert not (run / "best_model" / CALIBRATION_FILE).exists()
    with pytest.raises(LcrError, match="no such calibration file"):
        register_job("toy", run, calibration=tmp_path / "none.json")
