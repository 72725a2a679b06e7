"""Training sets: point-in-time correctness against a brute-force reference join."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_kit import storage
from mlops_kit.config import load_settings
from mlops_kit.features import catalog
from mlops_kit.features.errors import SchemaDriftError, UnknownFeatureError
from mlops_kit.features.store import FeatureClient

from .conftest import T0, feature_table, write_features

DEVICES = ["a", "b", "c"]
REFS = [
    "device_hourly:temperature_mean_1h",
    "device_hourly:readings_1h",
    "device_daily:vibration_max_24h",
    "device_derived:temperature_delta_1h_24h",
]
TTL = {"device_hourly": timedelta(hours=2), "device_daily": timedelta(hours=26)}


def reference(features: pa.Table, labels: list[dict[str, Any]], missing: str) -> list[dict]:
    """Brute force: per label and view, the newest feature row in [t - ttl, t]."""
    rows = features.to_pylist()
    out = []
    for lab in labels:
        got: dict[str, Any] = {}
        covered = 0
        for view, ttl in TTL.items():
            cands = [
                r
                for r in rows
                if r["device_id"] == lab["device_id"]
                and lab["event_timestamp"] - ttl <= r["event_timestamp"] <= lab["event_timestamp"]
            ]
            best = max(cands, key=lambda r: r["event_timestamp"]) if cands else None
            covered += best is not None
            for ref in REFS:
                v, name = ref.split(":")
                if v == view:
                    got[name] = best[name] if best else None
                    if best is not None:
                        assert best["event_timestamp"] <= lab["event_timestamp"]
            got[f"__{view}"] = best
        h, d = got.pop("__device_hourly"), got.pop("__device_daily")
        got["temperature_delta_1h_24h"] = (
            h["temperature_mean_1h"] - d["temperature_mean_24h"] if h and d else None
        )
        if covered == 0 and missing == "drop":
            continue
        out.append({**lab, **got})
    return out


def _client(home: Path, source: str, **extra: Any) -> FeatureClient:
    s = load_settings(
        home=home,
        features={"source_uri": source, "hourly_ttl_s": 7200, "daily_ttl_s": 93600},
        **extra,
    )
    return FeatureClient(s)


def _compare(got: pa.Table, want: list[dict]) -> None:
    rows = got.to_pylist()
    assert len(rows) == len(want)
    for g, w in zip(rows, want, strict=True):
        for key, value in w.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value), key
            else:
                assert g[key] == value, key


feature_keys = st.sets(
    st.tuples(st.sampled_from(DEVICES), st.integers(min_value=0, max_value=72 * 4)),
    min_size=1,
    max_size=40,
)
label_rows = st.lists(
    st.tuples(
        st.sampled_from([*DEVICES, "ghost"]),
        st.integers(min_value=-8, max_value=80 * 4),
        st.integers(min_value=0, max_value=1),
    ),
    min_size=1,
    max_size=25,
)


def _tables(keys: set[tuple[str, int]], labs: list[tuple[str, int, int]]) -> tuple[pa.Table, list]:
    feats = feature_table(sorted((d, T0 + timedelta(minutes=15 * q)) for d, q in keys))
    labels = [
        {"device_id": d, "event_timestamp": T0 + timedelta(minutes=15 * q), "label": y}
        for d, q, y in labs
    ]
    return feats, labels


def _labels_table(labels: list[dict]) -> pa.Table:
    return pa.table(
        {
            "device_id": pa.array([r["device_id"] for r in labels], pa.string()),
            "event_timestamp": pa.array(
                [r["event_timestamp"] for r in labels], pa.timestamp("us", tz="UTC")
            ),
            "label": pa.array([r["label"] for r in labels], pa.int64()),
        }
    )


def _check(client: FeatureClient, feats: pa.Table, labels: list[dict], missing: str) -> None:
    client.apply()
    ts = client.training_set(_labels_table(labels), features=REFS, missing=missing)
    want = reference(feats, labels, missing)
    _compare(ts.table, want)
    acc = ts.accounting
    assert acc["rows_in"] == len(labels)
    assert acc["complete"] + acc["partial"] + acc["without_features"] == acc["rows_in"]
    assert acc["rows_out"] == len(want) == acc["rows_in"] - acc["dropped"]
    if missing == "keep":
        assert acc["kept_with_nulls"] == acc["without_features"] and acc["dropped"] == 0
    else:
        assert acc["dropped"] == acc["without_features"] and acc["kept_with_nulls"] == 0


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(keys=feature_keys, labs=label_rows, missing=st.sampled_from(["keep", "drop"]))
def test_matches_reference_locally(tmp_path: Path, keys: Any, labs: Any, missing: str) -> None:
    feats, labels = _tables(keys, labs)
    run = uuid.uuid4().hex[:8]
    source = str(tmp_path / run / "device_features_hourly")
    write_features(source, feats)
    _check(_client(tmp_path / run, source), feats, labels, missing)


@pytest.mark.aws
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(keys=feature_keys, labs=label_rows)
def test_matches_reference_on_s3(
    tmp_path: Path, s3_bucket: str, moto_endpoint: str, keys: Any, labs: Any
) -> None:
    feats, labels = _tables(keys, labs)
    source = f"s3://{s3_bucket}/{uuid.uuid4().hex[:8]}/device_features_hourly"
    write_features(source, feats)
    client = _client(tmp_path / uuid.uuid4().hex[:8], source, aws={"endpoint_url": moto_endpoint})
    assert client.definitions.source.s3_endpoint_override == moto_endpoint
    _check(client, feats, labels, "keep")


def test_no_leakage_on_etl_output(tmp_path: Path) -> None:
    """Labels at the very end of an hour get that hour's row, a second earlier the one before."""
    feats = feature_table([("a", T0 + timedelta(hours=h)) for h in range(1, 6)])
    source = str(tmp_path / "src")
    write_features(source, feats)
    client = _client(tmp_path, source)
    client.apply()
    at = T0 + timedelta(hours=3)
    labels = _labels_table(
        [
            {"device_id": "a", "event_timestamp": at, "label": 1},
            {"device_id": "a", "event_timestamp": at - timedelta(seconds=1), "label": 0},
        ]
    )
    ts = client.training_set(labels, features=["readings_1h"])
    by_hour = {r["event_timestamp"]: r["readings_1h"] for r in feats.to_pylist()}
    assert ts.table["readings_1h"].to_pylist() == [by_hour[at], by_hour[at - timedelta(hours=1)]]


