"""One contract for online retrieval, run against SQLite and DynamoDB (moto over HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mlops_kit.config import load_settings
from mlops_kit.features.catalog import catalog_for
from mlops_kit.features.errors import UnknownFeatureError
from mlops_kit.features.store import FeatureClient

from .conftest import T0, feature_table, write_features

DEVICES = [f"dev-{i:03d}" for i in range(12)]
HOURS = 30


def _lake_rows() -> list[tuple[str, Any]]:
    rows = []
    for i, dev in enumerate(DEVICES):
        last = HOURS - (i % 4)  # devices stop reporting at different hours
        rows += [(dev, T0 + timedelta(hours=h)) for h in range(1, last + 1)]
    return rows


def _expected() -> dict[str, dict[str, Any]]:
    """The newest row of each device, as materialization must leave it online."""
    table = feature_table(_lake_rows())
    out: dict[str, dict[str, Any]] = {}
    for row in table.to_pylist():
        cur = out.get(row["device_id"])
        if cur is None or row["event_timestamp"] > cur["event_timestamp"]:
            out[row["device_id"]] = row
    return out


@pytest.fixture(scope="module", params=["sqlite", "dynamodb"])
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FeatureClient]:
    root: Path = tmp_path_factory.mktemp(f"online-{request.param}")
    # feature rows written straight as Parquet, in a folder the ETL does not manage
    features: dict[str, Any] = {
        "online_store": request.param,
        "source_uri": str(root / "feature-rows"),
    }
    aws: dict[str, Any] = {}
    if request.param == "dynamodb":
        features["dynamodb_table"] = f"t{uuid.uuid4().hex[:8]}"
        aws = {"endpoint_url": request.getfixturevalue("moto_endpoint")}
    settings = load_settings(home=root, features=features, aws=aws)
    c = FeatureClient(settings)
    write_features(c.placement.source_uri, feature_table(_lake_rows()))
    c.apply()
    result = c.materialize(T0 + timedelta(days=3))
    assert result.status == "materialized"
    yield c
    c.close()


def test_values_are_the_newest_rows(client: FeatureClient) -> None:
    expected = _expected()
    res = client.online(DEVICES)
    assert res.missing == []
    for i, dev in enumerate(DEVICES):
        for view in ("device_hourly", "device_daily"):
            for name in catalog_for().service_members(1)[view]:
                assert res.columns[name][i] == expected[dev][name], (dev, name)


def test_fast_path_equals_feast(client: FeatureClient) -> None:
    ids = [*DEVICES[:5], "ghost", DEVICES[0]]
    fast = client.online(ids, fast=True)
    feast = client.online(ids, fast=False)
    assert fast.columns.keys() == feast.columns.keys()
    for name in fast.columns:
        a, b = fast.columns[name], feast.columns[name]
        assert a == pytest.approx(b, nan_ok=True) if name != "device_id" else a == b, name
    assert fast.missing == feast.missing == ["ghost"]


@pytest.mark.parametrize("fast", [True, False])
def test_unknown_entities_are_explicit_nulls(client: FeatureClient, fast: bool) -> None:
    res = client.online(["nope-1", DEVICES[1], "nope-2"], ["temperature_mean_1h"], fast=fast)
    assert res.columns == {
        "device_id": ["nope-1", DEVICES[1], "nope-2"],
        "temperature_mean_1h": [None, _expected()[DEVICES[1]]["temperature_mean_1h"], None],
    }
    assert res.missing == ["nope-1", "nope-2"]
    assert res.missing_count == 2


@pytest.mark.parametrize("fast", [True, False])
def test_requested_features_only_in_request_order(client: FeatureClient, fast: bool) -> None:
    res = client.online([DEVICES[2]], ["vibration_max_24h", "device_hourly:readings_1h"], fast=fast)
    assert list(res.columns) == ["device_id", "vibration_max_24h", "readings_1h"]


@pytest.mark.parametrize("fast", [True, False])
def test_derived_features(client: FeatureClient, fast: bool) -> None:
    row = _expected()[DEVICES[3]]
    res = client.online([DEVICES[3]], ["temperature_delta_1h_24h", "voltage_range_24h"], fast=fast)
    assert res.columns["temperature_delta_1h_24h"][0] == pytest.approx(
        row["temperature_mean_1h"] - row["temperature_mean_24h"]
    )
    assert res.columns["voltage_range_24h"][0] == pytest.approx(
        row["voltage_max_24h"] - row["voltage_mean_24h"]
    )


def test_unknown_feature_fails_with_the_list(client: FeatureClient) -> None:
    with pytest.raises(UnknownFeatureError, match="device_daily:rpm_max_24h"):
        client.online(DEVICES[:1], ["rpm_max_1d"])


def test_empty_batch(client: FeatureClient) -> None:
    assert client.online([], ["readings_1h"]).to_rows() == []


def test_freshness(client: FeatureClient) -> None:
    fresh = client.freshness(now=T0 + timedelta(hours=HOURS + 1))
    assert fresh["device_hourly"]["newest"] == (T0 + timedelta(hours=HOURS)).isoformat()
    assert fresh["device_hourly"]["age_s"] == 3600.0
    assert not fresh["device_hourly"]["stale"]
    assert fresh["device_daily"]["ttl_s"] == 93600
