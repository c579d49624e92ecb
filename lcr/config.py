"""Typed configuration: ``params.yaml`` becomes dataclasses here, and only here.

The CLI, the DVC stages and MLflow entry points all read their settings through
:func:`load_params`; a command-line option overrides the matching field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lcr.errors import LcrError

DEFAULT_PARAMS = Path("params.yaml")
# The project's own params.yaml (for tests and tools that run outside the project folder).
REPO_PARAMS_HINT = Path(__file__).resolve().parents[1] / "params.yaml"


@dataclass
class DatasetParams:
    """How one dataset is fetched and split.

    Attributes:
        dev_fraction: share of the training documents held out as ``dev`` when the source has
            no dev split of its own (Reuters-21578 ModApte, a single custom file). Documents are
            assigned by a hash of their id, so the split is deterministic and stable.
        merge_train_dev: train on train + dev (the paper's AAPD setting: 54,840 = 53,840 + 1,000).
            ``dev`` is still written, so it then overlaps with ``train``.
        train_standin: a split (``dev`` or ``test``) whose documents stand in as training data
            when the source lacks a train split (the offline AAPD copy); for smoke runs only,
            and recorded in ``stats.json``.
        eval_split: the split that final evaluation reports on. The paper's N_tst for MAG-CS and
            PubMed equals the size of MATCH's dev split, so ``dev`` reproduces its test set size.
        source: an explicit source path (file or folder) tried before the mirror and the URL.
    """

    dev_fraction: float = 0.0
    merge_train_dev: bool = False
    train_standin: str | None = None
    eval_split: str = "test"
    source: str | None = None


@dataclass
class PrepareParams:
    """Label artifacts (``lcr prepare``).

    Attributes:
        head_fraction: the most frequent share of labels that counts as head labels (paper: 10%).
    """

    head_fraction: float = 0.1


@dataclass
class Params:
    """All parameters of the project."""

    data_dir: str = "data"
    pipeline_datasets: list[str] = field(default_factory=lambda: ["reuters21578"])
    datasets: dict[str, DatasetParams] = field(default_factory=dict)
    prepare: PrepareParams = field(default_factory=PrepareParams)

    def dataset(self, name: str) -> DatasetParams:
        """Parameters of a dataset (defaults when ``params.yaml`` does not name it)."""
        return self.datasets.get(name, DatasetParams())


def _build(cls, values: dict, where: str):
    if values is None:
        return cls()
    if not isinstance(values, dict):
        raise LcrError(f"{where}: expected a mapping, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise LcrError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    return cls(**values)


def parse_params(raw: dict, where: str = "params") -> Params:
    """Build :class:`Params` from a parsed YAML mapping, rejecting unknown keys."""
    raw = dict(raw or {})
    datasets = {
        name: _build(DatasetParams, values, f"{where}: datasets.{name}")
        for name, values in (raw.pop("datasets", None) or {}).items()
    }
    prepare = _build(PrepareParams, raw.pop("prepare", None), f"{where}: prepare")
    # Sections that belong to later stages (training, tables, ...) are read by their own
    # dataclasses; keep only the keys this module knows at top level.
    data_dir = raw.pop("data_dir", "data")
    pipeline = raw.pop("pipeline", None) or {}
    pipeline_datasets = list(pipeline.get("datasets", ["reuters21578"]))
    return Params(data_dir=data_dir, pipeline_datasets=pipeline_datasets, datasets=datasets,
                  prepare=prepare)


def load_params(path: str | Path | None = None) -> Params:
    """Load ``params.yaml`` (or the given file); built-in defaults when the default file is absent."""
    explicit = path is not None
    path = Path(path) if explicit else DEFAULT_PARAMS
    if not path.exists():
        if explicit:
            raise LcrError(f"parameter file {path} does not exist")
        return Params()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LcrError(f"{path}: invalid YAML: {exc}") from exc
    return parse_params(raw, str(path))
