"""Two lakes fed the same raw bytes, one run by each ETL backend, and their comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from iot_fleet import device_registry

from mlops_kit.config import Settings, load_settings
from mlops_kit.etl import read_table, write_device_registry
from mlops_kit.etl.lake import manifests
from mlops_kit.etl.run import QUARANTINE, READINGS, layout_of, warehouse_of, warehouse_table
from mlops_kit.ingest.files import ingest_files
from tests.etl.conftest import N_DEVICES, small_readings
from tests.etl.hostile import corpus


def lake_at(home: Path, backend: str, **more: Any) -> Settings:
    s = load_settings(
        home=home,
        quality={"max_quarantine_rate": 1.0},
        etl={"backend": backend, "partitions": 3},
        ray={"workers": 2, "num_cpus": 2},
        **more,
    )
    write_device_registry(s, device_registry(N_DEVICES))
    return s


def _parquet(table: pa.Table, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path)


def first_files(tmp: Path) -> list[Path]:
    """Three clean days in three objects, and the hostile corpus (every kind of bad
    object and record the local backend handles)."""
    tmp.mkdir(parents=True, exist_ok=True)
    readings = small_readings(days=3)
    paths = []
    n = readings.num_rows
    for i in range(3):
        path = tmp / f"clean-{i}.parquet"
        _parquet(readings.slice(i * n // 3, n // 3 + 1), path)  # one row shared: a duplicate
        paths.append(path)
    for h in corpus(small_readings(days=2, seed=11)):
        path = tmp / h.name
        path.write_bytes(h.data)
        paths.append(path)
    return paths


def second_files(tmp: Path) -> list[Path]:
    """A later run: a new day, rows already loaded (exact copies and changed ones)."""
    tmp.mkdir(parents=True, exist_ok=True)
    later = small_readings(days=1, start_day=4, seed=3)
    again = small_readings(days=3).slice(100, 40)
    changed = again.set_column(
        again.schema.get_field_index("temperature"),
        "temperature",
        pc.add(again["temperature"], 1.5),
    ).slice(0, 10)
    paths = []
    for name, table in (("later", later), ("again", again), ("changed", changed)):
        path = tmp / f"{name}.parquet"
        _parquet(table, path)
        paths.append(path)
    return paths


def land(settings: Settings, paths: list[Path]) -> None:
    ingest_files([str(p) for p in paths], settings.storage.raw_uri or "")


def _relative(table: pa.Table, settings: Settings) -> pa.Table:
    if "_source" not in table.column_names:
        return table
    raw = (settings.storage.raw_uri or "").rstrip("/")
    src = pc.replace_substring(table["_source"].cast(pa.string()), raw, "<raw>")
    return table.set_column(table.schema.get_field_index("_source"), "_source", src)


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in keys])


def committed(settings: Settings) -> dict[str, Any]:
    """The committed state of a lake, comparable across lakes (sorted, no paths)."""
    from mlops_kit.etl.run import features_table

    readings = read_table(settings, READINGS)
    features = read_table(settings, features_table(settings))
    quarantine = _relative(read_table(settings, QUARANTINE), settings)
    table = warehouse_table(settings)
    stored = warehouse_of(settings).query(
        f'SELECT * FROM "{table}" ORDER BY device_id, event_timestamp'
    )
    runs = manifests(layout_of(settings))
    return {
        "readings": _sorted(readings, ["device_id", "ts"]),
        "features": _sorted(features, ["device_id", "event_timestamp"]),
        "quarantine": _sorted(quarantine, ["_source", "_line", "reason", "record"]),
        "warehouse": stored,
        "accounting": [m["accounting"] for m in runs],
        "feature_rows": [m["feature_rows"] for m in runs],
    }
