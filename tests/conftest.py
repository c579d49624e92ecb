"""Shared test fixtures.

The real datasets are read from the mirror folder: ``$LCR_DATA_MIRROR`` or, when unset,
``../shared/datasets`` beside the checkout (as on CI). Tests that need them are skipped elsewhere.
``registered`` trains a toy model once per session and registers it in a fresh MLflow store
(the serving and batch-scoring tests share it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _mirror() -> Path | None:
    env = os.environ.get("LCR_DATA_MIRROR")
    candidate = Path(env) if env else REPO.parent / "shared" / "datasets"
    return candidate if candidate.is_dir() else None


MIRROR = _mirror()
if MIRROR is not None:
    os.environ["LCR_DATA_MIRROR"] = str(MIRROR)


@pytest.fixture(autouse=True)
def _mlflow_uris_restored():
    """Every test leaves MLflow's tracking and registry URIs as it found them.

    ``lcr.tracking.configure`` points MLflow at a store with ``set_tracking_uri`` and
    ``set_registry_uri``, which also export ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI`` for
    child processes: a test's temporary store would otherwise stay the registry of every later
    test (and of the servers they start). The parent-run variables are restored too."""
    import sys

    keys = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "LCR_PARENT_RUN_ID")
    saved_env = {key: os.environ.get(key) for key in keys}
    modules = ("mlflow.tracking._tracking_service.utils", "mlflow.tracking._model_registry.utils")
    saved = {name: getattr(sys.modules[name], attr) for name, attr in zip(modules, ("_tracking_uri", "_registry_uri"))
             if name in sys.modules}
    yield
    for key, value in saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    for name, attr in zip(modules, ("_tracking_uri", "_registry_uri")):
        if name in sys.modules:
            setattr(sys.modules[name], attr, saved.get(name))


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A fresh sqlite tracking store in the test's folder (also the working folder), with no
    parent run; yields its URI and ends any run the test left open."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("LCR_PARENT_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(uri)  # MLflow keeps the URI an earlier test set
    mlflow.set_registry_uri(uri)  # and the registry URI: a session fixture's registry would answer otherwise
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def mirror() -> Path:
    """The offline dataset mirror; skips the test when there is none."""
    if MIRROR is None:
        pytest.skip("no dataset mirror (set LCR_DATA_MIRROR or put ../shared/datasets beside the checkout)")
    return MIRROR


@pytest.fixture
def no_mirror(monkeypatch):
    """Run without a mirror, so that nothing is found unless the test provides it."""
    monkeypatch.delenv("LCR_DATA_MIRROR", raising=False)


@pytest.fixture(scope="session")
def registered(tmp_path_factory):
    """A toy LabelCoRank model trained for two epochs, logged from code and registered as
    ``lcr-toy`` version 1 in a fresh sqlite store."""
    import mlflow

    from lcr.config import train_params
    from lcr.datasets import store
    from lcr.jobs import train_job
    from lcr.labels import prepare
    from lcr.serve.pyfunc import log_model
    from tests.tiny_encoder import make_tiny_encoder
    from tests.toy_data import toy_documents

    root = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # the store's default artifact root, ./mlruns, lands here
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        data = root / "data"
        store.write_store(data / "toy", {"train": toy_documents(48, 0), "dev": toy_documents(16, 1),
                                         "test": toy_documents(16, 2)}, progress=False)
        prepare(data / "toy", show_progress=False)
        params = train_params(dict(encoder=make_tiny_encoder(root / "encoder"), gamma=3, num_heads=2,
                                   batch_size=8, max_length=32, epochs=2, lr=3e-3, device="cpu"))
        train_job("toy", params, data_dir=data, output_dir=root / "run", progress=False)
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run():
            record = log_model(root / "run" / "best_model", "lcr-toy")
    return {"root": root, "uri": uri, "data": data, "record": record, "folder": root / "run" / "best_model"}
