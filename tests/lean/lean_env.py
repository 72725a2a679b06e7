"""A virtual environment with the core install only, built from this one without a network.

``pip install mlops-kit`` (no extras) would install the distributions that mlops-kit's
core requirements pull in, transitively. This builds a venv holding exactly those, by
linking their installed files (each distribution's RECORD) from the current
environment, so a test can run the CLI as a user with a core install would, offline.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def core_distributions(root: str = "mlops-kit") -> dict[str, md.Distribution]:
    """The distributions a plain install of ``root`` brings, by canonical name."""
    found: dict[str, md.Distribution] = {}
    stack: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    done: set[tuple[str, frozenset[str]]] = set()
    while stack:
        name, extras = stack.pop()
        key = (_canon(name), extras)
        if key in done:
            continue
        done.add(key)
        dist = md.distribution(name)
        found[_canon(name)] = dist
        for raw in dist.requires or []:
            req = Requirement(raw)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker and not any(req.marker.evaluate(env) for env in envs):
                continue
            stack.append((req.name, frozenset(req.extras)))
    return found


def build(target: Path) -> Path:
    """Create the core-only venv at ``target``; returns its python."""
    base = Path(getattr(sys, "_base_executable", sys.executable))
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(target)], check=True)
    python = target / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    for dist in core_distributions().values():
        root = Path(str(dist.locate_file("")))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in sorted(tops):
            src, dst = root / top, site / top
            if src.exists() and not dst.exists():
                os.symlink(src, dst)
    return python


def run_cli(
    python: Path, *args: str, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``mlops-kit ARGS`` in the core-only venv (output as text, never raising)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_KIT_", "PYTHON"))}
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb")
    return subprocess.run(
        [str(python), "-m", "mlops_kit.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
