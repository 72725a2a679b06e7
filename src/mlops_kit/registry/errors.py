"""Errors of the model registry (importable without mlflow)."""

from __future__ import annotations

from mlops_kit.errors import ConfigError, MlopsKitError


class RegistryError(MlopsKitError):
    """A registry operation could not be done (nothing was changed)."""

    code = "REGISTRY_ERROR"


class ModelNotFoundError(RegistryError):
    """The registered model, version or alias does not exist."""

    code = "MODEL_NOT_FOUND"


class MissingArtifactError(RegistryError):
    """The run or version lacks an artifact the registry needs (the ONNX model, its statistics)."""

    code = "MISSING_ARTIFACT"


class PolicyError(ConfigError):
    """A promotion policy file is unreadable, has an unknown key or a value of the wrong type."""

    code = "POLICY_INVALID"


class RegistryLockError(RegistryError):
    """Another promotion holds the model's lock beyond the wait."""

    code = "REGISTRY_LOCKED"


__all__ = [
    "MissingArtifactError",
    "ModelNotFoundError",
    "PolicyError",
    "RegistryError",
    "RegistryLockError",
]
