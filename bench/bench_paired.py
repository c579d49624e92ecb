"""Is a variant's gain over another more than the test split's luck? Paired bootstrap of trained runs.

For each ``--pair BASELINE_RUN CANDIDATE_RUN`` (run folders that ``python -m bench.bench_reuters``
trained, usually the same seed of two variants; ``RUN+RUN`` on either side stands for the ensemble of
those runs, their test predictions averaged by :func:`lcr.report.evaluation.ensemble_prediction_files`,
the ``lcr ensemble`` command) this script scores both runs' saved test
predictions (``predictions-test.jsonl``) on the same documents with :func:`lcr.report.evaluation.
compare_prediction_files` (the ``lcr compare`` command): candidate minus baseline on P@1, P@3, P@5,
nDCG@3 and nDCG@5, with a 95% paired bootstrap interval over the test documents and the share of
resamples in which the candidate is not ahead (a one-sided p-value). With several pairs it adds
the pooled comparison: each side's runs averaged per document, then resampled, so that the
interval covers the test split's luck of an average over seeds (the seeds' own spread shows in
the per-seed rows).

Usage::

    python -m bench.bench_paired --pair RUNS/roberta-s0 RUNS/labelcorank-s0 [--pair ...]
                                 [--resamples 2000] [--section reuters21578-paired] [--no-report]

It writes a section of ``bench/RESULTS.md`` and ``bench/results/<dataset>-paired.json`` (one record
per comparison (a seed, or ``pooled``) and metric: dataset, seeds, metric, the two variants, their
means, difference, low, high, p_not_better, better, worse, resamples, confidence, and each side's
MLflow run ids and training commits; comparing the same runs again replaces their records).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench import report
from bench.bench_reuters import COLUMNS, RECORD_NAMES, RECORDS_DIR, RESULTS, commit, merge_records, tracked_run

PREDICTIONS = "predictions-test.jsonl"


def run_info(folder: Path) -> dict:
    """A run folder's settings, test predictions, MLflow run id and training commit."""
    from lcr.errors import LcrError

    config = folder / "config.json"
    if not config.is_file():
        raise LcrError(f"{folder}: not a run folder (no config.json)")
    settings = json.loads(config.read_text(encoding="utf-8"))
    return {"folder": folder, "settings": settings, "predictions": folder / PREDICTIONS, **tracked_run(folder)}


def side_info(spec: str | Path, workdir: Path) -> dict:
    """One side of a pair: a run folder, or run folders joined by ``+``: their ensemble, the test
    predictions averaged into one file in ``workdir`` (:func:`lcr.report.evaluation.ensemble_prediction_files`)."""
    from lcr.report.evaluation import ensemble_prediction_files

    parts = [Path(part) for part in str(spec).split("+")]
    if len(parts) == 1:
        return run_info(parts[0])
    members = [run_info(part) for part in parts]
    output = workdir / f"ensemble-{len(list(workdir.iterdir()))}.jsonl"
    ensemble_prediction_files([m["predictions"] for m in members], output)
    settings = {**members[0]["settings"], "variant": f"{_variant(members)} x{len(members)}",
                "seed": "+".join(str(m["settings"]["seed"]) for m in members)}
    return {"folder": "+".join(str(part) for part in parts), "settings": settings, "predictions": output,
            "run_id": "+".join(m["run_id"] or str(m["folder"]) for m in members),
            "commit": "+".join(m["commit"] or "?" for m in members)}


def comparisons(pairs: list[tuple[dict, dict]], *, data_dir: Path, resamples: int, seed: int = 0) -> list[dict]:
    """One comparison per pair, and the pooled one when there are several pairs.

    Returns:
        ``{"label", "baseline": [run info], "candidate": [run info], "metrics": {...}}`` per
        comparison; ``label`` is the seed (``s0``) or ``pooled``.
    """
    from lcr.errors import LcrError
    from lcr.report.evaluation import compare_prediction_files

    datasets = {info["settings"]["dataset"] for pair in pairs for info in pair}
    if len(datasets) != 1:
        raise LcrError(f"the pairs come from more than one dataset: {', '.join(sorted(datasets))}")
    gold = f"{datasets.pop()}:test"
    groups = [(f"s{base['settings']['seed']}" if base["settings"]["seed"] == cand["settings"]["seed"]
               else f"s{base['settings']['seed']}/s{cand['settings']['seed']}", [base], [cand]) for base, cand in pairs]
    if len(pairs) > 1:
        groups.append(("pooled", [base for base, _ in pairs], [cand for _, cand in pairs]))
    out = []
    for label, baseline, candidate in groups:
        result = compare_prediction_files(gold, [r["predictions"] for r in baseline],
                                          [r["predictions"] for r in candidate], data_dir=data_dir,
                                          resamples=resamples, seed=seed)
        out.append({"label": label, "baseline": baseline, "candidate": candidate, "metrics": result["metrics"]})
        print(json.dumps({"comparison": label, "nDCG@5": result["metrics"]["nDCG@5"]}), file=sys.stderr, flush=True)
    return out


