"""Synthetic multi-label datasets of a chosen shape, written as a real ``lcr`` store.

The label model imitates what makes the real datasets hard to process and to learn:

* **Zipf-like label frequencies.** Label ``k`` has weight ``1 / (r_k + 1) ** zipf`` where ``r_k``
  is its (random) popularity rank, so a few labels are everywhere and most are rare. The ranks
  are shuffled against the label index so that code cannot rely on index order.
* **Clustered co-occurrence.** Every label belongs to one of ``n_clusters`` topics. A document
  picks a topic (with probability proportional to the topic's total weight) and draws each of
  its labels from that topic with probability ``in_cluster``, otherwise from all labels. With
  topic probabilities proportional to topic weight, a single draw still follows the global Zipf
  weights exactly; the clustering only shapes which labels meet in one document.
* **Labels per document.** ``1 + Poisson(mean_labels - 1)``, capped at the number of labels;
  the labels of a document are distinct (duplicates are redrawn).

Texts are short bags of words, a mix of the topic's own words and general words, so that a text
model has something (weak) to learn from; they are not meant to resemble real abstracts.

Everything is vectorised with NumPy and Arrow (no Python loop over labels; one list
comprehension for the document ids), so a PubMed-shaped dataset (718,837 + 89,855 + 89,854
documents, 17,963 labels, 7.8 labels per document) is written in seconds.

Library use::

    from bench.synthetic import SHAPES, generate_store
    generate_store("/tmp/pubmed-synth", SHAPES["pubmed"], seed=0)

Command line::

    python -m bench.synthetic /tmp/pubmed-synth --shape pubmed
    python -m bench.synthetic /tmp/small --train 1000 --dev 100 --test 100 --labels 50 --mean-labels 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp

from lcr.atomic import atomic_dir
from lcr.datasets.store import STATS_FILE, VOCAB_FILE


@dataclass(frozen=True)
class Shape:
    """The size of a synthetic dataset.

    Attributes:
        n_train: training documents.
        n_labels: size of the label vocabulary (K).
        mean_labels: mean number of labels per document.
        n_dev: dev documents.
        n_test: test documents.
    """

    n_train: int
    n_labels: int
    mean_labels: float
    n_dev: int = 0
    n_test: int = 0


#: The shapes of the paper's datasets (split sizes and labels as in the README; mean labels per
#: document from the paper's Table 1), plus a tiny one for tests.
SHAPES: dict[str, Shape] = {
    "pubmed": Shape(n_train=718_837, n_dev=89_855, n_test=89_854, n_labels=17_963, mean_labels=7.8),
    "mag-cs": Shape(n_train=564_340, n_dev=70_534, n_test=70_533, n_labels=15_809, mean_labels=5.6),
    "aapd": Shape(n_train=53_840, n_dev=1_000, n_test=1_000, n_labels=54, mean_labels=2.4),
    "tiny": Shape(n_train=300, n_dev=40, n_test=40, n_labels=30, mean_labels=3.0),
}


@dataclass
class LabelModel:
    """Label weights and topics from which documents' label sets are drawn.

    Build one with :meth:`create`; draw label sets with :meth:`sample`. All splits of a dataset
    share one model, so that dev and test follow the training distribution.

    Attributes:
        weights: (K,) float64, unnormalised draw weight of each label.
        cluster: (K,) int64, topic of each label.
        n_clusters: number of topics.
        in_cluster: probability that a label is drawn from the document's topic.
    """

    weights: np.ndarray
    cluster: np.ndarray
    n_clusters: int
    in_cluster: float

    @classmethod
    def create(cls, n_labels: int, *, n_clusters: int | None = None, zipf: float = 1.0,
               in_cluster: float = 0.8, seed: int = 0) -> "LabelModel":
        """A random label model.

        Args:
            n_labels: K.
            n_clusters: number of topics; default ``round(sqrt(K))``.
            zipf: exponent of the Zipf-like weights (0 gives uniform labels).
            in_cluster: probability that a label comes from the document's topic.
            seed: random seed.
        """
        if n_labels < 1:
            raise ValueError("n_labels must be at least 1")
        if not 0.0 <= in_cluster <= 1.0:
            raise ValueError("in_cluster must be in [0, 1]")
        rng = np.random.default_rng(seed)
        n_clusters = int(n_clusters or max(1, round(np.sqrt(n_labels))))
        n_clusters = min(n_clusters, n_labels)
        popularity = rng.permutation(n_labels)
        weights = 1.0 / (popularity + 1.0) ** zipf
        # Every topic gets at least one label: deal a permutation round-robin.
        cluster = np.empty(n_labels, dtype=np.int64)
        cluster[rng.permutation(n_labels)] = np.arange(n_labels) % n_clusters
        return cls(weights=weights, cluster=cluster, n_clusters=n_clusters, in_cluster=in_cluster)

    def _tables(self):
        """Labels grouped by topic, their cumulative weights and each topic's weight range."""
        order = np.argsort(self.cluster, kind="stable")
        cum = np.cumsum(self.weights[order])
        bounds = np.searchsorted(self.cluster[order], np.arange(self.n_clusters + 1))
        low = np.concatenate([[0.0], cum])[bounds[:-1]]
        high = cum[bounds[1:] - 1]
        return order, cum, bounds, low, high

    def sample(self, n_docs: int, mean_labels: float, rng: np.random.Generator,
               max_rounds: int = 30) -> tuple[sp.csr_matrix, np.ndarray]:
        """Draw the label sets of ``n_docs`` documents.

        Args:
            n_docs: number of documents.
            mean_labels: mean labels per document (at least 1).
            rng: random generator.
            max_rounds: rounds of redrawing duplicate labels; after the fifth, missing labels
                are drawn uniformly so that small, skewed topics cannot stall the loop.

        Returns:
            (binary CSR matrix documents x labels with sorted indices, (n_docs,) topic of each
            document).
        """
        n_labels = len(self.weights)
        if mean_labels < 1:
            raise ValueError("mean_labels must be at least 1")
        order, cum, bounds, low, high = self._tables()
        topic_p = (high - low) / cum[-1]
        topic = rng.choice(self.n_clusters, size=n_docs, p=topic_p)
        target = np.minimum(1 + rng.poisson(mean_labels - 1.0, size=n_docs), n_labels)

        def draw(docs: np.ndarray, uniform: bool) -> np.ndarray:
            if uniform:
                return rng.integers(0, n_labels, size=len(docs))
            t = topic[docs]
            local = rng.random(len(docs)) < self.in_cluster
            u = rng.random(len(docs))
            # One inverse-CDF lookup serves both cases: a topic's labels are contiguous in
            # `order`, so its draws are uniform numbers inside its slice of the cumulative sum.
            value = np.where(local, low[t] + u * (high[t] - low[t]), u * cum[-1])
            pos = np.searchsorted(cum, value, side="right")
            # Rounding can land one past a slice's end (or the array's): pull it back inside.
            pos = np.where(local, np.clip(pos, bounds[t], bounds[t + 1] - 1), np.minimum(pos, n_labels - 1))
            return order[pos]

        # Keys doc * K + label keep (document, label) pairs sortable and deduplicable in one array.
        finished: list[np.ndarray] = []
        pending = np.empty(0, dtype=np.int64)
        active = np.arange(n_docs)
        have = np.zeros(n_docs, dtype=np.int64)
        for round_ in range(max_rounds):
            docs = np.repeat(active, target[active] - have[active])
            labels = draw(docs, uniform=round_ >= 5)
            keys = _sorted_unique(np.concatenate([pending, docs.astype(np.int64) * n_labels + labels]))
            key_doc = keys // n_labels
            have = np.bincount(key_doc, minlength=n_docs)
            complete = have[key_doc] >= target[key_doc]
            finished.append(keys[complete])
            pending = keys[~complete]
            active = np.unique(key_doc[~complete])
            if active.size == 0:
                break
        finished.append(pending)  # documents still short after max_rounds keep what they have
        keys = np.sort(np.concatenate(finished))
        key_doc = keys // n_labels
        indptr = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(np.bincount(key_doc, minlength=n_docs), out=indptr[1:])
        indices = (keys % n_labels).astype(np.int32)
        matrix = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr),
                               shape=(n_docs, n_labels))
        matrix.has_sorted_indices = True
        return matrix, topic


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (NumPy 2's hash-based ``np.unique`` is slower on large int64 keys)."""
    values = np.sort(values)
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def label_ids(n_labels: int) -> list[str]:
    """Zero-padded label ids ``L00000``..., so that sorted order equals index order."""
    width = len(str(max(n_labels - 1, 0)))
    return [f"L{k:0{width}d}" for k in range(n_labels)]


def _texts(topic: np.ndarray, n_clusters: int, words: int, rng: np.random.Generator) -> pa.Array:
    """Bags of ``words`` words per document: half its topic's words, half general words."""
    per_topic, general = 20, 2000
    n_docs = len(topic)
    vocab = pa.array([f"t{c}w{j}" for c in range(n_clusters) for j in range(per_topic)]
                     + [f"w{j}" for j in range(general)])
    own = rng.random((n_docs, words)) < 0.5
    topic_word = topic[:, None] * per_topic + rng.integers(0, per_topic, size=(n_docs, words))
    general_word = n_clusters * per_topic + rng.integers(0, general, size=(n_docs, words))
    word = np.where(own, topic_word, general_word).ravel()
    offsets = pa.array(np.arange(n_docs + 1, dtype=np.int32) * words)
    return pc.binary_join(pa.ListArray.from_arrays(offsets, vocab.take(pa.array(word))), " ")


def _table(split: str, matrix: sp.csr_matrix, topic: np.ndarray, vocab: pa.Array,
           n_clusters: int, words: int, rng: np.random.Generator) -> pa.Table:
    n_docs = matrix.shape[0]
    ids = pa.array([f"{split}-{i}" for i in range(n_docs)], type=pa.string())
    offsets = pa.array(matrix.indptr.astype(np.int32))
    labels = pa.ListArray.from_arrays(offsets, vocab.take(pa.array(matrix.indices)))
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("labels", pa.list_(pa.string()))])
    return pa.table({"id": ids, "text": _texts(topic, n_clusters, words, rng), "labels": labels},
                    schema=schema)


