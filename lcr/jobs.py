"""Jobs: library functions wired to MLflow tracking, as the CLI and the DVC stages run them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lcr.config import TrainParams


def run_dir(runs_dir: str | Path, dataset: str, params: TrainParams) -> Path:
    """Where a training job writes: ``runs/<dataset>/<variant>-g<gamma>-s<seed>``."""
    return Path(runs_dir) / dataset / f"{params.variant}-g{params.gamma}-s{params.seed}"


def train_job(dataset: str, params: TrainParams, *, data_dir: str | Path = "data",
              runs_dir: str | Path = "runs", output_dir: str | Path | None = None,
              eval_split: str = "test", resume: bool = False, track: bool = True,
              progress: bool | None = None) -> dict:
    """Train and evaluate one model, logged as one MLflow run (rank 0 only under torchrun).

    The run is tagged with the dataset, variant, git commit and data hashes, holds the resolved
    configuration as params, per-step losses, per-epoch dev metrics and the final metrics, and
    the configuration, label vocabulary and predictions as artifacts.
    """
    import json
    import os

    from lcr import tracking
    from lcr.atomic import atomic_open
    from lcr.training import check_inputs, train

    dataset_dir = Path(data_dir) / dataset
    output_dir = Path(output_dir) if output_dir else run_dir(runs_dir, dataset, params)
    check_inputs(dataset_dir, params, eval_split)  # fail fast, before MLflow starts a run
    is_main = int(os.environ.get("RANK", "0")) == 0
    if not (track and is_main):
        return train(dataset_dir, output_dir, params, eval_split=eval_split, resume=resume, progress=progress)

    output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(output_dir / "config.json", "w", encoding="utf-8") as handle:
        json.dump({"dataset": dataset, "eval_split": eval_split, **dataclasses.asdict(params)}, handle, indent=2)
    tags = {"lcr.dataset": dataset, "lcr.variant": params.variant,
            "mlflow.source.git.commit": tracking.git_commit() or "unknown",
            **tracking.data_hashes(dataset_dir)}
    run_file = output_dir / "mlflow_run.json"
    if not resume and run_file.exists():
        run_file.unlink()  # a fresh job gets a fresh run
    with tracking.MlflowTracker(f"{dataset}-{params.variant}", tags=tags, run_file=run_file) as tracker:
        tracker.log_artifact(output_dir / "config.json")
        tracker.log_artifact(dataset_dir / "label_vocab.tsv")
        result = train(dataset_dir, output_dir, params, eval_split=eval_split, resume=resume,
                       tracker=tracker, progress=progress)
        result["run_id"] = tracker.run_id
    return result


def oracle_job(dataset: str, source_dir: str | Path, *, output_dir: str | Path | None = None, m: int = 10,
               data_dir: str | Path = "data", track: bool = True) -> dict:
    """``roberta-oracle`` (the paper's "RoBERTa*"): rerank a trained run's predictions with the gold.

    Reads ``source_dir/metrics.json`` (for the evaluation split) and its predictions file,
    writes ``predictions-<split>.jsonl`` and ``metrics.json`` to ``output_dir`` (default: the
    sibling folder ``<source name>-oracle-m<m>``), logged as one MLflow run when ``track``.
    """
    import json

    from lcr import tracking
    from lcr.atomic import atomic_open
    from lcr.errors import LcrError
    from lcr.evaluation import oracle_prediction_file

    source_dir = Path(source_dir)
    source_metrics = source_dir / "metrics.json"
    if not source_metrics.is_file():
        raise LcrError(f"{source_metrics} is missing: train the model first "
                       f"(lcr train --dataset {dataset} --variant roberta)")
    split = json.loads(source_metrics.read_text(encoding="utf-8")).get("eval_split", "test")
    output_dir = Path(output_dir) if output_dir else source_dir.with_name(f"{source_dir.name}-oracle-m{m}")
    output_dir.mkdir(parents=True, exist_ok=True)
    predictions = output_dir / f"predictions-{split}.jsonl"
    scored = oracle_prediction_file(f"{dataset}:{split}", source_dir / f"predictions-{split}.jsonl", predictions,
                                    m=m, data_dir=data_dir)
    result = {"eval_split": split, "eval": scored["metrics"], "source_run": str(source_dir), "m": m,
              "output_dir": str(output_dir)}
    with atomic_open(output_dir / "metrics.json", "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    if track:
        tags = {"lcr.dataset": dataset, "lcr.variant": "roberta-oracle",
                "mlflow.source.git.commit": tracking.git_commit() or "unknown",
                **tracking.data_hashes(Path(data_dir) / dataset)}
        with tracking.MlflowTracker(f"{dataset}-roberta-oracle", tags=tags,
                                    run_file=output_dir / "mlflow_run.json") as tracker:
            tracker.log_params({"dataset": dataset, "variant": "roberta-oracle", "m": m,
                                "source_run": str(source_dir), "eval_split": split})
            tracker.log_metrics(tracking.subset_metrics(result["eval"]))
            tracker.log_artifact(output_dir / "metrics.json")
            tracker.log_artifact(predictions)
            result["run_id"] = tracker.run_id
    return result
