"""Proof that a refactor kept behaviour: the same seed gives the same metrics before and after.

Trains the same runs with two checkouts (``--before``: a worktree of the earlier commit; the
checkout this file is in is "after"), each in its own interpreter with its own code, and compares
every test metric:

* ``toy``: the toy corpus of the tests (``tests/toy_data.py``) with the tiny random encoder of
  ``tests/tiny_encoder.py``, LabelCoRank, 3 epochs;
* ``reuters-demo``: Reuters-21578 at the demo profile's scale (``lcr train --dataset reuters21578``
  with the profile's 1,200 documents, 64 tokens, 2 epochs), LabelCoRank (needs data/reuters21578).

Writes ``bench/results/same-metrics.json`` and the ``same-metrics`` section of ``bench/RESULTS.md``.

Usage::

    python -m bench.bench_same_metrics --before /path/to/worktree-of-old-commit [--only toy]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import report

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "RESULTS.md"


def _commit(folder: Path) -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True, text=True,
                          check=True).stdout.strip()


def _lcr(checkout: Path, args: list[str], env: dict) -> None:
    run_env = {**os.environ, **env, "PYTHONPATH": str(checkout)}
    done = subprocess.run([sys.executable, "-m", "lcr.cli", *args], cwd=checkout, env=run_env,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{checkout}: lcr {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def toy_run(checkout: Path, work: Path) -> dict:
    sys.path.insert(0, str(REPO))
    from tests.tiny_encoder import make_tiny_encoder
    from tests.toy_data import write_toy_corpus

    corpus = write_toy_corpus(work / "corpus", {"train": 64, "dev": 16, "test": 16})
    encoder = make_tiny_encoder(work / "encoder")
    data = work / "data"
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    _lcr(checkout, ["fetch", "custom", "--from", str(corpus), "--name", "toy", "--data-dir", str(data)], env)
    _lcr(checkout, ["prepare", "toy", "--data-dir", str(data)], env)
    _lcr(checkout, ["train", "--dataset", "toy", "--data-dir", str(data), "--no-track", "--output", str(work / "run"),
                    "--set", f"encoder={encoder}", "--set", "gamma=3", "--set", "num_heads=2", "--set", "batch_size=8",
                    "--set", "max_length=32", "--set", "epochs=3", "--set", "lr=3e-3", "--set", "device=cpu"], env)
    return json.loads((work / "run" / "metrics.json").read_text())["eval"]["full"]


def reuters_run(checkout: Path, work: Path) -> dict:
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    _lcr(checkout, ["train", "--dataset", "reuters21578", "--data-dir", str(REPO / "data"), "--no-track",
                    "--output", str(work / "run")], env)
    return json.loads((work / "run" / "metrics.json").read_text())["eval"]["full"]


RUNS = {"toy": toy_run, "reuters-demo": reuters_run}
SHOWN = ("P@1", "P@3", "P@5", "nDCG@3", "nDCG@5")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--only", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    before, after = args.before.resolve(), REPO
    rows = []
    for name in args.only:
        metrics = {}
        for label, checkout in (("before", before), ("after", after)):
            with tempfile.TemporaryDirectory(prefix=f"lcr-same-{name}-") as tmp:
                metrics[label] = RUNS[name](checkout, Path(tmp))
            print(name, label, {k: round(metrics[label][k], 4) for k in SHOWN}, file=sys.stderr, flush=True)
        diff = max(abs(metrics["before"][k] - metrics["after"][k]) for k in metrics["before"] if k != "n_docs")
        rows.append({"run": name, "before": metrics["before"], "after": metrics["after"], "max_abs_diff": diff})
    record = {"before": _commit(before), "after": _commit(after), "date": report.today(),
              "machine": report.machine(), "runs": rows}
    print(json.dumps({r["run"]: r["max_abs_diff"] for r in rows}))
    if not args.no_report:
        (REPO / "bench" / "results" / "same-metrics.json").write_text(json.dumps(record, indent=2) + "\n")
        lines = [f"## Same seed, same metrics: commit {record['before']} (before) vs {record['after']} (after)", "",
                 f"- Command: `{report.command_line('python -m bench.bench_same_metrics', argv)}`",
                 f"- Date: {record['date']}; machine: {record['machine']}",
                 "- toy: the tests' toy corpus and tiny random encoder, LabelCoRank, 3 epochs; reuters-demo: "
                 "`lcr train --dataset reuters21578` at the demo profile's scale (1,200 documents, 64 tokens, "
                 "2 epochs), LabelCoRank; test split, every metric compared", "",
                 "| run | commit | " + " | ".join(SHOWN) + " | largest difference (all metrics) |",
                 "|---|---|" + "---:|" * (len(SHOWN) + 1)]
        for row in rows:
            for label in ("before", "after"):
                values = " | ".join(f"{row[label][k]:.4f}" for k in SHOWN)
                tail = f"{row['max_abs_diff']:.2e}" if label == "after" else ""
                lines.append(f"| {row['run']} | {record[label]} | {values} | {tail} |")
        report.update_section("same-metrics", "\n".join(lines) + "\n", RESULTS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
