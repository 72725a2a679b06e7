"""The deployable configuration of the inference service (mlops_kit.serving.deploy, serving/).

The Serve config is checked with Ray's own schema; the RayService, ServiceMonitor and
PrometheusRule against the upstream CRDs of ``../shared/crds`` with the project's validator
and with the independent one of ``tests/launchers/independent.py`` (a missing CRD skips,
and fails in required-services mode, see tests/conftest.py); the committed ``serving/``
files must equal a regeneration; the dashboard and the alerts may only query the metrics
the service exports.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit.config import Settings, load_settings
from mlops_kit.errors import ConfigError
from mlops_kit.serving import deploy
from mlops_kit.serving.errors import RayServiceInvalidError, ServingConfigError
from tests.conftest import REPO, SHARED
from tests.launchers.independent import (
    CrdSchema,
    core_errors,
    crd_schema_for,
    kubernetes_version,
    load_crd_schemas,
)

SERVING = REPO / "serving"
EXAMPLE = SERVING / "example_settings.yaml"
CRD_DIR = SHARED / "crds"
CRDS = {
    "RayService": CRD_DIR / "ray.io_rayservices.yaml",
    "ServiceMonitor": CRD_DIR / "monitoring.coreos.com_servicemonitors.yaml",
    "PrometheusRule": CRD_DIR / "monitoring.coreos.com_prometheusrules.yaml",
}

COUNTERS = {"mlops_kit_serving_requests_total": {"model", "version", "role", "outcome"}}
HISTOGRAMS = {
    "mlops_kit_serving_request_latency_seconds": {"model", "version", "role"},
    "mlops_kit_serving_batch_size": {"model", "version"},
    "mlops_kit_serving_prediction": {"model", "version", "role"},
}
GAUGES = {
    "mlops_kit_serving_feature_psi": {"model", "version", "feature"},
    "mlops_kit_serving_canary_weight": {"model"},
    "mlops_kit_serving_rollout_step": {"model"},
}
METRICS = {**COUNTERS, **HISTOGRAMS, **GAUGES}
PANELS = {
    "Request rate by version and role",
    "Error rate by version and role",
    "Latency p50 and p99 by version and role",
    "Batch size",
    "Prediction distribution by version and role",
    "Prediction histogram",
    "Feature PSI",
    "Canary weight",
    "Rollout step",
}


def _crd_file(kind: str) -> Path:
    path = CRDS[kind]
    if not path.is_file():
        pytest.skip(
            f"the upstream {kind} CRD schema is not at {path} (shared/ beside the checkout)"
        )
    return path


@pytest.fixture(scope="module")
def crds() -> dict[str, Any]:
    """The three CRDs loaded by the project's validator."""
    from mlops_kit.training.launchers.crd import load_crd

    return {kind: load_crd(_crd_file(kind)) for kind in CRDS}


@pytest.fixture(scope="module")
def independent() -> dict[str, list[CrdSchema]]:
    """The same CRDs as plain JSON Schemas (no mlops_kit code)."""
    pytest.importorskip("jsonschema")
    return {kind: load_crd_schemas(_crd_file(kind)) for kind in CRDS}


@pytest.fixture
def example() -> Settings:
    return deploy.settings_from_file(EXAMPLE)


def _both(
    obj: dict[str, Any], crds: dict[str, Any], independent: dict[str, list[CrdSchema]]
) -> tuple[list[str], list[str]]:
    from mlops_kit.training.launchers.crd import validate_object

    ours = validate_object(obj, crds[obj["kind"]])
    theirs = crd_schema_for(independent[obj["kind"]], obj).errors(obj)
    return ours, theirs


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    """The example settings with ``section__key`` changed (None removes it)."""
    values = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = values
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return deploy.settings_from_file(path)


# -- the Serve config --------------------------------------------------------------------


