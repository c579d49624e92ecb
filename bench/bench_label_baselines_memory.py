"""Peak memory of one training step of RoBERTa-LiGCN (``ligcn``) and GUDN (``gudn``), measured at
small scale on the CPU and extrapolated to PubMed's K = 17,963 labels with roberta-base and
batches of 16 x 512 tokens.

Setting: an encoder of roberta-base's width (hidden 768, 12 heads, FFN 3,072) but 2 layers and
an 8,000-token vocabulary, randomly initialised in-process (nothing downloaded); a batch of 16
documents of T random tokens (no padding) with 8 random gold labels each. Every model takes
one training step as ``lcr.train.loop`` does (forward with the loss, backward, gradient
clipping, AdamW from :func:`lcr.train.loop.build_optimizer`, ``zero_grad``) in a fresh child
interpreter, float32, one thread; the figure is the child's peak RSS during the step
(``VmHWM`` reset just before it), which includes the gradients and AdamW's state.

Grid: the plain fine-tune (``roberta``: [CLS] + one linear layer), ``ligcn`` and ``gudn`` (with
``cls_layers: 1``, so that its classifier is the plain fine-tune's size and the difference is
the guide pass) at K in {1,000, 3,000} and T in {64, 128}: 12 children.

Extrapolation (the head's memory beyond the plain fine-tune at the same K and T, Delta):

* ``ligcn``: Delta = K (p + q T) + r, least squares over the 4 points (the token-label edges
  are B x K x T, the label nodes B x K x delta per layer: both linear in K); evaluated at
  K = 17,963, T = 512.
* ``gudn``: Delta = the guide input's encoder pass, which holds the same activations as the
  text's pass (its length is capped at ``max_length`` like the text's); measured as a ratio of
  the plain fine-tune's activation memory (its peak less the weights, gradients and AdamW's two
  moments), then applied to roberta-base's activations at 16 x 512, plus the (n - 1) x 768 x K
  weights that ``cls_layers: n`` adds to the classifier (x4: weight, gradient, two moments;
  n = 5 in ``params.yaml``).
* the plain fine-tune's activations at roberta-base's 12 layers and 512 tokens: the measured
  2-layer activations per layer fitted as a T + b T^2 (attention's scores grow with T^2) from
  T = 64 and 128, times 12 layers; plus roberta-base's 124.6M weights x 16 bytes (weight,
  gradient, two AdamW moments) and the K x 768 classifier likewise.

All figures are float32 on the CPU: an upper bound for a GPU run under bf16 autocast (``bf16:
auto``), which halves most activations.

Usage::

    python -m bench.bench_label_baselines_memory [--report]

``--report`` also writes the ``label-baselines-memory`` section of ``bench/BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
COMMAND = "python -m bench.bench_label_baselines_memory"
PUBMED = {"labels": 17_963, "length": 512, "batch": 16, "hidden": 768, "layers": 12}
ROBERTA_BASE_PARAMS = 124_645_632  # roberta-base without its pooler
GUDN_CLS_LAYERS = 5  # params.yaml: baselines.gudn
LABELS = (1000, 3000)
LENGTHS = (64, 128)
VARIANTS = ("roberta", "ligcn", "gudn")

_CHILD = """
import json, sys
from bench.bench_label_baselines_memory import step_child
print(json.dumps(step_child(json.loads(sys.argv[1]))))
"""


# --------------------------------------------------------------------------------------------
# The child: one model, one step


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def step_child(spec: dict) -> dict:
    """Build one model at (K, T), take one training step, return its memory figures."""
    import torch
    from transformers import RobertaConfig, RobertaModel

    from bench import report
    from lcr.config import train_params
    from lcr.models.baselines.common import BaselineConfig, build_baseline
    from lcr.models.baselines.ligcn import cosine_neighbours
    from lcr.models.labelcorank import LabelCoRankConfig, RobertaBaseline
    from lcr.train.loop import build_optimizer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    variant, count, length, batch = spec["variant"], spec["labels"], spec["length"], spec["batch"]
    config = RobertaConfig(vocab_size=8000, hidden_size=768, num_hidden_layers=2, num_attention_heads=12,
                           intermediate_size=3072, max_position_embeddings=length + 2, pad_token_id=1,
                           bos_token_id=0, eos_token_id=2)
    encoder = RobertaModel(config, add_pooling_layer=False)
    if variant == "roberta":
        model = RobertaBaseline(LabelCoRankConfig(num_labels=count, gamma=1), encoder)
    else:
        settings = dict(num_labels=count, max_length=length, cls_layers=1, label_neighbours=10)
        model = build_baseline(variant, BaselineConfig(**settings), encoder)
        generator = torch.Generator().manual_seed(1)
        if variant == "gudn":  # label texts of 6 tokens and the separator, like short MeSH names
            model.label_tokens[:, :7] = torch.randint(5, 8000, (count, 7), generator=generator)
            model.label_lengths.fill_(7)
        else:  # a label graph from random label embeddings (its size, not its content, matters)
            index, weight = cosine_neighbours(torch.randn(count, 768, generator=generator), model.k)
            model.neighbours.copy_(index)
            model.edge_weights.copy_(weight)
    model.train()
    params = train_params(variant=variant)
    optimizer = build_optimizer(model, params, torch.device("cpu"))
    generator = torch.Generator().manual_seed(2)
    input_ids = torch.randint(5, 8000, (batch, length), generator=generator)  # (B, T)
    input_ids[:, 0], input_ids[:, -1] = 0, 2
    labels = torch.zeros(batch, count)  # (B, K)
    for row in labels:
        row[torch.randperm(count, generator=generator)[:8]] = 1.0
    weights = sum(p.numel() for p in model.parameters())
    before = _status_bytes("VmRSS")
    report.reset_peak_rss()
    start = time.perf_counter()
    out = model(input_ids, torch.ones_like(input_ids), labels=labels)
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), params.clip_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {"variant": variant, "labels": count, "length": length, "weights": weights, "before": before,
            "peak": _status_bytes("VmHWM"), "step_s": time.perf_counter() - start}


# --------------------------------------------------------------------------------------------
# The parent


def measure(batch: int = 16) -> list[dict]:
    """One child per (variant, K, T) of the grid."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    results = []
    for variant in VARIANTS:
        for count in LABELS:
            for length in LENGTHS:
                spec = {"variant": variant, "labels": count, "length": length, "batch": batch}
                done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)], cwd=REPO, env=env,
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"{spec}: child failed, exit {done.returncode}:\n{done.stderr[-3000:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"{variant:8s} K = {count:5,} T = {length:3}: peak {result['peak'] / 2**30:.2f} GiB "
                      f"(before the step {result['before'] / 2**30:.2f} GiB), {result['step_s']:.1f} s",
                      file=sys.stderr)
                results.append(result)
    return results


