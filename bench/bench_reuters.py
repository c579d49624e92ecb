"""Model quality on a real corpus: LabelCoRank against its baselines, every run under one budget.

Trains each variant (default ``labelcorank`` and ``roberta``; any of ``lcr train``'s variants) for
each seed on Reuters-21578 (or AAPD with its val split standing in for train, a held-out part of
it as dev) with the same encoder, sequence length, batch, epochs and seed, each run a tracked
MLflow run through :func:`lcr.jobs.train_job` with the settings of ``params.yaml`` (the training
recipe: encoder ``lr``, ``head_lr``, bias and pooler initialisation, pooling, schedule, first-stage
warm-up; a baseline's own ``baselines`` block) and the options given here. It writes

* a section of ``bench/RESULTS.md`` (test metrics per run, the mean over seeds, and for the
  LabelCoRank family the first prediction S1 and the label sequence S: gold coverage, distinct
  share, mean |S2| and |S3|), and
* the records of ``bench/results/<dataset>-recipe.json`` (one per run, replaced by a rerun of
  the same dataset, variant and seed): ``dataset, variant, seed, subset, P@1, P@3, P@5,
  nDCG@3, nDCG@5, s1_P@1, s1_nDCG@5, s_gold_coverage, s_distinct_share, train_minutes, max_length, epochs,
  train_docs`` (the ``s_`` keys only on LabelCoRank-family rows) plus the commit the run was
  trained at (with ``--reuse``: its MLflow run's git tag, where the store still has it).

Usage::

    python -m bench.bench_reuters [--dataset reuters21578] [--variants labelcorank roberta] [--seeds 0 1]
                                  [--epochs 2] [--max-length 64] [--set key=value ...] [--reuse]

``--reuse`` rewrites the reports from the runs already in ``--runs-dir`` (same settings) instead
of training. Needs the dataset fetched and prepared (``lcr fetch``/``lcr prepare``, or ``make demo``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import report
from lcr.config import VARIANTS as CONFIG_VARIANTS
from lcr.models.variants import LABELCORANK_FAMILY

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "RESULTS.md"
RECORDS_DIR = REPO / "bench" / "results"
RECORD_NAMES = {"reuters21578": "reuters"}
VARIANTS = ("labelcorank", "roberta")
FAMILY = LABELCORANK_FAMILY
COLUMNS = ("P@1", "P@3", "P@5", "nDCG@3", "nDCG@5")
# Settings of the selection and the second stage, with their project defaults (the extensions off,
# params.yaml's final head): a record names those a run set otherwise, and a run with another value
# of one of them is another recipe (kept beside, not replacing).
SECOND_STAGE = {"selection": "threshold", "fill_to_gamma": False, "final_head": "per_label", "detach_first": False, "query_confidence": False, "rank_loss_weight": 0.0, "rerank_noise": 0.0, "rerank_swap": 0.0, "rerank_focal": 0.0, "rerank_epochs": 0, "first_temperature": 1.0, "label_init": "random",
                "final_blend": 0.0, "label_interaction_layers": 0, "cross_fit_folds": 0,
                "label_attention": "head", "reader_weights": "shared", "reader_lr": None,
                "reader_keys": "encoder", "first_in_training": "current",
                "reader_text_grad": True, "separate_stages": False}
# The LabelCoRank settings that tell the family's runs apart (``--set gamma=10`` is another run
# than gamma 20); every record before they were recorded ran at the dataset's params.yaml values.
FAMILY_SETTINGS = ("gamma", "beta", "alpha")
# The learning rates (encoder, new layers): every record names them, and a run at other rates is
# another recipe; records written before they were recorded have none (a rerun of one is kept beside it).
RATES = ("lr", "head_lr")
# Documents per optimiser step: every record names it, and a run at another batch is another recipe;
# records written before it was recorded ran at this default of the script.
BATCH_SIZE = 16
STAGE = ("s1_P@1", "s1_nDCG@5", "s_gold_coverage", "s_distinct_share", "mean_S2", "mean_S3")


def batch_of(record: dict) -> int:
    """The batch size a record (or a run's params, or settings) ran at: :data:`BATCH_SIZE` when it names none."""
    return record.get("batch_size", BATCH_SIZE)


def _settings(args: argparse.Namespace) -> dict:
    """``--set key=value`` as YAML values, plus this benchmark's own budget options."""
    from lcr.config import parse_settings

    values = parse_settings(args.set)
    # patience and the cap are set as given (None: no early stopping, every training document)
    values.setdefault("patience", None)
    values.setdefault("max_train_docs", args.max_train_docs)
    return values


def _params(config, args: argparse.Namespace, variant: str, seed: int):
    return config.train(args.dataset, settings=_settings(args), variant=variant, epochs=args.epochs,
                        max_length=args.max_length, batch_size=args.batch_size, seed=seed, device="cpu",
                        checkpoint_every=200)


def run(args: argparse.Namespace) -> list[dict]:
    """Train and evaluate each variant for each seed; returns one result per run."""
    from lcr.config import load_params
    from lcr.jobs import train_job

    config = load_params()
    results = []
    for seed in args.seeds:
        for variant in args.variants:
            params = _params(config, args, variant, seed)
            start = time.time()
            result = train_job(args.dataset, params, data_dir=args.data_dir, runs_dir=args.runs_dir,
                               progress=sys.stderr.isatty())
            result["wall_seconds"] = round(time.time() - start, 1)
            results.append(_with_settings(result, params))
            print(f"{variant} seed {seed}: {json.dumps(result['eval']['full'])}", file=sys.stderr, flush=True)
    return results


def _with_settings(result: dict, params) -> dict:
    result["params"] = {k: getattr(params, k) for k in (
        "variant", "seed", "gamma", "beta", "alpha", "lr", "head_lr", "pooling", "schedule", "warmup_ratio",
        "first_stage_steps", "bias_init", "pooler_init", "weight_decay", "max_length", "epochs",
        "max_train_docs", "summary_tokens", "batch_size", *SECOND_STAGE)}
    result["params"]["pooling"] = params.resolved_pooling
    return result


def reuse(args: argparse.Namespace) -> list[dict]:
    """The results of earlier runs of this script (same settings) from their metrics.json."""
    from lcr.config import load_params
    from lcr.jobs import run_dir

    config = load_params()
    results = []
    for seed in args.seeds:
        for variant in args.variants:
            params = _params(config, args, variant, seed)
            folder = run_dir(args.runs_dir, args.dataset, params)
            result = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
            tracked = tracked_run(folder)
            if tracked["run_id"]:
                result.update(tracked)
            result["output_dir"] = str(folder)
            results.append(_with_settings(result, params))
    return results


def tracked_run(folder: Path) -> dict:
    """A run folder's MLflow run: ``{"run_id", "commit"}`` (the commit it was trained at, see
    :func:`trained_commit`); both None for a folder without ``mlflow_run.json``."""
    run_file = folder / "mlflow_run.json"
    if not run_file.exists():
        return {"run_id": None, "commit": None}
    run_info = json.loads(run_file.read_text(encoding="utf-8"))
    return {"run_id": run_info["run_id"], "commit": trained_commit(run_info)}


def trained_commit(run_info: dict) -> str | None:
    """The commit a reused run was trained at (short form): the ``mlflow.source.git.commit`` tag
    of its MLflow run, read from the store named in its ``mlflow_run.json``; None when that store
    file or the run is gone (the report then names only the commit it was written at)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = run_info.get("tracking_uri") or ""
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        return None  # opening a missing sqlite store would create an empty one
    try:
        tags = mlflow.MlflowClient(tracking_uri=uri).get_run(run_info["run_id"]).data.tags
    except (MlflowException, OSError, KeyError):
        return None
    sha = tags.get("mlflow.source.git.commit")
    return sha[:7] if sha and sha != "unknown" else None


def _train_docs(args: argparse.Namespace) -> int:
    from lcr.datasets import store

    n = store.split_length(args.data_dir / args.dataset, "train")
    return n if args.max_train_docs is None else min(n, args.max_train_docs)


def commit() -> str:
    """The checked-out commit (with ``+dirty`` when the tree has uncommitted changes other than
    the reports this script writes, so that rewriting two sections in a row stays clean)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!bench/RESULTS.md", ":!bench/results"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def records(results: list[dict], args: argparse.Namespace, revision: str) -> list[dict]:
    """One record per run (the ``full`` subset), as ``bench/results/<dataset>-recipe.json`` keeps them."""
    out = []
    train_docs = _train_docs(args)
    for result in results:
        full, p = result["eval"]["full"], result["params"]
        record = {"dataset": args.dataset, "variant": p["variant"], "seed": p["seed"], "subset": "full",
                  **{c: full[c] for c in COLUMNS}}
        if p["variant"] in FAMILY:
            record.update({k: full.get(k) for k in ("s1_P@1", "s1_nDCG@5", "s_gold_coverage", "s_distinct_share")})
            record.update({k: p[k] for k in FAMILY_SETTINGS})
        record.update(train_minutes=round(result["train_seconds"] / 60, 2), max_length=p["max_length"],
                      epochs=p["epochs"], schedule=p["schedule"], summary_tokens=p.get("summary_tokens", 1),
                      batch_size=batch_of(p),
                      **{k: p[k] for k in RATES if k in p},
                      **{k: p[k] for k, off in SECOND_STAGE.items() if p.get(k, off) != off},
                      train_docs=train_docs, commit=result.get("commit") or revision,
                      run_id=result.get("run_id"))
        out.append(record)
    return out


def records_path(dataset: str) -> Path:
    """``bench/results/reuters-recipe.json`` for Reuters-21578, ``<dataset>-recipe.json`` otherwise."""
    return RECORDS_DIR / f"{RECORD_NAMES.get(dataset, dataset)}-recipe.json"


def write_records(new: list[dict], path: Path) -> list[dict]:
    """Merge ``new`` into the records file.

    A rerun under the same budget and recipe (dataset, variant, seed, epochs, tokens, schedule,
    summary tokens, the batch size, the learning rates (:data:`RATES`), the :data:`SECOND_STAGE` settings, and on the LabelCoRank family's records
    the :data:`FAMILY_SETTINGS`) replaces its record; any other run is
    added beside it (records written before the schedule or the summary tokens were recorded ran
    at the constant rate, with one summary token; before the second-stage settings, with them off).
    """
    key = lambda r: (r["dataset"], r["variant"], r["seed"], r["epochs"], r["max_length"],  # noqa: E731
                     r.get("schedule", "constant"), r.get("summary_tokens", 1), batch_of(r),
                     *(r.get(k) for k in RATES),
                     *(r.get(k, off) for k, off in SECOND_STAGE.items()), *(r.get(k) for k in FAMILY_SETTINGS))
    return merge_records(path, new, key)


def merge_records(path: Path, new: list[dict], key) -> list[dict]:
    """Write ``new`` into the JSON list of records at ``path`` (atomically), replacing the old records
    whose ``key(record)`` one of them has; returns the merged list."""
    from lcr.atomic import atomic_open

    old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    replaced = {key(r) for r in new}
    merged = [r for r in old if key(r) not in replaced] + new
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(merged, handle, indent=2)
    return merged


def _mean_rows(results: list[dict]) -> list[tuple[str, dict, int]]:
    """Per variant (in first-seen order): the mean of its runs' full metrics and the run count."""
    by_variant: dict[str, list[dict]] = {}
    for result in results:
        by_variant.setdefault(result["params"]["variant"], []).append(result["eval"]["full"])
    return [(variant, {c: statistics.fmean(r[c] for r in runs) for c in COLUMNS + STAGE if all(c in r for r in runs)},
             len(runs)) for variant, runs in by_variant.items()]


def _commit_line(results: list[dict], revision: str) -> str:
    """The commit of a section: the one the runs were trained at, and the one that wrote it when they differ."""
    trained = list(dict.fromkeys(r["commit"] for r in results if r.get("commit")))
    if not trained or trained == [revision]:
        return revision
    return f"runs trained at {', '.join(trained)}; section written at {revision}"


def markdown(results: list[dict], args: argparse.Namespace, command: str, revision: str) -> str:
    """The benchmark's section of RESULTS.md."""
    variants = list(dict.fromkeys(r["params"]["variant"] for r in results))
    first = next((r["params"] for r in results if r["params"]["variant"] in FAMILY), results[0]["params"])
    rates = ", ".join(dict.fromkeys(f"{r['params']['variant']} {r['params']['lr']:g}"
                                    + (f"/{r['params']['head_lr']:g}" if r["params"]["head_lr"] else "")
                                    for r in results if r["params"]["variant"] != "tfidf"))
    name = "Reuters-21578 (ModApte, 90 labels)" if args.dataset == "reuters21578" else args.dataset
    lines = [
        f"## {name}: {', '.join(f'`{v}`' for v in variants)}, same budget",
        "",
        (f"- Trained by: {'; '.join(f'`{c}`' for c in args.trained_with)}" if args.reuse and args.trained_with
         else "- Trained by: earlier runs of this script with the same settings" if args.reuse
         else f"- Command: `{command}`"),
        *([f"- This section was rewritten from their saved results by `{command}`"] if args.reuse else []),
        f"- Commit: {_commit_line(results, revision)}; date: {report.today()}",
        f"- Machine: {report.machine()}",
        f"- Budget: encoder offline-default (all-MiniLM-L6-v2), max_length {args.max_length}, batch {args.batch_size}, "
        f"{args.epochs} epochs, train docs {_train_docs(args):,}, seeds {', '.join(map(str, args.seeds))}; "
        f"learning rates (encoder/head) {rates} (word-level baselines and tfidf: params.yaml's `baselines` block)",
        f"- Recipe: pooling {first['pooling']}, bias_init {first['bias_init']}, pooler_init {first['pooler_init']}, "
        f"weight_decay {first['weight_decay']}, schedule {first['schedule']} (warmup_ratio {first['warmup_ratio']}), "
        f"first_stage_steps {first['first_stage_steps']}, summary_tokens {first.get('summary_tokens', 1)}, "
        + ", ".join(f"{k} {first.get(k, off)}" for k, off in SECOND_STAGE.items()) + "; "
        f"LabelCoRank gamma {first['gamma']}, beta {first['beta']}, "
        f"alpha {first['alpha']}",
        *([f"- Extra settings: {', '.join(f'`{s}`' for s in args.set)}"] if args.set else []),
        "- Best epoch chosen on dev nDCG@5; metrics on the test split. S1 = the first prediction scored like "
        "the final; S = the label sequence that the reranking stage attends with.",
        "",
        "| variant | seed | P@1 | P@3 | P@5 | nDCG@3 | nDCG@5 | S1 P@1 | S1 nDCG@5 | gold in S | S differs "
        "| mean \\|S2\\| | mean \\|S3\\| | train time |",
        "|---|---:|" + "---:|" * 12,
    ]

    def cells(values: dict) -> str:
        main = " | ".join(f"{values[c]:.4f}" for c in COLUMNS)
        stage = " | ".join((f"{values[c]:.1%}" if c.startswith("s_") else f"{values[c]:.2f}" if c.startswith("mean")
                            else f"{values[c]:.4f}") if c in values else "-" for c in STAGE)
        return f"{main} | {stage}"

    for result in results:
        p = result["params"]
        lines.append(f"| {p['variant']} | {p['seed']} | {cells(result['eval']['full'])} | "
                     f"{result['train_seconds'] / 60:.1f} min |")
    if len(args.seeds) > 1:
        for variant, values, count in _mean_rows(results):
            lines.append(f"| **{variant}** | mean of {count} | {cells(values)} | |")
    lines.append("")
    lines.append("MLflow runs: " + ", ".join(f"{r['params']['variant']} s{r['params']['seed']} `{r.get('run_id')}`"
                                             for r in results))
    for result in results:
        if result.get("history"):
            curve = ", ".join(f"epoch {h['epoch']}: {h.get('nDCG@5', float('nan')):.4f}"
                              + (f" (S1 {h['s1_nDCG@5']:.4f})" if "s1_nDCG@5" in h else "") for h in result["history"])
            lines.append(f"\n{result['params']['variant']} seed {result['params']['seed']} dev nDCG@5 per epoch: {curve}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Train (or reuse) the runs and rewrite the benchmark's section and records."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_reuters", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="reuters21578")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--max-train-docs", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=CONFIG_VARIANTS)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a training setting for every run (YAML value), as `lcr train --set`")
    parser.add_argument("--trained-with", action="append", default=[],
                        help="with --reuse: a command that trained some of the runs (repeatable; shown in the section)")
    parser.add_argument("--section", default=None, help="the section of bench/RESULTS.md to rewrite "
                        "(default: <dataset>-recipe)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--runs-dir", type=Path, default=Path("runs-bench"))
    parser.add_argument("--no-report", action="store_true", help="write neither bench/RESULTS.md nor the records")
    parser.add_argument("--reuse", action="store_true",
                        help="report the finished runs in --runs-dir (same settings) instead of training again")
    args = parser.parse_args(argv)
    command = report.command_line("python -m bench.bench_reuters", argv).strip()
    revision = commit()
    results = reuse(args) if args.reuse else run(args)
    text = markdown(results, args, command, revision)
    print(text)
    if not args.no_report:
        header = ("# Results\n\nModel quality measured by the scripts in `bench/`; each section names the "
                  "command that produced it and is rewritten by that command.\n")
        if not RESULTS.exists():
            RESULTS.write_text(header, encoding="utf-8")
        report.update_section(args.section or f"{args.dataset}-recipe", text, RESULTS)
        write_records(records(results, args, revision), records_path(args.dataset))
    return 0


if __name__ == "__main__":
    sys.exit(main())
