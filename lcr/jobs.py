"""Jobs: library functions wired to MLflow tracking, as the CLI and the DVC stages run them."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from lcr.config import TrainParams


def run_dir(runs_dir: str | Path, dataset: str, params: TrainParams, *, named_gamma: bool = False) -> Path:
    """Where a training job writes by default (:mod:`lcr.runs`): ``runs/<dataset>/<variant>-s<seed>``,
    with ``-g<gamma>`` when the run's gamma was chosen for it (``named_gamma``; LabelCoRank family)."""
    from lcr.runs import run_dir as folder

    return folder(runs_dir, dataset, params.variant, params.seed, params.gamma if named_gamma else None)


def train_job(dataset: str, params: TrainParams, *, data_dir: str | Path = "data",
              runs_dir: str | Path = "runs", output_dir: str | Path | None = None,
              eval_split: str = "test", resume: bool = False, track: bool = True,
              progress: bool | None = None, tags: dict | None = None, token_cache: bool = True,
              sources: dict[str, str] | None = None, wrap_tracker=None) -> dict:
    """Train and evaluate one model, logged as one MLflow run (rank 0 only under torchrun).

    The run is tagged with the dataset, variant, git commit and data hashes, holds the resolved
    configuration as params, per-step losses, per-epoch dev metrics and the final metrics, and
    the configuration, label vocabulary and predictions as artifacts. ``token_cache`` is passed
    to :func:`lcr.train.loop.train` (the TF-IDF baseline tokenises no subwords and ignores it).
    ``wrap_tracker`` (tracked jobs only) wraps the run's tracker before training sees it: how
    :mod:`lcr.tuning` watches the per-epoch dev metrics.
    """
    import os

    from lcr import tracking
    from lcr.atomic import atomic_open
    from lcr.runs import CONFIG_FILE, MLFLOW_RUN_FILE
    from lcr.models.variants import LINEAR_VARIANTS
    from lcr.train.loop import check_inputs
    from lcr.train.loop import train as train_loop

    if params.variant in LINEAR_VARIANTS:
        from lcr.models.baselines.bonsai import train_bonsai
        from lcr.models.baselines.tfidf import train_tfidf

        fit = {"tfidf": train_tfidf, "bonsai": train_bonsai}[params.variant]

        def train(dataset_dir, output_dir, params, *, eval_split, resume, progress, tracker=None,
                  token_cache=True, sources=None):
            return fit(dataset_dir, output_dir, params, eval_split=eval_split, tracker=tracker, progress=progress)
    else:
        train = train_loop

    dataset_dir = Path(data_dir) / dataset
    output_dir = Path(output_dir) if output_dir else run_dir(runs_dir, dataset, params)
    check_inputs(dataset_dir, params, eval_split)  # fail fast, before MLflow starts a run
    is_main = int(os.environ.get("RANK", "0")) == 0
    if not (track and is_main):
        return train(dataset_dir, output_dir, params, eval_split=eval_split, resume=resume, progress=progress,
                     token_cache=token_cache, sources=sources)

    output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(output_dir / CONFIG_FILE, "w", encoding="utf-8") as handle:
        json.dump({"dataset": dataset, "eval_split": eval_split, **params.model_dump()}, handle, indent=2)
    tags = {"lcr.dataset": dataset, "lcr.variant": params.variant,
            "mlflow.source.git.commit": tracking.git_commit() or "unknown",
            **tracking.data_hashes(dataset_dir), **(tags or {})}
    run_file = output_dir / MLFLOW_RUN_FILE
    if not resume and run_file.exists():
        run_file.unlink()  # a fresh job gets a fresh run
    with tracking.MlflowTracker(f"{dataset}-{params.variant}", tags=tags, run_file=run_file) as tracker:
        tracker.log_artifact(output_dir / CONFIG_FILE)
        tracker.log_artifact(dataset_dir / "label_vocab.tsv")
        result = train(dataset_dir, output_dir, params, eval_split=eval_split, resume=resume,
                       tracker=wrap_tracker(tracker) if wrap_tracker else tracker, progress=progress,
                       token_cache=token_cache, sources=sources)
        result["run_id"] = tracker.run_id
    return result


