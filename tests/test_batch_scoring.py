"""Batch scoring: `lcr predict` streams JSONL/CSV/TSV through a model folder or a registered
model and writes the prediction JSONL that `lcr metrics` reads; bad input names file and line."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from lcr.serve.batch_scoring import predict_file, read_texts
from lcr.cli import app
from lcr.errors import DataFormatError, LcrError
from lcr.report.evaluation import evaluate_prediction_file
from tests.toy_data import TOPICS, toy_documents


def _test_split(path_stem, fmt: str):
    docs = toy_documents(16, 2)  # the toy store's test split
    if fmt == "jsonl":
        path = path_stem.with_suffix(".jsonl")
        path.write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in docs), encoding="utf-8")
    else:
        path = path_stem.with_suffix("." + fmt)
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="," if fmt == "csv" else "\t")
            writer.writerow(["text", "id"])
            writer.writerows([d.text, d.id] for d in docs)
    return path, docs


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "tsv"])
def test_predict_file_is_read_by_lcr_metrics(registered, tmp_path, fmt):
    from lcr.serve.predictor import Predictor

    source, docs = _test_split(tmp_path / "test", fmt)
    out = tmp_path / "pred.jsonl"
    predictor = Predictor.load(registered["folder"])
    result = predict_file(predictor, source, out, k=3, batch_size=5)  # 16 docs: batches of 5, 5, 5, 1
    assert result["documents"] == 16
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [d.id for d in docs]
    assert all(len(line["labels"]) == 3 and set(line["labels"]) <= set(TOPICS) for line in lines)
    # The same ranking as predicting the texts directly, and `lcr metrics` reads the file.
    direct = predictor.predict([d.text for d in docs], k=3)
    assert [line["labels"] for line in lines] == [[r["label"] for r in row] for row in direct]
    scored = evaluate_prediction_file("toy:test", out, data_dir=registered["data"])
    assert 0.0 <= scored["metrics"]["full"]["P@1"] <= 1.0


def test_cli_predict_from_a_registered_model(registered, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered["uri"])
    source, docs = _test_split(tmp_path / "test", "jsonl")
    out = tmp_path / "pred.jsonl"
    result = CliRunner().invoke(app, ["predict", "--model", "models:/lcr-toy/1", "--input", str(source),
                                      "--output", str(out), "--top-k", "2", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert "16 documents" in result.output
    from_registry = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(len(line["labels"]) == 2 for line in from_registry)

    # The model folder itself gives the same file (same batches: another batch size pads to other
    # shapes, and the last printed digit of a score may then differ on some CPUs).
    out_folder = tmp_path / "pred-folder.jsonl"
    result = CliRunner().invoke(app, ["predict", "--model", str(registered["folder"]), "--input", str(source),
                                      "--output", str(out_folder), "--top-k", "2", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert out_folder.read_text() == out.read_text()

    for model, message in [(str(tmp_path / "nowhere"), "no such model"), (str(tmp_path), "no MLmodel"),
                           ("models:/lcr-missing/1", "cannot resolve")]:
        result = CliRunner().invoke(app, ["predict", "--model", model, "--input", str(source),
                                          "--output", str(tmp_path / "x.jsonl")])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "x.jsonl").exists()


def test_bad_input_names_file_and_line_and_writes_nothing(registered, tmp_path):
    from lcr.serve.predictor import Predictor

    predictor = Predictor.load(registered["folder"])
    cases = {
        "no_text.jsonl": ('{"id": "a", "text": "oil"}\n{"id": "b", "body": "oil"}\n', "line 2, field 'text'"),
        "empty.jsonl": ('{"id": "a", "text": "oil"}\n{"id": "b", "text": " "}\n', "line 2, field 'text': empty"),
        "number.jsonl": ('{"text": 5}\n', "line 1, field 'text': expected a string"),
        "broken.jsonl": ('{"text": "oil"\n', "line 1: malformed JSON"),
        "header.csv": ("body,id\noil,1\n", "needs a 'text' column"),
        "ragged.csv": ("text,id\noil,1\ncorn,2,extra\n", "line 3"),
        "notes.txt": ("oil\n", "unknown input format"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        out = tmp_path / f"{name}.pred.jsonl"
        with pytest.raises((DataFormatError, LcrError), match=message):
            predict_file(predictor, path, out, batch_size=1)
        assert not out.exists()
    (tmp_path / "latin1.csv").write_bytes(b"text\ncaf\xe9 prices\n")
    with pytest.raises(DataFormatError, match="not valid UTF-8"):
        list(read_texts(tmp_path / "latin1.csv"))
