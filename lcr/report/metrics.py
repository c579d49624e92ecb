"""Ranking metrics: P@k, nDCG@k, PSP@k, PSnDCG@k, micro/macro F1.

These functions are used by training (validation), by evaluation and by the ``lcr metrics``
command; they do no file input or output. All metric maths is vectorised over documents (NumPy / SciPy sparse).

Conventions
-----------
Inputs
    * ``gold``: a binary ``scipy.sparse`` CSR matrix, documents x labels (N x K). Any non-zero
      entry counts as a gold label.
    * ``topk``: an integer array (N x k_max) of label indices, best first. ``-1`` pads a ranking
      that has fewer than ``k_max`` labels; ``-2`` (:data:`UNKNOWN_LABEL`) marks a predicted label
      that is not in the label vocabulary. **Every negative index is a miss** on every metric.
      A ranking narrower than ``k`` is treated as padded to ``k``.
    * ``scores``: optional float array of the same shape as ``topk``; ``NaN`` where padded.

Precision and nDCG (exactly as MATCH and pyxclib compute them; paper eq. 15-17)
    * ``P@k = (1/k) * (hits among the first k)``. The divisor is always ``k``, even when a
      document has fewer than ``k`` gold labels or fewer than ``k`` predictions.
    * ``DCG@k = sum_{i=1..k} y_rank(i) / log2(i + 1)`` and
      ``nDCG@k = DCG@k / sum_{i=1..min(k, |y|)} 1 / log2(i + 1)``.
    * A document with no gold label scores 0 and **is** counted in the mean over documents.

Propensity-scored metrics (Jain et al., 2016)
    * Inverse propensity of label ``l``: ``w_l = 1 + C (N_l + B)^-A`` with
      ``C = (ln N - 1) (B + 1)^A``, ``N`` the number of training documents, ``N_l`` the training
      frequency of ``l``; defaults ``A = 0.55``, ``B = 1.5``.
    * ``PSP@k`` = mean over documents of ``(1/k) sum_{i<=k} y_rank(i) w_rank(i)``, **normalised
      by the best achievable value, as pyxclib does**: divided by the same mean for the ideal
      ranking (each document's gold labels sorted by ``w_l`` descending).
    * ``PSnDCG@k`` likewise, with gains ``y w / log2(i + 1)`` and each document's nDCG
      denominator as above; normalised by the best achievable value, as pyxclib does.
    * When no document has a gold label the normaliser is 0 and the metric is reported as 0.

F1 at a threshold
    * A document's predicted set is the labels of its ranking whose score is ``>= threshold``
      (only labels present in the ranking can be predicted; ``NaN`` never passes).
    * Micro F1 = ``2 TP / (|predicted| + |gold|)`` over all (document, label) pairs. A predicted
      label outside the vocabulary (index ``-2``) is a false positive.
    * Macro F1 = the mean of per-label F1 ``2 TP_l / (|predicted_l| + |gold_l|)`` over the labels
      that occur in the gold **or** in the predictions of the evaluated documents (labels that
      occur in neither are left out instead of counting as 0 or 1). Unknown labels take no part.
    * Either is 0 when there is nothing to count.

Aggregates
    * :func:`evaluate` returns plain Python floats; a subset with no documents reports 0.0 for
      every metric and ``n_docs = 0``.
    * PSP / PSnDCG of a subset are normalised by the best achievable value *on that subset*.

Prediction and gold files are read and written by :mod:`lcr.report.predictions`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

__all__ = [
    "PADDING",
    "UNKNOWN_LABEL",
    "evaluate",
    "f1_at_threshold",
    "inverse_propensity",
    "label_frequency",
    "ndcg_at_k",
    "precision_at_k",
    "psndcg_at_k",
    "psp_at_k",
    "per_document",
    "per_label_scores",
    "frequency_buckets",
    "bucket_scores",
    "selection_diagnostics",
]

PADDING = -1
"""Index that pads a ranking shorter than ``k_max``."""

UNKNOWN_LABEL = -2
"""Index of a predicted label that is not in the vocabulary (never matches)."""


# --------------------------------------------------------------------------------------------
# Input checks and shared building blocks


def _as_gold(gold) -> sp.csr_matrix:
    """Return ``gold`` as a binary CSR matrix with sorted, unique indices."""
    g = sp.csr_matrix(gold, dtype=np.float64, copy=True)
    g.sum_duplicates()
    g.eliminate_zeros()
    g.data[:] = 1.0
    return g


def _as_topk(topk, n_docs: int, n_labels: int, k: int | None = None) -> np.ndarray:
    """Check a ranking array and widen it with padding to at least ``k`` columns."""
    t = np.asarray(topk)
    if t.ndim != 2:
        raise ValueError(f"topk must be 2-D (documents x ranks), got shape {t.shape}")
    if t.size and not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"topk must hold integer label indices, got dtype {t.dtype}")
    t = t.astype(np.int64, copy=False)
    if t.shape[0] != n_docs:
        raise ValueError(f"topk has {t.shape[0]} rows but gold has {n_docs} documents")
    if t.size and t.max() >= n_labels:
        raise ValueError(f"topk holds label index {int(t.max())} but gold has {n_labels} labels")
    if k is not None and t.shape[1] < k:
        pad = np.full((n_docs, k - t.shape[1]), PADDING, dtype=np.int64)
        t = np.concatenate([t, pad], axis=1)
    return t


def _check_k(k: int) -> int:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _hits(gold: sp.csr_matrix, topk: np.ndarray, k: int) -> np.ndarray:
    """0/1 float array (N x k): whether the label at rank i of a document is a gold label."""
    t = topk[:, :k]
    n, width = t.shape
    flat = t.ravel()
    valid = flat >= 0
    out = np.zeros(flat.shape[0], dtype=np.float64)
    if valid.any():
        rows = np.repeat(np.arange(n), width)[valid]
        out[valid] = np.asarray(gold[rows, flat[valid]]).ravel()
    return out.reshape(n, width)


def _discounts(k: int) -> np.ndarray:
    """``1 / log2(i + 1)`` for ranks i = 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _ideal_dcg(gold: sp.csr_matrix, k: int) -> np.ndarray:
    """Per-document nDCG denominator ``sum_{i<=min(k,|y|)} 1/log2(i+1)`` (0 with no gold)."""
    n_pos = np.minimum(np.diff(gold.indptr), k)
    cum = np.concatenate([[0.0], np.cumsum(_discounts(k))])
    return cum[n_pos]


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def _precision_each(hits: np.ndarray, k: int) -> np.ndarray:
    """Each document's P@k (N)."""
    return hits[:, :k].sum(axis=1) / k


