"""SQL registry on a real PostgreSQL, the CLI, and the demo step on a real ETL lake."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from mlops_kit.config import load_settings
from mlops_kit.features.catalog import catalog_for
from mlops_kit.features.store import FeatureClient

from .conftest import T0, feature_table, write_features


@pytest.mark.postgres
def test_sql_registry_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    import psycopg

    db = f"feast_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
    url = postgres_url.rsplit("/", 1)[0] + f"/{db}"
    settings = load_settings(
        home=tmp_path, features={"registry": url, "source_uri": str(tmp_path / "feature-rows")}
    )
    client = FeatureClient(settings)
    write_features(client.placement.source_uri, feature_table([("a", T0 + timedelta(hours=1))]))
    applied = client.apply()
    assert applied.registry == url
    assert client.materialize(T0 + timedelta(hours=2)).status == "materialized"

    other = FeatureClient(settings)  # a second process's view of the same registry
    service = other.store.get_feature_service(catalog_for().service_name(1))
    assert service.tags == {"version": "1", "dataset": "iot_readings"}
    assert sorted(fv.name for fv in other.store.list_feature_views()) == [
        "device_daily",
        "device_hourly",
    ]
    assert other.online(["a"], ["readings_1h"], fast=False).columns["readings_1h"] == [0 * 7 + 2]
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables").fetchall()}
        views = conn.execute("SELECT feature_view_name FROM feature_views").fetchall()
        services = conn.execute("SELECT feature_service_name FROM feature_services").fetchall()
    assert {"feature_views", "feature_services", "entities"} <= tables
    assert sorted(r[0] for r in views) == ["device_daily", "device_hourly"]
    assert sorted(r[0] for r in services) == ["device_failure_v1", "device_failure_v2"]


def _readings():
    """The readings the lake is built from: 4 devices, every 5 minutes for 2 days from T0."""
    from iot_fleet import GeneratorConfig, generate_readings

    return generate_readings(GeneratorConfig(n_devices=4, steps=2 * 288, freq_s=300, seed=3))


def _raw(device: str, start: datetime, hours: int) -> pl.DataFrame:
    """The raw readings of ``device`` in ``[start, start + hours)``."""
    df = pl.from_arrow(_readings())
    assert isinstance(df, pl.DataFrame)
    end = start + timedelta(hours=hours)
    return df.filter(
        (pl.col("device_id") == device) & (pl.col("ts") >= start) & (pl.col("ts") < end)
    )


@pytest.fixture(scope="module")
def etl_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake written by the real ETL from synthetic readings (4 devices, 2 days)."""
    from iot_fleet import device_registry

    from mlops_kit.etl import run_etl, write_device_registry
    from mlops_kit.ingest.files import ingest_files

    home = tmp_path_factory.mktemp("etl") / "home"
    settings = load_settings(home=home)
    readings = _readings()
    write_device_registry(settings, device_registry(4))
    drop = home / "drop.parquet"
    drop.parent.mkdir(parents=True, exist_ok=True)
    import pyarrow.parquet as pq

    pq.write_table(readings, drop)
    ingest_files([str(drop)], settings.storage.raw_uri)
    assert run_etl(settings).status == "committed"
    return home


def test_demo_features_step(etl_home: Path) -> None:
    from mlops_kit.demo.flow import features_step

    out = features_step(load_settings(home=etl_home))
    assert out["apply"]["feature_services"] == ["device_failure_v1", "device_failure_v2"]
    assert out["materialize"]["status"] == "materialized"
    # 4 devices x 48 hours, in each view
    views = out["materialize"]["views"]
    assert {v: (views[v]["rows"], views[v]["entities"]) for v in views} == {
        "device_hourly": (192, 4),
        "device_daily": (192, 4),
    }
    assert out["materialize"]["rows"] == 384
    assert out["missing"] == ["device-unknown"]
    assert [r["device_id"] for r in out["rows"]] == [
        "dev-0000",
        "dev-0001",
        "dev-0002",
        "device-unknown",
    ]
    # the online values are those of the last hour (and day) of raw readings
    last_hour, last_day = T0 + timedelta(hours=47), T0 + timedelta(hours=24)
    for row in out["rows"][:3]:
        hour = _raw(row["device_id"], last_hour, 1)
        day = _raw(row["device_id"], last_day, 24)
        assert row["readings_1h"] == hour.height == 12
        assert row["temperature_mean_1h"] == pytest.approx(hour["temperature"].mean(), rel=1e-9)
        assert row["temperature_std_1h"] == pytest.approx(hour["temperature"].std(), rel=1e-9)
        delta = hour["temperature"].mean() - day["temperature"].mean()
        assert row["temperature_delta_1h_24h"] == pytest.approx(delta, rel=1e-9)
    assert out["rows"][3] == {"device_id": "device-unknown", **dict.fromkeys(out["features"])}
    newest = (T0 + timedelta(hours=48)).isoformat()
    fresh = out["freshness"]
    assert {v: (f["newest"], f["ttl_s"], f["stale"]) for v, f in fresh.items()} == {
        "device_hourly": (newest, 7200, True),
        "device_daily": (newest, 93600, True),
    }


