"""One exception hierarchy for the whole library.

Every error carries a stable ``code`` (for scripts and pipelines to branch on) and a
message that names what failed and how to fix it.
"""

from __future__ import annotations

from typing import Any


class MlopsKitError(Exception):
    """Root of every error raised by mlops_kit."""

    code = "MLOPS_KIT_ERROR"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class ConfigError(MlopsKitError):
    """A setting is missing or has a value outside what is accepted."""

    code = "CONFIG_INVALID"


class MissingExtraError(MlopsKitError, ImportError):
    """An optional dependency is not installed; the message gives the pip command."""

    code = "MISSING_EXTRA"

    def __init__(self, package: str, extra: str, feature: str | None = None) -> None:
        what = f" for {feature}" if feature else ""
        super().__init__(
            f"'{package}' is needed{what} but is not installed. "
            f"Install it with: pip install 'mlops-kit[{extra}]'",
            package=package,
            extra=extra,
        )
        self.package = package
        self.extra = extra


class StorageError(MlopsKitError):
    """A storage URI is unsupported or an object could not be read or written."""

    code = "STORAGE_ERROR"


class IngestionError(MlopsKitError):
    """A source could not be read (after retries) or a checkpoint is inconsistent."""

    code = "INGESTION_ERROR"


class DataQualityError(MlopsKitError):
    """A run's quarantine rate is above the configured threshold.

    Nothing of the failing run is loaded; the quarantine and the report are still
    written so that the rejected rows can be inspected.
    """

    code = "DATA_QUALITY_FAILED"


class WarehouseError(MlopsKitError):
    """The warehouse URL is unsupported or a load failed (the transaction was rolled back)."""

    code = "WAREHOUSE_ERROR"
