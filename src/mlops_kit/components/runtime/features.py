"""Runtime of :mod:`mlops_kit.components.features`: apply, materialize, training sets."""

from __future__ import annotations

import os
from typing import Any

from mlops_kit import storage
from mlops_kit.components.runtime import parse_now, settings_from_json


def _settings(settings_json: str) -> Any:
    return settings_from_json(settings_json)


def features_apply_step(metrics: Any, settings_json: str = "{}") -> dict[str, Any]:
    """Check the processed data's schema and register the feature definitions.

    Args:
        metrics: output; ``feature_views`` and ``source_files`` (counts); metadata names
            the registry, the views, the on-demand views and the feature services.
        settings_json: settings overrides (see ``settings_from_json``).
    """
    from mlops_kit.features.ops import apply

    result = apply(_settings(settings_json))
    metrics.log_metric("feature_views", len(result["feature_views"]))
    metrics.log_metric("source_files", result["source_files"])
    metrics.metadata.update(result)
    return result


def features_materialize_step(
    metrics: Any, end: str = "", full: bool = False, settings_json: str = "{}"
) -> dict[str, Any]:
    """Incrementally materialize the feature views into the online store.

    Args:
        metrics: output; ``rows`` and ``rows_<view>``; metadata: status, end, views
            (window, rows and entities per view), etl_seq.
        end: event time to load up to, ISO 8601 ("": now).
        full: ignore the high-water marks.
        settings_json: settings overrides.
    """
    from mlops_kit.features.ops import materialize

    result = materialize(_settings(settings_json), parse_now(end), full=full)
    metrics.log_metric("rows", result["rows"])
    for view, info in result["views"].items():
        metrics.log_metric(f"rows_{view}", info["rows"])
    metrics.metadata.update(result)
    return result


def _labels_uri(labels: Any) -> str | None:
    if labels is None or not getattr(labels, "path", ""):
        return None
    path = labels.path
    if os.path.isdir(path):
        files = storage.list_files(path, ".parquet")
        if not files:
            from mlops_kit.features.errors import FeatureStoreError

            raise FeatureStoreError(f"the labels artifact {path} holds no Parquet file")
        return files[0]
    return str(path)


def features_training_set_step(
    training_set: Any,
    labels: Any = None,
    features: list[str] | None = None,
    missing: str = "",
    timestamp_column: str = "event_timestamp",
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Build a point-in-time-correct training set into a Dataset folder.

    Args:
        training_set: output folder with ``data.parquet`` and ``manifest.json``; metadata:
            the row accounting (rows_in, rows_out, complete, partial, without_features,
            dropped, kept_with_nulls, missing_policy), features, service, data_uri.
        labels: optional input; a Parquet file (or a folder with one) of label rows
            (default: labels from the processed readings).
        features: feature references ([]: the feature service).
        missing: keep or drop rows with no feature row ("": features.missing).
        timestamp_column: the label time column.
        settings_json: settings overrides.
    """
    from mlops_kit.features.ops import build_training_set

    settings = _settings(settings_json)
    manifest = build_training_set(
        settings,
        training_set.path,
        labels_uri=_labels_uri(labels),
        features=list(features or []) or None,
        missing=missing or None,
        timestamp_column=timestamp_column,
    )
    acc = manifest["accounting"]
    training_set.metadata.update(
        {
            **{k: v for k, v in acc.items() if not isinstance(v, dict)},
            "missing_by_view": acc["missing_by_view"],
            "features": manifest["features"],
            "service": manifest["service"] or "",
            "data_uri": manifest["data_uri"],
        }
    )
    return manifest
