"""Batch ingestion of files (CSV, JSON lines, Parquet) into the raw zone."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date

from mlops_kit import storage
from mlops_kit.errors import IngestionError
from mlops_kit.ingest.raw_zone import LandedObject, land

_EXT = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}


def detect_format(uri: str) -> str:
    ext = os.path.splitext(uri)[1].lower()
    if ext not in _EXT:
        raise IngestionError(
            f"cannot tell the format of '{uri}' from its extension: "
            f"use one of {', '.join(sorted(_EXT))}"
        )
    return _EXT[ext]


def ingest_files(
    uris: Iterable[str],
    raw_uri: str,
    source: str = "files",
    ingest_date: date | None = None,
) -> list[LandedObject]:
    """Land each file as it is (bytes unchanged) in the raw zone.

    Files already landed (same bytes) are reported with ``created=False``.
    """
    landed = []
    for uri in uris:
        fmt = detect_format(uri)
        landed.append(land(raw_uri, source, storage.read_bytes(uri), fmt, ingest_date))
    return landed