def test_serve_config_validates_with_rays_schema(example: Settings) -> None:
    schema = pytest.importorskip("ray.serve.schema")
    config = deploy.serve_config(example, stable_version="3", canary_version="4", canary_weight=0.1)
    parsed = schema.ServeDeploySchema.model_validate(config)
    (app,) = parsed.applications
    assert app.import_path == "mlops_kit.serving.ray_app:build"
    assert app.route_prefix == "/"
    # versions and weight live in user_config only: changing them reconfigures the
    # running replicas, where a change of args would replace them
    assert app.args == {"alias": "champion", "model": None, "config": None}
    by_name = {d.name: d for d in app.deployments}
    assert list(by_name) == ["ingress", "stable", "canary"]
    assert by_name["ingress"].user_config == {
        "stable_version": "3",
        "canary_version": "4",
        "canary_weight": 0.1,
        "step": 0,
    }
    assert by_name["stable"].user_config == {"version": "3"}
    assert by_name["canary"].user_config == {"version": "4", "fault_rate": 0.0}
    for d in (by_name["stable"], by_name["canary"]):
        assert d.num_replicas == example.serving.replicas == 2
        assert d.max_ongoing_requests == example.serving.max_ongoing_requests
    assert {"num_replicas", "max_ongoing_requests"}.isdisjoint(
        by_name["ingress"].model_fields_set
    ), "the application sizes its ingress"
    assert parsed.http_options.port == example.serving.port


def test_rays_schema_refuses_a_bad_deployment_naming_it(example: Settings) -> None:
    schema = pytest.importorskip("ray.serve.schema")
    from pydantic import ValidationError

    config = deploy.serve_config(example)
    config["applications"][0]["deployments"][1]["num_replicas"] = 0
    with pytest.raises(ValidationError, match=r"applications\.0\.deployments\.1\.num_replicas"):
        schema.ServeDeploySchema.model_validate(config)


def test_the_replicas_rebuild_the_same_settings_from_the_environment(
    example: Settings, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLOPS_KIT_HOME")
    env = deploy.settings_env(example)
    assert env["MLOPS_KIT_PROFILE"] == "aws"
    assert json.loads(env["MLOPS_KIT_CLUSTER__SERVICE_ACCOUNT_ROLES"]) == {
        "inference": "arn:aws:iam::123456789012:role/mlops-kit-prod-inference"
    }
    (app,) = deploy.serve_config(example)["applications"]
    assert app["runtime_env"]["env_vars"] == env
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert load_settings().model_dump() == example.model_dump()


def test_a_password_in_a_url_is_never_written(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, warehouse__url="postgresql+psycopg://mlops:s3cret@db.example:5432/mlops"
    )
    with pytest.raises(ServingConfigError, match=r"^warehouse\.url: .*password") as err:
        deploy.serve_config(settings)
    assert err.value.field == "warehouse.url"
    assert err.value.code == "SERVING_CONFIG_INVALID"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"canary_weight": 1.5}, "canary_weight"),
        ({"canary_weight": -0.1}, "canary_weight"),
        ({"canary_weight": float("nan")}, "canary_weight"),
        ({"canary_weight": True, "canary_version": "4"}, "canary_weight"),
        ({"canary_weight": 0.1}, "canary_weight"),
        ({"stable_version": "3", "canary_version": "3"}, "canary_version"),
        ({"stable_version": "three things"}, "stable_version"),
        ({"canary_version": ""}, "canary_version"),
        ({"stable_version": 3}, "stable_version"),
    ],
)
def test_bad_rollout_arguments_are_refused_naming_them(
    example: Settings, kwargs: dict[str, Any], field: str
) -> None:
    for build in (deploy.serve_config, deploy.ray_service):
        with pytest.raises(ServingConfigError, match=rf"^{field}: ") as err:
            build(example, **kwargs)
        assert err.value.field == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"images__serving": None}, "images.serving"),
        ({"images__serving": "repo with spaces"}, "images.serving"),
        ({"serving__app_name": "Mlops_Kit"}, "serving.app_name"),
        ({"serving__namespace": "x" * 64}, "serving.namespace"),
    ],
)
def test_bad_settings_for_the_rayservice_are_refused_naming_them(
    tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ServingConfigError, match=rf"^{re.escape(field)}: ") as err:
        deploy.ray_service(_settings(tmp_path, **changes))
    assert err.value.field == field


