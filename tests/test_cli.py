"""The `lcr` command line, end to end on real files (fixtures and, when present, the mirror)."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from lcr.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def custom_store(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"id": f"d{i}", "text": f"some words {i}", "labels": ["a", "b", "c"][: 1 + i % 3]} for i in range(30)]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = tmp_path / "data"
    result = invoke("fetch", "custom", "--from", corpus, "--name", "toy", "--dev-fraction", "0.2",
                    "--data-dir", data)
    assert result.exit_code == 0, result.output
    return data


def test_fetch_prints_table1_columns(custom_store):
    result = invoke("stats", "toy", "--data-dir", custom_store)
    assert result.exit_code == 0
    assert "toy: 3 labels" in result.output and "L_avg" in result.output
    as_json = json.loads(invoke("stats", "toy", "--json", "--data-dir", custom_store).output)
    assert as_json["splits"]["train"]["documents"] + as_json["splits"]["dev"]["documents"] == 30


def test_export_then_metrics_on_perfect_predictions(custom_store, tmp_path):
    out = tmp_path / "train.jsonl"
    assert invoke("export", "toy", "train", "-o", out, "--data-dir", custom_store).exit_code == 0
    gold = [json.loads(line) for line in out.read_text().splitlines()]
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps({"id": g["id"], "labels": g["labels"], "scores": [0.9] * len(g["labels"])}) + "\n"
                            for g in gold))
    assert invoke("prepare", "toy", "--data-dir", custom_store).exit_code == 0
    result = invoke("metrics", "--gold", "toy:train", "--pred", pred, "--data-dir", custom_store)
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)["metrics"]
    assert scores["full"]["P@1"] == 1.0 and scores["full"]["nDCG@5"] == 1.0
    assert scores["full"]["PSP@5"] == pytest.approx(1.0)
    assert {"head", "tail"} <= set(scores)
    # The same predictions against the exported JSONL gold (no subsets without a prepared dataset).
    plain = json.loads(invoke("metrics", "--gold", out, "--pred", pred).output)["metrics"]
    assert plain["full"]["P@1"] == 1.0 and "head" not in plain


def test_compare_two_prediction_files_on_a_dataset_split(custom_store, tmp_path):
    out = tmp_path / "train.jsonl"
    assert invoke("export", "toy", "train", "-o", out, "--data-dir", custom_store).exit_code == 0
    gold = [json.loads(line) for line in out.read_text().splitlines()]
    perfect, first_wrong = tmp_path / "perfect.jsonl", tmp_path / "wrong.jsonl"
    perfect.write_text("".join(json.dumps({"id": g["id"], "labels": g["labels"]}) + "\n" for g in gold))
    others = {g["id"]: [x for x in ("a", "b", "c") if x not in g["labels"]] for g in gold}
    first_wrong.write_text("".join(json.dumps({"id": g["id"], "labels": (others[g["id"]] or ["zz"])[:1] + g["labels"]})
                                   + "\n" for g in gold))
    result = invoke("compare", "--gold", "toy:train", "--baseline", first_wrong, "--candidate", perfect,
                    "--resamples", 100, "--data-dir", custom_store)
    assert result.exit_code == 0, result.output
    p1 = json.loads(result.output)["metrics"]["P@1"]
    assert p1["baseline"] == 0.0 and p1["candidate"] == 1.0 and p1["low"] == 1.0
    assert p1["better"] == len(gold) and p1["n_docs"] == len(gold)
    missing = invoke("compare", "--gold", "toy:train", "--baseline", perfect, "--candidate", tmp_path / "nope.jsonl",
                     "--data-dir", custom_store)
    assert missing.exit_code != 0 and "nope.jsonl: no such file" in missing.output
    assert "Traceback" not in missing.output


def test_ensemble_of_two_prediction_files_is_scored_like_one(custom_store, tmp_path):
    out = tmp_path / "train.jsonl"
    assert invoke("export", "toy", "train", "-o", out, "--data-dir", custom_store).exit_code == 0
    gold = [json.loads(line) for line in out.read_text().splitlines()]
    # Each member ranks a wrong label first, a different one; their mean ranks the gold labels first.
    members = []
    for name, wrong in (("m1.jsonl", "zz1"), ("m2.jsonl", "zz2")):
        path = tmp_path / name
        path.write_text("".join(json.dumps({"id": g["id"], "labels": [wrong, *g["labels"]],
                                            "scores": [0.9] + [0.8] * len(g["labels"])}) + "\n" for g in gold))
        members.append(path)
    ens = tmp_path / "ens.jsonl"
    result = invoke("ensemble", "--pred", members[0], "--pred", members[1], "--output", ens)
    assert result.exit_code == 0, result.output
    scores = json.loads(invoke("metrics", "--gold", "toy:train", "--pred", ens, "--data-dir", custom_store).output)
    assert scores["metrics"]["full"]["P@1"] == 1.0
    one = invoke("ensemble", "--pred", members[0], "--output", ens)
    assert one.exit_code != 0 and "at least two prediction files" in one.output and "Traceback" not in one.output


@pytest.mark.parametrize("args, message", [
    (["fetch", "imagenet"], "unknown dataset 'imagenet'"),
    (["prepare", "nothing"], "lcr fetch nothing"),
    (["export", "nothing", "train"], "lcr fetch nothing"),
    (["oracle", "--dataset", "nothing", "--from-run", "nowhere"], "train the model first"),
    (["metrics", "--gold", "x:test", "--pred", "missing.jsonl"], "no such file"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, args, message):
    result = invoke(*args, "--data-dir", tmp_path) if args[0] != "metrics" else invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "lcr.cli", "datasets"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "reuters21578" in result.stdout and "custom" in result.stdout
