"""The point-in-time join (``mlops_kit.features.pit``) driven directly: the label frame, the
as-of coverage on its TTL edges, the null and aligned columns, the sub-second refusal of
the Ray engine, and whole training sets through one small Feast repo on local files
(applied once for the module): rows kept or dropped, counted, in label order, and never
joined to a feature row newer than the label.

The brute-force comparisons over random lakes, both engines and real ETL output are in
``test_historical.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from mlops_kit.config import load_settings
from mlops_kit.features.catalog import TIMESTAMP, catalog_for
from mlops_kit.features.errors import EngineUnsupportedError, FeatureStoreError
from mlops_kit.features.pit import (
    ROW_ID,
    _align,
    _feast_join,
    _labels_frame,
    _null_frame,
    _views_of,
    _whole_seconds,
    coverage,
)
from mlops_kit.features.store import FeatureClient

from .conftest import T0, feature_table, write_features

try:  # at collection: a test process that forks after it has Feast imported already
    import feast  # noqa: F401
except ImportError:  # pragma: no cover - the extra is missing; the Feast fixture skips
    pass

KEY = "device_id"
TS_UTC = pa.timestamp("us", tz="UTC")
H = timedelta(hours=1)
US = timedelta(microseconds=1)
CAT = catalog_for()


def _frame(rows: list[tuple[Any, datetime]], **extra: list[Any]) -> pl.DataFrame:
    """Label rows as :func:`_labels_frame` makes them (row ids in list order)."""
    table = pa.table(
        {
            KEY: pa.array([k for k, _ in rows], pa.string()),
            TIMESTAMP: pa.array([t for _, t in rows], TS_UTC),
            **{name: pa.array(values) for name, values in extra.items()},
        }
    )
    return _labels_frame(table, TIMESTAMP, KEY)


def _keys(rows: list[tuple[str, datetime]]) -> pl.DataFrame:
    return pl.DataFrame(
        {KEY: [k for k, _ in rows], TIMESTAMP: [t for _, t in rows]},
        schema={KEY: pl.Utf8, TIMESTAMP: pl.Datetime("us", "UTC")},
    )


# ------------------------------------------------------------------ the label frame


def test_labels_from_arrow_get_row_ids_utc_microseconds_and_string_keys() -> None:
    table = pa.table(
        {
            "y": pa.array([1, 0], pa.int8()),
            KEY: pa.array([7, 3], pa.int64()),
            TIMESTAMP: pa.array([T0 + H, T0], pa.timestamp("ns", tz="UTC")),
        }
    )
    df = _labels_frame(table, TIMESTAMP, KEY)
    assert df.schema == pl.Schema(
        {ROW_ID: pl.UInt32, "y": pl.Int8, KEY: pl.Utf8, TIMESTAMP: pl.Datetime("us", "UTC")}
    )
    assert df.rows() == [(0, 1, "7", T0 + H), (1, 0, "3", T0)]


def test_labels_from_polars_in_another_zone_keep_the_instant() -> None:
    paris = pl.Series([datetime(2026, 1, 1, 4, 0), datetime(2026, 7, 1, 4, 0)]).dt.cast_time_unit(
        "ms"
    )
    labels = pl.DataFrame({KEY: ["a", "b"], "t": paris.dt.replace_time_zone("Europe/Paris")})
    df = _labels_frame(labels, "t", KEY)
    assert df.schema[TIMESTAMP] == pl.Datetime("us", "UTC")
    # 04:00 in Paris is 03:00 UTC in winter, 02:00 UTC in summer
    assert df[TIMESTAMP].to_list() == [T0 + 3 * H, datetime(2026, 7, 1, 2, tzinfo=timezone.utc)]


def test_labels_from_pandas_without_a_zone_are_read_as_utc() -> None:
    labels = pd.DataFrame(
        {KEY: ["b", "a"], TIMESTAMP: [pd.Timestamp("2026-01-01 05:30"), pd.Timestamp("2026-01-01")]}
    )
    df = _labels_frame(labels, TIMESTAMP, KEY)
    assert df.rows() == [(0, "b", T0 + 5.5 * H), (1, "a", T0)]
    assert df.schema[TIMESTAMP] == pl.Datetime("us", "UTC")


def test_a_renamed_time_column_replaces_a_column_named_event_timestamp() -> None:
    labels = pa.table(
        {
            TIMESTAMP: pa.array(["not the label time"]),
            KEY: pa.array(["a"]),
            "label_time": pa.array([T0 + H], TS_UTC),
            "y": pa.array([1]),
        }
    )
    df = _labels_frame(labels, "label_time", KEY)
    assert df.columns == [ROW_ID, KEY, TIMESTAMP, "y"]
    assert df.rows() == [(0, "a", T0 + H, 1)]


@pytest.mark.parametrize(
    ("columns", "missing"),
    [
        ({"device": ["a"], TIMESTAMP: [T0]}, "device_id"),
        ({KEY: ["a"], "ts": [T0]}, "event_timestamp"),
        ({"x": [1]}, "device_id, event_timestamp"),
    ],
)
def test_labels_without_the_key_or_time_column_are_refused(
    columns: dict[str, list[Any]], missing: str
) -> None:
    with pytest.raises(FeatureStoreError) as err:
        _labels_frame(pa.table(columns), TIMESTAMP, KEY)
    have = ", ".join(columns)
    assert str(err.value) == (
        "the labels need columns 'device_id' and 'event_timestamp'; "
        f"missing {missing} (have {have})"
    )


def test_a_missing_renamed_time_column_is_named() -> None:
    with pytest.raises(FeatureStoreError, match=r"missing when \(have device_id, event_time"):
        _labels_frame(pa.table({KEY: ["a"], TIMESTAMP: [T0]}), "when", KEY)


@pytest.mark.parametrize(
    ("values", "found"),
    [
        (pl.Series([date(2026, 1, 1)]), "Date"),
        (pl.Series(["2026-01-01T03:00:00"]), "String"),
        (pl.Series([1767236400]), "Int64"),
    ],
)
def test_a_time_column_of_no_datetimes_is_refused_naming_it(values: pl.Series, found: str) -> None:
    with pytest.raises(FeatureStoreError) as err:
        _labels_frame(pl.DataFrame({KEY: ["a"], "label_time": values}), "label_time", KEY)
    assert str(err.value) == (
        f"the labels' time column 'label_time' must hold datetimes, found {found}; convert "
        "it to datetimes first (times without a zone are read as UTC)"
    )


# ------------------------------------------------------------------ coverage


def test_coverage_is_an_as_of_join_within_each_ttl() -> None:
    keys = _keys([("a", T0 + H), ("a", T0 + 3 * H), ("b", T0 + 2 * H)])
    labels = _frame(
        [
            ("a", T0 + 3 * H),  # on a feature row
            ("a", T0 + 2 * H),  # the 1 h row is exactly the short TTL old
            ("a", T0 + 2 * H + US),  # a microsecond past it
            ("b", T0 + 2 * H - US),  # b's only row is a microsecond later
            ("c", T0 + 3 * H),  # an entity without feature rows
            ("a", T0),  # before a's first row
            ("a", T0 + 8 * H),  # the 3 h row is exactly the long TTL old
            ("a", T0 + 8 * H + US),
            ("b", T0 + 2 * H),
        ]
    )
    got = coverage(keys, labels, {"short": H, "long": 5 * H}, KEY)
    assert got.columns == [ROW_ID, "short", "long"]
    assert got.rows() == [
        (0, True, True),
        (1, True, True),
        (2, False, True),
        (3, False, False),
        (4, False, False),
        (5, False, False),
        (6, False, True),
        (7, False, False),
        (8, True, True),
    ]


def test_coverage_takes_the_newest_row_at_or_before_the_label() -> None:
    """An older row inside the TTL does not cover a label whose newest row is too old,
    and a newer row does: only the row an as-of join picks counts."""
    keys = _keys([("a", T0 + 5 * H), ("a", T0), ("a", T0 + 2 * H)])
    labels = _frame([("a", T0 + 4 * H), ("a", T0 + 5 * H), ("a", T0 + 2 * H)])
    got = coverage(keys, labels, {"v": H}, KEY)
    assert got.rows() == [(0, False), (1, True), (2, True)]


def test_coverage_of_duplicate_feature_rows_is_one_row_per_label() -> None:
    keys = _keys([("a", T0 + H), ("a", T0 + H), ("b", T0), ("b", T0)])
    labels = _frame([("b", T0 + H), ("a", T0 + H), ("a", T0), ("b", T0 + 2 * H)])
    got = coverage(keys, labels, {"v": H}, KEY)
    assert got.rows() == [(0, True), (1, True), (2, False), (3, False)]


def test_coverage_reads_feature_times_of_any_unit_and_zone_and_keys_of_any_type() -> None:
    keys = pl.DataFrame(
        {
            KEY: [7, 8],
            TIMESTAMP: pl.Series([datetime(2026, 1, 1, 4), datetime(2026, 1, 1, 4)])
            .dt.cast_time_unit("ns")
            .dt.replace_time_zone("Europe/Paris"),
        }
    )
    labels = _labels_frame(
        pa.table({KEY: [7, 7, 8], TIMESTAMP: pa.array([T0 + 3 * H, T0 + 3 * H - US, T0], TS_UTC)}),
        TIMESTAMP,
        KEY,
    )
    got = coverage(keys, labels, {"v": H}, KEY)
    assert got.rows() == [(0, True), (1, False), (2, False)]


def test_coverage_without_views_or_feature_rows() -> None:
    labels = _frame([("a", T0), ("b", T0)])
    assert coverage(_keys([("a", T0)]), labels, {}, KEY).rows() == [(0,), (1,)]
    got = coverage(_keys([]), labels, {"v": H, "w": 2 * H}, KEY)
    assert got.rows() == [(0, False, False), (1, False, False)]


# ------------------------------------------------------------------ columns


def test_views_of_groups_feature_names_by_view_in_request_order() -> None:
    refs = ["device_hourly:b", "device_daily:a", "device_hourly:a", "v:x:y"]
    got = _views_of(refs)
    assert got == {"device_hourly": ["b", "a"], "device_daily": ["a"], "v": ["x:y"]}
    assert list(got) == ["device_hourly", "device_daily", "v"]
    assert _views_of([]) == {}


def test_null_frame_is_typed_nulls_per_feature() -> None:
    refs = ["device_derived:temperature_delta_1h_24h", "device_hourly:readings_1h"]
    got = _null_frame(CAT, refs, 3)
    assert list(got) == ["temperature_delta_1h_24h", "readings_1h"]
    assert got["temperature_delta_1h_24h"].equals(pa.nulls(3, pa.float64()))
    assert got["readings_1h"].equals(pa.nulls(3, pa.int64()))
    assert _null_frame(CAT, refs, 0)["readings_1h"].type == pa.int64()


def test_align_orders_and_casts_to_the_declared_types() -> None:
    table = pa.table(
        {
            "temperature_mean_1h": pa.array([1, None], pa.int64()),
            "ignored": pa.array([1, 2]),
            "readings_1h": pa.array([3, 4], pa.int32()),
            "vibration_max_24h": pa.array([0.5, 1.5], pa.float64()),
            KEY: pa.array(["a", "b"], pa.large_string()),
            "note": pa.array(["x", None], pa.large_string()),
            TIMESTAMP: pa.array([datetime(2026, 1, 1, 4), None], pa.timestamp("ns", "+01:00")),
            ROW_ID: pa.array([1, 0], pa.uint32()),
        }
    )
    refs = [
        "device_hourly:readings_1h",
        "device_hourly:temperature_mean_1h",
        "device_daily:vibration_max_24h",
    ]
    columns = [ROW_ID, KEY, TIMESTAMP, "note", "readings_1h", "temperature_mean_1h"]
    got = _align(CAT, table, [*columns, "vibration_max_24h"], refs)
    assert got.schema == pa.schema(
        [
            (ROW_ID, pa.uint32()),
            (KEY, pa.string()),
            (TIMESTAMP, TS_UTC),
            ("note", pa.string()),
            ("readings_1h", pa.int64()),
            ("temperature_mean_1h", pa.float64()),
            ("vibration_max_24h", pa.float64()),
        ]
    )
    assert got.to_pydict() == {
        ROW_ID: [1, 0],
        KEY: ["a", "b"],
        TIMESTAMP: [T0 + 4 * H, None],
        "note": ["x", None],
        "readings_1h": [3, 4],
        "temperature_mean_1h": [1.0, None],
        "vibration_max_24h": [0.5, 1.5],
    }


# ------------------------------------------------------------------ the Ray engine's limit


def test_whole_seconds_accepts_feature_rows_on_whole_seconds() -> None:
    keys = _keys([("a", T0), ("b", T0 + timedelta(seconds=1)), ("a", T0 + 3 * H)])
    assert _whole_seconds(keys, KEY) is None
    assert _whole_seconds(_keys([]), KEY) is None


def test_whole_seconds_refuses_a_feature_row_within_a_second() -> None:
    keys = _keys(
        [
            ("a", T0),
            ("b", T0 + 3 * H + timedelta(milliseconds=500)),
            ("a", T0 + H),
            ("c", T0 + 4 * H + US),
        ]
    )
    with pytest.raises(EngineUnsupportedError) as err:
        _whole_seconds(keys, KEY)
    assert str(err.value) == (
        "2 feature row(s) have an event_timestamp within a second (e.g. 'b' at "
        "2026-01-01T03:00:00.500000+00:00); Feast's Ray offline store joins on times "
        "floored to the second, so it could join a row from after the label time. Use "
        "features.engine: local for this source, or write feature rows on whole seconds"
    )
    assert err.value.details == {"rows": 2}
    assert err.value.code == "FEATURE_ENGINE_UNSUPPORTED"


# ------------------------------------------------------------------ training sets through Feast

MS = timedelta(milliseconds=1)
FEATURE_KEYS = [("a", T0 + H), ("a", T0 + 2 * H), ("a", T0 + 4 * H), ("b", T0 + 10 * H)]
FEATURE_KEYS += [("d", T0 + 2 * H), ("d", T0 + 3 * H + 500 * MS)]
"""Feature rows; d's second is off the second: fine for the local engine only."""
TTL_S = {"device_hourly": 3600, "device_daily": 36000}
"""Shorter than the spec's (2 h, 26 h): the overrides are what is applied."""
REFS = ["readings_1h", "device_daily:temperature_mean_24h", "temperature_delta_1h_24h"]
OUT = ["readings_1h", "temperature_mean_24h", "temperature_delta_1h_24h"]