def test_a_settings_file_is_read_alone_and_its_errors_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_KIT_SERVING__PORT", "9999")
    monkeypatch.setenv("MLOPS_KIT_DATASET", "machine_telemetry")
    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(EXAMPLE))
    settings = deploy.settings_from_file(EXAMPLE)
    assert (settings.serving.port, settings.dataset) == (8000, "iot_readings")
    bad = tmp_path / "bad.yaml"
    bad.write_text("serving: {replicas: 0, replica: 2}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        deploy.settings_from_file(bad)
    assert "serving.replicas" in err.value.message and "serving.replica:" in err.value.message
    bad.write_text("- profile: aws\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="needs a mapping of settings"):
        deploy.settings_from_file(bad)
    with pytest.raises(ConfigError, match="cannot read it"):
        deploy.settings_from_file(tmp_path / "absent.yaml")


# -- the RayService ------------------------------------------------------------------------


def test_ray_service_validates_with_both_validators_and_as_pods(
    example: Settings, crds: dict[str, Any], independent: dict[str, list[CrdSchema]]
) -> None:
    pytest.importorskip("kubernetes_validate")
    obj = deploy.ray_service(example, stable_version="3", canary_version="4", canary_weight=0.5)
    deploy.check_ray_service(obj, CRDS["RayService"])
    assert _both(obj, crds, independent) == ([], [])
    assert core_errors(obj) == []

    assert (obj["metadata"]["name"], obj["metadata"]["namespace"]) == ("mlops-kit", "ai-inference")
    spec = obj["spec"]
    assert spec["upgradeStrategy"] == {"type": "NewCluster"}
    schema = pytest.importorskip("ray.serve.schema")
    cluster = spec["rayClusterConfig"]
    assert cluster["rayVersion"] == sys.modules["ray"].__version__
    served = yaml.safe_load(spec["serveConfigV2"])
    config = deploy.serve_config(example, stable_version="3", canary_version="4", canary_weight=0.5)
    assert served == {"applications": config["applications"]}
    schema.ServeDeploySchema.model_validate(served)

    head = cluster["headGroupSpec"]["template"]
    (workers,) = cluster["workerGroupSpecs"]
    assert workers["replicas"] == example.serving.replicas
    for pod in (head, workers["template"]):
        (container,) = pod["spec"]["containers"]
        assert container["image"].endswith("/mlops-kit-prod-serving:" + deploy.__version__)
        assert {"name": "serve", "containerPort": 8000} in container["ports"]
        assert pod["spec"]["serviceAccountName"] == "inference"
        assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"


def test_the_service_account_carries_the_irsa_role_and_is_a_valid_object(
    example: Settings,
) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    account = deploy.service_account(example)
    assert account is not None
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/mlops-kit-prod-inference"
    }
    kubernetes_validate.validate(account, kubernetes_version(), strict=True)


def test_without_an_irsa_role_the_pods_keep_the_default_service_account(tmp_path: Path) -> None:
    settings = _settings(tmp_path, cluster__service_account_roles={})
    assert deploy.service_account(settings) is None
    cluster = deploy.ray_service(settings)["spec"]["rayClusterConfig"]
    for pod in (cluster["headGroupSpec"], *cluster["workerGroupSpecs"]):
        assert "serviceAccountName" not in pod["template"]["spec"]
    text = deploy.render(settings)["rayservice.yaml"]
    assert [d["kind"] for d in yaml.safe_load_all(text)] == ["RayService"]


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    keys: list[Any] = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]
    node: Any = obj
    for key in keys[:-1]:
        node = node[key]
    if value is _DROP:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value


_DROP = object()
_HEAD = "spec.rayClusterConfig.headGroupSpec"
_WORKER = "spec.rayClusterConfig.workerGroupSpecs[0]"


