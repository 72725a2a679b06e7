"""What the registry components run: evaluate, register, promote (no kfp import).

Like :mod:`mlops_kit.components.runtime`: an artifact is anything with a ``path`` and a
``metadata`` dict; a metrics artifact also has ``log_metric``; a classification-metrics
artifact may have ``log_roc_curve`` and ``log_confusion_matrix`` (used when present). An
output parameter (``dsl.OutputPath(str)``) arrives as the path of a file to write.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from mlops_kit.components.runtime import ArtifactLike, MetricsLike, settings_from_json
from mlops_kit.registry.errors import MissingArtifactError, PolicyError
from mlops_kit.registry.policy import PromotionPolicy, load_policy, parse_policy

if TYPE_CHECKING:
    from mlops_kit.config import Settings


def _write_param(path: str, value: str) -> None:
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(value)


def policy_from_text(text: str, settings: Settings) -> PromotionPolicy:
    """The policy of a component: JSON/YAML text, else the ``registry.policy`` file.

    Raises:
        PolicyError: the text is not a mapping, or has an unknown key or a wrong type.
    """
    import yaml

    raw = (text or "").strip()
    if raw in ("", "{}"):
        return load_policy(settings.registry.policy)
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy_json is neither JSON nor YAML: {exc}") from None
    return parse_policy(data, "(policy_json)")


def _with_evaluation(policy: PromotionPolicy, label_column: str, split: str) -> PromotionPolicy:
    changes: dict[str, Any] = {}
    if label_column:
        changes["label_column"] = label_column
    if split:
        changes["split"] = split
    if not changes:
        return policy
    data = policy.model_dump()
    data["evaluation"].update(changes)
    return parse_policy(data, "(policy_json with label_column/split)")


def evaluate_model_step(
    onnx_model: ArtifactLike,
    evaluation: ArtifactLike,
    metrics: Any,
    scores: MetricsLike,
    passed: str,
    policy_json: str = "{}",
    label_column: str = "",
    split: str = "",
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Score the ONNX folder on the evaluation set; write ``passed``.

    Args:
        onnx_model: input; ``model.onnx`` + ``preprocess.json`` (+ ``parity.json``).
        evaluation: input; the evaluation set (training-set folder or Parquet).
        metrics: output; ROC curve and confusion matrix.
        scores: output; the figures as metrics.
        passed: output parameter path; ``true`` when thresholds, parity and latency hold.
        policy_json: policy text ("{}": the setting's file or the defaults).
        label_column: label column ("": the policy's).
        split: ``all`` or ``validation`` ("": the policy's).
        settings_json: settings overrides.

    Returns:
        ``{"evaluation": ..., "checks": {...}, "passed": bool}``.
    """
    from mlops_kit import storage
    from mlops_kit.model import bundle
    from mlops_kit.model.preprocess import Preprocessor
    from mlops_kit.registry.evaluate import evaluate_folder, read_evaluation_table
    from mlops_kit.registry.gates import Check, Evidence, decide

    settings = settings_from_json(settings_json)
    policy = _with_evaluation(policy_from_text(policy_json, settings), label_column, split)
    pre_path = os.path.join(onnx_model.path, bundle.PREPROCESS)
    if not os.path.isfile(pre_path):
        raise MissingArtifactError(f"'{onnx_model.path}' has no {bundle.PREPROCESS}")
    names = list(Preprocessor.load(pre_path).feature_names)
    table = read_evaluation_table(evaluation.path, policy.evaluation, names)
    latency = policy.latency
    result = evaluate_folder(
        onnx_model.path, table, policy.evaluation, latency.calls, latency.warmup
    )
    parity_path = os.path.join(onnx_model.path, bundle.PARITY)
    parity = storage.read_json(parity_path) if os.path.isfile(parity_path) else {}
    parity_passed = bool(parity.get("passed", onnx_model.metadata.get("parity_passed", False)))
    evidence = Evidence(
        model=onnx_model.metadata.get("model_name", ""),
        version="",
        target="challenger",
        candidate=result.to_dict(),
        parity=Check(
            "onnx_parity",
            parity_passed,
            parity.get("max_abs_diff"),
            parity.get("atol"),
            "as measured at export (parity.json); promotion recomputes it on the registered graph",
        ),
    )
    judged = decide(policy, evidence, gates=("thresholds", "onnx_parity", "latency"))
    checks = {c.name: c.passed for c in judged}
    ok = all(checks.values())
    figures = result.to_dict()
    for key in (
        "roc_auc",
        "pr_auc",
        "f1",
        "positive_rate",
        "n",
        "latency_p50_ms",
        "latency_p99_ms",
    ):
        if figures.get(key) is not None:
            scores.log_metric(key, float(figures[key]))
    if hasattr(metrics, "log_roc_curve"):
        metrics.log_roc_curve(result.roc["fpr"], result.roc["tpr"], result.roc["threshold"])
    if hasattr(metrics, "log_confusion_matrix"):
        metrics.log_confusion_matrix(["no failure", "failure"], result.confusion)
    meta = {**figures, "checks": checks, "passed": ok, "policy_sha256": policy.sha256()}
    scores.metadata.update(meta)
    metrics.metadata.update({"roc_auc": result.roc_auc, "confusion": result.confusion})
    _write_param(passed, "true" if ok else "false")
    return {"evaluation": figures, "checks": checks, "passed": ok}


