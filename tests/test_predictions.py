"""Tests of lcr.report.predictions: the one writer and reader of prediction and gold files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lcr.errors import DataFormatError, LcrError
from lcr.report.metrics import PADDING, UNKNOWN_LABEL, evaluate
from lcr.report.predictions import (PredictionWriter, align_predictions, labels_to_csr, read_gold, read_predictions,
                             write_predictions)

def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_read_gold_and_predictions(tmp_path):
    gold = write_lines(tmp_path / "gold.jsonl", [
        json.dumps({"id": "a", "labels": ["x", "y"], "text": "ignored"}),
        json.dumps({"id": 7, "labels": []}),
        "", "  ",  # trailing blank lines are fine
    ])
    assert read_gold(gold) == (["a", "7"], [["x", "y"], []])
    pred = write_lines(tmp_path / "pred.jsonl", [
        json.dumps({"id": "a", "labels": ["y", "z"], "scores": [0.9, 0.2]}),
        json.dumps({"id": "7", "labels": [], "scores": []}),
    ])
    assert read_predictions(pred) == (["a", "7"], [["y", "z"], []], [[0.9, 0.2], []])
    no_scores = write_lines(tmp_path / "p2.jsonl", [json.dumps({"id": "a", "labels": ["y"]})])
    assert read_predictions(no_scores) == (["a"], [["y"]], None)


@pytest.mark.parametrize("lines, line, field, words", [
    (['{"id": "a", "labels": []}', '{"id": "b", "labels": [}'], 2, None, "malformed JSON"),
    (['["a"]'], 1, None, "JSON object"),
    (['{"labels": []}'], 1, "id", "missing field"),
    (['{"id": "a"}'], 1, "labels", "missing field"),
    (['{"id": ["a"], "labels": []}'], 1, "id", "string"),
    (['{"id": true, "labels": []}'], 1, "id", "string"),
    (['{"id": "a", "labels": "x"}'], 1, "labels", "list of strings"),
    (['{"id": "a", "labels": [1]}'], 1, "labels", "list of strings"),
    (['{"id": "a", "labels": []}', '{"id": "a", "labels": []}'], 2, "id", "duplicate id 'a'"),
    (['{"id": "a", "labels": []}', '', '{"id": "b", "labels": []}'], 2, None, "blank line"),
])
def test_gold_reader_errors(tmp_path, lines, line, field, words):
    path = write_lines(tmp_path / "gold.jsonl", lines)
    with pytest.raises(DataFormatError) as info:
        read_gold(path)
    err = info.value
    assert err.path == str(path) and err.line == line and err.field == field
    assert str(path) in str(err) and f"line {line}" in str(err) and words in str(err)
    if field:
        assert f"field '{field}'" in str(err)


@pytest.mark.parametrize("lines, line, field, words", [
    (['{"id": "a", "labels": ["x", "y", "x"]}'], 1, "labels", "repeated"),
    (['{"id": "a", "labels": ["x"], "scores": [0.1, 0.2]}'], 1, "scores", "2 scores for 1 labels"),
    (['{"id": "a", "labels": ["x"], "scores": ["hi"]}'], 1, "scores", "list of numbers"),
    (['{"id": "a", "labels": ["x"], "scores": 0.5}'], 1, "scores", "list of numbers"),
    (['{"id": "a", "labels": ["x"], "scores": [NaN]}'], 1, "scores", "no NaN"),
    (['{"id": "a", "labels": ["x"], "scores": [1]}', '{"id": "b", "labels": ["x"]}'],
     2, "scores", "missing field"),
    (['{"id": "a", "labels": ["x"]}', '{"id": "b", "labels": ["x"], "scores": [1]}'],
     2, "scores", "unexpected field"),
    (['{"id": "a", "labels": []}', '{"id": "a", "labels": []}'], 2, "id", "duplicate id"),
])
def test_prediction_reader_errors(tmp_path, lines, line, field, words):
    path = write_lines(tmp_path / "pred.jsonl", lines)
    with pytest.raises(DataFormatError) as info:
        read_predictions(path)
    err = info.value
    assert (err.line, err.field) == (line, field)
    assert str(path) in str(err) and f"line {line}" in str(err) and words in str(err)


def test_reader_missing_file_and_bad_encoding(tmp_path):
    with pytest.raises(LcrError, match="nothere.jsonl"):
        read_gold(tmp_path / "nothere.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "a", "labels": []}\n{"id": "\xff", "labels": []}\n')
    with pytest.raises(DataFormatError, match="UTF-8"):
        read_gold(bad)


VOCAB = ["x", "y", "z", "w"]


def test_align_every_treatment():
    gold_ids = ["d1", "d2", "d3"]
    pred_ids = ["d3", "d1"]  # d2 has no prediction line; file order differs from gold order
    pred_labels = [["z", "NEW", "x", "y", "w"], ["y"]]  # "NEW" is not in the vocabulary
    pred_scores = [[0.9, 0.8, 0.7, 0.6, 0.5], [0.4]]
    topk, scores, report = align_predictions(gold_ids, VOCAB, pred_ids, pred_labels,
                                             pred_scores, k_max=4)
    # gold order; d2 empty; d3 cut to 4 labels with "NEW" kept at rank 2 as -2
    assert topk.tolist() == [[1, -1, -1, -1], [-1, -1, -1, -1], [2, UNKNOWN_LABEL, 0, 1]]
    assert np.array_equal(scores, np.array([[0.4, np.nan, np.nan, np.nan], [np.nan] * 4,
                                            [0.9, 0.8, 0.7, 0.6]]), equal_nan=True)
    assert report == {"n_docs": 3, "n_predictions": 2, "missing_predictions": 1,
                      "unknown_labels": 1, "unknown_label_examples": ["NEW"],
                      "truncated_rankings": 1}
    # without scores
    topk2, scores2, _ = align_predictions(gold_ids, {"x": 0, "y": 1, "z": 2, "w": 3}, pred_ids,
                                          pred_labels, None, k_max=2)
    assert scores2 is None and topk2.tolist() == [[1, -1], [-1, -1], [2, -2]]


def test_align_errors_name_id_and_line():
    with pytest.raises(DataFormatError) as info:
        align_predictions(["d1"], VOCAB, ["d1", "ghost"], [["x"], ["y"]], None, 3,
                          source="pred.jsonl")
    assert "'ghost'" in str(info.value) and "pred.jsonl, line 2" in str(info.value)
    assert info.value.field == "id"
    with pytest.raises(LcrError, match=r"line 2: prediction id 'ghost' is not in the gold"):
        align_predictions(["d1"], VOCAB, ["d1", "ghost"], [["x"], ["y"]], None, 3)
    with pytest.raises(LcrError, match=r"line 2: duplicate prediction id 'd1' \(first on line 1"):
        align_predictions(["d1"], VOCAB, ["d1", "d1"], [["x"], ["y"]], None, 3)
    with pytest.raises(LcrError, match=r"line 1: label\(s\) repeated.*'x'"):
        align_predictions(["d1"], VOCAB, ["d1"], [["x", "y", "x"]], None, 3)
    with pytest.raises(LcrError, match="line 1: 1 scores for 2 labels"):
        align_predictions(["d1"], VOCAB, ["d1"], [["x", "y"]], [[0.3]], 3)
    with pytest.raises(LcrError, match="gold id 'd1' appears twice"):
        align_predictions(["d1", "d1"], VOCAB, [], [], None, 3)


def test_labels_to_csr():
    m = labels_to_csr([["y", "x", "y"], []], VOCAB)
    assert m.toarray().tolist() == [[1, 1, 0, 0], [0, 0, 0, 0]]
    with pytest.raises(DataFormatError) as info:
        labels_to_csr([["x"], ["q"]], VOCAB, source="gold.jsonl")
    assert "gold.jsonl, line 2, field 'labels'" in str(info.value) and "'q'" in str(info.value)


def test_files_end_to_end(tmp_path):
    gold = write_lines(tmp_path / "gold.jsonl", [
        json.dumps({"id": "d1", "labels": ["x", "z"]}),
        json.dumps({"id": "d2", "labels": ["y"]}),
        json.dumps({"id": "d3", "labels": ["w"]}),
    ])
    pred = write_lines(tmp_path / "pred.jsonl", [
        json.dumps({"id": "d1", "labels": ["NEW", "z", "x"], "scores": [0.9, 0.8, 0.1]}),
        json.dumps({"id": "d3", "labels": ["w"], "scores": [0.6]}),
    ])
    gold_ids, gold_labels = read_gold(gold)
    y = labels_to_csr(gold_labels, VOCAB, source=gold)
    ids, labels, scores = read_predictions(pred)
    topk, s, report = align_predictions(gold_ids, VOCAB, ids, labels, scores, 5, source=pred)
    assert report["missing_predictions"] == 1 and report["unknown_labels"] == 1
    res = evaluate(y, topk, scores=s, ks=(1, 3))["full"]
    # P@1: d1 "NEW" misses, d2 has no prediction, d3 hit -> 1/3
    assert res["P@1"] == pytest.approx(1 / 3)
    # P@3: d1 2/3, d2 0, d3 1/3 -> 1/3
    assert res["P@3"] == pytest.approx(1 / 3)
    # F1 at 0.5: predicted d1 {NEW, z}, d3 {w}; TP 2, |pred| 3, |gold| 4 -> 4/7
    assert res["micro_F1"] == pytest.approx(4 / 7)
    assert res["n_docs"] == 3


def test_writer_round_trip_and_nothing_half_written(tmp_path):
    path = tmp_path / "runs" / "predictions-test.jsonl"
    topk = np.array([[2, 0], [1, 3]])
    scores = np.array([[0.123456789, 0.5], [1.0, 0.25]])
    write_predictions(path, ["d1", "d2"], VOCAB, topk, scores)
    assert read_predictions(path) == (["d1", "d2"], [["z", "x"], ["y", "w"]], [[0.123457, 0.5], [1.0, 0.25]])
    # lcr predict's form: names too, scores as given; read back by the same reader
    out = tmp_path / "scored.jsonl"
    with PredictionWriter(out) as writer:
        writer.write("a", ["x"], [0.9876543210], names=["Ex"])
        writer.write("b", [], [])
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first == {"id": "a", "labels": ["x"], "names": ["Ex"], "scores": [0.987654321]}
    ids, labels, _ = read_predictions(out)
    topk, _, report = align_predictions(["a", "b", "c"], VOCAB, ids, labels, None, 2)
    assert topk.tolist() == [[0, PADDING], [PADDING, PADDING], [PADDING, PADDING]]
    assert report["missing_predictions"] == 1
    # an error inside the block leaves no file (and an existing file untouched)
    with pytest.raises(RuntimeError):
        with PredictionWriter(out) as writer:
            writer.write("a", ["y"])
            raise RuntimeError("stop")
    assert read_predictions(out)[1] == [["x"], []]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "scored.jsonl"]  # no temporary file left
