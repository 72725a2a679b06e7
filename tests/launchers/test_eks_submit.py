"""Submission through the kubernetes client to an API-server stand-in that validates like one.

The stand-in (``conftest.ApiServerStandIn``) checks requests with the independent validator
of ``independent.py``, not with the project's, so a 422 here comes from the CRD itself.
"""

from __future__ import annotations

from typing import Any

import pytest

from mlops_kit.config import Settings
from mlops_kit.errors import ConfigError
from mlops_kit.training.launchers import (
    JobHandle,
    JobPhase,
    LaunchError,
    TrainingJobFailedError,
    TrainingJobSpec,
    TrainingJobTimeoutError,
    launcher_for,
)
from mlops_kit.training.launchers.eks import EksLauncher
from tests.launchers.conftest import PYTORCHJOB_CRD, TRAINJOB_CRD, ApiServerStandIn, condition

pytest.importorskip("kubernetes")

BASE = {"data_uri": "s3://processed/train.parquet", "output_uri": "s3://models/fm/9"}
PLURAL = {"PyTorchJob": "pytorchjobs", "TrainJob": "trainjobs"}


def launcher(api_server: ApiServerStandIn, settings: Settings, kind: str, **kw: Any) -> EksLauncher:
    eks = launcher_for("eks", settings, kind=kind, api_client=api_server.api_client(), **kw)
    assert isinstance(eks, EksLauncher)
    return eks


def running(kind: str) -> dict[str, Any]:
    if kind == "PyTorchJob":
        return {
            "startTime": "2026-01-01T00:00:00Z",
            "conditions": [
                condition("Created", "PyTorchJobCreated"),
                condition("Running", "PyTorchJobRunning", "PyTorchJob fm is running."),
            ],
        }
    return {
        "conditions": [],
        "jobsStatus": [
            {"name": "node", "active": 2, "ready": 2, "succeeded": 0, "failed": 0, "suspended": 0}
        ],
    }


def succeeded(kind: str) -> dict[str, Any]:
    if kind == "PyTorchJob":
        return {
            "startTime": "2026-01-01T00:00:00Z",
            "completionTime": "2026-01-01T00:20:00Z",
            "conditions": [
                condition("Created", "PyTorchJobCreated"),
                condition("Running", "PyTorchJobRunning", status="False"),
                condition(
                    "Succeeded", "PyTorchJobSucceeded", "PyTorchJob fm successfully completed."
                ),
            ],
        }
    return {"conditions": [condition("Complete", "JobsCompleted", "jobs completed")]}


def failed(kind: str) -> dict[str, Any]:
    message = "pod fm-master-0 exited with code 2: error [CONFIG_INVALID]: epochs must be >= 1"
    if kind == "PyTorchJob":
        return {
            "conditions": [
                condition("Created", "PyTorchJobCreated"),
                condition("Failed", "PyTorchJobFailed", message),
            ]
        }
    return {"conditions": [condition("Failed", "JobsFailed", message)]}


@pytest.mark.parametrize("kind", ["PyTorchJob", "TrainJob"])
def test_submit_and_wait_until_succeeded(
    kind: str, api_server: ApiServerStandIn, settings: Settings
) -> None:
    eks = launcher(api_server, settings, kind)
    handle = eks.submit(TrainingJobSpec(name="fm-ok", gpus_per_node=1, **BASE))
    assert (handle.backend, handle.kind, handle.namespace) == ("eks", kind, "data-pipeline")
    assert handle.uid
    assert eks.status(handle).phase is JobPhase.PENDING
    api_server.script(PLURAL[kind], "fm-ok", [running(kind), running(kind), succeeded(kind)])
    assert eks.status(handle).phase is JobPhase.RUNNING
    status = eks.wait(handle, timeout=10, poll=0.01)
    assert status.phase is JobPhase.SUCCEEDED and status.end_time is not None
    stored = api_server.objects[(PLURAL[kind], "data-pipeline", "fm-ok")]
    assert stored["kind"] == kind


@pytest.mark.parametrize("kind", ["PyTorchJob", "TrainJob"])
def test_failed_job_surfaces_its_reason(
    kind: str, api_server: ApiServerStandIn, settings: Settings
) -> None:
    eks = launcher(api_server, settings, kind)
    handle = eks.submit(TrainingJobSpec(name="fm-bad", **BASE))
    api_server.script(PLURAL[kind], "fm-bad", [running(kind), failed(kind)])
    with pytest.raises(
        TrainingJobFailedError, match=r"failed \((PyTorchJobFailed|JobsFailed)\)"
    ) as info:
        eks.wait(handle, timeout=10, poll=0.01)
    assert "error [CONFIG_INVALID]: epochs must be >= 1" in str(info.value)
    assert info.value.code == "TRAINING_JOB_FAILED"
    status = eks.wait(handle, timeout=10, poll=0.01, raise_on_failure=False)
    assert status.phase is JobPhase.FAILED and "exited with code 2" in (status.message or "")


