"""The house's one-way flow, checked from the source alone: config -> History -> Diagnosis ->
tracking, and only the tracking package talks to MLflow. Every import counts, including the
ones inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PURE = ("sweeps.loop", "sweeps.engine", "sweeps.data", "sweeps.model", "sweeps.diagnose")
OUTSIDE = ("sweeps.tracking", "mlflow", "sweeps.app", "sweeps.cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """Every module ``name`` imports (absolute names; ``from pkg import mod`` counts as pkg.mod)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else base)
    return found


def _within(imported: str, prefix: str) -> bool:
    return imported == prefix or imported.startswith(prefix + ".")


def test_the_source_tree_is_found():
    assert {"sweeps.cli", "sweeps.loop", "sweeps.diagnose", "sweeps.app", "sweeps.tracking"} <= MODULES.keys()


@pytest.mark.parametrize("pure", PURE)
def test_training_and_diagnosis_know_nothing_of_tracking_or_the_cli(pure):
    for name in (m for m in MODULES if _within(m, pure)):
        bad = sorted(i for i in _imports(name) for o in OUTSIDE if _within(i, o))
        assert not bad, f"{name} imports {bad}"


def test_only_the_tracking_package_imports_mlflow():
    users = sorted(m for m in MODULES if any(_within(i, "mlflow") for i in _imports(m)))
    assert users and all(_within(m, "sweeps.tracking") for m in users), users


def test_nothing_imports_the_cli_but_main():
    users = sorted(m for m in MODULES if any(_within(i, "sweeps.cli") for i in _imports(m)))
    assert users == ["sweeps.__main__"], users


def test_no_import_cycles():
    graph = {m: {i for i in _imports(m) if i in MODULES and i != m} for m in MODULES}
    # a package's __init__ re-exporting its submodules is not a cycle with them
    for m in graph:
        graph[m] = {i for i in graph[m] if not (_within(m, i) and MODULES[i].name == "__init__.py")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
