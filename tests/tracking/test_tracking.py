"""The MLflow facade: a small training run logged and read back with MlflowClient."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops_kit.config import load_settings
from mlops_kit.errors import ConfigError
from mlops_kit.tracking import LINEAGE_TAGS, Lineage, TrackingTarget, git_commit, tracking_target_of
from tests.conftest import REPO, free_port

FEATURES = [f"f{i}" for i in range(6)]
EPOCHS = 3


@dataclass
class Trained:
    """One small training run, tracked once, shared by the tests of this module."""

    target: TrackingTarget
    bundle: Path
    training_set: Path
    result: Any
    lineage: Lineage
    run_id: str


def _config() -> Any:
    from mlops_kit.training import TrainConfig

    return TrainConfig(
        epochs=EPOCHS,
        patience=None,
        batch_size=128,
        model={"hidden_sizes": [8]},
        data={"feature_columns": FEATURES},
        export={"exporter": "torchscript"},
    )


def _training_set(folder: Path) -> Path:
    """A training-set folder as ``features.build_training_set`` writes it."""
    from mlops_kit import storage
    from mlops_kit.training import synthetic_training_table

    folder.mkdir(parents=True)
    storage.write_parquet(str(folder / "data.parquet"), synthetic_training_table(600, FEATURES))
    manifest = {"features": FEATURES, "service": "device_failure_v1", "accounting": {}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _train_and_log(target: TrackingTarget, root: Path, launcher: str = "local") -> Trained:
    from mlops_kit.tracking import MlflowCallback, log_training_run
    from mlops_kit.training import train

    config = _config()
    ts = _training_set(root / "ts")
    lineage = Lineage.from_training_set(str(ts), launcher=launcher, cwd=REPO)
    callback = MlflowCallback(config, target, run_name="unit", tags=lineage.tags())
    bundle = root / "bundle"
    result = train(config, str(ts / "data.parquet"), str(bundle), callbacks=[callback])
    run_id = log_training_run(
        result, str(bundle), result.parity, lineage, run_id=callback.run_id, target=target
    )
    assert run_id == callback.run_id
    return Trained(target, bundle, ts, result, lineage, run_id)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingTarget]:
    """One SQLite tracking store for the module, resolved from a local-profile home."""
    root = tmp_path_factory.mktemp("tracking")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("MLOPS_KIT_", "MLFLOW_")):
                mp.delenv(key)
        mp.setenv("MLOPS_KIT_CONFIG", str(root / "absent.yaml"))
        yield tracking_target_of(load_settings(home=root / "home"), experiment="unit")


@pytest.fixture(scope="module")
def trained(store: TrackingTarget, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return _train_and_log(store, tmp_path_factory.mktemp("run"))


def _check_run(client: Any, trained: Trained) -> None:
    run = client.get_run(trained.run_id)
    params = run.data.params
    assert params["epochs"] == str(EPOCHS) and params["model.hidden_sizes"] == "[8]"
    assert json.loads(params["data.feature_columns"]) == FEATURES
    assert params["parity_atol"] == "1e-05"
    history = client.get_metric_history(trained.run_id, "val_roc_auc")
    assert [m.step for m in history] == list(range(1, EPOCHS + 1))
    expected = [r["val_roc_auc"] for r in trained.result.history]
    assert [m.value for m in history] == pytest.approx(expected)
    metrics = run.data.metrics
    assert metrics["best_epoch"] == trained.result.best_epoch
    assert metrics["final_val_roc_auc"] == pytest.approx(trained.result.metrics["roc_auc"])
    assert metrics["parity_passed"] == 1.0
    assert metrics["parity_max_abs_diff"] == pytest.approx(trained.result.parity["max_abs_diff"])
    tags = run.data.tags
    assert set(LINEAGE_TAGS) <= set(tags)
    manifest = (trained.training_set / "manifest.json").read_bytes()
    assert tags["mlops_kit.data_manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    assert tags["mlops_kit.feature_service"] == "device_failure_v1"
    assert tags["mlops_kit.feature_service_version"] == "1"
    assert re.fullmatch(r"[0-9a-f]{40}", tags["mlops_kit.git_commit"])
    assert tags["mlops_kit.launcher"] == trained.lineage.launcher
    assert run.info.status == "FINISHED"
    paths = {a.path for a in client.list_artifacts(trained.run_id)}
    assert {"torch", "preprocessing", "bundle"} <= paths
    assert {a.path for a in client.list_artifacts(trained.run_id, "preprocessing")} == {
        "preprocessing/preprocess.json"
    }


def _check_model(trained: Trained) -> None:
    import mlflow
    import mlflow.onnx
    from mlflow.types import DataType

    from mlops_kit.model.predictor import onnx_session

    uri = f"runs:/{trained.run_id}/model"
    mlflow.set_tracking_uri(trained.target.uri)
    try:
        proto = mlflow.onnx.load_model(uri)
        info = mlflow.models.get_model_info(uri)
    finally:
        mlflow.set_tracking_uri(None)
    assert info.signature.inputs.input_names() == FEATURES
    assert set(info.signature.inputs.input_types()) == {DataType.float}
    assert info.signature.outputs.input_names() == ["logit", "probability"]
    x = np.random.default_rng(1).normal(size=(16, len(FEATURES))).astype(np.float32)
    got = onnx_session(proto.SerializeToString()).run(None, {"features": x})
    want = onnx_session(str(trained.bundle / "model.onnx")).run(None, {"features": x})
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_run_is_logged_and_reads_back(trained: Trained) -> None:
    from mlflow.tracking import MlflowClient

    _check_run(MlflowClient(tracking_uri=trained.target.uri), trained)


def test_onnx_model_loads_with_its_signature(trained: Trained) -> None:
    _check_model(trained)


def test_bundle_trained_elsewhere_gets_a_run_of_its_own(
    trained: Trained, store: TrackingTarget
) -> None:
    """Without a run id or a TrainResult, the bundle's config and history are logged."""
    from mlflow.tracking import MlflowClient

    from mlops_kit.tracking import log_training_run

    lineage = trained.lineage.with_launcher("sagemaker")
    run_id = log_training_run(None, str(trained.bundle), None, lineage.to_dict(), target=store)
    client = MlflowClient(tracking_uri=store.uri)
    run = client.get_run(run_id)
    assert run_id != trained.run_id and run.data.tags["mlops_kit.launcher"] == "sagemaker"
    assert run.data.params["epochs"] == str(EPOCHS)
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [1, 2, 3]
    assert run.data.metrics["parity_passed"] == 1.0


