"""The kernel of the component runtimes: artifacts as protocols, settings, shared writers.

``mlops_kit.components.<domain>`` declares typed interfaces only; each component body
imports one ``*_step`` function of ``mlops_kit.components.runtime.<domain>`` (the mirror
of its interface module) and calls it with its artifacts and parameters. A step turns
the ``settings_json`` parameter into :class:`~mlops_kit.config.Settings`, makes one call
into the library, writes the output artifacts and fills their metadata. No runtime
imports kfp: an artifact is anything with a ``path`` (str) and a ``metadata`` (dict), and
a metrics artifact also has ``log_metric(name, value)``, so the steps can be called and
tested without a pipeline.

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
from mlops_kit.errors import ConfigError

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


def listed(uris: Iterable[str]) -> list[str]:
    """At most :data:`MAX_LISTED` of ``uris``, for an artifact's metadata."""
    return list(uris)[:MAX_LISTED]


def write_landed(landed: ArtifactLike, kind: str, source: str, objects: list[Any]) -> None:
    """Write the raw-zone objects an ingest step landed (JSON list) and their summary."""
    rows = [obj.to_dict() for obj in objects]
    storage.write_json(landed.path, rows)
    landed.metadata.update(
        {
            "kind": kind,
            "source": source,
            "objects": len(rows),
            "created": sum(1 for r in rows if r["created"]),
            "bytes": sum(int(r["size"]) for r in rows),
            "uris": listed(r["uri"] for r in rows),
        }
    )


def read_landed(landed: ArtifactLike | None) -> list[dict[str, Any]]:
    """The raw objects listed by a ``landed`` artifact (``[]`` for ``None``)."""
    if landed is None or not getattr(landed, "path", None) or not os.path.exists(landed.path):
        return []
    rows = storage.read_json(landed.path)
    return list(rows) if isinstance(rows, list) else []


def parse_now(now: str) -> datetime | None:
    """A pipeline's ``now`` parameter as a UTC time (``""``: None, meaning the current time).

    Raises:
        ConfigError: the text is not ISO 8601.
    """
    if not now:
        return None
    try:
        value = datetime.fromisoformat(now.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"now '{now}' is not an ISO 8601 time: use e.g. 2026-01-04T00:00:00Z, or '' for now"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
