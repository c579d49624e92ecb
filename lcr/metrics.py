"""Ranking metrics: P@k, nDCG@k, PSP@k, PSnDCG@k, micro/macro F1.

These functions are used by training (validation), by evaluation and by the ``lcr metrics``
command. All metric maths is vectorised over documents (NumPy / SciPy sparse).

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

Prediction and gold files (JSON lines, UTF-8)
    * Gold: ``{"id": "...", "labels": ["...", ...]}``; predictions:
      ``{"id": "...", "labels": [ranked, best first], "scores": [...]}``. ``scores`` is optional
      but, once one line has it, every line must, with one number per label.
    * An ``id`` is a string (an integer is accepted and read as its decimal string); labels are
      strings; other keys are ignored. Blank lines are allowed only at the end of the file.
    * Malformed JSON, a missing field or a field of the wrong type raises
      :class:`~lcr.errors.DataFormatError` naming the file, line and field.
    * :func:`align_predictions` lays the predictions out in **gold order**:

      - a gold document without a prediction line gets an empty ranking (0 on every metric,
        still counted); reported as ``missing_predictions``;
      - a prediction id absent from the gold is an error naming the id and the line;
      - a duplicate prediction id is an error;
      - a predicted label that is not in the vocabulary keeps its rank position but can never
        match (index ``-2``); reported as ``unknown_labels``;
      - a label repeated within one ranking is an error naming the line;
      - rankings longer than ``k_max`` are cut to their first ``k_max`` labels (reported as
        ``truncated_rankings``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from lcr.errors import DataFormatError, LcrError
from lcr.jsonl import read_json_lines

__all__ = [
    "PADDING",
    "UNKNOWN_LABEL",
    "align_predictions",
    "evaluate",
    "f1_at_threshold",
    "inverse_propensity",
    "label_frequency",
    "labels_to_csr",
    "ndcg_at_k",
    "precision_at_k",
    "psndcg_at_k",
    "psp_at_k",
    "read_gold_jsonl",
    "read_predictions_jsonl",
    "top_k",
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


def _precision(hits: np.ndarray, k: int) -> float:
    return _mean(hits[:, :k].sum(axis=1) / k)


def _ndcg(hits: np.ndarray, idcg: np.ndarray, k: int) -> float:
    dcg = hits[:, :k] @ _discounts(k)
    return _mean(_safe_ratio(dcg, idcg))


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
    known = chosen & (t >= 0)
    rows = np.nonzero(known)[0]
    pred = sp.csr_matrix((np.ones(rows.size), (rows, t[known])), shape=(n, n_labels))
    pred.sum_duplicates()
    pred.data[:] = 1.0
    tp_l = np.asarray(g.multiply(pred).sum(axis=0)).ravel()
    pred_l = np.asarray(pred.sum(axis=0)).ravel()
    gold_l = np.asarray(g.sum(axis=0)).ravel()
    den = pred_l.sum() + n_unknown + gold_l.sum()
    micro = float(2.0 * tp_l.sum() / den) if den > 0 else 0.0
    den_l = pred_l + gold_l
    present = den_l > 0
    macro = float(np.mean(2.0 * tp_l[present] / den_l[present])) if present.any() else 0.0
    return micro, macro


def top_k(scores, k: int, return_scores: bool = False):
    """Indices of the k best labels of each document, best first.

    Ties are broken by the lower label index; ``NaN`` ranks as ``-inf``. Uses ``argpartition``
    (rows whose k-th value is tied with a left-out label are redone exactly), then a stable
    sort of the k chosen labels.

    Args:
        scores: dense score array (N x K): NumPy array or torch tensor (moved to the CPU).
        k: how many labels to keep; at most K are returned.
        return_scores: also return the scores of the chosen labels.

    Returns:
        int64 array (N x min(k, K)), or ``(indices, scores)`` when ``return_scores``.
    """
    k = _check_k(k)
    if hasattr(scores, "detach"):  # torch tensor, without importing torch
        tensor = scores.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
            tensor = tensor.float()
        scores = tensor.numpy()
    values = np.asarray(scores)
    if values.ndim != 2:
        raise ValueError(f"scores must be 2-D (documents x labels), got shape {values.shape}")
    s = values if np.issubdtype(values.dtype, np.floating) else values.astype(np.float64)
    if np.isnan(s).any():
        s = np.where(np.isnan(s), -np.inf, s)
    n, n_labels = s.shape
    k = min(k, n_labels)
    if k == n_labels:
        idx = np.argsort(-s, axis=1, kind="stable")
    else:
        idx = np.argpartition(s, n_labels - k, axis=1)[:, n_labels - k :]  # k best, any order
        chosen = np.take_along_axis(s, idx, axis=1)
        kth = chosen.min(axis=1, keepdims=True)  # the k-th largest score of each row
        # A row whose k-th value is tied with labels left out may hold the wrong tied labels:
        # redo those rows exactly (all above kth, then the lowest-index labels equal to kth).
        redo = np.flatnonzero((s == kth).sum(axis=1) != (chosen == kth).sum(axis=1))
        if redo.size:
            sub, sub_kth = s[redo], kth[redo]
            above, tied = sub > sub_kth, sub == sub_kth
            room = k - above.sum(axis=1, keepdims=True)
            selected = above | (tied & (np.cumsum(tied, axis=1) <= room))
            idx[redo] = np.nonzero(selected)[1].reshape(redo.size, k)
        idx.sort(axis=1)  # ascending label index, so the stable sort breaks ties by index
        order = np.argsort(-np.take_along_axis(s, idx, axis=1), axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1)
    idx = idx.astype(np.int64, copy=False)
    if return_scores:
        return idx, np.take_along_axis(values, idx, axis=1)
    return idx


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


def _records(path):
    """Yield ``(line number, dict)`` for each record; blank lines only at the end of the file."""
    return read_json_lines(path, blank_lines="trailing")


def _field(path, lineno: int, record: dict, field: str):
    if field not in record:
        raise DataFormatError(path, "missing field", line=lineno, field=field)
    return record[field]


def _read_id(path, lineno: int, record: dict, seen: dict[str, int]) -> str:
    value = _field(path, lineno, record, "id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise DataFormatError(path, f"expected a string, got {type(value).__name__}",
                              line=lineno, field="id")
    if value in seen:
        raise DataFormatError(path, f"duplicate id {value!r} (first on line {seen[value]})",
                              line=lineno, field="id")
    seen[value] = lineno
    return value


def _read_labels(path, lineno: int, record: dict, unique: bool) -> list[str]:
    value = _field(path, lineno, record, "labels")
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise DataFormatError(path, "expected a list of strings", line=lineno, field="labels")
    if unique and len(set(value)) != len(value):
        repeated = sorted({x for x in value if value.count(x) > 1})
        raise DataFormatError(path, f"label(s) repeated within one ranking: {repeated}",
                              line=lineno, field="labels")
    return value


def read_gold_jsonl(path) -> tuple[list[str], list[list[str]]]:
    """Read a gold file of lines ``{"id": ..., "labels": [...]}``.

    Args:
        path: the JSON-lines file.

    Returns:
        ``(ids, labels)`` in file order.

    Raises:
        DataFormatError: malformed JSON, missing or mistyped field, duplicate id.
    """
    ids, labels, seen = [], [], {}
    for lineno, record in _records(path):
        ids.append(_read_id(path, lineno, record, seen))
        labels.append(_read_labels(path, lineno, record, unique=False))
    return ids, labels


def read_predictions_jsonl(path) -> tuple[list[str], list[list[str]], list[list[float]] | None]:
    """Read a predictions file of lines ``{"id": ..., "labels": [ranked], "scores": [...]}``.

    Args:
        path: the JSON-lines file.

    Returns:
        ``(ids, labels, scores)`` in file order; ``scores`` is None when no line has scores.

    Raises:
        DataFormatError: malformed JSON, missing or mistyped field, duplicate id, a label
            repeated within a ranking, scores on some lines only or of the wrong length.
    """
    ids, labels, scores, seen = [], [], [], {}
    has_scores = None
    for lineno, record in _records(path):
        ids.append(_read_id(path, lineno, record, seen))
        ranked = _read_labels(path, lineno, record, unique=True)
        labels.append(ranked)
        present = "scores" in record
        if has_scores is None:
            has_scores = present
        if present != has_scores:
            message = ("missing field: earlier lines have scores" if has_scores
                       else "unexpected field: earlier lines have no scores")
            raise DataFormatError(path, message, line=lineno, field="scores")
        if not present:
            continue
        value = record["scores"]
        if not isinstance(value, list) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and x == x for x in value
        ):
            raise DataFormatError(path, "expected a list of numbers (no NaN)", line=lineno,
                                  field="scores")
        if len(value) != len(ranked):
            raise DataFormatError(path, f"{len(value)} scores for {len(ranked)} labels",
                                  line=lineno, field="scores")
        scores.append([float(x) for x in value])
    return ids, labels, (scores if has_scores else None)


def _vocab_index(vocab) -> dict[str, int]:
    if isinstance(vocab, Mapping):
        return dict(vocab)
    index = {label: i for i, label in enumerate(vocab)}
    if len(index) != len(vocab):
        raise ValueError("the label vocabulary holds a label twice")
    return index


def labels_to_csr(labels: Sequence[Sequence[str]], vocab, source=None) -> sp.csr_matrix:
    """Binary CSR matrix (documents x labels) of label-string lists, e.g. a gold file.

    Args:
        labels: one list of label strings per document (repeats are merged).
        vocab: label strings in index order, or a mapping label -> index.
        source: file the lists come from (record i on line i + 1), for error messages.

    Raises:
        LcrError: a label not in the vocabulary (DataFormatError when ``source`` is given).
    """
    index = _vocab_index(vocab)
    indptr = np.zeros(len(labels) + 1, dtype=np.int64)
    cols = []
    for i, row in enumerate(labels):
        for label in row:
            j = index.get(label)
            if j is None:
                message = f"label {label!r} is not in the label vocabulary"
                if source is not None:
                    raise DataFormatError(source, message, line=i + 1, field="labels")
                raise LcrError(f"document {i}: {message}")
            cols.append(j)
        indptr[i + 1] = len(cols)
    data = np.ones(len(cols), dtype=np.float64)
    n_labels = max(index.values(), default=-1) + 1
    m = sp.csr_matrix((data, np.asarray(cols, dtype=np.int64), indptr),
                      shape=(len(labels), n_labels))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def align_predictions(gold_ids: Sequence[str], vocab, pred_ids: Sequence[str],
                      pred_labels: Sequence[Sequence[str]],
                      pred_scores: Sequence[Sequence[float]] | None, k_max: int,
                      source=None) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Lay predictions out as ``topk`` / ``scores`` arrays in gold order.

    Args:
        gold_ids: document ids in gold order (N).
        vocab: label strings in index order, or a mapping label -> index.
        pred_ids: prediction ids in file order (record i is on line i + 1, as the readers
            guarantee).
        pred_labels: ranked label strings of each prediction.
        pred_scores: scores of each prediction, or None.
        k_max: width of the output arrays; longer rankings are cut.
        source: the predictions file, named in error messages.

    Returns:
        ``(topk, scores, report)``: int64 array (N x k_max) padded with -1 and holding -2 for
        labels not in the vocabulary; float array (N x k_max, NaN where padded) or None;
        report dict with ``n_docs``, ``n_predictions``, ``missing_predictions``,
        ``unknown_labels``, ``unknown_label_examples`` (up to 10), ``truncated_rankings``.

    Raises:
        LcrError: a prediction id absent from the gold, a duplicate id (in gold or
            predictions), a label repeated within a ranking (DataFormatError when ``source`` is
            given), mismatched input lengths.
    """
    k_max = _check_k(k_max)
    where = "predictions" if source is None else str(source)

    def fail(lineno: int, message: str, field: str):
        if source is not None:
            return DataFormatError(source, message, line=lineno, field=field)
        return LcrError(f"{where}, line {lineno}: {message}")

    if len(pred_labels) != len(pred_ids):
        raise ValueError("pred_ids and pred_labels differ in length")
    if pred_scores is not None and len(pred_scores) != len(pred_ids):
        raise ValueError("pred_ids and pred_scores differ in length")
    gold_pos: dict[str, int] = {}
    for i, doc_id in enumerate(gold_ids):
        if doc_id in gold_pos:
            raise LcrError(f"gold id {doc_id!r} appears twice")
        gold_pos[doc_id] = i
    index = _vocab_index(vocab)

    n = len(gold_ids)
    topk = np.full((n, k_max), PADDING, dtype=np.int64)
    scores = None if pred_scores is None else np.full((n, k_max), np.nan, dtype=np.float64)
    has_prediction = np.zeros(n, dtype=bool)
    unknown, truncated = 0, 0
    unknown_examples: set[str] = set()
    first_line: dict[str, int] = {}
    for p, (doc_id, ranked) in enumerate(zip(pred_ids, pred_labels)):
        lineno = p + 1
        if doc_id in first_line:
            raise fail(lineno, f"duplicate prediction id {doc_id!r} (first on line "
                               f"{first_line[doc_id]})", "id")
        first_line[doc_id] = lineno
        row = gold_pos.get(doc_id)
        if row is None:
            raise fail(lineno, f"prediction id {doc_id!r} is not in the gold data", "id")
        if len(set(ranked)) != len(ranked):
            repeated = sorted({x for x in ranked if list(ranked).count(x) > 1})
            raise fail(lineno, f"label(s) repeated within one ranking: {repeated}", "labels")
        if pred_scores is not None and len(pred_scores[p]) != len(ranked):
            raise fail(lineno, f"{len(pred_scores[p])} scores for {len(ranked)} labels", "scores")
        has_prediction[row] = True
        if len(ranked) > k_max:
            truncated += 1
        kept = list(ranked)[:k_max]
        cols = [index.get(label, UNKNOWN_LABEL) for label in kept]
        for label, col in zip(kept, cols):
            if col == UNKNOWN_LABEL:
                unknown += 1
                unknown_examples.add(label)
        topk[row, : len(cols)] = cols
        if scores is not None:
            scores[row, : len(cols)] = list(pred_scores[p])[:k_max]
    report = {
        "n_docs": n,
        "n_predictions": len(pred_ids),
        "missing_predictions": int(n - has_prediction.sum()),
        "unknown_labels": unknown,
        "unknown_label_examples": sorted(unknown_examples)[:10],
        "truncated_rankings": truncated,
    }
    return topk, scores, report


def friendly_key(name: str) -> str:
    """A metric name without '@' (MLflow and DVC tooling dislike it): ``P@5`` -> ``P_at_5``."""
    return name.replace("@", "_at_")


def flat_scores(evaluation: dict) -> dict[str, float]:
    """Flatten :func:`evaluate`'s result for DVC metrics files and MLflow.

    ``{"full": {"P@1": x, "n_docs": n}, "head": {...}}`` becomes
    ``{"full_P_at_1": x, "full_n_docs": n, "head_P_at_1": ...}``.
    """
    return {f"{subset}_{friendly_key(name)}": value for subset, values in evaluation.items()
            for name, value in values.items()}


def write_flat_scores(path, evaluation: dict) -> None:
    """Write :func:`flat_scores` as a JSON file (a DVC metrics file), atomically."""
    import json
    from pathlib import Path

    from lcr.atomic import atomic_open

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(flat_scores(evaluation), handle, indent=2)