LABELS: list[tuple[str, datetime, int, tuple[datetime | None, datetime | None]]] = [
    # device, label time, label, (the hourly view's row, the daily view's row)
    ("a", T0 + 4.5 * H, 0, (T0 + 4 * H, T0 + 4 * H)),
    ("c", T0 + 5 * H, 1, (None, None)),  # no feature rows at all
    ("a", T0 + 2 * H, 0, (T0 + 2 * H, T0 + 2 * H)),  # on a feature row
    ("b", T0 + 9 * H, 1, (None, None)),  # b's only row is an hour after the label
    ("a", T0 + 5 * H, 0, (T0 + 4 * H, T0 + 4 * H)),  # exactly the hourly TTL old
    ("a", T0 + 5 * H + US, 1, (None, T0 + 4 * H)),
    ("a", T0 + 14 * H, 0, (None, T0 + 4 * H)),  # exactly the daily TTL old
    ("a", T0 + 14 * H + US, 1, (None, None)),
    ("a", T0 + 0.5 * H, 0, (None, None)),  # before a's first row
    ("b", T0 + 10 * H, 1, (T0 + 10 * H, T0 + 10 * H)),
    ("a", T0 + 2 * H, 1, (T0 + 2 * H, T0 + 2 * H)),  # the third row again, another label
    ("d", T0 + 3 * H + 250 * MS, 0, (None, T0 + 2 * H)),  # d's next row is 250 ms later
    ("d", T0 + 3 * H + 500 * MS, 1, (T0 + 3 * H + 500 * MS, T0 + 3 * H + 500 * MS)),
    ("a", T0 + 2 * H - US, 0, (T0 + H, T0 + H)),  # the 2 h row is a microsecond later
]
WITHOUT = [i for i, (*_, rows) in enumerate(LABELS) if rows == (None, None)]


