"""Cross-fitting's fold assignment and its out-of-fold logits file (lcr.train.cross_fit); the
fold models and the second stage's use of their logits are tested in tests/test_training.py."""

from __future__ import annotations

import numpy as np
import pytest

from lcr.errors import LcrError
from lcr.train import cross_fit


def test_folds_cover_every_document_once_in_near_equal_sizes_per_seed():
    fold = cross_fit.fold_of(101, 3, seed=0)
    assert fold.shape == (101,) and set(fold.tolist()) == {0, 1, 2}
    assert sorted(np.bincount(fold).tolist()) == [33, 34, 34]
    assert np.array_equal(fold, cross_fit.fold_of(101, 3, seed=0))  # the fold models and the run agree
    assert not np.array_equal(fold, cross_fit.fold_of(101, 3, seed=1))
    assert not np.array_equal(fold[:20], np.arange(20) % 3)  # shuffled, not in document order


def test_logits_round_trip_and_a_file_of_another_run_is_refused(tmp_path):
    assert cross_fit.load_logits(tmp_path, 4, 3) is None
    logits = np.arange(12, dtype=np.float32).reshape(4, 3) - 5.5
    path = cross_fit.save_logits(tmp_path, logits)
    assert path == tmp_path / "cross_fit" / "out_of_fold_logits.npy"
    assert not list(path.parent.glob("*.tmp*"))  # written through a temporary name
    back = cross_fit.load_logits(tmp_path, 4, 3)
    assert back.dtype == np.float16 and np.array_equal(back, logits.astype(np.float16))
    with pytest.raises(LcrError, match="out_of_fold_logits.npy holds 4 x 3 logits, but this run trains on 5"):
        cross_fit.load_logits(tmp_path, 5, 3)
    path.write_bytes(b"not numpy")
    with pytest.raises(LcrError, match="not a readable logits file"):
        cross_fit.load_logits(tmp_path, 4, 3)


def test_a_cross_fit_too_large_for_memory_is_refused_before_training():
    cross_fit.check_size(10_000, 100)
    with pytest.raises(LcrError, match="max_train_docs.* or set cross_fit_folds: 0"):
        cross_fit.check_size(1_000_000, 18_000)
    with pytest.raises(LcrError, match="^first_in_training: .* or set first_in_training: current"):
        cross_fit.UnseenFirst(1_000_000, 18_000)  # refused before the N x K table is allocated
