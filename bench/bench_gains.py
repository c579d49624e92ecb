"""LabelCoRank against the plain fine-tune, every recipe the benchmark has measured, in one table.

``python -m bench.bench_reuters`` keeps one record per run in ``bench/results/<dataset>-recipe.json``.
This script reads them (no training) and sets each ``labelcorank`` run beside the plain fine-tune
(``roberta``) of the same seed, tokens, epochs, schedule, batch size and encoder learning rate (the
newest such record), with the gain in points on P@1, P@3, P@5, nDCG@3 and nDCG@5, and whether that run meets
issue #13's target for its seed (at least +0.5 point nDCG@3 and nDCG@5, and not below on P@1, P@3
or P@5). A recipe meets the target when its runs at seeds 0 and 1 both do.

Usage::

    python -m bench.bench_gains [--dataset reuters21578] [--section reuters21578-gains] [--no-report]

It rewrites its section of ``bench/RESULTS.md`` and draws ``bench/results/<dataset>-gains.png``:
each run's final nDCG@5 against its own first prediction's (S1), beside each seed's plain fine-tune
and the target, for the tokens and epochs with the most runs that kept S1's nDCG@5.
"""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from bench import report
from bench.bench_blend import reference
from bench.bench_reuters import BATCH_SIZE, COLUMNS, RESULTS, SECOND_STAGE, batch_of, commit, records_path
from lcr.report.plots import plot_first_vs_final

# The settings a run's recipe names when it set them otherwise than params.yaml does for the dataset.
RECIPE_SETTINGS = ("lr", "head_lr", "gamma", "beta", "alpha")
TARGET = 0.005  # +0.5 point nDCG@3 and nDCG@5 over the plain fine-tune, at each seed
NDCG = ("nDCG@3", "nDCG@5")
PRECISION = ("P@1", "P@3", "P@5")


def recipe_defaults(dataset: str) -> dict:
    """params.yaml's values of :data:`RECIPE_SETTINGS` for a dataset's ``labelcorank`` runs."""
    from lcr.config import load_params

    params = load_params().train(dataset, variant="labelcorank")
    return {k: getattr(params, k) for k in RECIPE_SETTINGS}


def recipe(record: dict, defaults: dict) -> str:
    """What a run set otherwise than the recipe (``defaults``, :func:`recipe_defaults`), e.g.
    ``label_attention=encoder_readers``."""
    changed = [f"{k}={record[k]}" for k, off in SECOND_STAGE.items() if record.get(k, off) != off]
    changed += [f"{k}={record[k]:g}" for k, value in defaults.items() if record.get(k, value) != value]
    if batch_of(record) != BATCH_SIZE:
        changed.append(f"batch_size={record['batch_size']}")
    return ", ".join(changed) or "the recipe (label_attention=head)"


def gains(records: list[dict], defaults: dict) -> list[dict]:
    """Each ``labelcorank`` record beside its plain fine-tune, with the gains and the target check.

    Args:
        records: the benchmark's records (``bench/results/<dataset>-recipe.json``).
        defaults: the recipe's settings (:func:`recipe_defaults`); a record without a learning rate
            (written before the rates were kept) ran at the recipe's.

    Returns:
        One row per ``labelcorank`` record that has a plain fine-tune to compare with, ordered by
        tokens, epochs, recipe and seed: ``{"record", "reference", "gain": {metric: points}, "meets"}``.
    """
    rows = []
    for record in records:
        if record["variant"] != "labelcorank" or record.get("summary_tokens", 1) != 1:
            continue
        settings = {**record, "lr": record.get("lr", defaults["lr"]), "schedule": record.get("schedule", "constant")}
        base = reference(record["dataset"], settings)
        if base is None:
            continue
        gain = {c: 100 * (record[c] - base[c]) for c in COLUMNS}
        meets = all(gain[c] >= 100 * TARGET - 1e-9 for c in NDCG) and all(gain[c] >= 0 for c in PRECISION)
        rows.append({"record": record, "reference": base, "gain": gain, "meets": meets,
                     "recipe": recipe(record, defaults)})
    return sorted(rows, key=lambda r: (r["record"]["max_length"], r["record"]["epochs"], r["recipe"], r["record"]["seed"]))


def recipes_meeting(rows: list[dict]) -> list[str]:
    """The recipes (with their tokens and epochs) whose runs at seeds 0 and 1 both meet the target."""
    by_recipe: dict[tuple, dict[int, bool]] = {}
    for row in rows:
        r = row["record"]
        by_recipe.setdefault((r["max_length"], r["epochs"], row["recipe"]), {})[r["seed"]] = row["meets"]
    return [f"{name} ({tokens} tokens, {epochs} epochs)" for (tokens, epochs, name), seeds in by_recipe.items()
            if seeds.get(0) and seeds.get(1)]


