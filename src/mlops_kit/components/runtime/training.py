"""What the training components run: train, launch on EKS or SageMaker, export to ONNX.

Like :mod:`mlops_kit.components.runtime` (no kfp import): an artifact is anything with a
``path`` and a ``metadata`` dict (a metrics artifact also has ``log_metric``); the
training-set and model artifacts may also have a ``uri`` (their remote location in a
cluster, e.g. ``s3://...``), which remote jobs read from.

A model artifact is a model bundle folder (``model.pt``, ``preprocess.json``,
``metrics.json``, ``config.json``, ``holdout.parquet``) plus ``tracking.json`` (the MLflow
run, when tracked) and ``lineage.json``; the ONNX artifact holds ``model.onnx``,
``parity.json`` and ``preprocess.json``, enough to serve.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import TYPE_CHECKING, Any

from mlops_kit import storage
from mlops_kit.components.runtime import ArtifactLike, MetricsLike, settings_from_json
from mlops_kit.errors import ConfigError
from mlops_kit.model import bundle

if TYPE_CHECKING:
    from mlops_kit.config import Settings

TRACKING_FILE = "tracking.json"
LINEAGE_FILE = "lineage.json"
BUNDLE_FILES = bundle.FILES
"""Files of a model bundle copied into a model artifact (checkpoints stay where they are)."""
SUMMARY_METRICS = ("loss", "roc_auc", "pr_auc", "f1", "positive_rate", "n")


def _json_object(text: str, name: str) -> dict[str, Any]:
    raw = (text or "").strip() or "{}"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} is not valid JSON ({exc}): pass a JSON object") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


def train_config(config_json: str = "{}", label_column: str = "") -> Any:
    """The TrainConfig of a component: JSON overrides, the label column, export off.

    The ONNX export is the ``export_onnx`` component's job, so ``export.enabled`` is
    always false here.

    Raises:
        ConfigError: invalid JSON or an invalid field (named).
    """
    from mlops_kit.training.config import parse_train_config

    data = _json_object(config_json, "config_json")
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


def training_data_uri(training_set: ArtifactLike) -> str:
    """The table to train on: ``data.parquet`` of a training-set folder, else the artifact."""
    path = training_set.path
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "data.parquet")):
        return os.path.join(path, "data.parquet")
    return path


def _remote_data_uri(training_set: ArtifactLike) -> str:
    local = training_data_uri(training_set)
    remote = str(getattr(training_set, "uri", "") or "")
    if not remote or "://" not in remote or remote.startswith("file://"):
        return local
    if local.endswith("data.parquet") and local != training_set.path:
        return storage.join(remote, "data.parquet")
    return remote


def _target(settings: Settings, tracking_uri: str, experiment: str) -> Any:
    from mlops_kit.tracking.target import resolve_target

    return resolve_target(settings, uri=tracking_uri or None, experiment=experiment or None)


def _write_tracking(folder: str, target: Any, run_id: str) -> dict[str, Any]:
    info = {
        "run_id": run_id,
        "experiment": target.experiment,
        "tracking_uri": target.display_uri,
    }
    storage.write_json(os.path.join(folder, TRACKING_FILE), info)
    return info


def _read_optional(folder: str, name: str) -> Any:
    path = os.path.join(folder, name)
    return storage.read_json(path) if os.path.isfile(path) else None


def _log_summary(model: ArtifactLike, metrics: MetricsLike, summary: dict[str, Any]) -> None:
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
        label_column: the label column ("": the config's, default ``label``).
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
    config = train_config(config_json, label_column)
    lineage = Lineage.from_training_set(training_set.path, launcher="local")
    os.makedirs(model.path, exist_ok=True)
    storage.write_json(os.path.join(model.path, LINEAGE_FILE), lineage.to_dict())
    callbacks: list[Any] = []
    callback: Any = None
    target: Any = None
    if track:
        from mlops_kit.tracking.runs import MlflowCallback

        target = _target(settings, tracking_uri, experiment)
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
    _log_summary(model, metrics, summary)
    model.metadata["lineage"] = lineage.tags()
    if callback is not None:
        from mlops_kit.tracking.runs import log_training_run

        run_id = log_training_run(
            result, model.path, None, lineage, run_id=callback.run_id, target=target
        )
        info = _write_tracking(model.path, target, run_id)
        model.metadata.update({f"mlflow_{k}": v for k, v in info.items()})
        metrics.metadata["mlflow_run_id"] = run_id
    return dict(model.metadata)


def _holdout(model_dir: str, validation: ArtifactLike | None, config: Any, rows: int) -> Any:
    from mlops_kit.training.data import read_training_table, time_split

    if (
        validation is not None
        and getattr(validation, "path", "")
        and os.path.exists(validation.path)
    ):
        table = read_training_table(training_data_uri(validation), config.data)
        return time_split(table, config.data).validation.slice(0, rows)
    return storage.read_parquet(os.path.join(model_dir, "holdout.parquet")).slice(0, rows)


def export_onnx_step(
    model: ArtifactLike,
    onnx_model: ArtifactLike,
    metrics: MetricsLike,
    validation: ArtifactLike | None = None,
    atol: float = 1e-5,
    rtol: float = 0.0,
    opset: int = 0,
    exporter: str = "dynamo",
    parity_rows: int = 256,
    experiment: str = "",
    tracking_uri: str = "",
    track: bool = True,
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Export a model bundle to ONNX behind the parity gate, and log it to MLflow.

    Args:
        model: input; the model bundle of ``train`` or a launch step.
        onnx_model: output; folder with ``model.onnx``, ``parity.json`` and
            ``preprocess.json``; metadata: the parity figures, opset, sha256, MLflow run.
        metrics: output; ``parity_passed``, ``max_abs_diff``, ``max_rel_diff``, ``rows``.
        validation: optional input; a training set or table whose time-split validation
            rows feed the gate (default: the bundle's ``holdout.parquet``).
        atol: absolute tolerance of the gate.
        rtol: relative tolerance of the gate.
        opset: ONNX opset (0: the pinned one).
        exporter: ``dynamo`` or ``torchscript``.
        parity_rows: held-out rows compared.
        experiment: MLflow experiment of a new run ("": default).
        tracking_uri: MLflow tracking URI ("": ``MLFLOW_TRACKING_URI`` or the local store).
        track: log the ONNX model and parity to the bundle's MLflow run (a new run when
            the bundle was not tracked).
        settings_json: settings overrides (see ``settings_from_json``).

    Raises:
        ParityError: ONNX Runtime disagrees with PyTorch beyond the tolerance; the task
            fails with the figures and where the worst element is.
    """
    import hashlib

    from mlops_kit.model.preprocess import Preprocessor
    from mlops_kit.training.config import ExportConfig, parse_train_config
    from mlops_kit.training.errors import ParityError
    from mlops_kit.training.model import load_model
    from mlops_kit.training.onnx_export import export_and_verify

    settings = settings_from_json(settings_json)
    bundle = model.path
    config = parse_train_config(_read_optional(bundle, "config.json") or {}, " in config.json")
    export = ExportConfig(
        atol=atol,
        rtol=rtol,
        opset=opset or None,
        exporter=exporter or "dynamo",  # type: ignore[arg-type]
        parity_rows=parity_rows,
    )
    torch_model = load_model(os.path.join(bundle, "model.pt"))
    pre = Preprocessor.load(os.path.join(bundle, "preprocess.json"))
    holdout = _holdout(bundle, validation, config, export.parity_rows)
    out = onnx_model.path
    os.makedirs(out, exist_ok=True)
    tracking = _read_optional(bundle, TRACKING_FILE) or {}
    try:
        report = export_and_verify(torch_model, pre, holdout, out, export).to_dict()
    except ParityError as exc:
        failed = storage.read_json(os.path.join(out, "parity.json"))
        metrics.log_metric("parity_passed", 0)
        metrics.log_metric("max_abs_diff", float(exc.max_abs_diff))
        metrics.log_metric("max_rel_diff", float(exc.max_rel_diff))
        metrics.metadata.update({"parity": failed, "error": str(exc)})
        raise
    pre.save(os.path.join(out, "preprocess.json"))
    data = storage.read_bytes(os.path.join(out, "model.onnx"))
    metrics.log_metric("parity_passed", 1)
    metrics.log_metric("max_abs_diff", float(report["max_abs_diff"]))
    metrics.log_metric("max_rel_diff", float(report["max_rel_diff"]))
    metrics.log_metric("rows", int(report["rows"]))
    meta: dict[str, Any] = {
        "parity_passed": True,
        "max_abs_diff": report["max_abs_diff"],
        "max_rel_diff": report["max_rel_diff"],
        "where": report["where"],
        "atol": report["atol"],
        "rtol": report["rtol"],
        "rows": report["rows"],
        "opset": report["opset"],
        "providers": report["providers"],
        "exporter": export.exporter,
        "sha256": hashlib.sha256(data).hexdigest(),
        "feature_names": list(pre.feature_names),
    }
    if track:
        from mlops_kit.tracking.lineage import Lineage
        from mlops_kit.tracking.runs import log_training_run, model_uri

        lineage_data = _read_optional(bundle, LINEAGE_FILE)
        lineage = Lineage.from_dict(lineage_data) if lineage_data else None
        target = _target(settings, tracking_uri, experiment or tracking.get("experiment", ""))
        run_id = log_training_run(
            None,
            bundle,
            report,
            lineage,
            run_id=tracking.get("run_id") or None,
            target=target,
            onnx_uri=os.path.join(out, "model.onnx"),
        )
        meta.update({"mlflow_run_id": run_id, "mlflow_model_uri": model_uri(run_id)})
    onnx_model.metadata.update(meta)
    metrics.metadata.update(meta)
    return meta


