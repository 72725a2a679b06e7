"""SageMaker training jobs through the SDK v3 ModelTrainer against moto's server over HTTP."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mlops_kit
from mlops_kit.config import Settings, load_settings
from mlops_kit.training import TrainConfig
from mlops_kit.training.launchers import JobPhase, TrainingJobSpec, launcher_for
from mlops_kit.training.launchers.arguments import flatten_config
from mlops_kit.training.launchers.sagemaker import SageMakerLauncher, training_job_status
from tests.launchers.conftest import IMAGE_REPO

pytest.importorskip("sagemaker.train")
pytestmark = [
    pytest.mark.aws,
    # raised by the SDK itself (model_trainer imports its own deprecated shim)
    pytest.mark.filterwarnings("ignore:sagemaker.train.configs has been moved:DeprecationWarning"),
]


@pytest.fixture
def aws(
    moto_endpoint: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    import boto3

    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    suffix = uuid.uuid4().hex[:8]
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    buckets = {"data": f"processed-{suffix}", "models": f"models-{suffix}"}
    for bucket in buckets.values():
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=buckets["data"], Key="training/train.parquet", Body=b"PAR1")
    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(
        RoleName=f"sagemaker-{suffix}", AssumeRolePolicyDocument=json.dumps(trust)
    )
    settings = load_settings(
        aws={"endpoint_url": moto_endpoint},
        images={"training": IMAGE_REPO},
        cluster={"service_account_roles": {"sagemaker": role["Role"]["Arn"]}},
    )
    yield {
        "settings": settings,
        "s3": s3,
        "buckets": buckets,
        "role": role["Role"]["Arn"],
        "endpoint": moto_endpoint,
    }


def test_training_job_is_created_and_completes(aws: dict[str, Any]) -> None:
    import boto3

    settings: Settings = aws["settings"]
    data, models = aws["buckets"]["data"], aws["buckets"]["models"]
    lines: list[str] = []
    sm = launcher_for("sagemaker", settings, on_log=lines.append)
    assert isinstance(sm, SageMakerLauncher) and sm.role_arn == aws["role"]
    spec = TrainingJobSpec(
        name="fm-sagemaker",
        data_uri=f"s3://{data}/training/",
        output_uri=f"s3://{models}/fm/1",
        checkpoint_uri=f"s3://{models}/fm/1/checkpoints",
        gpus_per_node=4,
        instance_type="ml.g5.12xlarge",
        max_runtime_s=3600,
        config=TrainConfig(epochs=7, optimizer={"lr": 1e-4}, model={"hidden_sizes": [32, 16]}),
        labels={"team": "ml"},
    )
    handle = sm.submit(spec)
    # the SDK appends a timestamp to the base job name
    assert re.fullmatch(r"fm-sagemaker-\d{14}", handle.name), handle.name
    assert (handle.backend, handle.kind, handle.namespace) == ("sagemaker", "TrainingJob", None)
    assert handle.uid == f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{handle.name}"

    status = sm.wait(handle, poll=0.1)
    assert status.phase is JobPhase.SUCCEEDED
    assert (status.reason, status.message) == ("Completed", None)

    client = boto3.client("sagemaker", endpoint_url=aws["endpoint"], region_name="us-east-1")
    desc = client.describe_training_job(TrainingJobName=handle.name)
    assert desc["TrainingJobName"] == handle.name and desc["TrainingJobArn"] == handle.uid
    assert (desc["TrainingJobStatus"], desc["SecondaryStatus"]) == ("Completed", "Completed")
    assert (status.start_time, status.end_time) == (
        desc["TrainingStartTime"],
        desc["TrainingEndTime"],
    )
    assert desc["ResourceConfig"] == {
        "InstanceType": "ml.g5.12xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 50,
    }
    algorithm = desc["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == f"{IMAGE_REPO}:{mlops_kit.__version__}"
    assert algorithm["TrainingInputMode"] == "File"
    assert desc["RoleArn"] == aws["role"]
    channels = {c["ChannelName"]: c for c in desc["InputDataConfig"]}
    assert sorted(channels) == ["sm_drivers", "train"]
    assert channels["train"]["InputMode"] == "File"
    assert channels["train"]["DataSource"]["S3DataSource"] == {
        "S3DataType": "S3Prefix",
        "S3Uri": f"s3://{data}/training/",
        "S3DataDistributionType": "FullyReplicated",
    }
    assert desc["OutputDataConfig"]["S3OutputPath"] == f"s3://{models}/fm/1/sagemaker"
    assert desc["CheckpointConfig"] == {
        "S3Uri": f"s3://{models}/fm/1/checkpoints",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert desc["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600
    hps = desc["HyperParameters"]
    assert hps["epochs"] == "7" and hps["optimizer.lr"] == "0.0001"
    assert hps["model.hidden_sizes"] == "[32, 16]" and hps["model.activation"] == "relu"
    assert hps["optimizer.name"] == "adamw" and hps["batch_size"] == "256"
    assert hps == flatten_config(spec.resolved_config())  # every field, as sent
    tags = client.list_tags(ResourceArn=handle.uid)["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"mlops-kit/job": "fm-sagemaker", "team": "ml"}

    # the command the container runs, as staged by the SDK beside the output
    drivers = channels["sm_drivers"]["DataSource"]["S3DataSource"]["S3Uri"]
    assert drivers == f"s3://{models}/fm/1/sagemaker/fm-sagemaker/{handle.name}/input/sm_drivers"
    prefix = drivers.split("/", 3)[3]
    source = json.loads(
        aws["s3"].get_object(Bucket=models, Key=prefix + "/sourcecode.json")["Body"].read()
    )
    assert source["command"] == (
        "torchrun --standalone --nnodes=1 --nproc_per_node=4 -m mlops_kit.training"
    )
    assert source["args"] == [
        *("train", "--data", "/opt/ml/input/data/train", "--out", f"s3://{models}/fm/1"),
        *("--set", "model.hidden_sizes=[32, 16]", "--set", "optimizer.lr=0.0001"),
        *("--set", "epochs=7", "--set", "checkpoint_uri=/opt/ml/checkpoints"),
    ]
    script = aws["s3"].get_object(Bucket=models, Key=prefix + "/sm_train.sh")["Body"].read()
    command_line = (
        "torchrun --standalone --nnodes=1 --nproc_per_node=4 -m mlops_kit.training train "
        f"--data /opt/ml/input/data/train --out s3://{models}/fm/1 "
        "--set 'model.hidden_sizes=[32, 16]' --set optimizer.lr=0.0001 --set epochs=7 "
        "--set checkpoint_uri=/opt/ml/checkpoints"
    )
    assert command_line in script.decode().splitlines()


def test_submission_errors_and_status_mapping(aws: dict[str, Any]) -> None:
    from mlops_kit.training.launchers import JobHandle, LaunchError

    sm = launcher_for("sagemaker", aws["settings"], logs=False)
    with pytest.raises(LaunchError, match="reading SageMaker training job 'absent'"):
        sm.status(JobHandle("sagemaker", "absent", "TrainingJob"))
    failed = training_job_status(
        {
            "TrainingJobStatus": "Failed",
            "SecondaryStatus": "Failed",
            "FailureReason": "AlgorithmError: exit 2",
        }
    )
    assert (failed.phase, failed.reason, failed.message) == (
        JobPhase.FAILED,
        "Failed",
        "AlgorithmError: exit 2",
    )
    starting = training_job_status(
        {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting"}
    )
    assert (starting.phase, starting.reason, starting.message) == (
        JobPhase.PENDING,
        "Starting",
        None,
    )
    running = training_job_status(
        {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"}
    )
    assert (running.phase, running.reason) == (JobPhase.RUNNING, "Training")
    stopped = training_job_status({"TrainingJobStatus": "Stopped"})
    assert (stopped.phase, stopped.reason, stopped.message) == (
        JobPhase.FAILED,
        "Stopped",
        "the training job was stopped before it completed",
    )
