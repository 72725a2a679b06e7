"""What the pipeline components run: one function per component, on plain artifact objects.

A component module declares a typed interface only; its body imports one function of this
module and calls it with its artifacts and parameters. The functions here turn the
``settings_json`` parameter into :class:`~mlops_kit.config.Settings`, call the library
(:mod:`mlops_kit.ingest`, :mod:`mlops_kit.etl.run`), write the output artifacts and fill
their metadata. They never import kfp: an artifact is anything with a ``path`` (str) and
a ``metadata`` (dict), and a metrics artifact also has ``log_metric(name, value)``, so the
steps can be called and tested without a pipeline.

Artifacts written:

* ``landed`` (ingest steps): a JSON list of the raw-zone objects landed, each
  ``{"uri", "source", "sha256", "size", "format", "created"}``.
* ``batch`` / ``checked``: a :class:`~mlops_kit.etl.run.Batch` folder (``rows.parquet``,
  ``quarantine.parquet``, ``batch.json``). A batch with no run id and no inputs is the
  *empty batch* of a run that found nothing new (metadata ``status: noop``); the steps
  after it do nothing.
* ``report``: the quality report as one self-contained HTML page.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, Protocol

from mlops_kit import storage
from mlops_kit.config import Settings, load_settings
from mlops_kit.errors import ConfigError, IngestionError

MAX_LISTED = 100
"""Longest list of URIs put in an artifact's metadata (the artifact itself holds all)."""

NOOP = "noop"
ACCOUNTING_METRICS = ("rows_in", "loaded", "quarantined", "duplicates_dropped", "quarantine_rate")
"""The metrics every ETL step logs; ``rows_in = loaded + quarantined + duplicates_dropped``."""


class ArtifactLike(Protocol):
    """What a step needs of a KFP artifact."""

    path: str
    metadata: dict[str, Any]


class MetricsLike(ArtifactLike, Protocol):
    """What a step needs of a KFP ``Metrics`` artifact."""

    def log_metric(self, metric: str, value: float) -> None: ...


def settings_from_json(settings_json: str) -> Settings:
    """Settings from a JSON object of :func:`~mlops_kit.config.load_settings` overrides.

    ``""`` or ``"{}"`` takes every value from the environment (``MLOPS_KIT_*``), the
    config file and the defaults, as in a cluster pod.

    Args:
        settings_json: e.g. ``'{"home": "/data", "quality": {"max_quarantine_rate": 0.1}}'``.

    Raises:
        ConfigError: the text is not a JSON object, or a setting is invalid.
    """
    text = (settings_json or "").strip() or "{}"
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"settings_json is not valid JSON ({exc}): pass a JSON object of settings "
            'overrides, e.g. \'{"home": "/data/mlops_kit"}\', or "{}" for the environment'
        ) from None
    if not isinstance(overrides, dict):
        raise ConfigError(
            f"settings_json must be a JSON object of settings overrides, got "
            f'{type(overrides).__name__}: e.g. \'{{"profile": "aws"}}\''
        )
    settings = load_settings(**overrides)
    storage.configure_from_settings(settings)
    return settings


def _listed(uris: Iterable[str]) -> list[str]:
    return list(uris)[:MAX_LISTED]


def _write_landed(landed: ArtifactLike, kind: str, source: str, objects: list[Any]) -> None:
    rows = [obj.to_dict() for obj in objects]
    storage.write_json(landed.path, rows)
    landed.metadata.update(
        {
            "kind": kind,
            "source": source,
            "objects": len(rows),
            "created": sum(1 for r in rows if r["created"]),
            "bytes": sum(int(r["size"]) for r in rows),
            "uris": _listed(r["uri"] for r in rows),
        }
    )


def read_landed(landed: ArtifactLike | None) -> list[dict[str, Any]]:
    """The raw objects listed by a ``landed`` artifact (``[]`` for ``None``)."""
    if landed is None or not getattr(landed, "path", None) or not os.path.exists(landed.path):
        return []
    rows = storage.read_json(landed.path)
    return list(rows) if isinstance(rows, list) else []


# --------------------------------------------------------------------------- ingestion


def _supported(uri: str) -> bool:
    from mlops_kit.ingest.files import detect_format

    try:
        detect_format(uri)
    except IngestionError:
        return False
    return True


