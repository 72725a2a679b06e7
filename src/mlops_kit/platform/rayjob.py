"""Run an mlops-kit command on EKS as a KubeRay ``RayJob`` (``ray.io/v1``).

A RayJob starts a Ray cluster sized from the ``ray`` settings, runs one command on its head
as a Ray job and removes the cluster when the command ends::

    obj = build_rayjob(settings, ["mlops-kit", "etl", "run"])     # a plain dict
    check_rayjob(obj, "ray.io_rayjobs.yaml")                       # the CRD and KubeRay's rules

    launcher = RayJobLauncher(settings)
    handle = launcher.submit(["mlops-kit", "etl", "run"])
    status = launcher.wait(handle, timeout=3600)

The command runs with the settings in effect here, passed as ``MLOPS_KIT_*`` variables
(:func:`job_env`) with the ``ray`` backends switched on (``etl.backend`` and
``features.engine`` ``ray``, ``ray.address`` ``auto``: the cluster of the job). It needs
settings a pod can use: profile ``aws``, ``s3://`` storage and a PostgreSQL warehouse whose
password stays in Secrets Manager (``warehouse.secret_arn``). The pods run the pipeline
image (``images.pipeline`` tagged with the package version) under the ``etl`` service
account when the IRSA role ``cluster.service_account_roles.data_pipeline`` is configured.

:class:`RayJobLauncher` submits through ``kubernetes.client.CustomObjectsApi`` with the
client setup of the EKS training launcher, and maps ``status.jobDeploymentStatus`` /
``status.jobStatus`` onto the launchers' :class:`~mlops_kit.training.launchers.base.JobPhase`.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from mlops_kit._version import __version__
from mlops_kit.config import Settings
from mlops_kit.platform.errors import (
    RayJobConfigError,
    RayJobInvalidError,
)
from mlops_kit.platform.kuberay import (
    CONTAINER_SECURITY,
    DNS_LABEL,
    ENV_PREFIX,
    HEAD_PORTS,
    labels,
    manifest_yaml,
    pod_template,
    ray_container,
    service_account,
    settings_env,
)
from mlops_kit.training.launchers.spec import QUANTITY_PATTERN

GROUP, VERSION, PLURAL, KIND = "ray.io", "v1", "rayjobs", "RayJob"
SUBMISSION_MODE = "K8sJobMode"
"""KubeRay starts a Kubernetes Job that submits the command and follows its logs."""
SUBMISSION_MODES = ("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")
NAME_MAX = 47
"""KubeRay's limit on a RayJob name (RayCluster names of 53, less its 6-character suffix)."""
TTL_AFTER_FINISHED_S = 600
"""The cluster is deleted this long after the command ends; the RayJob and the submitter's
logs stay until the RayJob is deleted."""
SERVICE_ACCOUNT = "etl"
"""Service account of the pods; Terraform trusts ``data-pipeline/etl`` for the role."""
IRSA_WORKLOAD = "data_pipeline"
"""Key of ``cluster.service_account_roles`` holding the pods' IAM role."""
WORKER_GROUP = "workers"
SUBMITTER_RESOURCES = {
    "requests": {"cpu": "500m", "memory": "200Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
"""KubeRay's own defaults for the submitter, kept when the template is given."""
SPEC_ANNOTATION = "mlops-kit/spec-sha256"
JOB_SETTINGS = {
    "etl": {"backend": "ray"},
    "features": {"engine": "ray"},
    "ray": {"address": "auto"},
}
"""What the job's settings change: the ``ray`` backends, on the job's own cluster."""
_MACHINE_ONLY = (f"{ENV_PREFIX}HOME",)
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_RAY_PIN = re.compile(r"^ray(\[[^\]]*\])?\s*==\s*([^;,\s]+)")
_LABELS = labels("mlops-kit-rayjob")
_DSHM = {"name": "dshm", "emptyDir": {"medium": "Memory"}}
_DSHM_MOUNT = {"name": "dshm", "mountPath": "/dev/shm"}


# -- settings -> the job --------------------------------------------------------------------


def _check_settings(settings: Settings) -> None:
    if settings.profile != "aws":
        raise RayJobConfigError(
            f"profile: '{settings.profile}' keeps data on this machine, which the RayJob's "
            "pods cannot reach; use profile aws with s3:// storage ('mlops-kit config "
            "from-terraform infra/terraform/envs/<env>' writes it)",
            field="profile",
        )
    for key, value in settings.storage.model_dump().items():
        if value is not None and not str(value).startswith("s3://"):
            raise RayJobConfigError(
                f"storage.{key}: the RayJob's pods cannot reach '{value}'; use an s3:// URI",
                field=f"storage.{key}",
            )
    if (settings.warehouse.url or "").startswith("duckdb://"):
        raise RayJobConfigError(
            "warehouse.url: a DuckDB file written in a pod is lost with the pod; use the "
            "Aurora PostgreSQL URL (postgresql+psycopg://user@host:5432/db, its password "
            "from warehouse.secret_arn)",
            field="warehouse.url",
        )
    ray = settings.ray
    if len(ray.namespace) > 63 or not DNS_LABEL.match(ray.namespace):
        raise RayJobConfigError(
            f"ray.namespace: '{ray.namespace}' is not a Kubernetes namespace name; use at most "
            "63 lower-case letters, digits and '-'",
            field="ray.namespace",
        )
    for key in ("worker_cpu", "worker_memory", "head_cpu", "head_memory"):
        if not QUANTITY_PATTERN.match(getattr(ray, key)):
            raise RayJobConfigError(
                f"ray.{key}: '{getattr(ray, key)}' is not a Kubernetes quantity; write it "
                "as '4', '500m' or '16Gi'",
                field=f"ray.{key}",
            )


def job_settings(settings: Settings) -> Settings:
    """``settings`` with :data:`JOB_SETTINGS` applied: what the job's command loads."""
    job = settings.model_copy(deep=True)
    for section, values in JOB_SETTINGS.items():
        for key, value in values.items():
            setattr(getattr(job, section), key, value)
    return job


def job_env(settings: Settings) -> dict[str, str]:
    """The ``MLOPS_KIT_*`` variables of the job's pods: :func:`settings_env` of
    :func:`job_settings`, less ``home`` (a folder of this machine).

    Raises:
        SettingsSecretError: a URL carries a password (names the setting).
    """
    env = settings_env(job_settings(settings))
    return {k: v for k, v in env.items() if k not in _MACHINE_ONLY}


def pipeline_image(settings: Settings) -> str:
    """``settings.images.pipeline`` tagged with the package version (kept when tagged).

    Raises:
        RayJobConfigError: the setting is empty or not an image reference.
    """
    repo = settings.images.pipeline
    if not repo or any(c.isspace() for c in repo) or len(repo) > 500:
        raise RayJobConfigError(
            f"images.pipeline: '{repo}' is not an image reference; set it to the pipeline "
            "image's repository (MLOPS_KIT_IMAGES__PIPELINE, the ECR repository URL from the "
            "Terraform output ecr_repository_urls)",
            field="images.pipeline",
        )
    last = repo.rsplit("/", 1)[-1]
    return repo if ":" in last or "@" in last else f"{repo}:{__version__}"


def ray_version() -> str:
    """The Ray version of the pipeline image: the ``serve`` extra's pin of this package
    (what the image installs), else the installed ``ray``.

    Raises:
        RayJobConfigError: neither is known.
    """
    try:
        for requirement in importlib.metadata.requires("mlops-kit") or []:
            pinned = _RAY_PIN.match(requirement)
            if pinned:
                return pinned.group(2)
        return importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        raise RayJobConfigError(
            "rayVersion: the RayJob names the Ray version of its image, read from the "
            "installed mlops-kit or ray; install it with pip install 'mlops-kit[serve]'",
            field="rayVersion",
        ) from None


def default_name(entrypoint: Sequence[str], now: datetime | None = None) -> str:
    """A RayJob name from the command's first words and the time (UTC), e.g.
    ``mlops-kit-etl-run-20260101-120000``."""
    words = [w for w in entrypoint if not w.startswith("-")][:3]
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(words).lower()).strip("-")
    if not slug[:1].isalpha():
        slug = f"job-{slug}".rstrip("-")
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    return f"{slug[: NAME_MAX - len(stamp) - 1].rstrip('-')}-{stamp}"


def _check_name(name: str) -> str:
    if len(name) > NAME_MAX or not _DNS_1035.match(name):
        raise RayJobConfigError(
            f"name: '{name}' is not a RayJob name; use at most {NAME_MAX} lower-case "
            "letters, digits and '-', starting with a letter and ending with a letter or "
            "digit (KubeRay names the cluster and its pods after it)",
            field="name",
        )
    return name


def _command(entrypoint: Sequence[str]) -> str:
    if (
        isinstance(entrypoint, str)
        or not entrypoint
        or not all(isinstance(w, str) for w in entrypoint)
    ):
        raise RayJobConfigError(
            f"entrypoint: expected the command as a list of words, e.g. ['mlops-kit', "
            f"'etl', 'run'], got {entrypoint!r}",
            field="entrypoint",
        )
    if not entrypoint[0].strip():
        raise RayJobConfigError(
            "entrypoint: the command's first word is empty; give the program to run",
            field="entrypoint",
        )
    return shlex.join(entrypoint)


def build_rayjob(
    settings: Settings, entrypoint: Sequence[str], *, name: str | None = None
) -> dict[str, Any]:
    """A ``ray.io/v1`` RayJob running ``entrypoint`` on a cluster sized from ``settings.ray``.

    ``metadata``: ``name`` (default :func:`default_name`) in ``ray.namespace``. ``spec``:
    the command joined shell-safely, submitted by a Kubernetes Job (``K8sJobMode``), the
    cluster deleted :data:`TTL_AFTER_FINISHED_S` after it ends; ``rayClusterSpec``: the Ray
    version of the image (:func:`ray_version`), a head of ``ray.head_cpu`` /
    ``ray.head_memory`` that runs the command and no task (``num-cpus: 0``) and one worker
    group of ``ray.worker_replicas`` pods of ``ray.worker_cpu`` / ``ray.worker_memory``
    (requests equal to limits). Every pod runs the pipeline image (:func:`pipeline_image`)
    as non-root with :func:`job_env`; the Ray pods under the :data:`SERVICE_ACCOUNT`
    service account when the IRSA role is configured. The spec's digest is kept in the
    annotation :data:`SPEC_ANNOTATION`.

    Raises:
        RayJobConfigError: naming the setting or argument that cannot work on the cluster.
        SettingsSecretError: a URL setting carries a password.
    """
    command = _command(entrypoint)
    _check_settings(settings)
    name = _check_name(name if name is not None else default_name(entrypoint))
    image = pipeline_image(settings)
    env = [{"name": "PYTHONUNBUFFERED", "value": "1"}]
    env += [{"name": k, "value": v} for k, v in job_env(settings).items()]
    account = SERVICE_ACCOUNT if settings.cluster.service_account_roles.get(IRSA_WORKLOAD) else None
    job_labels = {**_LABELS, "mlops-kit/job": name}
    ray = settings.ray

    def node(container: str, ports: Mapping[str, int], cpu: str, memory: str) -> dict[str, Any]:
        main = ray_container(
            container,
            image,
            ports,
            {"cpu": cpu, "memory": memory},
            env=[dict(e) for e in env],
            volumeMounts=[dict(_DSHM_MOUNT)],
        )
        return pod_template(main, account, labels=job_labels, volumes=[copy.deepcopy(_DSHM)])

    submitter = {
        "name": "ray-job-submitter",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": copy.deepcopy(SUBMITTER_RESOURCES),
        "securityContext": copy.deepcopy(dict(CONTAINER_SECURITY)),
    }
    spec: dict[str, Any] = {
        "entrypoint": command,
        "submissionMode": SUBMISSION_MODE,
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_S,
        "submitterPodTemplate": pod_template(
            submitter, None, labels=job_labels, restartPolicy="Never"
        ),
        "rayClusterSpec": {
            "rayVersion": ray_version(),
            "headGroupSpec": {
                "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
                "template": node("ray-head", HEAD_PORTS, ray.head_cpu, ray.head_memory),
            },
            "workerGroupSpecs": [
                {
                    "groupName": WORKER_GROUP,
                    "replicas": ray.worker_replicas,
                    "minReplicas": ray.worker_replicas,
                    "maxReplicas": ray.worker_replicas,
                    "rayStartParams": {},
                    "template": node(
                        "ray-worker",
                        {"metrics": HEAD_PORTS["metrics"]},
                        ray.worker_cpu,
                        ray.worker_memory,
                    ),
                }
            ],
        },
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": ray.namespace,
            "labels": dict(job_labels),
            "annotations": {SPEC_ANNOTATION: spec_digest(spec)},
        },
        "spec": spec,
    }


