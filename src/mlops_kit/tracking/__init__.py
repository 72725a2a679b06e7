"""Experiment tracking: a thin facade over MLflow for training runs and their lineage.

Importing this package does not import mlflow (about 3 s); the MLflow side loads on
first use of :class:`MlflowCallback` or :func:`log_training_run`::

    from mlops_kit.tracking import Lineage, MlflowCallback, log_training_run

    lineage = Lineage.from_training_set("file:///data/ts")        # manifest hash, service
    cb = MlflowCallback(config, tags=lineage.tags())
    result = train(config, "file:///data/ts/data.parquet", "file:///models/m1", callbacks=[cb])
    cb.finish(result)
    run_id = log_training_run(result, "file:///models/m1", lineage=lineage, run_id=cb.run_id)

Where runs go (:func:`tracking_target_of`): ``MLFLOW_TRACKING_URI`` when set, else for the
local profile ``sqlite:///<home>/mlflow.db`` with artifacts under
``<storage.models_uri>/mlflow-artifacts``; the aws profile needs ``MLFLOW_TRACKING_URI``.
See docs/tracking.md.
"""

from __future__ import annotations

from mlops_kit._lazy import lazy_exports
from mlops_kit.tracking.errors import TrackingError
from mlops_kit.tracking.lineage import LINEAGE_TAGS, Lineage, git_commit
from mlops_kit.tracking.target import (
    DEFAULT_EXPERIMENT,
    TRACKING_URI_ENV,
    TrackingTarget,
    tracking_target_of,
)

_LAZY: dict[str, str] = {
    "MlflowCallback": "mlops_kit.tracking.runs",
    "log_training_run": "mlops_kit.tracking.runs",
    "start_run": "mlops_kit.tracking.runs",
    "flatten_params": "mlops_kit.tracking.runs",
    "model_signature": "mlops_kit.tracking.runs",
    "model_uri": "mlops_kit.tracking.runs",
    "client_for": "mlops_kit.tracking.runs",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "DEFAULT_EXPERIMENT",
    "LINEAGE_TAGS",
    "TRACKING_URI_ENV",
    "Lineage",
    "MlflowCallback",
    "TrackingError",
    "TrackingTarget",
    "client_for",
    "flatten_params",
    "git_commit",
    "log_training_run",
    "model_signature",
    "model_uri",
    "start_run",
    "tracking_target_of",
]
