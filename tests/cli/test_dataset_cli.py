"""``mlops-kit dataset``: list, validate, show and init from a sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml

from mlops_kit.data.spec import load_spec

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_KIT_")}
    return subprocess.run(
        [sys.executable, "-m", "mlops_kit.cli.main", "dataset", *args],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        cwd=cwd,
    )


def test_list_and_validate_the_bundled_specs() -> None:
    proc = _run("list")
    assert proc.returncode == 0, proc.stderr
    assert "iot_readings" in proc.stdout and "machine_telemetry" in proc.stdout
    proc = _run("validate", str(REPO / "examples" / "datasets" / "machine_telemetry.yaml"))
    assert proc.returncode == 0, proc.stderr
    digest = load_spec("machine_telemetry").digest()[:12]
    assert f"ok: machine_telemetry v1 ({digest}), 6 columns, 2 views, 35 features" in proc.stdout


def test_validate_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "examples" / "datasets" / "machine_telemetry.yaml").read_text())
    raw["columns"]["current"]["min"] = 90
    raw["aggregations"]["stats"]["line"] = ["mean"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    proc = _run("validate", str(bad))
    assert proc.returncode == 2
    assert "DATASET_SPEC_INVALID" in proc.stderr
    assert "columns.current: min (90) is greater than max (80); swap them" in proc.stderr
    assert "aggregations.stats.line: 'line' is a category column" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_show_json_has_the_derived_features() -> None:
    proc = _run("show", "iot_readings", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["lineage"]["name"] == "iot_readings"
    assert data["features"]["device_hourly:temperature_mean_1h"] == "Float64"
    assert "device_derived" in data["services"]["2"]


def test_show_defaults_to_the_settings_dataset(tmp_path: Path) -> None:
    (tmp_path / "mlops_kit.yaml").write_text("dataset: machine_telemetry\n")
    proc = _run("show", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "machine_telemetry v1" in proc.stdout and "torque_per_amp_2h" in proc.stdout


def _sample(n: int = 200) -> pa.Table:
    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    return pa.table(
        {
            "pump_id": [f"P{i % 7}" for i in range(n)],
            "read_at": [t0 + timedelta(minutes=5 * i) for i in range(n)],
            "flow": [10.0 + (i % 13) * 0.5 for i in range(n)],
            "pressure": [None if i % 17 == 0 else 100.0 + i % 5 for i in range(n)],
            "starts": [i % 4 for i in range(n)],
            "site": [["north", "south"][i % 2] for i in range(n)],
            "leak": [int(i % 50 == 0) for i in range(n)],
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_init_proposes_a_valid_spec_from_a_sample(tmp_path: Path, suffix: str) -> None:
    sample = tmp_path / f"pumps{suffix}"
    if suffix == ".csv":
        pacsv.write_csv(_sample(), sample)
    else:
        pq.write_table(_sample(), sample)
    out = tmp_path / "pumps.yaml"
    proc = _run("init", str(sample), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    spec = load_spec(out)
    assert spec.name == "pumps"
    assert (spec.entity.join_key, spec.entity.name, spec.event_time.column) == (
        "pump_id",
        "pump",
        "read_at",
    )
    assert spec.columns["flow"].type == "float" and not spec.columns["flow"].nullable
    assert (spec.columns["flow"].min, spec.columns["flow"].max) == (10.0, 16.0)
    assert spec.columns["pressure"].nullable
    assert spec.columns["starts"].type == "int"
    assert spec.columns["site"].type == "category"
    assert spec.columns["site"].values == ["north", "south"]
    assert spec.label_columns == ["leak"]
    assert set(spec.aggregations.stats) == {"flow", "pressure", "starts"}
    # a second init does not overwrite without --force
    again = _run("init", str(sample), "--out", str(out))
    assert again.returncode == 2 and "pass --force" in again.stderr
    assert _run("init", str(sample), "--out", str(out), "--force").returncode == 0


def test_init_refuses_a_sample_without_time(tmp_path: Path) -> None:
    sample = tmp_path / "x.csv"
    sample.write_text("id,value\na,1\nb,2\n")
    proc = _run("init", str(sample))
    assert proc.returncode == 2
    assert "no event-time column found" in proc.stderr
