"""The demo's model legs: train and export, then register and promote.

:func:`train_and_export` runs the ``training`` pipeline's step functions on local folders
(a point-in-time training set from the feature store -> ``train`` -> ``export_onnx`` with
the parity gate -> MLflow). :func:`train_on_lake` trains from the lake's records without
the feature store. :func:`register_and_promote` registers a run, promotes it to
``challenger``, records an approval and promotes it to ``champion``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_kit import storage

if TYPE_CHECKING:
    from mlops_kit.config import Settings
    from mlops_kit.registry.policy import PromotionPolicy

DEMO_POLICY: dict[str, Any] = {
    "thresholds": {"roc_auc": 0.7, "pr_auc": 0.05},
    "champion": {"metric": "roc_auc", "margin": 0.0},
    "latency": {"max_p99_ms": 5.0, "calls": 2000},
    "require_approval": True,
    "evaluation": {"label_column": "label"},
}
"""The demo's policy: synthetic data has few positives, so the floors are modest."""

DEMO_CONFIG: dict[str, Any] = {
    "epochs": 4,
    "patience": None,
    "batch_size": 256,
    "model": {"hidden_sizes": [32, 16]},
    "export": {"exporter": "torchscript"},
}
"""The training configuration of :func:`train_on_lake`."""


@dataclass
class LocalArtifact:
    """A folder or file standing in for a KFP artifact (path + metadata + metrics)."""

    path: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def log_metric(self, metric: str, value: float) -> None:
        self.metadata[metric] = value


def demo_policy(label_column: str = "label", split: str = "all") -> PromotionPolicy:
    """:data:`DEMO_POLICY` as a :class:`PromotionPolicy`.

    Args:
        label_column: label column of the evaluation set.
        split: ``all`` rows, or the time-split ``validation`` rows of a training set.
    """
    from mlops_kit.registry.policy import parse_policy

    data = {**DEMO_POLICY, "evaluation": {"label_column": label_column, "split": split}}
    return parse_policy(data, "(demo)")


def train_and_export(settings: Settings, epochs: int = 12) -> dict[str, Any]:
    """Build the point-in-time training set, train, export to ONNX behind the parity gate.

    Returns:
        ``{"training_set": manifest, "train": metadata, "metrics": {...}, "export":
        metadata, "onnx_path", "training_set_path"}``.
    """
    from mlops_kit.components.runtime.training import export_onnx_step, train_step
    from mlops_kit.features import build_training_set

    root = os.path.join(str(settings.home), "training")
    set_dir = os.path.join(root, "training_set")
    manifest = build_training_set(settings, set_dir)
    settings_json = json.dumps({"home": str(settings.home), "dataset": settings.dataset})
    model = LocalArtifact(os.path.join(root, "model"))
    metrics = LocalArtifact(os.path.join(root, "metrics.json"))
    trained = train_step(
        LocalArtifact(set_dir),
        model,
        metrics,
        config_json=json.dumps({"epochs": epochs}),
        settings_json=settings_json,
    )
    onnx_model = LocalArtifact(os.path.join(root, "onnx"))
    export_metrics = LocalArtifact(os.path.join(root, "export_metrics.json"))
    exported = export_onnx_step(model, onnx_model, export_metrics, settings_json=settings_json)
    return {
        "training_set": manifest,
        "training_set_path": set_dir,
        "train": trained,
        "metrics": metrics.metadata,
        "export": exported,
        "onnx_path": onnx_model.path,
    }