@pytest.mark.parametrize(
    ("path", "value", "where", "named"),
    [
        (f"{_HEAD}.template.spec.containers[0].ports[0].containerPort", "6379", None, "'6379'"),
        ("spec.upgradeStrategy.maxSurge", 1, "spec.upgradeStrategy", "'maxSurge'"),
        (f"{_WORKER}.groupName", _DROP, _WORKER, "'groupName'"),
        (f"{_WORKER}.replicas", "two", None, "'two'"),
        ("spec.serveConfigV2", {"applications": []}, None, "'applications'"),
        ("spec.rayClusterConfig.rayVersion", 2.6, None, "2.6"),
    ],
)
def test_a_bad_rayservice_field_is_refused_by_both_validators_naming_it(
    example: Settings,
    crds: dict[str, Any],
    independent: dict[str, list[CrdSchema]],
    path: str,
    value: Any,
    where: str | None,
    named: str,
) -> None:
    obj = deploy.ray_service(example)
    _set(obj, path, value)
    where = where or path
    ours, theirs = _both(obj, crds, independent)
    for errors in (ours, theirs):
        assert any(e.startswith(f"{where}:") and named in e for e in errors), errors
    with pytest.raises(RayServiceInvalidError, match=re.escape(f"({where})")) as err:
        deploy.check_ray_service(obj, CRDS["RayService"])
    assert err.value.code == "SERVING_RAYSERVICE_INVALID"
    assert err.value.errors == ours


def test_a_bad_pod_template_is_refused_by_the_core_validator(example: Settings) -> None:
    pytest.importorskip("kubernetes_validate")
    obj = deploy.ray_service(example)
    _set(obj, f"{_WORKER}.template.spec.containers[0].ports[0].containerPort", "8000")
    (error,) = core_errors(obj)
    assert error.startswith(f"{_WORKER}.template (PodTemplate) template.spec.containers[0].ports")


def test_serve_config_v2_must_hold_applications(example: Settings) -> None:
    _crd_file("RayService")
    obj = deploy.ray_service(example)
    obj["spec"]["serveConfigV2"] = "- not: [a mapping"
    with pytest.raises(RayServiceInvalidError, match=r"spec\.serveConfigV2: needs YAML"):
        deploy.check_ray_service(obj, CRDS["RayService"])


def test_check_ray_service_names_a_missing_or_other_crd(example: Settings, tmp_path: Path) -> None:
    with pytest.raises(ServingConfigError, match=r"^crd_path: cannot read a CRD") as err:
        deploy.check_ray_service(deploy.ray_service(example), tmp_path / "absent.yaml")
    assert err.value.field == "crd_path"
    rayjobs = CRDS["RayService"].with_name("ray.io_rayjobs.yaml")
    with pytest.raises(ServingConfigError) as err:
        deploy.check_ray_service(deploy.ray_service(example), rayjobs)
    assert str(err.value) == (
        f"crd_path: {rayjobs} defines RayJob.ray.io, not RayService.ray.io; give the path of "
        "ray.io_rayservices.yaml from KubeRay's ray-operator/config/crd/bases"
    )


# -- the committed serving/ folder ------------------------------------------------------------


def test_the_committed_serving_files_equal_a_regeneration(
    example: Settings, tmp_path: Path
) -> None:
    written = deploy.write_serving_folder(example, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "rayservice.yaml",
        "serve_config.yaml",
    ]
    for path in written:
        committed = SERVING / path.name
        assert committed.is_file(), f"{committed} is missing: run '{deploy.EXAMPLE_COMMAND}'"
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{committed} differs from a regeneration: run '{deploy.EXAMPLE_COMMAND}' from "
            "the repository root and commit the result"
        )
    assert deploy.stale(example, SERVING) == []
    assert deploy.main(["--settings", str(EXAMPLE), "--out-dir", str(SERVING), "--check"]) == 0
    (tmp_path / "out" / "rayservice.yaml").write_text("# edited\n", encoding="utf-8")
    assert deploy.stale(example, tmp_path / "out") == ["rayservice.yaml"]


