"""Serving throughput and latency: the registered pyfunc model behind the real
``mlflow models serve`` on 127.0.0.1, against the bare encoder's forward pass on the same batch.

What it does:
1. builds an AAPD-sized LabelCoRank (K = 54, gamma = 20; synthetic co-occurrence and frequency
   from ``bench.synthetic``) around the offline all-MiniLM-L6-v2 encoder, writes its model
   folder, logs it with :func:`lcr.serve.pyfunc.log_model` and registers it in a temporary sqlite
   store; the weights are untrained (speed does not depend on them);
2. starts ``mlflow models serve -m models:/lcr-bench/1 --env-manager local`` on a free port;
3. sends ``--streams`` concurrent streams of ``--requests`` requests, each ``--batch`` texts of
   ``--words`` words (truncated to ``--max-length`` tokens), and records every latency;
4. times the bare encoder (``AutoModel`` forward, no gradient) on a batch of the same texts
   tokenised the same way, and reports the overhead ratio = encoder docs/s / served docs/s
   (target at most 1.2: what serving adds over the encoder, i.e. tokenisation, the LabelCoRank
   head, pandas, JSON and HTTP, stays within 20%).

Run:
    python -m bench.bench_serving            # rewrites the `serving` section of BENCHMARKS.md
    python -m bench.bench_serving --quick    # 8 streams x 5 requests, no file written
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from bench import report
from bench.synthetic import SHAPES, LabelModel

RATIO_TARGET = 1.2


def make_model_folder(folder: Path, max_length: int, seed: int) -> dict:
    """An AAPD-sized LabelCoRank model folder around the offline MiniLM encoder."""
    from lcr.config import train_params
    from lcr.models.encoder import load_encoder
    from lcr.labels import cooccurrence, frequency_rank, label_frequencies
    from lcr.models.factory import build_model
    from lcr.paper import PAPER_SETTINGS

    shape, settings = SHAPES["aapd"], PAPER_SETTINGS["aapd"]
    labels = LabelModel.create(shape.n_labels, seed=seed)
    train, _ = labels.sample(20_000, shape.mean_labels, np.random.default_rng([seed, 1]))
    encoder, tokenizer = load_encoder(None)
    params = train_params(variant="labelcorank", gamma=settings["gamma"], beta=settings["beta"],
                          alpha=settings["alpha"], selection="threshold")
    torch.manual_seed(seed)
    model = build_model(params, encoder, cooc=cooccurrence(train), freq_rank=frequency_rank(label_frequencies(train)))
    folder.mkdir(parents=True)
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(str(folder / "tokenizer"))
    with open(folder / "label_vocab.tsv", "w", encoding="utf-8") as handle:
        handle.write("label\tname\n" + "".join(f"L{i}\tlabel {i}\n" for i in range(shape.n_labels)))
    (folder / "inference.json").write_text(json.dumps({"dataset": "bench", "variant": "labelcorank",
                                                      "max_length": max_length, "encoder": "all-MiniLM-L6-v2"}))
    return {"labels": shape.n_labels, "gamma": settings["gamma"], "encoder": encoder, "tokenizer": tokenizer}


def make_texts(count: int, words: int, seed: int) -> list[str]:
    from bench.bench_train_step import _WORDS

    rng = np.random.default_rng([seed, 4])
    return [" ".join(rng.choice(_WORDS, size=words)) for _ in range(count)]


def encoder_throughput(encoder, tokenizer, texts: list[str], max_length: int, repeats: int) -> dict:
    """Documents per second of the bare encoder's forward on ``texts`` as one batch (median)."""
    batch = tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    encoder.eval()
    times = []
    with torch.no_grad():
        encoder(**batch)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"seconds": median, "docs_per_s": len(texts) / median, "tokens": int(batch["input_ids"].shape[1])}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(root: Path, uri: str) -> tuple[subprocess.Popen, str]:
    import requests

    port = _free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    log = open(root / "server.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/lcr-bench/1",
                                "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                               cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while True:
        if process.poll() is not None:
            raise RuntimeError((root / "server.log").read_text()[-3000:])
        try:
            if requests.get(f"{base}/ping", timeout=2).status_code == 200:
                return process, base
        except requests.ConnectionError:
            pass
        if time.time() > deadline:
            process.kill()
            raise RuntimeError("the server did not answer /ping within 300 s")
        time.sleep(0.5)


def load(base: str, texts: list[str], streams: int, requests_per_stream: int, batch: int) -> dict:
    """``streams`` threads, each sending its requests one after another; every latency kept."""
    import requests

    def stream(index: int) -> list[tuple[float, int]]:
        session = requests.Session()
        out = []
        for request in range(requests_per_stream):
            start = (index * requests_per_stream + request) * batch % max(1, len(texts) - batch)
            body = json.dumps({"inputs": {"text": texts[start:start + batch]}})
            began = time.perf_counter()
            response = session.post(f"{base}/invocations", data=body,
                                    headers={"Content-Type": "application/json"}, timeout=600)
            out.append((time.perf_counter() - began, response.status_code))
        return out

    # Warm-up request, not counted.
    requests.post(f"{base}/invocations", data=json.dumps({"inputs": {"text": texts[:batch]}}),
                  headers={"Content-Type": "application/json"}, timeout=600)
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=streams) as pool:
        results = [item for result in pool.map(stream, range(streams)) for item in result]
    wall = time.perf_counter() - began
    latencies = np.array([r[0] for r in results])
    errors = sum(1 for r in results if r[1] != 200)
    return {"requests": len(results), "errors": errors, "wall": wall,
            "docs_per_s": len(results) * batch / wall,
            "p50": float(np.percentile(latencies, 50)), "p99": float(np.percentile(latencies, 99))}


