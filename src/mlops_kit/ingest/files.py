"""Batch ingestion of files (CSV, JSON lines, Parquet) into the raw zone."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
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


_COMPRESSED = (".gz", ".gzip", ".zst", ".zstd", ".bz2")


def detect_format(uri: str) -> str:
    """``csv``, ``jsonl`` or ``parquet`` from the extension (a trailing ``.gz``, ``.zst``
    or ``.bz2`` is looked through: the ETL finds compression by magic bytes)."""
    stem, ext = os.path.splitext(uri)
    if ext.lower() in _COMPRESSED:
        ext = os.path.splitext(stem)[1]
    ext = ext.lower()
    if ext not in _EXT:
        raise IngestionError(
            f"cannot tell the format of '{uri}' from its extension: "
            f"use one of {', '.join(sorted(_EXT))} (optionally followed by "
            f"{', '.join(_COMPRESSED)})"
        )
    return _EXT[ext]


def ingest_files(
    uris: Iterable[str],
    raw_uri: str,
    source: str = "files",
    ingest_date: date | None = None,
    on_landed: Callable[[LandedObject], None] | None = None,
) -> list[LandedObject]:
    """Land each file as it is (bytes unchanged) in the raw zone.

    Every name is checked before anything lands (a file of an unknown format or one that
    does not exist lands none); files already landed (same bytes) are reported with
    ``created=False``. ``on_landed`` is called after each file.

    Raises:
        IngestionError: naming every file that cannot be taken; if one fails while
            landing, naming those that already landed (landing again is a no-op).
    """
    from mlops_kit.ingest.raw_zone import check_source

    uris = list(uris)
    check_source(source)
    problems = []
    formats = []
    for uri in uris:
        try:
            formats.append(detect_format(uri))
        except IngestionError as exc:
            problems.append(str(exc))
            continue
        if not storage.exists(uri):
            problems.append(f"'{uri}' does not exist")
    if problems:
        raise IngestionError("nothing was landed: " + "; ".join(problems), problems=problems)
    landed: list[LandedObject] = []
    for uri, fmt in zip(uris, formats, strict=True):
        try:
            obj = land(raw_uri, source, storage.read_bytes(uri), fmt, ingest_date)
        except Exception as exc:
            done = ", ".join(o.uri for o in landed) or "none"
            raise IngestionError(
                f"landing '{uri}' failed ({exc}); already landed: {done}. "
                "Run the same command again once fixed: landed files are not duplicated",
                landed=[o.uri for o in landed],
            ) from exc
        landed.append(obj)
        if on_landed is not None:
            on_landed(obj)
    return landed
