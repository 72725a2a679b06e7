"""Training of the failure prediction model: configs, trainer, DDP, ONNX export.

Importing this package does not import torch: the configs, the preprocessing statistics,
the metrics and the training-table helpers are plain Python / numpy. The trainer, the
model and the export (which need the ``torch`` and ``onnx`` extras) load on first use::

    from mlops_kit.training import TrainConfig, train
    result = train(TrainConfig(epochs=5), "file:///data/train.parquet", "file:///models/m1")

Container entrypoint: ``python -m mlops_kit.training train --data URI --out URI``.
"""

from __future__ import annotations

from mlops_kit._lazy import lazy_exports
from mlops_kit.model.preprocess import Preprocessor
from mlops_kit.training.config import (
    DataConfig,
    ExportConfig,
    ModelConfig,
    OptimizerConfig,
    TrainConfig,
    load_train_config,
    parse_train_config,
)
from mlops_kit.training.data import (
    build_training_table,
    read_training_table,
    synthetic_training_table,
    time_split,
    write_training_table,
)
from mlops_kit.training.errors import ParityError, TrainingError

_LAZY = {
    "Trainer": "mlops_kit.training.trainer",
    "TrainResult": "mlops_kit.training.trainer",
    "train": "mlops_kit.training.trainer",
    "FailureMLP": "mlops_kit.training.model",
    "build_model": "mlops_kit.training.model",
    "load_model": "mlops_kit.training.model",
    "save_model": "mlops_kit.training.model",
    "OPSET": "mlops_kit.training.onnx_export",
    "ParityReport": "mlops_kit.training.onnx_export",
    "check_parity": "mlops_kit.training.onnx_export",
    "export_onnx": "mlops_kit.training.onnx_export",
    "export_and_verify": "mlops_kit.training.onnx_export",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "OPSET",
    "DataConfig",
    "ExportConfig",
    "FailureMLP",
    "ModelConfig",
    "OptimizerConfig",
    "ParityError",
    "ParityReport",
    "Preprocessor",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingError",
    "build_model",
    "build_training_table",
    "check_parity",
    "export_and_verify",
    "export_onnx",
    "load_model",
    "load_train_config",
    "parse_train_config",
    "read_training_table",
    "save_model",
    "synthetic_training_table",
    "time_split",
    "train",
    "write_training_table",
]
