"""Local launcher: the trainer in this process, and torchrun subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_kit.config import Settings
from mlops_kit.training import TrainConfig, parse_train_config
from mlops_kit.training.launchers import (
    JobPhase,
    TrainingJobFailedError,
    TrainingJobSpec,
    launcher_for,
)
from mlops_kit.training.launchers.local import LocalLauncher

pytest.importorskip("torch")


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
    handle = local.submit(spec)
    assert handle.kind == "thread"
    status = local.wait(handle, timeout=120)
    assert status.phase is JobPhase.SUCCEEDED
    assert status.start_time is not None and status.end_time is not None
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics and (out / "model.pt").exists()
    assert (tmp_path / "ckpt" / "last.pt").exists()
    assert status.raw["result"].epochs_run == 2


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
        local.wait(handle, timeout=60)


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
    assert local.command(spec)[1:6] == [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        "--nproc_per_node=2",
    ]
    handle = local.submit(spec)
    assert handle.kind == "process"
    status = local.wait(handle, timeout=240)
    log = (tmp_path / "logs" / "fm-ddp.log").read_text()
    assert status.phase is JobPhase.SUCCEEDED, log
    assert '"world_size": 2' in log
    assert (out / "model.pt").exists()

    bad = spec.model_copy(update={"name": "fm-ddp-bad", "data_uri": str(tmp_path / "absent")})
    status = local.wait(local.submit(bad), timeout=240, raise_on_failure=False)
    assert status.phase is JobPhase.FAILED
    assert status.reason == "TRAINING_ERROR" and "no training table" in (status.message or "")
