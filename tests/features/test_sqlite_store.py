"""The batched SQLite online store writes what Feast's SQLite store writes.

Every comparison is with Feast's own ``SqliteOnlineStore`` on the same input, into a
second database: the tables row by row (every column's value and SQLite storage class),
and what Feast's ``get_online_features`` and the direct reader read back.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from mlops_kit.config import load_settings
from mlops_kit.features.config import SQLITE_STORE, repo_config, repo_config_dict
from mlops_kit.features.store import FeatureClient

from .conftest import T0, feature_table, write_features

COLUMNS = ("entity_key", "feature_name", "value", "value_text", "vector_value", "event_ts")
COLUMNS += ("created_ts",)
DEVICES = ["a", "b", "c", "d", "e"]


def _table(path: str, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table``: each column's value and its SQLite storage class."""
    cols = ", ".join(COLUMNS)
    kinds = ", ".join(f"typeof({c})" for c in COLUMNS)
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(
            f'SELECT {cols}, {kinds} FROM "{table}" ORDER BY entity_key, feature_name'
        ).fetchall()


def _schema(path: str) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()


# ------------------------------------------------------------------ materialization


def _rows() -> pa.Table:
    """Three days of rows (every fifth hour) of five devices, a device seen only on the
    first day, and nulls in an integer and a float feature of e's newest hourly row."""
    keys = [(d, T0 + timedelta(hours=h)) for d in DEVICES for h in range(1, 72, 5)]
    keys += [("f", T0 + timedelta(hours=2))]
    table = feature_table(keys)
    for name in ("readings_1h", "temperature_mean_1h"):
        i = table.schema.get_field_index(name)
        values = table[name].to_pylist()
        values[len(values) - 2] = None
        table = table.set_column(i, name, pa.array(values, table.schema.field(i).type))
    return table


def _client(root: Path, source: str, engine: str, writer: str) -> FeatureClient:
    settings = load_settings(
        home=root / writer,
        features={"source_uri": source, "engine": engine, "sqlite_writer": writer},
    )
    return FeatureClient(settings)


def _tables(client: FeatureClient) -> dict[str, list[tuple[Any, ...]]]:
    p = client.placement
    return {v: _table(p.online_path or "", f"{p.project}_{v}") for v in client.catalog.views}


def test_materialized_tables_equal_feasts(tmp_path: Path, engine: str) -> None:
    """Three runs on each engine, Feast's store and ours side by side: up to day 3, then
    a full run up to day 1 (older rows over newer ones: Feast's upsert keeps the last
    written), then up to day 4 from there (newer rows). After each run the tables are
    equal byte for byte and Feast and the direct reader read the same values (both views
    on the local engine, the hourly one on Ray)."""
    source = str(tmp_path / "src")
    write_features(source, _rows())
    feast = _client(tmp_path, source, engine, "feast")
    ours = _client(tmp_path, source, engine, "batched")
    assert type(feast.store._get_provider().online_store).__name__ == "SqliteOnlineStore"
    assert type(ours.store._get_provider().online_store).__name__ == "BatchedSqliteOnlineStore"
    for client in (feast, ours):
        client.apply()
    assert _schema(feast.placement.online_path or "") == _schema(ours.placement.online_path or "")
    ids = [*DEVICES, "f", "ghost"]
    runs: list[tuple[datetime, bool]] = [
        (T0 + timedelta(days=3), False),
        (T0 + timedelta(days=1), True),
        (T0 + timedelta(days=4), False),
    ]
    views = ["device_hourly"] if engine == "ray" else None  # one view: half the Ray time
    seen: list[dict[str, list[tuple[Any, ...]]]] = []
    for end, full in runs:
        a = feast.materialize(end, full=full, views=views)
        b = ours.materialize(end, full=full, views=views)
        assert a.views == b.views and a.rows == b.rows
        tables = _tables(ours)
        assert tables == _tables(feast)
        assert ours.online(ids, fast=False).columns == feast.online(ids, fast=False).columns
        assert ours.online(ids, fast=True).columns == feast.online(ids, fast=True).columns
        seen.append(tables)
    hourly = [t["device_hourly"] for t in seen]
    features = len(ours.catalog.views["device_hourly"].features)
    assert [len(t) for t in hourly] == [6 * features] * 3
    newest = [max(row[5] for row in t) for t in hourly]
    # the full run to day 1 wrote older rows (hour 21) over the first run's (hour 71);
    # the third run wrote the newer ones again
    assert newest[0] - newest[1] == 50 * 3600 and newest[2] == newest[0]
    # e's newest row has the two nulls: an empty ValueProto and no value_text
    e = {row[1]: row for row in hourly[2] if row[0].endswith(b"e")}
    assert e["readings_1h"][2:4] == (b"", None)
    assert ours.online(["e"], fast=False).columns["readings_1h"] == [None]


