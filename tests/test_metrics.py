"""Tests of lcr.report.metrics: hand-computed cases, a randomised cross-check and the JSONL readers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from lcr.report.metrics import (
    PADDING,
    UNKNOWN_LABEL,
    evaluate,
    f1_at_threshold,
    inverse_propensity,
    label_frequency,
    ndcg_at_k,
    per_document,
    precision_at_k,
    psndcg_at_k,
    psp_at_k,
)

LOG2_3 = math.log2(3)  # log2(i + 1) at rank i = 2


def csr(rows: list[list[int]], n_labels: int) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_labels))
    for i, row in enumerate(rows):
        dense[i, row] = 1
    return sp.csr_matrix(dense)


# --------------------------------------------------------------------------------------------
# P@k and nDCG@k by hand

# doc0: gold {0, 2}, ranking [0, 1, 2]           (a full ranking)
# doc1: gold {},     ranking [3, 4, 0]           (no gold labels: scores 0, still counted)
# doc2: gold {1, 2, 3, 4}, ranking [1, -, -]     (more gold labels than k=3, fewer predictions)
GOLD = csr([[0, 2], [], [1, 2, 3, 4]], 5)
TOPK = np.array([[0, 1, 2], [3, 4, 0], [1, -1, -1]])


def test_precision_by_hand():
    # P@1: doc0 hit, doc1 miss, doc2 hit          -> (1 + 0 + 1) / 3
    assert precision_at_k(GOLD, TOPK, 1) == pytest.approx(2 / 3)
    # P@3: doc0 2/3, doc1 0, doc2 1/3 (divides by 3 although only one prediction)
    assert precision_at_k(GOLD, TOPK, 3) == pytest.approx((2 / 3 + 0 + 1 / 3) / 3)
    # P@5 on a 3-wide ranking (the rest is padding): doc0 2/5, doc1 0, doc2 1/5 -> 3/15
    assert precision_at_k(GOLD, TOPK, 5) == pytest.approx(0.2)


def test_ndcg_by_hand():
    # nDCG@1: doc0 1/1, doc1 0, doc2 1/1
    assert ndcg_at_k(GOLD, TOPK, 1) == pytest.approx(2 / 3)
    # doc0: DCG@3 = 1/log2(2) + 1/log2(4) = 1.5;  denominator min(3, |y|=2) terms = 1 + 1/log2(3)
    doc0 = 1.5 / (1 + 1 / LOG2_3)
    # doc2: DCG@3 = 1;  denominator min(3, 4) = 3 terms = 1 + 1/log2(3) + 1/2
    doc2 = 1 / (1 + 1 / LOG2_3 + 0.5)
    assert ndcg_at_k(GOLD, TOPK, 3) == pytest.approx((doc0 + 0 + doc2) / 3)
    # nDCG@5: DCG unchanged; doc0 denominator still 2 terms, doc2 now 4 terms (+ 1/log2(5))
    doc2_5 = 1 / (1 + 1 / LOG2_3 + 0.5 + 1 / math.log2(5))
    assert ndcg_at_k(GOLD, TOPK, 5) == pytest.approx((doc0 + 0 + doc2_5) / 3)


def test_per_document_values_by_hand_and_their_means_are_the_metrics():
    each = per_document(GOLD, TOPK, ks=(1, 3))
    assert set(each) == {"P@1", "P@3", "nDCG@1", "nDCG@3"}
    assert each["P@1"].tolist() == [1.0, 0.0, 1.0]
    assert each["P@3"] == pytest.approx([2 / 3, 0.0, 1 / 3])
    assert each["nDCG@3"] == pytest.approx([1.5 / (1 + 1 / LOG2_3), 0.0, 1 / (1 + 1 / LOG2_3 + 0.5)])
    for name, values in per_document(GOLD, TOPK, ks=(1, 3, 5)).items():
        k = int(name.split("@")[1])
        whole = precision_at_k(GOLD, TOPK, k) if name.startswith("P@") else ndcg_at_k(GOLD, TOPK, k)
        assert values.mean() == pytest.approx(whole)
    with pytest.raises(ValueError, match="at least one cut-off"):
        per_document(GOLD, TOPK, ks=())


def test_unknown_label_index_is_a_miss():
    # -2 (unknown label) at rank 1 of doc0: hits drop from [1, 0, 1] to [0, 0, 1]
    topk = TOPK.copy()
    topk[0, 0] = UNKNOWN_LABEL
    # P@3 = (1/3 + 0 + 1/3) / 3
    assert precision_at_k(GOLD, topk, 3) == pytest.approx(2 / 9)
    assert UNKNOWN_LABEL < 0 and PADDING < 0 and UNKNOWN_LABEL != PADDING


def test_bad_inputs_rejected():
    with pytest.raises(ValueError):
        precision_at_k(GOLD, TOPK.astype(float), 1)
    with pytest.raises(ValueError):
        precision_at_k(GOLD, TOPK[:2], 1)
    with pytest.raises(ValueError):
        precision_at_k(GOLD, np.array([[5], [0], [0]]), 1)  # index out of range
    with pytest.raises(ValueError):
        precision_at_k(GOLD, TOPK, 0)


# --------------------------------------------------------------------------------------------
# Propensity-scored metrics by hand


def test_inverse_propensity_formula():
    # N = 100, N_l = 0:  C = (ln 100 - 1) * 2.5^0.55,  w = 1 + C * 1.5^-0.55
    c = (math.log(100) - 1) * 2.5**0.55
    w = inverse_propensity([0, 10], 100)
    assert w[0] == pytest.approx(1 + c * 1.5**-0.55)
    assert w[1] == pytest.approx(1 + c * 11.5**-0.55)  # N_l = 10: (10 + 1.5)^-0.55
    # custom A, B
    c2 = (math.log(100) - 1) * 3.0**0.5
    assert inverse_propensity([4], 100, A=0.5, B=2.0)[0] == pytest.approx(1 + c2 * 6.0**-0.5)
    assert label_frequency(csr([[0, 1], [1], []], 3)).tolist() == [1, 2, 0]


# 3 labels with training frequencies 8, 2, 0 out of 10 documents: w0 < w1 < w2 (rarer = heavier)
FREQ, N_TRAIN = [8, 2, 0], 10
W0, W1, W2 = inverse_propensity(FREQ, N_TRAIN)
# doc0: gold {0, 1}, ranking [0, 2]  (finds the head label 0, misses the rarer gold label 1)
# doc1: gold {2},    ranking [2, 0]
PS_GOLD = csr([[0, 1], [2]], 3)
PS_TOPK = np.array([[0, 2], [2, 0]])


def test_psp_by_hand():
    assert W0 < W1 < W2
    # PSP@1: ranking gains doc0 w0, doc1 w2; best: doc0 max(w0, w1) = w1, doc1 w2
    assert psp_at_k(PS_GOLD, PS_TOPK, 1, FREQ, N_TRAIN) == pytest.approx((W0 + W2) / (W1 + W2))
    # PSP@2: ranking gains doc0 w0 + 0, doc1 w2 + 0; best: doc0 w1 + w0, doc1 w2 (1/k cancels)
    assert psp_at_k(PS_GOLD, PS_TOPK, 2, FREQ, N_TRAIN) == pytest.approx(
        (W0 + W2) / (W0 + W1 + W2))


def test_psndcg_by_hand():
    c2 = 1 + 1 / LOG2_3  # nDCG denominator of doc0 (2 gold labels), k = 2
    # ranking: doc0 w0/1 / c2, doc1 w2/1 / 1;  best: doc0 (w1/1 + w0/log2 3) / c2, doc1 w2
    expected = (W0 / c2 + W2) / ((W1 + W0 / LOG2_3) / c2 + W2)
    assert psndcg_at_k(PS_GOLD, PS_TOPK, 2, FREQ, N_TRAIN) == pytest.approx(expected)
    # k = 1: denominators are 1: (w0 + w2) / (w1 + w2)
    assert psndcg_at_k(PS_GOLD, PS_TOPK, 1, FREQ, N_TRAIN) == pytest.approx((W0 + W2) / (W1 + W2))


def test_ps_metrics_perfect_ranking_is_one():
    perfect = np.array([[1, 0], [2, -1]])  # gold labels sorted by w descending
    for k in (1, 2, 3):
        assert psp_at_k(PS_GOLD, perfect, k, FREQ, N_TRAIN) == pytest.approx(1.0)
        assert psndcg_at_k(PS_GOLD, perfect, k, FREQ, N_TRAIN) == pytest.approx(1.0)
    # all gold labels found but in the wrong order: 1.0 at k = 2, below 1 at k = 1
    swapped = np.array([[0, 1], [2, -1]])
    assert psp_at_k(PS_GOLD, swapped, 2, FREQ, N_TRAIN) == pytest.approx(1.0)
    assert psp_at_k(PS_GOLD, swapped, 1, FREQ, N_TRAIN) < 1.0
    # no gold label at all: normaliser 0 -> reported as 0
    assert psp_at_k(csr([[], []], 3), perfect, 1, FREQ, N_TRAIN) == 0.0
    with pytest.raises(ValueError):
        psp_at_k(PS_GOLD, perfect, 1, [1, 2], N_TRAIN)  # wrong number of labels


# --------------------------------------------------------------------------------------------
# F1 by hand


def test_f1_by_hand():
    # 5 labels; label 4 occurs nowhere and is left out of macro F1.
    gold = csr([[0, 1], [3], []], 5)
    topk = np.array([[0, 2, 1], [3, UNKNOWN_LABEL, PADDING], [1, PADDING, PADDING]])
    scores = np.array([[0.9, 0.6, 0.4], [0.7, 0.8, np.nan], [0.2, np.nan, np.nan]])
    # threshold 0.5 -> predicted: doc0 {0, 2}, doc1 {3, unknown}, doc2 {}
    # TP = 2 (doc0 label 0, doc1 label 3); |pred| = 4 (the unknown label is a false positive);
    # |gold| = 3  -> micro F1 = 2*2 / (4 + 3) = 4/7
    # per label: l0 2*1/(1+1) = 1, l1 0/(0+1) = 0, l2 0/(1+0) = 0, l3 2*1/(1+1) = 1 -> macro 2/4
    micro, macro = f1_at_threshold(gold, topk, scores, 0.5)
    assert micro == pytest.approx(4 / 7)
    assert macro == pytest.approx(0.5)
    # threshold 0.3 adds doc0 label 1 (0.4): TP 3, |pred| 5 -> 6/8; l1 becomes 2*1/(1+1) = 1
    micro, macro = f1_at_threshold(gold, topk, scores, 0.3)
    assert micro == pytest.approx(6 / 8)
    assert macro == pytest.approx(3 / 4)
    # nothing predicted and nothing gold: 0, 0
    assert f1_at_threshold(csr([[]], 5), np.array([[-1]]), np.array([[np.nan]]), 0.5) == (0.0, 0.0)
    with pytest.raises(ValueError):
        f1_at_threshold(gold, topk, scores[:, :2], 0.5)


# --------------------------------------------------------------------------------------------
def test_evaluate_full_and_subsets():
    scores = np.array([[0.9, 0.6, 0.4], [0.7, 0.2, 0.1], [0.8, np.nan, np.nan]])
    tail = np.array([False, True, True])
    res = evaluate(GOLD, TOPK, scores=scores, train_freq=[5, 4, 3, 2, 1], n_train=20,
                   subsets={"head": ~tail, "tail": tail})
    assert set(res) == {"full", "head", "tail"}
    keys = {f"{m}@{k}" for m in ("P", "nDCG", "PSP", "PSnDCG") for k in (1, 3, 5)}
    assert set(res["full"]) == keys | {"micro_F1", "macro_F1", "n_docs"}
    assert res["full"]["P@3"] == pytest.approx(1 / 3)
    assert res["full"]["n_docs"] == 3 and res["head"]["n_docs"] == 1
    # head = doc0 only: P@1 = 1, P@3 = 2/3, nDCG@3 = 1.5 / (1 + 1/log2 3)
    assert res["head"]["P@3"] == pytest.approx(2 / 3)
    assert res["head"]["nDCG@3"] == pytest.approx(1.5 / (1 + 1 / LOG2_3))
    # tail = docs 1, 2: each metric equals the function applied to those rows
    rows = np.flatnonzero(tail)
    assert res["tail"]["P@1"] == pytest.approx(precision_at_k(GOLD[rows], TOPK[rows], 1))
    assert res["tail"]["nDCG@5"] == pytest.approx(ndcg_at_k(GOLD[rows], TOPK[rows], 5))
    assert res["tail"]["PSP@3"] == pytest.approx(
        psp_at_k(GOLD[rows], TOPK[rows], 3, [5, 4, 3, 2, 1], 20))
    assert res["tail"]["PSnDCG@3"] == pytest.approx(
        psndcg_at_k(GOLD[rows], TOPK[rows], 3, [5, 4, 3, 2, 1], 20))
    assert (res["tail"]["micro_F1"], res["tail"]["macro_F1"]) == pytest.approx(
        f1_at_threshold(GOLD[rows], TOPK[rows], scores[rows], 0.5))
    for inner in res.values():
        for key, value in inner.items():
            assert type(value) is (int if key == "n_docs" else float)
    json.dumps(res)


def test_evaluate_optional_groups_and_errors():
    res = evaluate(GOLD, TOPK, ks=(1, 2))
    assert set(res["full"]) == {"P@1", "P@2", "nDCG@1", "nDCG@2", "n_docs"}
    empty = evaluate(GOLD, TOPK, subsets={"none": np.zeros(3, dtype=bool)})["none"]
    assert empty["n_docs"] == 0 and empty["P@1"] == 0.0
    with pytest.raises(ValueError):
        evaluate(GOLD, TOPK, subsets={"full": np.ones(3, dtype=bool)})
    with pytest.raises(ValueError):
        evaluate(GOLD, TOPK, subsets={"x": np.array([0, 1, 2])})  # not a boolean mask
    with pytest.raises(ValueError):
        evaluate(GOLD, TOPK, train_freq=[1, 1, 1, 1, 1])  # n_train missing


# --------------------------------------------------------------------------------------------
# Randomised cross-check against a per-document reference


def ref_metrics(gold_sets, rankings, k, w):
    """Straightforward per-document implementation of every ranking metric."""
    disc = [1 / math.log2(i + 2) for i in range(k)]
    p, nd, ps_num, ps_den, psn_num, psn_den = [], [], [], [], [], []
    for y, r in zip(gold_sets, rankings):
        r = (list(r) + [-1] * k)[:k]
        hits = [1.0 if (lab >= 0 and lab in y) else 0.0 for lab in r]
        idcg = sum(disc[: min(k, len(y))])
        p.append(sum(hits) / k)
        dcg = sum(h * d for h, d in zip(hits, disc))
        nd.append(dcg / idcg if idcg else 0.0)
        gains = [h * (w[lab] if lab >= 0 else 0.0) for h, lab in zip(hits, r)]
        best = sorted((w[lab] for lab in y), reverse=True)[:k]
        ps_num.append(sum(gains) / k)
        ps_den.append(sum(best) / k)
        psn_num.append(sum(g * d for g, d in zip(gains, disc)) / idcg if idcg else 0.0)
        psn_den.append(sum(b * d for b, d in zip(best, disc)) / idcg if idcg else 0.0)
    psp = np.mean(ps_num) / np.mean(ps_den) if np.mean(ps_den) > 0 else 0.0
    psn = np.mean(psn_num) / np.mean(psn_den) if np.mean(psn_den) > 0 else 0.0
    return np.mean(p), np.mean(nd), psp, psn


def ref_f1(gold_sets, rankings, scores, threshold, n_labels):
    tp, n_pred, n_gold = [0] * n_labels, [0] * n_labels, [0] * n_labels
    unknown = 0
    for y, r, s in zip(gold_sets, rankings, scores):
        for lab in y:
            n_gold[lab] += 1
        for lab, sc in zip(r, s):
            if lab == -1 or not sc >= threshold:
                continue
            if lab < 0:
                unknown += 1
                continue
            n_pred[lab] += 1
            tp[lab] += lab in y
    den = sum(n_pred) + unknown + sum(n_gold)
    micro = 2 * sum(tp) / den if den else 0.0
    per = [2 * t / (a + b) for t, a, b in zip(tp, n_pred, n_gold) if a + b]
    return micro, (float(np.mean(per)) if per else 0.0)


def test_random_cross_check():
    rng = np.random.default_rng(42)
    for trial in range(40):
        n, n_labels, width = int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 7))
        gold_sets = [set(np.flatnonzero(rng.random(n_labels) < 0.3).tolist()) for _ in range(n)]
        gold = csr([sorted(y) for y in gold_sets], n_labels)
        topk = np.full((n, width), -1, dtype=np.int64)
        scores = np.full((n, width), np.nan)
        for i in range(n):
            length = int(rng.integers(0, min(width, n_labels) + 1))
            ranked = rng.permutation(n_labels)[:length]
            # negative indices anywhere: -2 (unknown label) or -1 (a hole; also a miss)
            ranked[rng.random(length) < 0.15] = UNKNOWN_LABEL if trial % 2 else PADDING
            topk[i, : len(ranked)] = ranked
            scores[i, : len(ranked)] = np.sort(rng.random(len(ranked)))[::-1]
        freq = rng.integers(0, 30, size=n_labels)
        n_train = 50
        w = inverse_propensity(freq, n_train)
        rankings = [row.tolist() for row in topk]
        for k in (1, 2, 3, 5):
            p, nd, psp, psn = ref_metrics(gold_sets, rankings, k, w)
            assert precision_at_k(gold, topk, k) == pytest.approx(p)
            assert ndcg_at_k(gold, topk, k) == pytest.approx(nd)
            assert psp_at_k(gold, topk, k, freq, n_train) == pytest.approx(psp)
            assert psndcg_at_k(gold, topk, k, freq, n_train) == pytest.approx(psn)
        for threshold in (0.0, 0.5, 0.9):
            got = f1_at_threshold(gold, topk, scores, threshold)
            assert got == pytest.approx(ref_f1(gold_sets, rankings, scores, threshold, n_labels))


# --------------------------------------------------------------------------------------------
# JSONL readers and alignment


def test_selection_diagnostics_equal_a_hand_computation():
    from lcr.report.metrics import selection_diagnostics

    # 4 documents, K = 6 (PAD = 6), gamma = 3
    gold = sp.csr_matrix(np.array([[1, 1, 0, 0, 0, 0],
                                   [0, 0, 1, 0, 0, 0],
                                   [1, 0, 0, 0, 0, 1],
                                   [0, 0, 0, 1, 0, 0]]))
    s1_topk = np.array([[0, 2, 1, 3, 4],   # P@1 hit, P@5: 2 of 5
                        [1, 2, 0, 3, 4],   # P@1 miss, P@5: 1
                        [5, 0, 1, 2, 3],   # P@1 hit, P@5: 2
                        [0, 1, 2, 4, 5]])  # P@1 miss, P@5: 0
    selected = np.array([[0, 1, 6], [0, 1, 6], [0, 1, 6], [3, 2, 4]])
    mask = selected != 6
    s2_size = np.array([1, 2, 0, 1])
    d = selection_diagnostics(gold, s1_topk, selected, mask, s2_size)
    assert d["s1_P@1"] == pytest.approx(2 / 4)
    assert d["s1_P@5"] == pytest.approx((2 + 1 + 2 + 0) / 20)
    dcg = [1 + 1 / np.log2(4), 1 / np.log2(3), 1 + 1 / np.log2(3), 0.0]
    idcg = [1 + 1 / np.log2(3), 1.0, 1 + 1 / np.log2(3), 1.0]
    assert d["s1_nDCG@5"] == pytest.approx(np.mean(np.array(dcg) / np.array(idcg)))
    assert d["mean_S2"] == pytest.approx(1.0)
    assert d["mean_S3"] == pytest.approx(((2 - 1) + (2 - 2) + (2 - 0) + (3 - 1)) / 4)
    # gold inside S: doc 0 {0, 1} both, doc 1 {2} no, doc 2 {0, 5}: 0 only, doc 3 {3}: yes -> 4 of 6
    assert d["s_gold_coverage"] == pytest.approx(4 / 6)
    # S = (0, 1, PAD) for three documents: one differs from it
    assert d["s_distinct_share"] == pytest.approx(1 / 4)
    assert d["n_docs"] == 4


def test_per_label_scores_by_hand():
    from lcr.report.metrics import per_label_scores

    gold = csr([[0, 1], [2], [0]], 4)
    topk = np.array([[2, 1, 0], [0, 1, -1], [1, 2, 0]])
    scores = np.array([[0.9, 0.8, 0.4], [0.7, 0.3, np.nan], [0.6, 0.55, 0.5]])
    res = per_label_scores(gold, topk, scores, threshold=0.5)
    # predicted (>= 0.5): doc0 {2, 1}, doc1 {0}, doc2 {1, 2, 0}
    assert res["support"].tolist() == [2, 1, 1, 0] and res["predicted"].tolist() == [2, 2, 2, 0]
    assert res["true_positives"].tolist() == [1, 1, 0, 0]
    assert res["precision"].tolist() == pytest.approx([0.5, 0.5, 0.0, 0.0])
    assert res["recall"].tolist() == pytest.approx([0.5, 1.0, 0.0, 0.0])
    assert res["f1"].tolist() == pytest.approx([0.5, 2 / 3, 0.0, 0.0])
    top1 = per_label_scores(gold, topk, None, k=1)  # no scores: the top k is the set
    # top 1: doc0 -> 2, doc1 -> 0, doc2 -> 1, none of them gold
    assert top1["predicted"].tolist() == [1, 1, 1, 0] and top1["true_positives"].tolist() == [0, 0, 0, 0]


def test_frequency_buckets_and_bucket_scores_by_hand():
    from lcr.report.metrics import bucket_scores, frequency_buckets

    buckets = frequency_buckets(np.array([5, 50, 1, 20]), n_buckets=2)
    assert buckets.tolist() == [1, 0, 1, 0]  # labels 1 and 3 are the head
    gold = csr([[0, 1], [2], [3]], 4)
    topk = np.array([[1, 2], [0, 3], [3, -1]])
    rows = bucket_scores(gold, topk, buckets, k=2)
    # head (1, 3): predicted 3 times (1, 3, 3), correct twice (doc0's 1, doc2's 3); gold pairs 2
    assert rows[0] == {"bucket": 0, "labels": 2, "gold": 2, "predicted": 3, "precision": pytest.approx(2 / 3),
                       "recall": 1.0}
    # tail (0, 2): predicted twice (doc0's 2, doc1's 0), none correct; gold pairs 2 (doc0's 0, doc1's 2)
    assert rows[1] == {"bucket": 1, "labels": 2, "gold": 2, "predicted": 2, "precision": 0.0, "recall": 0.0}