def test_the_committed_manifests_validate(
    example: Settings, crds: dict[str, Any], independent: dict[str, list[CrdSchema]]
) -> None:
    pytest.importorskip("kubernetes_validate")
    docs = list(yaml.safe_load_all((SERVING / "rayservice.yaml").read_text(encoding="utf-8")))
    assert [d["kind"] for d in docs] == ["ServiceAccount", "RayService"]
    assert _both(docs[1], crds, independent) == ([], [])
    assert core_errors(docs[1]) == []
    for name in ("servicemonitor.yaml", "prometheusrule.yaml"):
        obj = yaml.safe_load((SERVING / name).read_text(encoding="utf-8"))
        assert _both(obj, crds, independent) == ([], []), name


def test_the_servicemonitor_scrapes_the_serve_service_kuberay_creates(example: Settings) -> None:
    monitor = yaml.safe_load((SERVING / "servicemonitor.yaml").read_text(encoding="utf-8"))
    rule = yaml.safe_load((SERVING / "prometheusrule.yaml").read_text(encoding="utf-8"))
    service = deploy.ray_service(example)
    namespace = service["metadata"]["namespace"]
    assert monitor["metadata"]["namespace"] == rule["metadata"]["namespace"] == namespace
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [namespace]}
    # KubeRay labels the serve Service it creates ray.io/serve: <RayService name>-serve
    labels = monitor["spec"]["selector"]["matchLabels"]
    assert labels["ray.io/serve"] == f"{service['metadata']['name']}-serve"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == deploy.METRICS_PATH
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    ports = {p["name"]: p["containerPort"] for p in head["containers"][0]["ports"]}
    assert ports[endpoint["port"]] == deploy.SERVE_PORT


@pytest.mark.parametrize(
    ("name", "path", "value", "where"),
    [
        ("servicemonitor.yaml", "spec.endpoints[0].port", 8000, None),
        ("servicemonitor.yaml", "spec.endpoints[0].interval", "15 seconds", None),
        ("prometheusrule.yaml", "spec.groups[0].rules[0].for", "5 minutes", None),
        ("prometheusrule.yaml", "spec.groups[0].rules[1].severity", "x", "spec.groups[0].rules[1]"),
    ],
)
def test_a_bad_monitoring_field_is_refused_by_both_validators(
    crds: dict[str, Any],
    independent: dict[str, list[CrdSchema]],
    name: str,
    path: str,
    value: Any,
    where: str | None,
) -> None:
    obj = yaml.safe_load((SERVING / name).read_text(encoding="utf-8"))
    _set(obj, path, value)
    where = where or path
    named = path.rsplit(".", 1)[1] if where != path else repr(value)
    ours, theirs = _both(obj, crds, independent)
    for errors in (ours, theirs):
        assert any(e.startswith(f"{where}:") and named in e for e in errors), errors


# -- the dashboard and the alerts query only the exported metrics ---------------------------

_METRIC = re.compile(r"mlops_kit_serving_[a-z_]+")
_BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_MATCHER = re.compile(r"\{([^}]*)\}")
_LABEL = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")


def unknown_metrics(expr: str) -> set[str]:
    """Metric names in ``expr`` the service does not export (a histogram only with its
    ``_bucket``/``_sum``/``_count`` series: the bare name selects nothing)."""
    allowed = set(COUNTERS) | set(GAUGES)
    allowed |= {f"{h}{s}" for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
    return set(_METRIC.findall(expr)) - allowed


def unknown_labels(expr: str) -> set[str]:
    """Label names ``expr`` groups or matches by that none of its metrics carries."""
    names = {m for m in _METRIC.findall(expr)}
    known = {"le"}
    for metric, labels in METRICS.items():
        if any(n.startswith(metric) for n in names):
            known |= labels
    used = {x.strip() for g in _BY.findall(expr) for x in g.split(",") if x.strip()}
    used |= {x for g in _MATCHER.findall(expr) for x in _LABEL.findall(g)}
    return used - known


def _dashboard() -> dict[str, Any]:
    return json.loads((SERVING / "dashboards" / "inference.json").read_text(encoding="utf-8"))


def _dashboard_exprs() -> list[str]:
    dash = _dashboard()
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dash["templating"]["list"] if v["type"] == "query"]
    return exprs


