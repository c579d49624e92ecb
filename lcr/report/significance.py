"""Is one model's ranking better than another's on the same documents? A paired bootstrap.

Two models scored on the same 3,019 test documents differ by, say, 0.3 points of nDCG@5. Part
of any such difference is the luck of which documents the test split holds. Resampling the
documents (with replacement) and recomputing the mean difference each time shows how far that
luck alone moves it: the spread of the resampled differences gives a confidence interval, and
the share of resamples in which the candidate is not ahead is a one-sided p-value for "the
candidate ranks better". Because both models are scored on the same resampled documents, the
test is paired: a document that is hard for both costs neither.

What it does not cover is the luck of training (seed, batch order): that shows only by training
again. Rankings of several seeds per side can be averaged per document before resampling (a pooled
comparison of two recipes), which shrinks the seed's share of the difference but does not measure it.

The metric maths is :mod:`lcr.report.metrics` (:func:`~lcr.report.metrics.per_document`); no file
input or output here (``lcr compare`` reads the files, :mod:`lcr.report.evaluation`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lcr.report.metrics import per_document

__all__ = ["compare", "paired_bootstrap"]

# Resampled document indices held in memory at once (int64): about 32 MB, whatever the corpus size.
_CHUNK_ELEMENTS = 1 << 22


def paired_bootstrap(baseline, candidate, *, resamples: int = 1000, confidence: float = 0.95,
                     seed: int = 0) -> dict:
    """The mean of ``candidate - baseline`` over documents, with a bootstrap confidence interval.

    Args:
        baseline: per-document values of the reference model (length N).
        candidate: per-document values of the model compared with it, same documents, same order.
        resamples: bootstrap resamples of the N documents.
        confidence: coverage of the percentile interval, in (0, 1).
        seed: seeds the resampling (the same seed gives the same interval).

    Returns:
        ``{"baseline", "candidate", "difference", "low", "high", "p_not_better", "better",
        "worse", "n_docs", "resamples", "confidence"}``: the two means, their difference, the
        interval's ends, the share of resamples whose mean difference is <= 0 (a one-sided
        p-value for "the candidate is better"), and how many documents score higher / lower
        with the candidate.

    Raises:
        ValueError: on arrays of different lengths, no documents, or an invalid setting.
    """
    a = np.asarray(baseline, dtype=np.float64).ravel()
    b = np.asarray(candidate, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"baseline has {a.size} documents but candidate has {b.size}")
    if a.size == 0:
        raise ValueError("no documents to compare")
    if int(resamples) != resamples or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    diff = b - a  # (N,) per-document gain of the candidate
    n = diff.size
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ELEMENTS // n)
    means = np.empty(int(resamples), dtype=np.float64)
    for start in range(0, int(resamples), rows):
        stop = min(int(resamples), start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))  # (r, N) documents drawn with replacement
        means[start:stop] = diff[idx].mean(axis=1)  # (r,) the mean gain on each resample
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return {"baseline": float(a.mean()), "candidate": float(b.mean()), "difference": float(diff.mean()),
            "low": float(low), "high": float(high), "p_not_better": float((means <= 0).mean()),
            "better": int((diff > 0).sum()), "worse": int((diff < 0).sum()), "n_docs": int(n),
            "resamples": int(resamples), "confidence": float(confidence)}


def _mean_per_document(gold, rankings: Sequence, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Each document's metrics averaged over several rankings of it (e.g. one per seed)."""
    if not rankings:
        raise ValueError("each side needs at least one ranking")
    scored = [per_document(gold, topk, ks) for topk in rankings]
    return {name: np.mean([s[name] for s in scored], axis=0) for name in scored[0]}


def compare(gold, baseline: Sequence, candidate: Sequence, *, ks: Sequence[int] = (1, 3, 5),
            resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict[str, dict]:
    """Paired bootstrap of every P@k and nDCG@k between two models (or two sets of runs).

    Args:
        gold: binary CSR matrix (N x K) of gold labels.
        baseline: one or more rankings (int arrays N x k_max, as :func:`lcr.report.metrics.evaluate`
            takes) of the reference; several (one per seed) are averaged per document.
        candidate: likewise, of the model compared with it.
        ks: the cut-offs.
        resamples, confidence, seed: as :func:`paired_bootstrap`.

    Returns:
        ``"P@k"`` / ``"nDCG@k"`` -> the :func:`paired_bootstrap` result of that metric (every metric
        on the same resamples).
    """
    a = _mean_per_document(gold, baseline, ks)
    b = _mean_per_document(gold, candidate, ks)
    return {name: paired_bootstrap(a[name], b[name], resamples=resamples, confidence=confidence, seed=seed)
            for name in a}