def oracle_job(dataset: str, source_dir: str | Path, *, output_dir: str | Path | None = None, m: int = 10,
               data_dir: str | Path = "data", track: bool = True, tags: dict | None = None) -> dict:
    """``roberta-oracle`` (the paper's "RoBERTa*"): rerank a trained run's predictions with the gold.

    Reads ``source_dir/metrics.json`` (for the evaluation split) and its predictions file,
    writes ``predictions-<split>.jsonl`` and ``metrics.json`` to ``output_dir`` (default: the
    sibling folder ``<source name>-oracle-m<m>``), logged as one MLflow run when ``track``.
    """
    from lcr import tracking
    from lcr.report.evaluation import oracle_prediction_file
    from lcr.runs import MLFLOW_RUN_FILE, METRICS_FILE, flat_scores, predictions_file, read_results, write_results

    source_dir = Path(source_dir)
    source = read_results(source_dir, f"train the model first (lcr train --dataset {dataset} --variant roberta)")
    split = source.get("eval_split", "test")
    output_dir = Path(output_dir) if output_dir else source_dir.with_name(f"{source_dir.name}-oracle-m{m}")
    output_dir.mkdir(parents=True, exist_ok=True)
    predictions = output_dir / predictions_file(split)
    scored = oracle_prediction_file(f"{dataset}:{split}", source_dir / predictions_file(split), predictions,
                                    m=m, data_dir=data_dir)
    run = {**source.get("run", {"dataset": dataset}), "variant": "roberta-oracle", "gamma": None,
           "eval_split": split}
    result = {"run": run, "eval_split": split, "eval": scored["metrics"], "source_run": str(source_dir), "m": m,
              "output_dir": str(output_dir)}
    write_results(output_dir, result)
    if track:
        tags = {"lcr.dataset": dataset, "lcr.variant": "roberta-oracle",
                "mlflow.source.git.commit": tracking.git_commit() or "unknown",
                **tracking.data_hashes(Path(data_dir) / dataset), **(tags or {})}
        with tracking.MlflowTracker(f"{dataset}-roberta-oracle", tags=tags,
                                    run_file=output_dir / MLFLOW_RUN_FILE) as tracker:
            tracker.log_params({"dataset": dataset, "variant": "roberta-oracle", "m": m,
                                "source_run": str(source_dir), "eval_split": split})
            tracker.log_metrics(flat_scores(result["eval"]))
            tracker.log_artifact(output_dir / METRICS_FILE)
            tracker.log_artifact(predictions)
            result["run_id"] = tracker.run_id
    return result


@contextmanager
def stage_run(stage: str | None, dataset: str | None = None, data_dir: str | Path = "data"):
    """Run a pipeline step as one MLflow run tagged with its DVC stage name (None: untracked).

    Yields the :class:`lcr.tracking.MlflowTracker` (or None). The run nests under the parent of
    ``lcr repro`` / ``mlflow run`` when there is one; it is tagged with the git commit and, once
    the step is done, with the dataset's data hashes (the MD5 sums that ``dvc.lock`` records).
    """
    if not stage:
        yield None
        return
    from lcr import tracking

    import os

    tags = {"dvc.stage": os.environ.get("DVC_STAGE") or stage,
            "mlflow.source.git.commit": tracking.git_commit() or "unknown"}
    if dataset:
        tags["lcr.dataset"] = dataset
    with tracking.MlflowTracker(stage, tags=tags) as tracker:
        yield tracker
        if dataset:
            tracker.set_tags(tracking.data_hashes(Path(data_dir) / dataset))



