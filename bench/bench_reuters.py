"""LabelCoRank against the plain RoBERTa-style baseline on real Reuters-21578, same budget.

Trains the offline-default encoder (all-MiniLM-L6-v2) with ``labelcorank`` and with ``roberta``
under identical settings (encoder, sequence length, batch, learning rate, epochs, seed), each
as a tracked MLflow run, and writes their test metrics (full, head and tail subsets) to the
``reuters`` section of ``bench/RESULTS.md`` with the exact command.

The budget is set for a 2-core CPU machine (a MiniLM step at 16 x 128 tokens takes ~2.7 s
there): short sequences and few epochs. It is not the paper's setting (roberta-base, 512
tokens, 10+ epochs); the point is a fair side-by-side under one budget.

Usage::

    python -m bench.bench_reuters [--epochs 2] [--max-length 64] [--lr 5e-5] [--runs-dir runs-bench]

Needs ``data/reuters21578`` fetched and prepared (``make demo`` or ``dvc repro``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench import report
from lcr.config import VARIANTS as CONFIG_VARIANTS

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "RESULTS.md"
VARIANTS = ("labelcorank", "roberta")
ALL_VARIANTS = CONFIG_VARIANTS
COLUMNS = ("P@1", "P@3", "P@5", "nDCG@3", "nDCG@5", "PSP@5")


def run(args: argparse.Namespace) -> dict[str, dict]:
    """Train and evaluate each variant; returns ``{variant: train result}``."""
    from lcr.config import load_params
    from lcr.jobs import train_job

    config = load_params()
    results = {}
    for variant in args.variants:
        # patience and the cap are set as given (None: no early stopping, every training document)
        params = config.train("reuters21578", settings={"patience": None, "max_train_docs": args.max_train_docs},
                              variant=variant, epochs=args.epochs, max_length=args.max_length, lr=args.lr,
                              batch_size=args.batch_size, seed=args.seed, device="cpu", checkpoint_every=100)
        start = time.time()
        result = train_job("reuters21578", params, data_dir=args.data_dir, runs_dir=args.runs_dir,
                           progress=sys.stderr.isatty())
        result["wall_seconds"] = round(time.time() - start, 1)
        result["params"] = {"gamma": params.gamma, "beta": params.beta, "alpha": params.alpha,
                            "selection": params.selection, "lr": params.lr}
        results[variant] = result
        print(f"{variant}: {json.dumps(result['eval']['full'])}", file=sys.stderr)
    return results


def selection_diagnostics(run_dir: Path, data_dir: Path, max_length: int, limit: int = 1000) -> dict:
    """How the label sequence S behaves on the first ``limit`` test documents of a LabelCoRank run:
    P@1 of the first stage S1 and of the final prediction, mean |S2| and |S|, the share of gold
    labels that S contains, and how many distinct sequences S there are."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    from lcr import metrics
    from lcr.batches import collate, encode_split
    from lcr.datasets import store
    from lcr.encoder import resolve_encoder
    from lcr.model import load_model

    best = run_dir / "best_model"
    model = load_model(best / "model" if (best / "model").exists() else best).eval()
    tokenizer_dir = best / "tokenizer"
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir) if tokenizer_dir.exists() else resolve_encoder(None))
    vocab, _ = store.read_vocab(data_dir / "reuters21578")
    split = encode_split(data_dir / "reuters21578", "test", tokenizer, vocab, max_length)
    n = min(limit, len(split))
    logits1, logits2, selected, masks = [], [], [], []
    with torch.no_grad():
        for start in range(0, n, 64):
            batch = collate(split, np.arange(start, min(n, start + 64)), tokenizer.pad_token_id)
            out = model(batch["input_ids"], batch["attention_mask"])
            logits1.append(out.logits1), logits2.append(out.logits2)
            selected.append(out.selected), masks.append(out.selected_mask)
    logits1, logits2 = torch.cat(logits1), torch.cat(logits2)  # (n, K)
    selected, masks = torch.cat(selected), torch.cat(masks)  # (n, gamma)
    gold = split.labels[:n]
    dense = torch.tensor(gold.toarray())  # (n, K)
    in_s = dense.gather(1, selected.clamp(max=dense.shape[1] - 1)) * masks  # (n, gamma)
    s2 = (torch.sigmoid(logits1) >= model.config.alpha).sum(1).clamp(max=model.config.gamma)  # (n,)
    return {
        "docs": n,
        "S1 P@1": metrics.precision_at_k(gold, torch.topk(logits1, 5).indices.numpy(), 1),
        "final P@1": metrics.precision_at_k(gold, torch.topk(logits2, 5).indices.numpy(), 1),
        "mean |S2|": float(s2.float().mean()),
        "mean |S|": float(masks.sum(1).float().mean()),
        "gold recall of S": float((in_s.sum(1) / dense.sum(1).clamp(min=1)).mean()),
        "distinct S": len({tuple(row) for row in selected.tolist()}),
    }


