"""Run every benchmark in ``bench/`` and rewrite ``bench/BENCHMARKS.md`` with their figures.

Each benchmark runs as ``python -m bench.NAME`` in its own interpreter, one after another, so
that the peak-memory figures of one are not inflated by another; each rewrites its own section
of ``bench/BENCHMARKS.md`` (with its exact command, the date and the machine). At the end this
script writes the ``machine`` section (CPU model, cores, memory, OS, Python and package
versions, the date, its own command and the command, status and time of every benchmark it
ran), prints a summary table and exits with status 1 when any benchmark failed (a missed
target counts as a failure: every benchmark exits 1 on one). A benchmark whose module does not
exist (yet) is skipped with a message and does not fail the run.

Usage::

    python -m bench.run_all                      # everything, rewrites BENCHMARKS.md
    python -m bench.run_all --only bench_evaluation bench_step_memory
    python -m bench.run_all --quick              # smoke runs; BENCHMARKS.md untouched
    python -m bench.run_all --list               # the benchmark names

``--quick`` passes each benchmark's small-run flags (``--quick --no-report`` where it has them;
``bench_prepare`` gets the tiny shape and one run, ``gpu_estimate`` writes to a temporary file)
and writes no ``machine`` section, so nothing in ``bench/BENCHMARKS.md`` changes.

Expected time on this project's machine (2 CPU cores, AMD EPYC, 23.5 GiB; measured or estimated
from the individual runs while other jobs shared the cores): a full run takes about 25-35
minutes: ``bench_prepare`` ~1 min (plus ~0.5 min to generate the PubMed-shaped store the
first time), ``bench_selection`` ~1.5 min, ``bench_train_step`` ~5 min, ``bench_serving``
~5-6 min (it starts ``mlflow models serve`` and sends 400 requests), ``gpu_estimate`` seconds,
``bench_tokenize`` and ``bench_loader_memory`` a few minutes each (they tokenise tens to
hundreds of thousands of documents), ``bench_evaluation`` ~1 min (measured 36-56 s) and
``bench_step_memory`` ~1-2 min (measured 62-101 s; peak RSS 11.2 GiB with the faithful W5).
``--quick`` takes about 3-5 minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from bench import report

REPO = Path(__file__).resolve().parents[1]
COMMAND = "python -m bench.run_all"
QUICK_NO_REPORT = ("--quick", "--no-report")
OUTPUT = "{output}"  # replaced by a temporary file in quick mode


@dataclass(frozen=True)
class Benchmark:
    """One benchmark module of ``bench/`` and how to call it.

    Attributes:
        name: the module, ``bench.<name>``.
        section: its section of BENCHMARKS.md.
        what: one line for ``--list``.
        quick: the arguments of a small run that writes nothing to BENCHMARKS.md.
        full: the arguments of the real run (usually none: the defaults are the benchmark).
    """

    name: str
    section: str
    what: str
    quick: tuple[str, ...] = QUICK_NO_REPORT
    full: tuple[str, ...] = field(default_factory=tuple)


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("bench_prepare", "prepare", "lcr.labels.prepare on a PubMed-shaped store (time, peak RSS)",
              quick=("--shape", "tiny", "--repeat", "1", "--no-report")),
    Benchmark("bench_selection", "selection", "label selection (eqs. 9-11) at K = 17,963 vs per-document loops"),
    Benchmark("bench_train_step", "train-step", "one training step, LabelCoRank vs the baseline (time, memory)"),
    Benchmark("bench_serving", "serving", "mlflow models serve vs the bare encoder (needs mlflow; minutes)",
              quick=("--quick",)),
    Benchmark("gpu_estimate", "gpu-readiness", "one PubMed epoch on a GPU, on paper (FLOPs arithmetic)",
              quick=("--output", OUTPUT)),
    Benchmark("bench_tokenize", "tokenize", "token cache build vs the raw fast tokenizer"),
    Benchmark("bench_loader_memory", "loader-memory", "data loading memory of an epoch vs the number of documents"),
    Benchmark("bench_evaluation", "evaluation", "evaluation of 89,855 x 17,963: top-k per batch vs per-document loops"),
    Benchmark("bench_step_memory", "step-memory", "one step at K = 17,963, gamma = 30: peak RSS, faithful vs low-rank W5"),
    Benchmark("bench_tfidf", "tfidf-fit", "the TF-IDF baseline's fit vs one-vs-rest LogisticRegression (needs data/reuters21578)"),
    Benchmark("bench_label_baselines_memory", "label-baselines-memory",
              "RoBERTa-LiGCN and GUDN: one step's memory at small K, extrapolated to PubMed's K"),
    Benchmark("bench_variants", "variants-reuters21578",
              "every variant a few hundred steps on all of Reuters (time, peak RSS; needs data/reuters21578; ~45 min)",
              quick=("--steps", "2", "--variants", "xml-cnn", "tfidf", "--runs-dir", OUTPUT, "--no-report")),
)
NAMES = tuple(b.name for b in BENCHMARKS)


def exists(benchmark: Benchmark) -> bool:
    """Whether ``bench/<name>.py`` is there."""
    return (REPO / "bench" / f"{benchmark.name}.py").is_file()


def arguments(benchmark: Benchmark, quick: bool, scratch: Path) -> list[str]:
    """The command-line arguments for one benchmark."""
    args = benchmark.quick if quick else benchmark.full
    return [str(scratch / f"{benchmark.name}.md") if a == OUTPUT else a for a in args]


def run_one(benchmark: Benchmark, args: list[str]) -> dict:
    """Run ``python -m bench.<name> ARGS`` in a fresh interpreter, its output passed through."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")  # interleave the children's output in order
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", f"bench.{benchmark.name}", *args], cwd=REPO, env=env)
    seconds = time.perf_counter() - start
    if done.returncode == 0:
        status = "ok"
    elif done.returncode < 0 or done.returncode == 137:
        status = f"FAILED (killed, signal {-done.returncode if done.returncode < 0 else 9})"
    else:
        status = f"FAILED (exit {done.returncode})"
    return {"status": status, "seconds": seconds, "returncode": done.returncode}


