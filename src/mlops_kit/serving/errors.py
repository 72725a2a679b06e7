"""Errors of serving (subclasses of :class:`~mlops_kit.errors.MlopsKitError`)."""

from __future__ import annotations

from mlops_kit.errors import MlopsKitError


class ServingError(MlopsKitError):
    """The service cannot load or run its model; the message says why and what to do."""

    code = "SERVING_ERROR"


class BadRequestError(ServingError):
    """A prediction request is invalid; ``errors`` names each bad field (HTTP 422)."""

    code = "SERVING_BAD_REQUEST"

    def __init__(self, message: str, errors: list[dict]) -> None:
        super().__init__(message, errors=errors)
        self.errors = errors


class ModelFilesError(ServingError):
    """The files a model reference names cannot be loaded (missing, unreadable, damaged), or
    the reference itself is malformed; the message names the version and the fix."""

    code = "SERVING_MODEL_FILES"


class MonitoringError(ServingError):
    """A metric label, a window snapshot or a histogram handed to monitoring is invalid."""

    code = "SERVING_MONITORING_INVALID"


class ServingConfigError(ServingError):
    """A setting or argument of the deployable configuration (Serve config, RayService) is
    missing or invalid; ``field`` names it."""

    code = "SERVING_CONFIG_INVALID"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, field=field)
        self.field = field


class RayServiceInvalidError(ServingError):
    """A RayService does not match the RayService CRD; ``errors`` lists each bad field."""

    code = "SERVING_RAYSERVICE_INVALID"

    def __init__(self, message: str, errors: list[str]) -> None:
        super().__init__(message, errors=errors)
        self.errors = errors


class RolloutError(ServingError):
    """A rollout cannot start or go on; the message says why and what to do."""

    code = "SERVING_ROLLOUT"


class RolloutBusyError(RolloutError):
    """Another rollout of the model is running, or another controller drives it."""

    code = "SERVING_ROLLOUT_BUSY"