@dataclass
class Lake:
    """A Feast repo over :data:`FEATURE_KEYS`, applied, and its settings' parts."""

    client: FeatureClient
    home: Path
    source: str
    rows: dict[tuple[str, datetime], dict[str, Any]]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    pytest.importorskip("feast")
    home = tmp_path_factory.mktemp("pit")
    source = str(home / "device_features_hourly")
    feats = feature_table(FEATURE_KEYS)
    write_features(source, feats)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLOPS_KIT_CONFIG", str(home / "absent.yaml"))
        settings = load_settings(home=home, features={"source_uri": source, "ttl_s": TTL_S})
    client = FeatureClient(settings)
    client.apply()
    rows = {(r[KEY], r[TIMESTAMP]): r for r in feats.to_pylist()}
    yield Lake(client, home, source, rows)
    client.close()


def _client(lake: Lake, source: str | None = None, **features: Any) -> FeatureClient:
    s = load_settings(
        home=lake.home, features={"source_uri": source or lake.source, "ttl_s": TTL_S, **features}
    )
    return FeatureClient(s)


def _labels(rows: list[tuple[str, datetime, int, Any]]) -> pa.Table:
    return pa.table(
        {
            "y": pa.array([r[2] for r in rows], pa.int64()),
            KEY: pa.array([r[0] for r in rows], pa.string()),
            TIMESTAMP: pa.array([r[1] for r in rows], TS_UTC),
        }
    )


