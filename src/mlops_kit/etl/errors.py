"""Errors of the ETL (subclasses of :class:`~mlops_kit.errors.MlopsKitError`).

``DataQualityError`` and ``WarehouseError`` are defined with the root hierarchy (the
package exports them at the top level) and re-exported here with the ETL's own errors.
"""

from __future__ import annotations

from mlops_kit.errors import DataQualityError, MlopsKitError, WarehouseError


class EtlError(MlopsKitError):
    """An ETL step was asked something it cannot do; the message says why and what to do."""

    code = "ETL_ERROR"


class KnownIdsError(EtlError):
    """The registry of known entity ids is missing or a list of ids cannot be read."""

    code = "ETL_KNOWN_IDS"


class ReleaseError(EtlError):
    """An object cannot be released for another read (not quarantined, unknown encoding)."""

    code = "ETL_RELEASE"


__all__ = ["DataQualityError", "EtlError", "KnownIdsError", "ReleaseError", "WarehouseError"]
