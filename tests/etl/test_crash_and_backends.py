"""Crash recovery at every commit step, and the ETL on S3 (moto) and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from mlops_kit import storage
from mlops_kit.config import load_settings
from mlops_kit.data.synthetic import device_registry, to_raw_records
from mlops_kit.etl import read_table, run_etl, write_device_registry
from mlops_kit.etl.lake import manifests
from mlops_kit.etl.run import layout_of
from mlops_kit.etl.warehouse import open_warehouse
from mlops_kit.ingest.raw_zone import land

from .conftest import N_DEVICES, NOW, small_readings

FAULT_POINTS = [
    "etl.after_stage",
    "etl.after_journal",
    "etl.mid_moves",
    "etl.after_moves",
    "etl.after_warehouse",
    "etl.after_manifest",
]

_RUN = textwrap.dedent(
    """
    from datetime import datetime, timezone
    from mlops_kit.config import load_settings
    from mlops_kit.etl import run_etl
    run_etl(load_settings(), now=datetime(2026, 6, 1, tzinfo=timezone.utc))
    """
)


def _state(settings) -> tuple:
    """What a reader sees: committed rows of every table and the warehouse."""
    order = [("device_id", "ascending")]
    readings = read_table(settings, "readings")
    features = read_table(settings, "device_features_hourly").drop_columns(["created_at"])
    wh = open_warehouse(settings.warehouse.url)
    try:
        wh_rows = wh.query(
            f"SELECT device_id, event_timestamp, temperature_mean_24h FROM "
            f"{settings.warehouse.table} ORDER BY 1, 2"
        )
    except Exception:
        wh_rows = []
    lake = (
        readings.sort_by([("ts", "ascending"), *order]).to_pylist(),
        features.sort_by([("event_timestamp", "ascending"), *order]).to_pylist(),
    )
    return lake, wh_rows


def _seed(home):
    s = load_settings(home=home)
    write_device_registry(s, device_registry(N_DEVICES))
    readings = small_readings(days=3)
    day1 = readings.slice(0, readings.num_rows // 3)
    rest = readings.slice(readings.num_rows // 3)
    return (
        s,
        to_raw_records(day1, bad_rate=0.03, seed=1),
        to_raw_records(rest, bad_rate=0.03, seed=2),
    )


@pytest.fixture(scope="module")
def reference_states(tmp_path_factory):
    """The states after batch 1 and after batches 1 + 2, from an uninterrupted run."""
    home = tmp_path_factory.mktemp("ref") / "home"
    s, first, second = _seed(home)
    land(s.storage.raw_uri, "files", first.to_bytes(), "jsonl")
    run_etl(s, now=NOW)
    before = _state(s)
    land(s.storage.raw_uri, "files", second.to_bytes(), "jsonl")
    run_etl(s, now=NOW)
    return before, _state(s)


@pytest.mark.slow
@pytest.mark.parametrize("point", FAULT_POINTS)
def test_kill_mid_commit_leaves_old_or_new_state_and_next_run_completes(
    home, point, reference_states
) -> None:
    before, after = reference_states
    s, first, second = _seed(home)
    land(s.storage.raw_uri, "files", first.to_bytes(), "jsonl")
    run_etl(s, now=NOW)
    land(s.storage.raw_uri, "files", second.to_bytes(), "jsonl")
    env = {**os.environ, "MLOPS_KIT_FAULT_AT": point, "MLOPS_KIT_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-c", _RUN], env=env, capture_output=True, text=True)
    assert proc.returncode == 137, proc.stderr
    # each store shows its complete previous state or its complete new one, never a mix
    lake, warehouse = _state(s)
    assert lake in (before[0], after[0]), f"mixed processed zone after a kill at {point}"
    assert warehouse in (before[1], after[1]), f"mixed warehouse after a kill at {point}"
    if point == "etl.after_manifest":
        assert lake == after[0]
    # the next run completes the work, exactly once: a journaled commit is rolled
    # forward, an unjournaled one is discarded and redone
    result = run_etl(s, now=NOW)
    assert _state(s) == after
    assert result.status == ("committed" if point == "etl.after_stage" else "noop")
    assert len(manifests(layout_of(s))) == 2
    assert not storage.list_files(os.path.join(s.storage.state_uri, "etl", "staging"))
    assert not storage.list_files(os.path.join(s.storage.state_uri, "etl", "journal"))


@pytest.mark.aws
def test_etl_on_s3_through_moto(s3_bucket, moto_endpoint, tmp_path) -> None:
    s = load_settings(
        profile="aws",
        aws={"region": "us-east-1", "endpoint_url": moto_endpoint},
        storage={
            "raw_uri": f"s3://{s3_bucket}/raw",
            "processed_uri": f"s3://{s3_bucket}/processed",
        },
        warehouse={"url": f"duckdb:///{tmp_path / 'wh.duckdb'}"},
    )
    assert s.storage.quarantine_uri == f"s3://{s3_bucket}/quarantine"
    write_device_registry(s, device_registry(N_DEVICES))
    raw = to_raw_records(small_readings(days=1), bad_rate=0.05, seed=4)
    landed = land(s.storage.raw_uri, "kinesis-iot", raw.to_bytes(), "jsonl")
    assert landed.uri.startswith(f"s3://{s3_bucket}/raw/source=kinesis-iot/date=")
    result = run_etl(s, now=NOW)
    assert result.rows_in == result.loaded + result.quarantined + result.duplicates_dropped
    assert result.loaded == raw.clean_rows
    assert read_table(s, "readings").num_rows == raw.clean_rows
    import boto3

    keys = [
        o["Key"]
        for o in boto3.client("s3", endpoint_url=moto_endpoint)
        .list_objects_v2(Bucket=s3_bucket)
        .get("Contents", [])
    ]
    assert any(k.startswith("processed/readings/date=2026-01-01/part-") for k in keys)
    assert any(k.startswith("quarantine/date=") for k in keys)
    assert any(k.startswith("_state/etl/manifests/") for k in keys)
    # no staged or journaled object is left (pyarrow may keep empty directory markers)
    assert not any(("/staging/" in k or "/journal/" in k) and not k.endswith("/") for k in keys)
    assert run_etl(s, now=NOW).status == "noop"


@pytest.mark.postgres
def test_warehouse_on_real_postgres(home, postgres_url) -> None:
    s = load_settings(home=home, warehouse={"url": postgres_url, "table": "features_pg"})
    write_device_registry(s, device_registry(N_DEVICES))
    readings = small_readings(days=2)
    half = readings.num_rows // 2
    land(s.storage.raw_uri, "files", to_raw_records(readings.slice(0, half)).to_bytes(), "jsonl")
    first = run_etl(s, now=NOW)
    land(s.storage.raw_uri, "files", to_raw_records(readings.slice(half)).to_bytes(), "jsonl")
    second = run_etl(s, now=NOW)
    wh = open_warehouse(postgres_url)
    features = read_table(s, "device_features_hourly")
    assert wh.count("features_pg") == features.num_rows > 0
    assert set(wh.loaded_runs()) >= {first.run_id, second.run_id}
    # the upsert kept one row per key with the latest values
    got = wh.query(
        "SELECT device_id, event_timestamp, temperature_mean_24h FROM features_pg ORDER BY 1, 2"
    )
    want = sorted(
        (r["device_id"], r["event_timestamp"], r["temperature_mean_24h"])
        for r in features.to_pylist()
    )
    assert [(a, b, pytest.approx(c)) for a, b, c in got] == want
    # loading a run id again changes nothing
    assert not wh.load("features_pg", features, ["device_id", "event_timestamp"], second.run_id)
    assert wh.count("features_pg") == features.num_rows
