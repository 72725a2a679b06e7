"""The job spec: one training run, independent of the backend that runs it.

:class:`TrainingJobSpec` validates every field on construction (job name, Kubernetes
quantities, environment and secret names, labels, accelerator) and raises
:class:`~mlops_kit.errors.ConfigError` naming the bad ones; :func:`require_image` and
:func:`require_remote_uri` are the checks a backend adds in its ``validate``.

This module imports neither torch nor a cloud SDK.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops_kit.config import Settings
from mlops_kit.errors import ConfigError, format_validation_error
from mlops_kit.training.config import TrainConfig

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


__all__ = [
    "TrainingJobSpec",
    "default_image",
    "parse_job_spec",
    "require_image",
    "require_remote_uri",
]