def _files_under(prefix: str) -> list[str]:
    root = storage.resolve(prefix)[1].rstrip("/")
    out = []
    for uri in storage.list_files(prefix):
        rel = storage.resolve(uri)[1][len(root) :].lstrip("/")
        if any(part.startswith(("_", ".")) for part in rel.split("/")):
            continue
        if _supported(uri):
            out.append(uri)
    return out


def ingest_files_step(
    landed: ArtifactLike,
    uris: list[str] | None = None,
    prefix: str = "",
    source: str = "files",
    settings_json: str = "{}",
) -> list[dict[str, Any]]:
    """Land files (CSV, JSON lines, Parquet) in the raw zone, bytes unchanged.

    Args:
        landed: output; receives the JSON list of landed objects.
        uris: file URIs to land.
        prefix: a folder or ``s3://`` prefix whose data files (by extension; names
            starting with ``_`` or ``.`` skipped) are landed as well.
        source: raw-zone source name.
        settings_json: settings overrides (see :func:`settings_from_json`).

    Returns:
        The landed objects as dicts.
    """
    from mlops_kit.ingest.files import ingest_files

    settings = settings_from_json(settings_json)
    wanted = list(dict.fromkeys([*(uris or []), *(_files_under(prefix) if prefix else [])]))
    objects = ingest_files(wanted, settings.storage.raw_uri or "", source=source)
    _write_landed(landed, "files", source, objects)
    landed.metadata["status"] = "landed" if wanted else "skipped"
    if prefix:
        landed.metadata["prefix"] = prefix
    return [o.to_dict() for o in objects]


def ingest_api_step(
    landed: ArtifactLike,
    url: str = "",
    source: str = "api",
    api_config_json: str = "{}",
    max_pages: int = 0,
    restart: bool = False,
    settings_json: str = "{}",
) -> list[dict[str, Any]]:
    """Land the pages of an HTTP JSON API in the raw zone, resuming at the saved cursor.

    Args:
        landed: output; receives the JSON list of landed objects.
        url: the first page's URL; ``""`` (and no ``url`` in ``api_config_json``) skips
            the step, landing nothing.
        source: raw-zone source name (and the cursor's folder).
        api_config_json: further :class:`~mlops_kit.ingest.api.ApiSourceConfig` fields
            as a JSON object (``items_field``, ``next_cursor_field``, ``headers_from_env``...).
        max_pages: stop after this many pages (``0``: until the last page).
        restart: ignore the saved cursor and start at the first page.
        settings_json: settings overrides (see :func:`settings_from_json`).

    Returns:
        The landed objects as dicts.
    """
    from mlops_kit.ingest.api import ApiSourceConfig, ingest_api

    settings = settings_from_json(settings_json)
    try:
        fields = json.loads((api_config_json or "").strip() or "{}")
    except json.JSONDecodeError as exc:
        raise ConfigError(f"api_config_json is not valid JSON ({exc})") from None
    if not isinstance(fields, dict):
        raise ConfigError("api_config_json must be a JSON object of ApiSourceConfig fields")
    if url:
        fields["url"] = url
    if not fields.get("url"):
        _write_landed(landed, "api", source, [])
        landed.metadata["status"] = "skipped"
        return []
    config = ApiSourceConfig(**fields)
    result = ingest_api(
        config,
        settings.storage.raw_uri or "",
        settings.storage.state_uri or "",
        source,
        max_pages=max_pages or None,
        restart=restart,
    )
    _write_landed(landed, "api", source, result.landed)
    landed.metadata.update(
        {
            "status": "landed",
            "url": config.url,
            "pages": result.pages,
            "records": result.records,
            "retries": result.retries,
            "complete": result.complete,
        }
    )
    return [o.to_dict() for o in result.landed]