def register_job(dataset: str, source_dir: str | Path, *, name: str | None = None,
                 record: str | Path | None = None, tags: dict | None = None,
                 calibration: str | Path | None = None) -> dict:
    """Log a trained run's model as an MLflow pyfunc model and register it (``lcr-<dataset>``).

    The new version gets the alias ``champion`` when its dev metric (the run's ``select_metric``,
    nDCG@5 by default) beats the current champion's, else ``challenger``
    (:func:`lcr.serve.pyfunc.set_alias`); serve ``models:/lcr-<dataset>@champion``.

    The registration is its own MLflow run (nested under the current parent, if any), tagged
    with the training run it comes from. ``record`` (e.g. ``models/<dataset>.json``) receives the
    registered name, version, model URI and both run ids. ``calibration`` (a file written by
    ``lcr calibrate --output``) goes into the registered model as its ``calibration.json``, in place
    of the model folder's own; the run folder itself is left as it is.
    """
    from lcr import tracking
    from lcr.runs import BEST_DIR, flat_scores, mlflow_run_id, read_results
    from lcr.serve.pyfunc import alias_uri, log_model, registered_uri, set_alias, write_model_record

    source_dir = Path(source_dir)
    source = read_results(source_dir, f"train the model first (lcr train --dataset {dataset})")
    source_run = mlflow_run_id(source_dir)
    name = name or f"lcr-{dataset}"
    run_tags = {"lcr.dataset": dataset, "lcr.source_run_id": source_run or "untracked",
                "mlflow.source.git.commit": tracking.git_commit() or "unknown", **(tags or {})}
    with tracking.MlflowTracker(f"register {name}", tags=run_tags) as tracker:
        tracker.log_params({"dataset": dataset, "source_run": str(source_dir), "registered_name": name,
                            **{f"run.{k}": v for k, v in source.get("run", {}).items()}})
        tracker.log_metrics(flat_scores(source["eval"]))
        with _model_folder_with(source_dir / BEST_DIR, calibration) as folder:
            logged = log_model(folder, name)
        metric = source.get("run", {}).get("select_metric") or "nDCG@5"
        dev = (source.get("dev") or {}).get(metric)
        alias = set_alias(name, logged["version"], dev, metric)
        tracker.set_tags({"lcr.alias": alias})
        result = {**logged, "uri": registered_uri(name, logged["version"]), "alias": alias,
                  "alias_uri": alias_uri(name, alias), "run_id": tracker.run_id,
                  "source_run_id": source_run, "source_dir": str(source_dir), "dataset": dataset}
    if record:
        write_model_record(record, result)
    return result


@contextmanager
def _model_folder_with(folder: Path, calibration: str | Path | None):
    """``folder`` itself, or (with a calibration file) a temporary copy of it that holds that
    calibration; files are hard-linked where the file system allows, so the copy is cheap."""
    if calibration is None:
        yield folder
        return
    import os
    import shutil
    import tempfile

    from lcr.serve.calibration import load_calibration, save_calibration

    chosen = load_calibration(calibration)  # refuses a missing or broken file before anything is logged

    def link(source, target):
        try:
            os.link(source, target)
        except OSError:  # another file system, or links not allowed
            shutil.copy2(source, target)

    with tempfile.TemporaryDirectory(prefix="lcr-register-") as tmp:
        staged = Path(tmp) / folder.name
        shutil.copytree(folder, staged, copy_function=link)
        (staged / "calibration.json").unlink(missing_ok=True)  # a link: replace it, never write through it
        save_calibration(staged, chosen)
        yield staged


def fetch_job(dataset: str, config, *, data_dir: str | Path | None = None, source: str | Path | None = None,
              dev_fraction: float | None = None, merge_train_dev: bool | None = None,
              train_standin: str | None = None, custom_options: dict | None = None, stage: str | None = None,
              progress: bool = False) -> dict:
    """Fetch a dataset into the normalised store (:func:`lcr.datasets.fetch.fetch`), as an MLflow
    run of ``stage`` when one is named; returns its ``stats.json``.

    A dataset name that is not in the registry but has a source (``--from`` or params.yaml's
    ``datasets.<name>.source``) is a user's own corpus (the ``custom`` reader, stored under that name).

    Args:
        config: the :class:`lcr.config.Params` (the dataset's settings; arguments given here win).
    """
    from lcr.datasets.fetch import REGISTRY, fetch

    ds = config.dataset(dataset)
    data_dir = data_dir or config.data_dir
    options = dict(custom_options or {})
    kind = dataset
    if dataset not in REGISTRY and dataset != "custom" and (source or ds.source):
        kind = "custom"  # a user's corpus named in params.yaml or given --from
        options["name"] = options.get("name") or dataset
    with stage_run(stage, options.get("name") if kind == "custom" else dataset, data_dir) as tracker:
        stats = fetch(kind, data_dir, source_path=source or ds.source,
                      dev_fraction=ds.dev_fraction if dev_fraction is None else dev_fraction,
                      merge_train_dev=ds.merge_train_dev if merge_train_dev is None else merge_train_dev,
                      train_standin=train_standin or ds.train_standin, custom_options=options, progress=progress)
        if tracker is not None:
            tracker.log_params({"dataset": dataset, **ds.model_dump(exclude={"training"})})
            tracker.log_metrics({f"{split}_documents": row["documents"] for split, row in stats["splits"].items()})
    return stats