def _precision(hits: np.ndarray, k: int) -> float:
    return _mean(_precision_each(hits, k))


def _ndcg_each(hits: np.ndarray, idcg: np.ndarray, k: int) -> np.ndarray:
    """Each document's nDCG@k (N); 0 without gold labels."""
    return _safe_ratio(hits[:, :k] @ _discounts(k), idcg)


def _ndcg(hits: np.ndarray, idcg: np.ndarray, k: int) -> float:
    return _mean(_ndcg_each(hits, idcg, k))


def _gains(topk: np.ndarray, hits: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """``y * w`` per rank (N x k); weight 0 at negative indices."""
    t = topk[:, :k]
    w = np.where(t >= 0, weights[np.maximum(t, 0)], 0.0)
    return hits[:, :k] * w


def _best_gains(gold: sp.csr_matrix, weights: np.ndarray, k: int) -> np.ndarray:
    """The top-k inverse propensities of each document's gold labels, descending (N x k)."""
    n = gold.shape[0]
    counts = np.diff(gold.indptr)
    rows = np.repeat(np.arange(n), counts)
    w = weights[gold.indices]
    order = np.lexsort((-w, rows))  # by row, then by weight descending
    position = np.arange(order.size) - gold.indptr[rows]  # rows are already sorted
    keep = position < k
    out = np.zeros((n, k), dtype=np.float64)
    out[rows[keep], position[keep]] = w[order][keep]
    return out


def _psp(gains: np.ndarray, best: np.ndarray, k: int) -> float:
    num = _mean(gains[:, :k].sum(axis=1))
    den = _mean(best[:, :k].sum(axis=1))
    return num / den if den > 0 else 0.0


def _psndcg(gains: np.ndarray, best: np.ndarray, idcg: np.ndarray, k: int) -> float:
    d = _discounts(k)
    num = _mean(_safe_ratio(gains[:, :k] @ d, idcg))
    den = _mean(_safe_ratio(best[:, :k] @ d, idcg))
    return num / den if den > 0 else 0.0


# --------------------------------------------------------------------------------------------
# Public metrics


def precision_at_k(gold, topk, k: int) -> float:
    """Precision at k, averaged over documents.

    Args:
        gold: binary CSR matrix (N x K) of gold labels.
        topk: int array (N x k_max) of ranked label indices; negative indices are misses.
        k: the cut-off.

    Returns:
        ``mean_d (1/k) * hits_d(k)``; documents without gold labels count as 0.
    """
    k = _check_k(k)
    g = _as_gold(gold)
    t = _as_topk(topk, g.shape[0], g.shape[1], k)
    return _precision(_hits(g, t, k), k)


def ndcg_at_k(gold, topk, k: int) -> float:
    """Normalised discounted cumulative gain at k, averaged over documents.

    Args:
        gold: binary CSR matrix (N x K) of gold labels.
        topk: int array (N x k_max) of ranked label indices; negative indices are misses.
        k: the cut-off.

    Returns:
        ``mean_d DCG_d@k / sum_{i<=min(k,|y_d|)} 1/log2(i+1)``; documents without gold labels
        count as 0.
    """
    k = _check_k(k)
    g = _as_gold(gold)
    t = _as_topk(topk, g.shape[0], g.shape[1], k)
    return _ndcg(_hits(g, t, k), _ideal_dcg(g, k), k)


def per_document(gold, topk, ks: Sequence[int] = (1, 3, 5)) -> dict[str, np.ndarray]:
    """Each document's P@k and nDCG@k: the values whose means :func:`evaluate` reports.

    Args:
        gold: binary CSR matrix (N x K) of gold labels.
        topk: int array (N x k_max) of ranked label indices; negative indices are misses.
        ks: the cut-offs.

    Returns:
        ``"P@k"`` and ``"nDCG@k"`` for each k -> a float array of length N (documents without
        gold labels score 0), in the order of ``gold``'s rows.
    """
    ks = [_check_k(k) for k in ks]
    if not ks:
        raise ValueError("ks must name at least one cut-off")
    g = _as_gold(gold)
    t = _as_topk(topk, g.shape[0], g.shape[1], max(ks))
    hits = _hits(g, t, max(ks))
    out = {f"P@{k}": _precision_each(hits, k) for k in ks}
    out.update({f"nDCG@{k}": _ndcg_each(hits, _ideal_dcg(g, k), k) for k in ks})
    return out


def label_frequency(gold) -> np.ndarray:
    """Number of documents carrying each label (length K), e.g. of the training split."""
    return np.asarray(_as_gold(gold).sum(axis=0)).ravel()


def inverse_propensity(train_freq, n_train: int, A: float = 0.55, B: float = 1.5) -> np.ndarray:
    """Inverse propensity weights of Jain et al. (2016), as pyxclib computes them.

    Args:
        train_freq: per-label number of training documents (length K).
        n_train: number of training documents ``N``.
        A: the ``A`` parameter (0.55 by default).
        B: the ``B`` parameter (1.5 by default).

    Returns:
        float array ``w_l = 1 + C (N_l + B)^-A`` with ``C = (ln N - 1)(B + 1)^A``.
    """
    if n_train < 1:
        raise ValueError(f"n_train must be at least 1, got {n_train}")
    freq = np.asarray(train_freq, dtype=np.float64).ravel()
    c = (math.log(n_train) - 1.0) * (B + 1.0) ** A
    return 1.0 + c * np.power(freq + B, -A)


def _weights(train_freq, n_train, n_labels: int, A: float, B: float) -> np.ndarray:
    w = inverse_propensity(train_freq, n_train, A, B)
    if w.shape[0] != n_labels:
        raise ValueError(f"train_freq has {w.shape[0]} labels but gold has {n_labels}")
    return w


def psp_at_k(gold, topk, k: int, train_freq, n_train: int, A: float = 0.55, B: float = 1.5) -> float:
    """Propensity-scored precision at k.

    Normalised by the best achievable value, as pyxclib does: the mean PS precision of the
    ranking divided by that of the ideal ranking (gold labels sorted by ``w_l`` descending).

    Args:
        gold: binary CSR matrix (N x K) of gold labels.
        topk: int array (N x k_max) of ranked label indices; negative indices are misses.
        k: the cut-off.
        train_freq: per-label training frequency (length K).
        n_train: number of training documents.
        A: propensity parameter ``A``.
        B: propensity parameter ``B``.

    Returns:
        PSP@k in [0, 1] (1 for a perfect ranking); 0 when no document has a gold label.
    """
    k = _check_k(k)
    g = _as_gold(gold)
    t = _as_topk(topk, g.shape[0], g.shape[1], k)
    w = _weights(train_freq, n_train, g.shape[1], A, B)
    return _psp(_gains(t, _hits(g, t, k), w, k), _best_gains(g, w, k), k)


def psndcg_at_k(gold, topk, k: int, train_freq, n_train: int, A: float = 0.55,
                B: float = 1.5) -> float:
    """Propensity-scored nDCG at k.

    Gains are ``y w / log2(i + 1)``, each document divided by its nDCG denominator; the mean is
    normalised by the best achievable value, as pyxclib does.

    Args:
        gold: binary CSR matrix (N x K) of gold labels.
        topk: int array (N x k_max) of ranked label indices; negative indices are misses.
        k: the cut-off.
        train_freq: per-label training frequency (length K).
        n_train: number of training documents.
        A: propensity parameter ``A``.
        B: propensity parameter ``B``.

    Returns:
        PSnDCG@k (1 for a perfect ranking); 0 when no document has a gold label.
    """
    k = _check_k(k)
    g = _as_gold(gold)
    t = _as_topk(topk, g.shape[0], g.shape[1], k)
    w = _weights(train_freq, n_train, g.shape[1], A, B)
    return _psndcg(_gains(t, _hits(g, t, k), w, k), _best_gains(g, w, k), _ideal_dcg(g, k), k)


def f1_at_threshold(gold, topk, scores, threshold: float = 0.5) -> tuple[float, float]:
    """Micro and macro F1 of the ranked labels whose score reaches a threshold.

    Args:
        gold: binary CSR matrix (N x K) of gold labels.
        topk: int array (N x k_max) of ranked label indices; ``-1`` padding is never
            predicted, ``-2`` (unknown label) is a false positive for micro F1.
        scores: float array shaped like ``topk`` (``NaN`` where padded).
        threshold: a label is predicted when its score is ``>= threshold``.

    Returns:
        ``(micro_f1, macro_f1)``; macro F1 averages over the labels present in the gold or in
        the predictions.
    """
    g = _as_gold(gold)
    n, n_labels = g.shape
    t = _as_topk(topk, n, n_labels)
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != t.shape:
        raise ValueError(f"scores has shape {s.shape} but topk has shape {t.shape}")
    with np.errstate(invalid="ignore"):
        chosen = s >= threshold  # NaN compares False
    chosen &= t != PADDING
    n_unknown = int((chosen & (t < 0)).sum())
    pred = _predicted_matrix(t, chosen, n, n_labels)
    tp_l = np.asarray(g.multiply(pred).sum(axis=0)).ravel()
    pred_l = np.asarray(pred.sum(axis=0)).ravel()
    gold_l = np.asarray(g.sum(axis=0)).ravel()
    den = pred_l.sum() + n_unknown + gold_l.sum()
    micro = float(2.0 * tp_l.sum() / den) if den > 0 else 0.0
    den_l = pred_l + gold_l
    present = den_l > 0
    macro = float(np.mean(2.0 * tp_l[present] / den_l[present])) if present.any() else 0.0
    return micro, macro


def _predicted_matrix(topk: np.ndarray, chosen: np.ndarray, n: int, n_labels: int) -> sp.csr_matrix:
    """Binary CSR (N x K) of the ranked labels marked in ``chosen`` (known labels only)."""
    known = chosen & (topk >= 0)
    rows = np.nonzero(known)[0]
    pred = sp.csr_matrix((np.ones(rows.size), (rows, topk[known])), shape=(n, n_labels))
    pred.sum_duplicates()
    pred.data[:] = 1.0
    return pred


def per_label_scores(gold, topk, scores=None, *, threshold: float = 0.5, k: int = 5) -> dict[str, np.ndarray]:
    """Precision, recall and F1 of every label, with its support.

    A document's predicted set is its ranked labels whose score reaches ``threshold`` (as
    :func:`f1_at_threshold`), or its top ``k`` when there are no scores.

    Returns:
        Arrays of length K: ``support`` (gold documents), ``predicted``, ``true_positives``,
        ``precision``, ``recall``, ``f1`` (0 where undefined).
    """
    g = _as_gold(gold)
    n, n_labels = g.shape
    t = _as_topk(topk, n, n_labels)
    if scores is None:
        chosen = np.zeros(t.shape, dtype=bool)
        chosen[:, :k] = True
    else:
        s = np.asarray(scores, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            chosen = s >= threshold
    pred = _predicted_matrix(t, chosen & (t != PADDING), n, n_labels)
    tp = np.asarray(g.multiply(pred).sum(axis=0)).ravel()
    predicted = np.asarray(pred.sum(axis=0)).ravel()
    support = np.asarray(g.sum(axis=0)).ravel()
    precision, recall = _safe_ratio(tp, predicted), _safe_ratio(tp, support)
    return {"support": support.astype(np.int64), "predicted": predicted.astype(np.int64),
            "true_positives": tp.astype(np.int64), "precision": precision, "recall": recall,
            "f1": _safe_ratio(2.0 * tp, predicted + support)}


def frequency_buckets(train_freq, n_buckets: int = 5) -> np.ndarray:
    """Bucket of each label (0 = the most frequent in training ... ``n_buckets - 1`` = the rarest):
    the labels sorted by training frequency and cut into ``n_buckets`` groups of equal size."""
    freq = np.asarray(train_freq)
    order = np.argsort(-freq, kind="stable")  # most frequent first
    buckets = np.empty(len(freq), dtype=np.int64)
    buckets[order] = np.arange(len(freq)) * n_buckets // max(1, len(freq))
    return buckets


def bucket_scores(gold, topk, buckets: np.ndarray, k: int = 5) -> list[dict]:
    """P@k and recall@k of each label-frequency bucket (head to tail).

    For bucket b: ``precision`` = the share of the top-``k`` predictions that are labels of b and
    correct, among all top-``k`` predictions of labels of b; ``recall`` = the share of the gold
    (document, label) pairs of labels of b found in the top ``k``.

    Returns:
        One dict per bucket: ``bucket``, ``labels``, ``gold``, ``predicted``, ``precision``,
        ``recall``.
    """
    g = _as_gold(gold)
    n, n_labels = g.shape
    t = _as_topk(topk, n, n_labels, k)[:, :k]
    pred = _predicted_matrix(t, t >= 0, n, n_labels)
    tp = np.asarray(g.multiply(pred).sum(axis=0)).ravel()
    predicted = np.asarray(pred.sum(axis=0)).ravel()
    support = np.asarray(g.sum(axis=0)).ravel()
    out = []
    for b in range(int(buckets.max()) + 1 if len(buckets) else 0):
        members = buckets == b
        hits, shown, wanted = tp[members].sum(), predicted[members].sum(), support[members].sum()
        out.append({"bucket": b, "labels": int(members.sum()), "gold": int(wanted), "predicted": int(shown),
                    "precision": float(hits / shown) if shown else 0.0,
                    "recall": float(hits / wanted) if wanted else 0.0})
    return out


def evaluate(gold, topk, *, scores=None, train_freq=None, n_train: int | None = None,
             threshold: float = 0.5, subsets: Mapping[str, np.ndarray] | None = None,
             ks: Sequence[int] = (1, 3, 5), A: float = 0.55, B: float = 1.5) -> dict:
    """All metrics on every document and on named subsets of documents.

    Args:
        gold: binary CSR matrix (N x K) of gold labels.
        topk: int array (N x k_max) of ranked label indices; negative indices are misses.
        scores: optional float array shaped like ``topk``; adds ``micro_F1`` and ``macro_F1``.
        train_freq: optional per-label training frequency; with ``n_train`` adds ``PSP@k`` and
            ``PSnDCG@k``.
        n_train: number of training documents.
        threshold: score threshold of the F1 metrics.
        subsets: name -> boolean mask over the N documents (e.g. ``"head"``, ``"tail"``).
        ks: the cut-offs.
        A: propensity parameter ``A``.
        B: propensity parameter ``B``.

    Returns:
        ``{"full": {...}, "<subset>": {...}}``; each inner dict maps ``"P@k"``, ``"nDCG@k"``
        (and ``"PSP@k"``, ``"PSnDCG@k"``, ``"micro_F1"``, ``"macro_F1"`` when available) to a
        Python float, and ``"n_docs"`` to an int.
    """
    ks = [_check_k(k) for k in ks]
    if not ks:
        raise ValueError("ks must name at least one cut-off")
    g = _as_gold(gold)
    n, n_labels = g.shape
    k_top = max(ks)
    t = _as_topk(topk, n, n_labels, k_top)
    s = None
    if scores is not None:
        s = np.asarray(scores, dtype=np.float64)
        if s.shape != np.asarray(topk).shape:
            raise ValueError(f"scores has shape {s.shape} but topk has shape {np.shape(topk)}")
    if (train_freq is None) != (n_train is None):
        raise ValueError("train_freq and n_train must be given together")
    w = None if train_freq is None else _weights(train_freq, n_train, n_labels, A, B)

    masks = {"full": np.ones(n, dtype=bool)}
    for name, mask in (subsets or {}).items():
        if name in masks:
            raise ValueError(f"subset name {name!r} is reserved")
        m = np.asarray(mask)
        if m.dtype != bool or m.shape != (n,):
            raise ValueError(f"subset {name!r} must be a boolean mask of length {n}")
        masks[name] = m

    hits_all = _hits(g, t, k_top)
    gains_all = None if w is None else _gains(t, hits_all, w, k_top)
    best_all = None if w is None else _best_gains(g, w, k_top)
    idcg_all = {k: _ideal_dcg(g, k) for k in ks}

    result = {}
    for name, m in masks.items():
        hits = hits_all[m]
        out: dict = {}
        for k in ks:
            out[f"P@{k}"] = _precision(hits, k)
        for k in ks:
            out[f"nDCG@{k}"] = _ndcg(hits, idcg_all[k][m], k)
        if w is not None:
            gains, best = gains_all[m], best_all[m]
            for k in ks:
                out[f"PSP@{k}"] = float(_psp(gains, best, k))
            for k in ks:
                out[f"PSnDCG@{k}"] = float(_psndcg(gains, best, idcg_all[k][m], k))
        if s is not None:
            micro, macro = f1_at_threshold(g[m], t[m, : s.shape[1]], s[m], threshold)
            out["micro_F1"], out["macro_F1"] = micro, macro
        out["n_docs"] = int(m.sum())
        result[name] = out
    return result


# --------------------------------------------------------------------------------------------
# JSON-lines files


def selection_diagnostics(gold, s1_topk, selected, selected_mask, s2_size) -> dict:
    """How LabelCoRank's label sequence S behaves on a set of documents (the mechanism, visible).

    Args:
        gold: binary CSR matrix (N x K) of gold labels.
        s1_topk: int array (N x k, k >= 5) of the first prediction S1's ranked labels.
        selected: int array (N x gamma) of S (PAD = K where there is no label).
        selected_mask: bool array (N x gamma), True on the real labels of S.
        s2_size: int array (N,), |S2|: the labels S1 chose itself (the rest of S, S3, came from
            the co-occurrence expansion).

    Returns:
        ``s1_P@1``, ``s1_P@5``, ``s1_nDCG@5`` (S1 scored like the final prediction),
        ``mean_S2``, ``mean_S3`` (mean |S2| and |S3| = |S| - |S2|), ``s_gold_coverage`` (gold
        labels inside S over all gold labels), ``s_distinct_share`` (share of documents whose S
        differs from the most common S) and ``n_docs``.
    """
    g = _as_gold(gold)
    n, n_labels = g.shape
    selected = np.asarray(selected, dtype=np.int64).reshape(n, -1)  # (N, gamma)
    mask = np.asarray(selected_mask, dtype=bool).reshape(n, -1)  # (N, gamma)
    s2_size = np.asarray(s2_size, dtype=np.int64).reshape(n)  # (N,)
    if n == 0:
        return {"n_docs": 0}
    # gold labels inside S: a PAD slot (index K) is never gold
    real = np.where(mask, selected, -1)  # (N, gamma)
    in_s = _hits(g, real, real.shape[1])  # (N, gamma) bool
    gold_total = int(g.sum())
    # the most common S: rows compared as byte strings of their label ids
    rows = np.ascontiguousarray(np.where(mask, selected, n_labels))
    _, counts = np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel(),
                          return_counts=True)
    return {
        "s1_P@1": precision_at_k(g, s1_topk, 1),
        "s1_P@5": precision_at_k(g, s1_topk, 5),
        "s1_nDCG@5": ndcg_at_k(g, s1_topk, 5),
        "mean_S2": float(s2_size.mean()),
        "mean_S3": float((mask.sum(axis=1) - s2_size).mean()),
        "s_gold_coverage": float(in_s.sum() / gold_total) if gold_total else 0.0,
        "s_distinct_share": float(1.0 - counts.max() / n),
        "n_docs": int(n),
    }
