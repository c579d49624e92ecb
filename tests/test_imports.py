"""The import graph of ``lcr/``: no cycles, and the name-only modules stay free of torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the ``lcr`` package."""
    modules = {}
    for path in sorted((root / "lcr").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the ``lcr`` modules it imports anywhere in its file (module level or inside a
    function: a lazy import is still a dependency, and a cycle through it still ties the two
    modules together)."""
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names if alias.name in modules)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    # "from lcr.datasets import store" depends on the module lcr.datasets.store
                    full = f"{node.module}.{alias.name}"
                    if full in modules:
                        targets.add(full)
                    elif node.module in modules:
                        targets.add(node.module)
        targets.discard(name)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_sees_a_cycle_through_a_lazy_import(tmp_path):
    package = tmp_path / "lcr"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from lcr.b import thing\n")
    (package / "b.py").write_text("def thing():\n    from lcr import a\n")
    (package / "c.py").write_text("import lcr.a\n")
    graph = import_graph(module_files(tmp_path))
    assert graph["lcr.c"] == {"lcr.a"} and graph["lcr.b"] == {"lcr.a"}
    assert find_cycle(graph) == ["lcr.a", "lcr.b", "lcr.a"]
    (package / "b.py").write_text("def thing():\n    pass\n")
    assert find_cycle(import_graph(module_files(tmp_path))) is None


def test_lcr_has_no_import_cycle():
    graph = import_graph(module_files())
    assert {"lcr.models.labelcorank", "lcr.models.factory", "lcr.models.baselines.common", "lcr.models.base"} <= set(graph)
    assert find_cycle(graph) is None, "import cycle: " + " -> ".join(find_cycle(graph))
    # the shape the cycle used to break: the model and the baselines share lcr.models.base only
    assert "lcr.models.baselines.common" not in graph["lcr.models.labelcorank"] and "lcr.models.labelcorank" not in graph["lcr.models.baselines.common"]
    assert {"lcr.models.labelcorank", "lcr.models.baselines.common"} <= graph["lcr.models.factory"]


@pytest.mark.parametrize("module", ["lcr.models.variants", "lcr.runs", "lcr.config", "lcr.report.tables"])
def test_name_only_modules_do_not_import_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
