"""MLflow tracking: where runs go, and what every run is tagged with.

The tracking store defaults to an embedded ``sqlite:///<absolute path>/mlflow.db`` in the working
folder (absolute, so that runs started from another folder, such as DVC's experiment temp dirs,
still reach it) and follows ``MLFLOW_TRACKING_URI`` when that is set.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

TRACKING_ENV = "MLFLOW_TRACKING_URI"


def tracking_uri(project_dir: str | Path | None = None) -> str:
    """The tracking URI: ``$MLFLOW_TRACKING_URI``, else the project's ``mlflow.db``."""
    if os.environ.get(TRACKING_ENV):
        return os.environ[TRACKING_ENV]
    # DVC sets DVC_ROOT to the project (the parent repo for queued experiments, too).
    folder = Path(project_dir or os.environ.get("DVC_ROOT") or Path.cwd()).resolve()
    # `dvc exp run --temp/--queue` runs stages in <project>/.dvc/tmp/exps/<tmp>: log to the
    # project's store, not to one that is deleted with the temporary copy.
    parts = folder.parts
    for i in range(len(parts) - 2):
        if parts[i:i + 3] == (".dvc", "tmp", "exps"):
            folder = Path(*parts[:i])
            break
    return f"sqlite:///{folder / 'mlflow.db'}"


