"""Offline PNG figures."""

import numpy as np
import pandas as pd
import pytest

from lcr.report.plots import plot_first_vs_final, plot_gamma_sweep, plot_label_distribution, plot_training_curves

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


def test_gamma_sweep_writes_a_png(tmp_path):
    sweep = pd.DataFrame({"dataset": ["pubmed", "pubmed", "toy"], "gamma": [30, 15, 20],
                          "P@1": [0.93, 0.90, 0.8], "P@3": [0.78, 0.77, 0.6], "P@5": [0.65, 0.65, 0.5]})
    paper = pd.DataFrame({"dataset": ["mag-cs", "pubmed"], "gamma": [35, 30],
                          "P@1": [0.91, 0.92], "P@3": [0.78, 0.78], "P@5": [0.66, 0.66]})
    path = plot_gamma_sweep(sweep, tmp_path / "g.png", paper=paper, main_gamma={"pubmed": 30, "toy": 20})
    assert path.read_bytes().startswith(PNG_MAGIC)
    empty = sweep.iloc[0:0]
    assert plot_gamma_sweep(empty, tmp_path / "e.png").read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.png", "g.png"]


def test_training_curves_write_a_png(tmp_path):
    history = pd.DataFrame({"run": ["toy/a"] * 3 + ["toy/b"] * 2 + ["other/c"], "dataset": ["toy"] * 5 + ["other"],
                            "epoch": [1, 2, 3, 1, 2, 1], "nDCG@5": [0.1, 0.3, 0.35, 0.2, 0.25, 0.5]})
    assert plot_training_curves(history, tmp_path / "c.png").read_bytes().startswith(PNG_MAGIC)
    # No history at all, or none of the requested metric: still a (placeholder) figure.
    assert plot_training_curves(history.iloc[0:0], tmp_path / "e.png").read_bytes().startswith(PNG_MAGIC)
    assert plot_training_curves(history, tmp_path / "m.png", metric="P@1").read_bytes().startswith(PNG_MAGIC)


def test_first_vs_final_writes_a_png(tmp_path):
    runs = pd.DataFrame({"seed": [0, 1, 1, 2], "first": [0.956, 0.959, 0.961, 0.958],
                         "final": [0.962, 0.965, 0.964, 0.964]})
    path = plot_first_vs_final(runs, tmp_path / "f.png", plain={0: 0.957, 1: 0.961}, target=0.005)
    assert path.read_bytes().startswith(PNG_MAGIC)
    # No run with S1 scores: a placeholder figure, not an error.
    assert plot_first_vs_final(runs.iloc[0:0], tmp_path / "e.png").read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.png", "f.png"]
