"""Where the stores of a test live: ``local`` (files + DuckDB), ``s3`` (the lake on moto's
S3, DuckDB) or ``postgres`` (local files, the warehouse in PostgreSQL), each under fresh
names."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

BACKENDS = [
    "local",
    pytest.param("s3", marks=pytest.mark.aws),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


def backend_config(
    backend: str, root: Path, request: pytest.FixtureRequest, **extra: Any
) -> dict[str, Any]:
    """Settings (as a YAML-able dict) that put the stores of ``backend`` under fresh names;
    ``extra`` are further top-level settings (``dataset=...``)."""
    cfg: dict[str, Any] = {"home": str(root / "home"), **extra}
    if backend == "s3":
        import boto3

        endpoint = request.getfixturevalue("moto_endpoint")
        bucket = f"crash-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket=bucket
        )
        cfg.update(
            profile="aws",
            aws={"region": "us-east-1", "endpoint_url": endpoint},
            storage={"raw_uri": f"s3://{bucket}/raw", "processed_uri": f"s3://{bucket}/processed"},
            warehouse={"url": f"duckdb:///{root / 'wh.duckdb'}"},
        )
    elif backend == "postgres":
        import psycopg

        url = request.getfixturevalue("postgres_url")
        db = f"crash_{uuid.uuid4().hex[:12]}"
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute(f"CREATE DATABASE {db}")
        cfg["warehouse"] = {"url": url.rsplit("/", 1)[0] + "/" + db}
    else:
        assert backend == "local"
    return cfg
