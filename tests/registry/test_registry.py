"""Registration, gates, approvals, rollback, audit and bad input (MLflow on SQLite)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.registry.conftest import (
    BIAS_SHIFT,
    FAILED_REPORT,
    PASSED_REPORT,
    Bundles,
    log_bundle,
    make_registry,
)


@dataclass
class Store:
    uri: str
    home: Path
    strong: str
    weak: str
    no_onnx: str
    perturbed: str
    no_torch: str
    evaluation: str


@pytest.fixture(scope="module")
def store(bundles: Bundles, clean_env: None, tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("sqlite-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    runs = {
        name: log_bundle(getattr(bundles, name), bundles.training_set, uri, "registry")
        for name in ("strong", "weak", "no_onnx", "perturbed", "no_torch")
    }
    return Store(uri, root / "home", evaluation=str(bundles.evaluation), **runs)


def _name() -> str:
    return f"m-{uuid.uuid4().hex[:8]}"


LOOSE = {
    "thresholds": {"roc_auc": 0.5},
    "latency": {"max_p99_ms": 50.0, "calls": 200},
    "require_approval": False,
}


def _policy(**changes: Any) -> Any:
    from mlops_kit.registry import parse_policy

    data = json.loads(json.dumps(LOOSE))
    for key, value in changes.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return parse_policy(data)


def _register(reg: Any, store: Store, name: str, run: str = "strong", report: Any = None) -> str:
    return str(
        reg.register(getattr(store, run), name, quality_report=report or PASSED_REPORT)["version"]
    )


def test_register_carries_lineage_and_gate_tags(store: Store) -> None:
    reg = make_registry(store.home, store.uri)
    name = _name()
    v = _register(reg, store, name)
    mv = reg.client.get_model_version(name, v)
    tags = mv.tags
    assert tags["mlops_kit.run_id"] == store.strong and mv.run_id == store.strong
    for key in ("mlops_kit.data_manifest_sha256", "mlops_kit.git_commit", "mlops_kit.launcher"):
        assert key in tags
    assert tags["mlops_kit.parity_passed"] == "true"
    assert tags["mlops_kit.data_quality_passed"] == "true"
    assert len(tags["mlops_kit.onnx_sha256"]) == 64
    assert str(mv.source).startswith("models:/m-")
    assert reg.audit(name)[0]["action"] == "register"
    data, pre = reg.load_model(name, v)
    assert data[:2] and list(pre.feature_names) == [f"f{i}" for i in range(6)]


def test_accepted_promotions_approval_and_rollback(store: Store) -> None:
    reg = make_registry(store.home, store.uri)
    name = _name()
    policy = _policy(require_approval=True)
    v1 = _register(reg, store, name)
    first = reg.promote(name, v1, policy, target="challenger", evaluation=store.evaluation)
    assert first.accepted and reg.aliases(name) == {"challenger": v1}
    assert "champion_margin" not in {c.name for c in first.checks}  # no champion yet
    refused = reg.promote(name, "challenger", policy, evaluation=store.evaluation)
    assert not refused.accepted and [c.name for c in refused.failed] == ["approval"]
    approval = reg.approve(name, v1, "ana", "reviewed the figures")
    assert approval["who"] == "ana"
    won = reg.promote(name, "challenger", policy, evaluation=store.evaluation, who="ana")
    assert won.accepted and won.champion_before is None
    assert reg.aliases(name) == {"champion": v1}  # challenger moved on
    versions = [v1]
    for _ in range(2):
        v = _register(reg, store, name)
        reg.approve(name, v, "ana", "same model, retrained")
        d = reg.promote(name, v, policy, evaluation=store.evaluation)
        assert d.accepted, d.reasons()
        assert any(c.name == "champion_margin" and c.passed for c in d.checks)
        versions.append(v)
    v1, v2, v3 = versions
    assert reg.aliases(name) == {"champion": v3, "previous_champion": v2}
    assert reg.show(name)["champion_history"] == [v1, v2, v3]
    back = reg.rollback(name, "error rate up after the release", who="bob")
    assert back["champion"] == v2 and reg.aliases(name) == {"champion": v2, "previous_champion": v1}
    reg.rollback(name, "still bad", who="bob")
    assert reg.aliases(name) == {"champion": v1}
    from mlops_kit.registry import RegistryError

    with pytest.raises(RegistryError, match="no previous champion"):
        reg.rollback(name, "again")
    rolled = json.loads(reg.client.get_model_version(name, v3).tags["mlops_kit.rolled_back"])
    assert rolled["why"] == "error rate up after the release"
    actions = [e["action"] for e in reg.audit(name)]
    assert actions.count("rollback") == 2 and actions.count("approve") == 3
    decisions = [e["decision"] for e in reg.audit(name) if e["action"] == "promote"]
    assert decisions == ["accepted", "refused", "accepted", "accepted", "accepted"]
    tags = reg.client.get_model_version(name, v1).tags
    assert tags["mlops_kit.decision.champion"] == "accepted"
    assert tags["mlops_kit.decision.challenger"] == "accepted"


GATES = {
    "threshold.roc_auc": {"thresholds": {"roc_auc": 0.999}},
    "threshold.pr_auc": {"thresholds": {"pr_auc": 0.999}},
    "threshold.f1": {"thresholds": {"f1": 0.999}},
    "latency_p99": {"latency": {"max_p99_ms": 1e-6}},
}


@pytest.mark.parametrize(
    "gate",
    [*GATES, "champion_margin", "onnx_parity", "data_quality", "approval"],
)
def test_each_gate_refuses_on_its_own(store: Store, gate: str) -> None:
    reg = make_registry(store.home, store.uri)
    name = _name()
    policy = _policy(**GATES.get(gate, {}), require_approval=(gate == "approval"))
    run, report = "strong", PASSED_REPORT
    if gate == "champion_margin":
        champion = _register(reg, store, name)
        assert reg.promote(name, champion, policy, evaluation=store.evaluation).accepted
        run = "weak"
        policy = _policy(thresholds={"roc_auc": None}, require_approval=False)
    if gate == "data_quality":
        report = FAILED_REPORT
    if gate == "onnx_parity":
        run = "perturbed"
    v = _register(reg, store, name, run, report)
    before = reg.aliases(name)
    decision = reg.promote(name, v, policy, evaluation=store.evaluation, who="ci")
    assert not decision.accepted
    assert [c.name for c in decision.failed] == [gate]
    (failed,) = decision.failed
    assert failed.detail and failed.value is not None
    assert reg.aliases(name) == before
    entry = reg.audit(name)[-1]
    assert entry["decision"] == "refused" and entry["reasons"] == decision.reasons()
    tags = reg.client.get_model_version(name, v).tags
    assert tags["mlops_kit.decision.champion"] == "refused"
    assert tags["mlops_kit.decision.champion.failed"] == gate


def test_parity_is_recomputed_on_the_registered_graph(store: Store) -> None:
    reg = make_registry(store.home, store.uri)
    name = _name()
    policy = _policy()
    good, shifted, unweighted = (
        _register(reg, store, name, run) for run in ("strong", "perturbed", "no_torch")
    )
    tags = {v: reg.client.get_model_version(name, v).tags for v in (good, shifted, unweighted)}
    assert {t["mlops_kit.parity_passed"] for t in tags.values()} == {"true"}

    refused = reg.promote(name, shifted, policy, evaluation=store.evaluation)
    assert not refused.accepted and [c.name for c in refused.failed] == ["onnx_parity"]
    (parity,) = refused.failed
    assert parity.value == pytest.approx(BIAS_SHIFT, rel=1e-3)  # the shifted logit
    assert parity.limit == pytest.approx(1e-5)  # the export's atol, logged with the run
    assert "registered graph" in parity.detail and "parity_passed=true" in parity.detail
    assert "output 'logit'" in parity.detail

    missing = reg.promote(name, unweighted, policy, evaluation=store.evaluation)
    assert [c.name for c in missing.failed] == ["onnx_parity"]
    assert missing.failed[0].value == "not recomputed" and "torch/model.pt" in (
        missing.failed[0].detail
    )
    assert reg.aliases(name) == {}

    accepted = reg.promote(name, good, policy, evaluation=store.evaluation)
    assert accepted.accepted, accepted.reasons()
    ok = next(c for c in accepted.checks if c.name == "onnx_parity")
    assert ok.passed and 0.0 <= ok.value <= ok.limit
    assert f"on {accepted.evaluation['n']} evaluation rows" in ok.detail


def test_bad_input_names_what_is_wrong_and_changes_nothing(store: Store, tmp_path: Path) -> None:
    from mlops_kit.registry import (
        MissingArtifactError,
        ModelNotFoundError,
        PolicyError,
        load_policy,
    )

    reg = make_registry(store.home, store.uri)
    name = _name()
    v = _register(reg, store, name)
    assert reg.promote(
        name, v, _policy(), target="challenger", evaluation=store.evaluation
    ).accepted
    snapshot = (reg.aliases(name), len(reg.audit(name)))

    with pytest.raises(ModelNotFoundError, match="no registered model 'nope'"):
        reg.promote("nope", "1", _policy(), evaluation=store.evaluation)
    with pytest.raises(ModelNotFoundError, match=f"model '{name}' has no version 42"):
        reg.promote(name, "42", _policy(), evaluation=store.evaluation)
    with pytest.raises(ModelNotFoundError, match="no alias 'stable'"):
        reg.approve(name, "stable", "ana", "x")
    bad_key = tmp_path / "bad-key.yaml"
    bad_key.write_text("thresholds:\n  roc_acu: 0.9\n")
    with pytest.raises(PolicyError, match=r"thresholds\.roc_acu: unknown key"):
        load_policy(bad_key)
    bad_type = tmp_path / "bad-type.yaml"
    bad_type.write_text("latency:\n  max_p99_ms: fast\n")
    with pytest.raises(PolicyError, match=r"latency\.max_p99_ms: .*number.*'fast'"):
        reg.promote(name, v, str(bad_type), evaluation=store.evaluation)
    with pytest.raises(MissingArtifactError, match="has no ONNX model"):
        reg.register(store.no_onnx, name)
    with pytest.raises(ModelNotFoundError, match="no run 'deadbeef'"):
        reg.register("deadbeef", name)
    assert (reg.aliases(name), len(reg.audit(name))) == snapshot
    assert next(m for m in reg.list_models() if m["name"] == name)["versions"] == 1


def test_policy_yaml_round_trip(tmp_path: Path) -> None:
    from mlops_kit.registry import load_policy

    path = tmp_path / "policy.yaml"
    path.write_text(
        "thresholds: {roc_auc: 0.85, pr_auc: 0.4}\nchampion: {margin: 0.01}\n"
        "latency: {max_p99_ms: 2.0, calls: 500}\nrequire_approval: true\n"
    )
    policy = load_policy(path)
    assert policy.thresholds.pr_auc == 0.4 and policy.champion.margin == 0.01
    assert policy.latency.calls == 500 and policy.thresholds.f1 is None
    assert load_policy(None).thresholds.roc_auc == 0.85


def test_metrics_match_their_definitions() -> None:
    import numpy as np

    from mlops_kit.registry.evaluate import roc_curve
    from mlops_kit.training.metrics import pr_auc, roc_auc

    y = np.array([0, 0, 1, 1, 0, 1], dtype=float)
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    assert roc_auc(y, s) == pytest.approx(8 / 9)
    assert pr_auc(y, s) == pytest.approx((1 + 1 + 0.75) / 3)
    curve = roc_curve(y, s)
    assert curve["fpr"][0] == 0.0 and curve["tpr"][-1] == 1.0 and curve["fpr"][-1] == 1.0


def test_lock_is_exclusive_and_a_stale_lease_is_taken_over(store: Store, tmp_path: Path) -> None:
    import sqlalchemy as sa

    from mlops_kit.registry import RegistryLockError, registry_lock
    from mlops_kit.registry.lock import LOCK_TABLE, _engine

    with (
        registry_lock(store.uri, str(tmp_path), "locked", timeout_s=5),
        pytest.raises(RegistryLockError, match="held by"),
        registry_lock(store.uri, str(tmp_path), "locked", timeout_s=0.3),
    ):
        pass
    with _engine(store.uri).begin() as conn:
        conn.execute(
            sa.text(f"INSERT INTO {LOCK_TABLE} (name, owner, expires_at) VALUES ('stale', 'x', 1)")
        )
    with registry_lock(store.uri, str(tmp_path), "stale", timeout_s=2) as me:
        assert me != "x"
    with (
        registry_lock("http://server:5000", str(tmp_path), "m", timeout_s=5),
        pytest.raises(RegistryLockError),
        registry_lock("http://server:5000", str(tmp_path), "m", timeout_s=0.2),
    ):
        pass


def test_cli(store: Store) -> None:
    from typer.testing import CliRunner

    from mlops_kit.cli.model import model_app

    reg = make_registry(store.home, store.uri)
    name = _name()
    v = _register(reg, store, name)
    policy = store.home.parent / "policy.yaml"
    policy.write_text("thresholds: {roc_auc: 0.5}\nlatency: {max_p99_ms: 50.0, calls: 100}\n")
    common = ["--home", str(store.home), "--tracking-uri", store.uri]
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(model_app, [*args, *common], catch_exceptions=False)

    refused = run("promote", name, v, "--policy", str(policy), "--eval", store.evaluation)
    assert refused.exit_code == 1 and "approval" in refused.output and "FAIL" in refused.output
    assert run("approve", name, v, "--who", "ana", "--why", "looks good").exit_code == 0
    ok = run("promote", name, v, "--policy", str(policy), "--eval", store.evaluation, "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["decision"] == "accepted"
    listed = run("list", "--json")
    assert {"champion": v} == next(m for m in json.loads(listed.stdout) if m["name"] == name)[
        "aliases"
    ]
    assert f"{v}" in run("show", name).output
    missing = run("promote", name, "9", "--policy", str(policy), "--eval", store.evaluation)
    assert missing.exit_code == 2 and "has no version 9" in missing.output
    assert run("rollback", name, "--why", "x").exit_code == 2  # no previous champion
    audit = run("audit", name, "--json")
    actions = [e["action"] for e in json.loads(audit.stdout)]
    assert actions == ["register", "promote", "approve", "promote"]
    assert "refused" in run("audit", name).output


def test_importing_the_registry_is_light() -> None:
    code = textwrap.dedent(
        """
        import sys
        import mlops_kit, mlops_kit.registry, mlops_kit.cli.model
        from mlops_kit.registry import PromotionPolicy, load_policy
        heavy = [m for m in ("mlflow", "onnxruntime", "torch", "sagemaker", "kfp")
                 if m in sys.modules]
        assert not heavy, heavy
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr


