"""Every generated PyTorchJob and TrainJob validates against the official CRD schemas."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_kit.config import Settings
from mlops_kit.training import TrainConfig
from mlops_kit.training.launchers import TrainingJobSpec
from mlops_kit.training.launchers.crd import validate_object
from mlops_kit.training.launchers.eks import build_pytorchjob, build_trainjob

BASE = {"data_uri": "s3://processed/training/train.parquet", "output_uri": "s3://models/fm/7"}

CASES: dict[str, dict[str, Any]] = {
    "cpu": {},
    "cpu-ddp": {"procs_per_node": 4, "cpu": "4500m", "memory": "12Gi"},
    "gpu": {"gpus_per_node": 1, "checkpoint_uri": "s3://models/fm/7/ckpt"},
    "multi-node-gpu": {
        "nodes": 4,
        "gpus_per_node": 8,
        "cpu": "90",
        "memory": "900Gi",
        "max_runtime_s": 7200,
        "max_retries": 3,
        "config": TrainConfig(epochs=50, batch_size=4096, optimizer={"lr": 1e-3}),
    },
    "env-from-secrets": {
        "env": {"MLFLOW_TRACKING_URI": "http://mlflow.data-pipeline:5000"},
        "env_from_secrets": {"mlflow-auth": ["MLFLOW_TRACKING_TOKEN"], "wandb": ["WANDB_API_KEY"]},
        "labels": {"team": "ml", "example.com/cost-center": "c-42"},
    },
}


def spec(case: str) -> TrainingJobSpec:
    return TrainingJobSpec(name=f"fm-{case}", **BASE, **CASES[case])


def pod_of_pytorchjob(obj: dict[str, Any], replica: str = "Master") -> dict[str, Any]:
    return obj["spec"]["pytorchReplicaSpecs"][replica]["template"]["spec"]


def pod_patch_of_trainjob(obj: dict[str, Any]) -> dict[str, Any]:
    patch = obj["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]
    (job,) = patch["replicatedJobs"]
    assert job["name"] == "node"
    return job["template"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("kind", ["PyTorchJob", "TrainJob"])
def test_generated_objects_match_the_crd(
    case: str, kind: str, crds: dict[str, Any], settings: Settings
) -> None:
    build = build_pytorchjob if kind == "PyTorchJob" else build_trainjob
    obj = build(spec(case), settings)
    assert validate_object(obj, crds[kind]) == []
    assert obj["metadata"]["namespace"] == "data-pipeline"


def test_crd_rules_are_all_understood(crds: dict[str, Any]) -> None:
    for crd in crds.values():
        assert crd.unsupported_rules == (), crd.kind


def test_gpu_pytorchjob_placement_and_limits(settings: Settings) -> None:
    obj = build_pytorchjob(spec("multi-node-gpu"), settings)
    assert obj["spec"]["nprocPerNode"] == "8"
    replicas = obj["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] == 3
    for name in ("Master", "Worker"):
        pod = pod_of_pytorchjob(obj, name)
        assert pod["serviceAccountName"] == "training"
        assert pod["nodeSelector"] == {"mlops-kit/accelerator": "nvidia-gpu"}
        assert pod["tolerations"] == [
            {
                "key": "nvidia.com/gpu",
                "operator": "Equal",
                "value": "present",
                "effect": "NoSchedule",
            }
        ]
        (container,) = pod["containers"]
        assert container["name"] == "pytorch"
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert container["resources"]["requests"]["nvidia.com/gpu"] == "8"
        assert container["command"][:4] == ["torchrun", "-m", "mlops_kit.training", "train"]
    assert obj["spec"]["runPolicy"]["activeDeadlineSeconds"] == 7200
    assert obj["spec"]["runPolicy"]["backoffLimit"] == 3


def test_cpu_jobs_stay_off_the_gpu_nodes(settings: Settings) -> None:
    pod = pod_of_pytorchjob(build_pytorchjob(spec("cpu"), settings))
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["requests"]
    assert "Worker" not in build_pytorchjob(spec("cpu"), settings)["spec"]["pytorchReplicaSpecs"]


def test_trainjob_fields(settings: Settings) -> None:
    obj = build_trainjob(spec("multi-node-gpu"), settings)
    trainer = obj["spec"]["trainer"]
    assert obj["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert trainer["numNodes"] == 4 and trainer["numProcPerNode"] == 8
    assert trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "8"
    assert "--data" in trainer["command"] and "s3://models/fm/7" in trainer["command"]
    pod = pod_patch_of_trainjob(obj)
    assert pod["serviceAccountName"] == "training"
    assert pod["nodeSelector"] == {"mlops-kit/accelerator": "nvidia-gpu"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_env_from_secrets_and_uris(settings: Settings) -> None:
    for obj, env, command in (
        (
            o := build_pytorchjob(spec("env-from-secrets"), settings),
            pod_of_pytorchjob(o)["containers"][0]["env"],
            pod_of_pytorchjob(o)["containers"][0]["command"],
        ),
        (
            t := build_trainjob(spec("env-from-secrets"), settings),
            t["spec"]["trainer"]["env"],
            t["spec"]["trainer"]["command"],
        ),
    ):
        by_name = {e["name"]: e for e in env}
        assert by_name["MLFLOW_TRACKING_TOKEN"]["valueFrom"] == {
            "secretKeyRef": {"name": "mlflow-auth", "key": "MLFLOW_TRACKING_TOKEN"}
        }
        assert by_name["WANDB_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "wandb"
        assert by_name["MLFLOW_TRACKING_URI"]["value"].startswith("http://mlflow")
        assert by_name["MLOPS_KIT_AWS__REGION"]["value"] == settings.aws.region
        assert command[command.index("--data") + 1] == BASE["data_uri"]
        assert obj["metadata"]["labels"]["example.com/cost-center"] == "c-42"
    gpu = build_trainjob(spec("gpu"), settings)["spec"]["trainer"]["command"]
    assert "checkpoint_uri=s3://models/fm/7/ckpt" in gpu


def test_validator_is_strict_about_unknown_fields_and_cel(
    crds: dict[str, Any], settings: Settings
) -> None:
    obj = build_trainjob(spec("gpu"), settings)
    obj["spec"]["podTemplateOverrides"] = [{"targetJobs": [{"name": "node"}]}]
    obj["spec"]["trainer"]["numProcPerNode"] = 0
    obj["metadata"]["name"] = "9-starts-with-digit"
    errors = validate_object(obj, crds["TrainJob"])
    assert any("'podTemplateOverrides' was unexpected" in e for e in errors)
    assert any("numProcPerNode must be greater than or equal to 1" in e for e in errors)
    assert any("RFC 1035" in e for e in errors)
    pj = build_pytorchjob(spec("cpu"), settings)
    pod_of_pytorchjob(pj)["containers"][0]["resources"]["limits"]["memory"] = "8 GB"
    pj["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = "1"
    errors = validate_object(pj, crds["PyTorchJob"])
    assert any("replicas: '1' is not of type 'integer'" in e for e in errors)
    assert any("limits.memory" in e for e in errors)
