"""Which gold labels a LabelCoRank model's reranking stage can reach: S against S1's top gamma.

The reranking stage rescores the labels of S only; a gold label that S1 ranks low and S does not
hold stays where S1 put it. For each run folder that ``python -m bench.bench_reuters`` trained,
this script predicts the test split with the run's best model, keeping S, and counts: the share
of gold labels in S and in S1's top gamma (what S could hold), the documents with an empty S
(no label reached alpha: with the ``per_label`` head their final prediction is S1's), and, over the documents whose final
top label is wrong, how many have a gold label in S and how many have one in S1's top gamma but
none in S (out of the reranking stage's reach).

Usage::

    python -m bench.bench_coverage --runs RUN_DIR [RUN_DIR ...] [--section reuters21578-coverage] [--no-report]

It writes a section of ``bench/RESULTS.md`` (no records file: the counts describe runs whose
metrics the benchmark's records already hold).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench import report
from bench.bench_blend import scoring_inputs
from bench.bench_reuters import RESULTS, commit, tracked_run


def gold_hits(gold, labels: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Bool (N x m): whether labels[i, j] is a gold label of document i (False where not valid)."""
    rows = np.arange(labels.shape[0])[:, None]  # (N, 1)
    safe = np.where(valid, labels, 0)  # (N, m) PAD slots point at label 0, masked below
    return np.asarray(gold[rows, safe].todense(), dtype=bool) & valid  # (N, m)


def coverage(gold, top1: np.ndarray, s1_top: np.ndarray, selected: np.ndarray, mask: np.ndarray) -> dict:
    """The counts of one run (see the module docstring), from its predictions on a split.

    Args:
        gold: binary CSR matrix (N x K).
        top1: int array (N,), the final prediction's top label.
        s1_top: int array (N x gamma), S1's top gamma labels.
        selected, mask: S (N x gamma, PAD = K) and its mask.
    """
    gold_total = int(gold.sum())
    in_s = gold_hits(gold, selected, mask)  # (N, gamma)
    in_top = gold_hits(gold, s1_top, np.ones_like(s1_top, dtype=bool))  # (N, gamma)
    wrong = ~gold_hits(gold, top1[:, None], np.ones((len(top1), 1), dtype=bool))[:, 0]  # (N,)
    has_gold = np.asarray(gold.sum(axis=1)).ravel() > 0  # (N,)
    wrong &= has_gold
    any_s, any_top = in_s.any(axis=1), in_top.any(axis=1)  # (N,), (N,)
    return {
        "gold_in_S": float(in_s.sum() / gold_total),
        "gold_in_S1_top": float(in_top.sum() / gold_total),
        "empty_S": float((mask.sum(axis=1) == 0).mean()),
        "mean_S": float(mask.sum(axis=1).mean()),
        "top1_wrong": int(wrong.sum()),
        "wrong_gold_in_S": int((wrong & any_s).sum()),
        "wrong_out_of_reach": int((wrong & any_top & ~any_s).sum()),
        "n_docs": int(len(top1)),
    }


def run_coverage(run: Path, *, data_dir: Path, batch_size: int = 64) -> dict:
    """The counts of one run folder on its test split."""
    import torch

    from lcr.train.loop import predict

    model, pad_id, splits = scoring_inputs(run, data_dir=data_dir, splits=("test",))
    split = splits["test"]
    gamma = model.config.gamma
    topk, _, extra = predict(model, split, batch_size=batch_size, device=torch.device("cpu"), top_k=gamma,
                             pad_token_id=pad_id, selection=True)
    return coverage(split.labels, topk[:, 0], extra["s1_topk"], extra["selected"], extra["selected_mask"])


def markdown(runs: list[dict], command: str, revision: str) -> str:
    """The script's section of RESULTS.md."""
    first = runs[0]["settings"]
    lines = [
        *report.rescored_header(f"{first['dataset']}: which gold labels the reranking stage can reach "
                                "(S against S1's top gamma)", command, runs, revision),
        f"- Machine: {report.machine()}",
        "- Test split. gold in S / in S1 top gamma: share of all gold labels; empty S: documents where no label "
        "reached alpha (with the per_label head their final prediction is S1's); top label wrong: documents with gold labels whose final "
        "top label is not one; of these, with a gold label in S, and with one in S1's top gamma but none in S "
        "(out of reach: the reranking stage rescores S only).",
        "",
        "| run | seed | fill_to_gamma | mean \\|S\\| | gold in S | gold in S1 top gamma | empty S | top label wrong "
        "| of which gold in S | of which out of reach |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        s, c = run["settings"], run["counts"]
        lines.append(f"| `{run['run']}` | {s['seed']} | {s.get('fill_to_gamma', False)} | {c['mean_S']:.1f} | "
                     f"{c['gold_in_S']:.1%} | {c['gold_in_S1_top']:.1%} | {c['empty_S']:.1%} | {c['top1_wrong']} | "
                     f"{c['wrong_gold_in_S']} | {c['wrong_out_of_reach']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Count each run's reach and rewrite the section."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_coverage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="run folders of bench_reuters")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--section", default=None, help="the section of bench/RESULTS.md (default: <dataset>-coverage)")
    parser.add_argument("--no-report", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args(argv)
    command = report.command_line("python -m bench.bench_coverage", argv).strip()
    revision = commit()
    runs = []
    for folder in args.runs:
        settings = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        counts = run_coverage(folder, data_dir=args.data_dir)
        runs.append({"run": str(folder), "settings": settings, "counts": counts, **tracked_run(folder)})
        print(json.dumps({"run": str(folder), **counts}), file=sys.stderr, flush=True)
    text = markdown(runs, command, revision)
    print(text)
    if not args.no_report:
        report.update_section(args.section or f"{runs[0]['settings']['dataset']}-coverage", text, RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
