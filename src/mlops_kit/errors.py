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


def format_validation_error(
    exc: Any, what: str, *, root: str = "value", unknown: str = "unknown field (check the spelling)"
) -> str:
    """One message for a pydantic ``ValidationError``: a line per bad field.

    Each line names the field's dotted path, what is wrong and the value given, e.g.
    ``  quality.max_quarantine_rate: Input should be less than or equal to 1 (got 2.0)``.

    Args:
        exc: the ``pydantic.ValidationError``.
        what: what was being validated, for the first line (``mlops_kit settings``).
        root: the name shown for an error on the whole object.
        unknown: the message for a key the model forbids.
    """
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or root
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = unknown
        value = err.get("input")
        plain = (
            value is not None and not isinstance(value, dict) and not hasattr(value, "model_dump")
        )
        shown = f" (got {value!r})" if plain and loc != root else ""
        lines.append(f"  {loc}: {msg}{shown}")
    return f"invalid {what}:\n" + "\n".join(lines)
