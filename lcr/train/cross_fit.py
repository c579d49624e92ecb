"""Cross-fitting the first prediction that LabelCoRank's reranking stage is trained on.

LabelCoRank's second stage starts from the first prediction S1: S is selected from it, and the
final logits correct it. Trained on its own training documents, that S1 has already learned
them: it is right there far more often than on unseen text, so the reranking stage is fit on
inputs unlike the ones it meets in use and learns to change little (the stacking trap).
Cross-fitting (``cross_fit_folds`` k >= 2) removes the gap: k first-stage models (the
``roberta`` variant, LabelCoRank's step 1 alone, same recipe and seed), model i trained on every
fold but i, score fold i; LabelCoRank then trains its second stage from these out-of-fold
logits, and uses its own S1 on every document it was not trained on (dev, test, serving).

This module owns the fold assignment and the out-of-fold logits file
(``<run>/cross_fit/out_of_fold_logits.npy``, float16, one row per training document of the run,
in the training split's order); :func:`lcr.train.loop.train` runs the fold models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lcr.atomic import atomic_open
from lcr.errors import LcrError
from lcr.runs import CROSS_FIT_DIR
LOGITS_FILE = "out_of_fold_logits.npy"
MAX_CELLS = 250_000_000  # N x K float16 cells held in memory (500 MB)


def fold_of(n_docs: int, folds: int, seed: int) -> np.ndarray:
    """Which fold each of n documents belongs to (N,), sizes within one of each other.

    The same for every run of a seed (the fold models and LabelCoRank must agree), drawn from
    ``(seed, folds)`` alone.
    """
    order = np.random.default_rng([seed, folds, 11]).permutation(n_docs)  # (N,)
    fold = np.empty(n_docs, dtype=np.int64)
    fold[order] = np.arange(n_docs) % folds
    return fold


def fold_dir(output_dir: str | Path, fold: int) -> Path:
    """Where fold model ``fold`` of a cross-fitted run trains."""
    return Path(output_dir) / CROSS_FIT_DIR / f"fold-{fold}"


def logits_path(output_dir: str | Path) -> Path:
    return Path(output_dir) / CROSS_FIT_DIR / LOGITS_FILE


def check_size(n_docs: int, num_labels: int) -> None:
    """Refuse a cross-fit whose N x K logits would not fit in memory, before anything trains."""
    if n_docs * num_labels > MAX_CELLS:
        raise LcrError(f"cross_fit_folds: the out-of-fold logits of {n_docs:,} training documents x "
                       f"{num_labels:,} labels ({n_docs * num_labels:,} cells) exceed {MAX_CELLS:,}; "
                       "cap the training split (max_train_docs) or set cross_fit_folds: 0")


def save_logits(output_dir: str | Path, logits: np.ndarray) -> Path:
    """Write the out-of-fold logits (N x K) atomically; returns the path."""
    path = logits_path(output_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        np.save(handle, logits.astype(np.float16), allow_pickle=False)
    return path


def load_logits(output_dir: str | Path, n_docs: int, num_labels: int) -> np.ndarray | None:
    """The saved out-of-fold logits (N x K float16), or None when there are none yet.

    Raises:
        LcrError: the file does not hold N x K logits (another split or label set).
    """
    path = logits_path(output_dir)
    if not path.exists():
        return None
    try:
        logits = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise LcrError(f"{path}: not a readable logits file ({exc}); remove it to cross-fit again") from exc
    if logits.shape != (n_docs, num_labels):
        raise LcrError(f"{path} holds {logits.shape[0]} x {logits.shape[1]} logits, but this run trains on "
                       f"{n_docs} documents with {num_labels} labels; remove it to cross-fit again")
    return logits
