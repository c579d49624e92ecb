"""Peak memory of one LabelCoRank training step at PubMed's size on CPU: faithful W5 vs low-rank W5.

Setting: K = 17,963 labels, gamma = 30 (the paper's PubMed settings, alpha = 0.3, beta = 0.3,
selection ``threshold``), a batch of 16 documents x 256 tokens. The co-occurrence matrix and the
frequency rank come from 718,837 synthetic training documents (:class:`bench.synthetic.LabelModel`:
Zipf-like frequencies, topics, 7.8 labels per document), as ``lcr prepare`` computes them; the
batch's labels are drawn from the same model (via :func:`bench.bench_train_step.label_data`).

The encoder is a tiny, randomly initialised RoBERTa built in-process from a
``transformers.RobertaConfig`` (nothing downloaded): 2 layers but roberta-base's width (hidden
768, 12 heads, FFN 3,072), because W5's size is gamma x hidden x K: at hidden 768 the paper's W5 is
30 x 768 x 17,963 = 413.9M weights (1.54 GiB in float32; x4 with its gradient and AdamW's two
moments). Token ids are random (the memory of a step does not depend on them).

Two models, each in a fresh child interpreter so that nothing else counts:

* ``faithful``: the paper's full W5 (``classifier_rank: null``, the default);
* ``low-rank``: ``classifier_rank: 256``, W5 ~ A (gamma*hidden x r) B (r x K).

Each child builds the model (``lcr.models.factory.build_model`` from :class:`lcr.config.TrainParams`,
as training does) and takes one training step as ``lcr.train.loop`` does (forward with the loss,
which runs the first prediction, the selection of eqs. 9-11, the label attention and W5;
backward; ``clip_grad_norm_``; AdamW; ``zero_grad``: :func:`bench.bench_train_step.make_step`).
Reported per model: W5's parameters and bytes, all parameters, the RSS before the step, the peak
RSS during it (``VmHWM`` reset just before the step via ``/proc/self/clear_refs``; it includes
the gradients and AdamW's state the step allocates), the RSS after it, the peak of the whole
child (model construction included) and the step's time.

Target (issue #7): the step completes, and its peak stays within this machine's memory.

Usage::

    python -m bench.bench_step_memory [--hidden 768] [--rank 256] [--batch-size 16] [--max-length 256]
                                      [--quick] [--no-report]

``--quick`` is a small smoke run (K = 1,000, hidden 64, batch 4 x 32) that never writes the
report. Exits with status 1 when a child fails or a peak exceeds the machine's memory. Rewrites
the ``step-memory`` section of ``bench/BENCHMARKS.md`` unless ``--no-report`` or ``--quick``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from bench import report
from bench.bench_train_step import REPO, Size, _status_kib, count_params, label_data, make_step
from bench.synthetic import SHAPES
from lcr.config import train_params
from lcr.models.factory import build_model
from lcr.paper import PAPER_SETTINGS

COMMAND = "python -m bench.bench_step_memory"
DEFAULT_RANK = 256

_CHILD = """
import json, sys
from bench.bench_step_memory import step_child
print(json.dumps(step_child(json.loads(sys.argv[1]))))
"""


# --------------------------------------------------------------------------------------------
# The child: one model, one step


def tiny_encoder(spec: dict):
    """A randomly initialised RoBERTa of the requested size (built in-process, nothing downloaded)."""
    from transformers import RobertaConfig, RobertaModel

    config = RobertaConfig(vocab_size=spec["vocab"], hidden_size=spec["hidden"], num_hidden_layers=spec["layers"],
                           num_attention_heads=spec["heads"], intermediate_size=spec["intermediate"],
                           max_position_embeddings=spec["max_length"] + 2, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2)
    torch.manual_seed(spec["seed"])
    return RobertaModel(config, add_pooling_layer=False)


def make_batch(gold: sp.csr_matrix, spec: dict) -> dict:
    """Random token ids (``<s>`` first, ``</s>`` last, no padding), the mask and the multi-hot labels."""
    generator = torch.Generator().manual_seed(spec["seed"])
    batch, length = gold.shape[0], spec["max_length"]
    input_ids = torch.randint(5, spec["vocab"], (batch, length), generator=generator)  # (B, T)
    input_ids[:, 0], input_ids[:, -1] = 0, 2
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
            "labels": torch.from_numpy(gold.toarray()).float()}  # (B, K)


def step_child(spec: dict) -> dict:
    """Run in the child: build the model, take one training step, return the memory figures."""
    torch.set_num_threads(spec["threads"] or torch.get_num_threads())
    folder = Path(spec["data"])
    cooc, gold = sp.load_npz(folder / "cooc.npz"), sp.load_npz(folder / "gold.npz")
    freq_rank = np.load(folder / "freq_rank.npy")
    params = train_params(variant="labelcorank", gamma=spec["gamma"], beta=spec["beta"], alpha=spec["alpha"],
                          selection="threshold", classifier_rank=spec["rank"])
    encoder = tiny_encoder(spec)
    torch.manual_seed(spec["seed"])
    model = build_model(params, encoder, cooc=cooc, freq_rank=freq_rank).train()
    batch = make_batch(gold, spec)
    step = make_step(model, params, torch.device("cpu"))
    del cooc, gold, freq_rank
    gc.collect()
    counts = count_params(model)
    w5 = model.classifier2
    result = {"params": counts, "w5_bytes": sum(p.numel() * p.element_size() for p in w5.parameters()),
              "w5_shapes": [list(p.shape) for p in w5.parameters()],
              "build_peak": (_status_kib("VmHWM") or 0) * 1024}
    before = (_status_kib("VmRSS") or 0) * 1024
    how = "VmHWM" if report.reset_peak_rss() else "VmHWM (not resettable: peak of the whole child)"
    start = time.perf_counter()
    step(batch)
    seconds = time.perf_counter() - start
    peak = (_status_kib("VmHWM") or 0) * 1024
    result.update(how=how, before=before, peak=peak, after=(_status_kib("VmRSS") or 0) * 1024, step_s=seconds,
                  threads=torch.get_num_threads())
    return result


# --------------------------------------------------------------------------------------------
# The parent


def modes(args: argparse.Namespace) -> list[tuple[str, int | None]]:
    """``(name, classifier_rank)`` of the two models."""
    return [("faithful", None), ("low-rank", args.rank)]


def run(args: argparse.Namespace) -> dict:
    """Label data once, then one child per model; everything the report needs."""
    size = Size("PubMed-sized", args.labels, args.gamma, args.beta, args.alpha, args.docs, args.mean_labels, None)
    start = time.perf_counter()
    data = label_data(size, args.batch_size, args.seed)
    prepared_s = time.perf_counter() - start
    print(f"label data in {prepared_s:.1f} s: K = {args.labels:,}, nnz(M) = {data['cooc'].nnz:,}", file=sys.stderr)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="lcr-bench-step-memory-") as tmp:
        sp.save_npz(Path(tmp) / "cooc.npz", data["cooc"], compressed=False)
        sp.save_npz(Path(tmp) / "gold.npz", data["gold"], compressed=False)
        np.save(Path(tmp) / "freq_rank.npy", data["freq_rank"])
        info = {"nnz": int(data["cooc"].nnz), "labels_per_doc": float(data["gold"].sum(axis=1).mean()),
                "prepared_s": prepared_s}
        del data
        gc.collect()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        for name, rank in modes(args):
            spec = {"data": tmp, "rank": rank, "gamma": args.gamma, "alpha": args.alpha, "beta": args.beta,
                    "vocab": args.vocab, "hidden": args.hidden, "layers": args.layers, "heads": args.heads,
                    "intermediate": args.intermediate, "max_length": args.max_length, "seed": args.seed,
                    "threads": args.threads}
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)], cwd=REPO, env=env,
                                  capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                why = " (killed: out of memory?)" if done.returncode in (-9, 137) else ""
                print(f"{name}: child failed, exit {done.returncode}{why}:\n{done.stderr[-4000:]}", file=sys.stderr)
                results[name] = {"failed": f"exit {done.returncode}{why}", "rank": rank, "wall_s": wall}
                continue
            results[name] = {**json.loads(done.stdout.strip().splitlines()[-1]), "rank": rank, "wall_s": wall}
            r = results[name]
            print(f"{name}: W5 {r['params']['w5'] / 1e6:,.1f}M params, peak RSS {r['peak'] / 2**30:.2f} GiB "
                  f"(before the step {r['before'] / 2**30:.2f} GiB), step {r['step_s']:.1f} s", file=sys.stderr)
    return {"info": info, "models": results, "memory": report.memory_bytes()}


def dense_w5(args: argparse.Namespace) -> int:
    """Weights of the paper's full W5 (bias excluded): gamma x hidden x K."""
    return args.gamma * args.hidden * args.labels


