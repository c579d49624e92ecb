"""Benchmark ``lcr.labels.prepare`` on a PubMed-shaped synthetic store.

Targets (from the project plan): the whole ``prepare`` (reading the Parquet store, statistics,
writing ``labels/``) under 60 s wall-clock and under 3 GB peak RSS on a 2-core machine, for
718,837 training documents x 17,963 labels at 7.8 labels per document.

The synthetic store is generated once into a cache folder (default ``/tmp/lcr-bench``) and reused
while its settings match. Each run starts a fresh interpreter (``python -c`` calling
``lcr.labels.prepare``), so the figures include interpreter start-up and imports, as a user
running ``lcr prepare`` would see; the peak RSS is the child's, read with
``resource.getrusage(RUSAGE_CHILDREN)``.

Usage::

    python -m bench.bench_prepare [--cache /tmp/lcr-bench] [--repeat 3] [--no-report]

Exits with status 1 when a target is missed. Rewrites the ``prepare`` section of
``bench/BENCHMARKS.md`` unless ``--no-report``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import report
from bench.synthetic import SHAPES, generate_store

REPO = Path(__file__).resolve().parents[1]
COMMAND = "python -m bench.bench_prepare"
TIME_LIMIT_S = 60.0
RSS_LIMIT_BYTES = 3 * 10**9

_CHILD = """
import json, sys, time
from lcr.labels import prepare
start = time.perf_counter()
artifacts = prepare(sys.argv[1], show_progress=False)
print(json.dumps({"seconds": time.perf_counter() - start, "nnz": int(artifacts.cooc.nnz),
                  "n_head": artifacts.n_head, "sizes": artifacts.subset_sizes}))
"""


def _ensure_store(cache: Path, shape_name: str, seed: int) -> tuple[Path, float | None]:
    """The synthetic store, generated unless a matching one is cached; (folder, seconds or None)."""
    folder = cache / f"{shape_name}-synthetic-seed{seed}"
    stats_path = folder / "stats.json"
    shape = SHAPES[shape_name]
    if stats_path.exists():
        cached = json.loads(stats_path.read_text(encoding="utf-8")).get("synthetic", {})
        expected = {"n_train": shape.n_train, "n_labels": shape.n_labels, "mean_labels": shape.mean_labels,
                    "n_dev": shape.n_dev, "n_test": shape.n_test, "seed": seed}
        if all(cached.get(key) == value for key, value in expected.items()):
            return folder, None
    start = time.perf_counter()
    generate_store(folder, shape, seed=seed)
    return folder, time.perf_counter() - start


def _peak_rss_children() -> int:
    """Largest peak RSS of the waited-for children so far, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports kilobytes


def run_once(dataset_dir: Path) -> dict:
    """One ``prepare`` in a child interpreter: wall-clock seconds and the child's report."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, str(dataset_dir)], cwd=REPO, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"prepare failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    child = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, **child}


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def markdown(shape_name: str, store_dir: Path, runs: list[dict], peak_rss: int, generated_s: float | None) -> str:
    """The ``prepare`` section of BENCHMARKS.md."""
    shape = SHAPES[shape_name]
    stats = json.loads((store_dir / "stats.json").read_text(encoding="utf-8"))
    walls = [r["wall_s"] for r in runs]
    inner = [r["seconds"] for r in runs]
    worst = max(walls)
    ok_time, ok_rss = worst < TIME_LIMIT_S, peak_rss < RSS_LIMIT_BYTES
    last = runs[-1]
    sizes = "; ".join(f"{split}: {s['documents']:,} docs, head {s['head']:,}, tail {s['tail']:,}"
                      for split, s in last["sizes"].items())
    generated = f" (generated in {generated_s:.1f} s)" if generated_s is not None else " (cached)"
    lines = [
        "## `lcr.labels.prepare` on a PubMed-shaped store",
        "",
        f"- Command: `{COMMAND}` ({len(runs)} runs, each a fresh `python -c` child)",
        f"- Date: {report.today()}",
        f"- Machine: {report.machine()}",
        f"- Data: `bench.synthetic` shape `{shape_name}`{generated}: {shape.n_train:,} / {shape.n_dev:,} / "
        f"{shape.n_test:,} train/dev/test docs, {shape.n_labels:,} labels, "
        f"{stats['splits']['train']['avg_labels']:.2f} labels/doc (train); "
        f"store {_size(store_dir / 'train.parquet') / 2**20:.0f} MiB train.parquet",
        f"- Output: co-occurrence nnz {last['nnz']:,}, {last['n_head']:,} head labels; {sizes}; "
        f"`labels/` {_size(store_dir / 'labels') / 2**20:.0f} MiB",
        "",
        "| figure | measured | target | |",
        "|---|---:|---:|---|",
        f"| wall-clock, worst of {len(runs)} (incl. interpreter start-up) | {worst:.1f} s | < {TIME_LIMIT_S:.0f} s "
        f"| {'ok' if ok_time else 'MISSED'} |",
        f"| wall-clock, median | {statistics.median(walls):.1f} s | | |",
        f"| inside `prepare()` (imports excluded), median | {statistics.median(inner):.1f} s | | |",
        f"| peak RSS of the child (max over runs) | {peak_rss / 1e9:.2f} GB | < {RSS_LIMIT_BYTES / 1e9:.0f} GB "
        f"| {'ok' if ok_rss else 'MISSED'} |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when both targets are met, 1 otherwise."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lcr-bench"), help="folder for the synthetic store")
    parser.add_argument("--shape", default="pubmed", choices=sorted(SHAPES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="number of timed runs")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite bench/BENCHMARKS.md")
    args = parser.parse_args(argv)

    store_dir, generated_s = _ensure_store(args.cache, args.shape, args.seed)
    if generated_s is not None:
        print(f"generated {store_dir} in {generated_s:.1f} s", file=sys.stderr)
    runs = []
    for index in range(max(args.repeat, 1)):
        runs.append(run_once(store_dir))
        print(f"run {index + 1}: {runs[-1]['wall_s']:.1f} s wall, {runs[-1]['seconds']:.1f} s in prepare()",
              file=sys.stderr)
    peak_rss = _peak_rss_children()
    text = markdown(args.shape, store_dir, runs, peak_rss, generated_s)
    print(text)
    if not args.no_report and args.shape == "pubmed":
        report.update_section("prepare", text)
    ok = max(r["wall_s"] for r in runs) < TIME_LIMIT_S and peak_rss < RSS_LIMIT_BYTES
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
