"""Paired bootstrap comparisons of two rankings (lcr.report.significance)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lcr.report import metrics
from lcr.report.significance import compare, paired_bootstrap


def test_identical_rankings_differ_by_exactly_zero():
    values = np.random.default_rng(0).random(500)
    result = paired_bootstrap(values, values, resamples=200)
    assert result["difference"] == result["low"] == result["high"] == 0.0
    assert result["p_not_better"] == 1.0  # never ahead: not better
    assert result["better"] == result["worse"] == 0 and result["n_docs"] == 500


def test_interval_matches_a_hand_computed_bootstrap():
    rng = np.random.default_rng(1)
    a, b = rng.random(300), rng.random(300)
    result = paired_bootstrap(a, b, resamples=400, confidence=0.9, seed=7)
    # The same resamples drawn by hand, one at a time.
    draw = np.random.default_rng(7)
    means = np.array([(b - a)[draw.integers(0, 300, size=(1, 300))[0]].mean() for _ in range(400)])
    assert result["difference"] == pytest.approx((b - a).mean())
    assert result["low"] == pytest.approx(np.quantile(means, 0.05))
    assert result["high"] == pytest.approx(np.quantile(means, 0.95))
    assert result["p_not_better"] == pytest.approx((means <= 0).mean())
    assert result["better"] == int((b > a).sum()) and result["worse"] == int((b < a).sum())


def test_a_clear_gain_is_significant_and_a_coin_flip_is_not():
    rng = np.random.default_rng(2)
    base = (rng.random(2000) < 0.80).astype(float)
    better = np.where(rng.random(2000) < 0.5, 1.0, base)  # fixes about half of the misses
    clear = paired_bootstrap(base, better, resamples=500)
    assert clear["low"] > 0 and clear["p_not_better"] < 0.01
    noise = base.copy()  # 20 documents won and 20 lost: no gain on average
    noise[np.flatnonzero(base == 0)[:20]] = 1.0
    noise[np.flatnonzero(base == 1)[:20]] = 0.0
    unclear = paired_bootstrap(base, noise, resamples=500)
    assert unclear["difference"] == 0.0 and unclear["better"] == unclear["worse"] == 20
    assert unclear["low"] < 0 < unclear["high"] and 0.2 < unclear["p_not_better"] < 0.8


def test_resampling_in_chunks_equals_one_pass(monkeypatch):
    from lcr.report import significance

    rng = np.random.default_rng(3)
    a, b = rng.random(100), rng.random(100)
    whole = paired_bootstrap(a, b, resamples=50, seed=4)
    monkeypatch.setattr(significance, "_CHUNK_ELEMENTS", 250)  # 2 resamples per chunk
    assert paired_bootstrap(a, b, resamples=50, seed=4) == whole


@pytest.mark.parametrize("kwargs, message", [
    ({"baseline": [1.0, 0.0], "candidate": [1.0]}, "2 documents but candidate has 1"),
    ({"baseline": [], "candidate": []}, "no documents"),
    ({"baseline": [1.0], "candidate": [1.0], "resamples": 0}, "resamples"),
    ({"baseline": [1.0], "candidate": [1.0], "confidence": 1.0}, "confidence"),
])
def test_bad_input_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(**kwargs)


def test_compare_scores_every_metric_and_averages_seeds_per_document():
    gold = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]]))
    right = np.array([[0, 1, 2], [1, 0, 2], [2, 0, 1], [0, 1, 2]])
    wrong = np.array([[1, 2, 0], [0, 2, 1], [0, 1, 2], [2, 0, 1]])
    result = compare(gold, [wrong], [right], ks=(1, 3), resamples=100)
    assert set(result) == {"P@1", "P@3", "nDCG@1", "nDCG@3"}
    assert result["P@1"]["baseline"] == metrics.precision_at_k(gold, wrong, 1) == 0.0
    assert result["P@1"]["candidate"] == 1.0 and result["P@1"]["better"] == 4
    assert result["nDCG@3"]["candidate"] == pytest.approx(metrics.ndcg_at_k(gold, right, 3))
    # Two seeds on the candidate's side: each document's value is their mean.
    pooled = compare(gold, [wrong], [right, wrong], ks=(1,), resamples=100)
    assert pooled["P@1"]["candidate"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least one ranking"):
        compare(gold, [], [right])