def _expected(lake: Lake, indices: list[int]) -> list[dict[str, Any]]:
    """The training rows of ``LABELS[i]``, from the feature rows the table names."""
    out = []
    for i in indices:
        device, when, y, (hourly, daily) = LABELS[i]
        h = lake.rows[(device, hourly)] if hourly else None
        d = lake.rows[(device, daily)] if daily else None
        out.append(
            {
                "y": y,
                KEY: device,
                TIMESTAMP: when,
                "readings_1h": h["readings_1h"] if h else None,
                "temperature_mean_24h": d["temperature_mean_24h"] if d else None,
                "temperature_delta_1h_24h": (
                    h["temperature_mean_1h"] - d["temperature_mean_24h"] if h and d else None
                ),
            }
        )
    return out


OUT_TYPES = [pa.int64(), pa.float64(), pa.float64()]
SCHEMA = pa.schema(
    [("y", pa.int64()), (KEY, pa.string()), (TIMESTAMP, TS_UTC), *zip(OUT, OUT_TYPES, strict=True)]
)


def test_keep_returns_every_label_row_in_order_with_nulls_where_uncovered(lake: Lake) -> None:
    ts = lake.client.training_set(_labels(LABELS), features=REFS, missing="keep")
    assert ts.table.schema == SCHEMA
    assert ts.table.to_pylist() == _expected(lake, list(range(len(LABELS))))
    assert ts.features == [
        "device_hourly:readings_1h",
        "device_daily:temperature_mean_24h",
        "device_derived:temperature_delta_1h_24h",
    ]
    assert ts.accounting == {
        "rows_in": 14,
        "complete": 7,
        "partial": 3,
        "without_features": 4,
        "missing_policy": "keep",
        "missing_by_view": {"device_daily": 4, "device_hourly": 7},
        "ttl_s": {"device_daily": 36000, "device_hourly": 3600},
        "dropped": 0,
        "kept_with_nulls": 4,
        "rows_out": 14,
    }