def _rule_exprs() -> list[str]:
    rule = yaml.safe_load((SERVING / "prometheusrule.yaml").read_text(encoding="utf-8"))
    return [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]


@pytest.mark.parametrize(
    ("expr", "metrics", "labels"),
    [
        ("rate(mlops_kit_serving_requests[5m])", {"mlops_kit_serving_requests"}, set()),
        ("mlops_kit_serving_prediction", {"mlops_kit_serving_prediction"}, set()),
        (
            "mlops_kit_serving_requests_total_bucket",
            {"mlops_kit_serving_requests_total_bucket"},
            set(),
        ),
        ('sum by (role) (mlops_kit_serving_canary_weight{model="m"})', set(), {"role"}),
        ('mlops_kit_serving_feature_psi{features=~"x"}', set(), {"features"}),
        (
            'sum by (le, role) (rate(mlops_kit_serving_prediction_bucket{role="canary"}[5m]))',
            set(),
            set(),
        ),
    ],
)
def test_the_metric_checks_catch_names_and_labels_that_do_not_exist(
    expr: str, metrics: set[str], labels: set[str]
) -> None:
    assert unknown_metrics(expr) == metrics
    assert unknown_labels(expr) == labels


@pytest.mark.parametrize(
    ("what", "exprs"), [("dashboard", _dashboard_exprs), ("rule", _rule_exprs)]
)
def test_only_exported_metrics_and_labels_are_queried(
    what: str, exprs: Callable[[], list[str]]
) -> None:
    found = exprs()
    assert found, what
    for expr in found:
        assert _METRIC.search(expr), f"{what}: {expr} queries no mlops_kit_serving metric"
        assert unknown_metrics(expr) == set(), f"{what}: {expr}"
        assert unknown_labels(expr) == set(), f"{what}: {expr}"


def test_the_dashboard_shows_every_metric_in_the_listed_panels() -> None:
    dash = _dashboard()
    titles = [p["title"] for p in dash["panels"]]
    assert set(titles) == PANELS and len(titles) == len(PANELS)
    assert len({p["id"] for p in dash["panels"]}) == len(PANELS)
    assert all(p["targets"] for p in dash["panels"])
    assert dash["uid"] == "mlops-kit-inference"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    used = {m for e in _dashboard_exprs() for m in _METRIC.findall(e)}
    for metric in METRICS:
        forms = {metric} if metric not in HISTOGRAMS else {f"{metric}_bucket", f"{metric}_sum"}
        assert used & forms, f"the dashboard never shows {metric}"
    rules = " ".join(_rule_exprs())
    for metric in (
        "mlops_kit_serving_requests_total",
        "mlops_kit_serving_request_latency_seconds_bucket",
        "mlops_kit_serving_feature_psi",
    ):
        assert metric in rules


# -- the library stays light --------------------------------------------------------------------


def test_building_the_configuration_imports_no_ray() -> None:
    code = (
        "import sys\n"
        "from mlops_kit.serving import deploy\n"
        f"s = deploy.settings_from_file({str(EXAMPLE)!r})\n"
        "deploy.render(s)\n"
        "heavy = sorted(m for m in ('ray', 'fastapi', 'jsonschema') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_built_objects_share_no_state(example: Settings) -> None:
    obj = deploy.ray_service(example)
    cluster = obj["spec"]["rayClusterConfig"]
    cluster["headGroupSpec"]["template"]["spec"]["securityContext"]["seccompProfile"]["type"] = (
        "Unconfined"
    )
    worker = cluster["workerGroupSpecs"][0]["template"]["spec"]
    assert worker["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    fresh = deploy.ray_service(example)["spec"]["rayClusterConfig"]
    assert fresh["headGroupSpec"]["template"]["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
