"""The training loop: quality on the demo lake, early stopping, determinism, resume, DDP."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

torch = pytest.importorskip("torch")

from mlops_kit import storage  # noqa: E402
from mlops_kit.training import DataConfig, TrainingError, time_split  # noqa: E402
from mlops_kit.training.data import labels  # noqa: E402
from mlops_kit.training.metrics import binary_metrics  # noqa: E402
from mlops_kit.training.model import load_model  # noqa: E402
from mlops_kit.training.trainer import Trainer, train  # noqa: E402
from tests.training.conftest import REPO, run_cli, small_config  # noqa: E402


def _split(table: pa.Table):
    return time_split(table, DataConfig())


def _state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _checkpoint(uri: str) -> dict:
    return torch.load(io.BytesIO(storage.read_bytes(uri)), weights_only=False)


def test_learns_failures_on_the_demo_lake(training_table: pa.Table) -> None:
    seen: list[dict] = []
    result = train(small_config(epochs=5), training_table, None, callbacks=[seen.append])
    assert result.metrics["roc_auc"] > 0.8, result.history
    assert result.metrics["pr_auc"] > result.metrics["positive_rate"]
    # the reported metrics are those of the returned model on the validation split
    split = _split(training_table)
    y_val = labels(split.validation, DataConfig())
    with torch.inference_mode():
        logits = result.model(torch.from_numpy(result.preprocessor.transform(split.validation)))
    expected = binary_metrics(y_val, logits.reshape(-1).numpy(), 0.5)
    assert result.metrics.keys() == expected.keys()
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    assert result.metrics["positive_rate"] == pytest.approx(float(y_val.mean()))
    # the callback got every epoch's record, the same as the history
    assert [r["epoch"] for r in seen] == [1, 2, 3, 4, 5]
    assert seen == result.history
    assert result.epochs_run == 5 and result.stopped_early is False
    assert result.device == "cpu" and result.precision == "fp32" and result.world_size == 1


def test_early_stopping(training_table: pa.Table) -> None:
    split = _split(training_table)
    cfg = small_config(epochs=10, patience=2, min_delta=1.0)  # nothing after epoch 1 counts
    result = Trainer(cfg).fit(split.train, split.validation)
    assert result.stopped_early is True
    assert result.epochs_run == 3 and result.best_epoch == 1
    assert [r["improved"] for r in result.history] == [True, False, False]
    assert result.best_score == result.history[0]["val_roc_auc"]
    # val_loss is minimised: the best epoch is the one with the lowest loss
    result = Trainer(small_config(epochs=3, monitor="val_loss")).fit(split.train, split.validation)
    losses = [r["val_loss"] for r in result.history]
    assert result.best_score == min(losses)
    assert result.best_epoch == 1 + losses.index(min(losses))
    assert result.stopped_early is False and result.epochs_run == 3


def test_restore_best_weights(training_table: pa.Table) -> None:
    split = _split(training_table)
    cfg = small_config(epochs=3, patience=None, min_delta=1.0)
    best = Trainer(cfg).fit(split.train, split.validation)
    assert best.best_epoch == 1
    one = Trainer(small_config(epochs=1)).fit(split.train, split.validation)
    for k, v in _state(best.model).items():
        assert torch.equal(v, one.model.state_dict()[k])


def test_same_seed_same_weights(training_table: pa.Table) -> None:
    split = _split(training_table)
    a = Trainer(small_config(epochs=2)).fit(split.train, split.validation)
    b = Trainer(small_config(epochs=2)).fit(split.train, split.validation)
    c = Trainer(small_config(epochs=2, seed=1)).fit(split.train, split.validation)
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    assert any(not torch.equal(v, c.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    assert a.history[-1]["val_loss"] == b.history[-1]["val_loss"]


def test_validation_without_positives_is_a_clear_error(training_table: pa.Table) -> None:
    split = _split(training_table)
    negatives = split.validation.filter(pa.compute.equal(split.validation["label"], 0))
    with pytest.raises(TrainingError, match="monitor: val_loss"):
        Trainer(small_config()).fit(split.train, negatives)


@pytest.mark.slow
def test_resume_after_kill_gives_the_uninterrupted_weights(table_uri: str, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "model: {hidden_sizes: [32, 16], dropout: 0.2}\n"
        "epochs: 4\npatience: null\nseed: 5\ndevice: cpu\nnum_threads: 1\n"
    )
    out = "file://" + str(tmp_path / "killed")
    args = ["train", "--data", table_uri, "--out", out, "--config", str(cfg), "--no-export", "-q"]
    killed = run_cli(*args, env={"MLOPS_KIT_FAULT_AT": "training.after_epoch_2"})
    assert killed.returncode == 137, killed.stderr
    ckpt = _checkpoint(out + "/checkpoints/last.pt")
    assert ckpt["epoch"] == 2 and not storage.exists(out + "/model.pt")
    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["resumed_from_epoch"] == 2 and summary["epochs_run"] == 4

    from mlops_kit.training import load_train_config

    straight = train(
        load_train_config(cfg, export={"enabled": False}), table_uri, None, resume=False
    )
    model = load_model(out + "/model.pt")
    for k, v in straight.model.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k
    metrics = storage.read_json(out + "/metrics.json")
    assert [r["epoch"] for r in metrics["history"]] == [1, 2, 3, 4]
    assert metrics["history"][-1]["val_loss"] == straight.history[-1]["val_loss"]
    # a finished run resumes to the same result without training again
    again = run_cli(*args)
    assert json.loads(again.stdout)["resumed_from_epoch"] == 4


def test_resume_refuses_another_config(training_table: pa.Table, tmp_path: Path) -> None:
    split = _split(training_table)
    ckpt = str(tmp_path / "ckpt")
    Trainer(small_config(epochs=1), checkpoint_uri=ckpt).fit(split.train, split.validation)
    other = small_config(epochs=2, model={"hidden_sizes": [8]})
    with pytest.raises(TrainingError, match="another 'model' config"):
        Trainer(other, checkpoint_uri=ckpt).fit(split.train, split.validation)
    result = Trainer(other, checkpoint_uri=ckpt).fit(split.train, split.validation, resume=False)
    assert result.resumed_from_epoch is None
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert _checkpoint(ckpt + "/last.pt")["config"]["model"]["hidden_sizes"] == [8]


@pytest.mark.aws
def test_checkpoints_on_s3(training_table: pa.Table, s3_bucket: str) -> None:
    split = _split(training_table)
    uri = f"s3://{s3_bucket}/runs/r1/checkpoints"
    first = Trainer(small_config(epochs=1), checkpoint_uri=uri).fit(split.train, split.validation)
    last, best = _checkpoint(uri + "/last.pt"), _checkpoint(uri + "/best.pt")
    assert last["epoch"] == 1 and best["epoch"] == 1 and last["finished"] is True
    for k, v in _state(first.model).items():
        assert torch.equal(v, last["model_state"][k]), k
    more = Trainer(small_config(epochs=2), checkpoint_uri=uri)  # more epochs may resume
    second = more.fit(split.train, split.validation)
    assert second.resumed_from_epoch == 1 and second.epochs_run == 2
    assert first.history[0] == second.history[0]
    assert _checkpoint(uri + "/last.pt")["epoch"] == 2


DDP_TOLERANCE = 1e-5
"""Largest weight difference accepted between DDP x2 and one process (the order of float
sums differs; measured about 1e-7 after 3 epochs of AdamW)."""


@pytest.mark.slow
def test_ddp_two_processes_match_one(table_uri: str, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    # dropout 0: with dropout each rank draws its own masks, so runs agree only statistically
    cfg.write_text(
        "model: {hidden_sizes: [32, 16], dropout: 0.0}\n"
        "epochs: 3\npatience: null\nbatch_size: 250\nseed: 2\ndevice: cpu\nnum_threads: 1\n"
    )
    out = "file://" + str(tmp_path / "ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "mlops_kit.training", "train", "--data", table_uri, "--out", out,
         "--config", str(cfg), "--no-export", "-q"],
        capture_output=True, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["world_size"] == 2

    from mlops_kit.training import load_train_config

    single = train(load_train_config(cfg, export={"enabled": False}), table_uri, None)
    ddp_model = load_model(out + "/model.pt")
    diffs = [
        float((v - ddp_model.state_dict()[k]).abs().max())
        for k, v in single.model.state_dict().items()
    ]
    print(f"DDP x2 vs one process: max weight diff {max(diffs):.2e}")
    assert max(diffs) < DDP_TOLERANCE, diffs
    assert summary["metrics"]["roc_auc"] == pytest.approx(single.metrics["roc_auc"], abs=1e-3)
    assert np.isclose(summary["metrics"]["loss"], single.metrics["loss"], atol=1e-4)
