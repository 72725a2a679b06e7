"""Submitting and following RayJobs through the kubernetes client, and ``mlops-kit rayjob``.

The API server is the stand-in of ``conftest.py`` serving the RayJob CRD: it validates what
it receives with the independent validator (jsonschema on ``ray.io_rayjobs.yaml``), so a 422
here comes from the CRD itself; the statuses it returns are scripted in the shapes the
KubeRay operator v1.7.0 writes (``jobDeploymentStatus``, ``jobStatus``, ``reason``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlops_kit.config import Settings
from mlops_kit.platform.errors import (
    RayJobExistsError,
    RayJobFailedError,
    RayJobInvalidError,
    RayJobSubmitError,
    RayJobTimeoutError,
)
from mlops_kit.platform.kuberay import settings_env
from mlops_kit.platform.rayjob import build_rayjob
from mlops_kit.platform.rayjob_launcher import RayJobLauncher, rayjob_status
from mlops_kit.training.launchers.base import JobPhase
from tests.launchers.conftest import ApiServerStandIn
from tests.launchers.independent import CrdSchema, load_crd_schemas
from tests.launchers.test_rayjob import COMMAND, RAYJOB_CRD, aws_settings, crd_file

pytest.importorskip("kubernetes")

NS = "data-pipeline"


@pytest.fixture
def aws(home: Path) -> Settings:
    return aws_settings()


@pytest.fixture(scope="module")
def schemas() -> list[CrdSchema]:
    """The served versions of the RayJob CRD as plain JSON Schemas (no mlops_kit code)."""
    pytest.importorskip("jsonschema")
    return load_crd_schemas(crd_file())


@pytest.fixture
def api_server(schemas: list[CrdSchema]) -> Iterator[ApiServerStandIn]:
    stand_in = ApiServerStandIn({"RayJob": schemas})
    stand_in.thread.start()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


def launcher(api_server: ApiServerStandIn, settings: Settings, **kw: Any) -> RayJobLauncher:
    return RayJobLauncher(settings, api_client=api_server.api_client(), **kw)


def state(deployment: str, job: str = "", reason: str = "", message: str = "") -> dict[str, Any]:
    """A RayJob status as the operator writes it."""
    out: dict[str, Any] = {"jobDeploymentStatus": deployment, "startTime": "2026-01-01T00:00:00Z"}
    if job:
        out.update(jobStatus=job, jobId=f"rayjob-{job.lower()}", rayClusterName="c-abc12")
        out["dashboardURL"] = "c-abc12-head-svc.data-pipeline.svc.cluster.local:8265"
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    if deployment in ("Complete", "Failed", "ValidationFailed"):
        out["endTime"] = "2026-01-01T00:20:00Z"
    return out


APP_FAILED = "Job entrypoint command failed with exit code 2: error (DATA_QUALITY_FAILED)"


@pytest.mark.parametrize(
    ("status", "phase", "reason"),
    [
        ({}, JobPhase.PENDING, "New"),
        (state("Initializing"), JobPhase.PENDING, "Initializing"),
        (state("Running", "PENDING"), JobPhase.PENDING, "PENDING"),
        (state("Running", "RUNNING"), JobPhase.RUNNING, None),
        (state("Running", "SUCCEEDED"), JobPhase.RUNNING, None),
        (state("Retrying"), JobPhase.PENDING, "Retrying"),
        (state("Suspended"), JobPhase.PENDING, "Suspended"),
        (state("Complete", "SUCCEEDED"), JobPhase.SUCCEEDED, None),
        (state("Complete", "STOPPED"), JobPhase.FAILED, "STOPPED"),
        (state("Failed", "FAILED", "AppFailed", APP_FAILED), JobPhase.FAILED, "AppFailed"),
        (state("Failed", "", "DeadlineExceeded"), JobPhase.FAILED, "DeadlineExceeded"),
        (state("ValidationFailed", "", "ValidationFailed"), JobPhase.FAILED, "ValidationFailed"),
    ],
)
def test_statuses_map_onto_the_launchers_phases(
    status: dict[str, Any],
    phase: JobPhase,
    reason: str | None,
    aws: Settings,
    schemas: list[CrdSchema],
) -> None:
    obj = build_rayjob(aws, COMMAND)
    obj["status"] = status
    schema = next(c for c in schemas if c.version == "v1")
    assert schema.errors(obj) == []
    got = rayjob_status(obj)
    assert (got.phase, got.reason) == (phase, reason)
    assert (got.end_time is not None) == ("endTime" in status)


def test_submit_and_wait_until_it_succeeds(api_server: ApiServerStandIn, aws: Settings) -> None:
    ray = launcher(api_server, aws, crd=RAYJOB_CRD)
    handle = ray.submit(COMMAND, name="etl-ok")
    assert (handle.backend, handle.kind, handle.namespace, handle.name) == (
        "eks",
        "RayJob",
        NS,
        "etl-ok",
    )
    assert handle.uid
    stored = api_server.objects[("rayjobs", NS, "etl-ok")]
    assert stored["spec"] == build_rayjob(aws, COMMAND, name="etl-ok")["spec"]
    assert ray.status(handle).phase is JobPhase.PENDING
    api_server.script(
        "rayjobs",
        "etl-ok",
        [state("Initializing"), state("Running", "RUNNING"), state("Complete", "SUCCEEDED")],
    )
    seen: list[JobPhase] = []
    status = ray.wait(handle, timeout=10, poll=0.01, on_status=lambda s: seen.append(s.phase))
    assert status.phase is JobPhase.SUCCEEDED and status.end_time is not None
    assert seen == [JobPhase.PENDING, JobPhase.RUNNING, JobPhase.SUCCEEDED]
    assert ray.logs_command(handle) == f"kubectl logs -n {NS} job/etl-ok --follow"


def test_a_failed_job_surfaces_the_operators_reason(
    api_server: ApiServerStandIn, aws: Settings
) -> None:
    ray = launcher(api_server, aws)
    handle = ray.submit(COMMAND, name="etl-bad")
    api_server.script(
        "rayjobs",
        "etl-bad",
        [state("Running", "RUNNING"), state("Failed", "FAILED", "AppFailed", APP_FAILED)],
    )
    with pytest.raises(RayJobFailedError, match=r"failed: Failed \(AppFailed\): Job ent") as err:
        ray.wait(handle, timeout=10, poll=0.01)
    assert err.value.code == "RAYJOB_FAILED"
    assert "kubectl logs -n data-pipeline job/etl-bad" in err.value.message
    status = ray.wait(handle, timeout=10, poll=0.01, raise_on_failure=False)
    assert status.phase is JobPhase.FAILED and "DATA_QUALITY_FAILED" in (status.message or "")


def test_wait_times_out_with_the_last_status(api_server: ApiServerStandIn, aws: Settings) -> None:
    ray = launcher(api_server, aws)
    handle = ray.submit(COMMAND, name="etl-slow")
    api_server.script("rayjobs", "etl-slow", [state("Running", "RUNNING")])
    with pytest.raises(RayJobTimeoutError, match="last status: Running") as err:
        ray.wait(handle, timeout=0.2, poll=0.05)
    assert err.value.code == "RAYJOB_TIMEOUT"


def test_a_second_submit_of_the_same_job_follows_it_another_spec_is_refused(
    api_server: ApiServerStandIn, aws: Settings, home: Path
) -> None:
    ray = launcher(api_server, aws)
    first = ray.submit(COMMAND, name="etl-1")
    again = ray.submit(COMMAND, name="etl-1")
    assert again == first and len(api_server.objects) == 1
    bigger = launcher(api_server, aws_settings(ray__worker_replicas=8))
    with pytest.raises(RayJobExistsError, match=r"kubectl delete rayjob -n data-pipeline etl-1"):
        bigger.submit(COMMAND, name="etl-1")
    stored = api_server.objects[("rayjobs", NS, "etl-1")]
    assert stored["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] == 3


def test_what_the_api_server_refuses_is_reported_with_its_reason(
    api_server: ApiServerStandIn, aws: Settings
) -> None:
    def break_crd(obj: dict[str, Any]) -> None:
        obj["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "two"

    with pytest.raises(
        RayJobSubmitError, match=r"HTTP 422: .*replicas: 'two' is not of type"
    ) as err:
        launcher(api_server, aws, customize=break_crd).submit(COMMAND, name="etl-422")
    assert (err.value.code, err.value.http_status) == ("RAYJOB_SUBMIT_FAILED", 422)
    with pytest.raises(RayJobSubmitError, match="HTTP 404") as err:
        launcher(api_server, aws).status(launcher(api_server, aws).handle("nope"))
    assert err.value.http_status == 404
    assert api_server.objects == {}


def test_invalid_objects_are_refused_before_any_request(
    api_server: ApiServerStandIn, aws: Settings
) -> None:
    def break_crd(obj: dict[str, Any]) -> None:
        obj["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "two"

    def break_kuberay(obj: dict[str, Any]) -> None:
        obj["spec"]["submissionMode"] = "K8sJob"

    with pytest.raises(RayJobInvalidError, match=r"replicas: 'two'"):
        launcher(api_server, aws, crd=RAYJOB_CRD, customize=break_crd).submit(COMMAND)
    with pytest.raises(RayJobInvalidError, match=r"spec\.submissionMode: 'K8sJob'"):
        launcher(api_server, aws, customize=break_kuberay).submit(COMMAND)
    assert api_server.requests == []


def test_missing_credentials_are_named(aws: Settings, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    ray = RayJobLauncher(aws, kubeconfig=tmp_path / "absent")
    with pytest.raises(RayJobSubmitError, match=r"no Kubernetes credentials.*update-kubeconfig"):
        ray.submit(COMMAND)


# -- the command line -------------------------------------------------------------------------


@pytest.fixture
def cli_env(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in settings_env(aws).items():
        monkeypatch.setenv(key, value)


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def test_cli_manifest_prints_the_objects(cli_env: None, aws: Settings) -> None:
    from mlops_kit.cli.main import app

    result = CliRunner().invoke(
        app, ["rayjob", "manifest", "--name", "etl-2", "--crd", str(crd_file()), "--", "etl", "run"]
    )
    assert result.exit_code == 0, result.output
    account, job = yaml.safe_load_all(result.stdout)
    assert account["kind"] == "ServiceAccount"
    assert job == build_rayjob(aws, ["mlops-kit", "etl", "run"], name="etl-2")
    same = CliRunner().invoke(
        app, ["rayjob", "manifest", "--name", "etl-2", "--", "mlops-kit", "etl", "run"]
    )
    assert same.stdout == result.stdout


def test_cli_submit_follows_the_job_and_status_reads_it(
    cli_env: None, api_server: ApiServerStandIn, tmp_path: Path
) -> None:
    from mlops_kit.cli.main import app

    config = str(_kubeconfig(tmp_path / "kubeconfig", api_server.url))
    api_server.script(
        "rayjobs", "etl-3", [state("Running", "RUNNING"), state("Complete", "SUCCEEDED")]
    )
    result = CliRunner().invoke(
        app,
        [
            *("rayjob", "submit", "--name", "etl-3", "--wait", "--poll", "0.01"),
            *("--timeout", "10", "--kubeconfig", config, "--", "etl", "run"),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"submitted RayJob {NS}/etl-3",
        f"logs: kubectl logs -n {NS} job/etl-3 --follow",
    ]
    assert lines[2:] == ["etl-3: Running", "etl-3: Succeeded"]
    stored = api_server.objects[("rayjobs", NS, "etl-3")]
    assert stored["spec"]["entrypoint"] == "mlops-kit etl run"
    status = CliRunner().invoke(app, ["rayjob", "status", "etl-3", "--kubeconfig", config])
    assert status.exit_code == 0, status.output
    assert "etl-3: Succeeded" in status.stdout and "dashboard (in the cluster)" in status.stdout
    api_server.script("rayjobs", "etl-3", [state("Failed", "FAILED", "AppFailed", APP_FAILED)])
    failed = CliRunner().invoke(app, ["rayjob", "status", "etl-3", "--kubeconfig", config])
    assert failed.exit_code == 2 and "Failed (AppFailed)" in failed.stdout
