"""Serving a trained model through MLflow: a pyfunc wrapper and the model registry.

The pyfunc model carries the whole model folder (safetensors weights with the sparse
co-occurrence matrix and the frequency ranks, model and encoder configs, tokenizer, label names;
see :mod:`lcr.serve.predictor`) as an artifact and the ``lcr`` package as code, so
``mlflow models serve -m models:/<name>/<version>`` needs no network and no checkout. It is
logged as "models from code" (:mod:`lcr.serve.pyfunc_code`): nothing in it is unpickled when it loads.
It reuses the model and label code, never the training loop.

Input: a DataFrame (or JSON ``dataframe_split``/``dataframe_records``/``inputs``) with a string
column ``text``, or a plain list of strings. Params: ``top_k`` (labels per text, default 5),
``threshold`` (minimum score; unset = none), ``explain`` (default false) and ``mode``
(``ranking``, the default, or ``set``: the label set that ``lcr calibrate`` chose, see
:mod:`lcr.serve.calibration`). Output: one row per
text with ``labels`` (label names, best first), ``label_ids`` and ``scores``; with ``explain``
also ``extended_labels``, the label sequence S the model attended over (the paper's "Extend
labels", Tables 14-15). Bad input raises an MLflow ``INVALID_PARAMETER_VALUE`` error (HTTP 400
from the scoring server) whose message names the row and the problem.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from lcr.errors import LcrError

ARTIFACT = "model_folder"
# The most texts one request may carry: bounds a request's memory and latency. Larger jobs go
# through `lcr predict` or Spark. The serving process reads LCR_SERVING_MAX_BATCH to change it.
MAX_BATCH_ENV = "LCR_SERVING_MAX_BATCH"
DEFAULT_MAX_BATCH = 256
DEVICE_ENV = "LCR_SERVING_DEVICE"
# The Spark UDF's result type for `mlflow.pyfunc.spark_udf(..., result_type=SPARK_RESULT_TYPE)`.
SPARK_RESULT_TYPE = "labels array<string>, label_ids array<string>, scores array<double>"
EXAMPLE_TEXTS = ["Crude oil prices fell as OPEC output rose.",
                 "Wheat and corn exports grew after a record harvest."]


def max_batch() -> int:
    """The request size cap: ``$LCR_SERVING_MAX_BATCH`` or :data:`DEFAULT_MAX_BATCH`."""
    raw = os.environ.get(MAX_BATCH_ENV, "")
    try:
        value = int(raw) if raw else DEFAULT_MAX_BATCH
    except ValueError:
        raise LcrError(f"{MAX_BATCH_ENV}={raw!r}: expected a positive integer") from None
    if value < 1:
        raise LcrError(f"{MAX_BATCH_ENV}={raw!r}: expected a positive integer")
    return value


def serving_device() -> str:
    """``$LCR_SERVING_DEVICE`` when set, else the first GPU when torch sees one, else ``cpu``."""
    import torch

    return os.environ.get(DEVICE_ENV) or ("cuda" if torch.cuda.is_available() else "cpu")


def input_texts(model_input) -> list:
    """The texts of a pyfunc input: a DataFrame's ``text`` column, a Series, a dict with a
    ``text`` list, a list or 1-D array of strings, or one string. Values are checked by the predictor.

    Raises:
        LcrError: no ``text`` column, an unsupported input type, or more texts than
            :func:`max_batch` allows.
    """
    if isinstance(model_input, pd.DataFrame):
        if "text" not in model_input.columns:
            raise LcrError(f"input needs a 'text' column; got columns {[str(c) for c in model_input.columns]}")
        texts = model_input["text"].tolist()
    elif isinstance(model_input, pd.Series):
        texts = model_input.tolist()
    elif isinstance(model_input, dict):
        if "text" not in model_input:
            raise LcrError(f"input needs a 'text' field; got fields {sorted(map(str, model_input))}")
        value = model_input["text"]
        texts = [value] if isinstance(value, str) else list(value)
    elif isinstance(model_input, str):
        texts = [model_input]
    elif isinstance(model_input, (list, tuple)):
        texts = list(model_input)
    elif isinstance(model_input, np.ndarray) and (model_input.ndim == 1 or model_input.shape[1:] == (1,)):
        texts = model_input.reshape(-1).tolist()  # JSON {"inputs": [...]} arrives as an array
    else:
        raise LcrError(f"input must be a DataFrame with a 'text' column or a list of strings, "
                       f"got {type(model_input).__name__}")
    cap = max_batch()
    if len(texts) > cap:
        raise LcrError(f"{len(texts)} texts in one request; at most {cap} are accepted "
                       f"(split the batch, or set {MAX_BATCH_ENV} on the server)")
    return texts


def _options(params: dict | None) -> tuple[int, float | None, bool, str]:
    params = params or {}
    top_k = params.get("top_k", 5)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise LcrError(f"top_k must be a positive integer, got {top_k!r}")
    threshold = params.get("threshold")
    if threshold is not None and not (isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0):
        raise LcrError(f"threshold must be a number between 0 and 1, got {threshold!r}")
    explain = params.get("explain", False)
    if not isinstance(explain, bool):
        raise LcrError(f"explain must be true or false, got {explain!r}")
    mode = params.get("mode", "ranking")
    if mode not in ("ranking", "set"):
        raise LcrError(f"mode must be 'ranking' or 'set', got {mode!r}")
    return top_k, threshold, explain, mode


class LabelCoRankPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper around :class:`lcr.serve.predictor.Predictor`."""

    def load_context(self, context) -> None:
        from lcr.serve.predictor import Predictor

        self.predictor = Predictor.load(context.artifacts[ARTIFACT], device=serving_device())

    def predict(self, context, model_input, params: dict | None = None) -> pd.DataFrame:
        """Label the texts; see the module docstring for input, params and output."""
        try:
            texts = input_texts(model_input)
            top_k, threshold, explain, mode = _options(params)
            results = self.predictor.predict(texts, k=top_k, threshold=threshold, explain=explain, mode=mode)
        except LcrError as exc:
            # INVALID_PARAMETER_VALUE: the scoring server answers 400 with this message.
            raise MlflowException.invalid_parameter_value(str(exc)) from exc
        ranked = [row["ranked"] for row in results] if explain else results
        frame = pd.DataFrame({"labels": [[r["name"] for r in row] for row in ranked],
                              "label_ids": [[r["label"] for r in row] for row in ranked],
                              "scores": [[r["score"] for r in row] for row in ranked]})
        if explain:
            frame["extended_labels"] = [None if row["extended"] is None else [r["name"] for r in row["extended"]]
                                        for row in results]
        return frame


