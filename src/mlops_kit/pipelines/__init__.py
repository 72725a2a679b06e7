"""Kubeflow pipelines built from :mod:`mlops_kit.components`, and their submission.

Importing this package does not import kfp; the pipelines are loaded on first access::

    from mlops_kit.pipelines import etl_pipeline  # needs: pip install 'mlops-kit[kfp]'

Compile every pipeline with ``python -m mlops_kit.pipelines.compile`` and submit the
YAML to Kubeflow Pipelines with :func:`submit`.
"""

from __future__ import annotations

import importlib
from typing import Any

from mlops_kit.pipelines.client import submit

PIPELINES: dict[str, str] = {
    "etl": "mlops_kit.pipelines.etl:etl_pipeline",
    "training": "mlops_kit.pipelines.training:training_pipeline",
    "training_gpu": "mlops_kit.pipelines.training:training_gpu_pipeline",
}
"""Pipeline name (its compiled file is ``pipelines/<name>.yaml``) -> ``module:attribute``."""


def get_pipeline(name: str) -> Any:
    """The pipeline called ``name`` (imports kfp).

    Raises:
        KeyError: for a name not in :data:`PIPELINES`.
        MissingExtraError: kfp is not installed.
    """
    if name not in PIPELINES:
        raise KeyError(f"no pipeline '{name}': use one of {', '.join(PIPELINES)}")
    module, attr = PIPELINES[name].split(":")
    return getattr(importlib.import_module(module), attr)


def __getattr__(name: str) -> Any:
    for key, target in PIPELINES.items():
        if name == target.split(":")[1]:
            return get_pipeline(key)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PIPELINES",
    "etl_pipeline",
    "get_pipeline",
    "submit",
    "training_gpu_pipeline",
    "training_pipeline",
]