def _variant(runs: list[dict]) -> str:
    return "/".join(dict.fromkeys(r["settings"]["variant"] for r in runs))


def markdown(results: list[dict], command: str, revision: str, resamples: int) -> str:
    """The script's section of RESULTS.md."""
    first = results[0]
    settings = first["baseline"][0]["settings"]
    runs = [r for c in results if c["label"] != "pooled" for r in c["baseline"] + c["candidate"]]
    lines = [
        *report.rescored_header(f"{settings['dataset']}: `{_variant(first['candidate'])}` against "
                                f"`{_variant(first['baseline'])}`, paired bootstrap over the test documents",
                                command, runs, revision, action="compared"),
        f"- Runs: {', '.join('`' + str(r['folder']) + '`' for r in runs)}",
        f"- Each row: candidate minus baseline in points (x 100) over the {first['metrics']['P@1']['n_docs']:,} test "
        f"documents; 95% percentile interval of {resamples:,} resamples of the documents (both models scored on the "
        "same resample); p = share of resamples where the candidate is not ahead (one-sided); better / worse = "
        "documents the candidate scores higher / lower. `pooled`: each side's runs averaged per document first.",
        "",
        "| seed | metric | baseline | candidate | gain (points) | 95% interval | p | better / worse |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for comparison in results:
        for name in COLUMNS:
            m = comparison["metrics"][name]
            lines.append(f"| {comparison['label']} | {name} | {m['baseline']:.4f} | {m['candidate']:.4f} | "
                         f"{100 * m['difference']:+.2f} | [{100 * m['low']:+.2f}, {100 * m['high']:+.2f}] | "
                         f"{m['p_not_better']:.3f} | {m['better']} / {m['worse']} |")
    return "\n".join(lines) + "\n"


def records(results: list[dict]) -> list[dict]:
    """One record per comparison and metric."""
    out = []
    for comparison in results:
        base, cand = comparison["baseline"], comparison["candidate"]
        for name in COLUMNS:
            m = comparison["metrics"][name]
            out.append({"dataset": base[0]["settings"]["dataset"], "comparison": comparison["label"],
                        "seeds": [r["settings"]["seed"] for r in cand], "metric": name,
                        "baseline_variant": _variant(base), "candidate_variant": _variant(cand),
                        **{k: m[k] for k in ("baseline", "candidate", "difference", "low", "high", "p_not_better",
                                             "better", "worse", "resamples", "confidence")},
                        "baseline_runs": [r["run_id"] or str(r["folder"]) for r in base],
                        "candidate_runs": [r["run_id"] or str(r["folder"]) for r in cand],
                        "baseline_commits": [r["commit"] for r in base], "candidate_commits": [r["commit"] for r in cand]})
    return out


def record_key(record: dict) -> tuple:
    """What tells one comparison from another: the runs on each side and the metric."""
    return tuple(record["baseline_runs"]), tuple(record["candidate_runs"]), record["metric"]


def main(argv: list[str] | None = None) -> int:
    """Compare each pair (and the pooled pairs) and rewrite the section and the records."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_paired", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", nargs=2, action="append", required=True,
                        metavar=("BASELINE_RUN", "CANDIDATE_RUN"),
                        help="two run folders (repeatable); RUN+RUN[+...] on either side: their ensemble")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--section", default=None, help="the section of bench/RESULTS.md (default: <dataset>-paired)")
    parser.add_argument("--no-report", action="store_true", help="write neither bench/RESULTS.md nor the records")
    args = parser.parse_args(argv)
    command = report.command_line("python -m bench.bench_paired", argv).strip()
    with tempfile.TemporaryDirectory(prefix="lcr-ensembles-") as workdir:
        pairs = [(side_info(base, Path(workdir)), side_info(cand, Path(workdir))) for base, cand in args.pair]
        results = comparisons(pairs, data_dir=args.data_dir, resamples=args.resamples)
    text = markdown(results, command, commit(), args.resamples)
    print(text)
    if not args.no_report:
        dataset = pairs[0][0]["settings"]["dataset"]
        report.update_section(args.section or f"{dataset}-paired", text, RESULTS)
        # the same runs compared again replace their records
        merge_records(RECORDS_DIR / f"{RECORD_NAMES.get(dataset, dataset)}-paired.json", records(results), record_key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
