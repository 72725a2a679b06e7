"""The demo's training leg: training set -> train -> ONNX export with parity -> MLflow.

It runs the same step functions the ``training`` pipeline's components run, on local
folders instead of KFP artifacts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_kit.config import Settings


@dataclass
class LocalArtifact:
    """A folder or file standing in for a KFP artifact (path + metadata + metrics)."""

    path: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def log_metric(self, metric: str, value: float) -> None:
        self.metadata[metric] = value


def train_and_export(settings: Settings, epochs: int = 12) -> dict[str, Any]:
    """Build the point-in-time training set, train, export to ONNX behind the parity gate.

    Returns:
        ``{"training_set": manifest, "train": metadata, "metrics": {...}, "export": metadata}``.
    """
    from mlops_kit.components.runtime.training import export_onnx_step, train_step
    from mlops_kit.features import build_training_set

    root = os.path.join(str(settings.home), "training")
    set_dir = os.path.join(root, "training_set")
    manifest = build_training_set(settings, set_dir)
    settings_json = json.dumps({"home": str(settings.home)})
    model = LocalArtifact(os.path.join(root, "model"))
    metrics = LocalArtifact(os.path.join(root, "metrics.json"))
    trained = train_step(
        LocalArtifact(set_dir),
        model,
        metrics,
        config_json=json.dumps({"epochs": epochs}),
        label_column="failure",
        settings_json=settings_json,
    )
    onnx_model = LocalArtifact(os.path.join(root, "onnx"))
    export_metrics = LocalArtifact(os.path.join(root, "export_metrics.json"))
    exported = export_onnx_step(model, onnx_model, export_metrics, settings_json=settings_json)
    return {
        "training_set": manifest,
        "train": trained,
        "metrics": metrics.metadata,
        "export": exported,
        "onnx_path": onnx_model.path,
    }
