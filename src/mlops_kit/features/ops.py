"""The feature store operations as plain functions of settings (JSON-friendly results).

The CLI (``mlops-kit features ...``) and the KFP components call these.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from mlops_kit import storage
from mlops_kit.config import Settings
from mlops_kit.features import catalog
from mlops_kit.features.store import FeatureClient, get_client


def apply(settings: Settings) -> dict[str, Any]:
    """Register the feature definitions (see :meth:`FeatureClient.apply`)."""
    return get_client(settings).apply().to_dict()


def materialize(
    settings: Settings, end: datetime | None = None, *, full: bool = False
) -> dict[str, Any]:
    """Incrementally materialize into the online store (see :meth:`FeatureClient.materialize`)."""
    return get_client(settings).materialize(end, full=full).to_dict()


def labels_from_readings(settings: Settings, every: str = "1h") -> pa.Table:
    """Label rows from the processed readings: one per device and ``every`` bucket.

    Each row is ``device_id``, ``event_timestamp`` (the last reading of the bucket) and
    ``failure`` (1 when any reading of the bucket reported a failure).
    """
    import polars as pl

    from mlops_kit.etl.run import READINGS, read_table

    readings = pl.from_arrow(read_table(settings, READINGS).select(["device_id", "ts", "failure"]))
    assert isinstance(readings, pl.DataFrame)
    out = (
        readings.with_columns(pl.col("ts").dt.truncate(every).alias("__b"))
        .group_by(["device_id", "__b"])
        .agg(
            pl.col("ts").max().alias(catalog.TIMESTAMP),
            pl.col("failure").max().cast(pl.Int8).alias("failure"),
        )
        .drop("__b")
        .sort(["device_id", catalog.TIMESTAMP])
    )
    return out.to_arrow().cast(
        pa.schema(
            [
                pa.field("device_id", pa.string()),
                pa.field(catalog.TIMESTAMP, pa.timestamp("us", tz="UTC")),
                pa.field("failure", pa.int8()),
            ]
        )
    )


def build_training_set(
    settings: Settings,
    out_uri: str,
    *,
    labels_uri: str | None = None,
    features: Sequence[str] | None = None,
    missing: str | None = None,
    timestamp_column: str = catalog.TIMESTAMP,
) -> dict[str, Any]:
    """Write a point-in-time-correct training set and its manifest.

    Args:
        settings: the feature store's settings.
        out_uri: folder (local or ``s3://``) receiving ``data.parquet`` and ``manifest.json``.
        labels_uri: Parquet file of label rows (``device_id``, timestamp, labels); default:
            :func:`labels_from_readings`.
        features: feature references (default: the service of ``features.service_version``).
        missing: ``keep`` or ``drop`` rows without features (default ``features.missing``).
        timestamp_column: the label time column.

    Returns:
        The manifest: ``features``, ``accounting``, ``service``, ``data_uri``, ``labels_uri``.
    """
    storage.configure_from_settings(settings)
    labels = storage.read_parquet(labels_uri) if labels_uri else labels_from_readings(settings)
    ts = get_client(settings).training_set(
        labels, features=features, missing=missing, timestamp_column=timestamp_column
    )
    data_uri = storage.join(out_uri, "data.parquet")
    storage.write_parquet(data_uri, ts.table)
    manifest = {
        **ts.manifest(),
        "service": catalog.service_name(settings.features.service_version)
        if not features
        else None,
        "data_uri": data_uri,
        "labels_uri": labels_uri or "readings (labels_from_readings)",
        "columns": ts.table.column_names,
    }
    storage.write_json(storage.join(out_uri, "manifest.json"), manifest)
    return manifest


def get_online(
    settings: Settings, entities: Sequence[str], features: Sequence[str] | None = None
) -> dict[str, Any]:
    """Online values for ``entities`` as ``{"rows": [...], "missing": [...], "missing_count"}``."""
    res = get_client(settings).online(entities, features)
    return {"rows": res.to_rows(), "missing": res.missing, "missing_count": res.missing_count}


def freshness(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Age of the newest online row per feature view (see :meth:`FeatureClient.freshness`)."""
    return get_client(settings).freshness(now)


def demo_step(settings: Settings, devices: Sequence[str] | None = None) -> dict[str, Any]:
    """Apply, materialize and look up a few devices online; returns what to print.

    Returns:
        ``{"apply": ..., "materialize": ..., "features": [...], "rows": [...],
        "missing": [...], "freshness": ...}``.
    """
    import warnings

    client = FeatureClient(settings)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="On demand feature view is an experimental")
        applied = client.apply()
        mat = client.materialize()
    if devices is None:
        from mlops_kit.etl.run import FEATURES, read_table

        ids = read_table(settings, FEATURES).column("device_id").unique().to_pylist()
        devices = [*sorted(ids)[:3], "dev-unknown"]
    shown = [
        "device_hourly:readings_1h",
        "device_hourly:temperature_mean_1h",
        "device_hourly:vibration_max_1h",
        "device_daily:temperature_mean_24h",
        "device_derived:temperature_zscore_1h",
    ]
    res = client.online(list(devices), shown)
    fresh = client.freshness()
    client.close()
    return {
        "apply": applied.to_dict(),
        "materialize": mat.to_dict(),
        "features": [s.split(":", 1)[1] for s in shown],
        "rows": res.to_rows(),
        "missing": res.missing,
        "freshness": fresh,
    }