@pytest.mark.aws
def test_sagemaker_mirror_on_moto(store: Store, moto_endpoint: str) -> None:
    import boto3

    from mlops_kit.registry import SageMakerMirror
    from mlops_kit.registry.sagemaker_mirror import group_name

    client = boto3.client("sagemaker", endpoint_url=moto_endpoint, region_name="us-east-1")
    mirror = SageMakerMirror(client, "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1")
    reg = make_registry(store.home, store.uri, mirror=mirror)
    name = _name()
    policy = _policy()
    v1, v2, v3 = (_register(reg, store, name, run) for run in ("strong", "strong", "weak"))
    arns = {
        v: reg.client.get_model_version(name, v).tags["mlops_kit.sagemaker_package_arn"]
        for v in (v1, v2, v3)
    }
    assert {p["arn"] for p in mirror.packages(name)} == set(arns.values())
    assert client.describe_model_package_group(ModelPackageGroupName=group_name(name))
    assert {mirror.status(a) for a in arns.values()} == {"PendingManualApproval"}
    assert reg.promote(name, v1, policy, evaluation=store.evaluation).accepted
    assert reg.promote(name, v2, policy, evaluation=store.evaluation).accepted
    assert not reg.promote(name, v3, policy, evaluation=store.evaluation).accepted
    assert [mirror.status(arns[v]) for v in (v1, v2, v3)] == ["Approved", "Approved", "Rejected"]
    reg.rollback(name, "latency regression in production", who="oncall")
    assert mirror.status(arns[v2]) == "Rejected" and mirror.status(arns[v1]) == "Approved"
    assert reg.aliases(name) == {"champion": v1}