def ingest_stream_step(
    landed: ArtifactLike,
    enabled: bool = True,
    source: str = "iot-stream",
    batch_size: int = 0,
    max_batches: int = 0,
    idle_timeout_s: float = 0.0,
    settings_json: str = "{}",
) -> list[dict[str, Any]]:
    """Land the stream's new records in micro-batches, resuming at the checkpoint.

    The stream is the one ``settings.stream`` selects (a local JSON-lines file or Kinesis).

    Args:
        landed: output; receives the JSON list of landed objects.
        enabled: ``False`` skips the step, landing nothing.
        source: raw-zone source name (and the checkpoint's folder).
        batch_size: records per micro-batch (``0``: ``settings.stream.batch_size``).
        max_batches: stop after this many micro-batches (``0``: until caught up).
        idle_timeout_s: keep polling an idle stream this long before returning.
        settings_json: settings overrides (see :func:`settings_from_json`).

    Returns:
        The landed objects as dicts.
    """
    from mlops_kit.ingest.streams import consume_stream, source_from_settings

    settings = settings_from_json(settings_json)
    if not enabled:
        _write_landed(landed, "stream", source, [])
        landed.metadata["status"] = "skipped"
        return []
    result = consume_stream(
        source_from_settings(settings),
        settings.storage.raw_uri or "",
        settings.storage.state_uri or "",
        source,
        batch_size=batch_size or settings.stream.batch_size,
        max_batches=max_batches or None,
        idle_timeout_s=idle_timeout_s,
    )
    _write_landed(landed, "stream", source, result.landed)
    landed.metadata.update(
        {
            "status": "landed" if result.landed else "caught_up",
            "backend": settings.stream.backend,
            "batches": result.batches,
            "records_read": result.records_read,
            "records_landed": result.records_landed,
            "duplicates_skipped": result.duplicates_skipped,
            "checkpoint": dict(result.checkpoint),
        }
    )
    return [o.to_dict() for o in result.landed]


# --------------------------------------------------------------------------- ETL


def empty_batch(now: datetime | None = None) -> Any:
    """The batch of a run that found nothing new: no run id, no inputs, no rows."""
    from mlops_kit.etl.extract import EXTRACTED_SCHEMA, QUARANTINE_SCHEMA
    from mlops_kit.etl.run import Batch

    return Batch(
        run_id="",
        now=now or datetime.now(timezone.utc),
        inputs=[],
        rows_in=0,
        rows=EXTRACTED_SCHEMA.empty_table(),
        quarantine=QUARANTINE_SCHEMA.empty_table(),
    )


def is_noop(batch: Any) -> bool:
    """True for the empty batch of :func:`empty_batch`."""
    return not batch.run_id and not batch.inputs


