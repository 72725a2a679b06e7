"""The ``launch_eks`` and ``launch_sagemaker`` components' steps: train on a launcher
backend, wait for the job, and bring its model bundle back into the model artifact.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING, Any

from mlops_kit import storage
from mlops_kit.components.runtime import ArtifactLike, MetricsLike, settings_from_json
from mlops_kit.components.runtime.training.artifacts import (
    BUNDLE_FILES,
    LINEAGE_FILE,
    json_object,
    log_summary,
    remote_data_uri,
    tracking_target,
    train_config,
    training_set_defaults,
    write_tracking,
)
from mlops_kit.errors import ConfigError

if TYPE_CHECKING:
    from mlops_kit.config import Settings


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
    data = json_object(secrets_json, "secrets_json")
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
    from mlops_kit.training.launchers.spec import TrainingJobSpec

    settings = settings_from_json(settings_json)
    config = train_config(config_json, label_column, training_set_defaults(training_set))
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
        data_uri=remote_data_uri(training_set),
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
    log_summary(model, metrics, summary)
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

        target = tracking_target(settings, tracking_uri, experiment)
        run_id = log_training_run(None, out_uri, None, lineage, target=target, run_name=job)
        info = write_tracking(model.path, target, run_id)
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


__all__ = ["launch_eks_step", "launch_sagemaker_step", "launch_step"]