def extrapolate(results: list[dict]) -> dict:
    """The fits of the module docstring, evaluated at PubMed's size; bytes."""
    at = {(r["variant"], r["labels"], r["length"]): r for r in results}
    grid = [(k, t) for k in LABELS for t in LENGTHS]
    delta = {v: np.array([at[v, k, t]["peak"] - at["roberta", k, t]["peak"] for k, t in grid], dtype=float)
             for v in ("ligcn", "gudn")}
    K, T = PUBMED["labels"], PUBMED["length"]

    # ligcn: Delta = K (p + q T) + r
    design = np.array([[k, k * t, 1.0] for k, t in grid])
    p, q, r = np.linalg.lstsq(design, delta["ligcn"], rcond=None)[0]
    ligcn = K * (p + q * T) + r

    # The plain fine-tune's activations (peak less weights, gradients and AdamW's moments), per layer.
    def activations(k: int, t: int) -> float:
        run = at["roberta", k, t]
        return run["peak"] - run["before"] - 3 * 4 * run["weights"]

    per_layer = {t: np.mean([activations(k, t) for k in LABELS]) / 2 for t in LENGTHS}  # 2 layers
    (a, b) = np.linalg.solve(np.array([[t, t * t] for t in LENGTHS], dtype=float),
                             np.array([per_layer[t] for t in LENGTHS]))
    encoder_acts = PUBMED["layers"] * (a * T + b * T * T) * PUBMED["batch"] / 16
    # gudn: the guide pass as a share of the fine-tune's activations, measured at each point.
    ratio = float(np.mean([(at["gudn", k, t]["peak"] - at["roberta", k, t]["peak"]) / activations(k, t)
                           for k, t in grid]))
    classifier_extra = (GUDN_CLS_LAYERS - 1) * PUBMED["hidden"] * K * 16
    gudn = ratio * encoder_acts + classifier_extra
    finetune = encoder_acts + (ROBERTA_BASE_PARAMS + PUBMED["hidden"] * K) * 16
    return {"ligcn_fit": {"p": p, "q": q, "r": r}, "ligcn": ligcn, "gudn_ratio": ratio, "gudn": gudn,
            "gudn_classifier_extra": classifier_extra, "activation_fit": {"a": a, "b": b},
            "encoder_activations": encoder_acts, "finetune": finetune}