def _parse_now(now: str) -> datetime | None:
    if not now:
        return None
    try:
        value = datetime.fromisoformat(now.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"now '{now}' is not an ISO 8601 time: use e.g. 2026-01-04T00:00:00Z, or '' for now"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _log_accounting(metrics: MetricsLike, acc: dict[str, Any]) -> float:
    rate = acc["quarantined"] / acc["rows_in"] if acc["rows_in"] else 0.0
    for name in ACCOUNTING_METRICS[:-1]:
        metrics.log_metric(name, int(acc[name]))
    metrics.log_metric("quarantine_rate", round(rate, 6))
    return rate


def transform_step(
    batch: ArtifactLike,
    files_landed: ArtifactLike | None = None,
    api_landed: ArtifactLike | None = None,
    stream_landed: ArtifactLike | None = None,
    source: str = "",
    now: str = "",
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Extract and normalise every raw object not yet committed into a batch.

    The ``*_landed`` inputs are for lineage and ordering: the batch holds every pending
    raw object (including those of earlier runs that failed), whether listed there or not.
    When nothing is pending the empty batch is written and ``status`` is ``noop``.

    Args:
        batch: output; receives the :class:`~mlops_kit.etl.run.Batch` folder.
        files_landed: the landed objects of a file ingestion (optional).
        api_landed: the landed objects of an API ingestion (optional).
        stream_landed: the landed objects of a stream ingestion (optional).
        source: only take raw objects of this source (``""``: every source).
        now: reference time of the run (ISO 8601; ``""``: the current time).
        settings_json: settings overrides (see :func:`settings_from_json`).

    Returns:
        The metadata written on ``batch``.
    """
    from mlops_kit.etl.run import extract_transform

    settings = settings_from_json(settings_json)
    at = _parse_now(now)
    landed = [
        row["uri"] for art in (files_landed, api_landed, stream_landed) for row in read_landed(art)
    ]
    result = extract_transform(settings, now=at, source=source or None)
    if result is None:
        result = empty_batch(at)
    result.save(batch.path)
    pending = set(result.inputs)
    meta = {
        "status": NOOP if is_noop(result) else "pending",
        "run_id": result.run_id,
        "now": result.now.isoformat(),
        "inputs": len(result.inputs),
        "input_uris": _listed(result.inputs),
        "rows_in": result.rows_in,
        "rows": result.rows.num_rows,
        "rejected_at_extract": result.quarantine.num_rows,
        "landed_objects": len(landed),
        "landed_in_batch": sum(1 for u in landed if u in pending),
    }
    batch.metadata.update(meta)
    return meta


def _noop_html(what: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>mlops_kit quality report"
        "</title></head><body style='font:14px system-ui,sans-serif;margin:2rem'>"
        f"<h1>Nothing to check</h1><p>{what}</p></body></html>"
    )


def quality_check_step(
    batch: ArtifactLike,
    checked: ArtifactLike,
    metrics: MetricsLike,
    report: ArtifactLike,
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Apply the quality rules to a batch; fail above the quarantine threshold.

    Args:
        batch: input; the batch of the transform step.
        checked: output; the checked batch (valid readings plus every quarantined row).
        metrics: output; ``rows_in``, ``loaded``, ``quarantined``, ``duplicates_dropped``,
            ``quarantine_rate``.
        report: output; the quality report as HTML.
        settings_json: settings overrides (see :func:`settings_from_json`).

    Returns:
        The metadata written on ``checked``.

    Raises:
        DataQualityError: the quarantine rate is above
            ``settings.quality.max_quarantine_rate``; the report and the rejected rows
            are in the reports zone and the message says where.
    """
    from mlops_kit.etl.run import Batch, quality_check

    settings = settings_from_json(settings_json)
    given = Batch.load(batch.path)
    if is_noop(given):
        given.checked = True
        given.save(checked.path)
        rate = _log_accounting(metrics, given.accounting)
        with open(report.path, "w", encoding="utf-8") as f:
            f.write(_noop_html("No new raw objects: the run found nothing to check."))
        meta: dict[str, Any] = {"status": NOOP, "run_id": "", "quarantine_rate": rate}
        checked.metadata.update(meta)
        report.metadata.update(meta)
        return meta
    result = quality_check(settings, given)
    result.save(checked.path)
    acc = result.accounting
    rate = _log_accounting(metrics, acc)
    storage.write_bytes(report.path, storage.read_bytes(result.report["html"]))
    meta = {
        "status": "checked",
        "run_id": result.run_id,
        "rows_in": acc["rows_in"],
        "valid": acc["loaded"],
        "quarantined": acc["quarantined"],
        "duplicates_dropped": acc["duplicates_dropped"],
        "quarantined_by_reason": acc["quarantined_by_reason"],
        "quarantine_rate": rate,
        "max_quarantine_rate": settings.quality.max_quarantine_rate,
        "passed": bool(result.report.get("passed", True)),
        "report_json_uri": result.report.get("json"),
        "report_html_uri": result.report.get("html"),
    }
    checked.metadata.update(meta)
    report.metadata.update(
        {"run_id": result.run_id, "source_uri": result.report.get("html"), "passed": meta["passed"]}
    )
    return meta


def load_step(
    checked: ArtifactLike, metrics: MetricsLike, settings_json: str = "{}"
) -> dict[str, Any]:
    """Commit a checked batch: processed readings, features, quarantine, warehouse, manifest.

    Args:
        checked: input; the batch of the quality-check step.
        metrics: output; the accounting (``rows_in``, ``loaded``, ``quarantined``,
            ``duplicates_dropped``, ``quarantine_rate``) plus ``feature_rows`` and
            ``warehouse_rows_upserted``; its metadata also names ``run_id``, ``status``
            and ``manifest_uri``.
        settings_json: settings overrides (see :func:`settings_from_json`).

    Returns:
        The run's :class:`~mlops_kit.etl.run.EtlResult` as a dict.
    """
    from mlops_kit.etl.run import Batch, EtlResult, load

    settings = settings_from_json(settings_json)
    given = Batch.load(checked.path)
    result = EtlResult(run_id="", status=NOOP) if is_noop(given) else load(settings, given)
    _log_accounting(metrics, result.to_dict())
    metrics.log_metric("feature_rows", result.feature_rows)
    metrics.log_metric("warehouse_rows_upserted", result.warehouse_rows_upserted)
    metrics.metadata.update(
        {
            "run_id": result.run_id,
            "status": result.status,
            "manifest_uri": result.manifest_uri or "",
            "report_html_uri": result.report_html_uri or "",
        }
    )
    return result.to_dict()


from mlops_kit.features.steps import (  # noqa: E402, F401  (re-exported steps)
    features_apply_step,
    features_materialize_step,
    features_training_set_step,
)
