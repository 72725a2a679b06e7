"""EKS backend: Kubeflow ``PyTorchJob`` (Training Operator v1) or ``TrainJob`` (Trainer v2).

The builders are pure functions of a :class:`~.base.TrainingJobSpec` and the settings and
return plain dicts (no Kubernetes import)::

    obj = build_pytorchjob(spec, settings)   # kubeflow.org/v1 PyTorchJob
    obj = build_trainjob(spec, settings)     # trainer.kubeflow.org/v1alpha1 TrainJob

Both run ``torchrun -m mlops_kit.training train --data ... --out ...`` in the training
image; the operators set the ``PET_*`` variables torchrun reads (nodes, node rank,
processes per node, master address). GPU jobs request ``nvidia.com/gpu`` and select and
tolerate the GPU node group (``settings.cluster.gpu_node_label`` / ``gpu_taint``, the
values the Terraform GPU node group sets); pods run as the IRSA service account
``training`` in ``data-pipeline``.

:class:`EksLauncher` submits them with ``kubernetes.client.CustomObjectsApi`` and reads
their status conditions.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from mlops_kit._lazy import require
from mlops_kit.config import Settings
from mlops_kit.errors import ConfigError
from mlops_kit.training.launchers.arguments import train_arguments
from mlops_kit.training.launchers.base import (
    JobHandle,
    JobPhase,
    JobStatus,
    LaunchError,
    TrainingLauncher,
)
from mlops_kit.training.launchers.spec import TrainingJobSpec, require_image, require_remote_uri

Kind = Literal["PyTorchJob", "TrainJob"]

PYTORCHJOB_GROUP, PYTORCHJOB_VERSION, PYTORCHJOB_PLURAL = "kubeflow.org", "v1", "pytorchjobs"
TRAINJOB_GROUP, TRAINJOB_VERSION, TRAINJOB_PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
#: the container the Training Operator requires in every PyTorchJob replica
PYTORCH_CONTAINER = "pytorch"
#: replicated job and container of the Trainer v2 ``torch-distributed`` runtimes
TRAINJOB_NODE = "node"
PATCH_MANAGER = "mlops-kit.io/launcher"
GPU_RESOURCE = "nvidia.com/gpu"
REMOTE_SCHEMES = ("s3",)
TTL_AFTER_FINISHED_S = 7 * 24 * 3600

_POD_SECURITY = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def parse_node_label(label: str) -> dict[str, str]:
    """``"key=value"`` -> ``{key: value}`` (a node selector).

    Raises:
        ConfigError: naming ``cluster.gpu_node_label``.
    """
    key, sep, value = label.partition("=")
    if not sep or not key or not value:
        raise ConfigError(
            f"cluster.gpu_node_label: expected 'key=value' (e.g. "
            f"'mlops-kit/accelerator=nvidia-gpu'), got '{label}'"
        )
    return {key.strip(): value.strip()}


def parse_taint(taint: str) -> dict[str, str]:
    """``"key=value:Effect"`` or ``"key:Effect"`` -> the toleration of that taint.

    Raises:
        ConfigError: naming ``cluster.gpu_taint``.
    """
    body, sep, effect = taint.rpartition(":")
    if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute") or not body:
        raise ConfigError(
            "cluster.gpu_taint: expected 'key=value:Effect' with Effect one of NoSchedule, "
            f"PreferNoSchedule, NoExecute (e.g. 'nvidia.com/gpu=present:NoSchedule'), got "
            f"'{taint}'"
        )
    key, eq, value = body.partition("=")
    if eq:
        return {"key": key, "operator": "Equal", "value": value, "effect": effect}
    return {"key": key, "operator": "Exists", "effect": effect}


def validate_for_eks(spec: TrainingJobSpec, settings: Settings) -> str:
    """The EKS checks of ``spec``; returns the image to run.

    Raises:
        ConfigError: naming the field (image, data_uri, output_uri, checkpoint_uri,
            config, cluster.gpu_node_label, cluster.gpu_taint).
    """
    image = require_image(spec, settings, "EKS")
    require_remote_uri(spec.data_uri, "data_uri", "EKS", REMOTE_SCHEMES)
    require_remote_uri(spec.output_uri, "output_uri", "EKS", REMOTE_SCHEMES)
    require_remote_uri(spec.checkpoint_uri, "checkpoint_uri", "EKS", REMOTE_SCHEMES)
    if spec.is_gpu:
        parse_node_label(settings.cluster.gpu_node_label)
        parse_taint(settings.cluster.gpu_taint)
    return image


def _labels(spec: TrainingJobSpec) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "mlops-kit-training",
        "app.kubernetes.io/managed-by": "mlops-kit",
        "mlops-kit/job": spec.name,
        **spec.labels,
    }


def _env(spec: TrainingJobSpec, settings: Settings) -> list[dict[str, Any]]:
    """The container's environment: defaults, then ``spec.env`` (which may override a
    default), then the secrets' keys. Kubernetes keys env by name, so a name given twice
    (in ``env`` and a secret, or in two secrets) is refused here rather than by the API
    server."""
    env: dict[str, dict[str, Any]] = {
        "PYTHONUNBUFFERED": {"name": "PYTHONUNBUFFERED", "value": "1"},
        "MLOPS_KIT_AWS__REGION": {"name": "MLOPS_KIT_AWS__REGION", "value": settings.aws.region},
    }
    for k, v in spec.env.items():
        env[k] = {"name": k, "value": v}
    where = {k: "env" for k in spec.env}
    for secret, keys in spec.env_from_secrets.items():
        for key in keys:
            if key in where:
                raise ConfigError(
                    f"env_from_secrets.{secret}: '{key}' is already set by {where[key]}; "
                    "a container takes each environment variable name once"
                )
            where[key] = f"env_from_secrets.{secret}"
            env[key] = {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
    return list(env.values())


def _resources(spec: TrainingJobSpec) -> dict[str, dict[str, str]]:
    requests = {"cpu": spec.cpu, "memory": spec.memory}
    limits = {"memory": spec.memory}
    if spec.is_gpu:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(spec.gpus_per_node)
    return {"requests": requests, "limits": limits}


def _placement(spec: TrainingJobSpec, settings: Settings) -> dict[str, Any]:
    pod: dict[str, Any] = {"serviceAccountName": spec.service_account}
    if spec.is_gpu:
        pod["nodeSelector"] = parse_node_label(settings.cluster.gpu_node_label)
        pod["tolerations"] = [parse_taint(settings.cluster.gpu_taint)]
    return pod


def container_command(spec: TrainingJobSpec) -> list[str]:
    """The container command of a Kubeflow job (torchrun takes its topology from PET_*)."""
    if spec.command is not None:
        return list(spec.command)
    return ["torchrun", "-m", "mlops_kit.training", *train_arguments(spec)]


def _metadata(spec: TrainingJobSpec) -> dict[str, Any]:
    return {"name": spec.name, "namespace": spec.namespace, "labels": _labels(spec)}


def build_pytorchjob(spec: TrainingJobSpec, settings: Settings) -> dict[str, Any]:
    """A ``kubeflow.org/v1`` PyTorchJob running ``spec``.

    One ``Master`` replica plus ``nodes - 1`` ``Worker`` replicas, ``nprocPerNode``
    processes each; ``runPolicy`` keeps finished pods for their logs, retries
    ``max_retries`` times and garbage-collects the job a week after it ends.

    Raises:
        ConfigError: the spec cannot run on EKS (names the field).
    """
    image = validate_for_eks(spec, settings)
    pod_spec: dict[str, Any] = {
        **_placement(spec, settings),
        "securityContext": dict(_POD_SECURITY),
        "containers": [
            {
                "name": PYTORCH_CONTAINER,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": container_command(spec),
                "env": _env(spec, settings),
                "resources": _resources(spec),
                "securityContext": dict(_CONTAINER_SECURITY),
                "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
            }
        ],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}],
    }
    template = {"metadata": {"labels": _labels(spec)}, "spec": pod_spec}
    replicas: dict[str, Any] = {
        "Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": template}
    }
    if spec.nodes > 1:
        replicas["Worker"] = {
            "replicas": spec.nodes - 1,
            "restartPolicy": "OnFailure",
            "template": copy.deepcopy(template),
        }
    run_policy: dict[str, Any] = {
        "cleanPodPolicy": "None",
        "backoffLimit": spec.max_retries,
        "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_S,
    }
    if spec.max_runtime_s is not None:
        run_policy["activeDeadlineSeconds"] = spec.max_runtime_s
    return {
        "apiVersion": f"{PYTORCHJOB_GROUP}/{PYTORCHJOB_VERSION}",
        "kind": "PyTorchJob",
        "metadata": _metadata(spec),
        "spec": {
            "nprocPerNode": str(spec.nproc_per_node),
            "runPolicy": run_policy,
            "pytorchReplicaSpecs": replicas,
        },
    }


def build_trainjob(spec: TrainingJobSpec, settings: Settings) -> dict[str, Any]:
    """A ``trainer.kubeflow.org/v1alpha1`` TrainJob running ``spec``.

    It references the ``ClusterTrainingRuntime`` named ``spec.runtime`` (default
    ``torch-distributed``) and sets the trainer's image, command, nodes, processes per node,
    resources and environment. Placement (service account, GPU node selector and
    toleration) and the security context go in a ``runtimePatches`` entry on the runtime's
    ``node`` replicated job, the only place this CRD version accepts them. ``max_retries``
    does not apply (the runtime's JobSet failure policy decides).

    Raises:
        ConfigError: the spec cannot run on EKS (names the field).
    """
    image = validate_for_eks(spec, settings)
    trainer: dict[str, Any] = {
        "image": image,
        "command": container_command(spec),
        "numNodes": spec.nodes,
        "numProcPerNode": spec.nproc_per_node,
        "resourcesPerNode": _resources(spec),
        "env": _env(spec, settings),
    }
    pod_patch: dict[str, Any] = {
        **_placement(spec, settings),
        "securityContext": dict(_POD_SECURITY),
        "containers": [{"name": TRAINJOB_NODE, "securityContext": dict(_CONTAINER_SECURITY)}],
    }
    job_spec: dict[str, Any] = {
        "runtimeRef": {
            "apiGroup": TRAINJOB_GROUP,
            "kind": "ClusterTrainingRuntime",
            "name": spec.runtime,
        },
        "trainer": trainer,
        "runtimePatches": [
            {
                "manager": PATCH_MANAGER,
                "trainingRuntimeSpec": {
                    "template": {
                        "spec": {
                            "replicatedJobs": [
                                {
                                    "name": TRAINJOB_NODE,
                                    "template": {
                                        "spec": {
                                            "template": {
                                                "metadata": {"labels": _labels(spec)},
                                                "spec": pod_patch,
                                            }
                                        }
                                    },
                                }
                            ]
                        }
                    }
                },
            }
        ],
    }
    if spec.max_runtime_s is not None:
        job_spec["activeDeadlineSeconds"] = spec.max_runtime_s
    return {
        "apiVersion": f"{TRAINJOB_GROUP}/{TRAINJOB_VERSION}",
        "kind": "TrainJob",
        "metadata": _metadata(spec),
        "spec": job_spec,
    }


# -- status -----------------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _true(conditions: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    for cond in conditions:
        if cond.get("type") == kind and str(cond.get("status")) == "True":
            return cond
    return None


def pytorchjob_status(obj: Mapping[str, Any]) -> JobStatus:
    """The :class:`JobStatus` of a PyTorchJob from its ``status.conditions``.

    ``Failed`` and ``Succeeded`` win over ``Running`` / ``Restarting``; a job with no true
    condition yet (or only ``Created``) is Pending.
    """
    status = obj.get("status") or {}
    conditions = status.get("conditions") or []
    start, end = _time(status.get("startTime")), _time(status.get("completionTime"))
    for kind, phase in (
        ("Failed", JobPhase.FAILED),
        ("Succeeded", JobPhase.SUCCEEDED),
        ("Running", JobPhase.RUNNING),
        ("Restarting", JobPhase.RUNNING),
    ):
        cond = _true(conditions, kind)
        if cond is not None:
            if phase.done and end is None:
                end = _time(cond.get("lastTransitionTime"))
            return JobStatus(phase, cond.get("reason"), cond.get("message"), start, end, status)
    last = conditions[-1] if conditions else {}
    return JobStatus(JobPhase.PENDING, last.get("reason"), last.get("message"), start, end, status)


def trainjob_status(obj: Mapping[str, Any]) -> JobStatus:
    """The :class:`JobStatus` of a TrainJob.

    ``Complete`` / ``Failed`` conditions end it; otherwise it is Running once a child job
    has active or ready pods (``status.jobsStatus``), else Pending (``Suspended`` shows as
    the reason).
    """
    status = obj.get("status") or {}
    conditions = status.get("conditions") or []
    created = _time((obj.get("metadata") or {}).get("creationTimestamp"))
    for kind, phase in (("Failed", JobPhase.FAILED), ("Complete", JobPhase.SUCCEEDED)):
        cond = _true(conditions, kind)
        if cond is not None:
            end = _time(cond.get("lastTransitionTime"))
            return JobStatus(phase, cond.get("reason"), cond.get("message"), created, end, status)
    suspended = _true(conditions, "Suspended")
    if suspended is not None:
        return JobStatus(
            JobPhase.PENDING,
            suspended.get("reason"),
            suspended.get("message"),
            created,
            None,
            status,
        )
    jobs = status.get("jobsStatus") or []
    if any((j.get("active") or 0) + (j.get("ready") or 0) > 0 for j in jobs):
        return JobStatus(JobPhase.RUNNING, "JobsActive", None, created, None, status)
    last = conditions[-1] if conditions else {}
    return JobStatus(
        JobPhase.PENDING, last.get("reason"), last.get("message"), created, None, status
    )


# -- launcher ---------------------------------------------------------------------------------


_KINDS: dict[str, tuple[str, str, str, Callable[..., dict[str, Any]], Callable[..., JobStatus]]] = {
    "PyTorchJob": (
        PYTORCHJOB_GROUP,
        PYTORCHJOB_VERSION,
        PYTORCHJOB_PLURAL,
        build_pytorchjob,
        pytorchjob_status,
    ),
    "TrainJob": (
        TRAINJOB_GROUP,
        TRAINJOB_VERSION,
        TRAINJOB_PLURAL,
        build_trainjob,
        trainjob_status,
    ),
}


class EksLauncher(TrainingLauncher):
    """Runs jobs as Kubeflow PyTorchJobs or TrainJobs through the Kubernetes API.

    Args:
        settings: mlops_kit settings (cluster section, images, region).
        kind: ``PyTorchJob`` (Training Operator v1) or ``TrainJob`` (Trainer v2).
        api_client: a ``kubernetes.client.ApiClient``; default: from ``kubeconfig`` /
            ``context``, or the in-cluster service account.
        kubeconfig: kubeconfig file (default ``$KUBECONFIG`` or ``~/.kube/config``).
        context: kubeconfig context (e.g. the EKS cluster's ARN).
        crds: CRD manifests to validate every object against before it is sent (see
            :mod:`~mlops_kit.training.launchers.crd`).
        customize: called with each built object before validation; may edit it in place
            or return a replacement (e.g. to add volumes or annotations).
    """

    backend: ClassVar[str] = "eks"
    default_poll_s: ClassVar[float] = 15.0

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        kind: Kind = "PyTorchJob",
        api_client: Any = None,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        crds: Sequence[str | os.PathLike[str]] = (),
        customize: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
    ) -> None:
        super().__init__(settings)
        if kind not in _KINDS:
            raise ConfigError(f"kind: expected one of {sorted(_KINDS)}, got '{kind}'")
        self.kind: Kind = kind
        self._api_client = api_client
        self._kubeconfig = kubeconfig
        self._context = context
        self._crd_paths = [Path(p) for p in crds]
        self._customize = customize

    # -- building -----------------------------------------------------------------------------

    def validate(self, spec: TrainingJobSpec) -> TrainingJobSpec:
        image = validate_for_eks(spec, self.settings)
        return spec if spec.image == image else spec.model_copy(update={"image": image})

    def build(self, spec: TrainingJobSpec) -> dict[str, Any]:
        """The object :meth:`submit` would send (validated, customized, checked)."""
        group, _, _, builder, _ = _KINDS[self.kind]
        obj = builder(self.validate(spec), self.settings)
        if self._customize is not None:
            replaced = self._customize(obj)
            if replaced is not None:
                obj = replaced
        if self._crd_paths:
            from mlops_kit.training.launchers.crd import check_object, load_crd

            for path in self._crd_paths:
                crd = load_crd(path)
                if crd.group == group and crd.kind == self.kind:
                    check_object(obj, crd)
        return obj

    # -- API ------------------------------------------------------------------------------------

    def custom_objects(self) -> Any:
        """Kubernetes' ``CustomObjectsApi`` on this launcher's kubeconfig and context (or
        the pod's service account; the client is made on first use): what custom
        resources are submitted through, by this launcher and the RayJob one.

        Raises:
            LaunchError: no Kubernetes credentials, naming how to get them.
        """
        k8s = require("kubernetes", "the EKS training launcher")
        if self._api_client is None:
            try:
                self._api_client = k8s.config.new_client_from_config(
                    config_file=os.fspath(self._kubeconfig) if self._kubeconfig else None,
                    context=self._context,
                )
            except Exception as exc:
                try:
                    cfg = k8s.client.Configuration()
                    k8s.config.load_incluster_config(client_configuration=cfg)
                    self._api_client = k8s.client.ApiClient(cfg)
                except Exception:
                    raise LaunchError(
                        f"no Kubernetes credentials: {exc}. Run 'aws eks update-kubeconfig "
                        "--name <cluster_name output>' or pass api_client="
                    ) from None
        return k8s.client.CustomObjectsApi(self._api_client)

    @staticmethod
    def api_error(exc: Any, what: str) -> LaunchError:
        """The :class:`LaunchError` of a failed Kubernetes API call while doing ``what``:
        its status, the API server's message and what to check."""
        status = getattr(exc, "status", None)
        message = getattr(exc, "reason", None) or str(exc)
        body = getattr(exc, "body", None)
        if body:
            try:
                message = json.loads(body).get("message") or message
            except (ValueError, AttributeError):
                message = str(body)[:2000]
        hint = {
            404: " (is the CRD installed and the namespace present?)",
            409: " (a job of that name exists: pick another name or delete it)",
            403: " (RBAC: the caller may not create this resource)",
        }.get(status or 0, "")
        return LaunchError(f"{what}: HTTP {status}: {message}{hint}", status=status)

    def submit(self, spec: TrainingJobSpec) -> JobHandle:
        obj = self.build(spec)
        group, version, plural, _, _ = _KINDS[self.kind]
        api = self.custom_objects()
        k8s = require("kubernetes")
        namespace = obj["metadata"]["namespace"]
        try:
            created = api.create_namespaced_custom_object(group, version, namespace, plural, obj)
        except k8s.client.ApiException as exc:
            raise self.api_error(exc, f"creating {self.kind} {namespace}/{spec.name}") from None
        uid = (created.get("metadata") or {}).get("uid") if isinstance(created, dict) else None
        return JobHandle("eks", spec.name, self.kind, namespace, uid)

    def get(self, handle: JobHandle) -> dict[str, Any]:
        """The job object as the API server has it now."""
        group, version, plural, _, _ = _KINDS[handle.kind]
        api = self.custom_objects()
        k8s = require("kubernetes")
        try:
            obj = api.get_namespaced_custom_object(
                group, version, handle.namespace or "default", plural, handle.name
            )
        except k8s.client.ApiException as exc:
            raise self.api_error(
                exc, f"reading {handle.kind} {handle.namespace}/{handle.name}"
            ) from None
        return dict(obj)

    def status(self, handle: JobHandle) -> JobStatus:
        if handle.kind not in _KINDS:
            raise LaunchError(f"not an EKS job handle: {handle}")
        return _KINDS[handle.kind][4](self.get(handle))


__all__ = [
    "EksLauncher",
    "build_pytorchjob",
    "build_trainjob",
    "container_command",
    "parse_node_label",
    "parse_taint",
    "pytorchjob_status",
    "trainjob_status",
    "validate_for_eks",
]
