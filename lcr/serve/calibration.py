"""Label sets from rankings: the score threshold and label count chosen on the dev split.

Indexing needs a set of labels per document, not a ranking. :func:`fit_calibration` chooses, on
the dev split's ranked predictions, the global score threshold and the maximum number of labels
that maximise micro-F1; optionally each label that has at least ``min_support`` dev documents
gets its own threshold (the one that maximises that label's F1 within the chosen label count),
and the other labels keep the global one. The choice is stored as ``calibration.json`` in the
model folder (:func:`save_calibration`), where the predictor, the served model and
``lcr predict --mode set`` read it.

A document's set: the first ``max_labels`` labels of its ranking whose score reaches their
threshold (possibly none).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lcr.errors import LcrError

CALIBRATION_FILE = "calibration.json"
#: Candidate global thresholds (scores are sigmoid probabilities).
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.05, 0.96, 0.01))


@dataclass
class Calibration:
    """How a ranking becomes a label set.

    Attributes:
        threshold: the global score threshold.
        max_labels: at most this many labels per document.
        label_thresholds: label id -> its own threshold (``per_label`` only).
        dev_micro_f1: micro-F1 on the dev split with this choice.
        test_micro_f1: micro-F1 on the evaluation split (None until measured).
        per_label: whether per-label thresholds were fitted; min_support: their minimum dev
            documents.
    """

    threshold: float
    max_labels: int
    label_thresholds: dict[str, float] = field(default_factory=dict)
    dev_micro_f1: float = 0.0
    test_micro_f1: float | None = None
    per_label: bool = False
    min_support: int = 5

    def threshold_of(self, label: str) -> float:
        return self.label_thresholds.get(label, self.threshold)

    def select(self, ranked: list[dict]) -> list[dict]:
        """The label set of one ranking (``[{"label", "score", ...}]``, best first)."""
        return [r for r in ranked[:self.max_labels] if r["score"] >= self.threshold_of(r["label"])]


def _hits(gold_rows: list[set[int]], topk: np.ndarray) -> np.ndarray:
    """(N, k) bool: is the label at each rank a gold label of its document."""
    return np.array([[j in gold for j in row] for gold, row in zip(gold_rows, topk)], dtype=bool).reshape(topk.shape)


def set_micro_f1(hits: np.ndarray, chosen: np.ndarray, n_gold: int) -> float:
    """Micro-F1 of label sets: ``chosen`` (N, k) bool marks the ranked labels that are in the set."""
    tp = int((hits & chosen).sum())
    denominator = int(chosen.sum()) + n_gold
    return 2.0 * tp / denominator if denominator else 0.0


def _f1_per_threshold(scores: np.ndarray, hits: np.ndarray, grid: np.ndarray, n_gold: int) -> np.ndarray:
    """Micro-F1 of "every candidate whose score reaches t" for each t of ``grid`` at once: the
    candidates sorted by score, the predicted and true-positive counts read off cumulative sums."""
    values = np.nan_to_num(scores.ravel(), nan=-1.0)
    order = np.argsort(values, kind="stable")
    ordered, ordered_hits = values[order], hits.ravel()[order]
    below = np.searchsorted(ordered, grid, side="left")  # (T,) candidates under each threshold
    hits_below = np.concatenate([[0], np.cumsum(ordered_hits)])[below]  # (T,)
    predicted = len(ordered) - below
    tp = int(ordered_hits.sum()) - hits_below
    return 2.0 * tp / np.maximum(predicted + n_gold, 1)


def _chosen(scores: np.ndarray, thresholds: np.ndarray, max_labels: int) -> np.ndarray:
    """(N, k) bool: within the first ``max_labels`` ranks, the scores that reach their thresholds."""
    rank_ok = np.arange(scores.shape[1])[None, :] < max_labels
    return rank_ok & (np.nan_to_num(scores, nan=-1.0) >= thresholds)


def fit_calibration(gold_rows: list[set[int]], topk: np.ndarray, scores: np.ndarray, vocab: list[str], *,
                    per_label: bool = False, min_support: int = 5) -> Calibration:
    """Choose the threshold and label count that maximise micro-F1 on these (dev) predictions.

    Args:
        gold_rows: each document's gold label indices.
        topk: ranked label indices (N x k, best first; -1 pads).
        scores: their scores (N x k, NaN where padded).
        vocab: label ids in index order (the keys of ``label_thresholds``).
        per_label: also fit a threshold per label with at least ``min_support`` dev documents.

    Raises:
        LcrError: no documents or no gold labels to calibrate on.
    """
    topk, scores = np.asarray(topk), np.asarray(scores, dtype=np.float64)
    n_gold = sum(len(g) for g in gold_rows)
    if len(gold_rows) == 0 or n_gold == 0:
        raise LcrError("calibration needs dev documents with gold labels")
    hits = _hits(gold_rows, topk)
    best = (-1.0, 0.5, 1)
    grid = np.asarray(THRESHOLDS)
    for max_labels in range(1, topk.shape[1] + 1):
        f1 = _f1_per_threshold(scores[:, :max_labels], hits[:, :max_labels], grid, n_gold)  # (T,)
        i = int(np.argmax(f1))  # the first (lowest) threshold among equals
        if f1[i] > best[0] + 1e-12:
            best = (float(f1[i]), float(grid[i]), max_labels)
    f1, threshold, max_labels = best
    calibration = Calibration(threshold=float(threshold), max_labels=int(max_labels), dev_micro_f1=round(f1, 6),
                              per_label=per_label, min_support=min_support)
    if per_label:
        support = np.bincount([j for g in gold_rows for j in g], minlength=len(vocab))
        in_reach = np.arange(topk.shape[1])[None, :] < max_labels
        for label in np.flatnonzero(support >= min_support):
            at = (topk == label) & in_reach  # (N, k) where this label is a candidate
            if not at.any():
                continue
            label_scores, label_hits = scores[at], hits[at]
            best_label = (-1.0, threshold)
            for t in THRESHOLDS:
                tp = int((label_hits & (label_scores >= t)).sum())
                fp = int((~label_hits & (label_scores >= t)).sum())
                score = 2.0 * tp / (2 * tp + fp + (support[label] - tp))
                if score > best_label[0] + 1e-12:
                    best_label = (score, t)
            calibration.label_thresholds[vocab[label]] = float(best_label[1])
        calibration.dev_micro_f1 = round(evaluate_calibration(calibration, gold_rows, topk, scores, vocab), 6)
    return calibration


def evaluate_calibration(calibration: Calibration, gold_rows: list[set[int]], topk: np.ndarray,
                         scores: np.ndarray, vocab: list[str]) -> float:
    """Micro-F1 of the calibration's label sets on these predictions."""
    topk, scores = np.asarray(topk), np.asarray(scores, dtype=np.float64)
    thresholds = np.full(len(vocab) + 1, calibration.threshold)  # the last entry: padding (-1)
    index = {label: i for i, label in enumerate(vocab)}
    for label, t in calibration.label_thresholds.items():
        thresholds[index[label]] = t
    chosen = _chosen(scores, thresholds[topk], calibration.max_labels) & (topk >= 0)
    return set_micro_f1(_hits(gold_rows, topk), chosen, sum(len(g) for g in gold_rows))


def calibration_path(target: str | Path) -> Path:
    """The calibration file of ``target``: a model folder's ``calibration.json``, or ``target``
    itself when it names a ``.json`` file (``lcr calibrate --output``, the DVC stage's output)."""
    target = Path(target)
    return target if target.suffix == ".json" else target / CALIBRATION_FILE


def save_calibration(target: str | Path, calibration: Calibration) -> Path:
    """Write the calibration into a model folder (``calibration.json``) or to a ``.json`` file,
    atomically; returns the path written."""
    from lcr.atomic import atomic_open

    path = calibration_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(asdict(calibration), handle, indent=2)
    return path


def load_calibration(target: str | Path) -> Calibration | None:
    """The calibration of a model folder (None when it has none) or of a ``.json`` file.

    Raises:
        LcrError: a named ``.json`` file is missing, or the file is not a calibration.
    """
    path = calibration_path(target)
    if not path.exists():
        if Path(target).suffix == ".json":
            raise LcrError(f"{path}: no such calibration file (write it with `lcr calibrate --output {path}`)")
        return None
    try:
        return Calibration(**json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError) as exc:
        raise LcrError(f"{path}: not a calibration file ({exc}); run `lcr calibrate` again") from exc