def markdown(rows: list[dict], dataset: str, command: str, revision: str) -> str:
    """The script's section of RESULTS.md."""
    met = recipes_meeting(rows)
    lines = [
        f"## {dataset}: `labelcorank` against the plain fine-tune, every recipe measured",
        "",
        f"- Command: `{command}` (reads `{records_path(dataset).relative_to(RESULTS.parent.parent)}`; no training)",
        f"- Written at {revision}; date: {report.today()}",
        "- Each `labelcorank` run beside the newest `roberta` run with the same seed, tokens, epochs, schedule, "
        "batch size and encoder learning rate (its commit named); gains in points (x 100). Recipe: what the run set otherwise than "
        "params.yaml's demo recipe (linear schedule with warm-up 0.1 unless the schedule column says constant). "
        "Target (issue #13), per seed: nDCG@3 and nDCG@5 at least +0.5, P@1, P@3 and P@5 not below.",
        f"- Recipes meeting the target at seeds 0 and 1: {', '.join(met) if met else 'none'}.",
        "",
        "| recipe | tokens | epochs | schedule | seed | nDCG@3 | nDCG@5 | plain nDCG@3 | plain nDCG@5 | gain P@1 | "
        "gain P@3 | gain P@5 | gain nDCG@3 | gain nDCG@5 | target | trained at (plain) |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        r, b, g = row["record"], row["reference"], row["gain"]
        lines.append(f"| {row['recipe']} | {r['max_length']} | {r['epochs']} | {r.get('schedule', 'constant')} | "
                     f"{r['seed']} | {r['nDCG@3']:.4f} | {r['nDCG@5']:.4f} | {b['nDCG@3']:.4f} | {b['nDCG@5']:.4f} | "
                     + " | ".join(f"{g[c]:+.2f}" for c in COLUMNS)
                     + f" | {'yes' if row['meets'] else 'no'} | {r.get('commit', '?')} ({b.get('commit', '?')}) |")
    return "\n".join(lines) + "\n"


def figure_points(rows: list[dict], defaults: dict) -> tuple[pd.DataFrame, dict, tuple[int, int] | None]:
    """What the figure draws: the runs (seed, S1 nDCG@5, final nDCG@5) of the tokens and epochs with
    the most runs that kept S1's nDCG@5 and ran at the recipe's encoder rate and the default batch, and
    each seed's plain fine-tune (the newest reference among them).

    Returns:
        ``(runs, plain, (max_length, epochs))``; empty runs and None when no run kept S1's nDCG@5.
    """
    kept = [r for r in rows if r["record"].get("s1_nDCG@5") is not None
            and r["record"].get("lr", defaults["lr"]) == defaults["lr"]
            and batch_of(r["record"]) == BATCH_SIZE]
    groups: dict[tuple[int, int], list[dict]] = {}
    for row in kept:
        groups.setdefault((row["record"]["max_length"], row["record"]["epochs"]), []).append(row)
    if not groups:
        return pd.DataFrame(columns=["seed", "first", "final"]), {}, None
    group = max(groups, key=lambda g: len(groups[g]))
    chosen = groups[group]
    runs = pd.DataFrame({"seed": [r["record"]["seed"] for r in chosen],
                         "first": [r["record"]["s1_nDCG@5"] for r in chosen],
                         "final": [r["record"]["nDCG@5"] for r in chosen]})
    plain = {r["record"]["seed"]: r["reference"]["nDCG@5"] for r in chosen}
    return runs, plain, group


def main(argv: list[str] | None = None) -> int:
    """Read the records and rewrite the section."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_gains", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="reuters21578")
    parser.add_argument("--section", default=None, help="the section of bench/RESULTS.md (default: <dataset>-gains)")
    parser.add_argument("--no-report", action="store_true", help="print the section without writing it")
    args = parser.parse_args(argv)
    path = records_path(args.dataset)
    if not path.exists():
        print(f"error: {path} does not exist: run python -m bench.bench_reuters first", file=sys.stderr)
        return 2
    defaults = recipe_defaults(args.dataset)
    rows = gains(json.loads(path.read_text(encoding="utf-8")), defaults)
    runs, plain, group = figure_points(rows, defaults)
    png = path.with_name(f"{args.dataset}-gains.png")
    text = markdown(rows, args.dataset, report.command_line("python -m bench.bench_gains", argv).strip(), commit())
    if group:
        text += (f"\n![final nDCG@5 against S1's](results/{png.name})\n\n`results/{png.name}`: each run at "
                 f"{group[0]} tokens, {group[1]} epochs that kept S1's nDCG@5, its final nDCG@5 against its own "
                 "first prediction's; dashed: the plain fine-tune of that seed, dotted: the target.\n")
    print(text)
    if not args.no_report:
        report.update_section(args.section or f"{args.dataset}-gains", text, RESULTS)
        if group:
            plot_first_vs_final(runs, png, plain=plain, target=TARGET,
                                title=f"{args.dataset}, {group[0]} tokens, {group[1]} epochs: final nDCG@5 against S1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
