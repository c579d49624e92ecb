"""The project's set-up files agree with each other."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_conda_yaml_matches_pyproject():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    conda = yaml.safe_load((REPO / "conda.yaml").read_text())
    pip_section = next(item["pip"] for item in conda["dependencies"] if isinstance(item, dict))
    assert pip_section == deps


def test_pins_that_matter():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    # An unpinned torch pulls a multi-GB CUDA build; mlflow-skinny cannot open the sqlite store.
    assert "torch==2.13.0" in deps
    assert "mlflow==3.17.2" in deps


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    command = ci[-1].strip()
    assert command in (REPO / "README.md").read_text()


def test_mlproject_names_conda_yaml():
    mlproject = yaml.safe_load((REPO / "MLproject").read_text())
    assert mlproject["conda_env"] == "conda.yaml"
    assert re.search(r"\{dataset\}", mlproject["entry_points"]["main"]["command"])
