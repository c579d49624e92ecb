"""Figures, rendered offline to PNG with matplotlib's Agg backend.

Every function builds its own :class:`matplotlib.figure.Figure` on an Agg canvas instead of going
through ``pyplot``: no global figure state, no display needed, and no dependence on whichever
backend the user's matplotlib configuration selects. Files are written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lcr.atomic import atomic_path

#: Above this ratio between the largest and smallest plotted frequency a linear axis squashes
#: the tail against zero, so the y axis switches to a log scale.
LOG_SCALE_RATIO = 100.0


def _figure(width: float = 7.0, height: float = 4.2):
    """A figure attached to an Agg canvas (importing matplotlib lazily keeps ``lcr`` light)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path


def plot_label_distribution(freq: np.ndarray, path: str | Path, skip_top_fraction: float = 0.01,
                            title: str = "Label frequency distribution",
                            log_y: bool | None = None) -> Path:
    """Plot training-set label frequencies against label rank (the paper's Fig. 2).

    As in the paper, the most frequent ``skip_top_fraction`` of the labels (``ceil(f * K)``,
    but never all of them) is left out "to prevent the graph from becoming too L-shaped"; the
    subtitle says how many were left out. The x axis keeps the labels' true ranks, so the curve
    starts at rank ``skipped + 1``.

    Args:
        freq: (K,) number of training documents per label, in any order.
        path: the PNG file to write (atomically).
        skip_top_fraction: share of the most frequent labels to leave out (0 keeps all).
        title: the figure title.
        log_y: log-scale the y axis; ``None`` decides from the data (log when the largest
            plotted frequency is more than :data:`LOG_SCALE_RATIO` times the smallest
            positive one). Labels with frequency 0 cannot appear on a log axis; the subtitle
            counts them.

    Returns:
        ``path``.
    """
    if not 0.0 <= skip_top_fraction < 1.0:
        raise ValueError(f"skip_top_fraction must be in [0, 1), got {skip_top_fraction}")
    counts = np.sort(np.asarray(freq, dtype=np.int64))[::-1]
    n_labels = len(counts)
    # round() first: 0.01 * 300 is 3.0000000000000004 in floating point, whose ceil would be 4.
    skipped = min(math.ceil(round(skip_top_fraction * n_labels, 9)), max(n_labels - 1, 0))
    shown = counts[skipped:]
    ranks = np.arange(skipped + 1, n_labels + 1)
    positive = shown[shown > 0]
    if log_y is None:
        log_y = positive.size > 0 and positive.max() > LOG_SCALE_RATIO * positive.min()

    notes = []
    if skipped:
        notes.append(f"top {skip_top_fraction:.0%} most frequent labels ({skipped:,}) omitted "
                     "so the curve is not too L-shaped")
    zeros = int(np.count_nonzero(shown == 0))
    if log_y and zeros:
        notes.append(f"{zeros:,} labels with no training document not drawn on the log scale")
    notes.append(f"K = {n_labels:,} labels")

    figure = _figure()
    axes = figure.add_subplot()
    if n_labels:
        if log_y:
            keep = shown > 0
            # Fill down to 0.5, not 1, so that labels seen once still show as a band.
            axes.fill_between(ranks[keep], shown[keep], 0.5, step="mid", alpha=0.35, color="tab:blue")
            axes.plot(ranks[keep], shown[keep], drawstyle="steps-mid", color="tab:blue", linewidth=1)
            axes.set_yscale("log")
            axes.set_ylim(bottom=0.5)
        else:
            axes.fill_between(ranks, shown, 0, step="mid", alpha=0.35, color="tab:blue")
            axes.plot(ranks, shown, drawstyle="steps-mid", color="tab:blue", linewidth=1)
            axes.set_ylim(bottom=0)
        axes.set_xlim(ranks[0] - 0.5, ranks[-1] + 0.5)
    else:
        axes.text(0.5, 0.5, "no labels", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("label rank (1 = most frequent)")
    axes.set_ylabel("training documents" + (" (log scale)" if log_y else ""))
    axes.grid(True, which="major", alpha=0.3)
    figure.suptitle(title, fontsize=12)
    axes.set_title("; ".join(notes), fontsize=8, color="0.35")
    return _save(figure, path)
