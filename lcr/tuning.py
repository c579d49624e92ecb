"""``lcr tune``: search training settings with Optuna, each trial a nested MLflow run.

The search space, metric and budget come from the ``tune`` block of ``params.yaml``
(:class:`lcr.config.TuneParams`). Every trial trains and evaluates one model through
:func:`lcr.jobs.train_job` with the sampled settings layered on top of the dataset's own (as
``--set`` would), logged as an MLflow run nested under one parent run; after each epoch the dev
metric is reported to Optuna, and a trial that trails the median of the earlier trials after
``warmup_epochs`` is pruned (its run is tagged ``lcr.pruned``). The best trial's settings are
written as a ``--set``-ready file, so that ``lcr train --dataset D $(cat FILE)`` trains with them.
``start_from`` (``lcr tune --start-from FILE``) runs given settings first, e.g. an earlier
search's best file or today's defaults, so that a new search starts from what is known.
"""

from __future__ import annotations

import math
from pathlib import Path

from lcr.errors import LcrError


class _Observed:
    """A tracker that also hands every epoch's dev metrics to ``observer(epoch, metrics)``; the
    training loop logs them as ``dev_<metric>`` with the epoch as the step."""

    def __init__(self, tracker, observer):
        self._tracker, self._observer = tracker, observer

    def __getattr__(self, name):
        return getattr(self._tracker, name)

    def log_metrics(self, values: dict, step: int | None = None) -> None:
        self._tracker.log_metrics(values, step=step)
        dev = {key[4:]: value for key, value in values.items() if key.startswith("dev_")}
        if dev and step is not None:
            self._observer(step, dev)


def _suggest(trial, space: dict) -> dict:
    """One value per setting of the search space."""
    values = {}
    for name, dim in space.items():
        if dim.type == "categorical":
            values[name] = trial.suggest_categorical(name, dim.choices)
        elif dim.type == "int":
            values[name] = trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)
        else:
            values[name] = trial.suggest_float(name, float(dim.low), float(dim.high), log=dim.log)
    return values


def settings_line(settings: dict) -> str:
    """``--set key=value ...`` for a shell: what ``lcr train`` takes."""
    def text(value) -> str:
        return f"{value:.6g}" if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else str(value)

    return " ".join(f"--set {key}={text(value)}" for key, value in settings.items())


def tune(dataset: str, config, *, variant: str = "labelcorank", trials: int | None = None,
         settings: dict | None = None, output: str | Path | None = None, data_dir: str | Path | None = None,
         start_from: list[dict] | None = None, progress: bool = False) -> dict:
    """Run the search; returns ``{"best_value", "best_settings", "trials": [...], "file",
    "parent_run_id"}``.

    Args:
        config: the :class:`lcr.config.Params` (its ``tune`` block and training settings).
        settings: fixed ``--set`` values every trial shares (the sampled ones win).
        output: the ``--set``-ready file (default ``tune/<dataset>-<variant>.txt``).
        start_from: settings of the search space to try first, one trial each, in this order
            (settings outside the space are refused; missing ones are sampled).

    Raises:
        LcrError: an empty search space, a ``start_from`` setting outside it, or no trial finished.
    """
    import optuna

    import mlflow

    from lcr import tracking
    from lcr.atomic import atomic_open
    from lcr.jobs import train_job
    from lcr.runs import mlflow_run_id

    spec = config.tune
    if not spec.space:
        raise LcrError("params.yaml: tune.space is empty: name the settings to search")
    trials = trials or spec.trials
    data_dir = data_dir or config.data_dir
    output = Path(output) if output else Path("tune") / f"{dataset}-{variant}.txt"
    runs_root = Path(config.runs_dir) / dataset / "tune" / variant
    maximize = spec.direction == "maximize"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=spec.direction, sampler=optuna.samplers.TPESampler(seed=spec.seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=spec.warmup_epochs))
    for number, fixed in enumerate(start_from or []):
        unknown = sorted(set(fixed) - set(spec.space))
        if unknown:
            raise LcrError(f"tune --start-from #{number + 1}: {', '.join(unknown)} not in params.yaml's "
                           f"tune.space ({', '.join(spec.space)}); pass fixed values with --set")
        study.enqueue_trial(fixed, skip_if_exists=True)
    records = []

    def objective(trial) -> float:
        sampled = _suggest(trial, spec.space)
        params, sources = config.train_with_sources(dataset, settings={**(settings or {}), **sampled}, variant=variant)
        best = {"value": -math.inf if maximize else math.inf}

        def observe(epoch: int, dev: dict) -> None:
            if spec.metric not in dev:
                raise LcrError(f"tune.metric {spec.metric!r} is not a dev metric of the run "
                               f"(it logs: {', '.join(sorted(dev))})")
            value = float(dev[spec.metric])
            best["value"] = max(best["value"], value) if maximize else min(best["value"], value)
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: dev {spec.metric} {value:.4f}")

        folder = runs_root / f"trial-{trial.number:03d}"
        tags = {"lcr.tune.trial": str(trial.number), "lcr.tune.settings": settings_line(sampled)}
        record = {"trial": trial.number, "settings": sampled, "folder": str(folder)}
        try:
            result = train_job(dataset, params, data_dir=data_dir, output_dir=folder, runs_dir=config.runs_dir,
                               eval_split=config.dataset(dataset).eval_split, progress=progress, tags=tags,
                               sources=sources, wrap_tracker=lambda tracker: _Observed(tracker, observe))
        except optuna.TrialPruned:
            record.update(state="pruned", value=None if math.isinf(best["value"]) else best["value"])
            records.append(record)
            run_id = mlflow_run_id(folder)
            if run_id:
                mlflow.MlflowClient().set_tag(run_id, "lcr.pruned", "true")
            raise
        value = float((result.get("dev") or {}).get(spec.metric, best["value"]))
        record.update(state="complete", value=value, run_id=result.get("run_id"))
        records.append(record)
        return value

    with tracking.parent_run(f"tune {dataset} {variant}", tags={"lcr.command": "tune", "lcr.dataset": dataset,
                                                               "lcr.variant": variant}) as parent:
        study.optimize(objective, n_trials=trials, catch=())
        complete = [r for r in records if r["state"] == "complete"]
        if not complete:
            raise LcrError(f"tune: none of the {trials} trials finished")
        best = study.best_trial
        mlflow.log_params({f"best.{k}": v for k, v in best.params.items()})
        mlflow.log_metric(f"best_dev_{tracking.metric_key(spec.metric)}", best.value)
    line = settings_line(best.params)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(output, "w", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return {"best_value": best.value, "best_settings": dict(best.params), "best_trial": best.number,
            "trials": records, "file": str(output), "parent_run_id": parent, "set": line}
