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
from mlops_kit.features.catalog import TIMESTAMP, service_name
from mlops_kit.features.store import feature_client_of


def apply(settings: Settings) -> dict[str, Any]:
    """Register the feature definitions (see :meth:`FeatureClient.apply`)."""
    return feature_client_of(settings).apply().to_dict()


def materialize(
    settings: Settings, end: datetime | None = None, *, full: bool = False
) -> dict[str, Any]:
    """Incrementally materialize into the online store (see :meth:`FeatureClient.materialize`)."""
    return feature_client_of(settings).materialize(end, full=full).to_dict()


def labels_from_readings(settings: Settings, every: str | None = None) -> pa.Table:
    """Label rows from the processed records: one per entity and ``every`` bucket.

    Each row is the join key, ``event_timestamp`` (the last record of the bucket) and
    each label of the dataset spec, aggregated over the bucket as the spec says
    (``max``: positive when any record is; ``last``: the newest record's value).

    Args:
        settings: whose dataset spec and lake to read.
        every: the bucket (default: the spec's aggregation grain).
    """
    import polars as pl

    from mlops_kit.data.spec import spec_of
    from mlops_kit.etl.run import READINGS, read_table

    spec = spec_of(settings)
    key, time = spec.entity.join_key, spec.event_time.column
    names = spec.label_columns
    table = read_table(settings, READINGS)
    readings = pl.from_arrow(table.select([key, time, *names]))
    assert isinstance(readings, pl.DataFrame)
    aggs = [pl.col(time).max().alias(TIMESTAMP)]
    for lab in spec.labels:
        col = pl.col(lab.column)
        agg = col.max() if lab.aggregate == "max" else col.sort_by(time).drop_nulls().last()
        aggs.append(agg.alias(lab.column))
    out = (
        readings.with_columns(
            pl.col(time).dt.truncate(every or spec.aggregations.grain).alias("__b")
        )
        .group_by([key, "__b"])
        .agg(*aggs)
        .drop("__b")
        .sort([key, TIMESTAMP])
    )
    schema = pa.schema(
        [
            pa.field(key, pa.string()),
            pa.field(TIMESTAMP, pa.timestamp("us", tz="UTC")),
            *[table.schema.field(n) for n in names],
        ]
    )
    return out.to_arrow().cast(schema)


def build_training_set(
    settings: Settings,
    out_uri: str,
    *,
    labels_uri: str | None = None,
    features: Sequence[str] | None = None,
    missing: str | None = None,
    timestamp_column: str = TIMESTAMP,
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
    client = feature_client_of(settings)
    ts = client.training_set(
        labels, features=features, missing=missing, timestamp_column=timestamp_column
    )
    key = client.catalog.join_key
    data_uri = storage.join(out_uri, "data.parquet")
    storage.write_parquet(data_uri, ts.table)
    manifest = {
        **ts.manifest(),
        "service": service_name(settings) if not features else None,
        "dataset": _lineage(settings),
        "data_uri": data_uri,
        "labels_uri": labels_uri or "readings (labels_from_readings)",
        "columns": ts.table.column_names,
        "label_columns": [c for c in labels.column_names if c not in (key, timestamp_column)],
    }
    storage.write_json(storage.join(out_uri, "manifest.json"), manifest)
    return manifest


def _lineage(settings: Settings) -> dict[str, Any]:
    from mlops_kit.data.spec import spec_of

    return spec_of(settings).lineage()


def get_online(
    settings: Settings, entities: Sequence[str], features: Sequence[str] | None = None
) -> dict[str, Any]:
    """Online values for ``entities`` as ``{"rows": [...], "missing": [...], "missing_count"}``."""
    res = feature_client_of(settings).online(entities, features)
    return {"rows": res.to_rows(), "missing": res.missing, "missing_count": res.missing_count}


def freshness(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Age of the newest online row per feature view (see :meth:`FeatureClient.freshness`)."""
    return feature_client_of(settings).freshness(now)
