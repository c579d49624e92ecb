"""Serving a trained toy model: the pyfunc model in process, then the real
`mlflow models serve` on 127.0.0.1 over HTTP (formats, params, bad input, 8 concurrent streams)."""

from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from tests.toy_data import TOPICS

MAX_BATCH = 20  # the server under test runs with LCR_SERVING_MAX_BATCH=20


def test_pyfunc_model_in_process(registered, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered["uri"])
    assert registered["record"]["version"] == 1
    model = mlflow.pyfunc.load_model("models:/lcr-toy/1")
    texts = ["crude barrel opec oil prices", "wheat corn harvest tonnes"]

    frame = model.predict(pd.DataFrame({"id": ["a", "b"], "text": texts}))
    assert list(frame.columns) == ["labels", "label_ids", "scores"] and len(frame) == 2
    assert [len(row) for row in frame["labels"]] == [min(5, len(TOPICS))] * 2  # top_k 5, but K = 4
    assert all(scores == sorted(scores, reverse=True) for scores in frame["scores"])

    # A plain list of strings, params, and the explanation (the label sequence S, gamma = 3).
    listed = model.predict(texts, params={"top_k": 2, "explain": True})
    assert [len(row) for row in listed["labels"]] == [2, 2]
    assert listed["labels"].tolist() == [row[:2] for row in frame["labels"]]
    assert all(1 <= len(row) <= 3 and set(row) <= set(TOPICS) for row in listed["extended_labels"])
    # a threshold between the scores: what is kept is exactly the ranked labels scoring at least it
    cut = (frame["scores"][0][1] + frame["scores"][0][2]) / 2  # (scores are rounded to 6 decimals)
    high = model.predict(texts, params={"threshold": cut})
    for i in range(len(texts)):
        kept = [j for j, score in enumerate(frame["scores"][i]) if score >= cut]
        assert high["scores"][i] == [frame["scores"][i][j] for j in kept]
        assert high["labels"][i] == [frame["labels"][i][j] for j in kept]
    assert len(high["labels"][0]) >= 2 and sum(map(len, high["labels"])) < sum(map(len, frame["labels"]))

    for bad, message in [(pd.DataFrame({"body": texts}), "'text' column"),
                         (pd.DataFrame({"text": [texts[0], None]}), "text 1: missing"),
                         (pd.DataFrame({"text": [""]}), "text 0: empty"),
                         (pd.DataFrame({"text": [3]}), "text 0: expected a string")]:
        with pytest.raises(MlflowException, match=message):
            model.predict(bad)
    with pytest.raises(MlflowException, match="top_k"):
        model.predict(texts, params={"top_k": 0})

    # Logged from code with the input example and the params signature; nothing pickled.
    local = Path(mlflow.artifacts.download_artifacts("models:/lcr-toy/1"))
    assert not glob.glob(str(local / "**" / "*.pkl"), recursive=True)
    assert (local / "input_example.json").exists() and (local / "pyfunc_code.py").exists()
    params = {p.name: p.default for p in model.metadata.get_params_schema().params}
    assert params == {"top_k": 5, "threshold": None, "explain": False, "mode": "ranking"}
    # The artifact carries the sparse co-occurrence matrix and frequency ranks in safetensors.
    from safetensors import safe_open

    weights = next(local.glob("artifacts/*/model/model.safetensors"))
    with safe_open(str(weights), framework="pt") as handle:
        assert {"cooc_indices", "cooc_values", "freq_rank"} <= set(handle.keys())


