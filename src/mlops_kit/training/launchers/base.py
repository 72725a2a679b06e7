"""The launcher interface: a typed job spec, a handle, a status, and the ABC.

A :class:`TrainingJobSpec` describes one training run of ``python -m mlops_kit.training
train`` independently of where it runs; a :class:`TrainingLauncher` (local, EKS or
SageMaker) validates it, submits it and reports a :class:`JobStatus`::

    launcher = launcher_for("eks", settings)
    handle = launcher.submit(TrainingJobSpec(name="failure-mlp-1", data_uri=..., output_uri=...))
    status = launcher.wait(handle, timeout=3600)

This module imports neither torch nor a cloud SDK.
"""

from __future__ import annotations

import json
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops_kit.config import Settings, load_settings
from mlops_kit.errors import ConfigError, format_validation_error
from mlops_kit.training.config import TrainConfig
from mlops_kit.training.errors import TrainingError

Backend = Literal["local", "eks", "sagemaker"]

#: RFC 1035 label (what the Kubeflow operators require of a job name), kept to 50
#: characters because the operators append suffixes such as ``-worker-12`` or
#: ``-node-0-3`` to build the 63-character service and pod host names.
NAME_PATTERN = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 50
#: A Kubernetes resource quantity (the pattern of the CRDs).
QUANTITY_PATTERN = re.compile(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://.+$")


class LaunchError(TrainingError):
    """A job could not be submitted or its status could not be read."""

    code = "TRAINING_LAUNCH_FAILED"


class TrainingJobFailedError(LaunchError):
    """The job ended in the ``Failed`` phase; ``status`` carries the reason and message."""

    code = "TRAINING_JOB_FAILED"

    def __init__(self, message: str, *, status: JobStatus, **details: Any) -> None:
        super().__init__(message, status=status, **details)
        self.status = status


class TrainingJobTimeoutError(LaunchError):
    """The job did not finish within the ``timeout`` given to ``wait``."""

    code = "TRAINING_JOB_TIMEOUT"

    def __init__(self, message: str, *, status: JobStatus, **details: Any) -> None:
        super().__init__(message, status=status, **details)
        self.status = status


class JobPhase(str, Enum):
    """Where a job is in its life, the same words on every backend."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def done(self) -> bool:
        """True for the terminal phases."""
        return self in (JobPhase.SUCCEEDED, JobPhase.FAILED)


@dataclass(frozen=True)
class JobStatus:
    """A job's status as reported by its backend.

    Attributes:
        phase: Pending, Running, Succeeded or Failed.
        reason: a short machine-readable reason (the condition's ``reason``, SageMaker's
            secondary status, or the error code the trainer printed).
        message: the human-readable detail (failure message, last condition message).
        start_time: when the job started running, when known.
        end_time: when it finished, when known.
        raw: the backend's own status object (for debugging; not compared).
    """

    phase: JobPhase
    reason: str | None = None
    message: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """True once the job succeeded or failed."""
        return self.phase.done

    @property
    def succeeded(self) -> bool:
        return self.phase is JobPhase.SUCCEEDED

    def describe(self) -> str:
        """One line: phase, reason and message."""
        text = self.phase.value
        if self.reason:
            text += f" ({self.reason})"
        if self.message:
            text += f": {self.message}"
        return text


@dataclass(frozen=True)
class JobHandle:
    """What identifies a submitted job on its backend (plain strings, safe to store).

    Attributes:
        backend: ``local``, ``eks`` or ``sagemaker``.
        name: the job's name on the backend (SageMaker appends a timestamp to the spec name).
        kind: ``PyTorchJob``, ``TrainJob``, ``TrainingJob``, ``process`` or ``thread``.
        namespace: the Kubernetes namespace (EKS only).
        uid: the backend's own id (Kubernetes uid, SageMaker ARN, process id).
    """

    backend: str
    name: str
    kind: str
    namespace: str | None = None
    uid: str | None = None


class TrainingJobSpec(BaseModel):
    """One training run, independent of the backend that runs it.

    Construction validates every field and raises :class:`~mlops_kit.errors.ConfigError`
    naming the bad ones; each launcher's ``validate`` adds the checks of its backend
    (image, instance type, URI schemes).

    Attributes:
        name: job name: lowercase letters, digits and ``-``, starting with a letter, at most
            50 characters (a Kubernetes object name; SageMaker appends a timestamp).
        data_uri: the training table (Parquet file or prefix; ``s3://`` on the cloud).
        output_uri: where the model bundle goes (``model.pt``, ``metrics.json``, ...).
        checkpoint_uri: where ``last.pt`` / ``best.pt`` go (default ``<output>/checkpoints``).
        config: the trainer's :class:`~mlops_kit.training.config.TrainConfig`, or the path /
            URI of its YAML (read at submission, so the job runs what was validated).
        image: container image; default ``settings.images.training`` tagged with the package
            version. Required on EKS and SageMaker.
        command: replaces the whole container command (default: ``torchrun ... -m
            mlops_kit.training train --data ... --out ...``).
        extra_args: appended to the default ``train`` command (e.g. ``["--no-export"]``).
        nodes: machines (pods or instances); more than one runs multi-node DDP.
        accelerator: ``gpu`` places the job on the GPU node group / a GPU instance type;
            default: ``gpu`` when ``gpus_per_node`` > 0, else ``cpu``.
        gpus_per_node: NVIDIA GPUs per node (``nvidia.com/gpu`` requests and limits); one
            process per GPU.
        procs_per_node: processes per node on CPU (gloo); default 1. GPU jobs run one per GPU.
        cpu: CPU request per node (Kubernetes quantity).
        memory: memory request and limit per node (Kubernetes quantity).
        env: extra environment variables of the training container.
        env_from_secrets: Kubernetes secret name -> keys; each key becomes an environment
            variable of the same name (EKS only).
        service_account: the IRSA service account (EKS), bound by Terraform to the
            ``training`` role.
        namespace: Kubernetes namespace (EKS).
        labels: extra labels on the job and its pods (EKS) or tags (SageMaker).
        instance_type: SageMaker instance type (default ``ml.g5.xlarge`` for GPU jobs,
            ``ml.m5.xlarge`` otherwise).
        volume_size_gb: SageMaker ML storage volume per instance.
        max_runtime_s: stop the job after this long (SageMaker stopping condition,
            Kubernetes ``activeDeadlineSeconds``).
        max_retries: restarts before the job is marked failed (Kubernetes backoff limit;
            training resumes from ``last.pt``).
        runtime: the Trainer v2 ``ClusterTrainingRuntime`` a TrainJob references.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str
    data_uri: str = Field(min_length=1)
    output_uri: str = Field(min_length=1)
    checkpoint_uri: str | None = None
    config: TrainConfig | str | None = None
    image: str | None = None
    command: list[str] | None = None
    extra_args: list[str] = Field(default_factory=list)
    nodes: int = Field(1, ge=1, le=512)
    accelerator: Literal["cpu", "gpu"] | None = None
    gpus_per_node: int = Field(0, ge=0, le=64)
    procs_per_node: int | None = Field(None, ge=1, le=256)
    cpu: str = "2"
    memory: str = "8Gi"
    env: dict[str, str] = Field(default_factory=dict)
    env_from_secrets: dict[str, list[str]] = Field(default_factory=dict)
    service_account: str = "training"
    namespace: str = "data-pipeline"
    labels: dict[str, str] = Field(default_factory=dict)
    instance_type: str | None = None
    volume_size_gb: int = Field(50, ge=1, le=16384)
    max_runtime_s: int | None = Field(None, ge=1)
    max_retries: int = Field(0, ge=0, le=100)
    runtime: str = "torch-distributed"

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(
                format_validation_error(exc, "training job spec", root="spec")
            ) from None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if len(v) > NAME_MAX or not NAME_PATTERN.match(v):
            raise ValueError(
                f"must be lowercase letters, digits and '-', start with a letter, end with a "
                f"letter or digit and be at most {NAME_MAX} characters (e.g. 'failure-mlp-7')"
            )
        return v

    @field_validator("service_account", "namespace", "runtime")
    @classmethod
    def _dns_label(cls, v: str) -> str:
        if len(v) > 63 or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", v):
            raise ValueError("must be a DNS-1123 label (lowercase letters, digits and '-')")
        return v

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, v: str) -> str:
        if not QUANTITY_PATTERN.match(v):
            raise ValueError("must be a Kubernetes quantity such as '4', '500m', '16Gi'")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if not ENV_NAME_PATTERN.match(k)]
        if bad:
            raise ValueError(f"invalid environment variable names {bad}")
        return v

    @field_validator("env_from_secrets")
    @classmethod
    def _secrets(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for secret, keys in v.items():
            if not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", secret) or len(secret) > 253:
                raise ValueError(f"secret name '{secret}' is not a DNS-1123 subdomain")
            if not keys:
                raise ValueError(f"secret '{secret}' lists no keys")
            bad = [k for k in keys if not ENV_NAME_PATTERN.match(k)]
            if bad:
                raise ValueError(
                    f"keys {bad} of secret '{secret}' cannot be environment variable names "
                    "(letters, digits and '_', not starting with a digit)"
                )
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            prefix, _, name = key.rpartition("/")
            if (
                not _LABEL_VALUE.match(name)
                or not name
                or (prefix and not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", prefix))
            ):
                raise ValueError(f"label key '{key}' is not a valid Kubernetes label key")
            if not _LABEL_VALUE.match(value):
                raise ValueError(
                    f"label '{key}': value '{value}' must be at most 63 letters, digits, "
                    "'-', '_' or '.', starting and ending with a letter or digit"
                )
        return v

    @field_validator("command")
    @classmethod
    def _command(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("must hold at least the executable (or be left unset)")
        return v

    @model_validator(mode="after")
    def _accelerator(self) -> TrainingJobSpec:
        if self.accelerator is None:
            object.__setattr__(self, "accelerator", "gpu" if self.gpus_per_node > 0 else "cpu")
        if self.accelerator == "gpu" and self.gpus_per_node == 0:
            raise ValueError(
                "gpus_per_node: a GPU job needs at least 1 GPU per node (got 0); "
                "set gpus_per_node or accelerator: cpu"
            )
        if self.accelerator == "cpu" and self.gpus_per_node > 0:
            raise ValueError(
                f"gpus_per_node: a CPU job cannot request GPUs (got {self.gpus_per_node}); "
                "set accelerator: gpu"
            )
        clash = sorted({k for keys in self.env_from_secrets.values() for k in keys} & set(self.env))
        if clash:
            raise ValueError(f"env_from_secrets: {clash} are also set in env")
        if (
            isinstance(self.config, TrainConfig)
            and self.config.device == "cuda"
            and self.accelerator == "cpu"
        ):
            raise ValueError("config.device: 'cuda' needs a GPU job (set gpus_per_node >= 1)")
        return self

    # -- derived values ---------------------------------------------------------------------

    @property
    def is_gpu(self) -> bool:
        """True for a job placed on NVIDIA GPUs."""
        return self.accelerator == "gpu"

    @property
    def nproc_per_node(self) -> int:
        """Processes per node: one per GPU, or ``procs_per_node`` (default 1) on CPU."""
        if self.is_gpu:
            return self.gpus_per_node
        return self.procs_per_node or 1

    def resolved_config(self) -> TrainConfig:
        """The trainer config: the object given, the YAML read from its path, or defaults.

        Raises:
            ConfigError: the YAML is unreadable or a field is invalid (named).
        """
        from mlops_kit.training.config import load_train_config

        if isinstance(self.config, TrainConfig):
            return self.config
        if self.config is None:
            return TrainConfig()
        return load_train_config(self.config)


def parse_job_spec(data: Mapping[str, Any]) -> TrainingJobSpec:
    """Build a :class:`TrainingJobSpec` from a mapping (e.g. read from YAML).

    Raises:
        ConfigError: naming each bad field.
    """
    return TrainingJobSpec(**dict(data))


def default_image(settings: Settings) -> str | None:
    """``settings.images.training`` tagged with the package version, or None when unset."""
    from mlops_kit import __version__

    repo = settings.images.training
    if not repo:
        return None
    last = repo.rsplit("/", 1)[-1]
    if ":" in last or "@" in last:
        return repo
    return f"{repo}:{__version__}"


def require_image(spec: TrainingJobSpec, settings: Settings, backend: str) -> str:
    """The image of ``spec`` or the default one.

    Raises:
        ConfigError: neither is set (names ``image`` and ``images.training``).
    """
    image = spec.image or default_image(settings)
    if not image:
        raise ConfigError(
            f"image: the {backend} backend needs a container image; set spec.image or the "
            "setting images.training (MLOPS_KIT_IMAGES__TRAINING, the ECR repository URL from "
            "the Terraform output ecr_repository_urls)"
        )
    if any(c.isspace() for c in image) or len(image) > 500:
        raise ConfigError(f"image: '{image}' is not a valid image reference")
    return image


def require_remote_uri(
    value: str | None, field_name: str, backend: str, schemes: tuple[str, ...]
) -> None:
    """Raise a :class:`ConfigError` naming ``field_name`` unless ``value`` uses ``schemes``."""
    if value is None:
        return
    if not value.startswith(tuple(f"{s}://" for s in schemes)) or not _URI_SCHEME.match(value):
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise ConfigError(
            f"{field_name}: the {backend} backend cannot reach '{value}'; use a {wanted} URI"
        )


def _yaml_scalar(value: Any) -> str:
    """``value`` as YAML the trainer's ``--set`` parser reads back to the same value."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        import yaml

        if value and value == value.strip() and "\n" not in value:
            try:
                if yaml.safe_load(value) == value:
                    return value
            except yaml.YAMLError:
                pass
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__} as a --set value")


def flatten_config(config: TrainConfig, *, only_changed: bool = False) -> dict[str, str]:
    """Dotted keys -> YAML values of a trainer config (``model.hidden_sizes`` -> ``[64, 32]``).

    Args:
        config: the trainer config.
        only_changed: keep only the fields that differ from their defaults.
    """
    data = config.model_dump(mode="json", exclude_defaults=only_changed)
    out: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else key, value)
        else:
            out[prefix] = _yaml_scalar(node)

    walk("", data)
    return out


def train_arguments(
    spec: TrainingJobSpec,
    *,
    data: str | None = None,
    out: str | None = None,
    checkpoint: str | None = None,
    config: TrainConfig | None = None,
) -> list[str]:
    """The arguments of ``python -m mlops_kit.training`` for ``spec`` (from ``train`` on).

    The config travels inline as ``--set key=value`` pairs of its non-default fields, so the
    job runs exactly the config validated at submission.
    """
    cfg = config if config is not None else spec.resolved_config()
    ckpt = checkpoint if checkpoint is not None else spec.checkpoint_uri
    if ckpt is not None:
        cfg = cfg.model_copy(update={"checkpoint_uri": ckpt})
    args = ["train", "--data", data or spec.data_uri, "--out", out or spec.output_uri]
    for key, value in flatten_config(cfg, only_changed=True).items():
        args += ["--set", f"{key}={value}"]
    return args + list(spec.extra_args)


class TrainingLauncher(ABC):
    """Submits :class:`TrainingJobSpec` runs to one backend and follows them.

    Every backend offers the same four calls: :meth:`validate`, :meth:`submit`,
    :meth:`status` and :meth:`wait` (plus :meth:`run`, submit then wait).

    Args:
        settings: mlops_kit settings (default: :func:`~mlops_kit.config.load_settings`).
    """

    backend: ClassVar[str]
    #: seconds between status polls in :meth:`wait` unless told otherwise
    default_poll_s: ClassVar[float] = 10.0

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()

    @abstractmethod
    def validate(self, spec: TrainingJobSpec) -> TrainingJobSpec:
        """Check ``spec`` against this backend and fill its backend defaults.

        Returns:
            The spec with defaults resolved (e.g. the image).

        Raises:
            ConfigError: naming the field that cannot work on this backend.
        """

    @abstractmethod
    def submit(self, spec: TrainingJobSpec) -> JobHandle:
        """Validate ``spec`` and start the job; returns without waiting for it.

        Raises:
            ConfigError: the spec is invalid for this backend (nothing was submitted).
            LaunchError: the backend refused the job.
        """

    @abstractmethod
    def status(self, handle: JobHandle) -> JobStatus:
        """The job's current status.

        Raises:
            LaunchError: the backend does not know the job or cannot be reached.
        """

    def wait(
        self,
        handle: JobHandle,
        timeout: float | None = None,
        poll: float | None = None,
        *,
        raise_on_failure: bool = True,
    ) -> JobStatus:
        """Poll :meth:`status` until the job succeeds or fails.

        Args:
            handle: the submitted job.
            timeout: seconds to wait at most; None waits for ever.
            poll: seconds between polls (default: the backend's ``default_poll_s``).
            raise_on_failure: raise :class:`TrainingJobFailedError` when the job fails
                (otherwise return its Failed status).

        Raises:
            TrainingJobFailedError: the job failed (its reason and message in the text).
            TrainingJobTimeoutError: ``timeout`` passed first.
        """
        interval = self.default_poll_s if poll is None else poll
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(handle)
            if status.done:
                return self._finish(handle, status, raise_on_failure)
            if deadline is not None and time.monotonic() >= deadline:
                raise TrainingJobTimeoutError(
                    f"{handle.kind} '{handle.name}' did not finish within {timeout:g} s "
                    f"(last status: {status.describe()})",
                    status=status,
                )
            time.sleep(
                interval
                if deadline is None
                else max(0.0, min(interval, deadline - time.monotonic()))
            )

    def run(
        self, spec: TrainingJobSpec, timeout: float | None = None, poll: float | None = None
    ) -> JobStatus:
        """Submit ``spec`` and wait for it (raising when it fails)."""
        return self.wait(self.submit(spec), timeout=timeout, poll=poll)

    @staticmethod
    def _finish(handle: JobHandle, status: JobStatus, raise_on_failure: bool) -> JobStatus:
        if status.phase is JobPhase.FAILED and raise_on_failure:
            detail = f" ({status.reason})" if status.reason else ""
            message = f": {status.message}" if status.message else ""
            raise TrainingJobFailedError(
                f"{handle.backend} {handle.kind} '{handle.name}' failed{detail}{message}",
                status=status,
            )
        return status


__all__ = [
    "Backend",
    "JobHandle",
    "JobPhase",
    "JobStatus",
    "LaunchError",
    "TrainingJobFailedError",
    "TrainingJobSpec",
    "TrainingJobTimeoutError",
    "TrainingLauncher",
    "default_image",
    "flatten_config",
    "parse_job_spec",
    "require_image",
    "require_remote_uri",
    "train_arguments",
]
