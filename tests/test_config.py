"""params.yaml -> typed dataclasses."""

import pytest

from lcr.config import REPO_PARAMS_HINT, load_params, parse_params
from lcr.errors import LcrError


def test_project_params_load():
    params = load_params(REPO_PARAMS_HINT)
    assert params.dataset("reuters21578").dev_fraction == 0.1
    assert params.prepare.head_fraction == 0.1
    assert "reuters21578" in params.pipeline_datasets
    # A dataset that params.yaml does not name gets the defaults.
    assert params.dataset("custom").dev_fraction == 0.0


def test_unknown_keys_are_named():
    with pytest.raises(LcrError, match="datasets.aapd: unknown key.*dev_fractoin"):
        parse_params({"datasets": {"aapd": {"dev_fractoin": 0.1}}})


def test_missing_explicit_file(tmp_path):
    with pytest.raises(LcrError, match="does not exist"):
        load_params(tmp_path / "nope.yaml")


def test_invalid_yaml(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("datasets: [unclosed\n")
    with pytest.raises(LcrError, match="invalid YAML"):
        load_params(bad)
