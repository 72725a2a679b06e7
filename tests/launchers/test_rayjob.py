"""The RayJob of ``mlops_kit.platform.rayjob`` against KubeRay's CRD and KubeRay's own rules.

Every generated object is checked by the project's validators (``training.launchers.crd`` on
``../shared/crds/ray.io_rayjobs.yaml``, ``platform.rayjob.kuberay_errors``) and by
independent ones that share no code with mlops_kit: jsonschema on the same CRD and
kubernetes-validate on the pod templates (``independent.py``), and :func:`operator_errors`
below, a transcription of the checks the KubeRay operator v1.7.0 makes before it acts on a
RayJob (``ValidateRayJobMetadata`` and ``ValidateRayJobSpec`` in
``ray-operator/controllers/ray/utils/validation.go``; the submission modes of
``rayjob_controller.go``). The CRD leaves most of a RayJob's rules to the operator: an
object breaking one is accepted by the API server and then marked ``ValidationFailed`` (or,
with an unknown submission mode, never submitted), so those cases are shown accepted by both
CRD validators and refused by both rule checkers.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit import __version__
from mlops_kit.config import Settings, load_settings
from mlops_kit.platform.errors import (
    RayJobConfigError,
    RayJobInvalidError,
    SettingsSecretError,
)
from mlops_kit.platform.rayjob import (
    NAME_MAX,
    build_rayjob,
    check_rayjob,
    default_name,
    job_settings,
    kuberay_errors,
    render_manifest,
)
from tests.conftest import SHARED
from tests.launchers.independent import (
    CrdSchema,
    core_errors,
    kubernetes_version,
    load_crd_schemas,
    metadata_errors,
)

RAYJOB_CRD = SHARED / "crds" / "ray.io_rayjobs.yaml"
PIPELINE_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-kit-pipeline"
ETL_ROLE = "arn:aws:iam::123456789012:role/mlops-dev-etl"
COMMAND = ["mlops-kit", "etl", "run", "--source", "partner's api"]
CLUSTER = "spec.rayClusterSpec"
HEAD = f"{CLUSTER}.headGroupSpec"
WORKER = f"{CLUSTER}.workerGroupSpecs[0]"


def crd_file() -> Path:
    """The RayJob CRD (skips when absent; fails instead in required-services mode)."""
    if not RAYJOB_CRD.is_file():
        pytest.skip(f"the upstream RayJob CRD schema is not at {RAYJOB_CRD} (shared/ beside it)")
    return RAYJOB_CRD


@pytest.fixture(scope="module")
def crd() -> Any:
    from mlops_kit.training.launchers.crd import load_crd

    return load_crd(crd_file())


@pytest.fixture(scope="module")
def independent() -> CrdSchema:
    pytest.importorskip("jsonschema")
    return next(c for c in load_crd_schemas(crd_file()) if c.version == "v1")


def aws_settings(**changes: Any) -> Settings:
    """Settings a RayJob can run with (profile aws, S3, Aurora), ``changes`` applied."""
    values: dict[str, Any] = {
        "profile": "aws",
        "aws": {"region": "eu-west-1", "endpoints": {"s3": "https://s3.eu-west-1.amazonaws.com"}},
        "storage": {"raw_uri": "s3://dev-raw/raw", "processed_uri": "s3://dev-processed/processed"},
        "warehouse": {
            "url": "postgresql+psycopg://mlops@aurora.example:5432/mlops",
            "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:aurora",
        },
        "images": {"pipeline": PIPELINE_IMAGE},
        "cluster": {"service_account_roles": {"data_pipeline": ETL_ROLE}},
        "ray": {"worker_replicas": 3, "worker_cpu": "6", "worker_memory": "24Gi"},
    }
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = values
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return load_settings(**values)


@pytest.fixture
def aws(home: Path) -> Settings:
    return aws_settings()


def pods(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cluster = obj["spec"]["rayClusterSpec"]
    return {
        "head": cluster["headGroupSpec"]["template"]["spec"],
        "worker": cluster["workerGroupSpecs"][0]["template"]["spec"],
        "submitter": obj["spec"]["submitterPodTemplate"]["spec"],
    }


# -- the independent transcription of KubeRay's checks ----------------------------------------

_MODES = {"K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"}


def operator_errors(obj: dict[str, Any]) -> list[str]:
    """What KubeRay v1.7.0 refuses in a RayJob that its CRD accepts, one ``path: why`` each
    (written from validation.go, sharing nothing with mlops_kit)."""
    out = []
    name = (obj.get("metadata") or {}).get("name") or ""
    if len(name) > 53 - 6:  # MaxRayJobNameLength = MaxRayClusterNameLength - 6
        out.append("metadata.name: longer than 47")
    if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name):  # IsDNS1035Label
        out.append("metadata.name: not a DNS-1035 label")
    spec = obj.get("spec") or {}
    mode = spec.get("submissionMode") or "K8sJobMode"
    if mode not in _MODES:
        out.append("spec.submissionMode: unknown")
    if mode != "InteractiveMode" and not str(spec.get("entrypoint") or "").strip():
        out.append("spec.entrypoint: empty")
    shutdown = bool(spec.get("shutdownAfterJobFinishes"))
    if spec.get("suspend") and not shutdown:
        out.append("spec.suspend: without shutdownAfterJobFinishes")
    ttl = spec.get("ttlSecondsAfterFinished") or 0
    if ttl < 0:
        out.append("spec.ttlSecondsAfterFinished: negative")
    if ttl > 0 and not shutdown:
        out.append("spec.ttlSecondsAfterFinished: without shutdownAfterJobFinishes")
    if spec.get("activeDeadlineSeconds") is not None and spec["activeDeadlineSeconds"] <= 0:
        out.append("spec.activeDeadlineSeconds: not positive")
    if spec.get("backoffLimit") is not None and spec["backoffLimit"] < 0:
        out.append("spec.backoffLimit: negative")
    cluster = spec.get("rayClusterSpec")
    if cluster is None:
        if not spec.get("clusterSelector"):
            out.append("spec.rayClusterSpec: neither it nor clusterSelector")
        return out
    named = [(f"{CLUSTER}.headGroupSpec", cluster["headGroupSpec"])]
    named += [
        (f"{CLUSTER}.workerGroupSpecs[{i}]", g)
        for i, g in enumerate(cluster.get("workerGroupSpecs") or [])
    ]
    for where, group in named:
        if len(group["template"]["spec"].get("containers") or []) == 0:
            out.append(f"{where}.template.spec.containers: none")
        start = group.get("rayStartParams") or {}
        if group.get("resources") and {"num-cpus", "num-gpus", "memory", "resources"} & {
            k for k, v in start.items() if v
        }:
            out.append(f"{where}.resources: also in rayStartParams")
    return out


# -- valid objects --------------------------------------------------------------------------


def test_the_rayjob_passes_every_validator(aws: Settings, crd: Any, independent: CrdSchema) -> None:
    from mlops_kit.training.launchers.crd import validate_object

    pytest.importorskip("kubernetes_validate")
    obj = build_rayjob(aws, COMMAND)
    assert validate_object(obj, crd) == []
    assert independent.errors(obj) == []
    assert core_errors(obj) == []
    assert kuberay_errors(obj) == [] and operator_errors(obj) == []
    check_rayjob(obj, RAYJOB_CRD)


def test_the_only_crd_rules_left_unevaluated_are_on_a_field_never_generated(
    aws: Settings, crd: Any
) -> None:
    assert len(crd.unsupported_rules) == 4
    assert all("onSuccess" in r or "jobStatus" in r for r in crd.unsupported_rules)
    assert "deletionStrategy" not in build_rayjob(aws, COMMAND)["spec"]


def test_the_command_runs_on_a_cluster_sized_from_the_settings(home: Path) -> None:
    settings = aws_settings(ray__namespace="etl-jobs", ray__head_cpu="1", ray__head_memory="4Gi")
    obj = build_rayjob(settings, COMMAND, name="etl-nightly")
    assert obj["metadata"]["name"] == "etl-nightly"
    assert obj["metadata"]["namespace"] == "etl-jobs"
    spec = obj["spec"]
    assert shlex.split(spec["entrypoint"]) == COMMAND
    assert spec["entrypoint"] == "mlops-kit etl run --source 'partner'\"'\"'s api'"
    assert spec["submissionMode"] == "K8sJobMode"
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == re.search(
        r"ray\[serve\]==([\d.]+)", (Path(__file__).parents[2] / "pyproject.toml").read_text()
    ).group(1)
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    (workers,) = cluster["workerGroupSpecs"]
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == 3
    sizes = {"head": {"cpu": "1", "memory": "4Gi"}, "worker": {"cpu": "6", "memory": "24Gi"}}
    for role, pod in pods(obj).items():
        (container,) = pod["containers"]
        assert container["image"] == f"{PIPELINE_IMAGE}:{__version__}"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        if role in sizes:
            assert container["resources"] == {"requests": sizes[role], "limits": sizes[role]}
            assert pod["serviceAccountName"] == "etl"
        else:
            assert pod["restartPolicy"] == "Never" and "serviceAccountName" not in pod


def test_the_pods_rebuild_the_settings_with_the_ray_backends(
    aws: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    obj = build_rayjob(aws, COMMAND)
    envs = [
        {e["name"]: e["value"] for e in p["containers"][0]["env"]}
        for p in list(pods(obj).values())[:2]
    ]
    assert envs[0] == envs[1]
    env = envs[0]
    assert env["MLOPS_KIT_PROFILE"] == "aws"
    assert env["MLOPS_KIT_STORAGE__RAW_URI"] == "s3://dev-raw/raw"
    assert env["MLOPS_KIT_AWS__REGION"] == "eu-west-1"
    assert env["MLOPS_KIT_WAREHOUSE__SECRET_ARN"].startswith("arn:aws:secretsmanager:")
    assert (env["MLOPS_KIT_ETL__BACKEND"], env["MLOPS_KIT_FEATURES__ENGINE"]) == ("ray", "ray")
    assert env["MLOPS_KIT_RAY__ADDRESS"] == "auto"
    assert "MLOPS_KIT_HOME" not in env and env.pop("PYTHONUNBUFFERED") == "1"
    for key in [k for k in os.environ if k.startswith("MLOPS_KIT_") and k != "MLOPS_KIT_CONFIG"]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    expected = job_settings(aws).model_dump()
    rebuilt = load_settings().model_dump()
    assert rebuilt.pop("home") != expected.pop("home")
    assert rebuilt == expected


def test_a_password_in_a_url_is_never_written(home: Path) -> None:
    settings = aws_settings(warehouse__url="postgresql+psycopg://mlops:s3cret@db:5432/mlops")
    with pytest.raises(SettingsSecretError, match=r"^warehouse\.url: .*password") as err:
        build_rayjob(settings, COMMAND)
    assert (err.value.code, err.value.field) == ("SETTINGS_SECRET_IN_MANIFEST", "warehouse.url")


def test_the_manifest_holds_the_service_account_of_the_irsa_role(aws: Settings) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    text = render_manifest(aws, COMMAND, name="etl-1")
    account, job = yaml.safe_load_all(text)
    assert account["kind"] == "ServiceAccount" and account["metadata"]["name"] == "etl"
    assert account["metadata"]["namespace"] == "data-pipeline"
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ETL_ROLE}
    kubernetes_validate.validate(account, kubernetes_version(), strict=True)
    assert metadata_errors(account["metadata"]) == []
    assert job == build_rayjob(aws, COMMAND, name="etl-1")


def test_without_an_irsa_role_the_pods_keep_the_default_service_account(home: Path) -> None:
    settings = aws_settings(cluster__service_account_roles={})
    text = render_manifest(settings, COMMAND, name="etl-1")
    (job,) = yaml.safe_load_all(text)
    assert all("serviceAccountName" not in pod for pod in pods(job).values())


def test_default_names_are_rayjob_names() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert default_name(["mlops-kit", "etl", "run"], when) == "mlops-kit-etl-run-20260102-030405"
    for command in (
        ["mlops-kit", "features", "materialize", "--since", "2026-01-01"],
        ["/usr/bin/python3", "-m", "mlops_kit.etl"],
        ["9lives", "x" * 80],
        ["--flag-only"],
    ):
        name = default_name(command, when)
        assert len(name) <= NAME_MAX and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name), name
        assert name.endswith("-20260102-030405")


# -- settings and arguments a pod cannot use --------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "kwargs", "field"),
    [
        ({"profile": "local"}, {}, "profile"),
        ({"storage__raw_uri": "/data/raw"}, {}, "storage.raw_uri"),
        ({"storage__models_uri": "file:///models"}, {}, "storage.models_uri"),
        ({"warehouse__url": "duckdb:///tmp/w.duckdb"}, {}, "warehouse.url"),
        ({"ray__worker_memory": "16 GB"}, {}, "ray.worker_memory"),
        ({"ray__head_cpu": "two"}, {}, "ray.head_cpu"),
        ({"ray__namespace": "Data_Pipeline"}, {}, "ray.namespace"),
        ({"images__pipeline": ""}, {}, "images.pipeline"),
        ({"images__pipeline": "ecr repo"}, {}, "images.pipeline"),
        ({}, {"name": "Etl_1"}, "name"),
        ({}, {"name": "etl-" + "x" * 44}, "name"),
        ({}, {"name": "1-etl"}, "name"),
        ({}, {"entrypoint": []}, "entrypoint"),
        ({}, {"entrypoint": "mlops-kit etl run"}, "entrypoint"),
        ({}, {"entrypoint": ["", "etl"]}, "entrypoint"),
    ],
)
def test_what_cannot_run_on_the_cluster_is_refused_naming_the_field(
    home: Path, changes: dict[str, Any], kwargs: dict[str, Any], field: str
) -> None:
    if changes.get("profile") == "local":
        settings = load_settings(images={"pipeline": PIPELINE_IMAGE})
    else:
        settings = aws_settings(**changes)
    entrypoint = kwargs.pop("entrypoint", COMMAND)
    with pytest.raises(RayJobConfigError) as err:
        build_rayjob(settings, entrypoint, **kwargs)
    assert err.value.code == "RAYJOB_CONFIG_INVALID"
    assert err.value.field == field and err.value.message.startswith(f"{field}: ")


# -- negative cases: the CRD (both schema validators) ------------------------------------------


def _head(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["rayClusterSpec"]["headGroupSpec"]


def _worker(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]


def _head_container(obj: dict[str, Any]) -> dict[str, Any]:
    return _head(obj)["template"]["spec"]["containers"][0]


_HEAD_CONTAINER = f"{HEAD}.template.spec.containers[0]"
CRD_NEGATIVES: dict[str, tuple[Any, str, str]] = {
    # name: (edit, path of the error, what the error names)
    "unknown field": (
        lambda o: o["spec"].update(entryPoint="mlops-kit etl run"),
        "spec",
        "'entryPoint' was unexpected",
    ),
    "wrong type": (
        lambda o: _worker(o).update(replicas="3"),
        f"{WORKER}.replicas",
        "'3' is not of type 'integer'",
    ),
    "boolean": (
        lambda o: o["spec"].update(shutdownAfterJobFinishes="true"),
        "spec.shutdownAfterJobFinishes",
        "'true' is not of type 'boolean'",
    ),
    "required worker field": (
        lambda o: _worker(o).pop("minReplicas"),
        WORKER,
        "'minReplicas' is a required property",
    ),
    "required head": (
        lambda o: o["spec"]["rayClusterSpec"].pop("headGroupSpec"),
        CLUSTER,
        "'headGroupSpec' is a required property",
    ),
    "quantity pattern": (
        lambda o: _head_container(o)["resources"]["limits"].update(memory="8 GB"),
        f"{_HEAD_CONTAINER}.resources.limits.memory",
        "'8 GB' does not match",
    ),
    "duplicate env name (list-map)": (
        lambda o: _head_container(o)["env"][1].update(name="PYTHONUNBUFFERED"),
        f"{_HEAD_CONTAINER}.env[1]",
        'Duplicate value: {"name": "PYTHONUNBUFFERED"}',
    ),
    "duplicate port (list-map)": (
        lambda o: _head_container(o)["ports"][1].update(containerPort=6379),
        f"{_HEAD_CONTAINER}.ports[1]",
        'Duplicate value: {"containerPort": 6379, "protocol": "TCP"}',
    ),
}


@pytest.mark.parametrize("case", sorted(CRD_NEGATIVES))
def test_a_field_breaking_the_crd_is_refused_by_both_schema_validators(
    case: str, aws: Settings, crd: Any, independent: CrdSchema
) -> None:
    from mlops_kit.training.launchers.crd import validate_object

    edit, where, named = CRD_NEGATIVES[case]
    obj = build_rayjob(aws, COMMAND)
    edit(obj)
    ours, theirs = validate_object(obj, crd), independent.errors(obj)
    for errors in (ours, theirs):
        assert any(e.startswith(f"{where}:") and named in e for e in errors), errors
    with pytest.raises(RayJobInvalidError, match=re.escape(f"({where})")) as err:
        check_rayjob(obj, RAYJOB_CRD)
    assert err.value.code == "RAYJOB_INVALID" and err.value.errors[: len(ours)] == ours


def test_the_managed_by_cel_rule_is_evaluated_by_the_project_validator(
    aws: Settings, crd: Any
) -> None:
    from mlops_kit.training.launchers.crd import validate_object

    obj = build_rayjob(aws, COMMAND)
    obj["spec"]["managedBy"] = "example.com/controller"
    assert validate_object(obj, crd) == [
        "spec.managedBy: the managedBy field value must be either 'ray.io/kuberay-operator' "
        "or 'kueue.x-k8s.io/multikueue'"
    ]


def test_a_bad_pod_template_is_refused_by_the_core_validator(aws: Settings) -> None:
    pytest.importorskip("kubernetes_validate")
    obj = build_rayjob(aws, COMMAND)
    pods(obj)["submitter"]["containers"][0]["ports"] = [{"containerPort": "8265"}]
    (error,) = core_errors(obj)
    assert error.startswith("spec.submitterPodTemplate (PodTemplate) template.spec.containers[0]")


# -- negative cases: KubeRay's rules (accepted by the CRD, refused by both rule checkers) ----

OPERATOR_NEGATIVES: dict[str, tuple[Any, str]] = {
    # name: (edit, path of the error)
    "submission mode": (lambda o: o["spec"].update(submissionMode="K8sJob"), "spec.submissionMode"),
    "missing entrypoint": (lambda o: o["spec"].pop("entrypoint"), "spec.entrypoint"),
    "blank entrypoint": (lambda o: o["spec"].update(entrypoint="  "), "spec.entrypoint"),
    "ttl without shutdown": (
        lambda o: o["spec"].update(shutdownAfterJobFinishes=False),
        "spec.ttlSecondsAfterFinished",
    ),
    "negative ttl": (
        lambda o: o["spec"].update(ttlSecondsAfterFinished=-1),
        "spec.ttlSecondsAfterFinished",
    ),
    "suspend without shutdown": (
        lambda o: o["spec"].update(
            suspend=True, shutdownAfterJobFinishes=False, ttlSecondsAfterFinished=0
        ),
        "spec.suspend",
    ),
    "deadline": (lambda o: o["spec"].update(activeDeadlineSeconds=0), "spec.activeDeadlineSeconds"),
    "backoff": (lambda o: o["spec"].update(backoffLimit=-1), "spec.backoffLimit"),
    "no cluster": (lambda o: o["spec"].pop("rayClusterSpec"), "spec.rayClusterSpec"),
    "head without container": (
        lambda o: _head(o)["template"]["spec"].update(containers=[]),
        f"{HEAD}.template.spec.containers",
    ),
    "worker without container": (
        lambda o: _worker(o)["template"]["spec"].update(containers=[]),
        f"{WORKER}.template.spec.containers",
    ),
    "resources twice": (lambda o: _head(o).update(resources={"CPU": "2"}), f"{HEAD}.resources"),
    "name length": (lambda o: o["metadata"].update(name="etl-" + "x" * 44), "metadata.name"),
    "name not DNS-1035": (lambda o: o["metadata"].update(name="etl.v2"), "metadata.name"),
}


@pytest.mark.parametrize("case", sorted(OPERATOR_NEGATIVES))
def test_a_field_breaking_a_kuberay_rule_is_refused_by_both_rule_checkers(
    case: str, aws: Settings, crd: Any, independent: CrdSchema
) -> None:
    from mlops_kit.training.launchers.crd import validate_object

    edit, where = OPERATOR_NEGATIVES[case]
    obj = build_rayjob(aws, COMMAND)
    edit(obj)
    assert validate_object(obj, crd) == [] and independent.errors(obj) == []
    ours, theirs = kuberay_errors(obj), operator_errors(obj)
    assert len(ours) == 1 and ours[0].startswith(f"{where}: "), ours
    assert theirs and all(e.startswith(f"{where}: ") for e in theirs), theirs
    with pytest.raises(RayJobInvalidError, match=re.escape(f"({where})")) as err:
        check_rayjob(copy.deepcopy(obj))
    assert err.value.errors == ours


def test_check_rayjob_names_a_crd_it_cannot_use(aws: Settings, tmp_path: Path) -> None:
    crd_file()
    obj = build_rayjob(aws, COMMAND)
    with pytest.raises(RayJobConfigError, match=r"^crd: cannot read a CRD") as err:
        check_rayjob(obj, tmp_path / "absent.yaml")
    assert err.value.field == "crd"
    with pytest.raises(RayJobConfigError, match=r"^crd: .* defines RayService\.ray\.io"):
        check_rayjob(obj, RAYJOB_CRD.with_name("ray.io_rayservices.yaml"))
