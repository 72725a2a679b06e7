"""Both bundled datasets through the same code: generate -> land -> ETL -> features.

Nothing here is written for one dataset: each test runs for every bundled spec, and the
expected figures come from the generator's own record of what it injected.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from mlops_kit.config import Settings, load_settings
from mlops_kit.data.generate import SpecGeneratorConfig, generate, known_ids, to_raw
from mlops_kit.data.spec import DatasetSpec, bundled_specs, duration_s, spec_of
from mlops_kit.etl import features_table, read_table, run_etl, write_device_registry
from mlops_kit.etl.layout import TIMESTAMP
from mlops_kit.ingest.raw_zone import land

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
NOW = T0 + timedelta(days=3)
N_ENTITIES = 5


def _settings(home: Path, name: str) -> Settings:
    return load_settings(home=home, dataset=name)


def _land_generated(
    s: Settings, fmt: str = "jsonl", bad_rate: float = 0.08, seed: int = 5
) -> tuple[pa.Table, Any]:
    spec = spec_of(s)
    table = generate(
        spec, SpecGeneratorConfig(n_entities=N_ENTITIES, start=T0, freq_s=600, steps=288, seed=3)
    )
    if spec.entity.known_ids.source == "registry":
        write_device_registry(s, known_ids(spec, N_ENTITIES))
    raw = to_raw(spec, table, bad_rate=bad_rate, unit_rate=0.3, seed=seed, dirty_id_rate=0.1)
    data = raw.to_bytes() if fmt == "jsonl" else raw.to_csv_bytes()
    land(s.storage.raw_uri or "", "files", data, fmt)
    return table, raw


@pytest.fixture(scope="module", params=bundled_specs())
def lake(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """One lake per bundled spec with a generated batch committed."""
    s = _settings(tmp_path_factory.mktemp(request.param), request.param)
    table, raw = _land_generated(s)
    result = run_etl(s, now=NOW)
    return s, table, raw, result


def test_the_bundled_specs_are_the_two_examples() -> None:
    assert bundled_specs() == ["iot_readings", "machine_telemetry"]


def test_accounting_matches_what_was_injected(lake) -> None:
    _, _, raw, result = lake
    assert result.status == "committed"
    assert result.rows_in == len(raw.records)
    assert result.loaded == raw.clean_rows
    assert result.duplicates_dropped == raw.duplicates_dropped
    assert result.quarantined_by_reason == raw.expected_quarantine("jsonl")
    assert result.rows_in == result.loaded + result.quarantined + result.duplicates_dropped


@pytest.mark.parametrize("name", bundled_specs())
def test_csv_accounting_matches_too(tmp_path: Path, name: str) -> None:
    s = _settings(tmp_path, name)
    _, raw = _land_generated(s, fmt="csv", seed=9)
    result = run_etl(s, now=NOW)
    assert result.loaded == raw.clean_rows
    assert result.quarantined_by_reason == raw.expected_quarantine("csv")
    assert result.duplicates_dropped == raw.duplicates_dropped


def test_loaded_records_are_the_generated_ones(lake) -> None:
    """Every good record is loaded once, in canonical units, its id cleaned."""
    s, table, raw, _ = lake
    spec = spec_of(s)
    key, time = spec.entity.join_key, spec.event_time.column
    loaded = read_table(s, "readings").to_pylist()
    want = [table.slice(i, 1).to_pylist()[0] for i in raw.kept]
    order = lambda r: (r[key], r[time])  # noqa: E731
    loaded.sort(key=order)
    want.sort(key=order)
    assert len(loaded) == len(want)
    for got, exp in zip(loaded, want, strict=True):
        for col, value in exp.items():
            if isinstance(value, float):
                assert got[col] == pytest.approx(value, rel=1e-9, abs=1e-9), col
            else:
                assert got[col] == value, col


def _window_records(
    records: list[dict], spec: DatasetSpec, entity: str, end: datetime, window_s: int
) -> list[dict]:
    start = end - timedelta(seconds=window_s)
    return [r for r in records if start <= r[spec.event_time.column] < end]


def _brute(values: list[float], stat: str) -> float | None:
    if not values:
        return None if stat != "count" else 0
    if stat == "mean":
        return sum(values) / len(values)
    if stat == "std":
        if len(values) < 2:
            return None
        m = sum(values) / len(values)
        return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
    if stat == "min":
        return min(values)
    if stat == "max":
        return max(values)
    if stat == "sum":
        return sum(values)
    if stat == "count":
        return len(values)
    return values[-1]  # last: the newest value in the window


def test_aggregates_equal_a_brute_force_over_the_records(lake) -> None:
    """Every feature of every row recomputed from the loaded records by definition:
    the records of the entity with ``event_timestamp - window <= t < event_timestamp``."""
    s, *_ = lake
    spec = spec_of(s)
    key, time = spec.entity.join_key, spec.event_time.column
    by_entity: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(read_table(s, "readings").to_pylist(), key=lambda r: r[time]):
        by_entity[r[key]].append(r)
    rows = read_table(s, features_table(s)).to_pylist()
    assert rows
    a = spec.aggregations
    checked = 0
    for row in rows[:: max(1, len(rows) // 60)]:
        for w, text in a.windows.items():
            inside = _window_records(
                by_entity[row[key]], spec, row[key], row[TIMESTAMP], duration_s(text)
            )
            assert row[f"{a.row_count}_{w}"] == len(inside)
            for col in spec.aggregated:
                values = [float(r[col]) for r in inside if r[col] is not None]
                for stat in a.stats[col]:
                    want = _brute(values, stat)
                    got = row[f"{col}_{stat}_{w}"]
                    if want is None:
                        assert got is None, (col, stat, w)
                    else:
                        assert got == pytest.approx(want, rel=1e-9, abs=1e-6), (col, stat, w)
                    checked += 1
                assert row[f"{col}_count_{w}"] == len(values)
    assert checked > 100


def test_manifest_records_the_spec(lake) -> None:
    from mlops_kit.etl.lake import manifests
    from mlops_kit.etl.run import layout_of

    s, *_ = lake
    (manifest,) = manifests(layout_of(s))
    assert manifest["dataset"] == spec_of(s).lineage()


def test_the_feature_store_serves_each_dataset(lake) -> None:
    """Feast objects, materialization, a point-in-time training set and online reads,
    all from the spec."""
    from mlops_kit.features.catalog import catalog_of
    from mlops_kit.features.ops import labels_from_readings
    from mlops_kit.features.store import FeatureClient

    s, *_ = lake
    spec = spec_of(s)
    cat = catalog_of(s)
    client = FeatureClient(s)
    applied = client.apply()
    assert applied.entities == [spec.entity.name]
    assert applied.feature_views == [v.name for v in spec.views]
    assert applied.feature_services == [f"{spec.service.name}_v{v}" for v in spec.service.versions]
    assert client.materialize(end=NOW).status == "materialized"

    labels = labels_from_readings(s)
    assert labels.column_names == [spec.entity.join_key, TIMESTAMP, *spec.label_columns]
    ts = client.training_set(labels)
    acc = ts.accounting
    assert (
        acc["rows_in"]
        == labels.num_rows
        == acc["complete"] + acc["partial"] + acc["without_features"]
    )
    names = [r.split(":", 1)[1] for r in cat.service_features(1)]
    assert ts.table.column_names == [*labels.column_names, *names]
    rows = ts.table.to_pylist()
    # the on-demand features are the spec's expressions of the joined aggregates
    exprs = spec.expressions()
    for row in rows[:: max(1, len(rows) // 40)]:
        for name, expr in exprs.items():
            want = expr.value({n: row[n] for n in expr.names})
            if want is None:
                assert row[name] is None
            else:
                assert row[name] == pytest.approx(want), name

    # online: each entity's newest feature row
    features = read_table(s, features_table(s)).to_pylist()
    newest: dict[str, dict] = {}
    for r in sorted(features, key=lambda r: r[TIMESTAMP]):
        newest[r[spec.entity.join_key]] = r
    ids = sorted(newest)[:3]
    online = client.online([*ids, "nobody"])
    assert online.missing == ["nobody"]
    first_view = spec.views[0].name
    for name in list(cat.views[first_view].features)[:6]:
        assert online.columns[name][:3] == [newest[i][name] for i in ids], name
    client.close()


def test_training_sets_are_point_in_time_correct_for_each_dataset(lake) -> None:
    """Every joined feature equals the brute-force as-of join over the committed feature
    rows: the newest row of the entity with ``t - ttl <= event_timestamp <= t``."""
    from mlops_kit.features.catalog import catalog_of
    from mlops_kit.features.ops import labels_from_readings
    from mlops_kit.features.store import FeatureClient

    s, *_ = lake
    spec = spec_of(s)
    cat = catalog_of(s)
    key = spec.entity.join_key
    client = FeatureClient(s)
    client.apply()
    labels = labels_from_readings(s)
    # label times between feature rows too: a quarter of the grain later
    shifted = labels.set_column(
        1, TIMESTAMP, pa.compute.add(labels[TIMESTAMP], pa.scalar(timedelta(minutes=7)))
    )
    table = pa.concat_tables([labels, shifted])
    got = client.training_set(table, missing="keep").table.to_pylist()
    rows = read_table(s, features_table(s)).to_pylist()
    by_entity: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_entity[r[key]].append(r)
    checked = 0
    for row in got[:: max(1, len(got) // 80)]:
        for view in spec.views:
            ttl = timedelta(seconds=duration_s(view.ttl))
            cands = [
                r
                for r in by_entity[row[key]]
                if row[TIMESTAMP] - ttl <= r[TIMESTAMP] <= row[TIMESTAMP]
            ]
            best = max(cands, key=lambda r: r[TIMESTAMP], default=None)
            for name in list(cat.views[view.name].features)[:4]:
                want = best[name] if best else None
                assert row[name] == (pytest.approx(want) if isinstance(want, float) else want)
                checked += 1
    assert checked > 100
    client.close()