def test_drop_leaves_out_and_counts_rows_without_features(lake: Lake) -> None:
    ts = lake.client.training_set(_labels(LABELS), features=REFS, missing="drop")
    kept = [i for i in range(len(LABELS)) if i not in WITHOUT]
    assert ts.table.schema == SCHEMA
    assert ts.table.to_pylist() == _expected(lake, kept)
    acc = ts.accounting
    assert (acc["missing_policy"], acc["dropped"], acc["kept_with_nulls"]) == ("drop", 4, 0)
    assert (acc["rows_in"], acc["rows_out"], acc["without_features"]) == (14, 10, 4)


def test_no_feature_row_newer_than_the_label_is_joined(lake: Lake) -> None:
    """Labels a microsecond and 250 ms before each feature row get the row before it (or
    none), labels on it get that row."""
    rows = [(d, t - tick, 0, None) for d, t in FEATURE_KEYS for tick in (US, 250 * MS)]
    rows += [(d, t, 1, None) for d, t in FEATURE_KEYS]
    ts = lake.client.training_set(_labels(rows), features=["readings_1h"], missing="keep")
    a1 = lake.rows[("a", T0 + H)]["readings_1h"]
    # before a's 4 h row and d's rows the previous row is past the TTL, or there is none
    before = [None, None, a1, a1] + [None] * (2 * len(FEATURE_KEYS) - 4)
    on_time = [lake.rows[k]["readings_1h"] for k in FEATURE_KEYS]
    assert ts.table["readings_1h"].to_pylist() == before + on_time
    assert ts.table[TIMESTAMP].to_pylist() == [r[1] for r in rows]


