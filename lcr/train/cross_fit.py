"""Cross-fitting the first prediction that LabelCoRank's reranking stage is trained on.

LabelCoRank's second stage starts from the first prediction S1: S is selected from it, and the
final logits correct it. Trained on its own training documents, that S1 has already learned
them: it is right there far more often than on unseen text, so the reranking stage is fit on
inputs unlike the ones it meets in use and learns to change little (the stacking trap).
Cross-fitting (``cross_fit_folds`` k >= 2) removes the gap: k first-stage models (the
``roberta`` variant, LabelCoRank's step 1 alone, same recipe and seed), model i trained on every
fold but i, score fold i; LabelCoRank then trains its second stage from these out-of-fold
logits, and uses its own S1 on every document it was not trained on (dev, test, serving).

``first_in_training: unseen`` is the same idea at no extra training cost: a training document's
S1 logits as the model gave them on its first visit (the first epoch's forward pass runs before
the step that trains on the document) stand in for its current S1 from the second epoch on
(:class:`UnseenFirst`); they are out-of-sample, but as old as the first epoch's model.

This module owns the fold assignment and the out-of-fold logits file
(``<run>/cross_fit/out_of_fold_logits.npy``, float16, one row per training document of the run,
in the training split's order); :func:`lcr.train.loop.train` runs the fold models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

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


def check_size(n_docs: int, num_labels: int, setting: str = "cross_fit_folds", off: str = "0") -> None:
    """Refuse out-of-sample logits (N x K) that would not fit in memory, before anything trains;
    ``setting: off`` is what turns them off."""
    if n_docs * num_labels > MAX_CELLS:
        raise LcrError(f"{setting}: the out-of-sample logits of {n_docs:,} training documents x "
                       f"{num_labels:,} labels ({n_docs * num_labels:,} cells) exceed {MAX_CELLS:,}; "
                       f"cap the training split (max_train_docs) or set {setting}: {off}")


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


class UnseenFirst:
    """Each training document's S1 logits from its first visit, for ``first_in_training: unseen``.

    In the first epoch the model scores every document before any optimiser step has trained on
    it; :meth:`record` keeps those logits (N x K, on the CPU), and from the second epoch
    on :meth:`of` hands them to the reranking stage in place of the model's current S1. With
    several processes every one records every process's share of a batch, so that all hold the
    same logits (and rank 0's checkpoint all of them); a document seen twice in the first epoch
    (the padding of the last batch across processes) keeps the mean.
    """

    def __init__(self, n_docs: int, num_labels: int):
        check_size(n_docs, num_labels, "first_in_training", "current")
        self.sums = torch.zeros(n_docs, num_labels, dtype=torch.float32)  # (N, K) logits summed over visits
        self.visits = torch.zeros(n_docs, dtype=torch.int32)  # (N,) first-epoch visits

    def record(self, positions, logits1: torch.Tensor) -> None:
        """Keep the first-epoch logits (B x K) of the documents at ``positions`` (B,)."""
        index = torch.as_tensor(np.asarray(positions), dtype=torch.long)  # (B,)
        self.sums.index_add_(0, index, logits1.detach().float().cpu())  # a repeated position adds twice
        self.visits.index_add_(0, index, torch.ones_like(index, dtype=torch.int32))

    def of(self, positions, device: torch.device) -> torch.Tensor:
        """The mean recorded logits (B x K) of the documents at ``positions``; all must have been seen."""
        index = torch.as_tensor(np.asarray(positions), dtype=torch.long)  # (B,)
        visits = self.visits[index]  # (B,)
        if not bool((visits > 0).all()):
            raise LcrError("first_in_training: unseen: a training document has no first-epoch logits")
        return (self.sums[index] / visits[:, None]).to(device)  # (B, K)

    def state_dict(self) -> dict:
        return {"sums": self.sums, "visits": self.visits}

    def load_state_dict(self, state: dict) -> None:
        if tuple(state["sums"].shape) != tuple(self.sums.shape):
            raise LcrError(f"the checkpoint's first-epoch logits are {tuple(state['sums'].shape)}, "
                           f"this run's training split needs {tuple(self.sums.shape)}")
        self.sums, self.visits = state["sums"], state["visits"]
