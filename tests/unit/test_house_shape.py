"""The house keeps one shape: an errors module per domain with unique codes, no bare
root errors raised, and no source file past 600 lines."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from mlops_kit.errors import MlopsKitError

SRC = Path(__file__).resolve().parents[2] / "src" / "mlops_kit"
DOMAINS = ("data", "ingest", "etl", "features", "model", "training", "tracking", "registry")
MAX_LINES = 600


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_domain_has_its_errors_module(domain: str) -> None:
    module = importlib.import_module(f"mlops_kit.{domain}.errors")
    own = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, MlopsKitError) and cls.__module__ == module.__name__
    ]
    assert own, f"mlops_kit.{domain}.errors defines no error of its own"


def _all_errors() -> list[type[MlopsKitError]]:
    for path in SRC.rglob("errors.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        importlib.import_module(".".join(rel.parts))
    importlib.import_module("mlops_kit.training.launchers.base")
    seen: list[type[MlopsKitError]] = []
    todo = [MlopsKitError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen


def test_error_codes_are_unique() -> None:
    by_code: dict[str, list[str]] = {}
    for cls in _all_errors():
        if "code" in cls.__dict__:
            by_code.setdefault(cls.code, []).append(cls.__qualname__)
    clashes = {code: names for code, names in by_code.items() if len(names) > 1}
    assert not clashes, clashes


def test_no_bare_root_error_is_raised() -> None:
    """A caller branches on a stable code; the root class carries none of its own."""
    bare = [
        f"{p.relative_to(SRC)}:{i}"
        for p in SRC.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"raise MlopsKitError\(", line)
    ]
    assert not bare, bare


def test_no_source_file_is_longer_than_the_limit() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these (more than {MAX_LINES} lines): {long}"