def markdown(args, command: str, model: dict, encoder: dict, served: dict) -> str:
    ratio = encoder["docs_per_s"] / served["docs_per_s"]
    verdict = "ok" if ratio <= RATIO_TARGET else "missed"
    return f"""## Serving: `mlflow models serve` against the bare encoder

Command: `{command}` ({report.today()}; {report.machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads).

Model: LabelCoRank, K = {model['labels']}, gamma = {model['gamma']}, encoder all-MiniLM-L6-v2 (offline), untrained
weights; served by `mlflow models serve --env-manager local` (one uvicorn worker) on 127.0.0.1.
Load: {args.streams} concurrent streams x {args.requests} requests, {args.batch} texts of {args.words} words per
request (truncated to {args.max_length} tokens; batches of {encoder['tokens']} tokens), `{{"inputs": {{"text": [...]}}}}`.

| measure | value |
|---|---:|
| requests (errors) | {served['requests']} ({served['errors']}) |
| latency p50 / p99 | {served['p50'] * 1000:,.0f} ms / {served['p99'] * 1000:,.0f} ms |
| served throughput | {served['docs_per_s']:.1f} docs/s |
| bare encoder forward, same batch | {encoder['docs_per_s']:.1f} docs/s ({encoder['seconds'] * 1000:,.0f} ms per batch, median of {args.repeats}) |
| overhead ratio (encoder / served) | {ratio:.3f}x (target <= {RATIO_TARGET}x: {verdict}) |

Latency under 8 concurrent streams includes queueing: one worker scores one request at a time,
so p50 is about `streams` times the service time.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--batch", type=int, default=8, help="texts per request")
    parser.add_argument("--words", type=int, default=200, help="words per text")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=10, help="timed encoder forwards")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="5 requests per stream; nothing written")
    parser.add_argument("--output", type=Path, default=report.BENCHMARKS)
    args = parser.parse_args(argv)
    if args.quick:
        args.requests = 5
    command = report.command_line("python -m bench.bench_serving", argv)

    with tempfile.TemporaryDirectory(prefix="lcr-bench-serving-") as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        print("building the model folder ...", flush=True)
        model = make_model_folder(root / "best_model", args.max_length, args.seed)
        texts = make_texts(max(args.batch * 4, 64), args.words, args.seed)
        print("timing the bare encoder ...", flush=True)
        encoder = encoder_throughput(model["encoder"], model["tokenizer"], texts[:args.batch], args.max_length,
                                     args.repeats)
        del model["encoder"]
        print(f"encoder: {encoder['docs_per_s']:.1f} docs/s", flush=True)

        import mlflow

        from lcr.serve.pyfunc import log_model

        mlflow.set_tracking_uri(uri)
        os.chdir(root)  # the store's ./mlruns artifact root
        with mlflow.start_run():
            log_model(root / "best_model", "lcr-bench")
        print("starting the server ...", flush=True)
        process, base = start_server(root, uri)
        try:
            print(f"load: {args.streams} streams x {args.requests} requests ...", flush=True)
            served = load(base, texts, args.streams, args.requests, args.batch)
        finally:
            process.terminate()
            process.wait(timeout=30)
    ratio = encoder["docs_per_s"] / served["docs_per_s"]
    print(f"served: {served['docs_per_s']:.1f} docs/s, p50 {served['p50'] * 1000:.0f} ms, "
          f"p99 {served['p99'] * 1000:.0f} ms, errors {served['errors']}; overhead ratio {ratio:.3f}x")
    if not args.quick:
        report.update_section("serving", markdown(args, command, model, encoder, served), args.output)
        print(f"wrote {args.output}")
    return 0 if served["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