# ------------------------------------------------------------------ the write path


def _view() -> Any:
    from feast import Entity, FeatureView, Field, FileSource
    from feast.types import Float32, Float64, Int64, String
    from feast.value_type import ValueType

    entity = Entity(name="device", join_keys=["device_id"], value_type=ValueType.STRING)
    source = FileSource(name="src", path="unused.parquet", timestamp_field="event_timestamp")
    return entity, FeatureView(
        name="kinds",
        entities=[entity],
        schema=[Field(name="device_id", dtype=String)]
        + [Field(name=n, dtype=t) for n, t in (("f", Float32), ("d", Float64), ("i", Int64))],
        source=source,
    )


def _stores(tmp_path: Path) -> dict[str, tuple[Any, Any, str]]:
    """Feast's store and ours, each with its repo config and database, tables created."""
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    from mlops_kit.features.sqlite_store import BatchedSqliteOnlineStore

    entity, view = _view()
    out = {}
    for name, store in (("feast", SqliteOnlineStore()), ("ours", BatchedSqliteOnlineStore())):
        settings = load_settings(
            home=tmp_path / name,
            features={"sqlite_writer": "feast" if name == "feast" else "batched"},
        )
        config = repo_config(settings)
        store.update(config, [], [view], [], [entity], partial=False)
        out[name] = (store, config, config.online_store.path)
    return out


def _values() -> list[Any]:
    """One ``ValueProto`` of each kind Feast gives ``value_text`` a rule for, and some
    it gives none."""
    from feast.protos.feast.types.Value_pb2 import (
        BoolList,
        DoubleList,
        Int64List,
        StringList,
        Value,
    )

    return [
        Value(string_val="héllo, wörld"),
        Value(string_val=""),
        Value(int32_val=-7),
        Value(int64_val=2**62),
        Value(double_val=0.1),
        Value(double_val=-1e300),
        Value(double_val=math.nan),
        Value(double_val=math.inf),
        Value(float_val=0.1),
        Value(bool_val=True),
        Value(bool_val=False),
        Value(bytes_val=b"\x00\xff"),
        Value(unix_timestamp_val=1_767_225_600),
        Value(int64_list_val=Int64List(val=[1, 2])),
        Value(double_list_val=DoubleList(val=[0.5])),
        Value(string_list_val=StringList(val=["x"])),
        Value(bool_list_val=BoolList(val=[True])),
        Value(),
    ]


def _key(device: str) -> Any:
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    return EntityKey(join_keys=["device_id"], entity_values=[Value(string_val=device)])


def test_value_text_is_feasts_for_every_kind() -> None:
    from feast.infra.online_stores.helpers import extract_text_and_num

    from mlops_kit.features.sqlite_store import value_text

    for value in _values():
        assert value_text(value) == extract_text_and_num(value, False)[0], value


