"""Errors of the platform layer: generated Kubernetes objects and the RayJobs they run.

Each carries a stable ``code``; the message names the field or object and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_kit.errors import ConfigError, MlopsKitError

if TYPE_CHECKING:
    from mlops_kit.training.launchers.base import JobStatus


class SettingsSecretError(ConfigError):
    """A setting would be written in clear into a generated object (an environment variable
    of a pod); ``field`` names it."""

    code = "SETTINGS_SECRET_IN_MANIFEST"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, field=field)
        self.field = field


class RayJobError(MlopsKitError):
    """A RayJob could not be submitted or followed, or it failed."""

    code = "RAYJOB_ERROR"


class RayJobConfigError(ConfigError):
    """A setting or argument cannot make a RayJob that runs on the cluster; ``field``
    names it."""

    code = "RAYJOB_CONFIG_INVALID"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, field=field)
        self.field = field


class RayJobInvalidError(ConfigError):
    """A RayJob breaks the RayJob CRD or a rule the KubeRay operator checks; ``errors``
    lists each bad field."""

    code = "RAYJOB_INVALID"

    def __init__(self, message: str, errors: list[str]) -> None:
        super().__init__(message, errors=errors)
        self.errors = errors


class RayJobSubmitError(RayJobError):
    """The Kubernetes API refused the RayJob or could not be reached; ``http_status`` is the
    API server's answer, when there was one."""

    code = "RAYJOB_SUBMIT_FAILED"

    def __init__(self, message: str, http_status: int | None = None, **details: Any) -> None:
        super().__init__(message, http_status=http_status, **details)
        self.http_status = http_status


class RayJobExistsError(RayJobSubmitError):
    """A RayJob of that name already exists with another spec (KubeRay does not run a
    RayJob again when its spec changes)."""

    code = "RAYJOB_EXISTS"


class RayJobFailedError(RayJobError):
    """The RayJob ended Failed (or was stopped); ``status`` carries the reason and message."""

    code = "RAYJOB_FAILED"

    def __init__(self, message: str, *, status: JobStatus) -> None:
        super().__init__(message, status=status)
        self.status = status


class RayJobTimeoutError(RayJobError):
    """The RayJob did not finish within the ``timeout`` given to ``wait``."""

    code = "RAYJOB_TIMEOUT"

    def __init__(self, message: str, *, status: JobStatus) -> None:
        super().__init__(message, status=status)
        self.status = status


__all__ = [
    "RayJobConfigError",
    "RayJobError",
    "RayJobExistsError",
    "RayJobFailedError",
    "RayJobInvalidError",
    "RayJobSubmitError",
    "RayJobTimeoutError",
    "SettingsSecretError",
]