# --------------------------------------------------------------------------------------------
# The real scoring server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(registered):
    """`mlflow models serve -m models:/lcr-toy/1 --env-manager local` on a free port."""
    import requests

    port = _free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=registered["uri"], LCR_SERVING_MAX_BATCH=str(MAX_BATCH))
    log = open(registered["root"] / "server.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/lcr-toy/1",
                                "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                               cwd=registered["root"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {(registered['root'] / 'server.log').read_text()[-3000:]}")
            try:
                if requests.get(f"{base}/ping", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.time() > deadline:
                raise RuntimeError("server did not answer /ping within 180 s")
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _invoke(base: str, payload, content_type: str = "application/json"):
    import requests

    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return requests.post(f"{base}/invocations", data=body, headers={"Content-Type": content_type}, timeout=60)


TEXTS = ["crude barrel opec oil prices", "wheat corn harvest tonnes"]


def test_server_formats_and_params(server):
    split = _invoke(server, {"dataframe_split": {"columns": ["text"], "data": [[t] for t in TEXTS]}})
    records = _invoke(server, {"dataframe_records": [{"id": i, "text": t} for i, t in enumerate(TEXTS)]})
    inputs = _invoke(server, {"inputs": {"text": TEXTS}})
    plain = _invoke(server, {"inputs": TEXTS})
    for response in (split, records, inputs, plain):
        assert response.status_code == 200, response.text
    predictions = split.json()["predictions"]
    assert [row["labels"] for row in predictions] == [row["labels"] for row in records.json()["predictions"]]
    assert [row["labels"] for row in predictions] == [row["labels"] for row in inputs.json()["predictions"]]
    assert [row["labels"] for row in predictions] == [row["labels"] for row in plain.json()["predictions"]]
    assert all(set(row["labels"]) <= set(TOPICS) for row in predictions)

    explained = _invoke(server, {"dataframe_records": [{"text": t} for t in TEXTS],
                                 "params": {"top_k": 1, "explain": True}})
    assert explained.status_code == 200, explained.text
    rows = explained.json()["predictions"]
    assert [len(row["labels"]) for row in rows] == [1, 1]
    assert all(row["labels"][0] == full["labels"][0] for row, full in zip(rows, predictions))
    assert all(1 <= len(row["extended_labels"]) <= 3 for row in rows)


def _long_text() -> str:
    words = " ".join(TOPICS.values()).split()
    text = " ".join(words[i % len(words)] for i in range(200_000))
    return text[:1_000_000]


BAD_INPUTS = {
    "missing text column": ({"dataframe_records": [{"body": "oil prices"}]}, "application/json", "'text' column"),
    "null": ({"dataframe_split": {"columns": ["text"], "data": [["oil"], [None]]}}, "application/json",
             "text 1: missing"),
    "empty string": ({"dataframe_records": [{"text": "oil"}, {"text": "  "}]}, "application/json", "text 1: empty"),
    "non-string": ({"dataframe_records": [{"text": 12345}]}, "application/json", "expected a string"),
    "invalid JSON": (b'{"dataframe_records": [{"text": "oil"', "application/json", "JSON"),
    "non-UTF-8 bytes": (b'{"inputs": ["oil \xff\xfe prices"]}', "application/json", "UnicodeDecodeError('utf-8'"),
    "batch over the cap": ({"inputs": {"text": ["oil"] * (MAX_BATCH + 1)}}, "application/json",
                           f"at most {MAX_BATCH}"),
    "bad top_k": ({"inputs": {"text": ["oil"]}, "params": {"top_k": 0}}, "application/json", "top_k"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_server_rejects_bad_input_and_keeps_serving(server, case):
    payload, content_type, message = BAD_INPUTS[case]
    response = _invoke(server, payload, content_type)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert message in response.text, response.text[:1000]
    after = _invoke(server, {"inputs": {"text": TEXTS}})
    assert after.status_code == 200


def test_server_truncates_a_million_character_text(server):
    text = _long_text()
    assert len(text) == 1_000_000
    response = _invoke(server, {"inputs": {"text": [text, TEXTS[0]]}})
    assert response.status_code == 200, response.text[:500]
    rows = response.json()["predictions"]
    # Truncated to the model's max_length: the same answer as its first tokens alone.
    head = _invoke(server, {"inputs": {"text": [text[:2000]]}}).json()["predictions"][0]
    assert rows[0]["labels"] == head["labels"]
    assert rows[0]["scores"] == pytest.approx(head["scores"], abs=1e-6)


def test_server_under_eight_concurrent_streams(server):
    def stream(index: int) -> list[int]:
        codes = []
        for request in range(50):
            texts = [TEXTS[(index + request) % 2], f"report {request}: {TEXTS[index % 2]}"]
            response = _invoke(server, {"inputs": {"text": texts}})
            codes.append(response.status_code)
            assert len(response.json()["predictions"]) == 2
        return codes

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = [code for result in pool.map(stream, range(8)) for code in result]
    assert len(codes) == 400 and set(codes) == {200}
