"""SageMaker backend: a SageMaker training job built with the SDK v3 ``ModelTrainer``.

The job runs the training image with a ``SourceCode`` command (the SDK's driver script
sources the SageMaker environment, then runs)::

    torchrun --standalone --nnodes=1 --nproc_per_node=<gpus> -m mlops_kit.training \\
        train --data /opt/ml/input/data/train --out <output_uri> --set ...

* input channel ``train`` downloads ``data_uri`` (S3 prefix) to ``/opt/ml/input/data/train``;
* the model bundle is written to ``output_uri`` directly, the same layout as on the other
  backends; SageMaker's own output (``model.tar.gz`` of ``/opt/ml/model``, the failure
  file) and the SDK's staged driver scripts go under ``<output_uri>/sagemaker/``;
* ``checkpoint_uri`` becomes the job's checkpoint config (synced with
  ``/opt/ml/checkpoints``), so a restarted or spot-interrupted job resumes;
* the trainer config is passed as ``--set`` arguments and mirrored as the job's
  hyperparameters (flattened, dotted keys), which the console and search show.

Every AWS call, including the SDK's own, goes to ``settings.aws.endpoint_for(service)``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from mlops_kit._lazy import require
from mlops_kit.config import Settings
from mlops_kit.errors import ConfigError
from mlops_kit.training.launchers.arguments import flatten_config, train_arguments
from mlops_kit.training.launchers.base import (
    JobHandle,
    JobPhase,
    JobStatus,
    LaunchError,
    TrainingJobTimeoutError,
    TrainingLauncher,
)
from mlops_kit.training.launchers.spec import TrainingJobSpec, require_image, require_remote_uri

log = logging.getLogger("mlops_kit.training.launchers")

#: GPUs of the SageMaker GPU instance types, by family then size.
GPU_INSTANCES: dict[str, dict[str, int]] = {
    "p3": {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8},
    "p3dn": {"24xlarge": 8},
    "p4d": {"24xlarge": 8},
    "p4de": {"24xlarge": 8},
    "p5": {"4xlarge": 1, "48xlarge": 8},
    "p5e": {"48xlarge": 8},
    "p5en": {"48xlarge": 8},
    "g4dn": {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4},
    **{
        family: {
            "xlarge": 1,
            "2xlarge": 1,
            "4xlarge": 1,
            "8xlarge": 1,
            "16xlarge": 1,
            "12xlarge": 4,
            "24xlarge": 4,
            "48xlarge": 8,
        }
        for family in ("g5", "g6", "g6e")
    },
}
GPU_FAMILIES = tuple(GPU_INSTANCES)
DEFAULT_GPU_INSTANCE = "ml.g5.xlarge"
DEFAULT_CPU_INSTANCE = "ml.m5.xlarge"
INSTANCE_PATTERN = re.compile(
    r"^ml\.(?P<family>[a-z][a-z0-9-]*)\.(?P<size>medium|large|[0-9]*xlarge)$"
)
CHANNEL = "train"
DATA_DIR = f"/opt/ml/input/data/{CHANNEL}"
CHECKPOINT_DIR = "/opt/ml/checkpoints"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
MASTER_PORT = 29500
_PENDING_SECONDARY = {"Starting", "Pending", "LaunchingMLInstances", "PreparingTrainingStack"}


def parse_instance_type(instance_type: str) -> tuple[str, str]:
    """``ml.g5.2xlarge`` -> ``("g5", "2xlarge")``.

    Raises:
        ConfigError: naming ``instance_type``.
    """
    m = INSTANCE_PATTERN.match(instance_type)
    if not m:
        raise ConfigError(
            f"instance_type: '{instance_type}' is not a SageMaker instance type "
            "(expected ml.<family>.<size>, e.g. ml.g5.2xlarge or ml.m5.xlarge)"
        )
    return m.group("family"), m.group("size")


def resolve_instance_type(spec: TrainingJobSpec) -> str:
    """The instance type of ``spec`` (or the default), checked against its GPU needs.

    Raises:
        ConfigError: a malformed type, a GPU job on a non-GPU family (``instance_type``), or
            more GPUs asked than the instance has (``gpus_per_node``).
    """
    instance_type = spec.instance_type or (
        DEFAULT_GPU_INSTANCE if spec.is_gpu else DEFAULT_CPU_INSTANCE
    )
    family, size = parse_instance_type(instance_type)
    if spec.is_gpu:
        if family not in GPU_INSTANCES:
            raise ConfigError(
                f"instance_type: '{instance_type}' has no NVIDIA GPU but the job asks for "
                f"{spec.gpus_per_node} per node; use a GPU family: "
                + ", ".join(f"ml.{f}.*" for f in GPU_FAMILIES)
            )
        have = GPU_INSTANCES[family].get(size)
        if have is not None and spec.gpus_per_node > have:
            raise ConfigError(
                f"gpus_per_node: {instance_type} has {have} GPU(s), the job asks for "
                f"{spec.gpus_per_node}"
            )
    return instance_type


def _endpoint_session(settings: Settings, base: Any = None) -> Any:
    """A boto3 session whose clients and resources use the settings' endpoints."""
    import boto3.session

    class EndpointSession(boto3.session.Session):
        def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
            if len(args) < 5 and kwargs.get("endpoint_url") is None:
                kwargs["endpoint_url"] = settings.aws.endpoint_for(service_name)
            return super().client(service_name, *args, **kwargs)

        def resource(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
            if len(args) < 5 and kwargs.get("endpoint_url") is None:
                kwargs["endpoint_url"] = settings.aws.endpoint_for(service_name)
            return super().resource(service_name, *args, **kwargs)

    if base is not None:
        return EndpointSession(botocore_session=base._session, region_name=base.region_name)
    return EndpointSession(region_name=settings.aws.region)


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key.strip("/")


def _time(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def training_job_status(desc: dict[str, Any]) -> JobStatus:
    """The :class:`JobStatus` of a ``DescribeTrainingJob`` response."""
    state = desc.get("TrainingJobStatus")
    secondary = desc.get("SecondaryStatus")
    start = _time(desc.get("TrainingStartTime"))
    end = _time(desc.get("TrainingEndTime"))
    failure = desc.get("FailureReason")
    if state == "Completed":
        return JobStatus(JobPhase.SUCCEEDED, secondary or "Completed", None, start, end, desc)
    if state == "Failed":
        return JobStatus(JobPhase.FAILED, secondary or "Failed", failure, start, end, desc)
    if state == "Stopped":
        return JobStatus(
            JobPhase.FAILED,
            secondary or "Stopped",
            failure or "the training job was stopped before it completed",
            start,
            end,
            desc,
        )
    if state == "InProgress" and secondary in _PENDING_SECONDARY:
        return JobStatus(JobPhase.PENDING, secondary, None, start, end, desc)
    return JobStatus(JobPhase.RUNNING, secondary or state, None, start, end, desc)


class SageMakerLauncher(TrainingLauncher):
    """Runs jobs as SageMaker training jobs (SDK v3 ``ModelTrainer``).

    Args:
        settings: mlops_kit settings (region, endpoints, images).
        role_arn: the SageMaker execution role; default
            ``settings.aws.sagemaker_role_arn``, then
            ``settings.cluster.service_account_roles["sagemaker"]``.
        boto_session: a boto3 session to take credentials from (default: the usual chain).
        logs: stream the job's CloudWatch logs while waiting.
        on_log: receives each log line (default: the ``mlops_kit.training.launchers`` logger).
        sagemaker_uri: where SageMaker's output and the staged driver scripts go
            (default ``<output_uri>/sagemaker``).
    """

    backend: ClassVar[str] = "sagemaker"
    default_poll_s: ClassVar[float] = 30.0

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        role_arn: str | None = None,
        boto_session: Any = None,
        logs: bool = True,
        on_log: Callable[[str], None] | None = None,
        sagemaker_uri: str | None = None,
    ) -> None:
        super().__init__(settings)
        self.role_arn = (
            role_arn
            or self.settings.aws.sagemaker_role_arn
            or self.settings.cluster.service_account_roles.get("sagemaker")
        )
        self.session = _endpoint_session(self.settings, boto_session)
        self.logs = logs
        self.on_log = on_log or (lambda line: log.info("%s", line))
        self.sagemaker_uri = sagemaker_uri
        self._log_tokens: dict[str, dict[str, Any]] = {}

    # -- validation -----------------------------------------------------------------------------

    def validate(self, spec: TrainingJobSpec) -> TrainingJobSpec:
        """SageMaker checks: image, instance type and GPUs, S3 URIs, role, hyperparameters.

        Raises:
            ConfigError: naming ``image``, ``instance_type``, ``gpus_per_node``,
                ``data_uri``, ``output_uri``, ``checkpoint_uri``, ``env_from_secrets``,
                ``role_arn`` or ``config``.
        """
        image = require_image(spec, self.settings, "SageMaker")
        instance_type = resolve_instance_type(spec)
        for name in ("data_uri", "output_uri", "checkpoint_uri"):
            require_remote_uri(getattr(spec, name), name, "SageMaker", ("s3",))
        if self.sagemaker_uri is not None:
            require_remote_uri(self.sagemaker_uri, "sagemaker_uri", "SageMaker", ("s3",))
        if spec.env_from_secrets:
            raise ConfigError(
                "env_from_secrets: Kubernetes secrets do not exist on SageMaker; read the "
                "values from Secrets Manager in the job, or pass them in env"
            )
        if not self.role_arn:
            raise ConfigError(
                "role_arn: a SageMaker training job needs an execution role; pass role_arn= "
                "or set cluster.service_account_roles.sagemaker"
            )
        hps = flatten_config(spec.resolved_config())
        long = [k for k, v in hps.items() if len(k) > 256 or len(v) > 2500]
        if len(hps) > 100 or long:
            raise ConfigError(
                f"config: SageMaker allows 100 hyperparameters of at most 2500 characters "
                f"(too long: {long})"
            )
        return spec.model_copy(update={"image": image, "instance_type": instance_type})

    # -- submission -----------------------------------------------------------------------------

    def _staging_uri(self, spec: TrainingJobSpec) -> str:
        return self.sagemaker_uri or spec.output_uri.rstrip("/") + "/sagemaker"

    def command(self, spec: TrainingJobSpec) -> tuple[str, list[str]]:
        """The ``SourceCode`` command and arguments of ``spec`` (after :meth:`validate`)."""
        if spec.command is not None:
            return spec.command[0], list(spec.command[1:])
        nproc = spec.nproc_per_node
        if spec.nodes > 1:
            launcher = (
                "torchrun --nnodes=$SM_HOST_COUNT --node_rank=$SM_CURRENT_HOST_RANK "
                f"--master_addr=$SM_MASTER_ADDR --master_port={MASTER_PORT} "
                f"--nproc_per_node={nproc}"
            )
        else:
            launcher = f"torchrun --standalone --nnodes=1 --nproc_per_node={nproc}"
        args = train_arguments(
            spec,
            data=DATA_DIR,
            out=spec.output_uri,
            checkpoint=CHECKPOINT_DIR if spec.checkpoint_uri else None,
        )
        return f"{launcher} -m mlops_kit.training", args

    def model_trainer(self, spec: TrainingJobSpec) -> Any:
        """The ``ModelTrainer`` for ``spec`` (validated); :meth:`submit` calls ``train`` on it."""
        spec = self.validate(spec)
        require("sagemaker", "the SageMaker training launcher")
        from sagemaker.core.helper.session_helper import Session
        from sagemaker.core.shapes import Tag
        from sagemaker.core.training.configs import (
            CheckpointConfig,
            Compute,
            InputData,
            OutputDataConfig,
            SourceCode,
            StoppingCondition,
        )
        from sagemaker.train import ModelTrainer
        from sagemaker.train.model_trainer import Mode

        staging = self._staging_uri(spec)
        bucket, prefix = _split_s3(staging)
        sm_session = Session(
            boto_session=self.session,
            sagemaker_client=self.session.client("sagemaker"),
            default_bucket=bucket,
            default_bucket_prefix=prefix or None,
        )
        command, args = self.command(spec)
        tags = {"mlops-kit/job": spec.name, **spec.labels}
        return ModelTrainer(
            training_mode=Mode.SAGEMAKER_TRAINING_JOB,
            sagemaker_session=sm_session,
            role=self.role_arn,
            base_job_name=spec.name,
            training_image=spec.image,
            source_code=SourceCode(command=command, args=args),
            compute=Compute(
                instance_type=spec.instance_type,
                instance_count=spec.nodes,
                volume_size_in_gb=spec.volume_size_gb,
            ),
            stopping_condition=StoppingCondition(
                max_runtime_in_seconds=spec.max_runtime_s or 24 * 3600
            ),
            input_data_config=[InputData(channel_name=CHANNEL, data_source=spec.data_uri)],
            output_data_config=OutputDataConfig(s3_output_path=staging),
            checkpoint_config=(
                CheckpointConfig(s3_uri=spec.checkpoint_uri, local_path=CHECKPOINT_DIR)
                if spec.checkpoint_uri
                else None
            ),
            environment={
                "PYTHONUNBUFFERED": "1",
                "MLOPS_KIT_AWS__REGION": self.settings.aws.region,
                **spec.env,
            },
            hyperparameters=flatten_config(spec.resolved_config()),
            tags=[Tag(key=k, value=v) for k, v in tags.items()],
        )

    def submit(self, spec: TrainingJobSpec) -> JobHandle:
        trainer = self.model_trainer(spec)
        botocore = require("botocore.exceptions")
        try:
            trainer.train(wait=False, logs=False)
        except botocore.ClientError as exc:
            err = exc.response.get("Error", {})
            raise LaunchError(
                f"creating SageMaker training job '{spec.name}': {err.get('Code')}: "
                f"{err.get('Message')}"
            ) from None
        job = trainer._latest_training_job
        name = str(job.training_job_name)
        arn = getattr(job, "training_job_arn", None)
        return JobHandle("sagemaker", name, "TrainingJob", None, str(arn) if arn else None)

    # -- status ---------------------------------------------------------------------------------

    def describe(self, handle: JobHandle) -> dict[str, Any]:
        """The ``DescribeTrainingJob`` response of the job."""
        botocore = require("botocore.exceptions")
        try:
            return dict(
                self.session.client("sagemaker").describe_training_job(TrainingJobName=handle.name)
            )
        except botocore.ClientError as exc:
            err = exc.response.get("Error", {})
            raise LaunchError(
                f"reading SageMaker training job '{handle.name}': {err.get('Code')}: "
                f"{err.get('Message')}"
            ) from None

    def status(self, handle: JobHandle) -> JobStatus:
        return training_job_status(self.describe(handle))

    def _stream_logs(self, handle: JobHandle) -> None:
        botocore = require("botocore.exceptions")
        logs = self.session.client("logs")
        tokens = self._log_tokens.setdefault(handle.name, {})
        try:
            streams = logs.describe_log_streams(
                logGroupName=LOG_GROUP, logStreamNamePrefix=f"{handle.name}/"
            ).get("logStreams", [])
            for stream in streams:
                name = stream["logStreamName"]
                kwargs: dict[str, Any] = {
                    "logGroupName": LOG_GROUP,
                    "logStreamName": name,
                    "startFromHead": True,
                }
                if name in tokens:
                    kwargs["nextToken"] = tokens[name]
                events = logs.get_log_events(**kwargs)
                for event in events.get("events", []):
                    self.on_log(f"{name.split('/', 1)[-1]}: {event.get('message', '')}")
                tokens[name] = events.get("nextForwardToken")
        except botocore.ClientError:
            return

    def wait(
        self,
        handle: JobHandle,
        timeout: float | None = None,
        poll: float | None = None,
        *,
        raise_on_failure: bool = True,
    ) -> JobStatus:
        """Poll the job (streaming its CloudWatch logs when ``logs``) until it ends.

        Raises:
            TrainingJobFailedError: the job failed or was stopped (SageMaker's failure
                reason in the message).
            TrainingJobTimeoutError: ``timeout`` passed first.
        """
        interval = self.default_poll_s if poll is None else poll
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(handle)
            if self.logs:
                self._stream_logs(handle)
            if status.done:
                return self._finish(handle, status, raise_on_failure)
            if deadline is not None and time.monotonic() >= deadline:
                raise TrainingJobTimeoutError(
                    f"SageMaker training job '{handle.name}' did not finish within "
                    f"{timeout:g} s (last status: {status.describe()})",
                    status=status,
                )
            time.sleep(
                interval
                if deadline is None
                else max(0.0, min(interval, deadline - time.monotonic()))
            )

    def stop(self, handle: JobHandle) -> None:
        """Ask SageMaker to stop the job."""
        self.session.client("sagemaker").stop_training_job(TrainingJobName=handle.name)


__all__ = [
    "GPU_FAMILIES",
    "GPU_INSTANCES",
    "SageMakerLauncher",
    "parse_instance_type",
    "resolve_instance_type",
    "training_job_status",
]