def prepare_job(dataset: str, config, *, data_dir: str | Path | None = None, head_fraction: float | None = None,
                stage: str | None = None, progress: bool = False):
    """Compute a dataset's label artifacts (:func:`lcr.labels.prepare`), as an MLflow run of
    ``stage`` when one is named; returns the :class:`lcr.labels.LabelArtifacts`."""
    from lcr.datasets import store
    from lcr.labels import prepare

    data_dir = data_dir or config.data_dir
    folder = Path(data_dir) / dataset
    fraction = head_fraction or config.prepare.head_fraction
    with stage_run(stage, dataset, data_dir) as tracker:
        artifacts = prepare(folder, head_fraction=fraction, show_progress=progress)
        if tracker is not None:
            tracker.log_params({"dataset": dataset, "head_fraction": fraction})
            tracker.log_metrics({"labels": len(artifacts.vocab), "cooccurrence_nnz": artifacts.cooc.nnz,
                                 "head_labels": artifacts.n_head})
            tracker.log_artifact(folder / store.LABELS_DIR / "label_distribution.png")
    return artifacts


def tables_job(config, *, runs_dir: str | Path | None = None, data_dir: str | Path | None = None,
               output: str | Path | None = None, stage: str | None = None) -> list[Path]:
    """Write the paper's tables beside the measured runs (:func:`lcr.report.tables.make_tables`) for the
    pipeline's datasets, as an MLflow run of ``stage`` (the files are its artifacts)."""
    from lcr.report.tables import make_tables

    datasets = config.pipeline.datasets
    with stage_run(stage) as tracker:
        written = make_tables(runs_dir or config.runs_dir, data_dir or config.data_dir, output or config.tables_dir,
                              datasets=datasets, main_gamma={d: config.train(d).gamma for d in datasets},
                              aggregate={d: config.aggregate(d) for d in datasets})
        if tracker is not None:
            for path in written:
                tracker.log_artifact(path, artifact_path="tables")
    return written


def pipeline_job(dataset: str, config, *, variant: str = "labelcorank", settings: dict | None = None,
                 source: str | Path | None = None, register: bool = False, progress: bool = False) -> dict:
    """One dataset end to end, each step its own MLflow run: fetch, prepare, train and evaluate,
    ``roberta-oracle`` after a ``roberta`` run, and, when asked to register, the label-set
    calibration (into the model folder) and the registration.

    Returns:
        ``{"stats", "train", "oracle" (or None), "calibrate" and "register" (or None)}``.
    """
    fetch_stats = fetch_job(dataset, config, source=source, stage=f"fetch@{dataset}", progress=progress)
    prepare_job(dataset, config, stage=f"prepare@{dataset}", progress=progress)
    params, sources = config.train_with_sources(dataset, settings=settings, variant=variant)
    folder = run_dir(config.runs_dir, dataset, params, named_gamma=sources.get("gamma") == "--set")
    trained = train_job(dataset, params, data_dir=config.data_dir, output_dir=folder, runs_dir=config.runs_dir,
                        eval_split=config.dataset(dataset).eval_split, progress=progress,
                        tags={"dvc.stage": f"train@{dataset}-{variant}"}, sources=sources)
    oracle = None
    if variant == "roberta":
        oracle = oracle_job(dataset, folder, data_dir=config.data_dir, tags={"dvc.stage": f"oracle@{dataset}"})
    calibrated = registered = None
    if register:
        calibrated = calibrate_job(dataset, folder, data_dir=config.data_dir, eval_split=config.dataset(dataset).eval_split,
                                   stage=f"calibrate@{dataset}")
        registered = register_job(dataset, folder, tags={"dvc.stage": f"register@{dataset}"})
    return {"stats": fetch_stats, "train": trained, "oracle": oracle, "calibrate": calibrated, "register": registered}


