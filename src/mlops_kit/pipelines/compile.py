"""Compile every component and pipeline to the YAML committed in the repository.

Writes ``components/<name>/component.yaml`` for each component and
``pipelines/<name>.yaml`` for each pipeline. The output is deterministic: compiling twice
gives the same bytes, and a file whose content did not change is not rewritten.

Usage::

    python -m mlops_kit.pipelines.compile            # write into the repository
    python -m mlops_kit.pipelines.compile --check    # exit 1 when a file is stale
    python -m mlops_kit.pipelines.compile --out-dir build/
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlops_kit._lazy import require
from mlops_kit.components import COMPONENTS, get_component

COMPILE_COMMAND = "python -m mlops_kit.pipelines.compile"


def default_out_dir() -> Path:
    """The repository root of a source checkout, else the current directory."""
    here = Path(__file__).resolve()
    root = here.parents[3] if len(here.parents) > 3 else None
    if root is not None and (root / "pyproject.toml").is_file() and (root / "src").is_dir():
        return root
    return Path.cwd()


def render(obj: Any) -> str:
    """The compiled YAML of a component or pipeline, as committed.

    Args:
        obj: a ``@dsl.component`` or ``@dsl.pipeline``.
    """
    compiler = require("kfp.compiler", "compiling pipelines")
    with tempfile.TemporaryDirectory(prefix="mlk-compile-") as tmp:
        path = os.path.join(tmp, "out.yaml")
        compiler.Compiler().compile(obj, path)
        text = Path(path).read_text(encoding="utf-8")
    lines = [line.rstrip() for line in text.splitlines()]
    return "\n".join(lines).rstrip("\n") + "\n"


def targets() -> dict[str, Any]:
    """Relative output path -> the component or pipeline compiled there."""
    from mlops_kit.pipelines import PIPELINES, get_pipeline

    out: dict[str, Any] = {}
    for name in COMPONENTS:
        out[f"components/{name}/component.yaml"] = get_component(name)
    for name in PIPELINES:
        out[f"pipelines/{name}.yaml"] = get_pipeline(name)
    return out


def rendered() -> dict[str, str]:
    """Relative output path -> its YAML, compiled in memory."""
    return {rel: render(obj) for rel, obj in targets().items()}


def stale(out_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Relative paths whose committed YAML differs from a fresh compile (or is missing)."""
    root = Path(out_dir) if out_dir is not None else default_out_dir()
    out = []
    for rel, text in rendered().items():
        path = root / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(rel)
    return out


def compile_all(out_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Compile every component and pipeline under ``out_dir``.

    Args:
        out_dir: the repository root (default: :func:`default_out_dir`).

    Returns:
        The files written (those whose content changed).
    """
    root = Path(out_dir) if out_dir is not None else default_out_dir()
    written = []
    for rel, text in rendered().items():
        path = root / rel
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog=COMPILE_COMMAND, description="Compile mlops_kit's KFP components and pipelines."
    )
    parser.add_argument("--out-dir", type=Path, default=None, help="repository root")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when a file is stale"
    )
    args = parser.parse_args(argv)
    root = args.out_dir if args.out_dir is not None else default_out_dir()
    if args.check:
        old = stale(root)
        for rel in old:
            print(f"stale: {rel}", file=sys.stderr)
        if old:
            print(f"run '{COMPILE_COMMAND}' and commit the result", file=sys.stderr)
        return 1 if old else 0
    written = compile_all(root)
    for path in written:
        print(f"wrote {path}")
    print(f"{len(targets())} files compiled, {len(written)} changed, under {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
