"""Serving a trained model through MLflow: a pyfunc wrapper and the model registry.

The pyfunc model carries the whole model folder (weights, tokenizer, label names; see
:mod:`lcr.predictor`) as an artifact and the ``lcr`` package as code, so
``mlflow models serve -m models:/<name>/<version>`` needs no network and no checkout. It reuses
the model and label code, never the training loop.

Input: a DataFrame (or JSON ``dataframe_records``) with a ``text`` column. Params: ``top_k``
(labels per text, default 5) and ``threshold`` (minimum score; 0 = none). Output: one row per text
with ``labels`` (ids, best first), ``names`` and ``scores``.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd

from lcr.errors import LcrError

ARTIFACT = "model_folder"


class LabelCoRankPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper around :class:`lcr.predictor.Predictor`."""

    def load_context(self, context) -> None:
        from lcr.predictor import Predictor

        self.predictor = Predictor.load(context.artifacts[ARTIFACT])

    def predict(self, context, model_input, params: dict | None = None) -> pd.DataFrame:
        params = params or {}
        if isinstance(model_input, pd.DataFrame):
            if "text" not in model_input.columns:
                raise LcrError(f"input needs a 'text' column; got columns {list(model_input.columns)}")
            texts = model_input["text"].tolist()
        elif isinstance(model_input, (list, tuple)):
            texts = list(model_input)
        else:
            raise LcrError(f"input must be a DataFrame with a 'text' column, got {type(model_input).__name__}")
        threshold = params.get("threshold")
        ranked = self.predictor.predict(texts, k=int(params.get("top_k", 5)),
                                        threshold=float(threshold) if threshold else None)
        return pd.DataFrame({"labels": [[r["label"] for r in row] for row in ranked],
                             "names": [[r["name"] for r in row] for row in ranked],
                             "scores": [[r["score"] for r in row] for row in ranked]})


def _signature():
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec("string", "text")]),
                          params=ParamSchema([ParamSpec("top_k", "long", 5), ParamSpec("threshold", "double", 0.0)]))


def log_model(model_folder: str | Path, registered_name: str | None = None) -> dict:
    """Log a model folder as a pyfunc model in the active MLflow run; optionally register it.

    Args:
        model_folder: a training run's ``best_model`` folder.
        registered_name: the registry name (e.g. ``lcr-reuters21578``); None = do not register.

    Returns:
        ``{"model_uri", "registered_name", "version"}``.

    Raises:
        LcrError: no active run, or the folder is not a model folder.
    """
    import lcr
    from lcr.predictor import REQUIRED

    model_folder = Path(model_folder)
    missing = [name for name in REQUIRED if not (model_folder / name).exists()]
    if missing:
        raise LcrError(f"{model_folder} is not an lcr model folder (missing: {', '.join(missing)})")
    if mlflow.active_run() is None:
        raise LcrError("log_model needs an active MLflow run")
    import torch
    import transformers

    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"transformers=={transformers.__version__}",
                    f"mlflow=={mlflow.__version__}", "pandas", "pyarrow", "scipy", "safetensors", "pyyaml"]
    info = mlflow.pyfunc.log_model(name="model", python_model=LabelCoRankPyfunc(),
                                   artifacts={ARTIFACT: str(model_folder)},
                                   code_paths=[str(Path(lcr.__file__).parent)], signature=_signature(),
                                   pip_requirements=requirements, registered_model_name=registered_name)
    version = None
    if registered_name:
        version = info.registered_model_version
    return {"model_uri": info.model_uri, "registered_name": registered_name,
            "version": None if version is None else int(version)}


def registered_uri(name: str, version: int | None = None) -> str:
    """``models:/<name>/<version>`` (``latest`` when no version is given)."""
    return f"models:/{name}/{version if version is not None else 'latest'}"


def write_model_record(path: str | Path, record: dict) -> None:
    """Write the small JSON file that leads from a DVC output to the registered model."""
    from lcr.atomic import atomic_open

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
