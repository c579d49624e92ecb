"""GPU readiness on paper: FLOPs per training document and the expected time of one PubMed epoch.

No GPU is available to this project's CI, so this is arithmetic, not a measurement. It counts
the matrix-multiply FLOPs of one training step per document (forward x 3: the backward pass
costs about twice the forward) for roberta-base (``transformers.RobertaConfig()``'s defaults
are roberta-base's sizes) with LabelCoRank's head at PubMed's size (K = 17,963, gamma = 30),
and divides an epoch's FLOPs (718,837 documents) by 40% of each GPU's dense peak:

- lcr's GPU path: bf16 autocast on tensor cores, dynamic padding (length-bucketed batches, so a
  document costs about its own length, truncated at 512 tokens);
- the authors' code: every document padded to 512 tokens, fp32 (PyTorch's default: no TF32 for
  matmuls, so the plain FP32 units).

Document length: PubMed's mean of 198.97 words (the paper's Table 1) times the tokens per word of
a subword tokenizer on scientific abstracts, measured here on the offline AAPD abstracts with
the offline MiniLM WordPiece tokenizer (roberta-base's BPE is not available offline; both are
~30k-50k subword vocabularies). Embedding lookups, layer norms, softmax and the optimiser are
left out (a few percent).

Run:
    python -m bench.gpu_estimate     # rewrites the `gpu-readiness` section of BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from bench import report

REPO = Path(__file__).resolve().parents[1]
# Dense peak TFLOPS from the vendors' datasheets (no sparsity): bf16 tensor cores with fp32
# accumulation, and plain fp32 (non-tensor) units.
GPUS = {
    "RTX 4090": {"bf16": 165.2, "fp32": 82.6},
    "H100 SXM": {"bf16": 989.4, "fp32": 66.9},
}
UTILISATION = 0.40
PUBMED = {"train_docs": 718_837, "labels": 17_963, "gamma": 30}


def encoder_forward_flops(length: int, hidden: int, layers: int, ffn: int) -> float:
    """Matmul FLOPs of a BERT/RoBERTa encoder's forward pass over one sequence of ``length``."""
    projections = 8 * length * hidden * hidden  # Q, K, V and output: 4 x (2 L d^2)
    feed_forward = 4 * length * hidden * ffn  # two layers: 2 x (2 L d f)
    attention = 4 * length * length * hidden  # scores and weighted sum: 2 x (2 L^2 d)
    return layers * (projections + feed_forward + attention)


def head_forward_flops(length: int, hidden: int, labels: int, gamma: int) -> float:
    """LabelCoRank's heads for one document (eqs. 2-6, 12-14)."""
    first = 2 * hidden * hidden + 2 * hidden * labels  # W1, W2
    features = 2 * (2 * gamma * hidden * hidden)  # W3, W4 (ffn_dim = hidden)
    attention = 2 * gamma * hidden * hidden + 2 * (2 * length * hidden * hidden) + 2 * (2 * gamma * length * hidden)
    final = 2 * gamma * hidden * labels  # W5
    return first + features + attention + final


def tokens_per_word(limit: int = 1000) -> float:
    """Subword tokens per whitespace word on the offline AAPD abstracts (MiniLM's tokenizer)."""
    import os

    from transformers import AutoTokenizer

    from lcr.models.encoder import resolve_encoder

    mirror = Path(os.environ.get("LCR_DATA_MIRROR", REPO.parent / "shared" / "datasets"))
    path = mirror / "aapd" / "text_test"
    if not path.exists():
        return 1.3
    texts = path.read_text(encoding="utf-8").splitlines()[:limit]
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder(None))
    words = sum(len(t.split()) for t in texts)
    tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    return tokens / words


def pubmed_words() -> float:
    with open(REPO / "lcr" / "paper" / "dataset_stats.csv", encoding="utf-8") as handle:
        return float(next(row for row in csv.DictReader(handle) if row["dataset"] == "pubmed")["W_avg"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=report.BENCHMARKS)
    args = parser.parse_args(argv)
    command = report.command_line("python -m bench.gpu_estimate", argv)
    from transformers import RobertaConfig

    cfg = RobertaConfig()  # roberta-base's sizes
    ratio = tokens_per_word()
    words = pubmed_words()
    dynamic = min(512, round(words * ratio) + 2)  # + <s> and </s>
    rows = []
    for name, length, precision in (("lcr: bf16, dynamic padding", dynamic, "bf16"),
                                    ("authors' code: fp32, padded to 512", 512, "fp32")):
        forward = (encoder_forward_flops(length, cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size)
                   + head_forward_flops(length, cfg.hidden_size, PUBMED["labels"], PUBMED["gamma"]))
        train = 3 * forward
        epoch = train * PUBMED["train_docs"]
        times = {gpu: epoch / (peaks[precision] * 1e12 * UTILISATION) for gpu, peaks in GPUS.items()}
        rows.append((name, length, forward, train, epoch, times))
    head = head_forward_flops(dynamic, cfg.hidden_size, PUBMED["labels"], PUBMED["gamma"])
    lines = [
        "## GPU readiness on paper: one PubMed epoch, roberta-base + LabelCoRank",
        "",
        f"Command: `{command.strip()}` ({report.today()}). Arithmetic, not a measurement (no GPU here); "
        "derivation in the script's docstring.",
        "",
        f"- Document length: PubMed's {words:.2f} words (Table 1) x {ratio:.3f} subword tokens per word "
        f"(measured on the AAPD test abstracts with the offline MiniLM WordPiece tokenizer) + 2 special tokens "
        f"= {dynamic} tokens; dynamic padding in length-bucketed batches costs about that per document.",
        f"- Model: roberta-base (12 layers, 768 hidden, 3,072 FFN) + LabelCoRank's heads at K = 17,963, "
        f"gamma = 30 ({head / 1e9:.2f} GFLOPs of the forward at {dynamic} tokens, W5 most of it).",
        f"- Training FLOPs = 3 x forward; epoch = {PUBMED['train_docs']:,} documents; "
        f"time = FLOPs / ({UTILISATION:.0%} of the dense peak).",
        "- Peaks (dense, datasheets): " + "; ".join(f"{g} bf16 {p['bf16']} / fp32 {p['fp32']} TFLOPS"
                                                    for g, p in GPUS.items()) + ".",
        "",
        "| setting | tokens/doc | forward GFLOPs/doc | training GFLOPs/doc | epoch PFLOPs | "
        + " | ".join(f"{g} epoch" for g in GPUS) + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(GPUS),
    ]
    for name, length, forward, train, epoch, times in rows:
        lines.append(f"| {name} | {length} | {forward / 1e9:.1f} | {train / 1e9:.1f} | {epoch / 1e15:,.0f} | "
                     + " | ".join(f"{t / 3600:.2f} h" for t in times.values()) + " |")
    speedup = {g: rows[1][5][g] / rows[0][5][g] for g in GPUS}
    lines += ["", "lcr's GPU defaults over the authors' setting: "
              + ", ".join(f"{g} {s:.1f}x" for g, s in speedup.items())
              + " faster per epoch (fewer tokens per document x tensor-core bf16 instead of fp32). "
              "bf16 autocast (`bf16: auto`) and fused AdamW are on by default on CUDA; `compile: true` adds "
              "`torch.compile` (optional: it helps most with fixed shapes, which length buckets partly give)."]
    report.update_section("gpu-readiness", "\n".join(lines), args.output)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
