"""The names the registry writes and reads: aliases, version and model tags, artifact paths.

Aliases (not the deprecated stages) say what each version is for: ``challenger`` (the
candidate), ``champion`` (production; serving follows it) and ``previous_champion`` (the
champion before the current one, so a rollback is one alias move). The tags record a
version's lineage, gates and decisions; ``mlops_kit.champion_history`` on the registered
model keeps the whole chain of champions.
"""

from __future__ import annotations

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous_champion"
TARGETS = (CHAMPION, CHALLENGER)

TAG_RUN = "mlops_kit.run_id"
TAG_MODEL_ID = "mlops_kit.model_id"
TAG_ONNX_SHA = "mlops_kit.onnx_sha256"
TAG_PARITY = "mlops_kit.parity_passed"
TAG_QUALITY = "mlops_kit.data_quality_passed"
TAG_QUALITY_REPORT = "mlops_kit.data_quality_report"
TAG_APPROVAL = "mlops_kit.approval"
TAG_ROLLED_BACK = "mlops_kit.rolled_back"
TAG_HISTORY = "mlops_kit.champion_history"
TAG_SAGEMAKER = "mlops_kit.sagemaker_package_arn"
ONNX_MODEL_NAME = "model"
PREPROCESS_ARTIFACT = "preprocessing/preprocess.json"
TORCH_ARTIFACT = "torch/model.pt"
SERVING_TAGS = ("mlops_kit.dataset", "mlops_kit.dataset_version")
"""Version tags serving checks against the settings (the dataset the model was trained on)."""
TAG_VALUE_MAX = 4900
"""Longest tag value written (longer values are cut to fit MLflow's limit)."""

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "ONNX_MODEL_NAME",
    "PREPROCESS_ARTIFACT",
    "PREVIOUS",
    "SERVING_TAGS",
    "TAG_APPROVAL",
    "TAG_HISTORY",
    "TAG_MODEL_ID",
    "TAG_ONNX_SHA",
    "TAG_PARITY",
    "TAG_QUALITY",
    "TAG_QUALITY_REPORT",
    "TAG_ROLLED_BACK",
    "TAG_RUN",
    "TAG_SAGEMAKER",
    "TAG_VALUE_MAX",
    "TARGETS",
    "TORCH_ARTIFACT",
]
