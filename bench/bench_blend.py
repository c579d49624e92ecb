"""LabelCoRank ranking with its final logits blended with the first prediction's (``final_blend``).

``final_blend`` w changes only what a LabelCoRank model ranks with, (1 - w) z2 + w z1, not how it
is trained, so one trained model answers for every w (one pass over each split scores them all;
w < 0 enlarges the reranking stage's corrections of S1). For each run folder that
``python -m bench.bench_reuters`` trained, this script loads the best model, runs it once over
the dev and the test split, ranks each split at every w as the model itself ranks at that w (w = 0
gives the run's own evaluation, w = 1 its first prediction's), and picks per run the w with the
best dev nDCG@5 (ties: the w nearest 0), the choice a user can make without looking at the test
split. Beside them it shows, where ``bench/results/<dataset>-recipe.json`` holds one, the plain
fine-tune (``roberta``) of the same seed, epochs and tokens.

Usage::

    python -m bench.bench_blend --runs RUN_DIR [RUN_DIR ...] [--weights -1 -0.5 0 0.25 0.5 0.75 1]
                                [--section reuters21578-blend] [--no-report]

It writes a section of ``bench/RESULTS.md`` and ``bench/results/<dataset>-blend.json`` (one
record per run and w: dataset, variant, seed, epochs, max_length, final_blend, chosen, the dev
nDCG@5 and the test P@1, P@3, P@5, nDCG@3, nDCG@5, the commit the run was trained at, the run
folder's name and its MLflow run id; a run scored again replaces its own records).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench import report
from bench.bench_reuters import (COLUMNS, RECORD_NAMES, RECORDS_DIR, RESULTS, batch_of, commit, merge_records,
                                 records_path, tracked_run)

SPLITS = ("dev", "test")


def scoring_inputs(run: Path, *, data_dir: Path, splits=SPLITS):
    """A trained LabelCoRank run's best model, its pad token id and its encoded splits (by name).

    Raises:
        LcrError: the run's model has no second stage (not of the LabelCoRank family).
    """
    from transformers import AutoTokenizer

    from lcr.datasets.batches import encode_split
    from lcr.datasets.store import read_vocab
    from lcr.errors import LcrError
    from lcr.models.factory import load_model
    from lcr.runs import BEST_DIR
    from lcr.train.loop import pad_id_of

    settings = json.loads((run / "config.json").read_text(encoding="utf-8"))
    model = load_model(run / BEST_DIR / "model")
    if not hasattr(model, "s2_sizes"):  # only the LabelCoRank family has a second stage
        raise LcrError(f"{run}: a {settings['variant']} model has no second stage")
    tokenizer = AutoTokenizer.from_pretrained(str(run / BEST_DIR / "tokenizer"))
    dataset_dir = data_dir / settings["dataset"]
    vocab, _ = read_vocab(dataset_dir)
    encoded = {name: encode_split(dataset_dir, name, tokenizer, vocab, settings["max_length"], cache=True)
               for name in splits}
    return model, pad_id_of(tokenizer), encoded


def blend_topk(model, split, weights: list[float], *, pad_token_id: int, batch_size: int = 64,
               top_k: int = 5) -> dict:
    """Each weight's top-k labels for every document of a split, from one pass of the model.

    The model's forward is run once per batch; each weight w ranks what the model itself ranks with
    at ``final_blend`` w (:func:`lcr.models.labelcorank.blended_logits` of its two logits, which do
    not depend on the model's own w), cut to the top k with the same tie rule as
    :func:`lcr.train.loop.predict`.

    Returns:
        ``{w: int64 array (N x top_k)}`` in the split's document order.
    """
    import numpy as np
    import torch

    from lcr.datasets.batches import collate, length_bucketed_batches
    from lcr.models.labelcorank import blended_logits, top_labels

    model.eval()
    k = min(top_k, split.labels.shape[1])
    topk = {w: np.zeros((len(split), k), dtype=np.int64) for w in weights}  # each (N, k)
    with torch.no_grad():
        for positions in length_bucketed_batches(split.lengths, batch_size, shuffle=False):
            batch = collate(split, positions, pad_token_id, labels=False)
            out = model(batch["input_ids"], batch["attention_mask"])
            for w in weights:
                topk[w][positions] = top_labels(blended_logits(out.logits2, out.logits1, w), k)[1].numpy()
    return topk


def blend_rows(run: Path, weights: list[float], *, data_dir: Path, batch_size: int = 64) -> list[dict]:
    """Dev and test metrics of one run's best model at each blend weight.

    Args:
        run: a run folder (``config.json``, ``best_model/``).
        weights: the values of ``final_blend`` to score (at most 1; below 0 enlarges the
            reranking stage's corrections).
        data_dir: the folder that holds the run's dataset store.

    Returns:
        One row per weight: ``{"final_blend", "dev": {...}, "test": {...}}``, each split's
        P@1, P@3, P@5, nDCG@3, nDCG@5.
    """
    from lcr.report import metrics

    model, pad_id, splits = scoring_inputs(run, data_dir=data_dir)
    model.config.model_copy(update={"final_blend": max(weights)}).validate()  # w above 1 is refused
    ranked = {name: blend_topk(model, split, weights, pad_token_id=pad_id, batch_size=batch_size)
              for name, split in splits.items()}
    rows = []
    for weight in weights:
        row = {"final_blend": weight}
        for name, split in splits.items():
            full = metrics.evaluate(split.labels, ranked[name][weight])["full"]
            row[name] = {c: full[c] for c in COLUMNS}
        rows.append(row)
    return rows


def chosen_weight(rows: list[dict]) -> float:
    """The weight with the best dev nDCG@5; on a tie the one nearest 0 (the model's own ranking)."""
    return max(rows, key=lambda r: (r["dev"]["nDCG@5"], -abs(r["final_blend"])))["final_blend"]


def reference(dataset: str, settings: dict) -> dict | None:
    """The plain fine-tune's record with the run's seed, epochs, tokens, schedule, batch size and encoder
    learning rate, if one was kept (records and settings without a batch size ran at
    :data:`bench.bench_reuters.BATCH_SIZE`)."""
    path = records_path(dataset)
    if not path.exists():
        return None
    matches = [r for r in json.loads(path.read_text(encoding="utf-8"))
               if r["variant"] == "roberta" and r["seed"] == settings["seed"] and r["epochs"] == settings["epochs"]
               and r["max_length"] == settings["max_length"]
               and r.get("schedule", "constant") == settings["schedule"] and r.get("summary_tokens", 1) == 1
               and batch_of(r) == batch_of(settings)
               and r.get("lr", settings["lr"]) == settings["lr"]]  # records before the rates were kept: the recipe's
    return matches[-1] if matches else None


def run_labels(folders: list[Path]) -> list[str]:
    """What names each scored run in the section: its folder's name (``labelcorank-s1``), or, where
    two of the runs share one (the same seed from two benchmarks' run folders), the benchmark's
    ``--runs-dir`` before it (``runs-sep-rlr05/labelcorank-s1``)."""
    names = [folder.name for folder in folders]
    return [f"{folder.parent.parent.name}/{folder.name}" if names.count(folder.name) > 1 else folder.name
            for folder in folders]


def markdown(runs: list[dict], command: str, revision: str) -> str:
    """The script's section of RESULTS.md."""
    first = runs[0]["settings"]
    lines = [
        *report.rescored_header(f"{first['dataset']}: `labelcorank` ranked with `final_blend` w, (1 - w) z2 + w z1",
                                command, runs, revision),
        f"- Machine: {report.machine()}",
        f"- Runs: {', '.join('`' + r['label'] + '`' for r in runs)}; max_length {first['max_length']}, "
        f"{first['epochs']} epochs, schedule {first['schedule']}; each run's best epoch was chosen on dev "
        "with w = 0 (training does not depend on w)",
        "- w chosen per run on dev nDCG@5 (marked **chosen**); metrics on the test split; `roberta` = the plain "
        "fine-tune with the same seed, epochs and tokens, from the benchmark's records (its commit named there).",
        "",
        "| run | seed | w | dev nDCG@5 | P@1 | P@3 | P@5 | nDCG@3 | nDCG@5 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        seed = run["settings"]["seed"]
        # a run named by its run dir too (run_labels) has its rows say so
        name = "labelcorank" if run["label"] == run["run"] else f"labelcorank ({run['label'].split('/')[0]})"
        for row in run["rows"]:
            mark = " **chosen**" if row["final_blend"] == run["chosen"] else ""
            lines.append(f"| {name} | {seed} | {row['final_blend']:g}{mark} | {row['dev']['nDCG@5']:.4f} | "
                         + " | ".join(f"{row['test'][c]:.4f}" for c in COLUMNS) + " |")
        ref = run["reference"]
        if ref:
            lines.append(f"| roberta (commit {ref.get('commit', '?')}) | {seed} | - | - | "
                         + " | ".join(f"{ref[c]:.4f}" for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def records(runs: list[dict]) -> list[dict]:
    """One record per run and weight."""
    out = []
    for run in runs:
        s = run["settings"]
        for row in run["rows"]:
            out.append({"dataset": s["dataset"], "variant": s["variant"], "seed": s["seed"], "epochs": s["epochs"],
                        "max_length": s["max_length"], "final_blend": row["final_blend"],
                        "chosen": row["final_blend"] == run["chosen"], "dev_nDCG@5": row["dev"]["nDCG@5"],
                        **row["test"], "commit": run["commit"], "run": run["run"], "run_id": run["run_id"]})
    return out


def record_key(record: dict) -> str:
    """What tells one scored run from another: its MLflow run id (run folders of different
    benchmarks share names such as ``labelcorank-s1``); the folder name for records without one."""
    return record.get("run_id") or record["run"]


def main(argv: list[str] | None = None) -> int:
    """Score each run at each weight and rewrite the section and the records."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_blend", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="run folders of bench_reuters")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--section", default=None, help="the section of bench/RESULTS.md (default: <dataset>-blend)")
    parser.add_argument("--no-report", action="store_true", help="write neither bench/RESULTS.md nor the records")
    args = parser.parse_args(argv)
    command = report.command_line("python -m bench.bench_blend", argv).strip()
    revision = commit()
    runs = []
    for folder, label in zip(args.runs, run_labels(args.runs)):
        settings = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        rows = blend_rows(folder, args.weights, data_dir=args.data_dir)
        runs.append({"run": folder.name, "label": label, "settings": settings, "rows": rows, "chosen": chosen_weight(rows),
                     "reference": reference(settings["dataset"], settings), **tracked_run(folder)})
        print(json.dumps({"run": label, "chosen": runs[-1]["chosen"], "rows": rows}), file=sys.stderr, flush=True)
    text = markdown(runs, command, revision)
    print(text)
    if not args.no_report:
        dataset = runs[0]["settings"]["dataset"]
        report.update_section(args.section or f"{dataset}-blend", text, RESULTS)
        # a run scored again replaces its own records
        merge_records(RECORDS_DIR / f"{RECORD_NAMES.get(dataset, dataset)}-blend.json", records(runs), record_key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