class _Artifact:
    def __init__(self, path: Path, metadata: dict[str, Any] | None = None) -> None:
        self.path = str(path)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.metrics: dict[str, float] = {}
        self.curves: list[Any] = []

    def log_metric(self, metric: str, value: float) -> None:
        self.metrics[metric] = value

    def log_roc_curve(self, fpr: list[float], tpr: list[float], threshold: list[float]) -> None:
        self.curves.append(("roc", len(fpr), len(tpr), len(threshold)))

    def log_confusion_matrix(self, categories: list[str], matrix: list[list[int]]) -> None:
        self.curves.append(("confusion", categories, matrix))


def test_component_steps_bare(store: Store, bundles: Bundles, tmp_path: Path) -> None:
    from mlops_kit.components.runtime.registry import (
        evaluate_model_step,
        promote_model_step,
        register_model_step,
    )

    settings_json = json.dumps({"home": str(store.home)})
    policy_json = json.dumps(LOOSE)
    onnx = _Artifact(bundles.strong, {"mlflow_run_id": store.strong})
    evaluation = _Artifact(bundles.training_set)
    metrics, scores = _Artifact(tmp_path / "cm"), _Artifact(tmp_path / "scores")
    passed = tmp_path / "out" / "passed"
    out = evaluate_model_step(
        onnx,
        evaluation,
        metrics,
        scores,
        str(passed),
        policy_json,
        "label",
        "validation",
        settings_json,
    )
    assert passed.read_text() == "true" and out["passed"] is True
    assert scores.metrics["roc_auc"] > 0.5 and scores.metrics["latency_p99_ms"] > 0
    assert [c[0] for c in metrics.curves] == ["roc", "confusion"]
    version = tmp_path / "out" / "version"
    name = _name()
    register_model_step(onnx, str(version), name, "", "", store.uri, settings_json)
    assert version.read_text() == "1"
    report = _Artifact(tmp_path / "report")
    decision, reasons = tmp_path / "out" / "decision", tmp_path / "out" / "reasons"
    promote_model_step(
        evaluation,
        report,
        str(decision),
        str(reasons),
        "1",
        name,
        "challenger",
        policy_json,
        "label",
        "validation",
        "pipeline",
        "ci",
        store.uri,
        settings_json,
    )
    assert decision.read_text() == "refused"  # no data-quality report under this home
    assert json.loads(reasons.read_text())[0].startswith("data_quality:")
    assert report.metrics["data_quality"] == 0.0 and report.metrics["threshold.roc_auc"] == 1.0
    strict = json.dumps({**LOOSE, "require_data_quality": False})
    promote_model_step(
        evaluation,
        report,
        str(decision),
        str(reasons),
        "1",
        name,
        "challenger",
        strict,
        "label",
        "validation",
        "pipeline",
        "ci",
        store.uri,
        settings_json,
    )
    assert decision.read_text() == "accepted" and json.loads(reasons.read_text()) == []
    from mlops_kit.registry import PolicyError

    with pytest.raises(PolicyError, match=r"latency\.calls"):
        promote_model_step(
            evaluation,
            report,
            str(decision),
            str(reasons),
            "1",
            name,
            "challenger",
            '{"latency": {"calls": "many"}}',
            "",
            "",
            "",
            "",
            store.uri,
            settings_json,
        )


@pytest.mark.aws
def test_audit_log_and_lease_on_s3(s3_bucket: str) -> None:
    from mlops_kit.registry import AuditLog, RegistryLockError, registry_lock

    base = f"s3://{s3_bucket}/_state/registry"
    log = AuditLog(base)
    for i in range(3):
        log.append("m", {"action": "approve", "version": str(i)})
    assert [e["version"] for e in log.read("m")] == ["0", "1", "2"]
    with (
        registry_lock("http://server:5000", base, "m", timeout_s=5),
        pytest.raises(RegistryLockError, match="held by"),
        registry_lock("http://server:5000", base, "m", timeout_s=0.3),
    ):
        pass
    with registry_lock("http://server:5000", base, "m", ttl_s=0.01, timeout_s=5):
        time.sleep(0.05)
        with registry_lock("http://server:5000", base, "m", timeout_s=5):
            pass  # the first lease expired: taken over