def test_features_of_one_view_count_that_view_only(lake: Lake) -> None:
    labels = _labels([LABELS[i] for i in (5, 0, 1)])
    ts = lake.client.training_set(labels, features=["readings_1h"], missing="drop")
    assert ts.table.to_pylist() == [
        {k: v for k, v in row.items() if k in ("y", KEY, TIMESTAMP, "readings_1h")}
        for row in _expected(lake, [0])
    ]
    acc = ts.accounting
    assert acc["missing_by_view"] == {"device_hourly": 2}
    assert acc["ttl_s"] == {"device_hourly": 3600}
    assert (acc["complete"], acc["partial"], acc["without_features"]) == (1, 0, 2)
    assert (acc["dropped"], acc["rows_out"]) == (2, 1)


def test_the_service_features_by_default_and_a_renamed_time_column(lake: Lake) -> None:
    labels = _labels([LABELS[0]]).rename_columns(["y", KEY, "label_time"])
    ts = lake.client.training_set(labels, timestamp_column="label_time")
    names = [r.split(":", 1)[1] for r in CAT.service_features(1)]
    assert ts.table.column_names == ["y", KEY, TIMESTAMP, *names]
    row = ts.table.to_pylist()[0]
    want = lake.rows[("a", T0 + 4 * H)]
    assert row[TIMESTAMP] == T0 + 4.5 * H
    stored = [n for n in names if n in want]
    assert {n: row[n] for n in stored} == {n: want[n] for n in stored}
    assert row["temperature_delta_1h_24h"] == (
        want["temperature_mean_1h"] - want["temperature_mean_24h"]
    )


def test_an_unknown_missing_policy_is_refused(lake: Lake) -> None:
    with pytest.raises(FeatureStoreError) as err:
        lake.client.training_set(_labels(LABELS), features=REFS, missing="fill")
    assert str(err.value) == "missing must be 'keep' or 'drop', got 'fill'"


def test_no_labels_give_an_empty_typed_table(lake: Lake) -> None:
    ts = lake.client.training_set(_labels([]), features=REFS)
    assert ts.table.schema == SCHEMA and ts.table.num_rows == 0
    counts = ["rows_in", "complete", "partial", "without_features", "rows_out", "dropped"]
    assert [ts.accounting[c] for c in [*counts, "kept_with_nulls"]] == [0] * 7