def test_target_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(tmp_path / "absent.yaml"))
    local = load_settings(home=tmp_path / "home")
    target = tracking_target_of(local)
    assert target.uri == f"sqlite:///{(tmp_path / 'home').resolve()}/mlflow.db"
    assert target.experiment == "mlops-kit" and not target.is_server
    assert target.artifact_location == (tmp_path / "home" / "models").resolve().as_uri() + (
        "/mlflow-artifacts"
    )

    aws = load_settings(
        profile="aws",
        storage={"processed_uri": "s3://b/processed", "raw_uri": "s3://b/raw"},
        warehouse={"url": "postgresql+psycopg://u@h:5432/db"},
    )
    with pytest.raises(ConfigError, match="MLFLOW_TRACKING_URI"):
        tracking_target_of(aws)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://user:secret@mlflow.example.com")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "fleet")
    served = tracking_target_of(aws)
    assert served.is_server and served.artifact_location is None
    assert served.experiment == "fleet"
    assert served.display_uri == "https://user:***@mlflow.example.com"
    assert tracking_target_of(local, uri="sqlite:////x.db", experiment="e").uri == "sqlite:////x.db"


def test_lineage_without_manifest_and_outside_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_kit import storage
    from mlops_kit.training import synthetic_training_table

    table = tmp_path / "table.parquet"
    storage.write_parquet(str(table), synthetic_training_table(20, FEATURES))
    for name in ("GIT_COMMIT", "GITHUB_SHA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    lineage = Lineage.from_training_set(str(table), launcher="eks", cwd=tmp_path)
    assert lineage.data_manifest_sha256 == hashlib.sha256(table.read_bytes()).hexdigest()
    assert (lineage.feature_service, lineage.git_commit) == ("none", "unknown")
    monkeypatch.setenv("GIT_COMMIT", "abc123")
    assert git_commit(tmp_path) == "abc123"
    assert Lineage.from_dict(lineage.to_dict()) == lineage
    with pytest.raises(ConfigError, match="launcher 'k8s'"):
        Lineage(launcher="k8s")


def test_importing_tracking_does_not_import_mlflow() -> None:
    code = textwrap.dedent(
        """
        import sys
        import mlops_kit, mlops_kit.tracking
        from mlops_kit.tracking import Lineage, tracking_target_of
        heavy = [m for m in ("mlflow", "torch", "kfp") if m in sys.modules]
        assert not heavy, heavy
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite backend) on a free loopback port."""
    root = tmp_path_factory.mktemp("server")
    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(mlflow_bin),
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
        deadline = time.monotonic() + 60
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
def test_against_a_real_tracking_server(
    mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(tmp_path / "absent.yaml"))
    aws = load_settings(
        profile="aws",
        storage={"processed_uri": "s3://b/processed", "raw_uri": "s3://b/raw"},
        warehouse={"url": "postgresql+psycopg://u@h:5432/db"},
    )
    target = tracking_target_of(aws, experiment="server")
    assert target.is_server and target.uri == mlflow_server
    trained = _train_and_log(target, tmp_path, launcher="eks")
    _check_run(MlflowClient(tracking_uri=mlflow_server), trained)
    _check_model(trained)


def test_tracking_uri_from_settings_between_env_and_default(tmp_path, monkeypatch) -> None:
    from mlops_kit.config import load_settings
    from mlops_kit.tracking import tracking_target_of

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    s = load_settings(
        home=tmp_path, tracking={"uri": "http://mlflow.internal:5000", "experiment": "iot"}
    )
    target = tracking_target_of(s)
    assert (target.uri, target.experiment) == ("http://mlflow.internal:5000", "iot")
    assert tracking_target_of(load_settings(home=tmp_path)).uri.startswith("sqlite:///")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://other:5000")
    assert tracking_target_of(s).uri == "http://other:5000"
