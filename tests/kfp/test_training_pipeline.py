"""The training pipeline through kfp.local, its Kubernetes options, and the steps run bare."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit.config import load_settings
from tests.conftest import REPO

pytest.importorskip("kfp")

pytestmark = [
    pytest.mark.kfp,
    pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:.*have no effect in the current local runner:UserWarning"),
]

CONFIG = {"epochs": 3, "patience": None, "batch_size": 32, "model": {"hidden_sizes": [16]}}
LINEAGE = (
    "mlops_kit.data_manifest_sha256",
    "mlops_kit.feature_service",
    "mlops_kit.feature_service_version",
    "mlops_kit.git_commit",
    "mlops_kit.launcher",
    "mlops_kit.version",
)


class Artifact:
    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.uri = str(path)
        self.metadata: dict[str, Any] = {}
        self.metrics: dict[str, float] = {}

    def log_metric(self, metric: str, value: float) -> None:
        self.metrics[metric] = value


@pytest.fixture(scope="module")
def feature_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A lake written by the real ETL (4 devices, 2 days) with the features applied.

    One failure per device and day puts positives on both sides of the time split.
    """
    import pyarrow.parquet as pq
    from iot_fleet import GeneratorConfig, device_registry, generate_readings

    from mlops_kit.etl import run_etl, write_device_registry
    from mlops_kit.ingest.files import ingest_files

    root = tmp_path_factory.mktemp("training-pipeline")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("MLOPS_KIT_", "MLFLOW_")):
                mp.delenv(key)
        mp.setenv("MLOPS_KIT_CONFIG", str(root / "absent.yaml"))
        home = root / "home"
        settings = load_settings(home=home)
        readings = generate_readings(
            GeneratorConfig(
                n_devices=4, steps=2 * 288, freq_s=300, seed=3, failures_per_device_per_day=1.0
            )
        )
        write_device_registry(settings, device_registry(4))
        drop = root / "drop.parquet"
        pq.write_table(readings, drop)
        ingest_files([str(drop)], settings.storage.raw_uri)
        assert run_etl(settings).status == "committed"
        from mlops_kit.features.ops import apply

        apply(settings)
        yield home


def _client(home: Path) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{home.resolve() / 'mlflow.db'}")


