"""What the training steps share: the model artifact's files, the component's TrainConfig,
the training-set URIs, the MLflow target and the summary metrics of a trained bundle.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from mlops_kit import storage
from mlops_kit.components.runtime import ArtifactLike, MetricsLike
from mlops_kit.errors import ConfigError
from mlops_kit.model import bundle

if TYPE_CHECKING:
    from mlops_kit.config import Settings

TRACKING_FILE = "tracking.json"
LINEAGE_FILE = "lineage.json"
BUNDLE_FILES = bundle.FILES
"""Files of a model bundle copied into a model artifact (checkpoints stay where they are)."""
SUMMARY_METRICS = ("loss", "roc_auc", "pr_auc", "f1", "positive_rate", "n")


def json_object(text: str, name: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object (``""``: ``{}``) for the parameter ``name``.

    Raises:
        ConfigError: invalid JSON or not an object (named).
    """
    raw = (text or "").strip() or "{}"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} is not valid JSON ({exc}): pass a JSON object") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


def train_config(
    config_json: str = "{}", label_column: str = "", defaults: dict[str, Any] | None = None
) -> Any:
    """The TrainConfig of a component: JSON overrides, the label column, export off.

    The ONNX export is the ``export_onnx`` component's job, so ``export.enabled`` is
    always false here. ``defaults`` fill ``data`` fields the JSON leaves out (the
    training set's features and label, see :func:`training_set_defaults`).

    Raises:
        ConfigError: invalid JSON or an invalid field (named).
    """
    from mlops_kit.training.config import parse_train_config

    data = json_object(config_json, "config_json")
    if defaults:
        section = data.setdefault("data", {})
        if not isinstance(section, dict):
            raise ConfigError("config_json: 'data' must be an object")
        for name, value in defaults.items():
            section.setdefault(name, value)
    if label_column:
        data.setdefault("data", {})
        if not isinstance(data["data"], dict):
            raise ConfigError("config_json: 'data' must be an object")
        data["data"]["label_column"] = label_column
    export = data.setdefault("export", {})
    if not isinstance(export, dict):
        raise ConfigError("config_json: 'export' must be an object")
    export["enabled"] = False
    return parse_train_config(data, " in config_json")


def training_set_defaults(training_set: ArtifactLike) -> dict[str, Any]:
    """What a training-set folder's manifest says to train on: its features (the
    feature service's, by bare name) and its first label column; empty without one."""
    path = training_set.path
    manifest = os.path.join(path, "manifest.json")
    if not (os.path.isdir(path) and os.path.isfile(manifest)):
        return {}
    data = storage.read_json(manifest)
    out: dict[str, Any] = {}
    features = data.get("features") if isinstance(data, dict) else None
    if features:
        out["feature_columns"] = [str(f).split(":", 1)[-1] for f in features]
    labels = data.get("label_columns") if isinstance(data, dict) else None
    if labels:
        out["label_column"] = str(labels[0])
    return out


def training_data_uri(training_set: ArtifactLike) -> str:
    """The table to train on: ``data.parquet`` of a training-set folder, else the artifact."""
    path = training_set.path
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "data.parquet")):
        return os.path.join(path, "data.parquet")
    return path


def remote_data_uri(training_set: ArtifactLike) -> str:
    """The table a remote job reads: under the artifact's remote ``uri`` when it has one."""
    local = training_data_uri(training_set)
    remote = str(getattr(training_set, "uri", "") or "")
    if not remote or "://" not in remote or remote.startswith("file://"):
        return local
    if local.endswith("data.parquet") and local != training_set.path:
        return storage.join(remote, "data.parquet")
    return remote


def tracking_target(settings: Settings, tracking_uri: str, experiment: str) -> Any:
    """The MLflow target of a step (``""`` parameters: the settings' and environment's)."""
    from mlops_kit.tracking.target import tracking_target_of

    return tracking_target_of(settings, uri=tracking_uri or None, experiment=experiment or None)


def write_tracking(folder: str, target: Any, run_id: str) -> dict[str, Any]:
    """Write ``tracking.json`` (run id, experiment, tracking URI) into a model folder."""
    info = {
        "run_id": run_id,
        "experiment": target.experiment,
        "tracking_uri": target.display_uri,
    }
    storage.write_json(os.path.join(folder, TRACKING_FILE), info)
    return info


def read_optional(folder: str, name: str) -> Any:
    """The JSON file ``name`` of ``folder``, or None when it is absent."""
    path = os.path.join(folder, name)
    return storage.read_json(path) if os.path.isfile(path) else None


def log_summary(model: ArtifactLike, metrics: MetricsLike, summary: dict[str, Any]) -> None:
    """Log a bundle's ``metrics.json`` summary as metrics and metadata of both artifacts."""
    final = dict(summary.get("metrics") or {})
    for key in SUMMARY_METRICS:
        if key in final and final[key] is not None:
            metrics.log_metric(f"val_{key}", float(final[key]))
    metrics.log_metric("best_epoch", int(summary.get("best_epoch", 0)))
    metrics.log_metric("epochs_run", int(summary.get("epochs_run", 0)))
    meta = {
        **{f"val_{k}": final[k] for k in SUMMARY_METRICS if k in final},
        "best_epoch": summary.get("best_epoch"),
        "epochs_run": summary.get("epochs_run"),
        "stopped_early": bool(summary.get("stopped_early")),
        "device": summary.get("device"),
        "precision": summary.get("precision"),
        "world_size": summary.get("world_size"),
    }
    model.metadata.update(meta)
    metrics.metadata.update(meta)


__all__ = [
    "BUNDLE_FILES",
    "LINEAGE_FILE",
    "SUMMARY_METRICS",
    "TRACKING_FILE",
    "json_object",
    "log_summary",
    "read_optional",
    "remote_data_uri",
    "tracking_target",
    "train_config",
    "training_data_uri",
    "write_tracking",
]
