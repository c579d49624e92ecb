"""Every variant at real size: each trains a few hundred steps on a real mid-size corpus and finishes.

Trains every variant ``lcr train`` accepts on all of Reuters-21578's training documents (6,930
after the dev hold-out, 90 labels) for ``--steps`` optimiser steps (the linear ones, ``tfidf``
and ``bonsai``, fit in one pass and have no steps), each through the real command in its own
child process, tracked in an MLflow store of its own, with the final evaluation on the test split.
For each run it records whether it finished, the wall-clock time of the whole command (start-up,
data, training, evaluation), the peak resident memory of that child (``os.wait4``), and the test
P@1 / nDCG@5 (after only a few hundred steps: a check that the path works at this size, not a
quality figure; those are in ``bench/RESULTS.md``). A variant the corpus cannot feed (``match``
reads metadata Reuters does not have) is listed as skipped with lcr's own error message.

Writes the section ``variants-<dataset>`` of ``bench/BENCHMARKS.md`` and
``bench/results/variants-<dataset>.json``; exits 1 when a variant fails.

Usage::

    python -m bench.bench_variants [--dataset reuters21578] [--steps 200] [--variants V ...]
                                   [--max-length 64] [--runs-dir runs-variants]

Needs the dataset fetched and prepared (``lcr fetch``/``lcr prepare``, or ``make demo``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import report
from bench.bench_reuters import commit
from lcr.atomic import atomic_open
from lcr.models import variants as registry

REPO = Path(__file__).resolve().parents[1]
RECORDS_DIR = REPO / "bench" / "results"
COMMAND = "python -m bench.bench_variants"


def run_variant(variant: str, args: argparse.Namespace) -> dict:
    """``lcr train`` for one variant in a child process; its outcome, time and peak memory."""
    folder = args.runs_dir / variant
    settings = {"max_steps": args.steps, "epochs": args.epochs, "max_length": args.max_length,
                "batch_size": args.batch_size, "max_train_docs": None, "patience": None, "device": "cpu",
                "seed": 0, "checkpoint_every": 10_000}
    command = [sys.executable, "-m", "lcr.cli", "train", "--dataset", args.dataset, "--variant", variant,
               "--output", str(folder), "--data-dir", str(args.data_dir)]
    for key, value in settings.items():
        command += ["--set", f"{key}={'null' if value is None else value}"]
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{(args.runs_dir / 'mlflow.db').resolve()}")
    env.pop("LCR_PARENT_RUN_ID", None)
    log = args.runs_dir / f"{variant}.log"
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS, not the maximum over all children
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    record = {"variant": variant, "family": registry.family(variant), "exit_code": code,
              "wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024),  # Linux: kilobytes
              "steps": None if variant in registry.LINEAR_VARIANTS else args.steps, "log": str(log)}
    tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    metrics = folder / "metrics.json"
    if code == 0 and metrics.is_file():
        result = json.loads(metrics.read_text(encoding="utf-8"))
        full = result["eval"]["full"]
        record.update(status="finished", **{"P@1": full.get("P@1"), "nDCG@5": full.get("nDCG@5")},
                      steps_done=result.get("steps"), train_s=result.get("train_seconds"))
    elif code != 0 and tail and tail[-1].startswith("error:") and variant in registry.METADATA_VARIANTS:
        record.update(status="skipped", reason=tail[-1])
    else:
        record.update(status="failed", reason="\n".join(tail[-5:]))
    return record


def markdown(records: list[dict], args: argparse.Namespace, revision: str, argv: list[str] | None) -> str:
    lines = [
        f"## Every variant on all of {args.dataset}'s training documents, {args.steps} steps",
        "",
        f"- Command: `{report.command_line(COMMAND, argv)}` at commit `{revision}`",
        f"- Date: {report.today()}",
        f"- Machine: {report.machine()}",
        f"- Each run: `lcr train --set max_steps={args.steps} --set max_length={args.max_length} "
        f"--set batch_size={args.batch_size} --set max_train_docs=null` in its own process (the neural models "
        "stop after the steps; tfidf and bonsai fit in one pass), then the test evaluation. Time: the whole "
        "command. Memory: the process's peak RSS. P@1 / nDCG@5 after so few steps check the path, not the "
        "model (quality: bench/RESULTS.md).",
        "",
        "| variant | family | status | steps | wall-clock | peak RSS | test P@1 | test nDCG@5 |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        score = (lambda key: "" if r.get(key) is None else f"{r[key]:.4f}")
        status = r["status"] if r["status"] == "finished" else f"{r['status']}: {r.get('reason', '')}".replace("|", "/")
        lines.append(f"| {r['variant']} | {r['family']} | {status} | {r['steps'] or '-'} | {r['wall_s'] / 60:.1f} min "
                     f"| {r['peak_rss_mb'] / 1024:.2f} GB | {score('P@1')} | {score('nDCG@5')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="reuters21578")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=10, help="an upper bound: the steps stop training first")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--variants", nargs="+", default=list(registry.VARIANTS), choices=registry.VARIANTS)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--runs-dir", type=Path, default=Path("runs-variants"))
    parser.add_argument("--no-report", action="store_true", help="write neither BENCHMARKS.md nor the records")
    args = parser.parse_args(argv)
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    revision = commit()
    records = []
    for variant in args.variants:
        record = run_variant(variant, args)
        records.append(record)
        print(f"{variant}: {record['status']} in {record['wall_s']:.0f} s, peak {record['peak_rss_mb']} MB "
              f"{record.get('reason', '')}", flush=True)
    if not args.no_report:
        RECORDS_DIR.mkdir(parents=True, exist_ok=True)
        path = RECORDS_DIR / f"variants-{args.dataset}.json"
        with atomic_open(path, "w", encoding="utf-8") as handle:
            json.dump({"commit": revision, "steps": args.steps, "max_length": args.max_length,
                       "batch_size": args.batch_size, "records": records}, handle, indent=2)
        report.update_section(f"variants-{args.dataset}", markdown(records, args, revision, argv))
    return 1 if any(r["status"] == "failed" for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
