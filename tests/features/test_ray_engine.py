"""``features.engine: ray``: Feast's Ray compute engine writes the online rows Feast's local
engine writes, with the same accounting, on a local Ray cluster of 2 CPUs.

The training sets of both engines are checked against the brute-force join in
``test_historical.py`` (its tests run once per engine); here: materialization, the write
failures Feast's Ray engine does not report, and what its offline store cannot join.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from mlops_kit.config import load_settings
from mlops_kit.features.errors import EngineUnsupportedError, OnlineWriteIncompleteError
from mlops_kit.features.store import FeatureClient

from .conftest import T0, feature_table, write_features

pytestmark = pytest.mark.ray

DEVICES = ["a", "b", "c", "d", "e"]


def _rows() -> pa.Table:
    """Three days of hourly rows (three files: every device in each), a device that stops
    early, and null values in an integer and a float feature."""
    keys = [(d, T0 + timedelta(hours=h)) for d in DEVICES for h in range(1, 72, 5)]
    keys += [("f", T0 + timedelta(hours=2))]
    table = feature_table(keys)
    for name in ("readings_1h", "temperature_mean_1h"):
        i = table.schema.get_field_index(name)
        values = table[name].to_pylist()
        values[len(values) - 2] = None  # e's newest hourly row
        table = table.set_column(i, name, pa.array(values, table.schema.field(i).type))
    return table


def _client(root: Path, source: str, engine: str) -> FeatureClient:
    return FeatureClient(
        load_settings(home=root, features={"source_uri": source, "engine": engine})
    )


def _state(client: FeatureClient, ends: list[datetime]) -> dict[str, Any]:
    client.apply()
    runs = [client.materialize(end) for end in ends]
    ids = [*DEVICES, "f", "ghost"]
    return {
        "views": [r.views for r in runs],
        "rows": [r.rows for r in runs],
        "feast": client.online(ids, fast=False).columns,
        "direct": client.online(ids, fast=True).columns,
    }


def test_both_engines_write_the_same_online_rows(tmp_path: Path, ray_cluster: None) -> None:
    """Two incremental runs through each engine: the same accounting and online values.

    The rows are months older than now minus the views' TTLs (Feast's Ray engine alone
    would write none of them), and each device's rows lie in several files (Feast's Ray
    engine alone could write an older one last)."""
    source = str(tmp_path / "src")
    write_features(source, _rows())
    ends = [T0 + timedelta(days=1, hours=5), T0 + timedelta(days=4)]
    local = _state(_client(tmp_path / "local", source, "local"), ends)
    on_ray = _state(_client(tmp_path / "ray", source, "ray"), ends)
    assert on_ray == local
    hourly = local["views"][1]["device_hourly"]
    assert hourly["rows"] == 5 * 9 and hourly["entities"] == 5
    # the newest row of each device (row i's readings_1h is 7 i + 2): e's has the two
    # nulls, f's is the last row, ghost has none
    assert local["feast"]["readings_1h"][-3:] == [None, 75 * 7 + 2, None]
    assert local["feast"]["temperature_mean_1h"][4] is None
    assert local["feast"]["readings_24h"][4] is not None


def test_a_write_feast_swallows_is_reported(tmp_path: Path, ray_cluster: None) -> None:
    """A view's online table gone after apply: Feast's Ray engine logs the failed writes
    and reports success; the read-back fails the run, naming the view, and no high-water
    mark moves."""
    source = str(tmp_path / "src")
    write_features(source, _rows())
    client = _client(tmp_path, source, "ray")
    client.apply()
    db = client.placement.online_path or ""
    with sqlite3.connect(db) as conn:
        conn.execute(f'DROP TABLE "{client.placement.project}_device_hourly"')
    with pytest.raises(OnlineWriteIncompleteError) as info:
        client.materialize(T0 + timedelta(days=4))
    err = info.value
    assert err.code == "FEATURE_ONLINE_WRITE_INCOMPLETE"
    assert "'device_hourly'" in str(err) and "6 of 6 entities" in str(err)
    assert err.details == {"view": "device_hourly", "short": 6, "entities": 6}
    assert client.materialization_state()["views"] == {}


def test_sub_second_feature_times_are_refused(tmp_path: Path, ray_cluster: None) -> None:
    """Feast's Ray offline store floors times to the second: a feature row at 01:00:00.5
    would be joined to a label at 01:00:00.2, from before it was observed."""
    source = str(tmp_path / "src")
    at = T0 + timedelta(hours=1, milliseconds=500)
    write_features(source, feature_table([("a", T0), ("a", at)]))
    client = _client(tmp_path, source, "ray")
    client.apply()
    labels = pa.table(
        {
            "device_id": ["a"],
            "event_timestamp": pa.array(
                [T0 + timedelta(hours=1, milliseconds=200)], pa.timestamp("us", tz="UTC")
            ),
        }
    )
    with pytest.raises(EngineUnsupportedError) as info:
        client.training_set(labels, features=["readings_1h"])
    assert info.value.code == "FEATURE_ENGINE_UNSUPPORTED"
    assert f"'a' at {at.isoformat()}" in str(info.value)
    assert "features.engine: local" in str(info.value)
    local = _client(tmp_path / "local", source, "local")
    local.apply()
    got = local.training_set(labels, features=["readings_1h"])
    assert got.table["readings_1h"].to_pylist() == [0 * 7 + 2]  # the row at T0
