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


#: Colours of P@1, P@3, P@5 (and further metrics) in the γ-sweep figure.
_METRIC_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def _grid(figure, n_panels: int, max_columns: int = 3):
    """``n_panels`` axes on a grid at most ``max_columns`` wide (one empty axes when 0)."""
    n = max(n_panels, 1)
    columns = min(n, max_columns)
    rows = math.ceil(n / columns)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for extra in axes[n:]:
        extra.set_visible(False)
    return axes[:n]


def plot_gamma_sweep(sweep, path: str | Path, *, paper=None, main_gamma: dict | None = None,
                     metrics=("P@1", "P@3", "P@5"),
                     title: str = "Effect of the number of labels γ (paper Tables 11-13)") -> Path:
    """Plot P@k against γ, one panel per dataset, measured (solid) beside the paper (dashed).

    Args:
        sweep: a :class:`pandas.DataFrame` with the columns ``dataset``, ``gamma`` and
            ``metrics`` (one row per measured γ, e.g. :func:`lcr.report.tables.gamma_sweep_data`).
        path: the PNG file to write (atomically).
        paper: the paper's values in the same columns (``None``: none drawn).
        main_gamma: dataset -> the γ of the main results, marked with a dotted vertical line.
        metrics: the metric columns to draw.
        title: the figure title.

    Returns:
        ``path``.
    """
    from matplotlib.ticker import MaxNLocator

    # The paper's datasets first, in its table order, then the others.
    datasets = list(dict.fromkeys([*(paper["dataset"] if paper is not None else []), *sweep["dataset"]]))
    figure = _figure(width=min(4.2 * max(len(datasets), 1), 13.0), height=3.6 * math.ceil(max(len(datasets), 1) / 3))
    panels = _grid(figure, len(datasets))
    if not datasets:
        panels[0].text(0.5, 0.5, "no γ-sweep runs yet", ha="center", va="center", transform=panels[0].transAxes)
        panels[0].set_axis_off()
    for axes, dataset in zip(panels, datasets):
        ours = sweep[sweep["dataset"] == dataset].sort_values("gamma")
        reference = paper[paper["dataset"] == dataset].sort_values("gamma") if paper is not None else None
        for metric, color in zip(metrics, _METRIC_COLORS):
            if len(ours):
                axes.plot(ours["gamma"], ours[metric], marker="o", color=color, label=metric)
            if reference is not None and len(reference) and reference[metric].notna().any():
                axes.plot(reference["gamma"], reference[metric], marker="o", markerfacecolor="none",
                          linestyle="--", color=color, alpha=0.7, label=f"{metric} (paper)")
        if main_gamma and dataset in main_gamma:
            axes.axvline(main_gamma[dataset], color="0.5", linestyle=":", linewidth=1, label="main γ")
        if not len(ours):
            axes.text(0.5, 0.02, "not run yet", ha="center", va="bottom", fontsize=8, color="0.4",
                      transform=axes.transAxes)
        axes.set_title(dataset, fontsize=10)
        axes.set_xlabel("γ (labels in the sequence S)")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel("score")
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=6, loc="best")
    figure.suptitle(title, fontsize=12)
    return _save(figure, path)


def plot_training_curves(history, path: str | Path, *, metric: str = "nDCG@5",
                         title: str | None = None, max_legend: int = 12) -> Path:
    """Plot a dev metric against the epoch, one line per run and one panel per dataset.

    Args:
        history: a :class:`pandas.DataFrame` with the columns ``run``, ``dataset``, ``epoch``
            and ``metric`` (e.g. :func:`lcr.report.tables.collect_history`).
        path: the PNG file to write (atomically).
        metric: the dev metric to draw.
        title: the figure title (default: ``dev <metric> per epoch``).
        max_legend: panels with more runs than this leave the legend out.

    Returns:
        ``path``.
    """
    from matplotlib.ticker import MaxNLocator

    has_metric = metric in history.columns
    data = history[history[metric].notna()] if has_metric and len(history) else history.iloc[0:0]
    datasets = list(dict.fromkeys(data["dataset"])) if len(data) else []
    figure = _figure(width=min(4.6 * max(len(datasets), 1), 14.0), height=3.8 * math.ceil(max(len(datasets), 1) / 3))
    panels = _grid(figure, len(datasets))
    if not datasets:
        panels[0].text(0.5, 0.5, f"no training history with dev {metric} yet", ha="center", va="center",
                       transform=panels[0].transAxes)
        panels[0].set_axis_off()
    for axes, dataset in zip(panels, datasets):
        runs = data[data["dataset"] == dataset]
        names = list(dict.fromkeys(runs["run"]))
        for name in names:
            curve = runs[runs["run"] == name].sort_values("epoch")
            label = name[len(dataset) + 1:] if name.startswith(f"{dataset}/") else name
            axes.plot(curve["epoch"], curve[metric], marker=".", linewidth=1.2, label=label)
        axes.set_title(dataset, fontsize=10)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(f"dev {metric}")
        axes.grid(True, alpha=0.3)
        if len(names) <= max_legend:
            axes.legend(fontsize=6, loc="best")
    figure.suptitle(title or f"dev {metric} per epoch", fontsize=12)
    return _save(figure, path)


