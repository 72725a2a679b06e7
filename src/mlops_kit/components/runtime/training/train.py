"""The ``train`` component's step: train in the pipeline's pod and write the model bundle."""

from __future__ import annotations

import os
from typing import Any

from mlops_kit import storage
from mlops_kit.components.runtime import ArtifactLike, MetricsLike, settings_from_json
from mlops_kit.components.runtime.training.artifacts import (
    LINEAGE_FILE,
    log_summary,
    tracking_target,
    train_config,
    training_data_uri,
    training_set_defaults,
    write_tracking,
)


def train_step(
    training_set: ArtifactLike,
    model: ArtifactLike,
    metrics: MetricsLike,
    config_json: str = "{}",
    label_column: str = "",
    experiment: str = "",
    tracking_uri: str = "",
    track: bool = True,
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Train in this process (the pipeline's pod) and write the model bundle.

    Args:
        training_set: input; a training-set folder (``data.parquet`` + ``manifest.json``)
            or a training table (Parquet file or folder).
        model: output; the model bundle folder (without ONNX: see ``export_onnx``).
        metrics: output; ``val_roc_auc``, ``val_pr_auc``, ``val_f1``, ``val_loss``... of the
            restored best epoch, ``best_epoch``, ``epochs_run``.
        config_json: TrainConfig fields as a JSON object (``export`` is forced off).
        label_column: the label column ("": the config's; for a training-set folder whose
            manifest names them, its first label column, and its features unless the
            config lists some).
        experiment: MLflow experiment ("": ``MLFLOW_EXPERIMENT_NAME`` or ``mlops-kit``).
        tracking_uri: MLflow tracking URI ("": ``MLFLOW_TRACKING_URI`` or the local store).
        track: log the run to MLflow.
        settings_json: settings overrides (see ``settings_from_json``).

    Returns:
        The metadata written on ``model``.
    """
    from mlops_kit.tracking.lineage import Lineage
    from mlops_kit.training.trainer import train

    settings = settings_from_json(settings_json)
    config = train_config(config_json, label_column, training_set_defaults(training_set))
    lineage = Lineage.from_training_set(training_set.path, launcher="local")
    os.makedirs(model.path, exist_ok=True)
    storage.write_json(os.path.join(model.path, LINEAGE_FILE), lineage.to_dict())
    callbacks: list[Any] = []
    callback: Any = None
    target: Any = None
    if track:
        from mlops_kit.tracking.runs import MlflowCallback

        target = tracking_target(settings, tracking_uri, experiment)
        callback = MlflowCallback(config, target, tags=lineage.tags())
        callback.start()
        callbacks.append(callback)
    try:
        result = train(
            config, training_data_uri(training_set), model.path, resume=False, callbacks=callbacks
        )
    except BaseException:
        if callback is not None:
            callback.finish(None, status="FAILED")
        raise
    summary = storage.read_json(os.path.join(model.path, "metrics.json"))
    log_summary(model, metrics, summary)
    model.metadata["lineage"] = lineage.tags()
    if callback is not None:
        from mlops_kit.tracking.runs import log_training_run

        run_id = log_training_run(
            result, model.path, None, lineage, run_id=callback.run_id, target=target
        )
        info = write_tracking(model.path, target, run_id)
        model.metadata.update({f"mlflow_{k}": v for k, v in info.items()})
        metrics.metadata["mlflow_run_id"] = run_id
    return dict(model.metadata)


__all__ = ["train_step"]