# --------------------------------------------------------------------------------------------
# The machine section


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_markdown(command: str, rows: list[tuple[Benchmark, str, dict]]) -> str:
    """The ``machine`` section: the machine, the software and what ran."""
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    memory = report.memory_bytes()
    lines = [
        "## Machine and commands",
        "",
        f"- Command: `{command}` (every benchmark in its own interpreter, one after another; each section "
        "below names its own command)",
        f"- Date: {report.today()}",
        f"- CPU: {_cpu_model()}, {cores} logical CPUs" + (f" ({usable} usable)" if usable != cores else ""),
        f"- Memory: {memory / 2**30:.1f} GiB" if memory else "- Memory: unknown",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()}; torch {_version('torch')}, transformers {_version('transformers')}, "
        f"numpy {_version('numpy')}, scipy {_version('scipy')}, mlflow {_version('mlflow')}",
        "",
        "| benchmark | section | command | status | time |",
        "|---|---|---|---|---:|",
    ]
    for benchmark, cmd, result in rows:
        seconds = f"{result['seconds']:,.0f} s" if "seconds" in result else ""
        lines.append(f"| `{benchmark.name}` | `{benchmark.section}` | `{cmd}` | {result['status']} | {seconds} |")
    return "\n".join(lines)


def write_machine_section(text: str, path: Path = report.BENCHMARKS) -> None:
    """Rewrite the ``machine`` section; a new one goes right after the file's header."""
    if path.exists():
        content = path.read_text(encoding="utf-8")
        if "<!-- begin machine -->" not in content:
            first = content.find("<!-- begin ")
            if first >= 0:  # put the empty markers before the first section; update_section fills them
                content = content[:first] + "<!-- begin machine -->\n<!-- end machine -->\n\n" + content[first:]
                from lcr.atomic import atomic_open

                with atomic_open(path, "w", encoding="utf-8") as handle:
                    handle.write(content)
    report.update_section("machine", text, path)


# --------------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; 0 when none failed, 1 otherwise."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small smoke runs of each benchmark; bench/BENCHMARKS.md is not modified")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=NAMES, help="run only these benchmarks")
    parser.add_argument("--list", action="store_true", help="print the benchmark names and exit")
    args = parser.parse_args(argv)
    if args.list:
        width = max(len(name) for name in NAMES)
        for benchmark in BENCHMARKS:
            missing = "" if exists(benchmark) else "  (module not found: skipped)"
            print(f"{benchmark.name:<{width}}  {benchmark.what}{missing}")
        return 0

    command = report.command_line(COMMAND, argv)
    selected = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    rows: list[tuple[Benchmark, str, dict]] = []
    total_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lcr-bench-run-all-") as scratch:
        for index, benchmark in enumerate(selected, 1):
            bench_args = arguments(benchmark, args.quick, Path(scratch))
            cmd = " ".join(["python -m bench." + benchmark.name, shlex.join(bench_args)]).strip()
            # A temporary --output path means nothing after the run: show it as such.
            shown = re.sub(re.escape(scratch) + r"/\S+", "<temporary file>", cmd)
            if not exists(benchmark):
                print(f"[{index}/{len(selected)}] {benchmark.name}: bench/{benchmark.name}.py not found: skipped",
                      flush=True)
                rows.append((benchmark, shown, {"status": "skipped (module not found)"}))
                continue
            print(f"[{index}/{len(selected)}] {benchmark.name}: {shown}", flush=True)
            result = run_one(benchmark, bench_args)
            print(f"[{index}/{len(selected)}] {benchmark.name}: {result['status']} in {result['seconds']:,.1f} s "
                  f"(total so far {time.perf_counter() - total_start:,.0f} s)", flush=True)
            rows.append((benchmark, shown, result))
    total = time.perf_counter() - total_start

    width = max(len(b.name) for b, _, _ in rows) if rows else 4
    print(f"\n{'benchmark':<{width}}  {'status':<32}  {'seconds':>8}")
    for benchmark, _, result in rows:
        seconds = f"{result['seconds']:8.1f}" if "seconds" in result else f"{'':>8}"
        print(f"{benchmark.name:<{width}}  {result['status']:<32}  {seconds}")
    print(f"{'total':<{width}}  {'':<32}  {total:8.1f}")
    if not args.quick:
        write_machine_section(machine_markdown(command, rows))
        print(f"wrote {report.BENCHMARKS}")
    failed = [b.name for b, _, r in rows if r["status"].startswith("FAILED")]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