def plot_long_tail(frame, path: str | Path, *, max_legend: int = 12) -> Path:
    """P@5 (top row) and recall@5 (bottom row) per label-frequency bucket, one line per run and
    one column per dataset (:func:`lcr.report.tables.long_tail_data`).

    Returns:
        ``path`` (written atomically; a figure that says so when there is nothing to draw).
    """
    datasets = list(dict.fromkeys(frame["dataset"])) if len(frame) else []
    columns = max(len(datasets), 1)
    figure = _figure(width=min(4.6 * columns, 14.0), height=6.4)
    axes_grid = figure.subplots(2, columns, squeeze=False)
    if not datasets:
        axes_grid[0][0].text(0.5, 0.5, "no run with a predictions file yet", ha="center", va="center",
                             transform=axes_grid[0][0].transAxes)
        for axes in axes_grid.ravel():
            axes.set_axis_off()
    for column, dataset in enumerate(datasets):
        data = frame[frame["dataset"] == dataset]
        names = list(dict.fromkeys(data["run"]))
        for row, (metric, label) in enumerate((("precision", "P@5 of the bucket's labels"),
                                               ("recall", "recall@5 of the bucket's labels"))):
            axes = axes_grid[row][column]
            for name in names:
                curve = data[data["run"] == name].sort_values("bucket")
                short = name[len(dataset) + 1:] if name.startswith(f"{dataset}/") else name
                axes.plot(curve["bucket"] + 1, curve[metric], marker=".", linewidth=1.2, label=short)
            axes.set_ylim(0, 1.02)
            axes.set_xticks(range(1, int(data["bucket"].max()) + 2))
            axes.set_xlabel("label-frequency bucket (1 = head ... tail)")
            axes.set_ylabel(label, fontsize=8)
            axes.grid(True, alpha=0.3)
            if row == 0:
                axes.set_title(dataset, fontsize=10)
                if len(names) <= max_legend:
                    axes.legend(fontsize=6, loc="best")
    figure.suptitle("the long tail: where each model loses", fontsize=12)
    return _save(figure, path)


#: Colours of the seeds in the first-versus-final figure (cycled beyond five seeds).
_SEED_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def plot_first_vs_final(runs, path: str | Path, *, plain: dict | None = None, target: float = 0.0,
                        metric: str = "nDCG@5", title: str | None = None) -> Path:
    """Each LabelCoRank run's final score against its own first prediction's (S1), one colour per seed.

    The height of a point above the diagonal is what the reranking stage added to S1; a point to
    the left of another was bought with a weaker S1. With ``plain``, each seed's plain fine-tune is a
    dashed line in that seed's colour (and, with ``target`` > 0, the plain fine-tune plus the target
    a dotted one), so the points above the dotted line of their colour meet the target.

    Args:
        runs: a :class:`pandas.DataFrame` with the columns ``seed``, ``first`` (S1's score) and
            ``final`` (the final prediction's), one row per run.
        path: the PNG file to write (atomically).
        plain: the plain fine-tune's score per seed (``{seed: score}``); seeds without runs are left out.
        target: the gain over the plain fine-tune that counts (same scale as the scores), e.g. 0.005.
        metric: the score's name, for the axes.
        title: the figure title (default: ``<metric>: final prediction against S1``).

    Returns:
        ``path``.
    """
    figure = _figure(width=6.4, height=4.8)
    axes = figure.subplots()
    if not len(runs):
        axes.text(0.5, 0.5, "no run with S1 scores yet", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
    else:
        seeds = sorted(set(runs["seed"]))
        for i, seed in enumerate(seeds):
            color = _SEED_COLORS[i % len(_SEED_COLORS)]
            points = runs[runs["seed"] == seed]
            axes.scatter(points["first"], points["final"], s=22, color=color, label=f"seed {seed}", zorder=3)
            if plain and seed in plain:
                axes.axhline(plain[seed], color=color, linestyle="--", linewidth=1, label=f"plain fine-tune, seed {seed}")
                if target > 0:
                    axes.axhline(plain[seed] + target, color=color, linestyle=":", linewidth=1,
                                 label=f"plain + {100 * target:g} point, seed {seed}")
        low = min(runs["first"].min(), runs["final"].min())
        high = max(runs["first"].max(), runs["final"].max())
        axes.plot([low, high], [low, high], color="0.6", linewidth=0.8, label="final = S1")  # no stage gain
        axes.set_xlabel(f"S1 {metric} (first prediction)")
        axes.set_ylabel(f"final {metric}")
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=6, loc="best")
    figure.suptitle(title or f"{metric}: final prediction against S1", fontsize=11)
    return _save(figure, path)
