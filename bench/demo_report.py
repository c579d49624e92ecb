"""The report of one timed `make demo`: wall-clock time, each stage's time, the demo's tables.

``bash bench/time_demo.sh`` clones the checked-out commit, times ``make demo`` in the clone and
then runs this module on the finished clone; it writes ``bench/results/make-demo.md``: the command,
the clone's commit, the measured wall-clock time and exit status, every MLflow run of the demo
(start offset and duration, which is where the time goes), and the Reuters-21578 rows that the
README quotes (main table, S1 beside the final prediction, ablations, the gamma sweep) with AAPD's
main rows, read from the demo's ``tables/*.csv``.

Usage: python -m bench.demo_report CLONE --seconds S --rc RC [--output FILE] [--command TEXT]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

from bench import report

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "bench" / "results" / "make-demo.md"
DEFAULT_COMMAND = ("`bash bench/time_demo.sh` (a fresh clone of the commit, its packages already installed, "
                   "then `make demo` there, timed)")
METRICS = ("P@1", "P@3", "P@5", "nDCG@3", "nDCG@5")


def stage_times(clone: Path) -> list[tuple[str, float, float, str]]:
    """(run name, start offset in s, duration in s, status) of every MLflow run of the demo, in order."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{clone / 'mlflow.db'}")
    runs = [run for experiment in client.search_experiments() for run in
            client.search_runs([experiment.experiment_id], max_results=1000)]
    runs.sort(key=lambda run: run.info.start_time)
    if not runs:
        return []
    start = runs[0].info.start_time
    return [(run.info.run_name or run.info.run_id, (run.info.start_time - start) / 1000,
             ((run.info.end_time or run.info.start_time) - run.info.start_time) / 1000, run.info.status)
            for run in runs]


def table_rows(path: Path, key: str = "row") -> list[dict]:
    """The measured rows of one of the demo's tables (``tables/<name>.csv``)."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row.get("status", "measured") == "measured" and row.get(key)]


def markdown_table(rows: list[dict], key: str, label: str) -> list[str]:
    """Rows as Markdown: the key column, the five metrics and S1's P@1 / nDCG@5 where present."""
    lines = [f"| {label} | " + " | ".join(METRICS) + " | S1 P@1 | S1 nDCG@5 |",
             "|---|" + "---:|" * (len(METRICS) + 2)]
    for row in rows:
        s1 = [row.get("s1_P@1") or "-", row.get("s1_nDCG@5") or "-"]
        lines.append(f"| {row[key]} | " + " | ".join(row[m] for m in METRICS) + " | " + " | ".join(s1) + " |")
    return lines


def build(clone: Path, seconds: float, rc: int, command: str = DEFAULT_COMMAND) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True,
                            check=True).stdout.strip()
    stages = stage_times(clone)
    lines = [
        "# `make demo`, timed",
        "",
        f"- Command: {command}",
        f"- Commit of the clone: {commit}; date: {report.today()}",
        f"- Machine: {report.machine()}",
        f"- Wall-clock time of `make demo`: **{seconds:,.0f} s ({seconds / 60:.1f} min)**, exit status {rc}; "
        f"{sum(1 for name, *_ in stages if name != 'dvc repro')} stages logged in MLflow",
        "",
        "## Where the time goes (MLflow runs of the demo, in order)",
        "",
        "| run | starts at | takes | status |",
        "|---|---:|---:|---|",
        *(f"| {name} | {offset:,.0f} s | {duration:,.0f} s | {status} |" for name, offset, duration, status in stages),
        "",
    ]
    tables = clone / "tables"
    for title, name, key, label in (
            ("Reuters-21578, main table (test split)", "reuters21578_main", "row", "model"),
            ("Reuters-21578, ablations", "reuters21578_ablation", "row", "model"),
            ("Reuters-21578, gamma sweep", "reuters21578_gamma", "row", "gamma"),
            ("AAPD (val stands in for train, a fifth of it held out as dev), main table", "table04_aapd_main", "row",
             "model")):
        rows = table_rows(tables / f"{name}.csv", key)
        if rows:
            lines += [f"## {title}", "", *markdown_table(rows, key, label), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clone", type=Path, help="the checkout in which `make demo` ran")
    parser.add_argument("--seconds", type=float, required=True, help="measured wall-clock time of `make demo`")
    parser.add_argument("--rc", type=int, required=True, help="its exit status")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--command", default=DEFAULT_COMMAND, help="how the demo was run, if not by time_demo.sh")
    args = parser.parse_args(argv)
    if not (args.clone / "mlflow.db").exists():
        print(f"error: {args.clone / 'mlflow.db'} is missing: `make demo` has not run in {args.clone}", file=sys.stderr)
        return 2
    text = build(args.clone, args.seconds, args.rc, args.command)
    from lcr.atomic import atomic_open

    args.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(args.output, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
