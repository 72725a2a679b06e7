"""Local launcher: the trainer in this process, and torchrun subprocesses."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mlops_kit.config import Settings
from mlops_kit.training import TrainConfig, parse_train_config
from mlops_kit.training.launchers import (
    JobHandle,
    JobPhase,
    TrainingJobFailedError,
    TrainingJobSpec,
    launcher_for,
)
from mlops_kit.training.launchers.local import LocalLauncher

torch = pytest.importorskip("torch")

from mlops_kit.training.model import load_model  # noqa: E402


def tiny_config(**overrides: object) -> TrainConfig:
    base = {
        "model": {"hidden_sizes": [8]},
        "epochs": 2,
        "batch_size": 64,
        "patience": None,
        "device": "cpu",
        "num_threads": 1,
        "export": {"enabled": False},
        **overrides,
    }
    return parse_train_config(base)


@pytest.fixture(scope="module")
def table_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    from mlops_kit.training import synthetic_training_table, write_training_table

    uri = "file://" + str(tmp_path_factory.mktemp("launch") / "train.parquet")
    write_training_table(synthetic_training_table(600, seed=3), uri)
    return uri


def test_in_process_run_writes_the_bundle(
    table_uri: str, tmp_path: Path, settings: Settings
) -> None:
    local = launcher_for("local", settings)
    assert isinstance(local, LocalLauncher)
    out = tmp_path / "model"
    spec = TrainingJobSpec(
        name="fm-local",
        data_uri=table_uri,
        output_uri=str(out),
        checkpoint_uri=str(tmp_path / "ckpt"),
        config=tiny_config(),
    )
    before = datetime.now(timezone.utc)
    handle = local.submit(spec)
    assert handle == JobHandle("local", "fm-local", "thread", None, None)
    status = local.wait(handle)
    after = datetime.now(timezone.utc)
    assert status.phase is JobPhase.SUCCEEDED
    assert (status.reason, status.message) == ("Completed", None)
    assert status.start_time is not None and status.end_time is not None
    assert before <= status.start_time <= status.end_time <= after
    result = status.raw["result"]
    assert result.epochs_run == 2 and result.world_size == 1
    assert result.checkpoint_uri == str(tmp_path / "ckpt")
    assert result.out_uri == str(out)
    # the bundle on disk is this run's
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics["history"]] == [1, 2]
    assert metrics["epochs_run"] == 2 and metrics["world_size"] == 1
    assert metrics["metrics"] == result.metrics
    assert metrics["split"]["train_rows"] + metrics["split"]["validation_rows"] == 600
    saved = load_model(str(out / "model.pt"))
    for k, v in result.model.state_dict().items():
        assert torch.equal(v, saved.state_dict()[k]), k
    last = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=False)
    assert last["epoch"] == 2 and last["finished"] is True


def test_in_process_failure_surfaces_the_error_code(tmp_path: Path, settings: Settings) -> None:
    local = launcher_for("local", settings)
    spec = TrainingJobSpec(
        name="fm-missing",
        data_uri=str(tmp_path / "absent"),
        output_uri=str(tmp_path / "m"),
        config=tiny_config(),
    )
    handle = local.submit(spec)
    with pytest.raises(
        TrainingJobFailedError, match=r"failed \(TRAINING_ERROR\): no training table"
    ):
        local.wait(handle)
    status = local.status(handle)
    assert status.phase is JobPhase.FAILED and status.reason == "TRAINING_ERROR"
    assert (
        status.message
        == f"no training table at '{tmp_path / 'absent'}' (a Parquet file or a prefix)"
    )
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_torchrun_two_processes(table_uri: str, tmp_path: Path, settings: Settings) -> None:
    local = launcher_for("local", settings, log_dir=tmp_path / "logs")
    out = tmp_path / "ddp"
    spec = TrainingJobSpec(
        name="fm-ddp",
        data_uri=table_uri,
        output_uri=str(out),
        procs_per_node=2,
        config=tiny_config(),
        env={"OMP_NUM_THREADS": "1"},
    )
    assert local.command(spec) == [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        "--nproc_per_node=2",
        "-m",
        "mlops_kit.training",
        "train",
        "--data",
        table_uri,
        "--out",
        str(out),
        *("--set", "model.hidden_sizes=[8]", "--set", "export.enabled=false"),
        *("--set", "epochs=2", "--set", "batch_size=64", "--set", "patience=null"),
        *("--set", "device=cpu", "--set", "num_threads=1"),
    ]
    handle = local.submit(spec)
    assert (handle.backend, handle.name, handle.kind) == ("local", "fm-ddp", "process")
    status = local.wait(handle)
    log_path = tmp_path / "logs" / "fm-ddp.log"
    log = log_path.read_text()
    assert status.phase is JobPhase.SUCCEEDED, log
    assert status.raw == {"returncode": 0, "log": str(log_path)}
    # the summary rank 0 printed, and the bundle it wrote
    summary = json.loads(log[log.index("\n{\n") + 1 : log.rindex("\n}") + 2])
    assert summary["world_size"] == 2 and summary["epochs_run"] == 2
    assert summary["out"] == str(out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and [r["epoch"] for r in metrics["history"]] == [1, 2]
    assert metrics["metrics"] == summary["metrics"]
    assert [p.shape[0] for p in load_model(str(out / "model.pt")).parameters()] == [8, 8, 1, 1]

    bad = spec.model_copy(update={"name": "fm-ddp-bad", "data_uri": str(tmp_path / "absent")})
    status = local.wait(local.submit(bad), raise_on_failure=False)
    assert status.phase is JobPhase.FAILED
    assert status.reason == "TRAINING_ERROR"
    assert (
        status.message
        == f"no training table at '{tmp_path / 'absent'}' (a Parquet file or a prefix)"
    )
    assert status.raw["returncode"] == 1


def test_failure_reason_survives_ranks_writing_one_log(tmp_path: Path) -> None:
    """Two ranks' error lines can run together in the shared log; the reason is still one."""
    msg = "no training table at '/x' (a Parquet file or a prefix)"
    log = tmp_path / "job.log"
    log.write_text(f"starting\nerror [TRAINING_ERROR]: {msg}error [TRAINING_ERROR]: {msg}\n")
    assert LocalLauncher._failure_from_log(log) == ("TRAINING_ERROR", msg)
    log.write_text("starting\nerror [CONFIG_INVALID]: bad --set\nTraceback ...\n")
    assert LocalLauncher._failure_from_log(log) == ("CONFIG_INVALID", "bad --set")
