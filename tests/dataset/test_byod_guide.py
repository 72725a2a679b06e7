"""docs/datasets.md's guide, step by step: a CSV of the user's own -> a promoted model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _pumps_csv(path: Path) -> int:
    """Pumps every 10 minutes for two days: flow, pressure (some gaps), a start counter,
    a site, and a leak flag that follows high pressure."""
    rng = np.random.default_rng(4)
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start -= timedelta(days=2)
    lines = ["pump_id,read_at,flow,pressure,starts,site,leak"]
    for p in range(6):
        base = 100 + 8 * p
        for k in range(288):
            t = start + timedelta(minutes=10 * k)
            pressure = base + 10 * np.sin(k / 20 + p) + rng.normal(0, 2)
            leak = int(pressure > 130)
            shown = "" if k % 37 == 5 else f"{pressure:.3f}"
            lines.append(
                f"P{p},{t.strftime('%Y-%m-%dT%H:%M:%SZ')},{20 + rng.normal(0, 1):.3f},"
                f"{shown},{k // 50},{['north', 'south'][p % 2]},{leak}"
            )
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_KIT_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "mlops_kit.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def test_the_guide_from_a_csv_to_a_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _pumps_csv(tmp_path / "pumps.csv")
    (tmp_path / "specs").mkdir()
    steps = [
        ("dataset", "init", "pumps.csv", "--out", "specs/pumps.yaml"),
        ("dataset", "validate", "specs/pumps.yaml"),
    ]
    for step in steps:
        proc = _cli(tmp_path, *step)
        assert proc.returncode == 0, (step, proc.stdout, proc.stderr)
    (tmp_path / "mlops_kit.yaml").write_text(
        f"home: {tmp_path / 'home'}\ndataset: specs/pumps.yaml\n"
    )
    proc = _cli(tmp_path, "ingest", "files", "pumps.csv")
    assert proc.returncode == 0, proc.stderr
    proc = _cli(tmp_path, "etl", "run", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["rows_in"] == rows and result["loaded"] == rows  # clean data: all loaded
    for step in (("features", "apply"), ("features", "materialize")):
        proc = _cli(tmp_path, *step)
        assert proc.returncode == 0, (step, proc.stderr)
    proc = _cli(tmp_path, "features", "get", "P1", "P9")
    assert proc.returncode == 0, proc.stderr
    assert "online features (1 unknown)" in proc.stdout and "flow_mean_1h" in proc.stdout

    from mlops_kit import load_settings
    from mlops_kit.demo.model import promote, train_and_export

    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("MLOPS_KIT_")]:
        monkeypatch.delenv(key)
    settings = load_settings()
    assert settings.dataset == "specs/pumps.yaml"
    trained = train_and_export(settings, epochs=8)
    assert trained["training_set"]["dataset"]["name"] == "pumps"
    decision = promote(settings, trained)
    assert decision["champion"]["accepted"], decision["challenger"]
    assert decision["champion"]["model"] == "pump-leak"