def test_bad_inputs(tmp_path: Path) -> None:
    source = str(tmp_path / "src")
    write_features(source, feature_table([("a", T0 + timedelta(hours=1))]))
    client = _client(tmp_path, source)
    with pytest.raises(UnknownFeatureError, match="Available features"):
        client.training_set(_labels_table([]), features=["nope"])
    with pytest.raises(Exception, match="need columns"):
        client.training_set(pa.table({"device": ["a"]}))
    empty = client.training_set(_labels_table([]), features=["readings_1h"])
    assert empty.table.num_rows == 0 and empty.accounting["rows_out"] == 0


def test_schema_drift_fails_apply_and_materialize(tmp_path: Path) -> None:
    source = str(tmp_path / "src")
    good = feature_table([("a", T0 + timedelta(hours=1))])
    write_features(source, good)
    bad = good.set_column(
        good.schema.get_field_index("vibration_max_24h"),
        "vibration_max_24h",
        pa.array(["high"], pa.string()),
    )
    storage.write_parquet(f"{source}/date=2026-01-02/part-bad.parquet", bad)
    client = _client(tmp_path, source)
    for op in (client.apply, client.materialize):
        with pytest.raises(SchemaDriftError) as info:
            op()
        msg = str(info.value)
        assert "'vibration_max_24h'" in msg and "string" in msg and "double" in msg


def test_materialize_is_incremental(tmp_path: Path) -> None:
    source = str(tmp_path / "src")
    write_features(
        source, feature_table([(d, T0 + timedelta(hours=h)) for d in "ab" for h in (1, 2)])
    )
    client = _client(tmp_path, source)
    client.apply()
    first = client.materialize(T0 + timedelta(hours=3))
    assert first.status == "materialized"
    assert first.views["device_hourly"]["rows"] == 4
    assert first.views["device_hourly"]["entities"] == 2
    assert client.materialize(T0 + timedelta(hours=3)).status == "noop"
    write_features(source, feature_table([("a", T0 + timedelta(hours=3))]), run="later")
    second = client.materialize(T0 + timedelta(hours=4))
    assert second.views["device_hourly"]["start"] == (T0 + timedelta(hours=3)).isoformat()
    assert second.views["device_hourly"]["rows"] == 1
    state = client.materialization_state()
    assert state["views"]["device_hourly"]["end"] == (T0 + timedelta(hours=4)).isoformat()
    online = client.online(["a", "b"], ["readings_1h"])
    assert online.columns["readings_1h"] == [0 * 7 + 2, 3 * 7 + 2]  # rows "later"/0 and b@2h
    assert isinstance(datetime.fromisoformat(second.end), datetime)
    assert catalog.JOIN_KEY in online.columns
