"""Import cost and repo configuration generated from settings (no Feast import needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops_kit.config import load_settings
from mlops_kit.errors import ConfigError
from mlops_kit.features.catalog import catalog_for
from mlops_kit.features.config import placement, registry_env, repo_config_dict
from mlops_kit.features.errors import UnknownFeatureError


def _imports_feast(code: str) -> bool:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('feast' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1] == "True"


def test_light_modules_do_not_import_feast() -> None:
    code = (
        "import mlops_kit, mlops_kit.features, mlops_kit.features.catalog, "
        "mlops_kit.features.config, mlops_kit.features.errors, mlops_kit.cli.features\n"
        "from mlops_kit.features import FeatureClient, repo_config_dict\n"
        "from mlops_kit import load_settings\n"
        "c = FeatureClient(load_settings(home='/tmp/x'))\n"
        "repo_config_dict(c.settings)"
    )
    assert not _imports_feast(code)


def test_local_config(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path)
    cfg = repo_config_dict(s)
    assert cfg["online_store"] == {
        "type": "mlops_kit.features.sqlite_store.BatchedSqliteOnlineStore",
        "path": str(tmp_path / "features/online.db"),
    }
    assert cfg["offline_store"] == {"type": "file"}
    assert cfg["registry"]["registry_type"] == "file"
    assert cfg["registry"]["path"] == str(tmp_path / "features/registry.db")
    assert placement(s).source_uri == str(tmp_path / "lake/processed/device_features_hourly")
    assert registry_env(s) == {}


def test_aws_config_with_s3_registry() -> None:
    s = load_settings(
        profile="aws",
        storage={"raw_uri": "s3://b/raw", "processed_uri": "s3://b/processed"},
        warehouse={"url": "postgresql+psycopg://u@h:5432/db"},
        aws={"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:5000"},
        features={"online_store": "dynamodb", "dynamodb_table": "acme-features"},
    )
    cfg = repo_config_dict(s)
    assert cfg["provider"] == "aws"
    assert cfg["online_store"] == {
        "type": "mlops_kit.features.dynamo.BatchedDynamoDBOnlineStore",
        "region": "eu-west-1",
        "table_name_template": "acme-features.{table_name}",
        "write_batch_size": 25,
        "endpoint_url": "http://127.0.0.1:5000",
    }
    assert cfg["registry"] == {
        "registry_type": "file",
        "path": "s3://b/features/registry.pb",
        "cache_ttl_seconds": 60,
    }
    assert placement(s).source_uri == "s3://b/processed/device_features_hourly"
    assert registry_env(s) == {"FEAST_S3_ENDPOINT_URL": "http://127.0.0.1:5000"}


def test_ray_engine_config(tmp_path: Path) -> None:
    """features.engine: ray selects Feast's Ray compute engine and Ray offline store."""
    local = repo_config_dict(load_settings(home=tmp_path))
    assert "batch_engine" not in local and local["offline_store"] == {"type": "file"}
    s = load_settings(
        home=tmp_path,
        features={"engine": "ray"},
        ray={"address": "ray://head:10001", "workers": 3},
    )
    cfg = repo_config_dict(s)
    assert cfg["batch_engine"] == {
        "type": "ray.engine",
        "ray_address": "ray://head:10001",
        "max_workers": 3,
        "write_concurrency": 1,  # SQLite takes one writer
    }
    assert cfg["offline_store"] == {
        "type": "ray",
        "ray_address": "ray://head:10001",
        "storage_path": str(tmp_path / "features/staging"),
        "broadcast_join_threshold_mb": 1 << 20,
    }
    dynamo = load_settings(
        home=tmp_path,
        features={"engine": "ray", "online_store": "dynamodb", "online_write_batch": 10},
        ray={"workers": 4},
    )
    cfg = repo_config_dict(dynamo)
    assert cfg["batch_engine"]["write_concurrency"] == 4
    assert cfg["online_store"]["write_batch_size"] == 10
    pytest.importorskip("feast")
    from feast.repo_config import RepoConfig

    from mlops_kit.features.dynamo import BatchedDynamoDBOnlineStoreConfig

    repo = RepoConfig(**cfg)
    assert isinstance(repo.online_store, BatchedDynamoDBOnlineStoreConfig)
    assert repo.batch_engine.write_concurrency == 4
    assert repo.offline_store.type == "ray"


def test_sql_registry_config(tmp_path: Path) -> None:
    url = "postgresql+psycopg://feast@db:5432/feast"
    cfg = repo_config_dict(load_settings(home=tmp_path, features={"registry": url}))
    assert cfg["registry"]["registry_type"] == "sql"
    assert cfg["registry"]["path"] == url


def test_feature_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"features\.missing"):
        load_settings(features={"missing": "ignore"})
    with pytest.raises(ConfigError, match=r"features\.registry_path"):
        load_settings(features={"registry_path": "x"})


def test_unknown_feature_lists_available() -> None:
    catalog = catalog_for()
    with pytest.raises(UnknownFeatureError) as info:
        catalog.resolve_features(["temperature_mean_1h", "bogus"], 1)
    assert info.value.unknown == ["bogus"]
    assert "device_hourly:temperature_mean_1h" in str(info.value)
    assert catalog.resolve_features(["temperature_mean_1h"], 1) == [
        "device_hourly:temperature_mean_1h"
    ]
    assert len(catalog.resolve_features(None, 1)) == 19 + 19 + 4
    with pytest.raises(ValueError, match="known versions are 1"):
        catalog.service_name(7)
