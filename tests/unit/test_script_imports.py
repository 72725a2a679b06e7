"""Scripts outside the package (benchmarks, examples, pipelines) import names that exist.

Benchmarks import the library inside functions and are not run by the suite, so a moved
module would otherwise only show when someone runs the benchmark.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("benchmarks", "examples", "pipelines")


def _imports(path: Path) -> list[tuple[int, str, str | None]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "mlops_kit":
                found.extend((node.lineno, node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(
                (node.lineno, alias.name, None)
                for alias in node.names
                if alias.name.split(".")[0] == "mlops_kit"
            )
    return found


def _scripts() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (REPO / folder).rglob("*.py"))


def test_scripts_are_found() -> None:
    names = {p.relative_to(REPO).parts[0] for p in _scripts()}
    assert names == set(FOLDERS)


@pytest.mark.parametrize("path", _scripts(), ids=lambda p: str(p.relative_to(REPO)))
def test_library_imports_resolve(path: Path) -> None:
    missing = []
    for line, module, name in _imports(path):
        if importlib.util.find_spec(module) is None:
            missing.append(f"line {line}: no module {module}")
            continue
        if name is None or name == "*":
            continue
        loaded = importlib.import_module(module)
        if not hasattr(loaded, name) and importlib.util.find_spec(f"{module}.{name}") is None:
            missing.append(f"line {line}: {module} has no {name}")
    assert not missing, f"{path.relative_to(REPO)}: " + "; ".join(missing)
