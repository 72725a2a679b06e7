"""Feast repository configuration generated from :class:`~mlops_kit.config.Settings`.

There is no ``feature_store.yaml`` to edit: :func:`repo_config_dict` derives it from the
typed settings, and ``mlops-kit features config`` prints it. Two shapes:

* embedded default (profile ``local``): SQLite online store (Feast's tables, each batch
  written with one upsert by :mod:`mlops_kit.features.sqlite_store` unless
  ``features.sqlite_writer`` is ``feast``), file offline store over the processed
  Parquet, file registry, all under ``<home>/features``;
* AWS: DynamoDB online store (``endpoint_url`` from ``aws.endpoints.dynamodb`` or
  ``aws.endpoint_url``; writes batched and retried by
  :mod:`mlops_kit.features.dynamo`), offline data as Parquet on S3
  (``s3_endpoint_override`` on the file source), registry on S3 or a SQL registry on
  PostgreSQL.

``features.engine`` picks Feast's compute: ``local`` (Feast's local engine and file
offline store, in this process) or ``ray`` (Feast's Ray compute engine and Ray offline
store, on the cluster of the ``ray`` settings; see :mod:`mlops_kit.features.ray_engine`).

This module never imports feast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_kit import storage
from mlops_kit.config import Settings

DYNAMODB_STORE = "mlops_kit.features.dynamo.BatchedDynamoDBOnlineStore"
SQLITE_STORE = "mlops_kit.features.sqlite_store.BatchedSqliteOnlineStore"
BROADCAST_JOIN_MB = 1 << 20
SQL_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://", "sqlite:///")


@dataclass(frozen=True)
class Placement:
    """Where each part of the feature store lives, resolved from settings."""

    project: str
    repo_path: str
    registry: str
    registry_type: str
    online_store: str
    online_path: str | None
    dynamodb_prefix: str | None
    source_uri: str
    state_uri: str
    region: str
    dynamodb_endpoint: str | None
    s3_endpoint: str | None
    staging_uri: str
    engine: str


def _features_home(settings: Settings) -> str:
    if settings.profile == "local" or not storage.is_s3(settings.storage.processed_uri or ""):
        return str(Path(settings.home).absolute() / "features")
    base = (settings.storage.processed_uri or "").rstrip("/").rsplit("/", 1)[0]
    return f"{base}/features"


def placement(settings: Settings) -> Placement:
    """Resolve every location of the feature store from ``settings``."""
    f = settings.features
    home = _features_home(settings)
    local_home = str(Path(settings.home).absolute() / "features")
    registry = f.registry or (
        f"{home}/registry.pb" if storage.is_s3(home) else str(Path(home) / "registry.db")
    )
    registry_type = "sql" if registry.startswith(SQL_SCHEMES) else "file"
    if registry_type == "file" and not storage.is_s3(registry) and "://" not in registry:
        registry = str(Path(registry).absolute())
    from mlops_kit.data.spec import spec_of

    table = spec_of(settings).feature_table
    source = f.source_uri or storage.join(settings.storage.processed_uri or "", table)
    if not storage.is_s3(source) and source.startswith("file://"):
        source = storage.resolve(source)[1]
    elif not storage.is_s3(source):
        source = str(Path(source).absolute())
    online_path = None
    if f.online_store == "sqlite":
        online_path = str(Path(f.online_path or Path(local_home) / "online.db").absolute())
    return Placement(
        project=f.project,
        repo_path=local_home,
        registry=registry,
        registry_type=registry_type,
        online_store=f.online_store,
        online_path=online_path,
        dynamodb_prefix=f.dynamodb_table,
        source_uri=source.rstrip("/"),
        state_uri=storage.join(settings.storage.state_uri or "", "features"),
        region=settings.aws.region,
        dynamodb_endpoint=settings.aws.endpoint_for("dynamodb"),
        s3_endpoint=settings.aws.endpoint_for("s3"),
        staging_uri=storage.join(home, "staging"),
        engine=f.engine,
    )


def repo_config_dict(settings: Settings) -> dict[str, Any]:
    """The Feast repository configuration (what ``feature_store.yaml`` would hold).

    Args:
        settings: the typed settings; nothing else is read.

    Returns:
        A dict accepted by ``feast.repo_config.RepoConfig(**d)``.
    """
    p = placement(settings)
    online: dict[str, Any]
    if p.online_store == "sqlite":
        online = {
            "type": SQLITE_STORE if settings.features.sqlite_writer == "batched" else "sqlite",
            "path": p.online_path,
        }
    else:
        online = {
            "type": DYNAMODB_STORE,
            "region": p.region,
            "table_name_template": f"{p.dynamodb_prefix}.{{table_name}}"
            if p.dynamodb_prefix
            else "{project}.{table_name}",
            "write_batch_size": settings.features.online_write_batch,
        }
        if p.dynamodb_endpoint:
            online["endpoint_url"] = p.dynamodb_endpoint
    registry: dict[str, Any] = {
        "registry_type": p.registry_type,
        "path": p.registry,
        "cache_ttl_seconds": 60,
    }
    if p.registry_type == "sql":
        registry["sqlalchemy_config_kwargs"] = {"pool_pre_ping": True}
    out: dict[str, Any] = {
        "project": p.project,
        "provider": "aws" if p.online_store == "dynamodb" else "local",
        "registry": registry,
        "online_store": online,
        "offline_store": {"type": "file"},
        "repo_path": p.repo_path,
        "entity_key_serialization_version": 3,
    }
    if p.engine == "ray":
        address = settings.ray.address
        out["batch_engine"] = {
            "type": "ray.engine",
            "ray_address": address,
            "max_workers": settings.ray.workers,
            # one writer at a time into SQLite's single-writer file; parallel on DynamoDB
            "write_concurrency": 1 if p.online_store == "sqlite" else settings.ray.workers,
        }
        out["offline_store"] = {
            "type": "ray",
            "ray_address": address,
            "storage_path": p.staging_uri,
            # Feast's windowed join (its choice above this size) matches a label only
            # with feature rows of the same clock hour; the broadcast join is a true
            # as-of join
            "broadcast_join_threshold_mb": BROADCAST_JOIN_MB,
        }
    return out


def registry_env(settings: Settings) -> dict[str, str]:
    """Environment Feast's S3 registry store reads its endpoint from (empty otherwise)."""
    p = placement(settings)
    if p.registry_type == "file" and storage.is_s3(p.registry) and p.s3_endpoint:
        return {"FEAST_S3_ENDPOINT_URL": p.s3_endpoint}
    return {}


def repo_config(settings: Settings) -> Any:
    """The ``feast.repo_config.RepoConfig`` of ``settings`` (imports feast).

    Raises:
        MissingExtraError: feast is not installed.
    """
    from mlops_kit._lazy import require

    require("feast", "the feature store")
    from feast.repo_config import RepoConfig

    os.environ.update(registry_env(settings))
    p = placement(settings)
    if not storage.is_s3(p.repo_path):
        os.makedirs(p.repo_path, exist_ok=True)
    return RepoConfig(**repo_config_dict(settings))
