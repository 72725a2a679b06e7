"""What the training components run: train, launch on EKS or SageMaker, export to ONNX.

Like :mod:`mlops_kit.components.runtime` (no kfp import): an artifact is anything with a
``path`` and a ``metadata`` dict (a metrics artifact also has ``log_metric``); the
training-set and model artifacts may also have a ``uri`` (their remote location in a
cluster, e.g. ``s3://...``), which remote jobs read from.

A model artifact is a model bundle folder (``model.pt``, ``preprocess.json``,
``metrics.json``, ``config.json``, ``holdout.parquet``) plus ``tracking.json`` (the MLflow
run, when tracked) and ``lineage.json``; the ONNX artifact holds ``model.onnx``,
``parity.json`` and ``preprocess.json``, enough to serve.

One module per component group: :mod:`.train` (``train``), :mod:`.launch`
(``launch_eks``, ``launch_sagemaker``) and :mod:`.export` (``export_onnx``), with what they
share in :mod:`.artifacts`.
"""

from mlops_kit.components.runtime.training.artifacts import (
    BUNDLE_FILES,
    LINEAGE_FILE,
    TRACKING_FILE,
    train_config,
    training_data_uri,
)
from mlops_kit.components.runtime.training.export import export_onnx_step
from mlops_kit.components.runtime.training.launch import (
    launch_eks_step,
    launch_sagemaker_step,
    launch_step,
)
from mlops_kit.components.runtime.training.train import train_step

__all__ = [
    "BUNDLE_FILES",
    "LINEAGE_FILE",
    "TRACKING_FILE",
    "export_onnx_step",
    "launch_eks_step",
    "launch_sagemaker_step",
    "launch_step",
    "train_config",
    "train_step",
    "training_data_uri",
]
