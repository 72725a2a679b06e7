"""The registry's part of the demo: train a small model on the demo lake, register, promote.

:func:`train_demo_model` builds the point-in-time training table from the lake the demo's
ETL wrote, trains a small MLP, exports it to ONNX behind the parity gate and logs it to
MLflow; it also writes the validation rows as the fixed evaluation set.
:func:`demo_step` registers that run's model, promotes it to ``challenger``, records an
approval and promotes it to ``champion``, and returns the decisions to print.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mlops_kit import storage
from mlops_kit.registry.policy import PromotionPolicy, parse_policy

if TYPE_CHECKING:
    from mlops_kit.config import Settings

DEMO_POLICY: dict[str, Any] = {
    "thresholds": {"roc_auc": 0.7, "pr_auc": 0.05},
    "champion": {"metric": "roc_auc", "margin": 0.0},
    "latency": {"max_p99_ms": 5.0, "calls": 2000},
    "require_approval": True,
    "evaluation": {"label_column": "label"},
}
"""The demo's policy: the synthetic fleet has few failures, so the floors are modest."""

DEMO_CONFIG: dict[str, Any] = {
    "epochs": 4,
    "patience": None,
    "batch_size": 256,
    "model": {"hidden_sizes": [32, 16]},
    "export": {"exporter": "torchscript"},
}


def demo_policy(label_column: str = "label", split: str = "all") -> PromotionPolicy:
    """:data:`DEMO_POLICY` as a :class:`PromotionPolicy`.

    Args:
        label_column: label column of the evaluation set (``failure`` in a training set
            built from the feature store).
        split: ``all`` rows, or the time-split ``validation`` rows of a training set.
    """
    data = {**DEMO_POLICY, "evaluation": {"label_column": label_column, "split": split}}
    return parse_policy(data, "(demo)")


def train_demo_model(settings: Settings, *, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train and log a small model on the demo lake.

    Args:
        settings: settings whose lake holds the ETL's ``readings`` and hourly features.
        config: TrainConfig overrides (default :data:`DEMO_CONFIG`).

    Returns:
        ``{"run_id", "bundle_uri", "training_set_uri", "evaluation_uri", "metrics",
        "parity", "seconds"}``.
    """
    from mlops_kit.tracking import Lineage, log_training_run, resolve_target
    from mlops_kit.training import TrainConfig, build_training_table, time_split, train

    t0 = time.perf_counter()
    models = str(settings.storage.models_uri)
    ts_uri = storage.join(models, "demo", "training-set")
    bundle = storage.join(models, "demo", "bundle")
    eval_uri = storage.join(models, "demo", "evaluation.parquet")
    from mlops_kit.data.spec import spec_of
    from mlops_kit.training.config import default_feature_columns

    spec = spec_of(settings)
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
        target=resolve_target(settings, experiment="demo"),
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


def demo_step(
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
            (:func:`train_demo_model`).
        name: registered model (default ``registry.model_name``).
        evaluation_uri: the fixed evaluation set (default: the one the training wrote).
        policy: the promotion policy (default :func:`demo_policy`).

    Returns:
        ``{"training", "registered", "challenger", "champion", "aliases", "audit",
        "seconds"}`` where the two decisions are :meth:`Decision.to_dict` dicts.
    """
    from mlops_kit.registry.names import CHALLENGER, CHAMPION
    from mlops_kit.registry.registry import ModelRegistry

    t0 = time.perf_counter()
    training = None
    if run_id is None:
        training = train_demo_model(settings)
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


__all__ = ["DEMO_CONFIG", "DEMO_POLICY", "demo_policy", "demo_step", "train_demo_model"]
