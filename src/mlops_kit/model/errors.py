"""Errors of the model bundle: its layout, preprocessing statistics and predictor."""

from __future__ import annotations

from mlops_kit.errors import MlopsKitError


class ModelError(MlopsKitError):
    """A model bundle is incomplete, or its preprocessing or inputs do not fit the model."""

    code = "MODEL_INVALID"