@pytest.mark.slow
def test_training_pipeline_end_to_end(feature_home: Path, kfp_local: Path) -> None:
    from mlops_kit.pipelines import training_pipeline

    run = training_pipeline(
        settings_json=json.dumps({"home": str(feature_home)}),
        config_json=json.dumps(CONFIG),
        exporter="torchscript",
    )
    out = run.outputs

    onnx_dir = Path(out["onnx_model"].path)
    assert (onnx_dir / "model.onnx").stat().st_size > 0
    assert (onnx_dir / "preprocess.json").is_file()
    meta = out["onnx_model"].metadata
    assert meta["parity_passed"] is True and meta["max_abs_diff"] <= meta["atol"]
    assert json.loads((onnx_dir / "parity.json").read_text())["passed"] is True
    assert out["export_metrics"].metadata["parity_passed"] is True

    model_meta = out["model"].metadata
    assert 0.0 <= model_meta["val_roc_auc"] <= 1.0 and model_meta["epochs_run"] == 3
    run_id = model_meta["mlflow_run_id"]
    assert meta["mlflow_run_id"] == run_id

    manifest = Path(out["training_set"].path) / "manifest.json"
    client = _client(feature_home)
    logged = client.get_run(run_id)
    tags = logged.data.tags
    assert all(tag in tags for tag in LINEAGE)
    assert (
        tags["mlops_kit.data_manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    )
    assert tags["mlops_kit.feature_service"] == "device_failure_v1"
    assert tags["mlops_kit.feature_service_version"] == "1"
    assert tags["mlops_kit.launcher"] == "local"
    assert (tags["mlops_kit.dataset"], tags["mlops_kit.dataset_version"]) == ("iot_readings", "1")
    # the model's inputs are the feature service's features, in the service's order
    served = [f.split(":", 1)[1] for f in json.loads(manifest.read_text())["features"]]
    assert meta["feature_names"] == served and len(served) == 19 + 19 + 4
    assert logged.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [1, 2, 3]
    assert logged.data.metrics["parity_passed"] == 1.0
    assert logged.data.params["data.label_column"] == "failure"
    artifacts = {a.path for a in client.list_artifacts(run_id, "torch")}
    assert artifacts == {"torch/model.pt"}

    import mlflow.onnx
    import numpy as np

    from mlops_kit.model.predictor import onnx_session

    with _tracking(feature_home):
        proto = mlflow.onnx.load_model(f"runs:/{run_id}/model")
    x = np.random.default_rng(0).normal(size=(8, len(served))).astype(np.float32)
    got = onnx_session(proto.SerializeToString()).run(None, {"features": x})
    want = onnx_session(str(onnx_dir / "model.onnx")).run(None, {"features": x})
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


class _tracking:
    def __init__(self, home: Path) -> None:
        self.uri = f"sqlite:///{home.resolve() / 'mlflow.db'}"

    def __enter__(self) -> None:
        import mlflow

        self.old = os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(self.uri)

    def __exit__(self, *exc: Any) -> None:
        import mlflow

        mlflow.set_tracking_uri(None)
        if self.old is not None:
            os.environ["MLFLOW_TRACKING_URI"] = self.old


def _trained_bundle(tmp_path: Path, home: Path) -> tuple[Artifact, Artifact]:
    from mlops_kit.components.runtime.training import train_step

    ts = Artifact(tmp_path / "ts")
    from mlops_kit.features.ops import build_training_set

    build_training_set(load_settings(home=home), ts.path)
    model = Artifact(tmp_path / "model")
    train_step(
        ts,
        model,
        Artifact(tmp_path / "train-metrics"),
        json.dumps(CONFIG),
        "failure",
        "bare",
        "",
        False,
        json.dumps({"home": str(home)}),
    )
    return ts, model


def test_export_step_fails_the_task_on_parity(
    feature_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A graph that disagrees with the model fails with the figures; no model.onnx is written."""
    import torch

    from mlops_kit.components.runtime.training import export_onnx_step
    from mlops_kit.training import ParityError
    from mlops_kit.training import onnx_export as ox

    _, model = _trained_bundle(tmp_path, feature_home)
    real = ox.export_onnx

    def skewed(net: Any, pre: Any, *args: Any, **kwargs: Any) -> bytes:
        other = type(net)(net.n_features, net.config)
        state = {k: v.clone() for k, v in net.state_dict().items()}
        last_bias = [k for k in state if k.endswith("bias")][-1]
        state[last_bias] += 0.01
        other.load_state_dict(state)
        with torch.no_grad():
            return real(other, pre, *args, **kwargs)

    monkeypatch.setattr(ox, "export_onnx", skewed)
    onnx_model, metrics = Artifact(tmp_path / "onnx"), Artifact(tmp_path / "m")
    with pytest.raises(ParityError, match=r"ONNX parity failed: max abs diff 1\.0+e-02"):
        export_onnx_step(
            model,
            onnx_model,
            metrics,
            None,
            1e-5,
            0.0,
            0,
            "torchscript",
            64,
            "",
            "",
            False,
            json.dumps({"home": str(feature_home)}),
        )
    assert not (tmp_path / "onnx" / "model.onnx").exists()
    assert metrics.metrics["parity_passed"] == 0
    assert metrics.metadata["parity"]["passed"] is False


def test_launch_step_tracks_a_remote_bundle(
    feature_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """launch_eks builds the job spec, waits, copies the bundle back and logs the run."""
    from mlops_kit.components.runtime import training as rt
    from mlops_kit.components.runtime.training import launch

    ts, trained = _trained_bundle(tmp_path, feature_home)
    submitted: list[Any] = []

    class FakeLauncher:
        def submit(self, spec: Any) -> Any:
            from mlops_kit.storage import read_bytes, write_bytes

            submitted.append(spec)
            for name in (
                "model.pt",
                "preprocess.json",
                "metrics.json",
                "config.json",
                "holdout.parquet",
            ):
                write_bytes(f"{spec.output_uri}/{name}", read_bytes(f"{trained.path}/{name}"))
            from mlops_kit.training.launchers.base import JobHandle

            return JobHandle(backend="eks", name=spec.name, kind="PyTorchJob", uid="u-1")

        def wait(self, handle: Any, timeout: Any = None, poll: Any = None) -> Any:
            from mlops_kit.training.launchers.base import JobPhase, JobStatus

            return JobStatus(JobPhase.SUCCEEDED)

    monkeypatch.setattr(launch, "_launcher", lambda backend, settings: FakeLauncher())
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    model, metrics = Artifact(tmp_path / "launched"), Artifact(tmp_path / "lm")
    rt.launch_eks_step(
        ts,
        model,
        metrics,
        "failure-mlp-t1",
        json.dumps(CONFIG),
        "failure",
        "",
        "registry.example/mlops-kit-training:1",
        2,
        1,
        0,
        "4",
        "16Gi",
        json.dumps({"mlflow-tracking": ["MLFLOW_TRACKING_URI"]}),
        "training",
        "data-pipeline",
        0,
        60,
        0.1,
        "launched",
        "",
        True,
        json.dumps({"home": str(feature_home)}),
    )
    (spec,) = submitted
    assert spec.data_uri == str(tmp_path / "ts" / "data.parquet")
    assert spec.nodes == 2 and spec.gpus_per_node == 1 and spec.is_gpu
    assert spec.env_from_secrets == {"mlflow-tracking": ["MLFLOW_TRACKING_URI"]}
    assert spec.extra_args == ["--no-export"] and spec.config.data.label_column == "failure"
    assert spec.output_uri.endswith("/models/failure-mlp-t1")
    assert (tmp_path / "launched" / "model.pt").is_file()
    assert model.metadata["backend"] == "eks" and model.metadata["job_phase"] == "Succeeded"
    client = _client(feature_home)
    logged = client.get_run(model.metadata["mlflow_run_id"])
    assert logged.data.tags["mlops_kit.launcher"] == "eks"
    assert logged.data.tags["mlops_kit.feature_service"] == "device_failure_v1"
    history = client.get_metric_history(logged.info.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2, 3]


def _compiled(name: str) -> tuple[dict, dict]:
    """``(pipeline spec, Kubernetes executor configs)`` of ``pipelines/<name>.yaml``."""
    spec, *rest = yaml.safe_load_all((REPO / "pipelines" / f"{name}.yaml").read_text())
    platform = rest[0]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if rest else {}
    return spec, platform


def test_gpu_variant_sets_the_kubernetes_options() -> None:
    cpu, cpu_platform = _compiled("training")
    gpu, gpu_platform = _compiled("training_gpu")
    assert cpu["pipelineInfo"]["name"] == "mlops-kit-training"
    assert gpu["pipelineInfo"]["name"] == "mlops-kit-training-gpu"

    train = gpu_platform["exec-train"]
    assert train["nodeSelector"]["labels"] == {"mlops-kit/accelerator": "nvidia-gpu"}
    assert train["tolerations"] == [
        {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Equal", "value": "present"}
    ]
    resources = gpu["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["accelerator"]["resourceCount"] == "1"
    assert "resources" not in cpu["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert not {"nodeSelector", "tolerations"} & set(cpu_platform["exec-train"])
    assert not {"nodeSelector", "tolerations"} & set(gpu_platform["exec-export-onnx"])

    keys = {"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}
    for platform in (cpu_platform, gpu_platform):
        assert "exec-features-training-set" not in platform
        for name in ("exec-train", "exec-export-onnx"):
            (secret,) = platform[name]["secretAsEnv"]
            assert secret["secretName"] == "mlflow-tracking" and secret["optional"] is True
            assert {k["envVar"] for k in secret["keyToEnv"]} == keys


def test_launch_step_with_the_local_launcher(feature_home: Path, tmp_path: Path) -> None:
    """The launch path with the real local launcher: spec, submit, wait, bundle, run."""
    from mlops_kit.components.runtime import training as rt
    from mlops_kit.features.ops import build_training_set

    ts = Artifact(tmp_path / "ts")
    build_training_set(load_settings(home=feature_home), ts.path)
    model, metrics = Artifact(tmp_path / "model"), Artifact(tmp_path / "m")
    rt.launch_step(
        "local",
        ts,
        model,
        metrics,
        {"extra_args": ["--no-export"]},
        name="failure-mlp-local",
        config_json=json.dumps(CONFIG),
        label_column="failure",
        timeout_s=120,
        poll_s=0.2,
        track=False,
        settings_json=json.dumps({"home": str(feature_home)}),
    )
    assert (tmp_path / "model" / "model.pt").is_file()
    assert not (tmp_path / "model" / "model.onnx").exists()
    assert model.metadata["backend"] == "local" and model.metadata["job_phase"] == "Succeeded"
    assert model.metadata["bundle_uri"].endswith("/models/failure-mlp-local")
    assert metrics.metrics["epochs_run"] == 3