def test_a_batch_is_written_as_feast_writes_it(tmp_path: Path) -> None:
    """Every value kind; aware and naive times in a zone other than UTC (Feast's adapter
    reads a naive time as local); no created time; an entity given twice in one batch
    (the last wins); then a second batch over part of the first."""
    from feast.protos.feast.types.Value_pb2 import Value

    zone = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        stores = _stores(tmp_path)
        view = _view()[1]
        values = _values()
        aware = T0 + timedelta(hours=5, microseconds=999_999)
        naive = datetime(2026, 1, 2, 3, 4, 5, 600_000)
        first = [
            (_key(f"dev-{i:03d}"), {f"x{j}": v for j, v in enumerate(values)}, aware, naive)
            for i in range(40, 0, -1)
        ]
        first.append((_key("dev-007"), {"x0": Value(string_val="last")}, naive, None))
        first.append((_key("ü"), {"x1": values[3]}, aware, None))
        second = [
            (
                _key(f"dev-{i:03d}"),
                {"x4": Value(double_val=i / 3)},
                aware - timedelta(days=9),
                aware,
            )
            for i in range(30, 50)
        ]
        keys = [_key(f"dev-{i:03d}") for i in range(52)]
        ticks: list[tuple[str, int]] = []
        for batch in (first, second):
            ticks.clear()
            for name, (store, config, _) in stores.items():
                store.online_write_batch(
                    config,
                    view,
                    batch,
                    lambda n, name=name: ticks.append((name, n)),
                )
            for name in stores:
                assert sum(n for who, n in ticks if who == name) == len(batch)
            tables = {n: _table(path, f"{c.project}_kinds") for n, (_, c, path) in stores.items()}
            assert tables["ours"] == tables["feast"]
            read = {n: s.online_read(c, view, keys) for n, (s, c, _) in stores.items()}
            assert read["ours"] == read["feast"]
    finally:
        if zone is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = zone
        time.tzset()
    rows = {(r[0][-7:], r[1]): r for r in tables["ours"]}
    assert rows[(b"dev-007", "x0")][3] == "last"
    assert rows[(b"dev-007", "x0")][5] != rows[(b"dev-007", "x1")][5]
    assert {r[-2:] for r in tables["ours"]} == {("integer", "integer"), ("integer", "null")}


def test_a_failed_batch_leaves_nothing(tmp_path: Path) -> None:
    """A batch SQLite refuses half way is rolled back whole: the rows before the refused
    one are not stored, not even by the next batch's commit."""
    from feast.protos.feast.types.Value_pb2 import Value

    store, config, path = _stores(tmp_path)["ours"]
    view = _view()[1]
    table = f"{config.project}_kinds"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            f'CREATE TRIGGER refuse BEFORE INSERT ON "{table}" WHEN NEW.feature_name = '
            "'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        conn.commit()
    batch = [(_key(f"dev-{i}"), {"d": Value(double_val=i)}, T0, None) for i in range(5)]
    batch.append((_key("dev-9"), {"refused": Value(double_val=9)}, T0, None))
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        store.online_write_batch(config, view, batch, None)
    store.online_write_batch(
        config, view, [(_key("z"), {"d": Value(double_val=1)}, T0, None)], None
    )
    assert [r[0][-1:] for r in _table(path, table)] == [b"z"]


@pytest.mark.parametrize("per_statement", [1, 3, 4, 100])
def test_rows_per_statement_change_nothing(tmp_path: Path, per_statement: int) -> None:
    """Eleven rows (two keys written five times each, in and across statements) upserted
    with one row per statement and with ``per_statement``: the same table."""
    from mlops_kit.features.sqlite_store import write_rows

    rows = [(bytes([k % 2]), "x", bytes([k]), str(k), k, None) for k in range(10)]
    rows += [(b"\x01", "y", b"", None, 99, 7)]
    tables = []
    for n in (1, per_statement):
        _, config, path = _stores(tmp_path / str(n))["ours"]
        with closing(sqlite3.connect(path)) as conn:
            write_rows(conn, f"{config.project}_kinds", iter(rows), per_statement=n)
        tables.append(_table(path, f"{config.project}_kinds"))
    assert tables[1] == tables[0]
    assert [r[2] for r in tables[0]] == [b"\x08", b"\x09", b""]


