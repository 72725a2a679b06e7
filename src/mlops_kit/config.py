"""Typed settings: one model for the embedded default and for AWS.

Values come, highest priority first, from keyword arguments, ``MLOPS_KIT_*`` environment
variables (nested with ``__``, e.g. ``MLOPS_KIT_AWS__REGION``), a YAML file
(``$MLOPS_KIT_CONFIG`` or ``./mlops_kit.yaml``) and the defaults below.

Profile ``local`` keeps everything under one home directory (``./.mlops_kit``). Profile
``aws`` uses S3 URIs, a region and an optional ``endpoint_url`` per service (for moto,
LocalStack or VPC endpoints).
"""

from __future__ import annotations

import os
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from mlops_kit.errors import ConfigError, format_validation_error

AwsService = Literal[
    "s3", "kinesis", "dynamodb", "sagemaker", "ecr", "secretsmanager", "sts", "iam", "logs"
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AwsSettings(_Section):
    """Where AWS APIs are reached."""

    region: str = Field("us-east-1", description="AWS region of every client.")
    endpoint_url: str | None = Field(
        None, description="One endpoint for every service (moto's server, LocalStack)."
    )
    endpoints: dict[AwsService, str] = Field(
        default_factory=dict, description="Per-service endpoint, overriding endpoint_url."
    )
    sagemaker_role_arn: str | None = Field(
        None,
        description="Execution role of SageMaker training jobs (trusted by sagemaker.amazonaws.com).",
    )

    def endpoint_for(self, service: str) -> str | None:
        """The endpoint URL for ``service``, or None for AWS's own."""
        return self.endpoints.get(service, self.endpoint_url)  # type: ignore[call-overload]

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` honouring the region and endpoint."""
        import boto3

        return boto3.client(
            service, region_name=self.region, endpoint_url=self.endpoint_for(service)
        )


class StorageSettings(_Section):
    """The data lake zones, as URIs (``file://``, a plain path, or ``s3://``).

    Unset zones are derived: under ``<home>/lake`` for the local profile, or beside
    ``processed_uri`` on S3 for the aws profile.
    """

    raw_uri: str | None = None
    processed_uri: str | None = None
    quarantine_uri: str | None = None
    reports_uri: str | None = None
    state_uri: str | None = Field(None, description="Checkpoints, ledgers and run manifests.")
    models_uri: str | None = None
    artifacts_uri: str | None = None


class StreamSettings(_Section):
    """The IoT stream."""

    backend: Literal["local", "kinesis"] = "local"
    stream_name: str = "iot-readings"
    batch_size: int = Field(500, ge=1, le=10_000, description="Records per micro-batch.")
    local_path: str | None = Field(None, description="JSONL file of the local stream.")


class WarehouseSettings(_Section):
    """The warehouse table the ETL loads aggregates into."""

    url: str | None = Field(
        None,
        description="duckdb:///<path> (default, under home) or postgresql+psycopg://user@host:port/db",
    )
    secret_arn: str | None = Field(
        None, description="Secrets Manager secret holding the password (aws profile)."
    )
    table: str | None = Field(
        None, description="Table the feature rows load into (default: the dataset spec's table)."
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str | None) -> str | None:
        if v is None:
            return v
        ok = ("duckdb://", "postgresql://", "postgresql+psycopg://", "postgres://")
        if not v.startswith(ok):
            raise ValueError(f"unsupported warehouse URL '{v}': use one of {', '.join(ok)}")
        return v


class QualitySettings(_Section):
    """Thresholds of the quality gate."""

    max_quarantine_rate: float = Field(
        0.2, ge=0.0, le=1.0, description="Fail the run above this share of quarantined rows."
    )
    max_future_skew_s: int = Field(
        300, ge=0, description="Readings timestamped further in the future are rejected."
    )
    max_age_days: int = Field(
        3650, ge=1, description="Readings older than this are rejected as stale."
    )


class ParseSettings(_Section):
    """How the ETL reads raw objects (see :mod:`mlops_kit.etl.decode`)."""

    encoding: str | None = Field(
        None,
        description="Encoding of text objects that are neither UTF-8 nor UTF-16/32 with a "
        "byte-order mark (e.g. latin-1); unset: such objects are quarantined.",
    )
    epoch_unit: Literal["auto", "s", "ms", "us", "ns"] = Field(
        "auto",
        description="Unit of numeric event times; auto: by magnitude (< 1e11 s, < 1e14 ms, "
        "< 1e17 us, else ns).",
    )
    naive_timezone: str | None = Field(
        "UTC",
        description="Zone of ISO 8601 times without an offset (an IANA name); unset: refuse them.",
    )

    @field_validator("naive_timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is None or v.upper() == "UTC":
            return v
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone '{v}': use an IANA name such as Europe/Berlin"
            ) from None
        return v

    def zone(self) -> Any:
        """The tzinfo for naive times, or None when they are refused."""
        from datetime import timezone

        if self.naive_timezone is None:
            return None
        if self.naive_timezone.upper() == "UTC":
            return timezone.utc
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.naive_timezone)


class FeaturesSettings(_Section):
    """Feature store placement (Feast), see docs/features.md.

    Unset locations are derived: under ``<home>/features`` for the local profile, or beside
    ``processed_uri`` on S3 for the aws profile.
    """

    online_store: Literal["sqlite", "dynamodb"] = Field(
        "sqlite", description="Online store: sqlite (embedded) or dynamodb (AWS)."
    )
    dynamodb_table: str | None = Field(
        None,
        description=(
            "Prefix of the DynamoDB tables, one per feature view: '<prefix>.<view>' "
            "(default '<project>.<view>')."
        ),
    )
    project: str = Field("mlops_kit", pattern=r"^[A-Za-z0-9_]+$", description="Feast project name.")
    registry: str | None = Field(
        None,
        description=(
            "Feast registry: a path or s3:// URI of a file registry, or a "
            "postgresql+psycopg:// URL of a SQL registry (the RDS path). Default: "
            "<home>/features/registry.db, or <processed_uri>/../features/registry.pb on S3."
        ),
    )
    online_path: str | None = Field(
        None, description="SQLite online store file (default <home>/features/online.db)."
    )
    sqlite_writer: Literal["batched", "feast"] = Field(
        "batched",
        description=(
            "How materialization writes the SQLite online store: batched (one upsert "
            "statement per batch, same tables and values) or feast (Feast's store, one "
            "upsert per feature value)."
        ),
    )
    source_uri: str | None = Field(
        None,
        description=(
            "Parquet folder the feature views read (default "
            "<processed_uri>/<the dataset spec's table>, the ETL's output)."
        ),
    )
    ttl_s: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "TTL in seconds per feature view, overriding the dataset spec's "
            "(e.g. {device_hourly: 7200}): older rows are not joined."
        ),
    )
    service_version: int = Field(
        1, ge=1, description="Version of the FeatureService models are trained and served with."
    )
    missing: Literal["keep", "drop"] = Field(
        "keep",
        description=(
            "Training rows with no feature row at or before their timestamp (within the TTL): "
            "keep them with null features, or drop them. Both are counted in the manifest."
        ),
    )
    engine: Literal["local", "ray"] = Field(
        "local",
        description=(
            "Feast compute engine for materialization and training sets: local (in this "
            "process) or ray (Feast's Ray engine, on the cluster the 'ray' section names)."
        ),
    )
    online_write_batch: int = Field(
        25,
        ge=1,
        le=25,
        description="Items per DynamoDB BatchWriteItem (25 at most); throttled items are retried.",
    )
    fast_online: bool = Field(
        True,
        description=(
            "Serve online reads of plain feature views straight from the online store's "
            "tables (same values as Feast, less overhead); on-demand views go through Feast."
        ),
    )


class TrackingSettings(_Section):
    """MLflow tracking and model registry (MLFLOW_TRACKING_URI, when set, wins)."""

    uri: str | None = Field(
        None,
        description=(
            "Tracking URI: http(s):// of an MLflow server (on AWS, the server in front of RDS "
            "PostgreSQL) or a database URI; default sqlite:///<home>/mlflow.db (local profile)."
        ),
    )
    experiment: str | None = Field(
        None, description="Experiment name (MLFLOW_EXPERIMENT_NAME, then 'mlops-kit')."
    )


class RegistrySettings(_Section):
    """Model registry promotion (see docs/registry.md)."""

    model_name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description=(
            "Registered model name used when a command names none (default: the dataset "
            "spec's feature service name with '-', e.g. device-failure)."
        ),
    )
    policy: str | None = Field(
        None, description="Promotion policy YAML file (default: the built-in policy)."
    )
    evaluation_uri: str | None = Field(
        None, description="Fixed evaluation table (Parquet) promotions are scored on."
    )
    sagemaker_mirror: bool = Field(
        False, description="Mirror versions and approvals to the SageMaker Model Registry."
    )
    serving_image: str | None = Field(
        None, description="Inference image of the mirrored model packages (default images.serving)."
    )
    lock_ttl_s: float = Field(
        120.0, gt=0, description="Lease of the promotion lock; an older lease counts as stale."
    )


class RolloutSettings(_Section):
    """Canary rollout: traffic steps, watch window and the analysis thresholds."""

    steps: list[int] = Field(
        [10, 50, 100],
        description="Canary traffic share in percent at each step, increasing, ending at 100.",
    )
    watch_s: float = Field(
        600.0, gt=0, description="Watch window at each step before it is analysed (seconds)."
    )
    min_requests: int = Field(
        100,
        ge=1,
        description=(
            "Requests each side (stable and canary) must have answered in a window before it "
            "is judged; a quieter window is extended, never passed."
        ),
    )
    max_error_rate: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Canary error rate allowed above the stable's in the same window.",
    )
    max_p99_ratio: float = Field(
        1.5, gt=0, description="Canary p99 latency allowed, as a multiple of the stable's."
    )
    p99_slack_ms: float = Field(
        5.0, ge=0, description="Latency difference always allowed (quiet machines jitter)."
    )
    max_prediction_psi: float = Field(
        0.25,
        ge=0,
        description="Population stability index of canary vs stable predictions allowed.",
    )
    max_extensions: int = Field(
        3, ge=0, description="Windows a step may be extended for lack of traffic before it fails."
    )

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[int]) -> list[int]:
        if not v or v[-1] != 100 or any(b <= a for a, b in pairwise(v)):
            raise ValueError("steps must increase and end at 100, e.g. [10, 50, 100]")
        if v[0] <= 0:
            raise ValueError("steps must be percentages above 0")
        return v


class ServingSettings(_Section):
    """The inference service (Ray Serve) and its rollout (see docs/serving.md)."""

    alias: str = Field("champion", description="Registry alias the stable deployment serves.")
    host: str = Field("127.0.0.1", description="Address the HTTP proxy binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port of the HTTP proxy.")
    app_name: str = Field("mlops-kit", description="Ray Serve application name.")
    namespace: str = Field("ai-inference", description="Kubernetes namespace of the RayService.")
    replicas: int = Field(1, ge=1, description="Replicas of each model deployment.")
    max_ongoing_requests: int = Field(
        256, ge=1, description="Requests a replica accepts at once (Ray Serve's default is 5)."
    )
    max_batch_size: int = Field(
        256, ge=1, description="Rows scored in one ONNX Runtime call across requests."
    )
    batch_wait_timeout_s: float = Field(
        0.0,
        ge=0,
        description=(
            "Wait for a batch to fill. 0 (adaptive): score what is queued at once; batches "
            "grow by themselves while the previous one runs."
        ),
    )
    max_request_rows: int = Field(
        1024, ge=1, description="Rows one request may carry; more answers HTTP 413."
    )
    ray_address: str | None = Field(
        None, description="Ray cluster to deploy to (default: a local one on this machine)."
    )
    state_uri: str | None = Field(
        None,
        description="Where rollout state is kept (default <home>/serving, or the state bucket).",
    )
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)


class RaySettings(_Section):
    """Where the ``ray`` backends run (see docs/scale-out.md): a local Ray cluster on this
    machine, an existing cluster by address, or a KubeRay ``RayJob`` on EKS."""

    address: str | None = Field(
        None,
        description=(
            "An existing cluster ('auto', 'ray://<head>:10001', or '<head>:6379'); unset "
            "starts a local cluster with num_cpus."
        ),
    )
    num_cpus: int | None = Field(
        None, ge=1, description="CPUs of a local cluster (default: the machine's cores)."
    )
    workers: int = Field(
        2, ge=1, description="Parallel tasks of each stage (ETL partitions, materialization)."
    )
    namespace: str = Field("data-pipeline", description="Kubernetes namespace of RayJobs.")
    worker_replicas: int = Field(2, ge=1, description="Worker pods of a RayJob's cluster.")
    worker_cpu: str = Field("4", description="CPU request and limit of each RayJob worker.")
    worker_memory: str = Field("16Gi", description="Memory of each RayJob worker.")
    head_cpu: str = Field("2", description="CPU of a RayJob's head pod.")
    head_memory: str = Field("8Gi", description="Memory of a RayJob's head pod.")


class EtlSettings(_Section):
    """How the ETL runs: in this process, or on Ray (same rules, accounting and commit)."""

    backend: Literal["local", "ray"] = Field(
        "local",
        description=(
            "local: one process (the default); ray: extract, quality and transform as Ray "
            "tasks, partitioned by entity (see the 'ray' section)."
        ),
    )
    partitions: int | None = Field(
        None,
        ge=1,
        description="Entity partitions of a ray run (default: 2 x ray.workers).",
    )


class ClusterSettings(_Section):
    """The EKS cluster and its workload identities."""

    name: str | None = None
    service_account_roles: dict[str, str] = Field(default_factory=dict)
    gpu_node_label: str = "mlops-kit/accelerator=nvidia-gpu"
    gpu_taint: str = "nvidia.com/gpu=present:NoSchedule"


class ImagesSettings(_Section):
    """Container images (repositories without tag; the tag follows the package version)."""

    training: str | None = None
    serving: str | None = None
    pipeline: str = "ghcr.io/mlops-kit/mlops-kit"


def _config_file() -> Path:
    return Path(os.environ.get("MLOPS_KIT_CONFIG", "mlops_kit.yaml"))


class Settings(BaseSettings):
    """All of mlops_kit's settings. Build with :func:`load_settings` for clear errors."""

    model_config = SettingsConfigDict(
        env_prefix="MLOPS_KIT_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    profile: Literal["local", "aws"] = "local"
    home: Path = Field(Path(".mlops_kit"), description="Root of everything in the local profile.")
    dataset: str = Field(
        "iot_readings",
        description=(
            "The dataset spec: a bundled name (iot_readings, machine_telemetry) or the path "
            "of a YAML spec (see 'mlops-kit dataset')."
        ),
    )
    aws: AwsSettings = Field(default_factory=AwsSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    parse: ParseSettings = Field(default_factory=ParseSettings)
    features: FeaturesSettings = Field(default_factory=FeaturesSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    etl: EtlSettings = Field(default_factory=EtlSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    images: ImagesSettings = Field(default_factory=ImagesSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path.is_file():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        s = self.storage
        if self.profile == "local":
            lake = self.home / "lake"
            defaults = {
                "raw_uri": lake / "raw",
                "processed_uri": lake / "processed",
                "quarantine_uri": lake / "quarantine",
                "reports_uri": lake / "reports",
                "state_uri": lake / "_state",
                "models_uri": self.home / "models",
                "artifacts_uri": self.home / "pipelines",
            }
            for key, path in defaults.items():
                if getattr(s, key) is None:
                    object.__setattr__(s, key, str(path))
            if self.warehouse.url is None:
                object.__setattr__(
                    self.warehouse, "url", f"duckdb:///{self.home / 'warehouse.duckdb'}"
                )
            if self.stream.local_path is None:
                object.__setattr__(
                    self.stream, "local_path", str(self.home / "stream" / "readings.jsonl")
                )
        else:
            missing = [k for k in ("raw_uri", "processed_uri") if getattr(s, k) is None]
            if missing:
                raise ValueError(
                    f"profile 'aws' needs storage.{missing[0]} (an s3:// URI); "
                    "generate the config from Terraform outputs with "
                    "'mlops-kit config from-terraform infra/terraform/envs/<env>'"
                )
            base = s.processed_uri.rstrip("/").rsplit("/", 1)[0]  # type: ignore[union-attr]
            for key, leaf in (
                ("quarantine_uri", "quarantine"),
                ("reports_uri", "reports"),
                ("state_uri", "_state"),
            ):
                if getattr(s, key) is None:
                    object.__setattr__(s, key, f"{base}/{leaf}")
            if self.warehouse.url is None:
                raise ValueError(
                    "profile 'aws' needs warehouse.url (postgresql+psycopg://user@host:5432/db)"
                )
        return self


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings` from overrides, environment and YAML file.

    Raises:
        ConfigError: naming each bad field, what was given and what is accepted.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(
                exc,
                "mlops_kit settings",
                root="settings",
                unknown="unknown setting (check the spelling; see 'mlops-kit config show')",
            )
        ) from None
