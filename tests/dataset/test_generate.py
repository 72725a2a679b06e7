"""The spec-driven generator: clean records that honour the spec, raw records with exact
ground truth (every bad kind, its reason, the accounting identity), for every bundled
spec and for a spec with every column type."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml

from mlops_kit.data.expressions import Expression
from mlops_kit.data.generate import (
    BAD_KINDS,
    REASONS,
    RawBatch,
    SpecGeneratorConfig,
    applicable_kinds,
    clean_id,
    entity_ids,
    generate,
    known_ids,
    reasons,
    to_raw,
)
from mlops_kit.data.spec import DatasetSpec, bundled_specs, duration_s, load_spec, spec_from_dict
from mlops_kit.errors import ConfigError

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
CONFIG = SpecGeneratorConfig(n_entities=20, steps=288, start=START, null_rate=0.05, seed=3)
SPECS = bundled_specs()
_EPOCH_FORMATS = ((1e11, "epoch_s", 10**6), (1e14, "epoch_ms", 10**3), (1e17, "epoch_us", 1))


@cache
def _table(name: str) -> pa.Table:
    return generate(load_spec(name), CONFIG)


@cache
def _raw(name: str) -> RawBatch:
    spec = load_spec(name)
    return to_raw(spec, _table(name), bad_rate=0.12, seed=5, unit_rate=0.3, dirty_id_rate=0.1)


def _every_type() -> DatasetSpec:
    """machine_telemetry plus text with a pattern, bool, timestamp and listed values."""
    text = (resources.files("mlops_kit.data") / "datasets" / "machine_telemetry.yaml").read_text()
    data = yaml.safe_load(text)
    data["entity"].update(
        clean="strip_lower", known_ids={"source": "values", "values": list("pqrs")}
    )
    data["event_time"]["formats"] = ["iso8601", "epoch_ns"]
    data["columns"].update(
        site={"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$", "nullable": False},
        note={"type": "string"},
        running={"type": "bool"},
        serviced_at={"type": "timestamp"},
        mode={"type": "int", "values": [1, 2, 5], "nullable": False},
        offset={"type": "float", "max": 5.0},
        level={"type": "int", "min": 3},
        fault={"type": "bool"},
    )
    return spec_from_dict(data, "every_type")


def _time(value: Any) -> tuple[datetime, str]:
    """An event time as sent, parsed, and the format it is in."""
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        assert parsed.utcoffset() is not None, f"{value!r} has no offset"
        return parsed.astimezone(timezone.utc), "iso8601"
    assert isinstance(value, int) and not isinstance(value, bool)
    for limit, fmt, scale in _EPOCH_FORMATS:
        if abs(value) < limit:
            return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(
                microseconds=value * scale
            ), fmt
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=value // 1000), (
        "epoch_ns"
    )


def _valid(spec: DatasetSpec, name: str, value: Any) -> bool:
    col = spec.columns[name]
    if value is None:
        return col.nullable
    if col.type in ("float", "int"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if col.type == "int" and not float(value).is_integer():
            return False
        inside = (col.min is None or value >= col.min) and (col.max is None or value <= col.max)
        return inside and (col.values is None or value in col.values)
    if col.type == "bool":
        return isinstance(value, bool)
    if col.type == "timestamp":
        try:
            return datetime.fromisoformat(value).utcoffset() is not None
        except (TypeError, ValueError):
            return False
    ok = isinstance(value, str) and (col.values is None or value in map(str, col.values))
    return ok and (col.pattern is None or re.search(col.pattern, value) is not None)


def _key(spec: DatasetSpec, rec: dict[str, Any]) -> tuple[str, datetime]:
    return clean_id(spec, rec[spec.entity.join_key]), _time(rec[spec.event_time.column])[0]


# ---------------------------------------------------------------- clean records
@pytest.mark.parametrize("name", SPECS)
def test_clean_records_honour_the_spec(name: str) -> None:
    spec, table = load_spec(name), _table(name)
    assert table.schema == spec.arrow_schema()
    assert table.num_rows == CONFIG.n_entities * CONFIG.steps
    key, ts = spec.entity.join_key, spec.event_time.column
    ids = table[key].to_pylist()
    assert set(ids) == set(entity_ids(spec, CONFIG.n_entities))
    assert all(clean_id(spec, i) == i for i in ids)
    times = table[ts].to_pylist()
    assert times == sorted(times)
    offsets = (pc.subtract(table[ts], pa.scalar(START, table[ts].type))).to_pylist()
    seconds = np.array([o.total_seconds() for o in offsets])
    assert (seconds % CONFIG.freq_s <= CONFIG.freq_s // 10).all()
    assert seconds.max() < CONFIG.steps * CONFIG.freq_s
    per_entity = pl.from_arrow(table.select([key, ts])).group_by(key).agg(pl.col(ts).n_unique())
    assert per_entity[ts].to_list() == [CONFIG.steps] * CONFIG.n_entities
    for col_name in spec.columns:
        values = table[col_name].drop_null().to_pylist()
        assert values, col_name
        assert all(_valid(spec, col_name, _json(v)) for v in values), col_name


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@pytest.mark.parametrize("name", SPECS)
def test_nulls_only_in_nullable_columns(name: str) -> None:
    spec, table = load_spec(name), _table(name)
    assert table[spec.entity.join_key].null_count == table[spec.event_time.column].null_count == 0
    for col_name, col in spec.columns.items():
        nulls = table[col_name].null_count
        if not col.nullable or col_name in spec.label_columns:
            assert nulls == 0, col_name
        else:
            assert 0.02 * table.num_rows < nulls < 0.08 * table.num_rows, col_name


@pytest.mark.parametrize("name", SPECS)
def test_the_same_seed_gives_the_same_data(name: str) -> None:
    spec = load_spec(name)
    assert generate(spec, CONFIG).equals(_table(name))
    other = generate(spec, SpecGeneratorConfig(n_entities=20, steps=288, start=START, seed=4))
    assert not other.equals(_table(name))
    again = to_raw(spec, _table(name), bad_rate=0.12, seed=5, unit_rate=0.3, dirty_id_rate=0.1)
    assert again.to_bytes() == _raw(name).to_bytes()
    assert to_raw(spec, _table(name), bad_rate=0.12, seed=6).to_bytes() != again.to_bytes()


@pytest.mark.parametrize("name", SPECS)
def test_labels_have_both_classes_and_a_feature_predicts_them(name: str) -> None:
    spec, table = load_spec(name), _table(name)
    key, ts = spec.entity.join_key, spec.event_time.column
    grain = f"{duration_s(spec.aggregations.grain)}s"
    for label in spec.label_columns:
        y = np.asarray(table[label].to_numpy(zero_copy_only=False), dtype=float)
        assert set(np.unique(y)) == {0.0, 1.0}
        assert abs(y.mean() - CONFIG.positive_rate) < 0.02
        frame = pl.from_arrow(table).with_columns(pl.col(ts).dt.truncate(grain).alias("_bucket"))
        best = 0.0
        for col in spec.aggregated:
            buckets = frame.group_by([key, "_bucket"]).agg(
                pl.col(col).mean().alias("x"), pl.col(label).cast(pl.Float64).max().alias("y")
            )
            auc = _auc(buckets["x"].to_numpy(), buckets["y"].to_numpy())
            best = max(best, auc, 1 - auc)
        assert best > 0.75, f"no aggregated column predicts {label} (best ROC-AUC {best:.2f})"


def _auc(x: np.ndarray, y: np.ndarray) -> float:
    ok = ~np.isnan(x)
    x, y = x[ok], y[ok]
    ranks = np.argsort(np.argsort(x)) + 1.0
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@pytest.mark.parametrize("name", SPECS)
def test_known_ids_are_the_generated_entities(name: str) -> None:
    spec = load_spec(name)
    registry = known_ids(spec, CONFIG.n_entities)
    assert registry.column_names == [spec.entity.join_key]
    assert sorted(registry[spec.entity.join_key].to_pylist()) == sorted(
        set(_table(name)[spec.entity.join_key].to_pylist())
    )


# ---------------------------------------------------------------- raw records
@pytest.mark.parametrize("name", SPECS)
def test_unit_conversions_round_trip(name: str) -> None:
    spec, table = load_spec(name), _table(name)
    raw = to_raw(spec, table, seed=2, unit_rate=0.5)
    rows = table.to_pylist()
    with_units = {n: c.units for n, c in spec.columns.items() if c.units is not None}
    assert with_units
    for col_name, units in with_units.items():
        converted = 0
        for rec, src in zip(raw.records, raw.sources, strict=True):
            unit = rec.get(units.column)
            canonical = rows[src][col_name]
            if unit is None:
                assert rec[col_name] == canonical
                continue
            converted += 1
            assert unit in units.conversions and unit != spec.columns[col_name].unit
            back = Expression.parse(units.conversions[unit]).value({"x": rec[col_name]})
            assert back == pytest.approx(canonical, rel=1e-9, abs=1e-9)
            assert rec[col_name] != pytest.approx(canonical, rel=1e-6)
        values = table[col_name].drop_null()
        assert 0.4 * len(values) < converted < 0.6 * len(values)


@pytest.mark.parametrize("name", SPECS)
def test_injected_counts_add_up(name: str) -> None:
    table, raw = _table(name), _raw(name)
    for fmt in ("jsonl", "csv"):
        quarantined = sum(raw.expected_quarantine(fmt).values())
        assert len(raw.records) == raw.clean_rows + quarantined + raw.duplicates_dropped
    assert sum(raw.injected.values()) == len(raw.records) - raw.clean_rows
    assert raw.duplicates_dropped == raw.injected["exact_duplicate"] > 0
    # each table row gives one record; a duplicate kind adds its copy after the original
    assert sorted(set(raw.sources)) == list(range(table.num_rows))
    copies = raw.injected["exact_duplicate"] + raw.injected["duplicate_key"]
    assert len(raw.records) == table.num_rows + copies
    assert len(raw.kept) == raw.clean_rows == len(set(raw.kept))
    assert raw.to_bytes().decode().count("\n") == len(raw.lines) == len(raw.records)
    rows = list(csv.reader(io.StringIO(raw.to_csv_bytes().decode())))
    assert rows[0] == raw.fields and len(rows) == len(raw.records) + 1
    ragged = [i for i, row in enumerate(rows[1:]) if len(row) != len(raw.fields)]
    assert ragged == sorted(raw.malformed)


@pytest.mark.parametrize("name", SPECS)
def test_every_bad_kind_appears_with_the_etl_reason(name: str) -> None:
    spec, raw = load_spec(name), _raw(name)
    kinds = applicable_kinds(spec)
    assert set(raw.injected) == set(kinds)
    assert min(raw.injected.values()) > 20
    has_units = any(c.units for c in spec.columns.values())
    has_values = any(c.values for c in spec.columns.values())
    assert ("unknown_unit" in kinds) == has_units
    assert ("unknown_category" in kinds) == has_values
    assert ("unknown_entity" in kinds) == (spec.entity.known_ids.source != "none")
    expected = raw.expected_quarantine()
    assert set(expected) == {REASONS[k] for k in kinds} - {None}
    assert expected["null"] == raw.injected["missing_required"]
    csv_reasons = raw.expected_quarantine("csv")
    assert csv_reasons["ragged_row"] == expected["malformed_json"] == raw.injected["malformed_json"]
    assert "malformed_json" not in csv_reasons


@pytest.mark.parametrize("name", SPECS)
def test_each_record_has_exactly_the_defect_of_its_kind(name: str) -> None:
    spec, table, raw = load_spec(name), _table(name), _raw(name)
    _check_defects(spec, table, raw)


def _problems(spec: DatasetSpec, rec: dict[str, Any]) -> set[str]:
    """The fields of a raw record the spec refuses (values read in their unit)."""
    key, ts = spec.entity.join_key, spec.event_time.column
    out = {f for f in (key, ts) if not isinstance(rec.get(f), str | int)}
    if ts not in out:
        try:
            _time(rec[ts])
        except (ValueError, AssertionError):
            out.add(ts)
    for name, col in spec.columns.items():
        value = rec.get(name)
        units = col.units
        if units is not None and rec.get(units.column) is not None:
            if rec[units.column] not in units.conversions:
                out.add(units.column)
                continue
            if isinstance(value, float):
                value = Expression.parse(units.conversions[rec[units.column]]).value({"x": value})
        if name not in rec or not _valid(spec, name, value):
            out.add(name)
    return out


def _check_defects(spec: DatasetSpec, table: pa.Table, raw: RawBatch) -> None:
    key, ts = spec.entity.join_key, spec.event_time.column
    first, last = pc.min(table[ts]).as_py(), pc.max(table[ts]).as_py()
    known = set(entity_ids(spec, 10**6))
    lines = raw.lines
    for i, (rec, kind) in enumerate(zip(raw.records, raw.kinds, strict=True)):
        if kind == "malformed_json":
            with pytest.raises(ValueError):
                json.loads(lines[i])
            continue
        assert json.loads(lines[i]) == rec
        bad = _problems(spec, rec)
        if kind == "exact_duplicate":
            assert rec == raw.records[i - 1] and raw.kinds[i - 1] is None
        elif kind == "duplicate_key":
            before = raw.records[i - 1]
            assert _key(spec, rec) == _key(spec, before) and raw.kinds[i - 1] is None
            assert any(rec.get(c) != before.get(c) for c in spec.columns)
            assert not bad, (i, bad, rec)
        elif kind is None:
            assert not bad, (i, bad, rec)
            assert clean_id(spec, rec[key]) in known and first <= _key(spec, rec)[1] <= last
        elif kind == "missing_required":
            (missing,) = bad
            assert missing not in rec
            assert missing in (key, ts) or not spec.columns[missing].nullable
        elif kind == "unknown_unit":
            (unit_field,) = bad
            assert unit_field not in spec.columns and unit_field != ts
        elif kind == "invalid_timestamp":
            (field,) = bad
            assert field == ts or spec.columns[field].type == "timestamp"
        elif kind in ("out_of_range", "wrong_type", "unknown_category", "pattern_mismatch"):
            (field,) = bad
            assert field in spec.columns and rec[field] is not None
        elif kind == "unknown_entity":
            assert not bad and clean_id(spec, rec[key]) not in known
        elif kind == "future_timestamp":
            assert not bad and _key(spec, rec)[1] > last + timedelta(days=365)
        elif kind == "stale_timestamp":
            age = timedelta(days=spec.event_time.max_age_days)
            assert not bad and _key(spec, rec)[1] < first - age
        else:
            raise AssertionError(f"unchecked kind {kind}")


@pytest.mark.parametrize("name", SPECS)
def test_event_times_and_ids_arrive_as_the_spec_accepts(name: str) -> None:
    spec, table = load_spec(name), _table(name)
    raw = to_raw(spec, table, seed=9, dirty_id_rate=0.3)
    rows = table.to_pylist()
    key, ts = spec.entity.join_key, spec.event_time.column
    formats, dirty = set(), 0
    for rec, src in zip(raw.records, raw.sources, strict=True):
        when, fmt = _time(rec[ts])
        formats.add(fmt)
        assert when == rows[src][ts]
        assert clean_id(spec, rec[key]) == rows[src][key]
        dirty += rec[key] != rows[src][key]
    assert formats == set(spec.event_time.formats)
    if spec.entity.clean != "none":
        assert 0.2 * len(rows) < dirty < 0.4 * len(rows)


# ---------------------------------------------------------------- any spec
def test_a_spec_with_every_column_type() -> None:
    spec = _every_type()
    table = generate(spec, SpecGeneratorConfig(n_entities=10, steps=400, start=START))
    assert table.schema == spec.arrow_schema()
    assert sorted(set(table["machine_id"].to_pylist())) == ["p", "q", "r", "s"]
    for col_name in spec.columns:
        values = table[col_name].drop_null().to_pylist()
        assert values and all(_valid(spec, col_name, _json(v)) for v in values), col_name
    assert set(table["fault"].to_pylist()) == {True, False}
    raw = to_raw(spec, table, bad_rate=0.2, seed=1, unit_rate=0.3, dirty_id_rate=0.2)
    assert set(raw.injected) == set(BAD_KINDS) == set(applicable_kinds(spec))
    _check_defects(spec, table, raw)
    assert reasons(spec)["unknown_entity"] == "unaccepted_value"
    by_reason = raw.expected_quarantine()
    assert by_reason["pattern_mismatch"] == raw.injected["pattern_mismatch"]
    assert by_reason["unaccepted_value"] == sum(
        raw.injected[k] for k in ("unknown_unit", "unknown_category", "unknown_entity")
    )
    assert "unknown_entity" not in by_reason


def test_a_pattern_the_generator_cannot_satisfy_is_refused_by_column() -> None:
    data = load_spec("machine_telemetry").model_dump(mode="json")
    data["columns"]["badge"] = {"type": "string", "pattern": "^[xyz]{5}$"}
    spec = spec_from_dict(data, "badge")
    with pytest.raises(ConfigError, match=r"columns\.badge: cannot generate text matching"):
        generate(spec, SpecGeneratorConfig(n_entities=2, steps=3))


def test_kinds_a_spec_has_no_field_for_are_refused() -> None:
    spec = load_spec("machine_telemetry")
    table = generate(spec, SpecGeneratorConfig(n_entities=2, steps=10))
    with pytest.raises(ConfigError, match="unknown_entity"):
        to_raw(spec, table, bad_rate=0.5, kinds=["unknown_entity"])
    with pytest.raises(ConfigError, match="no_such_kind"):
        to_raw(spec, table, bad_rate=0.5, kinds=["no_such_kind"])
    only = to_raw(spec, table, bad_rate=0.5, kinds=["wrong_type"], seed=1)
    assert set(only.injected) == {"wrong_type"}


@pytest.mark.parametrize(
    "change",
    [{"start": datetime(2026, 1, 1)}, {"positive_rate": 0.0}, {"steps": 0}, {"null_rate": 1.0}],
)
def test_a_bad_config_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="invalid generator config"):
        SpecGeneratorConfig(**change)
