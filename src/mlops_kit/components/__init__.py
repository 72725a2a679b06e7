"""Kubeflow Pipelines v2 components of mlops_kit (the ``kfp`` extra).

Each component is a lightweight ``@dsl.component`` whose file holds its typed interface
only; the body calls one function of :mod:`mlops_kit.components.runtime`, which calls the
library. Every component runs in :data:`IMAGE` (``ghcr.io/mlops-kit/mlops-kit`` tagged
with ``mlops_kit.__version__``) and takes its settings as one ``settings_json`` string.

Importing this package does not import kfp; the components are loaded on first access::

    from mlops_kit.components import quality_check  # needs: pip install 'mlops-kit[kfp]'

Catalogue: ``ingest_files``, ``ingest_api``, ``ingest_stream`` (:mod:`.ingest`) and
``transform``, ``quality_check``, ``load``, ``etl_run`` (:mod:`.etl`), and ``features_apply``,
``features_materialize``, ``features_training_set`` (:mod:`.features`), and ``train``,
``launch_eks``, ``launch_sagemaker``, ``export_onnx`` (:mod:`.training`), and
``evaluate_model``, ``register_model``, ``promote_model`` (:mod:`.registry`), and
``serve_rollout`` (:mod:`.serving`). Compile them all
to YAML with ``python -m mlops_kit.pipelines.compile``.
"""

from __future__ import annotations

import importlib
from typing import Any

from mlops_kit.components.image import DEFAULT_IMAGE, IMAGE

COMPONENTS: dict[str, str] = {
    "ingest_files": "mlops_kit.components.ingest",
    "ingest_api": "mlops_kit.components.ingest",
    "ingest_stream": "mlops_kit.components.ingest",
    "transform": "mlops_kit.components.etl",
    "quality_check": "mlops_kit.components.etl",
    "load": "mlops_kit.components.etl",
    "etl_run": "mlops_kit.components.etl",
    "features_apply": "mlops_kit.components.features",
    "features_materialize": "mlops_kit.components.features",
    "features_training_set": "mlops_kit.components.features",
    "train": "mlops_kit.components.training",
    "launch_eks": "mlops_kit.components.training",
    "launch_sagemaker": "mlops_kit.components.training",
    "export_onnx": "mlops_kit.components.training",
    "evaluate_model": "mlops_kit.components.registry",
    "register_model": "mlops_kit.components.registry",
    "promote_model": "mlops_kit.components.registry",
    "serve_rollout": "mlops_kit.components.serving",
}
"""Component name -> the module that defines it (compiled in this order)."""


def get_component(name: str) -> Any:
    """The component called ``name`` (imports kfp).

    Raises:
        KeyError: for a name not in :data:`COMPONENTS`.
        MissingExtraError: kfp is not installed.
    """
    if name not in COMPONENTS:
        raise KeyError(f"no component '{name}': use one of {', '.join(COMPONENTS)}")
    return getattr(importlib.import_module(COMPONENTS[name]), name)


def __getattr__(name: str) -> Any:
    if name in COMPONENTS:
        return get_component(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["COMPONENTS", "DEFAULT_IMAGE", "IMAGE", "get_component", *COMPONENTS]
