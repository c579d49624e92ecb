"""The run folder: one name for every place that writes or reads a training run.

``runs/<dataset>/<variant>-s<seed>`` for a run with the dataset's configured settings (what
``lcr train``, the DVC ``train`` stages and ``lcr oracle`` / ``lcr register`` use), and
``runs/<dataset>/<variant>-g<gamma>-s<seed>`` for a run whose gamma was chosen for it (the DVC
``sweep`` stages, ``lcr train --set gamma=N``), so that a sweep never overwrites the main run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from lcr.errors import LcrError
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
#: A cross-fitted run's fold models and their out-of-fold logits (:mod:`lcr.train.cross_fit`):
#: parts of that run, not runs of their own (the tables and the inventory skip them).
CROSS_FIT_DIR = "cross_fit"


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
    from lcr.atomic import atomic_open

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_open(folder / METRICS_FILE, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    write_flat_scores(folder / SCORES_FILE, result["eval"])


def write_flat_scores(path: str | Path, evaluation: dict) -> None:
    """Write :func:`flat_scores` as a JSON file (a DVC metrics file, ``--scores``), atomically."""
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
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        raise LcrError(f"{path} is missing: {hint}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LcrError(f"{path}: not a valid metrics file ({exc})") from exc


def mlflow_run_id(folder: str | Path) -> str | None:
    """The MLflow run id recorded in the folder, or None (an untracked run)."""
    path = Path(folder) / MLFLOW_RUN_FILE
    return json.loads(path.read_text(encoding="utf-8")).get("run_id") if path.exists() else None


# --------------------------------------------------------------------------------------------
# Reading the finished runs of a folder (the tables)

#: Files that mark a run folder whose job has started but not finished (no metrics.json yet).
STARTED_MARKERS = (MLFLOW_RUN_FILE, "checkpoint.pt")


def scan_runs(runs_dir: str | Path) -> tuple[list[dict], list[str]]:
    """Every finished run under ``runs_dir`` (a ``metrics.json``; hidden folders and the fold
    models of cross-fitted runs skipped) as a
    checked record (:func:`read_run`), and the run folders that were started but hold no
    ``metrics.json`` yet.

    Raises:
        LcrError: the folder does not exist, or a run file is unreadable (named).
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise LcrError(f"runs folder {root} does not exist: train something first (lcr train) "
                       "or point --runs-dir at the folder that holds the runs")
    records, finished_dirs = [], set()
    for path in sorted(root.rglob(METRICS_FILE)):
        if _hidden(path.parent, root) or not path.is_file():
            continue
        records.append(read_run(path, root))
        finished_dirs.add(path.parent)
    unfinished = sorted({
        marker.parent.relative_to(root).as_posix()
        for name in STARTED_MARKERS for marker in root.rglob(name)
        if marker.parent not in finished_dirs and not _hidden(marker.parent, root)})
    return records, unfinished


def _hidden(folder: Path, root: Path) -> bool:
    return any(part.startswith(".") or part == CROSS_FIT_DIR for part in folder.relative_to(root).parts)


def read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LcrError(f"{path}: cannot read {what} ({exc}); re-run the job that writes it "
                       "or move the folder out of the runs folder") from exc
    if not isinstance(data, dict):
        raise LcrError(f"{path}: {what} must hold a JSON object, got {type(data).__name__}")
    return data


def _optional_int(value, path: Path, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise LcrError(f"{path}: '{key}' must be a whole number or null, got {value!r}")
    return int(value)


def read_run(path: Path, root: Path) -> dict:
    """One finished run: identity, metrics per subset, history and MLflow ids."""
    data = read_json(path, "the run's metrics")
    info = data.get("run")
    if info is None:
        # Older runs: identity from the job's config.json beside metrics.json.
        config = path.parent / CONFIG_FILE
        info = read_json(config, "the run's config") if config.is_file() else None
        if info is None or "variant" not in info:
            raise LcrError(f"{path}: no 'run' section (dataset, variant, seed, gamma); "
                           "was it written by `lcr train` or `lcr oracle`?")
    if not isinstance(info, dict):
        raise LcrError(f"{path}: 'run' must be an object, got {type(info).__name__}")
    for key in ("dataset", "variant"):
        if not isinstance(info.get(key), str) or not info[key]:
            raise LcrError(f"{path}: 'run.{key}' is missing or not a string")
    evaluation = data.get("eval")
    if not isinstance(evaluation, dict) or not isinstance(evaluation.get("full"), dict):
        raise LcrError(f"{path}: no 'eval.full' metrics; the run did not finish its evaluation")
    subsets = {}
    for subset, values in evaluation.items():
        if not isinstance(values, dict):
            raise LcrError(f"{path}: 'eval.{subset}' must be an object of metrics")
        bad = [k for k, v in values.items() if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))]
        if bad:
            raise LcrError(f"{path}: 'eval.{subset}' has non-numeric values for {', '.join(bad)}")
        subsets[subset] = {k: (math.nan if v is None else float(v)) for k, v in values.items()}
    history = data.get("history") or []
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise LcrError(f"{path}: 'history' must be a list of per-epoch objects")

    mlflow = {}
    mlflow_path = path.parent / MLFLOW_RUN_FILE
    if mlflow_path.is_file():
        mlflow = read_json(mlflow_path, "the MLflow run reference")
    variant = info["variant"]
    return {
        "run": path.parent.relative_to(root).as_posix(),
        "dataset": info["dataset"],
        "variant": variant,
        "seed": _optional_int(info.get("seed"), path, "run.seed"),
        "gamma": _optional_int(info.get("gamma"), path, "run.gamma") if variant != "roberta" else None,
        "eval_split": str(info.get("eval_split") or data.get("eval_split") or "test"),
        "top": _optional_int(data.get("m"), path, "m") if variant == "roberta-oracle" else None,
        "subsets": subsets,
        "history": history,
        "best_epoch": data.get("best_epoch"),
        "run_id": str(mlflow.get("run_id") or ""),
        "experiment_id": str(mlflow.get("experiment_id") or ""),
        "tracking_uri": str(mlflow.get("tracking_uri") or ""),
        "path": str(path.parent),
        "mtime": path.stat().st_mtime,
    }
