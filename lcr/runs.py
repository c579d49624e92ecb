"""The run folder: one name for every place that writes or reads a training run.

``runs/<dataset>/<variant>-s<seed>`` for a run with the dataset's configured settings (what
``lcr train``, the DVC ``train`` stages and ``lcr oracle`` / ``lcr register`` use), and
``runs/<dataset>/<variant>-g<gamma>-s<seed>`` for a run whose gamma was chosen for it (the DVC
``sweep`` stages, ``lcr train --set gamma=N``), so that a sweep never overwrites the main run.
"""

from __future__ import annotations

from pathlib import Path

from lcr.variants import uses_gamma


def run_name(variant: str, seed: int | str, gamma: int | str | None = None) -> str:
    """``<variant>-s<seed>``, or ``<variant>-g<gamma>-s<seed>`` when a gamma is named."""
    return f"{variant}-g{gamma}-s{seed}" if gamma is not None else f"{variant}-s{seed}"


def run_dir(runs_dir: str | Path, dataset: str, variant: str, seed: int | str, gamma: int | str | None = None) -> Path:
    """``<runs_dir>/<dataset>/<run_name(...)>``; ``gamma`` is left out of the name for the
    variants that have no label sequence (the baselines)."""
    return Path(runs_dir) / dataset / run_name(variant, seed, gamma if uses_gamma(variant) else None)