def passed(result: dict) -> bool:
    """Both steps completed and peaked within the machine's memory."""
    memory = result["memory"]
    return all("failed" not in r and (memory is None or r["peak"] < memory) for r in result["models"].values())


def _gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB" if value >= 2**30 else f"{value / 2**20:,.1f} MiB"


def _m(value: int) -> str:
    return f"{value / 1e6:,.1f}M" if value >= 1e6 else f"{value:,}"


def markdown(args: argparse.Namespace, result: dict, command: str) -> str:
    """The ``step-memory`` section of BENCHMARKS.md."""
    info, models, memory = result["info"], result["models"], result["memory"]
    weights = dense_w5(args)
    threads = next((r["threads"] for r in models.values() if "threads" in r), torch.get_num_threads())
    how = next((r["how"] for r in models.values() if "how" in r), "VmHWM")
    lines = [
        f"## One training step at K = {args.labels:,}, gamma = {args.gamma} on CPU: peak memory, faithful vs "
        "low-rank W5",
        "",
        f"- Command: `{command}`",
        f"- Date: {report.today()}",
        f"- Machine: {report.machine()}; torch {torch.__version__}, CPU, {threads} threads",
        f"- Encoder: tiny random RoBERTa built in-process (layers {args.layers}, hidden {args.hidden}, "
        f"{args.heads} heads, FFN {args.intermediate}, vocabulary {args.vocab}); batch {args.batch_size} x "
        f"{args.max_length} tokens (no padding), float32",
        f"- Model: `labelcorank`, selection `threshold`, alpha = {args.alpha}, beta = {args.beta}, gamma = "
        f"{args.gamma}; M and the frequency rank from {args.docs:,} synthetic training documents "
        f"(`bench.synthetic.LabelModel`, {args.mean_labels} labels/doc): nnz(M) = {info['nnz']:,}; batch "
        f"{info['labels_per_doc']:.1f} labels/doc",
        "- Step (as `lcr.train.loop`, `bench.bench_train_step.make_step`): forward with the loss (first "
        "prediction, selection of eqs. 9-11, label attention, W5), backward, `clip_grad_norm_`, AdamW, "
        "`zero_grad`; one step per model, each model in a fresh child interpreter",
        f"- Memory: RSS before the step (model, batch and label statistics built); peak = {how} over the step "
        "(gradients and AdamW's two moments allocated; as the first step of a run, it also builds the model's "
        "cached CSR copy of M); the child's peak includes building the model",
        "",
        "| W5 | `classifier_rank` | W5 shape | W5 params | W5 bytes (float32) | all params | RSS before step "
        "| peak RSS during step | RSS after step | child's peak | step | within memory |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in models.items():
        rank = "null" if r["rank"] is None else str(r["rank"])
        if "failed" in r:
            lines.append(f"| {name} | {rank} | | | | | | | | | | FAILED ({r['failed']}) |")
            continue
        # nn.Linear keeps (out, in); shown as the paper writes W5: (in x out), A then B.
        shapes = " x ".join(f"({shape[1]:,} x {shape[0]:,})" for shape in r["w5_shapes"] if len(shape) == 2)
        ok = memory is None or r["peak"] < memory
        lines.append(f"| {name} | {rank} | {shapes} | {_m(r['params']['w5'])} | {_gib(r['w5_bytes'])} "
                     f"| {_m(r['params']['total'])} | {_gib(r['before'])} | {_gib(r['peak'])} | {_gib(r['after'])} "
                     f"| {_gib(max(r['peak'], r['build_peak']))} | {r['step_s']:.1f} s "
                     f"| {'ok' if ok else 'MISSED'} (of {_gib(memory) if memory else '?'}) |")
    lines += [
        "",
        f"Dense W5 arithmetic: {args.gamma} x {args.hidden} x {args.labels:,} = {weights:,} weights "
        f"(+ {args.labels:,} bias) = {_gib(weights * 4)} in float32; with its gradient and AdamW's two moments "
        f"x4 = {_gib(weights * 16)}. Low-rank r = {args.rank}: {args.gamma * args.hidden:,} x {args.rank} + "
        f"{args.rank} x {args.labels:,} = {(args.gamma * args.hidden + args.labels) * args.rank:,} weights "
        f"({_gib((args.gamma * args.hidden + args.labels) * args.rank * 4)}).",
    ]
    faithful, low = models.get("faithful", {}), models.get("low-rank", {})
    if "peak" in faithful and "peak" in low:
        lines.append(f"The low-rank W5 saves {_gib(faithful['peak'] - low['peak'])} of peak RSS over the step "
                     f"({faithful['peak'] / low['peak']:.1f}x less).")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    pubmed, settings = SHAPES["pubmed"], PAPER_SETTINGS["pubmed"]
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=pubmed.n_labels, help="K")
    parser.add_argument("--docs", type=int, default=pubmed.n_train,
                        help="synthetic training documents behind the co-occurrence matrix")
    parser.add_argument("--mean-labels", type=float, default=pubmed.mean_labels)
    parser.add_argument("--gamma", type=int, default=settings["gamma"])
    parser.add_argument("--alpha", type=float, default=settings["alpha"])
    parser.add_argument("--beta", type=float, default=settings["beta"])
    parser.add_argument("--rank", type=int, default=DEFAULT_RANK, help="classifier_rank of the low-rank model")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256, help="tokens per document")
    parser.add_argument("--hidden", type=int, default=768, help="encoder hidden size (delta)")
    parser.add_argument("--layers", type=int, default=2, help="encoder layers")
    parser.add_argument("--heads", type=int, default=12, help="encoder attention heads")
    parser.add_argument("--intermediate", type=int, default=3072, help="encoder FFN width")
    parser.add_argument("--vocab", type=int, default=1000, help="encoder vocabulary size")
    parser.add_argument("--threads", type=int, default=0, help="torch threads in the children (0 = torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="a small smoke run (K = 1,000, hidden 64, batch 4 x 32); never reported")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite bench/BENCHMARKS.md")
    if parser.parse_known_args(argv)[0].quick:  # smaller defaults; options given still win
        parser.set_defaults(labels=1_000, docs=20_000, rank=16, batch_size=4, max_length=32, hidden=64, layers=1,
                            heads=2, intermediate=128, vocab=200)
    args = parser.parse_args(argv)
    if args.gamma > args.labels:
        parser.error("gamma must not exceed the number of labels")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when both steps completed within the machine's memory, 1 otherwise."""
    args = parse_args(argv)
    command = report.command_line(COMMAND, argv)
    result = run(args)
    text = markdown(args, result, command)
    print(text)
    if not args.no_report and not args.quick:
        report.update_section("step-memory", text)
    return 0 if passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
