"""Model registry promotion: MLflow aliases, evaluation gates, approvals, audit, rollback.

Importing this package does not import mlflow, onnxruntime or torch; they load on first
use of :class:`ModelRegistry`::

    from mlops_kit.registry import ModelRegistry, load_policy

    registry = ModelRegistry(settings)
    version = registry.register(run_id, "device-failure")["version"]
    decision = registry.promote("device-failure", version, load_policy("policy.yaml"),
                                target="challenger", evaluation="/data/eval.parquet")
    registry.approve("device-failure", version, who="ana", why="reviewed the figures")
    decision = registry.promote("device-failure", "challenger", target="champion", ...)
    registry.rollback("device-failure", why="error rate up after the release")

See docs/registry.md.
"""

from __future__ import annotations

from mlops_kit._lazy import lazy_exports
from mlops_kit.registry.errors import (
    MissingArtifactError,
    ModelNotFoundError,
    PolicyError,
    RegistryError,
    RegistryLockError,
)
from mlops_kit.registry.policy import (
    ChampionGate,
    EvaluationSpec,
    LatencyGate,
    PromotionPolicy,
    Thresholds,
    load_policy,
    parse_policy,
)

_LAZY: dict[str, str] = {
    "ModelRegistry": "mlops_kit.registry.registry",
    "Decision": "mlops_kit.registry.promotion",
    "Check": "mlops_kit.registry.gates",
    "Evidence": "mlops_kit.registry.gates",
    "decide": "mlops_kit.registry.gates",
    "CHAMPION": "mlops_kit.registry.names",
    "CHALLENGER": "mlops_kit.registry.names",
    "PREVIOUS": "mlops_kit.registry.names",
    "Evaluation": "mlops_kit.registry.evaluate",
    "evaluate_onnx": "mlops_kit.registry.evaluate",
    "read_evaluation_table": "mlops_kit.registry.evaluate",
    "AuditLog": "mlops_kit.registry.audit",
    "read_audit": "mlops_kit.registry.audit",
    "registry_lock": "mlops_kit.registry.lock",
    "SageMakerMirror": "mlops_kit.registry.sagemaker_mirror",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS",
    "AuditLog",
    "ChampionGate",
    "Check",
    "Decision",
    "Evaluation",
    "EvaluationSpec",
    "Evidence",
    "LatencyGate",
    "MissingArtifactError",
    "ModelNotFoundError",
    "ModelRegistry",
    "PolicyError",
    "PromotionPolicy",
    "RegistryError",
    "RegistryLockError",
    "SageMakerMirror",
    "Thresholds",
    "decide",
    "evaluate_onnx",
    "load_policy",
    "parse_policy",
    "read_audit",
    "read_evaluation_table",
    "registry_lock",
]