# --------------------------------------------------------------------------- launchers


def _launcher(backend: str, settings: Settings) -> Any:
    from mlops_kit.training.launchers import launcher_for

    return launcher_for(backend, settings)


def _copy_bundle(src: str, dst: str) -> list[str]:
    os.makedirs(dst, exist_ok=True)
    copied = []
    for name in BUNDLE_FILES:
        uri = storage.join(src, name)
        if storage.exists(uri):
            storage.write_bytes(os.path.join(dst, name), storage.read_bytes(uri))
            copied.append(name)
    return copied


def _job_name(name: str) -> str:
    return name or f"failure-mlp-{uuid.uuid4().hex[:8]}"


def _secrets(secrets_json: str) -> dict[str, list[str]]:
    data = _json_object(secrets_json, "secrets_json")
    out: dict[str, list[str]] = {}
    for secret, keys in data.items():
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ConfigError(
                f"secrets_json: secret '{secret}' must map to a list of key names, e.g. "
                '{"mlflow-tracking": ["MLFLOW_TRACKING_URI"]}'
            )
        out[str(secret)] = list(keys)
    return out


def launch_step(
    backend: str,
    training_set: ArtifactLike,
    model: ArtifactLike,
    metrics: MetricsLike,
    spec_fields: dict[str, Any],
    *,
    name: str = "",
    config_json: str = "{}",
    label_column: str = "",
    output_uri: str = "",
    timeout_s: int = 0,
    poll_s: float = 30.0,
    experiment: str = "",
    tracking_uri: str = "",
    track: bool = True,
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Run ``python -m mlops_kit.training train`` on a launcher backend and wait for it.

    The job reads the training set from its remote URI and writes the bundle to
    ``output_uri`` (default ``<storage.models_uri>/<name>``); the bundle (without
    checkpoints) is then copied into ``model``, so ``export_onnx`` follows as after
    ``train``. The run is logged to MLflow from the bundle, tagged with the backend.

    Args:
        backend: ``local``, ``eks`` or ``sagemaker``.
        training_set: input; the training-set folder or table.
        model: output; the model bundle.
        metrics: output; as for ``train``.
        spec_fields: further :class:`~mlops_kit.training.launchers.TrainingJobSpec` fields.
        name: job name ("": ``failure-mlp-<random>``).
        config_json: TrainConfig fields as JSON (``export`` is forced off).
        label_column: the label column ("": the config's).
        output_uri: where the job writes the bundle.
        timeout_s: fail after this many seconds (0: wait for ever).
        poll_s: seconds between status polls.
        experiment: MLflow experiment ("": default).
        tracking_uri: MLflow tracking URI ("": ``MLFLOW_TRACKING_URI`` or the local store).
        track: log the run to MLflow.
        settings_json: settings overrides.

    Raises:
        TrainingJobFailedError: the job failed (reason and message in the text).
        TrainingJobTimeoutError: ``timeout_s`` passed first.
    """
    from mlops_kit.tracking.lineage import Lineage
    from mlops_kit.training.launchers.base import TrainingJobSpec

    settings = settings_from_json(settings_json)
    config = train_config(config_json, label_column)
    job = _job_name(name)
    out_uri = output_uri
    if not out_uri:
        if not settings.storage.models_uri:
            raise ConfigError(
                "output_uri: set it, or the setting storage.models_uri, to tell the job where "
                "to write the model bundle (an s3:// URI on the cloud)"
            )
        out_uri = storage.join(str(settings.storage.models_uri), job)
    spec = TrainingJobSpec(
        name=job,
        data_uri=_remote_data_uri(training_set),
        output_uri=out_uri,
        config=config,
        **{k: v for k, v in spec_fields.items() if v not in (None, "", {})},
    )
    launcher = _launcher(backend, settings)
    handle = launcher.submit(spec)
    status = launcher.wait(handle, timeout=timeout_s or None, poll=poll_s)
    copied = _copy_bundle(out_uri, model.path)
    if "model.pt" not in copied:
        from mlops_kit.training.errors import TrainingError

        raise TrainingError(
            f"{backend} job '{handle.name}' succeeded but wrote no model.pt under '{out_uri}'"
        )
    lineage = Lineage.from_training_set(training_set.path, launcher=backend)
    storage.write_json(os.path.join(model.path, LINEAGE_FILE), lineage.to_dict())
    summary = storage.read_json(os.path.join(model.path, "metrics.json"))
    _log_summary(model, metrics, summary)
    job_meta = {
        "backend": backend,
        "job_name": handle.name,
        "job_kind": handle.kind,
        "job_uid": handle.uid or "",
        "job_phase": status.phase.value,
        "bundle_uri": out_uri,
    }
    model.metadata.update({**job_meta, "lineage": lineage.tags()})
    metrics.metadata.update(job_meta)
    if track:
        from mlops_kit.tracking.runs import log_training_run

        target = _target(settings, tracking_uri, experiment)
        run_id = log_training_run(None, out_uri, None, lineage, target=target, run_name=job)
        info = _write_tracking(model.path, target, run_id)
        model.metadata.update({f"mlflow_{k}": v for k, v in info.items()})
        metrics.metadata["mlflow_run_id"] = run_id
    return dict(model.metadata)


def launch_eks_step(
    training_set: ArtifactLike,
    model: ArtifactLike,
    metrics: MetricsLike,
    name: str = "",
    config_json: str = "{}",
    label_column: str = "",
    output_uri: str = "",
    image: str = "",
    nodes: int = 1,
    gpus_per_node: int = 0,
    procs_per_node: int = 0,
    cpu: str = "2",
    memory: str = "8Gi",
    secrets_json: str = "{}",
    service_account: str = "training",
    namespace: str = "data-pipeline",
    max_runtime_s: int = 0,
    timeout_s: int = 0,
    poll_s: float = 30.0,
    experiment: str = "",
    tracking_uri: str = "",
    track: bool = True,
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Train as a PyTorchJob on EKS (see :func:`launch_step`).

    Args:
        training_set: input; the training set (its remote ``s3://`` URI is read by the job).
        model: output; the model bundle copied from ``output_uri``.
        metrics: output; as for ``train``, metadata also names the job.
        name: job name ("": ``failure-mlp-<random>``).
        config_json: TrainConfig fields as JSON.
        label_column: the label column ("": the config's).
        output_uri: bundle location ("": ``<storage.models_uri>/<name>``).
        image: training image ("": ``images.training`` tagged with the version).
        nodes: pods (more than one: multi-node DDP).
        gpus_per_node: GPUs per pod (0: a CPU job).
        procs_per_node: processes per pod on CPU (0: one).
        cpu: CPU request per pod.
        memory: memory request and limit per pod.
        secrets_json: JSON object, Kubernetes secret -> keys exposed as env variables.
        service_account: the IRSA service account.
        namespace: Kubernetes namespace of the job.
        max_runtime_s: ``activeDeadlineSeconds`` (0: none).
        timeout_s: stop waiting after this long (0: wait for ever).
        poll_s: seconds between status polls.
        experiment: MLflow experiment.
        tracking_uri: MLflow tracking URI.
        track: log the run to MLflow.
        settings_json: settings overrides.
    """
    fields: dict[str, Any] = {
        "image": image,
        "nodes": nodes,
        "gpus_per_node": gpus_per_node,
        "procs_per_node": procs_per_node or None,
        "cpu": cpu,
        "memory": memory,
        "env_from_secrets": _secrets(secrets_json),
        "service_account": service_account,
        "namespace": namespace,
        "max_runtime_s": max_runtime_s or None,
        "extra_args": ["--no-export"],
    }
    return launch_step(
        "eks",
        training_set,
        model,
        metrics,
        fields,
        name=name,
        config_json=config_json,
        label_column=label_column,
        output_uri=output_uri,
        timeout_s=timeout_s,
        poll_s=poll_s,
        experiment=experiment,
        tracking_uri=tracking_uri,
        track=track,
        settings_json=settings_json,
    )


def launch_sagemaker_step(
    training_set: ArtifactLike,
    model: ArtifactLike,
    metrics: MetricsLike,
    name: str = "",
    config_json: str = "{}",
    label_column: str = "",
    output_uri: str = "",
    image: str = "",
    instance_type: str = "",
    instance_count: int = 1,
    gpus_per_node: int = 0,
    volume_size_gb: int = 50,
    max_runtime_s: int = 0,
    timeout_s: int = 0,
    poll_s: float = 30.0,
    experiment: str = "",
    tracking_uri: str = "",
    track: bool = True,
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Train as a SageMaker training job (see :func:`launch_step`).

    Args:
        training_set: input; the training set (its remote ``s3://`` URI is read by the job).
        model: output; the model bundle copied from ``output_uri``.
        metrics: output; as for ``train``, metadata also names the job.
        name: job name ("": ``failure-mlp-<random>``; SageMaker appends a timestamp).
        config_json: TrainConfig fields as JSON.
        label_column: the label column ("": the config's).
        output_uri: bundle location, ``s3://`` ("": ``<storage.models_uri>/<name>``).
        image: training image in ECR ("": ``images.training`` tagged with the version).
        instance_type: e.g. ``ml.g5.xlarge`` ("": by accelerator).
        instance_count: instances (more than one: multi-node DDP).
        gpus_per_node: GPUs per instance used by the job (0: a CPU job).
        volume_size_gb: ML storage volume per instance.
        max_runtime_s: stopping condition (0: SageMaker's default).
        timeout_s: stop waiting after this long (0: wait for ever).
        poll_s: seconds between status polls.
        experiment: MLflow experiment.
        tracking_uri: MLflow tracking URI.
        track: log the run to MLflow.
        settings_json: settings overrides.
    """
    fields: dict[str, Any] = {
        "image": image,
        "instance_type": instance_type,
        "nodes": instance_count,
        "gpus_per_node": gpus_per_node,
        "volume_size_gb": volume_size_gb,
        "max_runtime_s": max_runtime_s or None,
        "extra_args": ["--no-export"],
    }
    return launch_step(
        "sagemaker",
        training_set,
        model,
        metrics,
        fields,
        name=name,
        config_json=config_json,
        label_column=label_column,
        output_uri=output_uri,
        timeout_s=timeout_s,
        poll_s=poll_s,
        experiment=experiment,
        tracking_uri=tracking_uri,
        track=track,
        settings_json=settings_json,
    )


__all__ = [
    "BUNDLE_FILES",
    "LINEAGE_FILE",
    "TRACKING_FILE",
    "export_onnx_step",
    "launch_eks_step",
    "launch_sagemaker_step",
    "launch_step",
    "train_config",
    "train_step",
    "training_data_uri",
]
