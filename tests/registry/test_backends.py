"""The same promotion flow on PostgreSQL (the RDS path) and through an ``mlflow server``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.registry.conftest import PASSED_REPORT, Bundles, log_bundle, make_registry

POLICY = {
    "thresholds": {"roc_auc": 0.5},
    "latency": {"max_p99_ms": 50.0, "calls": 200},
    "require_approval": True,
}


def _flow(reg: object, run_id: str, evaluation: str, name: str) -> None:
    from mlops_kit.registry import ModelRegistry, parse_policy

    assert isinstance(reg, ModelRegistry)
    policy = parse_policy(POLICY)
    v1 = reg.register(run_id, name, quality_report=PASSED_REPORT)["version"]
    v2 = reg.register(run_id, name, quality_report=PASSED_REPORT)["version"]
    assert reg.promote(name, v1, policy, target="challenger", evaluation=evaluation).accepted
    refused = reg.promote(name, "challenger", policy, evaluation=evaluation)
    assert [c.name for c in refused.failed] == ["approval"]
    for v in (v1, v2):
        reg.approve(name, v, "ana", "reviewed")
        assert reg.promote(name, v, policy, evaluation=evaluation).accepted
    assert reg.aliases(name) == {"champion": v2, "previous_champion": v1}
    reg.rollback(name, "canary error rate", who="oncall")
    assert reg.aliases(name) == {"champion": v1}
    actions = [e["action"] for e in reg.audit(name)]
    assert actions.count("promote") == 4 and actions[-1] == "rollback"


@pytest.mark.postgres
def test_on_postgresql(
    postgres_url: str, bundles: Bundles, clean_env: None, tmp_path: Path
) -> None:
    import psycopg

    from mlops_kit.registry import RegistryLockError, registry_lock

    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS mlflow_registry")
        conn.execute("CREATE DATABASE mlflow_registry")
    uri = postgres_url.rsplit("/", 1)[0] + "/mlflow_registry"
    run_id = log_bundle(bundles.strong, bundles.training_set, uri, "registry-pg")
    reg = make_registry(tmp_path / "home", uri)
    _flow(reg, run_id, str(bundles.evaluation), "pg-model")
    with (
        registry_lock(uri, str(tmp_path), "pg-model", timeout_s=5),
        pytest.raises(RegistryLockError, match="held by"),
        registry_lock(uri, str(tmp_path), "pg-model", timeout_s=0.3),
    ):
        pass


@pytest.fixture(scope="module")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite backend, proxied artifacts) on a loopback port."""
    root = tmp_path_factory.mktemp("registry-server")
    port = free_port()
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'server.db'}",
            "--artifacts-destination",
            (root / "artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "mlflow server did not answer /health: "
                    + (root / "server.log").read_text(errors="replace")[-2000:]
                )
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.slow
def test_through_an_mlflow_server(
    registry_server: str, bundles: Bundles, clean_env: None, tmp_path: Path
) -> None:
    run_id = log_bundle(bundles.strong, bundles.training_set, registry_server, "registry-server")
    reg = make_registry(tmp_path / "home", registry_server)
    assert reg.target.is_server
    _flow(reg, run_id, str(bundles.evaluation), "served-model")
    assert (tmp_path / "home" / "lake" / "_state" / "registry" / "served-model.lock").exists()
