"""Helpers of the feature store tests: small feature lakes written straight as Parquet, and
the hypothesis profiles of the point-in-time property tests.

The property tests run under :data:`PIT_PROFILE`: ``mlops-kit-pit`` (20 examples) on a
developer machine, ``mlops-kit-pit-ci`` (100 examples) when ``CI`` or
``MLOPS_KIT_REQUIRE_SERVICES`` (which ``.ci/run`` sets) is set to anything but
``0``/``false``/``no``/``off``. Both are derandomized (a fixed seed per test), so a run
checks the same examples every time and a failure found in CI replays locally with
``CI=1``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from mlops_kit import storage
from mlops_kit.config import Settings, load_settings
from mlops_kit.etl.layout import layout_for

FEATURES_SCHEMA = layout_for().features_schema

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

PIT_EXAMPLES = {"mlops-kit-pit": 20, "mlops-kit-pit-ci": 100}
"""Examples per point-in-time property test, by profile."""

for _name, _examples in PIT_EXAMPLES.items():
    hypothesis_settings.register_profile(
        _name,
        max_examples=_examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def in_ci(environ: Any = os.environ) -> bool:
    """Whether ``CI`` or ``MLOPS_KIT_REQUIRE_SERVICES`` (set by ``.ci/run``) is true."""
    for name in ("MLOPS_KIT_REQUIRE_SERVICES", "CI"):
        value = environ.get(name)
        if value is not None and value.strip().lower() not in ("", "0", "false", "no", "off"):
            return True
    return False


PIT_PROFILE = "mlops-kit-pit-ci" if in_ci() else "mlops-kit-pit"
"""The hypothesis profile the point-in-time property tests run under."""

PIT_SETTINGS = hypothesis_settings.get_profile(PIT_PROFILE)
"""Settings of :data:`PIT_PROFILE`, to decorate a test with (``@PIT_SETTINGS``)."""


def feature_table(keys: Iterable[tuple[str, datetime]]) -> pa.Table:
    """Rows of the processed schema; every value is a function of (row, column)."""
    keys = list(keys)
    cols: dict[str, Any] = {
        "device_id": [k[0] for k in keys],
        "event_timestamp": [k[1] for k in keys],
    }
    for j, field in enumerate(FEATURES_SCHEMA):
        if field.name in cols or field.name == "created_at":
            continue
        if pa.types.is_integer(field.type):
            cols[field.name] = [i * 7 + j for i in range(len(keys))]
        else:
            cols[field.name] = [round(i * 1.5 + j * 0.01 + 0.25, 6) for i in range(len(keys))]
    cols["created_at"] = [T0 + timedelta(days=30)] * len(keys)
    return pa.table(cols).cast(FEATURES_SCHEMA)


def write_features(source_uri: str, table: pa.Table, run: str = "t") -> list[str]:
    """Write ``table`` partitioned by day as the ETL does; returns the files."""
    import polars as pl

    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    day = (pl.col("event_timestamp") - pl.duration(hours=1)).dt.date()
    out = []
    for (d,), part in df.with_columns(day.alias("__d")).group_by(["__d"]):
        uri = storage.join(source_uri, f"date={d}", f"part-{run}.parquet")
        storage.write_parquet(uri, part.drop("__d").to_arrow().cast(FEATURES_SCHEMA))
        out.append(uri)
    return sorted(out)


ENGINES = ["local", pytest.param("ray", marks=pytest.mark.ray)]
"""The values of ``features.engine``; the Ray one on a local cluster of 2 CPUs."""


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray cluster of 2 CPUs for the tests of one module."""
    from mlops_kit.compute import ray_session

    ray = ray_session(load_settings(ray={"num_cpus": 2}))
    yield
    ray.shutdown()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each Feast compute engine in turn (``features.engine``)."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return str(request.param)


def local_settings(root: Path, **features: Any) -> Settings:
    return load_settings(home=root / "home", features=features)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("MLOPS_KIT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(tmp_path / "absent.yaml"))