def promote(settings: Settings, trained: dict[str, Any]) -> dict[str, Any]:
    """Register the exported run and promote it, evaluated on the training set's
    validation rows (its label column as the manifest names it)."""
    import warnings

    labels = trained["training_set"].get("label_columns") or ["label"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return register_and_promote(
            settings,
            trained["export"]["mlflow_run_id"],
            evaluation_uri=trained["training_set_path"],
            policy=demo_policy(label_column=labels[0], split="validation"),
        )


def challenger_of(settings: Settings, trained: dict[str, Any]) -> str:
    """Register an exported run, make it challenger through the gates and record an
    approval (a rollout promotes it to champion only when it passes every step); its
    version."""
    import warnings

    from mlops_kit.registry.names import CHALLENGER
    from mlops_kit.registry.registry import ModelRegistry

    labels = trained["training_set"].get("label_columns") or ["label"]
    policy = demo_policy(label_column=labels[0], split="validation")
    registry = ModelRegistry(settings)
    name = registry.default_name(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        version = str(
            registry.register(trained["export"]["mlflow_run_id"], name, who="demo")["version"]
        )
        decision = registry.promote(
            name,
            version,
            policy,
            target=CHALLENGER,
            evaluation=trained["training_set_path"],
            who="demo",
        )
    if decision.accepted:
        registry.approve(name, version, who="demo", why="make demo: canary rollout")
    return version


def train_on_lake(settings: Settings, *, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train and log a small model on the lake's records (no feature store needed).

    The training table is :func:`~mlops_kit.training.build_training_table` of the
    settings' dataset spec; its validation rows become the fixed evaluation set.

    Returns:
        ``{"run_id", "bundle_uri", "training_set_uri", "evaluation_uri", "metrics",
        "parity", "seconds"}``.
    """
    from mlops_kit.data.spec import spec_of
    from mlops_kit.tracking import Lineage, log_training_run, tracking_target_of
    from mlops_kit.training import TrainConfig, build_training_table, time_split, train
    from mlops_kit.training.config import default_feature_columns

    t0 = time.perf_counter()
    spec = spec_of(settings)
    models = str(settings.storage.models_uri)
    ts_uri = storage.join(models, "demo", "training-set")
    bundle = storage.join(models, "demo", "bundle")
    eval_uri = storage.join(models, "demo", "evaluation.parquet")
    table = build_training_table(settings)
    storage.write_parquet(storage.join(ts_uri, "data.parquet"), table)
    base = dict(config or DEMO_CONFIG)
    data = dict(base.get("data") or {})
    data.setdefault("feature_columns", default_feature_columns(spec))
    base["data"] = data
    cfg = TrainConfig.model_validate(base)
    storage.write_json(
        storage.join(ts_uri, "manifest.json"),
        {
            "features": cfg.data.feature_columns,
            "label_columns": [cfg.data.label_column],
            "dataset": spec.lineage(),
            "source": "build_training_table",
        },
    )
    storage.write_parquet(eval_uri, time_split(table, cfg.data).validation)
    lineage = Lineage.from_training_set(ts_uri, launcher="local")
    result = train(cfg, storage.join(ts_uri, "data.parquet"), bundle, resume=False)
    run_id = log_training_run(
        result,
        bundle,
        result.parity,
        lineage,
        target=tracking_target_of(settings, experiment="demo"),
        run_name="demo",
    )
    return {
        "run_id": run_id,
        "bundle_uri": bundle,
        "training_set_uri": ts_uri,
        "evaluation_uri": eval_uri,
        "metrics": dict(result.metrics),
        "parity": result.parity,
        "seconds": time.perf_counter() - t0,
    }


def register_and_promote(
    settings: Settings,
    run_id: str | None = None,
    *,
    name: str | None = None,
    evaluation_uri: str | None = None,
    policy: PromotionPolicy | None = None,
) -> dict[str, Any]:
    """Register a trained run, promote it to challenger, approve it, promote it to champion.

    Args:
        settings: the demo's settings.
        run_id: a run logged by ``log_training_run``; ``None`` trains one
            (:func:`train_on_lake`).
        name: registered model (default ``registry.model_name``).
        evaluation_uri: the fixed evaluation set (default: the one the training wrote).
        policy: the promotion policy (default :func:`demo_policy`).

    Returns:
        ``{"training", "registered", "challenger", "champion", "aliases", "audit",
        "audit_location", "seconds"}``; the two decisions are ``Decision.to_dict`` dicts.
    """
    from mlops_kit.registry.names import CHALLENGER, CHAMPION
    from mlops_kit.registry.registry import ModelRegistry

    t0 = time.perf_counter()
    training = None
    if run_id is None:
        training = train_on_lake(settings)
        run_id = training["run_id"]
        evaluation_uri = evaluation_uri or training["evaluation_uri"]
    policy = policy or demo_policy()
    registry = ModelRegistry(settings)
    name = registry.default_name(name)
    registered = registry.register(run_id, name, who="demo")
    version = registered["version"]
    challenger = registry.promote(
        name, version, policy, target=CHALLENGER, evaluation=evaluation_uri, who="demo"
    )
    champion = None
    if challenger.accepted:
        registry.approve(name, version, who="demo", why="make demo: gates passed on challenger")
        champion = registry.promote(
            name,
            CHALLENGER,
            policy,
            target=CHAMPION,
            evaluation=evaluation_uri,
            who="demo",
            why="make demo",
        )
    return {
        "training": training,
        "registered": registered,
        "challenger": challenger.to_dict(),
        "champion": champion.to_dict() if champion is not None else None,
        "aliases": registry.aliases(name),
        "audit": registry.audit(name),
        "audit_location": registry.audit_log.location(name),
        "seconds": time.perf_counter() - t0,
    }
