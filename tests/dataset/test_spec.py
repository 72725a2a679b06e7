"""The dataset spec: both bundled specs load, and every inconsistency is named with its fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit.data.expressions import Expression, ExpressionError
from mlops_kit.data.spec import (
    DatasetSpecError,
    bundled_specs,
    default_spec,
    duration_s,
    load_spec,
    spec_from_dict,
)
from mlops_kit.features.catalog import catalog_for

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "datasets"


def _raw(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())


def test_bundled_specs_are_the_examples() -> None:
    assert bundled_specs() == ["iot_readings", "machine_telemetry"]
    for name in bundled_specs():
        assert load_spec(EXAMPLES / f"{name}.yaml") == load_spec(name)


SENSORS = ["temperature", "vibration", "pressure", "humidity", "rpm", "voltage"]


def test_the_iot_spec_gives_the_published_feature_catalogue() -> None:
    """The names models and online clients of the IoT dataset depend on, written out."""
    cat = catalog_for(default_spec())
    assert (cat.entity, cat.join_key, cat.source_table) == (
        "device",
        "device_id",
        "device_features_hourly",
    )
    for view, w, ttl in (("device_hourly", "1h", 7200), ("device_daily", "24h", 93600)):
        want = [f"readings_{w}"]
        want += [f"{s}_{stat}_{w}" for s in SENSORS for stat in ("mean", "std", "max")]
        want += [f"{s}_count_{w}" for s in SENSORS]
        assert list(cat.views[view].features) == want
        assert cat.views[view].ttl_s == ttl
    assert cat.derived_view == "device_derived"
    assert list(cat.derived) == [
        "temperature_delta_1h_24h",
        "vibration_delta_1h_24h",
        "temperature_zscore_1h",
        "voltage_range_24h",
    ]
    assert cat.service_name(2) == "device_failure_v2"
    assert len(cat.service_features(1)) == 19 + 19 + 4
    assert len(cat.service_features(2)) == 25 + 25 + 4


def test_the_iot_expressions_compute_the_on_demand_features() -> None:
    inputs: dict[str, list[float | None]] = {
        "temperature_mean_1h": [30.0, None, 21.0],
        "temperature_mean_24h": [20.0, 1.0, 21.0],
        "temperature_std_24h": [5.0, 2.0, 0.0],
        "vibration_mean_1h": [3.0, 2.0, 1.0],
        "vibration_mean_24h": [1.0, None, 1.0],
        "voltage_max_24h": [240.0, 230.0, 231.0],
        "voltage_mean_24h": [230.0, 230.0, 229.5],
    }
    got = catalog_for(default_spec()).derive(inputs)
    assert got == {
        "temperature_delta_1h_24h": [10.0, None, 0.0],
        "vibration_delta_1h_24h": [2.0, None, 0.0],
        "temperature_zscore_1h": [2.0, None, None],
        "voltage_range_24h": [10.0, 0.0, 1.5],
    }


def test_the_second_dataset_differs_in_every_dimension() -> None:
    a, b = default_spec(), load_spec("machine_telemetry")
    assert a.entity.join_key != b.entity.join_key and a.event_time.column != b.event_time.column
    assert {c.type for c in b.columns.values()} >= {"category", "int", "float"}
    assert a.label_columns != b.label_columns
    assert set(a.aggregations.windows) != set(b.aggregations.windows)
    assert b.columns["torque"].units is not None
    assert a.digest() != b.digest()


def test_digest_follows_content() -> None:
    raw = _raw("machine_telemetry")
    same = spec_from_dict(copy.deepcopy(raw))
    assert same.digest() == load_spec("machine_telemetry").digest()
    raw["columns"]["current"]["max"] = 81
    assert spec_from_dict(raw).digest() != same.digest()


def _edit(path: str, value: Any, base: str = "machine_telemetry") -> dict[str, Any]:
    raw = _raw(base)
    *parents, last = path.split(".")
    node = raw
    for p in parents:
        node = node[int(p)] if isinstance(node, list) or p.isdigit() else node[p]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return raw


_DELETE = object()

BAD = [
    # (edit path, new value, expected text in one problem)
    ("aggregations.stats.torq", ["mean"], "aggregations.stats.torq: no column 'torq'"),
    ("aggregations.stats.line", ["mean"], "'line' is a category column; statistics need"),
    ("columns.current.min", 90, "columns.current: min (90) is greater than max (80); swap"),
    ("columns.line.min", 1, "columns.line: min/max need a float or int column"),
    ("columns.event_timestamp", {"type": "float"}, "'event_timestamp' is reserved"),
    ("columns.machine_id", {"type": "string"}, "is the join key or the event time"),
    ("aggregations.stats.fault", ["mean"], "'fault' is also aggregated as a feature"),
    (
        "aggregations.stats.cycle_count",
        ["count"],
        "the feature 'cycle_count_count_2h' is produced twice",
    ),
    ("derived_view", "machine_recent", "derived_view: 'machine_recent' collides"),
    ("views.1.name", "machine_recent", "views: two views have the same name"),
    ("views.0.window", "1h", "views[0].window: no window '1h'"),
    ("views.0.ttl", "soon", "is not a duration"),
    ("aggregations.windows.45m", "45m", "45m is not a multiple of the grain 30m"),
    ("derived.bad", "__import__('os').system('true')", "only abs, max, min may be called"),
    ("derived.bad2", "torque_mean_3h * 2", "torque_mean_3h is not a feature of any view"),
    (
        "derived.torque_max_2h",
        "torque_mean_2h",
        "derived.torque_max_2h: 'torque_max_2h' is already",
    ),
    ("columns.torque.units.conversions.kgf", "y * 9.8", "may only read x"),
    ("columns.line.values", _DELETE, "a category column lists its values"),
    ("columns.line.pattern", "([A-Z", "columns.line.pattern: not a regular expression"),
    ("labels.0.column", "faults", "labels[0].column: no column 'faults'"),
    (
        "service.versions.1.views",
        ["machine_week"],
        "service.versions.1.views: no view 'machine_week'",
    ),
    ("entity.colour", "red", "entity.colour: unknown field"),
    ("entity.known_ids", {"source": "values", "values": [" m1"]}, "' m1' is not clean"),
    ("entity.known_ids", {"source": "values"}, "list the known ids"),
    ("entity.known_ids", {"values": ["M1"]}, "values need source: values"),
    ("derived_view", "machine-derived", "derived_view: 'machine-derived' is not a name"),
    ("columns.current.type", "decimal", "columns.current.type"),
]


@pytest.mark.parametrize(("path", "value", "expected"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_spec_names_the_field_and_the_fix(path: str, value: Any, expected: str) -> None:
    with pytest.raises(DatasetSpecError) as err:
        spec_from_dict(_edit(path, value), "telemetry.yaml")
    assert any(expected in p for p in err.value.problems), err.value.problems
    assert str(err.value).startswith("invalid dataset spec telemetry.yaml:")
    assert err.value.code == "DATASET_SPEC_INVALID"


def test_every_problem_is_listed_at_once() -> None:
    raw = _edit("columns.current.min", 90)
    raw["aggregations"]["stats"]["line"] = ["mean"]
    with pytest.raises(DatasetSpecError) as err:
        spec_from_dict(raw)
    assert len(err.value.problems) == 2


def test_files_that_cannot_be_specs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nentity: [\n")
    with pytest.raises(DatasetSpecError, match="line 3: not valid YAML"):
        load_spec(bad)
    with pytest.raises(DatasetSpecError, match="no such file"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(DatasetSpecError, match="no file and no bundled spec 'iot'"):
        load_spec("iot")
    bad.write_text("- a list\n")
    with pytest.raises(DatasetSpecError, match="must be a mapping"):
        load_spec(bad)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("26h", 93600), ("7d", 604800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert duration_s(text) == seconds


@pytest.mark.parametrize("text", ["0h", "1.5h", "1w", "h", "-1h", "1 h 2"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        duration_s(text)


def test_expressions_propagate_nulls_and_guard_division() -> None:
    e = Expression.parse("abs(a - b) / max(c, 1) + min(a, 2) * -1")
    assert e.names == {"a", "b", "c"}
    assert e.evaluate({"a": [3.0, None, 1.0], "b": [1.0, 1.0, 5.0], "c": [0.5, 2.0, 4.0]}) == [
        2.0 / 1.0 - 2.0,
        None,
        4.0 / 4.0 - 1.0,
    ]
    assert Expression.parse("a / b").evaluate({"a": [1.0, 1.0], "b": [0.0, 2.0]}) == [None, 0.5]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a.b", "Attribute is not allowed"),
        ("open('x')", "only abs, max, min may be called"),
        ("a > b", "Compare is not allowed"),
        ("a ** 2", "operator Pow is not allowed"),
        ("a[0]", "Subscript is not allowed"),
        ("'text'", "only numbers"),
        ("True + a", "only numbers"),
        ("abs(a, b)", "abs takes one argument"),
        ("max(a, key=b)", "positional arguments"),
        ("lambda: 1", "Lambda is not allowed"),
        ("a +", "is not an expression"),
        ("abs", "is a function; call it"),
    ],
)
def test_unsafe_expressions_are_refused(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace("*", r"\*")):
        Expression.parse(text)


def test_a_spec_without_on_demand_features_serves_its_views_only() -> None:
    raw = _raw("machine_telemetry")
    raw.pop("derived")
    spec = spec_from_dict(raw)
    assert list(spec.service_members(1)) == ["machine_recent", "machine_shift"]
    assert not any(f.startswith("machine_derived:") for f in spec.all_features())


@pytest.mark.parametrize(
    "text",
    [
        "abs(a - b) / max(c, 1) + min(a, 2) * -1",
        "(a - 32) * 5 / 9",
        "a / b",
        "-a + b * c - 2.5",
    ],
)
def test_the_arrow_evaluator_agrees_with_the_python_one(text: str) -> None:
    import pyarrow as pa

    cols = {
        "a": [3.0, None, 1.0, 0.0, -7.5],
        "b": [1.0, 1.0, 0.0, 2.0, 3.0],
        "c": [0.5, 2.0, 4.0, None, -1.0],
    }
    expr = Expression.parse(text)
    got = expr.arrow({k: pa.array(v, pa.float64()) for k, v in cols.items()})
    assert got.to_pylist() == expr.evaluate(cols)
