"""The layer order of docs/architecture.md holds: checked with import-linter on the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

LINT = Path(sys.executable).parent / "lint-imports"


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": str(LINT.parent)},
    )


def test_no_module_imports_a_layer_above_it() -> None:
    proc = _lint(REPO / ".importlinter")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def test_the_check_has_teeth(tmp_path: Path) -> None:
    """The same check with two layers swapped reports the imports that cross them."""
    text = (REPO / ".importlinter").read_text()
    swapped = text.replace(
        "    mlops_kit.etl\n    mlops_kit.ingest\n", "    mlops_kit.ingest\n    mlops_kit.etl\n"
    )
    assert swapped != text
    config = tmp_path / ".importlinter"
    config.write_text(swapped)
    proc = _lint(config)
    assert proc.returncode == 1
    assert "mlops_kit.ingest is not allowed to import mlops_kit.etl" not in proc.stdout
    assert "mlops_kit.etl is not allowed to import mlops_kit.ingest" in proc.stdout