def register_model_step(
    onnx_model: ArtifactLike,
    version: str,
    model_name: str = "",
    run_id: str = "",
    quality_report: str = "",
    tracking_uri: str = "",
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Register the MLflow run of ``onnx_model`` as a new version; write ``version``.

    Args:
        onnx_model: input; its metadata ``mlflow_run_id`` names the run.
        version: output parameter path; the new version number.
        model_name: registered model ("": ``registry.model_name``).
        run_id: the run ("": the artifact's ``mlflow_run_id``).
        quality_report: the training data's quality report ("": the default lookup).
        tracking_uri: MLflow tracking URI ("": default).
        settings_json: settings overrides.

    Raises:
        MissingArtifactError: no run id, or the run has no ONNX model.
    """
    from mlops_kit.registry.registry import ModelRegistry

    settings = settings_from_json(settings_json)
    run = run_id or str(onnx_model.metadata.get("mlflow_run_id") or "")
    if not run:
        raise MissingArtifactError(
            "register_model needs the MLflow run: export_onnx with track=true writes it into "
            "the onnx_model metadata (mlflow_run_id), or pass run_id"
        )
    registry = ModelRegistry(settings, tracking_uri=tracking_uri or None)
    out = registry.register(run, model_name or None, quality_report=quality_report or None)
    _write_param(version, str(out["version"]))
    return out


def promote_model_step(
    evaluation: ArtifactLike,
    report: MetricsLike,
    decision: str,
    reasons: str,
    version: str,
    model_name: str = "",
    target: str = "challenger",
    policy_json: str = "{}",
    label_column: str = "",
    split: str = "",
    who: str = "pipeline",
    why: str = "",
    tracking_uri: str = "",
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Run :meth:`~mlops_kit.registry.ModelRegistry.promote`; write ``decision`` and ``reasons``.

    A refusal is an outcome, not a failure: the task succeeds and the pipeline branches on
    ``decision``. Bad input (unknown model or version, invalid policy) fails the task.

    Args:
        evaluation: input; the fixed evaluation set.
        report: output; each check as a 1/0 metric, the figures in the metadata.
        decision: output parameter path; ``accepted`` or ``refused``.
        reasons: output parameter path; JSON list of the failed checks.
        version: version number or alias.
        model_name: registered model ("": ``registry.model_name``).
        target: ``challenger`` or ``champion``.
        policy_json: policy text ("{}": the setting's file or the defaults).
        label_column: label column ("": the policy's).
        split: ``all`` or ``validation`` ("": the policy's).
        who: recorded.
        why: recorded.
        tracking_uri: MLflow tracking URI ("": default).
        settings_json: settings overrides.

    Returns:
        The decision as a dict.
    """
    from mlops_kit.registry.registry import ModelRegistry

    settings = settings_from_json(settings_json)
    policy = _with_evaluation(policy_from_text(policy_json, settings), label_column, split)
    registry = ModelRegistry(settings, tracking_uri=tracking_uri or None)
    name = registry.default_name(model_name or None)
    out = registry.promote(
        name, version, policy, target=target, evaluation=evaluation.path, who=who, why=why
    ).to_dict()
    for check in out["checks"]:
        report.log_metric(check["name"], 1.0 if check["passed"] else 0.0)
    report.metadata.update(
        {
            "decision": out["decision"],
            "model": name,
            "version": out["version"],
            "target": target,
            "reasons": out["reasons"],
            "aliases": out["aliases"],
            "evaluation": out["evaluation"],
            "audit_id": out["audit_id"],
        }
    )
    _write_param(decision, out["decision"])
    _write_param(reasons, json.dumps(out["reasons"]))
    return out


__all__ = [
    "evaluate_model_step",
    "policy_from_text",
    "promote_model_step",
    "register_model_step",
]
