"""ETL: every bad-input kind, the accounting identity, idempotence, units, features."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml
from iot_fleet import BAD_KINDS, to_raw_records
from pydantic import ValidationError

from mlops_kit import storage
from mlops_kit.errors import DataQualityError, MlopsKitError
from mlops_kit.etl import RuleSet, read_table, run_etl
from mlops_kit.etl.lake import manifests
from mlops_kit.etl.run import layout_of, warehouse_table
from mlops_kit.etl.transform import aggregate
from mlops_kit.etl.warehouse import open_warehouse
from mlops_kit.ingest.files import ingest_files
from mlops_kit.ingest.raw_zone import land

from .conftest import NOW, small_readings

EXPECTED_REASON = {
    "null": "null",
    "out_of_range": "out_of_range",
    "wrong_type": "wrong_type",
    "malformed_json": "malformed_json",
    "duplicate_key": "duplicate_key",
    "future_timestamp": "future_timestamp",
    "unknown_entity": "unknown_entity",
}


def _balanced(result) -> None:
    assert result.rows_in == result.loaded + result.quarantined + result.duplicates_dropped


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_each_bad_kind_is_quarantined_with_its_reason(settings, kind: str) -> None:
    raw = to_raw_records(small_readings(days=1), bad_rate=0.1, kinds=(kind,), seed=3)
    land(settings.storage.raw_uri, "files", raw.to_bytes(), "jsonl")
    result = run_etl(settings, now=NOW)
    _balanced(result)
    injected = raw.injected[kind]
    assert injected > 0
    assert result.quarantined_by_reason == {EXPECTED_REASON[kind]: injected}
    assert result.loaded == raw.clean_rows
    quarantine = storage.read_parquet(
        [f for f in storage.list_files(settings.storage.quarantine_uri, ".parquet")]
    )
    assert quarantine.num_rows == injected
    # every rejected record is kept exactly as received, with a reason and a message
    assert set(quarantine["record"].to_pylist()) <= set(raw.lines)
    details = quarantine["detail"].to_pylist()
    if kind in ("null", "out_of_range", "wrong_type"):
        fields = quarantine["field"].to_pylist()
        assert all(f in d for f, d in zip(fields, details, strict=True))


def test_all_kinds_together_add_up_and_report_is_written(settings) -> None:
    raw = to_raw_records(small_readings(), bad_rate=0.08, seed=5)
    land(settings.storage.raw_uri, "files", raw.to_bytes(), "jsonl")
    result = run_etl(settings, now=NOW)
    _balanced(result)
    expected = {EXPECTED_REASON[k]: v for k, v in raw.injected.items()}
    assert result.quarantined_by_reason == expected
    manifest = manifests(layout_of(settings))[-1]
    assert manifest["accounting"]["rows_in"] == result.rows_in
    report = storage.read_json(result.report_json_uri)
    assert report["passed"] and report["accounting"]["quarantined"] == result.quarantined
    page = storage.read_bytes(result.report_html_uri).decode()
    assert "Data quality report" in page and "malformed_json" in page


def test_rerun_changes_nothing(settings) -> None:
    raw = to_raw_records(small_readings(), bad_rate=0.05)
    land(settings.storage.raw_uri, "files", raw.to_bytes(), "jsonl")
    first = run_etl(settings, now=NOW)
    tree = {
        u: storage.read_bytes(u)
        for u in storage.list_files(str(settings.home))
        if not u.endswith(".duckdb") and not u.endswith(".wal")
    }
    wh = open_warehouse(settings.warehouse.url)
    rows_before = wh.query(f"SELECT * FROM {warehouse_table(settings)} ORDER BY 1, 2")
    # landing the same bytes again is a no-op, and so is the ETL
    again = land(settings.storage.raw_uri, "files", raw.to_bytes(), "jsonl")
    assert not again.created
    second = run_etl(settings, now=NOW + timedelta(hours=1))
    assert first.status == "committed" and second.status == "noop"
    after = {
        u: storage.read_bytes(u)
        for u in storage.list_files(str(settings.home))
        if not u.endswith(".duckdb") and not u.endswith(".wal")
    }
    assert after == tree
    assert wh.query(f"SELECT * FROM {warehouse_table(settings)} ORDER BY 1, 2") == rows_before


def test_duplicates_across_runs(settings) -> None:
    readings = small_readings(days=1)
    land(settings.storage.raw_uri, "files", to_raw_records(readings).to_bytes(), "jsonl")
    run_etl(settings, now=NOW)
    # a later file repeats 50 records exactly and changes 20 others
    repeat = readings.slice(0, 50)
    changed = readings.slice(100, 20)
    changed = changed.set_column(2, "temperature", pc.add(changed["temperature"], 1.0))
    later = to_raw_records(pa.concat_tables([repeat, changed]))
    land(settings.storage.raw_uri, "api-x", later.to_bytes(), "jsonl")
    settings.quality.max_quarantine_rate = 1.0
    result = run_etl(settings, now=NOW)
    _balanced(result)
    assert result.duplicates_dropped == 50
    assert result.quarantined_by_reason == {"duplicate_key": 20}
    assert result.loaded == 0
    assert read_table(settings, "readings").num_rows == readings.num_rows


def test_fahrenheit_is_normalised(settings) -> None:
    readings = small_readings(days=1)
    raw = to_raw_records(readings, fahrenheit_share=0.5, seed=9)
    assert sum('"temperature_unit": "F"' in line for line in raw.lines) > 50
    land(settings.storage.raw_uri, "files", raw.to_bytes(), "jsonl")
    run_etl(settings, now=NOW)
    loaded = read_table(settings, "readings").sort_by(
        [("ts", "ascending"), ("device_id", "ascending")]
    )
    expected = readings.sort_by([("ts", "ascending"), ("device_id", "ascending")])
    diff = pc.max(pc.abs(pc.subtract(loaded["temperature"], expected["temperature"]))).as_py()
    assert diff < 1e-3


def test_unknown_unit_is_rejected(settings) -> None:
    lines = [
        json.dumps(
            {
                "device_id": "dev-0001",
                "ts": "2026-01-01T00:00:00Z",
                "temperature": 300.0,
                "temperature_unit": "R",
                "vibration": 3.0,
                "pressure": 100.0,
                "humidity": 40.0,
                "rpm": 1500.0,
                "voltage": 230.0,
                "failure": 0,
            }
        )
    ]
    land(settings.storage.raw_uri, "files", ("\n".join(lines) + "\n").encode(), "jsonl")
    settings.quality.max_quarantine_rate = 1.0
    result = run_etl(settings, now=NOW)
    assert result.quarantined_by_reason == {"unaccepted_value": 1}


def test_quality_gate_fails_and_loads_nothing(settings) -> None:
    raw = to_raw_records(small_readings(days=1), bad_rate=0.5, seed=1)
    land(settings.storage.raw_uri, "files", raw.to_bytes(), "jsonl")
    with pytest.raises(DataQualityError) as err:
        run_etl(settings, now=NOW)
    msg = str(err.value)
    assert "above the threshold of 20.0%" in msg and "max_quarantine_rate" in msg
    assert err.value.code == "DATA_QUALITY_FAILED"
    assert read_table(settings, "readings").num_rows == 0
    assert manifests(layout_of(settings)) == []
    report = storage.read_json(err.value.details["report_uri"])
    assert not report["passed"]
    # raising the threshold lets the same raw data through, accounted in full
    settings.quality.max_quarantine_rate = 0.6
    result = run_etl(settings, now=NOW)
    _balanced(result)
    assert result.loaded == raw.clean_rows


def test_csv_and_parquet_sources(settings, tmp_path) -> None:
    readings = small_readings(days=1)
    csv_path = tmp_path / "batch.csv"
    rows = readings.slice(0, 40).to_pylist()
    header = "device_id,ts,temperature,vibration,pressure,humidity,rpm,voltage,failure"
    lines = [header]
    for i, r in enumerate(rows):
        temp = "hot" if i == 3 else str(r["temperature"])
        lines.append(
            f"{r['device_id']},{r['ts'].strftime('%Y-%m-%dT%H:%M:%SZ')},{temp},{r['vibration']},"
            f"{r['pressure']},{r['humidity']},{r['rpm']},{r['voltage']},{r['failure']}"
        )
    csv_path.write_text("\n".join(lines) + "\n")
    pq_path = tmp_path / "batch.parquet"
    import pyarrow.parquet as pq

    pq.write_table(readings.slice(40, 60), pq_path)
    landed = ingest_files([str(csv_path), str(pq_path)], settings.storage.raw_uri)
    assert [o.format for o in landed] == ["csv", "parquet"]
    result = run_etl(settings, now=NOW)
    _balanced(result)
    assert result.rows_in == 100
    assert result.quarantined_by_reason == {"wrong_type": 1}
    assert result.loaded == 99


def test_incremental_features_match_a_single_run(settings, home, tmp_path) -> None:
    readings = small_readings(days=3)
    cut = pa.scalar(datetime(2026, 1, 2, 12, tzinfo=timezone.utc), readings["ts"].type)
    first = readings.filter(pc.less(readings["ts"], cut))
    second = readings.filter(pc.greater_equal(readings["ts"], cut))
    land(settings.storage.raw_uri, "files", to_raw_records(first).to_bytes(), "jsonl")
    run_etl(settings, now=NOW)
    land(settings.storage.raw_uri, "files", to_raw_records(second).to_bytes(), "jsonl")
    run_etl(settings, now=NOW)
    got = read_table(settings, "device_features_hourly").drop_columns(["created_at"])
    want = aggregate(readings, created_at=NOW).drop_columns(["created_at"])
    order = [("device_id", "ascending"), ("event_timestamp", "ascending")]
    got, want = got.sort_by(order), want.sort_by(order)
    assert got.num_rows == want.num_rows
    for name in want.column_names[2:]:
        a = got[name].to_numpy(zero_copy_only=False)
        b = want[name].to_numpy(zero_copy_only=False)
        assert ((abs(a - b) < 1e-6) | (a != a) & (b != b)).all(), name
    wh = open_warehouse(settings.warehouse.url)
    assert wh.count(warehouse_table(settings)) == want.num_rows


def test_features_never_look_ahead() -> None:
    readings = small_readings(days=1, n_devices=2)
    features = aggregate(readings)
    # the 1 h max at event time T only sees readings in [T - 1h, T)
    row = features.filter(pc.equal(features["device_id"], "dev-0000")).slice(5, 1).to_pylist()[0]
    end = row["event_timestamp"]
    mask = pc.and_(
        pc.equal(readings["device_id"], "dev-0000"),
        pc.and_(
            pc.greater_equal(
                readings["ts"], pa.scalar(end - timedelta(hours=1), readings["ts"].type)
            ),
            pc.less(readings["ts"], pa.scalar(end, readings["ts"].type)),
        ),
    )
    window = readings.filter(mask)
    assert row["readings_1h"] == window.num_rows
    assert row["temperature_max_1h"] == pc.max(window["temperature"]).as_py()


def test_a_window_is_as_long_as_declared_whatever_its_name() -> None:
    """A window named ``last3h`` declared as 3 h (and ``1h`` as 2 h) rolls over 3 h and
    2 h of buckets: the length, not the name, sizes it."""
    from mlops_kit.data.spec import default_spec
    from mlops_kit.etl.layout import layout_for

    spec = default_spec()
    windows = {"1h": "2h", "last3h": "3h"}
    agg = spec.aggregations.model_copy(update={"windows": windows})
    layout = layout_for(spec.model_copy(update={"aggregations": agg}))
    readings = small_readings(days=1, n_devices=2)
    features = aggregate(readings, layout)
    rows = features.filter(pc.equal(features["device_id"], "dev-0000")).to_pylist()
    for row in rows[3:8]:
        end = row["event_timestamp"]
        for name, hours in (("1h", 2), ("last3h", 3)):
            mask = pc.and_(
                pc.equal(readings["device_id"], "dev-0000"),
                pc.and_(
                    pc.greater_equal(
                        readings["ts"], pa.scalar(end - timedelta(hours=hours), readings["ts"].type)
                    ),
                    pc.less(readings["ts"], pa.scalar(end, readings["ts"].type)),
                ),
            )
            window = readings.filter(mask)
            assert row[f"readings_{name}"] == window.num_rows, (name, end)
            assert row[f"temperature_max_{name}"] == pc.max(window["temperature"]).as_py()


def test_rules_load_from_yaml_and_reject_unknown_keys() -> None:
    text = """
