"""Offline PNG figures."""

import numpy as np
import pytest

from lcr.plots import plot_label_distribution

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("freq", [
    np.array([5000, 1200, 300, 90, 40, 10, 3, 1, 1, 0] * 20),  # long-tailed: log scale, zeros
    np.array([7, 6, 6, 5, 5, 5, 4]),                           # flat: linear scale
    np.array([3]),                                             # a single label is never skipped
    np.array([], dtype=np.int64),                              # no labels at all
])
def test_label_distribution_writes_a_png(tmp_path, freq):
    path = plot_label_distribution(freq, tmp_path / "sub" / "dist.png", title="toy")
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    assert [p.name for p in path.parent.iterdir()] == ["dist.png"]  # no temporary file left


def test_label_distribution_scale_can_be_forced(tmp_path):
    for log_y in (True, False):
        path = plot_label_distribution(np.arange(1, 500), tmp_path / f"{log_y}.png", skip_top_fraction=0.0, log_y=log_y)
        assert path.read_bytes().startswith(PNG_MAGIC)


def test_label_distribution_rejects_a_bad_fraction(tmp_path):
    with pytest.raises(ValueError, match="skip_top_fraction"):
        plot_label_distribution(np.array([1, 2]), tmp_path / "x.png", skip_top_fraction=1.0)
    assert not (tmp_path / "x.png").exists()
