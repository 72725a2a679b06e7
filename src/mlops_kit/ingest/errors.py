"""Errors of ingestion (subclasses of :class:`~mlops_kit.errors.MlopsKitError`).

``IngestionError`` is defined with the root hierarchy (the package exports it at the top
level) and re-exported here with ingestion's own errors.
"""

from __future__ import annotations

from mlops_kit.errors import IngestionError


class RawFormatError(IngestionError, ValueError):
    """A raw object's format is not one the raw zone accepts (``jsonl``, ``csv``,
    ``parquet``), or its name does not say which."""

    code = "INGEST_RAW_FORMAT"


class RawSourceError(IngestionError, ValueError):
    """A source name the raw zone cannot use as a partition (lowercase letters, digits,
    ``.``, ``_``, ``-``; at most 63 characters)."""

    code = "INGEST_SOURCE_NAME"


__all__ = ["IngestionError", "RawFormatError", "RawSourceError"]
