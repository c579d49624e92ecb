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
              sources: dict[str, str] | None = None) -> dict:
    """Train and evaluate one model, logged as one MLflow run (rank 0 only under torchrun).

    The run is tagged with the dataset, variant, git commit and data hashes, holds the resolved
    configuration as params, per-step losses, per-epoch dev metrics and the final metrics, and
    the configuration, label vocabulary and predictions as artifacts. ``token_cache`` is passed
    to :func:`lcr.training.train` (the TF-IDF baseline tokenises no subwords and ignores it).
    """
    import os

    from lcr import tracking
    from lcr.atomic import atomic_open
    from lcr.runs import CONFIG_FILE, MLFLOW_RUN_FILE
    from lcr.variants import LINEAR_VARIANTS
    from lcr.training import check_inputs
    from lcr.training import train as train_loop

    if params.variant in LINEAR_VARIANTS:
        from lcr.baselines.tfidf import train_tfidf

        def train(dataset_dir, output_dir, params, *, eval_split, resume, progress, tracker=None,
                  token_cache=True, sources=None):
            return train_tfidf(dataset_dir, output_dir, params, eval_split=eval_split, tracker=tracker,
                               progress=progress)
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
                       tracker=tracker, progress=progress, token_cache=token_cache, sources=sources)
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
    from lcr.evaluation import oracle_prediction_file
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
                 record: str | Path | None = None, tags: dict | None = None) -> dict:
    """Log a trained run's model as an MLflow pyfunc model and register it (``lcr-<dataset>``).

    The registration is its own MLflow run (nested under the current parent, if any), tagged
    with the training run it comes from. ``record`` (e.g. ``models/<dataset>.json``) receives the
    registered name, version, model URI and both run ids.
    """
    from lcr import tracking
    from lcr.runs import BEST_DIR, flat_scores, mlflow_run_id, read_results
    from lcr.serving import log_model, registered_uri, write_model_record

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
        logged = log_model(source_dir / BEST_DIR, name)
        result = {**logged, "uri": registered_uri(name, logged["version"]), "run_id": tracker.run_id,
                  "source_run_id": source_run, "source_dir": str(source_dir), "dataset": dataset}
    if record:
        write_model_record(record, result)
    return result
