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
from pathlib import Path

TRACKING_ENV = "MLFLOW_TRACKING_URI"


def tracking_uri(project_dir: str | Path | None = None) -> str:
    """The tracking URI: ``$MLFLOW_TRACKING_URI``, else the project's ``mlflow.db``."""
    if os.environ.get(TRACKING_ENV):
        return os.environ[TRACKING_ENV]
    folder = Path(project_dir or Path.cwd()).resolve()
    return f"sqlite:///{folder / 'mlflow.db'}"


def configure(project_dir: str | Path | None = None) -> str:
    """Point MLflow at :func:`tracking_uri` (and its registry at the same store)."""
    import mlflow

    uri = tracking_uri(project_dir)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


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
