"""Shared test fixtures.

The real datasets are read from the mirror folder: ``$LCR_DATA_MIRROR`` or, when unset,
``../shared/datasets`` beside the checkout (as on CI). Tests that need them are skipped elsewhere.
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
