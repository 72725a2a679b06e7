"""Launch training runs locally, on EKS (Kubeflow) or on SageMaker, behind one interface.

::

    from mlops_kit.training.launchers import TrainingJobSpec, launcher_for

    spec = TrainingJobSpec(
        name="failure-mlp-42",
        data_uri="s3://processed/training/train.parquet",
        output_uri="s3://models/failure-mlp/42",
        gpus_per_node=1,
    )
    launcher = launcher_for("eks", settings, kind="TrainJob")
    status = launcher.wait(launcher.submit(spec), timeout=3 * 3600)

Backends: ``local`` (:class:`~.local.LocalLauncher`), ``eks``
(:class:`~.eks.EksLauncher`, PyTorchJob or TrainJob) and ``sagemaker``
(:class:`~.sagemaker.SageMakerLauncher`). Importing this package imports neither torch,
kubernetes nor the SageMaker SDK; each backend loads its SDK when used.
"""

from __future__ import annotations

import importlib
from typing import Any

from mlops_kit.config import Settings
from mlops_kit.errors import ConfigError
from mlops_kit.training.launchers.arguments import flatten_config, train_arguments
from mlops_kit.training.launchers.base import (
    Backend,
    JobHandle,
    JobPhase,
    JobStatus,
    LaunchError,
    TrainingJobFailedError,
    TrainingJobTimeoutError,
    TrainingLauncher,
)
from mlops_kit.training.launchers.spec import TrainingJobSpec, default_image, parse_job_spec

#: backend name -> "module:class", imported on first use
BACKENDS: dict[str, str] = {
    "local": "mlops_kit.training.launchers.local:LocalLauncher",
    "eks": "mlops_kit.training.launchers.eks:EksLauncher",
    "sagemaker": "mlops_kit.training.launchers.sagemaker:SageMakerLauncher",
}

_LAZY = {
    "LocalLauncher": "mlops_kit.training.launchers.local",
    "EksLauncher": "mlops_kit.training.launchers.eks",
    "build_pytorchjob": "mlops_kit.training.launchers.eks",
    "build_trainjob": "mlops_kit.training.launchers.eks",
    "SageMakerLauncher": "mlops_kit.training.launchers.sagemaker",
    "load_crd": "mlops_kit.training.launchers.crd",
    "validate_object": "mlops_kit.training.launchers.crd",
}


def launcher_for(
    backend: Backend, settings: Settings | None = None, **kwargs: Any
) -> TrainingLauncher:
    """The launcher of ``backend``.

    Args:
        backend: ``local``, ``eks`` or ``sagemaker``.
        settings: mlops_kit settings (default: loaded from the environment).
        **kwargs: the backend's own options (e.g. ``kind="TrainJob"`` or ``api_client=`` for
            eks, ``role_arn=`` for sagemaker, ``mode=`` for local).

    Raises:
        ConfigError: an unknown backend.
    """
    target = BACKENDS.get(backend)
    if target is None:
        raise ConfigError(f"backend: expected one of {', '.join(BACKENDS)}, got '{backend}'")
    module, _, name = target.partition(":")
    cls = getattr(importlib.import_module(module), name)
    launcher: TrainingLauncher = cls(settings, **kwargs)
    return launcher


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlops_kit.training.launchers' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "BACKENDS",
    "Backend",
    "EksLauncher",
    "JobHandle",
    "JobPhase",
    "JobStatus",
    "LaunchError",
    "LocalLauncher",
    "SageMakerLauncher",
    "TrainingJobFailedError",
    "TrainingJobSpec",
    "TrainingJobTimeoutError",
    "TrainingLauncher",
    "build_pytorchjob",
    "build_trainjob",
    "default_image",
    "flatten_config",
    "launcher_for",
    "load_crd",
    "parse_job_spec",
    "train_arguments",
    "validate_object",
]
