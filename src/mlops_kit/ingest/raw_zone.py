"""The raw zone: immutable, date-partitioned, content-addressed landing files.

Layout::

    <raw_uri>/source=<source>/date=<YYYY-MM-DD>/<sha256>.<ext>
    <raw_uri>/_index/source=<source>/<sha256>.json      # one marker per landed object
    <raw_uri>/_index/source=<source>/<sha256>.<ext>.json  # the same bytes as another format

The object name is the SHA-256 of its bytes, so landing the same bytes (as the same
format) twice is a no-op (the index marker is checked first), and the ETL's ledger can name inputs
unambiguously. Files and folders whose name starts with ``_`` or ``.`` are not data.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone

from mlops_kit import storage
from mlops_kit.ingest.errors import RawFormatError, RawSourceError

FORMATS = ("jsonl", "csv", "parquet")
_SOURCE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class LandedObject:
    """One object in the raw zone."""

    uri: str
    source: str
    sha256: str
    size: int
    format: str
    created: bool
    """False when the same bytes had already landed (nothing was written)."""

    def to_dict(self) -> dict:
        return asdict(self)


def check_source(source: str) -> str:
    if not _SOURCE_RE.match(source):
        raise RawSourceError(
            f"invalid source name '{source}': use lowercase letters, digits, '.', '_' or '-' "
            "(at most 63 characters, starting with a letter or digit)"
        )
    return source


def land(
    raw_uri: str,
    source: str,
    data: bytes,
    fmt: str,
    ingest_date: date | None = None,
) -> LandedObject:
    """Write ``data`` to the raw zone unless the same bytes already landed for ``source``.

    Args:
        raw_uri: root of the raw zone.
        source: short name of the producer (``api-weather``, ``kinesis-iot``, ``files``).
        data: the bytes as received.
        fmt: one of ``jsonl``, ``csv``, ``parquet``.
        ingest_date: date partition (today in UTC by default).
    """
    check_source(source)
    if fmt not in FORMATS:
        raise RawFormatError(f"unsupported raw format '{fmt}': use one of {', '.join(FORMATS)}")
    digest = hashlib.sha256(data).hexdigest()
    marker = storage.join(raw_uri, "_index", f"source={source}", f"{digest}.json")
    if storage.exists(marker):
        previous = storage.read_json(marker)
        if previous.get("format", fmt) == fmt:
            return LandedObject(previous["uri"], source, digest, len(data), fmt, created=False)
        # the same bytes declared as another format are another object
        marker = storage.join(raw_uri, "_index", f"source={source}", f"{digest}.{fmt}.json")
        if storage.exists(marker):
            previous = storage.read_json(marker)
            return LandedObject(previous["uri"], source, digest, len(data), fmt, created=False)
    day = ingest_date or datetime.now(timezone.utc).date()
    uri = storage.join(raw_uri, f"source={source}", f"date={day.isoformat()}", f"{digest}.{fmt}")
    storage.write_bytes(uri, data)
    storage.write_json(marker, {"uri": uri, "size": len(data), "format": fmt})
    return LandedObject(uri, source, digest, len(data), fmt, created=True)


def list_raw(raw_uri: str, source: str | None = None) -> list[str]:
    """Data objects in the raw zone (optionally of one source), sorted by path."""
    prefix = storage.join(raw_uri, f"source={source}") if source else raw_uri
    root = storage.resolve(raw_uri)[1].rstrip("/")
    out = []
    for uri in storage.list_files(prefix):
        rel = storage.resolve(uri)[1][len(root) :].lstrip("/")
        if any(part.startswith(("_", ".")) for part in rel.split("/")):
            continue
        if rel.rsplit(".", 1)[-1] in FORMATS:
            out.append(uri)
    return out


def format_of(uri: str) -> str:
    return uri.rsplit(".", 1)[-1]
