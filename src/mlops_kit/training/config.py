"""Typed configuration of a training run (pydantic; importable without torch).

A run is described by one :class:`TrainConfig`, usually read from YAML with
:func:`load_train_config`::

    model:
      hidden_sizes: [64, 32]
      dropout: 0.1
    optimizer:
      name: adamw
      lr: 0.003
    epochs: 20
    batch_size: 256
    patience: 3
    seed: 0
    device: auto        # auto | cpu | cuda
    precision: auto     # auto | fp32 | bf16
    checkpoint_uri: s3://bucket/runs/r1/checkpoints

Every section forbids unknown keys, so a misspelt field fails with its name.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlops_kit.errors import ConfigError, format_validation_error

Monitor = Literal["val_roc_auc", "val_pr_auc", "val_f1", "val_loss"]


def default_feature_columns(spec: Any = None) -> list[str]:
    """The statistics a dataset spec aggregates, ``<column>_<stat>_<window>`` (windows
    outermost), for the bundled default spec when ``spec`` is None."""
    from mlops_kit.data.spec import default_spec

    spec = spec or default_spec()
    a = spec.aggregations
    return [f"{c}_{stat}_{w}" for w in a.windows for c in spec.aggregated for stat in a.stats[c]]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
    """The tabular MLP: ``[Linear -> activation -> Dropout] * len(hidden_sizes) -> Linear(1)``."""

    hidden_sizes: list[int] = Field(
        default_factory=lambda: [64, 32],
        description="Width of each hidden layer; empty gives a logistic regression.",
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout after each hidden layer.")
    activation: Literal["relu", "gelu", "silu"] = "relu"

    @field_validator("hidden_sizes")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        bad = [h for h in v if h < 1]
        if bad:
            raise ValueError(f"every hidden size must be >= 1 (got {bad})")
        return v


class OptimizerConfig(_Section):
    """Optimiser and gradient clipping."""

    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(3e-3, gt=0.0, description="Learning rate.")
    weight_decay: float = Field(1e-4, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="Used by sgd only.")
    grad_clip_norm: float | None = Field(
        None, gt=0.0, description="Clip the global gradient norm to this value."
    )


class DataConfig(_Section):
    """Columns of the training table and the time-based split."""

    feature_columns: list[str] = Field(
        default_factory=default_feature_columns,
        description="Model inputs, in this order (the order is saved with the model).",
    )
    label_column: str = "label"
    timestamp_column: str = "event_timestamp"
    entity_column: str = "device_id"
    validation_fraction: float = Field(
        0.2,
        gt=0.0,
        lt=1.0,
        description="Share of rows, the latest in time, held out for validation.",
    )
    gap_hours: float = Field(
        0.0,
        ge=0.0,
        description=(
            "Training rows this close before the validation cut-off are dropped (an embargo "
            "for labels that look ahead, e.g. 24 for a 24 h failure horizon)."
        ),
    )

    @field_validator("feature_columns")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one feature column is needed")
        dup = sorted({c for c in v if v.count(c) > 1})
        if dup:
            raise ValueError(f"duplicate feature columns {dup}")
        return v


class ExportConfig(_Section):
    """ONNX export and its parity gate."""

    enabled: bool = Field(True, description="Export model.onnx at the end of training.")
    opset: int | None = Field(
        None, ge=13, description="ONNX opset; None uses the pinned mlops_kit opset."
    )
    exporter: Literal["dynamo", "torchscript"] = Field(
        "dynamo", description="torch.export based exporter (needs onnxscript) or the legacy one."
    )
    atol: float = Field(1e-5, ge=0.0, description="Absolute tolerance of the parity gate.")
    rtol: float = Field(0.0, ge=0.0, description="Relative tolerance of the parity gate.")
    parity_rows: int = Field(256, ge=1, description="Held-out rows compared by the gate.")


class TrainConfig(_Section):
    """Everything a training run needs besides its data and output location."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    epochs: int = Field(20, ge=1, description="Maximum number of epochs.")
    batch_size: int = Field(
        256, ge=1, description="Global batch size (split across processes under DDP)."
    )
    patience: int | None = Field(
        3, ge=1, description="Stop after this many epochs without improvement; None disables."
    )
    monitor: Monitor = Field("val_roc_auc", description="Validation metric for early stopping.")
    min_delta: float = Field(0.0, ge=0.0, description="Smallest change that counts as better.")
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="Decision threshold for F1.")
    pos_weight: float | Literal["auto"] | None = Field(
        None, description="Weight of positives in the loss; 'auto' uses negatives/positives."
    )
    seed: int = Field(0, ge=0, description="Seeds weights, shuffling and dropout.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast on CUDA GPUs that support it, else fp32."
    )
    placement: Literal["auto", "host", "device"] = Field(
        "auto",
        description=(
            "Where the training tensors live on CUDA: 'device' (whole table in GPU memory), "
            "'host' (pinned host memory, batches copied asynchronously) or 'auto' (device when "
            "the table takes under a quarter of the free GPU memory)."
        ),
    )
    checkpoint_uri: str | None = Field(
        None, description="Where last.pt and best.pt go; default <out>/checkpoints."
    )
    restore_best: bool = Field(True, description="Finish with the weights of the best epoch.")
    deterministic: bool = Field(
        False, description="Also force deterministic kernels (slower on CUDA)."
    )
    num_threads: int | None = Field(None, ge=1, description="torch intra-op threads on CPU.")

    @field_validator("pos_weight")
    @classmethod
    def _pos_weight(cls, v: float | str | None) -> float | str | None:
        if isinstance(v, float) and v <= 0:
            raise ValueError("pos_weight must be > 0, 'auto' or null")
        return v


def parse_train_config(data: dict[str, Any] | None, source: str = "") -> TrainConfig:
    """Validate a mapping into a :class:`TrainConfig`.

    Raises:
        ConfigError: naming each bad field (dotted path), the value given and what is accepted.
    """
    try:
        return TrainConfig.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(exc, f"training config{source}", root="config")
        ) from None


def load_train_config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> TrainConfig:
    """Read a YAML training config (local path or storage URI) and apply overrides.

    Args:
        path: YAML file; None starts from the defaults.
        **overrides: top-level fields replacing those of the file (e.g. ``epochs=3``).

    Raises:
        ConfigError: the file is not a YAML mapping or a field is invalid (named).
    """
    import yaml

    from mlops_kit import storage

    data: dict[str, Any] = {}
    source = ""
    if path is not None:
        source = f" in '{os.fspath(path)}'"
        try:
            loaded = yaml.safe_load(storage.read_bytes(os.fspath(path)))
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid training config{source}: not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"invalid training config{source}: expected a mapping at the top")
        data = dict(loaded or {})
    data.update(overrides)
    return parse_train_config(data, source)


__all__ = [
    "DataConfig",
    "ExportConfig",
    "ModelConfig",
    "Monitor",
    "OptimizerConfig",
    "TrainConfig",
    "default_feature_columns",
    "load_train_config",
    "parse_train_config",
]