def spec_digest(spec: Mapping[str, Any]) -> str:
    """The SHA-256 of ``spec`` as canonical JSON (what :data:`SPEC_ANNOTATION` holds)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def job_service_account(settings: Settings) -> dict[str, Any] | None:
    """The :data:`SERVICE_ACCOUNT` carrying the IRSA role of the ``data_pipeline``
    workload in ``ray.namespace``, or None without a role (Terraform's trust policy names
    ``data-pipeline/etl``: keep ``ray.namespace`` at ``data-pipeline`` or change both)."""
    role = settings.cluster.service_account_roles.get(IRSA_WORKLOAD)
    if not role:
        return None
    return service_account(SERVICE_ACCOUNT, settings.ray.namespace, role, _LABELS)


def render_manifest(
    settings: Settings, entrypoint: Sequence[str], *, name: str | None = None
) -> str:
    """The service account (when a role is configured) and the RayJob, as YAML documents
    for ``kubectl create -f`` or a GitOps repository."""
    objects = [job_service_account(settings), build_rayjob(settings, entrypoint, name=name)]
    head = f"# Generated by mlops-kit rayjob manifest (mlops_kit {__version__}).\n"
    return head + manifest_yaml(*[o for o in objects if o is not None])


# -- checks -----------------------------------------------------------------------------------


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _groups(cluster: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    where = "spec.rayClusterSpec"
    groups = [(f"{where}.headGroupSpec", _dict(cluster.get("headGroupSpec")))]
    workers = cluster.get("workerGroupSpecs")
    for i, group in enumerate(workers if isinstance(workers, list) else []):
        groups.append((f"{where}.workerGroupSpecs[{i}]", _dict(group)))
    return groups


def kuberay_errors(obj: Mapping[str, Any]) -> list[str]:
    """The rules the KubeRay operator (v1.7) applies to a RayJob and its CRD does not.

    The API server accepts a RayJob that breaks one; the operator then marks it
    ``ValidationFailed``, or, for a submission mode it does not know, never submits the
    command. Checked: the name (a DNS-1035 label of at most :data:`NAME_MAX` characters),
    ``submissionMode``, an ``entrypoint`` outside ``InteractiveMode``,
    ``ttlSecondsAfterFinished`` (not negative; above 0 only with
    ``shutdownAfterJobFinishes``), ``suspend`` only with ``shutdownAfterJobFinishes``,
    ``activeDeadlineSeconds`` above 0, ``backoffLimit`` not negative, a ``rayClusterSpec``
    (or a ``clusterSelector``), a container in every group's pod template and a group's
    ``resources`` not also given in its ``rayStartParams``.

    Returns:
        ``path: message`` lines (empty when none is broken).
    """
    errors: list[str] = []
    name = _dict(obj.get("metadata")).get("name")
    if not isinstance(name, str) or len(name) > NAME_MAX or not _DNS_1035.match(name):
        errors.append(
            f"metadata.name: {name!r} must be a DNS-1035 label of at most {NAME_MAX} "
            "characters (KubeRay names the cluster and its pods after it)"
        )
    spec = _dict(obj.get("spec"))
    mode = spec.get("submissionMode", SUBMISSION_MODE)
    if mode not in SUBMISSION_MODES:
        errors.append(
            f"spec.submissionMode: {mode!r} is not one of {', '.join(SUBMISSION_MODES)} "
            "(the operator would never submit the command)"
        )
    entrypoint = spec.get("entrypoint")
    if mode != "InteractiveMode" and not (isinstance(entrypoint, str) and entrypoint.strip()):
        errors.append(
            "spec.entrypoint: the command to run is required unless submissionMode is "
            "InteractiveMode"
        )
    shutdown = spec.get("shutdownAfterJobFinishes") is True
    ttl = spec.get("ttlSecondsAfterFinished", 0)
    if isinstance(ttl, int) and ttl < 0:
        errors.append(f"spec.ttlSecondsAfterFinished: {ttl} must not be negative")
    elif isinstance(ttl, int) and ttl > 0 and not shutdown:
        errors.append(
            "spec.ttlSecondsAfterFinished: only applies with shutdownAfterJobFinishes: true"
        )
    if spec.get("suspend") is True and not shutdown:
        errors.append("spec.suspend: a RayJob can be suspended only with shutdownAfterJobFinishes")
    for key, least in (("activeDeadlineSeconds", 1), ("backoffLimit", 0)):
        value = spec.get(key)
        if isinstance(value, int) and value < least:
            errors.append(f"spec.{key}: {value} must be at least {least}")
    cluster = spec.get("rayClusterSpec")
    if not isinstance(cluster, Mapping):
        if not spec.get("clusterSelector"):
            errors.append(
                "spec.rayClusterSpec: required (or a clusterSelector naming a running cluster)"
            )
        return errors
    for where, group in _groups(cluster):
        if not _dict(_dict(group.get("template")).get("spec")).get("containers"):
            errors.append(f"{where}.template.spec.containers: needs the Ray node's container")
        params = _dict(group.get("rayStartParams"))
        if group.get("resources") and any(
            params.get(k) for k in ("num-cpus", "num-gpus", "memory", "resources")
        ):
            errors.append(f"{where}.resources: also set in rayStartParams; set them in one")
    return errors


def check_rayjob(obj: Mapping[str, Any], crd: str | os.PathLike[str] | None = None) -> None:
    """Check a RayJob against :func:`kuberay_errors` and, given ``crd`` (the RayJob CRD,
    ``ray.io_rayjobs.yaml``), its schema with :mod:`mlops_kit.training.launchers.crd` (strict
    about unknown fields; its CEL rules).

    Raises:
        RayJobInvalidError: listing each bad field (``errors``), the first named.
        RayJobConfigError: ``crd`` is not a readable RayJob CRD.
    """
    errors: list[str] = []
    if crd is not None:
        from mlops_kit.training.launchers.crd import load_crd_of, validate_object

        def refuse(reason: str) -> RayJobConfigError:
            return RayJobConfigError(
                f"crd: {reason}; give the path of ray.io_rayjobs.yaml from KubeRay's "
                "ray-operator/config/crd/bases",
                field="crd",
            )

        loaded = load_crd_of(crd, GROUP, KIND, refuse)
        errors += validate_object(obj, loaded)
    errors += kuberay_errors(obj)
    if errors:
        name = _dict(obj.get("metadata")).get("name", "?")
        raise RayJobInvalidError(
            f"RayJob '{name}' would be refused ({errors[0].split(':', 1)[0]}):\n  "
            + "\n  ".join(errors),
            errors=errors,
        )


__all__ = [
    "JOB_SETTINGS",
    "NAME_MAX",
    "SERVICE_ACCOUNT",
    "SPEC_ANNOTATION",
    "TTL_AFTER_FINISHED_S",
    "build_rayjob",
    "check_rayjob",
    "default_name",
    "job_env",
    "job_service_account",
    "job_settings",
    "kuberay_errors",
    "pipeline_image",
    "ray_version",
    "render_manifest",
    "spec_digest",
]