def test_every_row_dropped_gives_an_empty_typed_table(lake: Lake) -> None:
    ts = lake.client.training_set(
        _labels([LABELS[i] for i in WITHOUT]), features=REFS, missing="drop"
    )
    assert ts.table.schema == SCHEMA and ts.table.num_rows == 0
    assert (ts.accounting["dropped"], ts.accounting["rows_out"]) == (len(WITHOUT), 0)


def test_a_source_without_files_keeps_or_drops_every_row(lake: Lake, tmp_path: Path) -> None:
    """No Feast join at all: the settings' missing policy applies when none is given."""
    empty = str(tmp_path / "no_features")
    labels = _labels([LABELS[0], LABELS[1]])
    kept = _client(lake, empty).training_set(labels, features=REFS)
    assert kept.table.schema == SCHEMA
    assert kept.table.to_pylist() == [{**row, **dict.fromkeys(OUT)} for row in labels.to_pylist()]
    assert kept.accounting["missing_by_view"] == {"device_daily": 2, "device_hourly": 2}
    assert (kept.accounting["kept_with_nulls"], kept.accounting["without_features"]) == (2, 2)
    dropped = _client(lake, empty, missing="drop").training_set(labels, features=REFS)
    assert dropped.table.num_rows == 0 and dropped.accounting["missing_policy"] == "drop"
    assert dropped.accounting["dropped"] == 2


def test_the_ray_engine_refuses_a_source_off_the_second_before_joining(lake: Lake) -> None:
    client = _client(lake, engine="ray")
    with pytest.raises(EngineUnsupportedError, match=r"^1 feature row\(s\) .* \(e\.g\. 'd' at"):
        client.training_set(_labels(LABELS), features=REFS)


def test_feast_join_for_ray_floors_label_times_and_joins_back(lake: Lake) -> None:
    """With ``features.engine: ray`` Feast gets each label key once, floored to the second
    (the Ray store floors it itself; the local store answering here shows what it is
    given), and every label row keeps its own time.

    d's row off the second (a source the training set refuses for Ray) shows the floor:
    the label 200 ms after it gets d's row before it.
    """
    client = _client(lake, engine="ray")
    client._store = lake.client.store  # the local offline store, applied, without Ray
    rows = _frame(
        [
            ("a", T0 + 4 * H + 700 * MS),
            ("b", T0 + 10 * H + 999_999 * US),
            ("a", T0 + 4 * H + 200 * MS),
            ("a", T0 + 2 * H + 500 * MS),
            ("d", T0 + 3 * H + 700 * MS),
        ],
        y=[0, 1, 2, 3, 4],
    )
    got = _feast_join(client, rows, ["device_hourly:readings_1h"])
    got = got.sort_by(ROW_ID)
    assert got.column_names == [ROW_ID, KEY, TIMESTAMP, "y", "readings_1h"]
    assert got[TIMESTAMP].to_pylist() == rows[TIMESTAMP].to_list()
    assert got["y"].to_pylist() == [0, 1, 2, 3, 4]
    r = lake.rows
    assert got["readings_1h"].to_pylist() == [
        r[("a", T0 + 4 * H)]["readings_1h"],
        r[("b", T0 + 10 * H)]["readings_1h"],
        r[("a", T0 + 4 * H)]["readings_1h"],
        r[("a", T0 + 2 * H)]["readings_1h"],
        r[("d", T0 + 2 * H)]["readings_1h"],
    ]


def test_feast_join_locally_joins_each_repeated_key_back(lake: Lake) -> None:
    rows = _frame([("a", T0 + 2 * H), ("a", T0 + 4 * H), ("a", T0 + 2 * H)], y=[0, 1, 2])
    got = _feast_join(lake.client, rows, ["device_daily:readings_24h"]).sort_by(ROW_ID)
    assert got.column_names == [ROW_ID, KEY, TIMESTAMP, "y", "readings_24h"]
    r = lake.rows
    assert got["readings_24h"].to_pylist() == [
        r[("a", T0 + 2 * H)]["readings_24h"],
        r[("a", T0 + 4 * H)]["readings_24h"],
        r[("a", T0 + 2 * H)]["readings_24h"],
    ]