def reuse(args: argparse.Namespace) -> dict[str, dict]:
    """The results of earlier runs of this script (same settings) from their metrics.json."""
    from lcr.config import load_params
    from lcr.jobs import run_dir

    config = load_params()
    results = {}
    for variant in args.variants:
        params = config.train("reuters21578", variant=variant, seed=args.seed)
        folder = run_dir(args.runs_dir, "reuters21578", params)
        result = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        run_file = folder / "mlflow_run.json"
        if run_file.exists():
            result["run_id"] = json.loads(run_file.read_text(encoding="utf-8"))["run_id"]
        result["params"] = {"gamma": params.gamma, "beta": params.beta, "alpha": params.alpha,
                            "selection": params.selection, "lr": params.lr}
        result["output_dir"] = str(folder)
        results[variant] = result
    return results


def markdown(results: dict[str, dict], args: argparse.Namespace, command: str) -> str:
    """The ``reuters`` section of RESULTS.md."""
    first = next(iter(results.values()))
    rates = ", ".join(f"{v} {r['params'].get('lr', args.lr)}" for v, r in results.items() if v != "tfidf")
    lines = [
        f"## Reuters-21578 (ModApte, 90 labels): {', '.join(f'`{v}`' for v in results)}, same budget",
        "",
        (f"- Trained by: {'; '.join(f'`{c}`' for c in args.trained_with)}" if args.reuse and args.trained_with
         else "- Trained by: earlier runs of this script with the same settings" if args.reuse
         else f"- Command: `{command}`"),
        *([f"- This section was rewritten from their saved results by `{command}` (which adds the selection "
           f"diagnostics)"] if args.reuse else []),
        f"- Date: {report.today()}",
        f"- Machine: {report.machine()}",
        f"- Encoder: offline-default (all-MiniLM-L6-v2); max_length {args.max_length}, batch {args.batch_size}, "
        f"lr {rates}"
        f" (word-level baselines and tfidf: params.yaml's `baselines` block), {args.epochs} epochs, seed {args.seed}, train docs "
        f"{args.max_train_docs or 'all'}; LabelCoRank gamma {first['params']['gamma']}, "
        f"beta {first['params']['beta']}, alpha {first['params']['alpha']}, "
        f"selection {first['params']['selection']}",
        "- Best epoch chosen on dev nDCG@5; metrics on the 3,019 test documents "
        "(head = all labels in the top 10% most frequent; tail = at most two head labels).",
        "",
        "| variant | subset | docs | " + " | ".join(COLUMNS) + " | train time |",
        "|---|---|---:|" + "---:|" * len(COLUMNS) + "---:|",
    ]
    for variant, result in results.items():
        for subset, values in result["eval"].items():
            cells = " | ".join(f"{values[c]:.4f}" if c in values else "-" for c in COLUMNS)
            timing = f"{result['train_seconds'] / 60:.1f} min" if subset == "full" else ""
            lines.append(f"| {variant} | {subset} | {values['n_docs']:,} | {cells} | {timing} |")
    lines.append("")
    lines.append("MLflow runs: " + ", ".join(f"{v} `{r.get('run_id')}`" for v, r in results.items()))
    for variant, result in results.items():
        if result.get("history"):
            curve = ", ".join(f"epoch {h['epoch']}: {h.get('nDCG@5', float('nan')):.4f}" for h in result["history"])
            lines.append(f"\n{variant} dev nDCG@5 per epoch: {curve}")
    if "diagnostics" in results.get("labelcorank", {}):
        d = results["labelcorank"]["diagnostics"]
        lines += ["", f"LabelCoRank's label sequence S on the first {d['docs']:,} test documents:", "",
                  "| S1 P@1 | final P@1 | mean \\|S2\\| | mean \\|S\\| (gamma " f"{first['params']['gamma']}) "
                  "| gold labels inside S | distinct S |", "|---:|---:|---:|---:|---:|---:|",
                  f"| {d['S1 P@1']:.4f} | {d['final P@1']:.4f} | {d['mean |S2|']:.2f} | {d['mean |S|']:.2f} | "
                  f"{d['gold recall of S']:.1%} | {d['distinct S']:,} |"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run both variants and rewrite the ``reuters`` section of bench/RESULTS.md."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_reuters", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--lr", type=float, default=None,
                        help="override every variant's learning rate (default: params.yaml: 5e-5 for the encoder "
                        "models in the demo profile, the `baselines` block for the others)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-train-docs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=ALL_VARIANTS)
    parser.add_argument("--trained-with", action="append", default=[],
                        help="with --reuse: a command that trained some of the runs (repeatable; shown in the section)")
    parser.add_argument("--section", default="reuters", help="the section of bench/RESULTS.md to rewrite")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--runs-dir", type=Path, default=Path("runs-bench"))
    parser.add_argument("--no-report", action="store_true", help="do not rewrite bench/RESULTS.md")
    parser.add_argument("--reuse", action="store_true",
                        help="report the finished runs in --runs-dir (same settings) instead of training again")
    args = parser.parse_args(argv)
    command = report.command_line("python -m bench.bench_reuters", argv)
    results = reuse(args) if args.reuse else run(args)
    if "labelcorank" in results:
        results["labelcorank"]["diagnostics"] = selection_diagnostics(
            Path(results["labelcorank"]["output_dir"]), args.data_dir, args.max_length)
    text = markdown(results, args, command.strip())
    print(text)
    if not args.no_report:
        header = ("# Results\n\nModel quality measured by the scripts in `bench/`; each section names the "
                  "command that produced it and is rewritten by that command.\n")
        if not RESULTS.exists():
            RESULTS.write_text(header, encoding="utf-8")
        report.update_section(args.section, text, RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
