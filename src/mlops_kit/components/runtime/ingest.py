"""Runtime of :mod:`mlops_kit.components.ingest`: land files, API pages and stream records."""

from __future__ import annotations

import json
from typing import Any

from mlops_kit import storage
from mlops_kit.components.runtime import ArtifactLike, settings_from_json, write_landed
from mlops_kit.errors import ConfigError, IngestionError


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
    write_landed(landed, "files", source, objects)
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
        write_landed(landed, "api", source, [])
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
    write_landed(landed, "api", source, result.landed)
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
    from mlops_kit.ingest.streams import consume_stream, stream_source_of

    settings = settings_from_json(settings_json)
    if not enabled:
        write_landed(landed, "stream", source, [])
        landed.metadata["status"] = "skipped"
        return []
    result = consume_stream(
        stream_source_of(settings),
        settings.storage.raw_uri or "",
        settings.storage.state_uri or "",
        source,
        batch_size=batch_size or settings.stream.batch_size,
        max_batches=max_batches or None,
        idle_timeout_s=idle_timeout_s,
    )
    write_landed(landed, "stream", source, result.landed)
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