def test_duplicate_and_server_side_rejections(
    api_server: ApiServerStandIn, settings: Settings
) -> None:
    eks = launcher(api_server, settings, "PyTorchJob")
    spec = TrainingJobSpec(name="fm-dup", **BASE)
    eks.submit(spec)
    with pytest.raises(LaunchError, match=r"HTTP 409: .*already exists.*pick another name"):
        eks.submit(spec)

    def break_it(obj: dict[str, Any]) -> None:
        obj["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = "one"

    unchecked = launcher(api_server, settings, "PyTorchJob", customize=break_it)
    with pytest.raises(LaunchError, match=r"HTTP 422: .*replicas: 'one' is not of type 'integer'"):
        unchecked.submit(TrainingJobSpec(name="fm-invalid", **BASE))
    with pytest.raises(LaunchError, match="HTTP 404"):
        eks.status(JobHandle("eks", "nope", "PyTorchJob", "data-pipeline"))


def test_the_stand_in_rejects_what_the_api_server_rejects(
    api_server: ApiServerStandIn, settings: Settings
) -> None:
    def duplicate_env(obj: dict[str, Any]) -> None:
        obj["spec"]["trainer"]["env"].append({"name": "PYTHONUNBUFFERED", "value": "0"})

    with pytest.raises(
        LaunchError,
        match=r'HTTP 422: TrainJob.trainer.kubeflow.org "fm-env" is invalid: '
        r'spec.trainer.env\[2\]: Duplicate value: \{"name": "PYTHONUNBUFFERED"\}',
    ):
        launcher(api_server, settings, "TrainJob", customize=duplicate_env).submit(
            TrainingJobSpec(name="fm-env", **BASE)
        )

    def unknown_field(obj: dict[str, Any]) -> None:
        obj["spec"]["trainer"]["podSpecOverrides"] = []

    with pytest.raises(LaunchError, match=r"HTTP 422: .*'podSpecOverrides' was unexpected"):
        launcher(api_server, settings, "TrainJob", customize=unknown_field).submit(
            TrainingJobSpec(name="fm-unknown", **BASE)
        )

    def bad_label(obj: dict[str, Any]) -> None:
        obj["metadata"]["labels"]["team"] = "ml platform"

    with pytest.raises(LaunchError, match=r"HTTP 422: .*metadata.labels.team: Invalid value"):
        launcher(api_server, settings, "PyTorchJob", customize=bad_label).submit(
            TrainingJobSpec(name="fm-label", **BASE)
        )

    def other_namespace(obj: dict[str, Any]) -> None:
        obj["metadata"]["namespace"] = "default"

    from kubernetes import client

    api = client.CustomObjectsApi(api_server.api_client())
    body = launcher(api_server, settings, "PyTorchJob", customize=other_namespace).build(
        TrainingJobSpec(name="fm-ns", **BASE)
    )
    with pytest.raises(client.ApiException) as info:
        api.create_namespaced_custom_object(
            "kubeflow.org", "v1", "data-pipeline", "pytorchjobs", body
        )
    assert info.value.status == 422
    assert "metadata.namespace: does not match the request namespace" in info.value.body
    with pytest.raises(client.ApiException) as info:
        api.create_namespaced_custom_object("ray.io", "v1", "data-pipeline", "rayservices", body)
    assert info.value.status == 404
    assert api_server.objects == {}


def test_invalid_objects_are_rejected_before_any_request(
    api_server: ApiServerStandIn, settings: Settings, home: object
) -> None:
    from mlops_kit.config import load_settings

    def add_unknown_field(obj: dict[str, Any]) -> None:
        obj["spec"]["trainer"]["podSpecOverrides"] = []

    checked = launcher(
        api_server,
        settings,
        "TrainJob",
        crds=[PYTORCHJOB_CRD, TRAINJOB_CRD],
        customize=add_unknown_field,
    )
    with pytest.raises(ConfigError, match="'podSpecOverrides' was unexpected"):
        checked.submit(TrainingJobSpec(name="fm-strict", **BASE))
    no_image = launcher(api_server, load_settings(), "PyTorchJob")
    with pytest.raises(ConfigError, match="image:"):
        no_image.submit(TrainingJobSpec(name="fm-noimage", **BASE))
    with pytest.raises(ConfigError, match="data_uri:"):
        launcher(api_server, settings, "PyTorchJob").submit(
            TrainingJobSpec(name="fm-local", data_uri="/data/t.parquet", output_uri="s3://m/1")
        )
    assert api_server.requests == []


def test_wait_times_out_with_the_last_status(
    api_server: ApiServerStandIn, settings: Settings
) -> None:
    eks = launcher(api_server, settings, "PyTorchJob")
    handle = eks.submit(TrainingJobSpec(name="fm-slow", **BASE))
    api_server.script("pytorchjobs", "fm-slow", [running("PyTorchJob")])
    with pytest.raises(TrainingJobTimeoutError, match="last status: Running"):
        eks.wait(handle, timeout=0.2, poll=0.05)