def signature():
    """The parameters ``top_k``, ``threshold``, ``explain`` and ``mode``; the input is described by the input
    example and checked by :func:`input_texts` and the predictor, not by an MLflow input schema:
    MLflow enforces a named ``text`` column by rejecting a plain list of strings, and an unnamed
    column by binding the DataFrame's *first* column (an ``id`` column placed first would be
    scored as text). Our own checks accept both and name the row at fault."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    return ModelSignature(inputs=None, params=ParamSchema([
        ParamSpec("top_k", "long", 5), ParamSpec("threshold", "double", None), ParamSpec("explain", "boolean", False),
        ParamSpec("mode", "string", "ranking")]))


def log_model(model_folder: str | Path, registered_name: str | None = None) -> dict:
    """Log a model folder as a pyfunc model in the active MLflow run; optionally register it.

    The model is logged from code (:mod:`lcr.serve.pyfunc_code`), with a signature and an input
    example (MLflow checks at logging time that the example scores).

    Args:
        model_folder: a training run's ``best_model`` folder.
        registered_name: the registry name (e.g. ``lcr-reuters21578``); None = do not register.

    Returns:
        ``{"model_uri", "registered_name", "version"}``.

    Raises:
        LcrError: no active run, or the folder is not a model folder.
    """
    import lcr
    from lcr.serve.predictor import REQUIRED

    model_folder = Path(model_folder)
    missing = [name for name in REQUIRED if not (model_folder / name).exists()]
    if missing:
        raise LcrError(f"{model_folder} is not an lcr model folder (missing: {', '.join(missing)})")
    if mlflow.active_run() is None:
        raise LcrError("log_model needs an active MLflow run")
    import pydantic
    import torch
    import transformers

    package = Path(lcr.__file__).parent
    # pydantic: the model configs are lcr.models.hyperparams settings (mlflow needs it too; pinned here
    # so that the served model reads its config.json with the version that wrote it)
    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"transformers=={transformers.__version__}",
                    f"mlflow=={mlflow.__version__}", f"pydantic=={pydantic.__version__}", "pandas", "pyarrow",
                    "scipy", "safetensors", "pyyaml"]
    info = mlflow.pyfunc.log_model(name="model", python_model=str(Path(__file__).with_name("pyfunc_code.py")),
                                   artifacts={ARTIFACT: str(model_folder)}, code_paths=[str(package)],
                                   signature=signature(), input_example=pd.DataFrame({"text": EXAMPLE_TEXTS}),
                                   pip_requirements=requirements, registered_model_name=registered_name)
    version = None
    if registered_name:
        version = info.registered_model_version
    return {"model_uri": info.model_uri, "registered_name": registered_name,
            "version": None if version is None else int(version)}


def load_predictor(model: str | Path, device: str = "cpu"):
    """A :class:`lcr.serve.predictor.Predictor` for batch scoring from any model reference.

    Args:
        model: a model folder (``runs/<dataset>/<run>/best_model``), a local MLflow pyfunc model
            directory, or an MLflow model URI (``models:/lcr-aapd/3``, ``models:/lcr-aapd/latest``,
            ``runs:/<run id>/model``), resolved against the current tracking store.
        device: where the model runs.

    Raises:
        LcrError: nothing found at the reference, or it is not an lcr model.
    """
    import yaml

    from lcr.serve.predictor import REQUIRED, Predictor

    path = Path(model)
    if path.is_dir() and all((path / name).exists() for name in REQUIRED):
        return Predictor.load(path, device=device)
    if path.is_dir():
        local = path
    elif "://" in str(model) or str(model).startswith(("models:/", "runs:/")):
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=str(model)))
        except MlflowException as exc:
            raise LcrError(f"{model}: cannot resolve the model ({exc.message})") from exc
    else:
        raise LcrError(f"{model}: no such model folder, MLflow model directory or model URI")
    mlmodel = local / "MLmodel"
    if not mlmodel.exists():
        raise LcrError(f"{model}: neither an lcr model folder nor an MLflow model (no MLmodel file)")
    conf = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    artifact = (((conf.get("flavors") or {}).get("python_function") or {}).get("artifacts") or {}).get(ARTIFACT)
    if not artifact:
        raise LcrError(f"{model}: an MLflow model, but not one logged by lcr (no '{ARTIFACT}' artifact)")
    return Predictor.load(local / artifact["path"], device=device)


def registered_uri(name: str, version: int | None = None) -> str:
    """``models:/<name>/<version>`` (``latest`` when no version is given)."""
    return f"models:/{name}/{version if version is not None else 'latest'}"


CHAMPION, CHALLENGER = "champion", "challenger"
#: The version tag that holds the dev metric the aliases are decided on.
DEV_METRIC_TAG = "lcr.dev_metric"


def set_alias(name: str, version: int, dev_metric: float | None, metric_name: str = "nDCG@5") -> str:
    """Give a new registered version the alias ``champion`` when its dev metric beats the current
    champion's (or there is none), else ``challenger``; returns the alias given.

    The metric is kept as the version's tag ``lcr.dev_metric`` (with ``lcr.dev_metric_name``), so
    later registrations compare against it. A version without a dev metric never displaces a
    champion that has one.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    if dev_metric is not None:
        client.set_model_version_tag(name, str(version), DEV_METRIC_TAG, str(dev_metric))
        client.set_model_version_tag(name, str(version), f"{DEV_METRIC_TAG}_name", metric_name)
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    current = None if champion is None else champion.tags.get(DEV_METRIC_TAG)
    wins = champion is None or (dev_metric is not None and (current is None or dev_metric > float(current)))
    alias = CHAMPION if wins else CHALLENGER
    client.set_registered_model_alias(name, alias, str(version))
    return alias


def alias_uri(name: str, alias: str = CHAMPION) -> str:
    """``models:/<name>@<alias>``."""
    return f"models:/{name}@{alias}"


def write_model_record(path: str | Path, record: dict) -> None:
    """Write the small JSON file that leads from a DVC output to the registered model."""
    from lcr.atomic import atomic_open

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