def _gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"


def markdown(results: list[dict], fit: dict, command: str) -> str:
    """The ``label-baselines-memory`` section of BENCHMARKS.md."""
    from bench import report

    lines = ["## RoBERTa-LiGCN and GUDN: memory of one training step, extrapolated to PubMed's K", "",
             f"- Command: `{command}`", f"- Date: {report.today()}", f"- Machine: {report.machine()}",
             "- Setting: encoder of roberta-base's width (768 hidden, 12 heads, FFN 3,072), 2 layers, 8,000-token "
             "vocabulary, random; batch 16 x T random tokens, 8 gold labels each; float32, 1 thread; one "
             "training step (forward + loss, backward, clip, AdamW) per child; peak RSS during the step", "",
             "| model | K | T | weights | RSS before | peak RSS | step |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['variant']} | {r['labels']:,} | {r['length']} | {r['weights'] / 1e6:.1f}M | "
                     f"{_gib(r['before'])} | {_gib(r['peak'])} | {r['step_s']:.1f} s |")
    K, T = PUBMED["labels"], PUBMED["length"]
    p, q, r = (fit["ligcn_fit"][x] for x in "pqr")
    lines += ["", f"Extrapolated to PubMed (K = {K:,}, roberta-base: 12 layers, batch 16 x {T} tokens), float32:", "",
              f"- ligcn beyond the plain fine-tune: Delta = K (p + q T) + r with p = {p:,.0f} B, q = {q:,.1f} B, "
              f"r = {r / 2**20:,.0f} MiB -> **{_gib(fit['ligcn'])}**",
              f"- gudn beyond the plain fine-tune: the guide pass = {fit['gudn_ratio']:.2f} x the fine-tune's "
              f"activations, + {GUDN_CLS_LAYERS - 1} x 768 x K classifier weights x 16 B "
              f"({_gib(fit['gudn_classifier_extra'])}) -> **{_gib(fit['gudn'])}**",
              f"- the plain fine-tune itself: activations {_gib(fit['encoder_activations'])} (per layer a T + b T^2, "
              f"a = {fit['activation_fit']['a']:,.0f} B, b = {fit['activation_fit']['b']:,.1f} B, x 12 layers) + "
              f"weights, gradients and AdamW moments -> **{_gib(fit['finetune'])}**",
              f"- totals: ligcn **{_gib(fit['finetune'] + fit['ligcn'])}**, gudn "
              f"**{_gib(fit['finetune'] + fit['gudn'])}** per batch of 16 (bf16 autocast on a GPU: less)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-report", action="store_true", help="print only: leave bench/BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    results = measure()
    fit = extrapolate(results)
    from bench import report

    text = markdown(results, fit, report.command_line(COMMAND, argv))
    print(text)
    if not args.no_report:
        report.update_section("label-baselines-memory", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
