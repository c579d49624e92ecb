"""The run folder: one name for every place that writes or reads a training run.

``runs/<dataset>/<variant>-s<seed>`` for a run with the dataset's configured settings (what
``lcr train``, the DVC ``train`` stages and ``lcr oracle`` / ``lcr register`` use), and
``runs/<dataset>/<variant>-g<gamma>-s<seed>`` for a run whose gamma was chosen for it (the DVC
``sweep`` stages, ``lcr train --set gamma=N``), so that a sweep never overwrites the main run.
"""

from __future__ import annotations

from pathlib import Path

from lcr.models.variants import uses_gamma


def run_name(variant: str, seed: int | str, gamma: int | str | None = None) -> str:
    """``<variant>-s<seed>``, or ``<variant>-g<gamma>-s<seed>`` when a gamma is named."""
    return f"{variant}-g{gamma}-s{seed}" if gamma is not None else f"{variant}-s{seed}"


def run_dir(runs_dir: str | Path, dataset: str, variant: str, seed: int | str, gamma: int | str | None = None) -> Path:
    """``<runs_dir>/<dataset>/<run_name(...)>``; ``gamma`` is left out of the name for the
    variants that have no label sequence (the baselines)."""
    return Path(runs_dir) / dataset / run_name(variant, seed, gamma if uses_gamma(variant) else None)


# --------------------------------------------------------------------------------------------
# The files of a run folder (written by training, the TF-IDF baseline and the oracle; read by
# the oracle, registration, the tables and the benchmarks)

#: Everything about the finished run: settings, per-epoch history, final metrics.
METRICS_FILE = "metrics.json"
#: The final metrics as flat ``<subset>_<metric>`` keys (a DVC metrics file).
SCORES_FILE = "scores.json"
#: The resolved settings of a tracked job (written before training starts).
CONFIG_FILE = "config.json"
#: The MLflow run of the folder (``{"run_id": ...}``), so a resumed job continues it.
MLFLOW_RUN_FILE = "mlflow_run.json"
#: The settings block a training run starts with.
SETTINGS_FILE = "settings.txt"
#: The self-contained model folder (what the predictor and serving load).
BEST_DIR = "best_model"


def predictions_file(split: str) -> str:
    """``predictions-<split>.jsonl``: the ranked labels of every document of a split."""
    return f"predictions-{split}.jsonl"


def friendly_key(name: str) -> str:
    """A metric name without '@' (MLflow and DVC tooling dislike it): ``P@5`` -> ``P_at_5``."""
    return name.replace("@", "_at_")


def flat_scores(evaluation: dict) -> dict[str, float]:
    """Flatten :func:`lcr.report.metrics.evaluate`'s result for DVC metrics files and MLflow.

    ``{"full": {"P@1": x, "n_docs": n}, "head": {...}}`` becomes
    ``{"full_P_at_1": x, "full_n_docs": n, "head_P_at_1": ...}``.
    """
    return {f"{subset}_{friendly_key(name)}": value for subset, values in evaluation.items()
            for name, value in values.items()}


def logged_params(dataset: str, params, eval_split: str, world_size: int = 1) -> dict:
    """What a run logs as its MLflow parameters: where it ran and its resolved settings (a
    :class:`lcr.config.TrainParams`)."""
    return {"dataset": dataset, "eval_split": eval_split, "world_size": world_size, **params.model_dump()}


def run_result(dataset: str, params, eval_split: str, evaluation: dict, *, dev: dict | None, best_epoch: int,
               steps: int, history: list, train_seconds: float, output_dir: str | Path, **extra) -> dict:
    """The result record of a finished run (its ``metrics.json``), the same for the training
    loop and the TF-IDF baseline: what ran (``run``: dataset, variant, seed, gamma for the
    LabelCoRank family, evaluation split), the final metrics (``eval``), the best dev metrics and
    epoch, the per-epoch ``history``, the training time and the folder; ``extra`` adds
    model-specific keys (the label-sequence diagnostics, TF-IDF's feature count)."""
    run = {"dataset": dataset, "variant": params.variant, "seed": params.seed,
           "gamma": params.gamma if uses_gamma(params.variant) else None, "eval_split": eval_split}
    return {"eval_split": eval_split, "eval": evaluation, **extra, "run": run, "dev": dev, "best_epoch": best_epoch,
            "steps": steps, "history": history, "train_seconds": round(train_seconds, 1),
            "output_dir": str(output_dir)}


def log_finished(tracker, folder: str | Path, result: dict, step: int) -> None:
    """Log a finished run's final metrics (flat) and its result and predictions files to a
    tracker (:class:`lcr.tracking.MlflowTracker`)."""
    folder = Path(folder)
    tracker.log_metrics(flat_scores(result["eval"]), step=step)
    for name in (METRICS_FILE, predictions_file(result["eval_split"])):
        tracker.log_artifact(folder / name)


def write_results(folder: str | Path, result: dict) -> None:
    """Write a finished run's ``metrics.json`` (everything) and ``scores.json`` (the final
    metrics, flat), each atomically."""
    import json

    from lcr.atomic import atomic_open

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_open(folder / METRICS_FILE, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    write_flat_scores(folder / SCORES_FILE, result["eval"])


def write_flat_scores(path: str | Path, evaluation: dict) -> None:
    """Write :func:`flat_scores` as a JSON file (a DVC metrics file, ``--scores``), atomically."""
    import json

    from lcr.atomic import atomic_open

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(flat_scores(evaluation), handle, indent=2)


def read_results(folder: str | Path, hint: str = "train the model first") -> dict:
    """A finished run's ``metrics.json``.

    Raises:
        LcrError: the file is missing (the message says ``hint``) or is not valid JSON.
    """
    import json

    from lcr.errors import LcrError

    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        raise LcrError(f"{path} is missing: {hint}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LcrError(f"{path}: not a valid metrics file ({exc})") from exc


def mlflow_run_id(folder: str | Path) -> str | None:
    """The MLflow run id recorded in the folder, or None (an untracked run)."""
    import json

    path = Path(folder) / MLFLOW_RUN_FILE
    return json.loads(path.read_text(encoding="utf-8")).get("run_id") if path.exists() else None
