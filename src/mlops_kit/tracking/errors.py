"""Errors of the tracking facade (importable without mlflow)."""

from __future__ import annotations

from mlops_kit.errors import MlopsKitError


class TrackingError(MlopsKitError):
    """The tracking server or store could not be reached, or a run is not in it."""

    code = "TRACKING_ERROR"


__all__ = ["TrackingError"]
