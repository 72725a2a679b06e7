"""Crash recovery at every commit step, and the ETL on S3 (moto) and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from iot_fleet import device_registry, to_raw_records

from mlops_kit import storage
from mlops_kit.config import Settings, load_settings
from mlops_kit.etl import read_table, run_etl, write_device_registry
from mlops_kit.etl.lake import manifests
from mlops_kit.etl.run import layout_of, warehouse_table
from mlops_kit.etl.warehouse import RUNS_TABLE, open_warehouse
from mlops_kit.ingest.raw_zone import land
from tests.backends import BACKENDS, backend_config

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

# which store shows its new state after a kill at each point (lake, warehouse): the
# manifest is the lake's commit point, the warehouse commits one step earlier
NEW_AFTER_KILL = {
    "etl.after_stage": (False, False),
    "etl.after_journal": (False, False),
    "etl.mid_moves": (False, False),
    "etl.after_moves": (False, False),
    "etl.after_warehouse": (False, True),
    "etl.after_manifest": (True, True),
}
assert list(NEW_AFTER_KILL) == FAULT_POINTS


def _settings(cfg: dict[str, Any]) -> Settings:
    s = load_settings(**cfg)
    storage.configure_from_settings(s)
    return s


def _warehouse_table_exists(settings: Settings, table: str) -> bool:
    wh = open_warehouse(settings.warehouse.url or "")
    rows = wh.query(
        "SELECT count(*) FROM information_schema.tables "
        f"WHERE table_name = '{table}' AND table_schema = current_schema()"
    )
    return bool(rows[0][0])


def _state(settings: Settings) -> tuple:
    """What a reader sees: committed rows of every zone, and the warehouse.

    The lake part holds the processed readings and features and the quarantined records
    (their source object by name, which is content-addressed); the warehouse part holds
    the feature rows and one (table, rows) entry per loaded run, oldest first.
    """
    order = [("device_id", "ascending")]
    readings = read_table(settings, "readings")
    features = read_table(settings, "device_features_hourly").drop_columns(["created_at"])
    quarantine = read_table(settings, "quarantine")
    quarantined = sorted(
        (
            (r["_source"].rsplit("/", 1)[-1], r["_line"], r["reason"], r["field"], r["record"])
            for r in quarantine.to_pylist()
        ),
        key=repr,
    )
    lake = (
        readings.sort_by([("ts", "ascending"), *order]).to_pylist(),
        features.sort_by([("event_timestamp", "ascending"), *order]).to_pylist(),
        quarantined,
    )
    # every caller has committed a run already, so both tables must exist
    table = warehouse_table(settings)
    assert _warehouse_table_exists(settings, table), f"no warehouse table {table}"
    wh = open_warehouse(settings.warehouse.url or "")
    wh_rows = wh.query(
        f"SELECT device_id, event_timestamp, temperature_mean_24h FROM {table} ORDER BY 1, 2"
    )
    runs = wh.query(f"SELECT table_name, n_rows FROM {RUNS_TABLE} ORDER BY loaded_at, run_id")
    return lake, (wh_rows, runs)


@pytest.fixture(autouse=True)
def _s3_back_to_default() -> Iterator[None]:
    """The tests point this process's S3 at moto; leave it as the other tests expect."""
    yield
    storage.configure_s3("us-east-1", None)


@pytest.fixture(scope="module")
def raw_batches() -> tuple[bytes, bytes]:
    """Two raw objects (3 % bad records), the same bytes for every run of this module."""
    readings = small_readings(days=3)
    day1 = readings.slice(0, readings.num_rows // 3)
    rest = readings.slice(readings.num_rows // 3)
    return (
        to_raw_records(day1, bad_rate=0.03, seed=1).to_bytes(),
        to_raw_records(rest, bad_rate=0.03, seed=2).to_bytes(),
    )


def _seed(cfg: dict[str, Any], first: bytes) -> Settings:
    """A lake with the device registry and the first batch committed."""
    s = _settings(cfg)
    write_device_registry(s, device_registry(N_DEVICES))
    land(s.storage.raw_uri or "", "files", first, "jsonl", ingest_date=NOW.date())
    assert run_etl(s, now=NOW).status == "committed"
    return s


@pytest.fixture(scope="module")
def reference_states(tmp_path_factory, request, raw_batches):
    """Per backend, the states after batch 1 and after batches 1 + 2 of an uninterrupted run."""
    cache: dict[str, tuple[tuple, tuple]] = {}

    def get(backend: str) -> tuple[tuple, tuple]:
        if backend not in cache:
            root = tmp_path_factory.mktemp(f"ref-{backend}")
            s = _seed(backend_config(backend, root, request), raw_batches[0])
            before = _state(s)
            land(s.storage.raw_uri or "", "files", raw_batches[1], "jsonl", ingest_date=NOW.date())
            run_etl(s, now=NOW)
            cache[backend] = (before, _state(s))
        return cache[backend]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("point", FAULT_POINTS)
def test_kill_mid_commit_leaves_old_or_new_state_and_next_run_completes(
    home, tmp_path, request, backend, point, reference_states, raw_batches
) -> None:
    before, after = reference_states(backend)
    assert before != after
    cfg = backend_config(backend, tmp_path, request)
    s = _seed(cfg, raw_batches[0])
    assert _state(s) == before
    land(s.storage.raw_uri or "", "files", raw_batches[1], "jsonl", ingest_date=NOW.date())
    config_file = tmp_path / "mlops_kit.yaml"
    config_file.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_KIT_")}
    env.update(MLOPS_KIT_CONFIG=str(config_file), MLOPS_KIT_FAULT_AT=point)
    proc = subprocess.run([sys.executable, "-c", _RUN], env=env, capture_output=True, text=True)
    assert proc.returncode == 137, proc.stderr
    # each store shows its complete previous state or its complete new one, never a mix,
    # and which one is fixed by the step the commit reached
    lake, warehouse = _state(s)
    assert lake in (before[0], after[0]), f"mixed lake after a kill at {point}"
    assert warehouse in (before[1], after[1]), f"mixed warehouse after a kill at {point}"
    lake_new, warehouse_new = NEW_AFTER_KILL[point]
    assert lake == (after if lake_new else before)[0], f"lake after a kill at {point}"
    assert warehouse == (after if warehouse_new else before)[1], f"warehouse after {point}"
    # the next run completes the work, exactly once: a journaled commit is rolled
    # forward, an unjournaled one is discarded and redone
    result = run_etl(s, now=NOW)
    assert _state(s) == after
    assert result.status == ("committed" if point == "etl.after_stage" else "noop")
    committed = [m["run_id"] for m in manifests(layout_of(s))]
    assert len(committed) == 2
    loaded = open_warehouse(s.warehouse.url or "").query(f"SELECT run_id FROM {RUNS_TABLE}")
    assert sorted(r[0] for r in loaded) == sorted(committed)
    state = s.storage.state_uri or ""
    assert not storage.list_files(storage.join(state, "etl", "staging"))
    assert not storage.list_files(storage.join(state, "etl", "journal"))
    # and a run after that finds nothing left to do
    assert run_etl(s, now=NOW).status == "noop"
    assert _state(s) == after


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
