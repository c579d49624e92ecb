"""Label artifacts computed from the training split: frequencies, ranks, co-occurrence, subsets.

LabelCoRank needs, besides the text encoder, three statistics of the training labels:

* the **frequency** of every label (training documents holding it) and its **frequency rank**,
  by which the model reorders the expanded label sequence;
* the **co-occurrence matrix** ``M`` (``m_ij`` = training documents holding both ``i`` and
  ``j``), with which confident labels are expanded. The paper does not say whether it used the
  raw counts or a normalised variant, so both are offered: :func:`cooccurrence` (counts) and
  :func:`conditional_cooccurrence` (``P(j | i) = m_ij / n_i``); training selects one with
  ``cooccurrence: counts | conditional``;
* the **head labels** (the 10% most frequent) and the head and tail **document subsets** of the
  paper's Tables 5 and 6, on which results are also reported.

Only the training split is used for the statistics, so nothing leaks from dev or test; dev and
test are read only to list their head and tail documents.

Files written by :func:`prepare` into ``data/<dataset>/labels/`` (the folder appears at once)::

    frequencies.csv               index,label,name,frequency,rank,head   (rank 0 = most frequent,
                                                                          head 1/0)
    cooccurrence.npz              K x K int32 counts, CSR (scipy.sparse.save_npz layout;
                                  read with scipy.sparse.load_npz)
    cooccurrence_conditional.npz  K x K float32 P(j | i), CSR, likewise
    subsets.json                  head fraction, head labels, n_train, and per dev/test split the
                                  sizes and document ids of the head and tail subsets
    label_distribution.csv        rank (1-based),frequency  (a DVC plot; all labels)
    label_distribution.png        the paper's Fig. 2 (top 1% labels omitted, as in the paper)

Everything is vectorised over sparse matrices: on PubMed (718,837 training documents, 17,963
labels) the whole of :func:`prepare` takes seconds (``bench/bench_prepare.py``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from lcr.atomic import atomic_dir
from lcr.datasets import store
from lcr.errors import LcrError
from lcr.report.plots import plot_label_distribution

FREQUENCIES_FILE = "frequencies.csv"
COOC_FILE = "cooccurrence.npz"
COOC_CONDITIONAL_FILE = "cooccurrence_conditional.npz"
SUBSETS_FILE = "subsets.json"
DISTRIBUTION_CSV = "label_distribution.csv"
DISTRIBUTION_PNG = "label_distribution.png"
EVAL_SPLITS = ("dev", "test")

SUBSET_DEFINITIONS = {
    "head": "documents with at least one label, all of which are head labels",
    "tail": "documents with at least one label, at most two of which are head labels",
}


# --------------------------------------------------------------------------------------------
# Statistics


def _binary(Y) -> sp.csr_matrix:
    """``Y`` as a CSR matrix of int32 ones: duplicates summed, explicit zeros dropped.

    Any non-zero entry counts as a label. The index arrays are shared with ``Y`` when it is
    already a clean CSR matrix (as :func:`lcr.datasets.store.label_matrix` returns), so this
    costs one int32 array of ones.
    """
    Y = sp.csr_matrix(Y)
    if not Y.has_canonical_format:
        Y = Y.copy()
        Y.sum_duplicates()
    if Y.nnz and not Y.data.all():
        Y = Y.copy()
        Y.eliminate_zeros()
    return sp.csr_matrix((np.ones(Y.nnz, dtype=np.int32), Y.indices, Y.indptr), shape=Y.shape)


def label_frequencies(Y) -> np.ndarray:
    """Number of documents holding each label.

    Args:
        Y: binary label matrix, documents x labels (any scipy sparse format or dense array).

    Returns:
        (K,) int64 counts.
    """
    Y = _binary(Y)
    return np.bincount(Y.indices, minlength=Y.shape[1]).astype(np.int64)


def frequency_rank(freq: np.ndarray) -> np.ndarray:
    """Rank of each label by frequency: 0 for the most frequent.

    Ties are broken by label index (the lower index ranks first), so the ranking is
    deterministic.

    Args:
        freq: (K,) label frequencies.

    Returns:
        (K,) int64, ``rank[label]``.
    """
    freq = np.asarray(freq)
    order = np.argsort(-freq.astype(np.int64), kind="stable")  # stable sort: ties keep index order
    rank = np.empty(len(freq), dtype=np.int64)
    rank[order] = np.arange(len(freq), dtype=np.int64)
    return rank


def cooccurrence(Y) -> sp.csr_matrix:
    """Label co-occurrence counts ``m_ij`` = documents holding both ``i`` and ``j``.

    Computed as the sparse product ``Y^T Y`` (never dense: K x K is 323 M cells on PubMed),
    with int32 values and indices whenever they fit, the diagonal (a label's own frequency)
    set to zero and removed, explicit zeros eliminated and column indices sorted.

    Args:
        Y: binary label matrix, documents x labels.

    Returns:
        K x K symmetric CSR matrix of integer counts (int32 unless a count could exceed it).
    """
    Y = _binary(Y)
    if Y.shape[0] >= np.iinfo(np.int32).max:  # a count can reach the number of documents
        Y = Y.astype(np.int64)
    counts = Y.T.tocsr() @ Y
    counts = sp.csr_matrix(counts)
    n_labels = Y.shape[1]
    rows = np.repeat(np.arange(n_labels, dtype=counts.indices.dtype), np.diff(counts.indptr))
    counts.data[rows == counts.indices] = 0
    del rows
    counts.eliminate_zeros()
    counts.sort_indices()
    return counts


def conditional_cooccurrence(M: sp.spmatrix, freq: np.ndarray) -> sp.csr_matrix:
    """Row-normalised co-occurrence ``P(j | i) = m_ij / freq_i``.

    The paper does not say whether it used counts or a normalisation of them; this is the
    conditional variant, selectable in training (``cooccurrence: conditional``). Rows of labels
    that never occur in training (``freq_i = 0``) stay empty.

    Args:
        M: K x K co-occurrence counts (:func:`cooccurrence`).
        freq: (K,) label frequencies (:func:`label_frequencies`).

    Returns:
        K x K float32 CSR matrix sharing ``M``'s sparsity pattern (minus rows with freq 0).
    """
    M = sp.csr_matrix(M)
    freq = np.asarray(freq, dtype=np.float64)
    if M.shape[0] != len(freq):
        raise ValueError(f"M has {M.shape[0]} rows but freq has {len(freq)} labels")
    row_freq = np.repeat(freq, np.diff(M.indptr))
    known = row_freq > 0
    data = np.zeros(M.nnz, dtype=np.float32)
    np.divide(M.data, row_freq, out=data, where=known, casting="unsafe")
    if known.all():
        # The usual case (M and freq from the same labels): share M's index arrays.
        result = sp.csr_matrix((data, M.indices, M.indptr), shape=M.shape)
    else:
        result = sp.csr_matrix((data, M.indices.copy(), M.indptr.copy()), shape=M.shape)
        result.eliminate_zeros()
    result.has_sorted_indices = M.has_sorted_indices
    return result


def head_label_mask(freq: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """The head labels: the ``ceil(fraction * K)`` most frequent (by :func:`frequency_rank`).

    Args:
        freq: (K,) label frequencies.
        fraction: share of labels that are head labels, in [0, 1] (the paper: 10%).

    Returns:
        (K,) bool.
    """
    if not 0.0 <= fraction <= 1.0:  # also rejects NaN
        raise LcrError(f"head fraction must be in [0, 1], got {fraction}")
    n_labels = len(freq)
    # round() first: 0.1 * 30 is 3.0000000000000004 in floating point, whose ceil would be 4.
    n_head = min(math.ceil(round(fraction * n_labels, 9)), n_labels)
    return frequency_rank(freq) < n_head


def subset_masks(Y_eval, head_mask: np.ndarray) -> dict[str, np.ndarray]:
    """The head and tail document subsets of the paper's Tables 5 and 6.

    * head: documents whose labels are **all** head labels;
    * tail: documents with **at most two** head labels.

    A document without any gold label belongs to neither: it has no head label and no tail
    label, and it scores 0 on every metric whatever the prediction, so counting it in the tail
    subset would only dilute the tail scores.

    Args:
        Y_eval: binary label matrix of the evaluated documents (N x K).
        head_mask: (K,) bool, :func:`head_label_mask`.

    Returns:
        ``{"head": (N,) bool, "tail": (N,) bool}``.
    """
    Y = _binary(Y_eval)
    head_mask = np.asarray(head_mask, dtype=bool)
    if Y.shape[1] != len(head_mask):
        raise ValueError(f"Y_eval has {Y.shape[1]} labels but head_mask has {len(head_mask)}")
    n_labels = np.diff(Y.indptr)
    n_head = np.asarray(Y @ head_mask.astype(np.int32)).ravel()
    labelled = n_labels > 0
    return {"head": labelled & (n_head == n_labels), "tail": labelled & (n_head <= 2)}


def distribution_table(freq: np.ndarray, vocab: list[str]):
    """Label frequency distribution, most frequent first (the data of the paper's Fig. 2).

    Args:
        freq: (K,) label frequencies.
        vocab: (K,) label ids.

    Returns:
        ``pandas.DataFrame`` with columns ``rank`` (1-based), ``label``, ``frequency``.
    """
    import pandas as pd

    freq = np.asarray(freq, dtype=np.int64)
    if len(freq) != len(vocab):
        raise ValueError(f"freq has {len(freq)} labels but vocab has {len(vocab)}")
    order = np.argsort(frequency_rank(freq))
    return pd.DataFrame({
        "rank": np.arange(1, len(freq) + 1, dtype=np.int64),
        "label": np.asarray(vocab, dtype=object)[order],
        "frequency": freq[order],
    })


# --------------------------------------------------------------------------------------------
# Artifacts on disk


def save_npz(path: str | Path, matrix: sp.csr_matrix) -> None:
    """Write a CSR matrix as ``scipy.sparse.save_npz`` does, but deflated at level 1.

    The file has the same members (``data``, ``indices``, ``indptr``, ``format``, ``shape``), so
    ``scipy.sparse.load_npz`` (and ``numpy.load``) read it unchanged. ``save_npz`` deflates at
    zlib's default level 6, which spends about 7 s per matrix on PubMed-sized sorted column
    indices (half of the whole ``prepare``) for files only about 5% smaller.
    """
    import zipfile

    matrix = sp.csr_matrix(matrix)
    members = {
        "indices": matrix.indices,
        "indptr": matrix.indptr,
        "format": np.array(matrix.format.encode("ascii")),
        "shape": np.array(matrix.shape),
        "data": matrix.data,
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1,
                         allowZip64=True) as archive:
        for name, array in members.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


@dataclass
class LabelArtifacts:
    """Everything :func:`prepare` computes, as saved in ``data/<dataset>/labels/``.

    Attributes:
        vocab: (K,) label ids, in label-index order.
        names: (K,) human-readable label names.
        freq: (K,) int64 training frequency of each label.
        rank: (K,) int64 frequency rank (0 = most frequent).
        cooc: K x K int32 CSR co-occurrence counts.
        cooc_conditional: K x K float32 CSR ``P(j | i)``.
        head_mask: (K,) bool, the head labels.
        n_train: number of training documents.
        head_fraction: share of labels that are head labels.
        subset_sizes: per evaluated split (``dev``, ``test`` when present):
            ``{"documents": N, "head": n_head_docs, "tail": n_tail_docs}``.
        subset_ids: per evaluated split: ``{"head": [doc ids], "tail": [doc ids]}``.
    """

    vocab: list[str]
    names: list[str]
    freq: np.ndarray
    rank: np.ndarray
    cooc: sp.csr_matrix
    cooc_conditional: sp.csr_matrix
    head_mask: np.ndarray
    n_train: int
    head_fraction: float
    subset_sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    subset_ids: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @property
    def n_labels(self) -> int:
        """K."""
        return len(self.vocab)

    @property
    def n_head(self) -> int:
        """Number of head labels."""
        return int(self.head_mask.sum())

    def summary(self) -> dict:
        """The content of ``subsets.json``."""
        return {
            "head_fraction": self.head_fraction,
            "n_labels": self.n_labels,
            "n_head_labels": self.n_head,
            "n_train": self.n_train,
            "cooccurrence_nnz": int(self.cooc.nnz),
            "definitions": SUBSET_DEFINITIONS,
            "sizes": self.subset_sizes,
            "ids": self.subset_ids,
        }

    def save(self, directory: str | Path) -> Path:
        """Write all artifact files into ``directory``, replacing it as a whole, atomically.

        Args:
            directory: normally ``data/<dataset>/labels``.

        Returns:
            ``directory``.
        """
        import pandas as pd

        directory = Path(directory)
        dataset = directory.resolve().parent.name
        with atomic_dir(directory) as tmp:
            pd.DataFrame({
                "index": np.arange(self.n_labels, dtype=np.int64),
                "label": self.vocab,
                "name": self.names,
                "frequency": self.freq,
                "rank": self.rank,
                "head": self.head_mask.astype(np.int8),
            }).to_csv(tmp / FREQUENCIES_FILE, index=False)
            save_npz(tmp / COOC_FILE, self.cooc)
            save_npz(tmp / COOC_CONDITIONAL_FILE, self.cooc_conditional)
            (tmp / SUBSETS_FILE).write_text(json.dumps(self.summary(), indent=1) + "\n", encoding="utf-8")
            distribution_table(self.freq, self.vocab)[["rank", "frequency"]].to_csv(
                tmp / DISTRIBUTION_CSV, index=False)
            plot_label_distribution(self.freq, tmp / DISTRIBUTION_PNG,
                                    title=f"Label frequency distribution ({dataset}, train)")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "LabelArtifacts":
        """Read artifacts written by :meth:`save`.

        Raises:
            LcrError: a file is missing or the files disagree with each other.
        """
        import pandas as pd

        directory = Path(directory)
        redo = f"run `lcr prepare {directory.resolve().parent.name}` again"
        for name in (FREQUENCIES_FILE, COOC_FILE, COOC_CONDITIONAL_FILE, SUBSETS_FILE):
            if not (directory / name).exists():
                raise LcrError(f"{directory / name} is missing: {redo}")
        # Label ids such as "NA" or "null" must stay strings: no NA detection.
        table = pd.read_csv(directory / FREQUENCIES_FILE, dtype={"label": str, "name": str},
                            keep_default_na=False, na_filter=False)
        summary = json.loads((directory / SUBSETS_FILE).read_text(encoding="utf-8"))
        cooc = sp.csr_matrix(sp.load_npz(directory / COOC_FILE))
        cooc_conditional = sp.csr_matrix(sp.load_npz(directory / COOC_CONDITIONAL_FILE))
        n_labels = len(table)
        if cooc.shape != (n_labels, n_labels) or cooc_conditional.shape != (n_labels, n_labels):
            raise LcrError(f"{directory}: the co-occurrence matrices do not match the "
                           f"{n_labels} labels of {FREQUENCIES_FILE}: {redo}")
        return cls(
            vocab=table["label"].tolist(),
            names=table["name"].tolist(),
            freq=table["frequency"].to_numpy(dtype=np.int64),
            rank=table["rank"].to_numpy(dtype=np.int64),
            cooc=cooc,
            cooc_conditional=cooc_conditional,
            head_mask=table["head"].to_numpy().astype(bool),
            n_train=int(summary["n_train"]),
            head_fraction=float(summary["head_fraction"]),
            subset_sizes=summary.get("sizes", {}),
            subset_ids=summary.get("ids", {}),
        )


# --------------------------------------------------------------------------------------------
# The prepare step


def _subsets(dataset_dir: Path, split: str, vocab: list[str], head_mask: np.ndarray):
    """Sizes and document ids of a split's head and tail subsets."""
    import pyarrow as pa

    ids = store.read_split(dataset_dir, split, columns=["id"]).column("id")
    masks = subset_masks(store.label_matrix(dataset_dir, split, vocab), head_mask)
    sizes = {"documents": len(ids), **{name: int(mask.sum()) for name, mask in masks.items()}}
    # Filter in Arrow: only the selected ids become Python strings.
    chosen = {name: ids.filter(pa.array(mask)).to_pylist() for name, mask in masks.items()}
    return sizes, chosen


def prepare(dataset_dir: str | Path, head_fraction: float = 0.1, show_progress: bool = True) -> LabelArtifacts:
    """Compute the label artifacts of a fetched dataset and save them into ``labels/``.

    Statistics come from the training split only; the dev and test splits (those present) are
    read to list their head and tail documents. The ``labels/`` folder is replaced as a whole
    once everything is written; on any error the previous folder (or none) stays in place.

    Args:
        dataset_dir: ``data/<dataset>``, a store written by ``lcr fetch``.
        head_fraction: share of the most frequent labels that are head labels.
        show_progress: show a progress bar over the steps on stderr.

    Returns:
        The artifacts, as saved.

    Raises:
        LcrError: the dataset (or its training split) was not fetched, a label is missing
            from the vocabulary, or ``head_fraction`` is out of range.
    """
    from tqdm.auto import tqdm

    dataset_dir = Path(dataset_dir)
    train_path = store.split_path(dataset_dir, "train")
    if not train_path.exists():
        raise LcrError(f"{dataset_dir.name} has no training split ({train_path} is missing): "
                       f"run `lcr fetch {dataset_dir.name}` first")
    if not 0.0 <= head_fraction <= 1.0:
        raise LcrError(f"head fraction must be in [0, 1], got {head_fraction}")
    vocab, names = store.read_vocab(dataset_dir)
    eval_splits = [s for s in EVAL_SPLITS if store.split_path(dataset_dir, s).exists()]

    with tqdm(total=4 + len(eval_splits), desc=f"prepare {dataset_dir.name}", unit="step",
              disable=not show_progress) as bar:
        bar.set_postfix_str("reading train labels")
        Y = store.label_matrix(dataset_dir, "train", vocab)
        n_train = Y.shape[0]
        freq = label_frequencies(Y)
        bar.update()
        bar.set_postfix_str("co-occurrence")
        counts = cooccurrence(Y)
        del Y  # the largest object so far; free it before the evaluation splits are read
        conditional = conditional_cooccurrence(counts, freq)
        bar.update()
        head = head_label_mask(freq, head_fraction)
        sizes, ids = {}, {}
        for split in eval_splits:
            bar.set_postfix_str(f"{split} subsets")
            sizes[split], ids[split] = _subsets(dataset_dir, split, vocab, head)
            bar.update()
        artifacts = LabelArtifacts(
            vocab=vocab, names=names, freq=freq, rank=frequency_rank(freq), cooc=counts,
            cooc_conditional=conditional, head_mask=head, n_train=n_train,
            head_fraction=float(head_fraction), subset_sizes=sizes, subset_ids=ids)
        bar.update()
        bar.set_postfix_str("writing")
        artifacts.save(dataset_dir / store.LABELS_DIR)
        bar.update()
    return artifacts


__all__ = [
    "LabelArtifacts", "label_frequencies", "frequency_rank", "cooccurrence", "conditional_cooccurrence",
    "head_label_mask", "subset_masks", "distribution_table", "prepare", "save_npz",
]