rules:
  - {kind: not_null, columns: [device_id]}
  - {kind: range, column: temperature, min: -40, max: 150}
"""
    rules = RuleSet.model_validate(yaml.safe_load(text))
    assert [r.kind for r in rules.rules] == ["not_null", "range"]
    with pytest.raises(ValidationError, match="kind"):
        RuleSet.model_validate({"rules": [{"kind": "regex", "column": "x"}]})
    with pytest.raises(ValidationError, match="maximum"):
        RuleSet.model_validate({"rules": [{"kind": "range", "column": "x", "maximum": 3}]})


def test_missing_device_registry_names_the_fix(home) -> None:
    from mlops_kit.config import load_settings

    s = load_settings(home=home)
    land(s.storage.raw_uri, "files", to_raw_records(small_readings(days=1)).to_bytes(), "jsonl")
    with pytest.raises(MlopsKitError, match="write_device_registry"):
        run_etl(s, now=NOW)


def test_nan_does_not_hide_an_out_of_range_value() -> None:
    from mlops_kit.etl.quality import Range, RuleSet, check

    table = pa.table({"device_id": ["a", "b", "c"], "temperature": [float("nan"), 20.0, 999.0]})
    result = check(
        table, RuleSet(rules=[Range(column="temperature", min=-40, max=150)], unique_key=[])
    )
    assert result.reasons == {"out_of_range": 1}
    assert result.valid.num_rows == 2
