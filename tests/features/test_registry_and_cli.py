"""SQL registry on a real PostgreSQL, the CLI, and the demo step on a real ETL lake."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_kit.config import load_settings
from mlops_kit.features import catalog
from mlops_kit.features.store import FeatureClient

from .conftest import T0, feature_table, write_features


@pytest.mark.postgres
def test_sql_registry_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    import psycopg

    db = f"feast_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
    url = postgres_url.rsplit("/", 1)[0] + f"/{db}"
    settings = load_settings(home=tmp_path, features={"registry": url})
    client = FeatureClient(settings)
    write_features(client.placement.source_uri, feature_table([("a", T0 + timedelta(hours=1))]))
    applied = client.apply()
    assert applied.registry == url
    assert client.materialize(T0 + timedelta(hours=2)).status == "materialized"

    other = FeatureClient(settings)  # a second process's view of the same registry
    service = other.store.get_feature_service(catalog.service_name(1))
    assert service.tags == {"version": "1"}
    assert sorted(fv.name for fv in other.store.list_feature_views()) == [
        "device_daily",
        "device_hourly",
    ]
    assert other.online(["a"], ["readings_1h"], fast=False).columns["readings_1h"] == [0 * 7 + 2]
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables").fetchall()}
    assert {"feature_views", "feature_services", "entities"} <= tables


@pytest.fixture(scope="module")
def etl_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake written by the real ETL from synthetic readings (4 devices, 2 days)."""
    from mlops_kit.data.synthetic import GeneratorConfig, device_registry, generate_readings
    from mlops_kit.etl import run_etl, write_device_registry
    from mlops_kit.ingest.files import ingest_files

    home = tmp_path_factory.mktemp("etl") / "home"
    settings = load_settings(home=home)
    readings = generate_readings(GeneratorConfig(n_devices=4, steps=2 * 288, freq_s=300, seed=3))
    write_device_registry(settings, device_registry(4))
    drop = home / "drop.parquet"
    drop.parent.mkdir(parents=True, exist_ok=True)
    import pyarrow.parquet as pq

    pq.write_table(readings, drop)
    ingest_files([str(drop)], settings.storage.raw_uri)
    assert run_etl(settings).status == "committed"
    return home


def test_demo_step(etl_home: Path) -> None:
    from mlops_kit.features import demo_step

    out = demo_step(load_settings(home=etl_home))
    assert out["apply"]["feature_services"] == ["device_failure_v1", "device_failure_v2"]
    assert out["materialize"]["status"] == "materialized"
    assert out["missing"] == ["dev-unknown"]
    assert [r["device_id"] for r in out["rows"]][:3] == ["dev-0000", "dev-0001", "dev-0002"]
    assert all(r["readings_1h"] for r in out["rows"][:3])
    assert set(out["freshness"]) == {"device_hourly", "device_daily"}


def test_cli(etl_home: Path, tmp_path: Path) -> None:
    from mlops_kit.cli.features import features_app

    runner = CliRunner()
    home = ["--home", str(etl_home)]

    def run(*args: str) -> str:
        res = runner.invoke(features_app, [*args, *home], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        return res.output

    assert json.loads(run("config"))["online_store"]["type"] == "sqlite"
    assert json.loads(run("apply"))["feature_views"] == ["device_hourly", "device_daily"]
    run("materialize")
    assert json.loads(run("materialize"))["status"] == "noop"
    got = json.loads(run("get", "dev-0001", "ghost", "-f", "readings_1h", "--json"))
    assert got["missing"] == ["ghost"] and got["rows"][1]["readings_1h"] is None
    assert "readings_1h" in run("get", "dev-0001", "-f", "readings_1h")
    manifest = json.loads(run("training-set", str(tmp_path / "ts"), "--missing", "drop"))
    acc = manifest["accounting"]
    assert acc["rows_out"] == acc["rows_in"] - acc["dropped"]
    assert acc["dropped"] == acc["without_features"] > 0  # each device's first hour
    assert (tmp_path / "ts" / "data.parquet").is_file()
    assert "device_hourly" in run("freshness")