def calibrate_job(dataset: str, source_dir: str | Path, *, data_dir: str | Path = "data", per_label: bool = False,
                  min_support: int = 5, eval_split: str = "test", k: int = 20, track: bool = True,
                  output: str | Path | None = None, stage: str | None = None) -> dict:
    """Calibrate a trained run's model folder for label sets (:mod:`lcr.serve.calibration`).

    Ranks the dev split with the run's ``best_model``, chooses the threshold and label count
    (and per-label thresholds with ``per_label``) that maximise dev micro-F1, measures the
    micro-F1 of those sets on ``eval_split``, and writes ``calibration.json`` into the model
    folder, so that a later ``lcr register`` carries it; or, with ``output``, to that file instead
    (the DVC stage: a run folder is the train stage's output, so the ``calibrate`` stage writes
    its own file and ``lcr register --calibration FILE`` adds it to the registered model). An
    MLflow run of ``stage`` when tracked.

    Returns:
        The calibration as a dict, with ``model_folder`` and ``file``.
    """
    from dataclasses import asdict

    import numpy as np

    from lcr.datasets import store
    from lcr.errors import LcrError
    from lcr.runs import BEST_DIR
    from lcr.serve.calibration import evaluate_calibration, fit_calibration, save_calibration
    from lcr.serve.predictor import Predictor

    folder = Path(source_dir) / BEST_DIR
    if not folder.is_dir():
        raise LcrError(f"{folder} is missing: train the model first (lcr train --dataset {dataset})")
    dataset_dir = Path(data_dir) / dataset
    predictor = Predictor.load(folder)
    index = {label: i for i, label in enumerate(predictor.labels)}

    def ranked(split: str):
        table = store.read_split(dataset_dir, split, columns=["text", "labels"])
        gold = [{index[label] for label in labels if label in index} for labels in table.column("labels").to_pylist()]
        rows = predictor.predict(table.column("text").to_pylist(), k=min(k, len(predictor.labels)), batch_size=64)
        width = max((len(row) for row in rows), default=0)
        topk = np.full((len(rows), width), -1, dtype=np.int64)
        scores = np.full((len(rows), width), np.nan)
        for i, row in enumerate(rows):
            topk[i, :len(row)] = [index[r["label"]] for r in row]
            scores[i, :len(row)] = [r["score"] for r in row]
        return gold, topk, scores

    if not store.split_path(dataset_dir, "dev").exists():
        raise LcrError(f"{dataset_dir}: no dev split to calibrate on")
    with stage_run(stage if track else None, dataset, data_dir) as tracker:
        calibration = fit_calibration(*ranked("dev"), predictor.labels, per_label=per_label, min_support=min_support)
        calibration.test_micro_f1 = round(evaluate_calibration(calibration, *ranked(eval_split), predictor.labels), 6)
        written = save_calibration(output or folder, calibration)
        if tracker is not None:
            tracker.log_params({"dataset": dataset, "source_run": str(source_dir), "per_label": per_label,
                                "min_support": min_support, "threshold": calibration.threshold,
                                "max_labels": calibration.max_labels})
            tracker.log_metrics({"dev_micro_F1": calibration.dev_micro_f1,
                                 f"{eval_split}_micro_F1": calibration.test_micro_f1})
            tracker.log_artifact(written)
    return {**asdict(calibration), "label_thresholds": len(calibration.label_thresholds), "model_folder": str(folder),
            "file": str(written), "eval_split": eval_split}
