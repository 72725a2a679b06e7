"""DynamoDB online writes: batches of ``features.online_write_batch`` items, throttled
items sent again with backoff, and a bound past which the table is named.

Every write goes over HTTP to moto's server through :mod:`tests.features.dynamo_proxy`,
which counts the items of each ``BatchWriteItem`` and, when asked, leaves some of them
unprocessed as DynamoDB does under throttling (moto never does).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops_kit.config import load_settings
from mlops_kit.features.errors import OnlineWriteThrottledError
from mlops_kit.features.store import FeatureClient

from .conftest import T0, feature_table, write_features
from .dynamo_proxy import throttling_proxy

pytestmark = pytest.mark.aws

DEVICES = [f"d{i:03d}" for i in range(23)]


def _client(root: Path, endpoint: str, batch: int, engine: str = "local") -> FeatureClient:
    settings = load_settings(
        home=root,
        aws={"endpoint_url": endpoint},
        features={
            "online_store": "dynamodb",
            "dynamodb_table": f"t{uuid.uuid4().hex[:8]}",
            "source_uri": str(root / "feature-rows"),
            "online_write_batch": batch,
            "engine": engine,
        },
    )
    client = FeatureClient(settings)
    rows = [(d, T0 + timedelta(hours=h)) for d in DEVICES for h in (1, 2)]
    write_features(client.placement.source_uri, feature_table(rows))
    return client


def _online_hours(client: FeatureClient) -> list[Any]:
    got = client.online(DEVICES, ["device_hourly:readings_1h"], fast=False)
    return got.columns["readings_1h"]


def test_writes_go_in_batches_of_the_setting(
    tmp_path: Path, moto_endpoint: str, engine: str
) -> None:
    with throttling_proxy(moto_endpoint, throttle=0) as proxy:
        client = _client(tmp_path, proxy.endpoint, batch=7, engine=engine)
        client.apply()
        result = client.materialize(T0 + timedelta(days=1))
        online = _online_hours(client)
    assert result.views["device_hourly"]["entities"] == len(DEVICES)
    # each view's 23 newest rows in batches of at most 7 (the Ray engine's writers may
    # split a view's rows between them, each in batches of 7)
    assert max(proxy.batch_sizes) == 7
    assert sum(proxy.batch_sizes) == 2 * len(DEVICES)
    if engine == "local":
        assert sorted(proxy.batch_sizes) == sorted([7, 7, 7, 2] * 2)
    # the second row of each device (rows are numbered device by device, hour by hour)
    assert online == [(2 * i + 1) * 7 + 2 for i in range(len(DEVICES))]


def test_unprocessed_items_are_sent_again(tmp_path: Path, moto_endpoint: str) -> None:
    """The first three BatchWriteItem calls keep only two items each: every entity is
    still online, after calls beyond one per batch."""
    with throttling_proxy(moto_endpoint, throttle=3, keep=2) as proxy:
        client = _client(tmp_path, proxy.endpoint, batch=25)
        client.apply()
        client.materialize(T0 + timedelta(days=1))
        online = _online_hours(client)
    assert online == [(2 * i + 1) * 7 + 2 for i in range(len(DEVICES))]
    assert proxy.throttled == 3
    assert len(proxy.batch_sizes) > 2  # one call per view, plus the retries


def test_throttling_past_the_bound_names_the_table(moto_endpoint: str) -> None:
    from mlops_kit.features.dynamo import write_items

    table = f"t{uuid.uuid4().hex[:8]}"
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "entity_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "entity_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    items = [{"entity_id": {"S": f"e{i}"}, "event_ts": {"S": "x"}} for i in range(30)]
    delays: list[float] = []
    with throttling_proxy(moto_endpoint, throttle=None, keep=1) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.endpoint, region_name="us-east-1")
        with pytest.raises(OnlineWriteThrottledError) as info:
            write_items(client, table, items, max_attempts=4, backoff_s=0.01, sleep=delays.append)
    err = info.value
    assert err.code == "FEATURE_ONLINE_WRITE_THROTTLED"
    assert f"'{table}'" in str(err) and "on-demand" in str(err)
    # the first batch of 25: one item taken per attempt, 21 left after the fourth
    assert err.details == {"table": table, "unprocessed": 21, "attempts": 4}
    assert proxy.batch_sizes == [25, 24, 23, 22]
    # exponential backoff with jitter: 0.01 doubling, each delay in [half, full]
    assert len(delays) == 3
    for i, d in enumerate(delays):
        assert 0.01 * 2**i / 2 <= d <= 0.01 * 2**i
    stored = ddb.scan(TableName=table)["Items"]
    assert len(stored) == 4