def generate_store(dataset_dir: str | Path, shape: Shape | None = None, *, n_train: int | None = None,
                   n_labels: int | None = None, mean_labels: float | None = None, n_dev: int = 0,
                   n_test: int = 0, n_clusters: int | None = None, zipf: float = 1.0,
                   in_cluster: float = 0.8, words: int = 12, seed: int = 0) -> dict:
    """Write a synthetic dataset store (Parquet splits, ``label_vocab.tsv``, ``stats.json``).

    The folder is written atomically and replaces an existing one. Give either ``shape`` or
    ``n_train``, ``n_labels`` and ``mean_labels`` (plus optional ``n_dev``/``n_test``).

    Args:
        dataset_dir: the store folder (``data/<dataset>`` layout).
        shape: the dataset's size, e.g. ``SHAPES["pubmed"]``.
        n_train, n_labels, mean_labels, n_dev, n_test: the size, when ``shape`` is not given.
        n_clusters: number of topics (default ``round(sqrt(K))``).
        zipf: exponent of the label weights.
        in_cluster: probability that a label is drawn from the document's topic.
        words: words per document text.
        seed: random seed; the same arguments and seed give the same store.

    Returns:
        The content of ``stats.json`` (the store's statistics plus the generator's settings).
    """
    if shape is None:
        if n_train is None or n_labels is None or mean_labels is None:
            raise ValueError("give a shape or n_train, n_labels and mean_labels")
        shape = Shape(n_train=n_train, n_labels=n_labels, mean_labels=mean_labels, n_dev=n_dev, n_test=n_test)
    if words < 1:
        raise ValueError("words must be at least 1 (the store rejects empty texts)")
    dataset_dir = Path(dataset_dir)
    model = LabelModel.create(shape.n_labels, n_clusters=n_clusters, zipf=zipf,
                              in_cluster=in_cluster, seed=seed)
    ids = label_ids(shape.n_labels)
    vocab = pa.array(ids, type=pa.string())
    sizes = {"train": shape.n_train, "dev": shape.n_dev, "test": shape.n_test}
    splits = {}
    with atomic_dir(dataset_dir) as tmp:
        for index, (split, n_docs) in enumerate(sizes.items()):
            # One generator per split: a split's content does not depend on the other sizes.
            rng = np.random.default_rng([seed, index])
            matrix, topic = model.sample(n_docs, shape.mean_labels, rng)
            table = _table(split, matrix, topic, vocab, model.n_clusters, words, rng)
            pq.write_table(table, tmp / f"{split}.parquet", compression="zstd", row_group_size=65_536)
            counts = np.diff(matrix.indptr)
            splits[split] = {
                "documents": int(n_docs),
                "labels_present": int(np.count_nonzero(np.bincount(matrix.indices, minlength=shape.n_labels))),
                "avg_labels": round(float(counts.mean()) if n_docs else 0.0, 4),
                "avg_words": float(words) if n_docs else 0.0,
            }
        with open(tmp / VOCAB_FILE, "w", encoding="utf-8", newline="") as handle:
            handle.write("label\tname\n")
            for k, label in enumerate(ids):
                handle.write(f"{label}\tsynthetic label {k} (topic {model.cluster[k]})\n")
        stats = {
            "dataset": dataset_dir.name,
            "labels": shape.n_labels,
            "splits": splits,
            "dev_fraction": 0.0,
            "merge_train_dev": False,
            "train_standin": None,
            "source": "synthetic (bench.synthetic)",
            "synthetic": {**dataclasses.asdict(shape), "n_clusters": model.n_clusters, "zipf": zipf,
                          "in_cluster": in_cluster, "words": words, "seed": seed},
        }
        (tmp / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.synthetic OUTPUT [--shape NAME | --train N --labels K --mean-labels M]``."""
    parser = argparse.ArgumentParser(prog="python -m bench.synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="store folder to write (replaced if it exists)")
    parser.add_argument("--shape", choices=sorted(SHAPES), help="a preset size (overridden by the options below)")
    parser.add_argument("--train", type=int, help="training documents")
    parser.add_argument("--dev", type=int, help="dev documents")
    parser.add_argument("--test", type=int, help="test documents")
    parser.add_argument("--labels", type=int, help="number of labels K")
    parser.add_argument("--mean-labels", type=float, help="mean labels per document")
    parser.add_argument("--clusters", type=int, help="number of label topics (default sqrt(K))")
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of label weights")
    parser.add_argument("--in-cluster", type=float, default=0.8, help="share of labels drawn from the topic")
    parser.add_argument("--words", type=int, default=12, help="words per document text")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    base = SHAPES[args.shape] if args.shape else Shape(n_train=0, n_labels=0, mean_labels=0.0)
    shape = Shape(
        n_train=args.train if args.train is not None else base.n_train,
        n_labels=args.labels if args.labels is not None else base.n_labels,
        mean_labels=args.mean_labels if args.mean_labels is not None else base.mean_labels,
        n_dev=args.dev if args.dev is not None else base.n_dev,
        n_test=args.test if args.test is not None else base.n_test,
    )
    if shape.n_train < 1 or shape.n_labels < 1 or shape.mean_labels < 1:
        parser.error("give --shape or --train, --labels and --mean-labels (>= 1)")
    start = time.perf_counter()
    stats = generate_store(args.output, shape, n_clusters=args.clusters, zipf=args.zipf,
                           in_cluster=args.in_cluster, words=args.words, seed=args.seed)
    elapsed = time.perf_counter() - start
    print(json.dumps(stats["splits"], indent=2))
    print(f"wrote {args.output} in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