def configure(project_dir: str | Path | None = None) -> str:
    """Point MLflow at :func:`tracking_uri` (and its registry at the same store)."""
    import mlflow

    uri = tracking_uri(project_dir)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def set_experiment(name: str, uri: str) -> None:
    """Make ``name`` the active experiment, creating it if needed.

    With a local sqlite store the new experiment's artifacts go to ``mlruns/`` beside the
    database, an absolute path. MLflow's default, ``./mlruns`` of the working folder, would
    put them inside a temporary copy when ``dvc exp run --temp`` creates the experiment, and
    they would be deleted with it.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    if uri.startswith("sqlite:///") and mlflow.get_experiment_by_name(name) is None:
        location = Path(uri[len("sqlite:///"):]).resolve().parent / "mlruns"
        try:
            mlflow.create_experiment(name, artifact_location=str(location))
        except MlflowException:  # created meanwhile by another process
            pass
    mlflow.set_experiment(name)


def git_commit(folder: str | Path | None = None) -> str | None:
    """The current git commit of ``folder`` (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder or Path.cwd(), capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def data_hashes(dataset_dir: str | Path) -> dict[str, str]:
    """Short content hashes of a dataset's store files (the data a run trained on)."""
    hashes = {}
    for path in sorted(Path(dataset_dir).glob("*.parquet")) + [Path(dataset_dir) / "label_vocab.tsv"]:
        if path.exists():
            digest = hashlib.md5()
            with open(path, "rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
            hashes[f"data.{path.name}"] = digest.hexdigest()
    return hashes


def flatten(prefix: str, value) -> dict[str, str]:
    """Flatten nested dicts into ``a.b.c`` keys (MLflow params are flat strings)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    return {prefix: json.dumps(value) if isinstance(value, (list, tuple)) else str(value)}


PARENT_ENV = "LCR_PARENT_RUN_ID"


def parent_run_id() -> str | None:
    """The run that this process's runs nest under, if any.

    ``lcr repro`` exports ``LCR_PARENT_RUN_ID`` to the stages of one ``dvc repro``. ``mlflow run``
    exports ``MLFLOW_RUN_ID`` to its command; MLflow would make every ``start_run`` of the process
    *resume* that run, so it is taken out of the environment here and used as the parent.
    """
    from_mlflow_run = os.environ.pop("MLFLOW_RUN_ID", None)
    if from_mlflow_run:
        os.environ.setdefault(PARENT_ENV, from_mlflow_run)
    return os.environ.get(PARENT_ENV) or None


def metric_key(name: str) -> str:
    """MLflow metric names allow no '@': ``P@5`` becomes ``P_at_5``."""
    from lcr.runs import friendly_key

    return friendly_key(name)


class MlflowTracker:
    """Logs one training job as one MLflow run (nested under an active parent run, if any).

    Use as a context manager. ``run_file`` (e.g. ``runs/<dataset>/<variant>/mlflow_run.json``)
    records the run id, so that a resumed job continues the same run and a table row leads
    back to its run.
    """

    def __init__(self, run_name: str, *, tags: dict | None = None, experiment: str = "lcr",
                 run_file: str | Path | None = None, project_dir: str | Path | None = None):
        self.run_name = run_name
        self.tags = dict(tags or {})
        self.experiment = experiment
        self.run_file = Path(run_file) if run_file else None
        self.project_dir = project_dir
        self.run_id: str | None = None

    def __enter__(self) -> "MlflowTracker":
        import mlflow

        from lcr.atomic import atomic_open

        uri = configure(self.project_dir)
        previous = None
        if self.run_file is not None and self.run_file.exists():
            previous = json.loads(self.run_file.read_text(encoding="utf-8")).get("run_id")
        parent = None if mlflow.active_run() is not None else parent_run_id()
        if mlflow.active_run() is None:
            if parent is not None:
                # A child run lives in its parent's experiment.
                mlflow.set_experiment(experiment_id=mlflow.get_run(parent).info.experiment_id)
            else:
                set_experiment(self.experiment, uri)
        run = mlflow.start_run(run_id=previous, run_name=None if previous else self.run_name,
                               nested=mlflow.active_run() is not None, tags=self.tags,
                               parent_run_id=None if previous else parent)
        self.run_id = run.info.run_id
        if self.run_file is not None:
            with atomic_open(self.run_file, "w", encoding="utf-8") as handle:
                json.dump({"run_id": self.run_id, "experiment_id": run.info.experiment_id,
                           "tracking_uri": uri}, handle, indent=2)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        import mlflow

        # a pruned tuning trial (optuna.TrialPruned) or an interrupt was stopped, not broken
        stopped = exc_type is not None and (exc_type.__name__ == "TrialPruned" or issubclass(exc_type, KeyboardInterrupt))
        mlflow.end_run(status="KILLED" if stopped else "FAILED" if exc_type else "FINISHED")

    def set_tags(self, tags: dict) -> None:
        import mlflow

        mlflow.set_tags(tags)

    def log_params(self, params: dict) -> None:
        import mlflow

        mlflow.log_params(flatten("", params))

    def log_metrics(self, values: dict, step: int | None = None) -> None:
        import mlflow

        mlflow.log_metrics({metric_key(k): float(v) for k, v in values.items()}, step=step)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        if Path(path).exists():
            mlflow.log_artifact(str(path), artifact_path=artifact_path)


@contextmanager
def parent_run(name: str, *, tags: dict | None = None, experiment: str = "lcr",
               project_dir: str | Path | None = None):
    """One MLflow run that the runs of this process and its children nest under.

    Yields the parent's run id and exports it (and the absolute tracking URI) to child
    processes. Inside an existing parent (``mlflow run``, an outer ``lcr repro``) that one is
    used and nothing new is started.
    """
    import mlflow

    uri = configure(project_dir)
    existing = parent_run_id()
    if existing:
        yield existing
        return
    saved = {key: os.environ.get(key) for key in (PARENT_ENV, TRACKING_ENV)}
    set_experiment(experiment, uri)
    run = mlflow.start_run(run_name=name, tags={"mlflow.source.git.commit": git_commit() or "unknown",
                                                **(tags or {})})
    os.environ[PARENT_ENV] = run.info.run_id
    os.environ[TRACKING_ENV] = uri
    status = "FAILED"
    try:
        yield run.info.run_id
        status = "FINISHED"
    finally:
        mlflow.end_run(status=status)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