def test_cli(etl_home: Path, tmp_path: Path) -> None:
    from mlops_kit.cli.features import features_app

    runner = CliRunner()
    home = ["--home", str(etl_home)]

    def run(*args: str) -> str:
        res = runner.invoke(features_app, [*args, *home], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        return res.output

    online = json.loads(run("config"))["online_store"]["type"]
    assert online == "mlops_kit.features.sqlite_store.BatchedSqliteOnlineStore"
    applied = json.loads(run("apply"))
    assert applied["feature_views"] == ["device_hourly", "device_daily"]
    assert applied["feature_services"] == ["device_failure_v1", "device_failure_v2"]
    run("materialize")
    again = json.loads(run("materialize"))
    assert (again["status"], again["rows"]) == ("noop", 0)
    got = json.loads(run("get", "dev-0001", "ghost", "-f", "readings_1h", "--json"))
    assert got == {
        "rows": [
            {"device_id": "dev-0001", "readings_1h": 12},
            {"device_id": "ghost", "readings_1h": None},
        ],
        "missing": ["ghost"],
        "missing_count": 1,
    }
    table = run("get", "dev-0001", "-f", "readings_1h")
    cells = [line.split("│") for line in table.splitlines() if "readings_1h" in line]
    assert [[c.strip() for c in row if c.strip()] for row in cells] == [["readings_1h", "12"]]

    manifest = json.loads(run("training-set", str(tmp_path / "ts"), "--missing", "drop"))
    # one label row per device and hour; the first hour of each device has no earlier
    # feature row (its features end at 01:00) and is dropped
    assert manifest["accounting"] == {
        "rows_in": 4 * 48,
        "complete": 4 * 47,
        "partial": 0,
        "without_features": 4,
        "missing_policy": "drop",
        "missing_by_view": {"device_daily": 4, "device_hourly": 4},
        "ttl_s": {"device_daily": 93600, "device_hourly": 7200},
        "dropped": 4,
        "kept_with_nulls": 0,
        "rows_out": 4 * 47,
    }
    data = pl.read_parquet(tmp_path / "ts" / "data.parquet")
    names = [f.split(":", 1)[1] for f in manifest["features"]]
    assert data.columns == ["device_id", "event_timestamp", "failure", *names]
    assert data.height == 188
    per_device = data.group_by("device_id").agg(pl.len(), pl.col("event_timestamp").min())
    assert sorted(per_device.rows()) == [
        (f"dev-000{i}", 47, T0 + timedelta(hours=1, minutes=55)) for i in range(4)
    ]
    # the label at 12:55 carries the features of the hour that ended at 12:00
    row = data.filter(
        (pl.col("device_id") == "dev-0001")
        & (pl.col("event_timestamp") == T0 + timedelta(hours=36, minutes=55))
    ).row(0, named=True)
    before = _raw("dev-0001", T0 + timedelta(hours=35), 1)
    assert row["readings_1h"] == before.height == 12
    assert row["temperature_mean_1h"] == pytest.approx(before["temperature"].mean(), rel=1e-9)
    # labels: the last reading of each hour after the first, failing if any reading failed
    raw = pl.from_arrow(_readings())
    assert isinstance(raw, pl.DataFrame)
    labels = (
        raw.group_by("device_id", pl.col("ts").dt.truncate("1h").alias("hour"))
        .agg(pl.col("ts").max().alias("event_timestamp"), pl.col("failure").max())
        .filter(pl.col("hour") > T0)
        .sort("device_id", "event_timestamp")
    )
    got = data.sort("device_id", "event_timestamp")
    assert (
        got.select("device_id", "event_timestamp", "failure").rows()
        == labels.select("device_id", "event_timestamp", "failure").rows()
    )
    assert got["failure"].sum() == labels["failure"].sum() > 0

    fresh = json.loads(run("freshness", "--json"))
    newest = (T0 + timedelta(hours=48)).isoformat()
    assert {v: (f["newest"], f["ttl_s"], f["stale"]) for v, f in fresh.items()} == {
        "device_hourly": (newest, 7200, True),
        "device_daily": (newest, 93600, True),
    }
    lines = run("freshness").splitlines()
    hourly = [c.strip() for c in next(ln for ln in lines if "device_hourly" in ln).split("│")]
    assert hourly[1:3] == ["device_hourly", newest] and hourly[4:6] == ["2.0 h", "True"]