def test_writes_in_wal_mode_wait_for_another_writer(tmp_path: Path) -> None:
    """The file is in write-ahead-log mode after a write; a batch waits up to
    ``busy_timeout_s`` for the write lock another connection holds (none: it fails at
    once; the default: it is written once the lock is released); a read-only reader
    reads it."""
    from feast.protos.feast.types.Value_pb2 import Value

    store, config, path = _stores(tmp_path)["ours"]
    view = _view()[1]
    table = f"{config.project}_kinds"
    store.online_write_batch(
        config, view, [(_key("a"), {"d": Value(double_val=1)}, T0, None)], None
    )
    other = sqlite3.connect(path, check_same_thread=False)
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    other.execute("BEGIN IMMEDIATE")
    batch = [(_key("b"), {"d": Value(double_val=2)}, T0, None)]
    config.online_store.busy_timeout_s = 0.0
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store.online_write_batch(config, view, batch, None)
    config.online_store.busy_timeout_s = 60.0
    release = threading.Timer(0.3, other.commit)
    release.start()
    try:
        store.online_write_batch(config, view, batch, None)
    finally:
        release.join()
        other.close()
    assert store._get_conn(config).execute("PRAGMA busy_timeout").fetchone() == (60_000,)
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as reader:
        got = reader.execute(f'SELECT value_text FROM "{table}" ORDER BY entity_key').fetchall()
    assert got == [("1.0",), ("2.0",)]


# ------------------------------------------------------------------ configuration


def test_the_batched_store_is_selected_on_both_engines(tmp_path: Path) -> None:
    for engine in ("local", "ray"):
        settings = load_settings(home=tmp_path, features={"engine": engine})
        online = repo_config_dict(settings)["online_store"]
        assert online == {"type": SQLITE_STORE, "path": _online_db(tmp_path)}
        stock = load_settings(home=tmp_path, features={"engine": engine, "sqlite_writer": "feast"})
        assert repo_config_dict(stock)["online_store"]["type"] == "sqlite"
    config = repo_config(load_settings(home=tmp_path))
    assert type(config.online_store).__name__ == "BatchedSqliteOnlineStoreConfig"
    assert config.online_store.busy_timeout_s == 60.0


def _online_db(home: Path) -> str:
    return str((home / "features" / "online.db").absolute())


def test_the_direct_reader_names_a_store_it_cannot_read(tmp_path: Path) -> None:
    """A missing file, and one that is no database, fail naming the file and the fix (raw
    SQLite errors before); a database without the view's table reads as no rows."""
    from mlops_kit.features.errors import OnlineStoreUnreadableError
    from mlops_kit.features.online import SqliteReader

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database, " * 512)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    for path, why in ((tmp_path / "absent.db", "unable to open"), (garbage, "not a database")):
        reader = SqliteReader(str(path), "p", "device_id")
        for method, args in (("read", (["d1"], ["readings_1h"])), ("event_times", (["d1"],))):
            with pytest.raises(OnlineStoreUnreadableError) as err:
                getattr(reader, method)("device_hourly", *args)
            assert str(err.value).startswith(f"the online store {path} cannot be read (SQLite: ")
            assert why in str(err.value) and "mlops-kit features materialize" in str(err.value)
            assert err.value.code == "FEATURE_ONLINE_STORE_UNREADABLE"
            assert err.value.details == {"path": str(path)}
    reader = SqliteReader(str(empty), "p", "device_id")
    assert reader.read("device_hourly", ["d1"], ["readings_1h"]) == {}
    assert reader.event_times("device_hourly", ["d1"]) == {}
