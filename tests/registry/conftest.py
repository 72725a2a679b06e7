"""Fixtures of the registry tests: two trained bundles (strong, weak), logged per backend."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FEATURES = [f"f{i}" for i in range(6)]
PASSED_REPORT = {"run_id": "20260101T000000Z-etl", "passed": True, "quarantine_rate": 0.01}
FAILED_REPORT = {"run_id": "20260101T000000Z-bad", "passed": False, "quarantine_rate": 0.4}
BIAS_SHIFT = 0.05
"""Added to the output bias of the perturbed bundle's ONNX graph (torch weights untouched)."""


@dataclass
class Bundles:
    """Model bundles trained once per session, and the fixed evaluation set.

    ``perturbed`` is ``strong`` with its ONNX graph's output bias shifted by
    :data:`BIAS_SHIFT` after the export, its ``parity.json`` still saying passed;
    ``no_torch`` is ``strong`` without ``model.pt``.
    """

    root: Path
    strong: Path
    weak: Path
    no_onnx: Path
    perturbed: Path
    no_torch: Path
    training_set: Path
    evaluation: Path


def _config(epochs: int, hidden: list[int]) -> Any:
    from mlops_kit.training import TrainConfig

    return TrainConfig(
        epochs=epochs,
        patience=None,
        batch_size=128,
        model={"hidden_sizes": hidden},
        data={"feature_columns": FEATURES},
        export={"exporter": "torchscript"},
    )


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    from mlops_kit import storage
    from mlops_kit.training import synthetic_training_table, time_split, train

    root = tmp_path_factory.mktemp("registry-bundles")
    ts = root / "ts"
    ts.mkdir()
    table = synthetic_training_table(3000, FEATURES, seed=0)
    storage.write_parquet(str(ts / "data.parquet"), table)
    (ts / "manifest.json").write_text(json.dumps({"features": FEATURES, "service": "none"}))
    evaluation = root / "evaluation.parquet"
    storage.write_parquet(str(evaluation), time_split(table, _config(1, [2]).data).validation)
    strong, weak = root / "strong", root / "weak"
    train(_config(4, [16]), str(ts / "data.parquet"), str(strong), resume=False)
    train(_config(1, [2]), str(ts / "data.parquet"), str(weak), resume=False)
    no_onnx = root / "no-onnx"
    shutil.copytree(weak, no_onnx)
    (no_onnx / "model.onnx").unlink()
    perturbed = root / "perturbed"
    shutil.copytree(strong, perturbed)
    shift_output_bias(perturbed / "model.onnx", BIAS_SHIFT)
    assert json.loads((perturbed / "parity.json").read_text())["passed"] is True
    no_torch = root / "no-torch"
    shutil.copytree(strong, no_torch)
    (no_torch / "model.pt").unlink()
    return Bundles(root, strong, weak, no_onnx, perturbed, no_torch, ts, evaluation)


def shift_output_bias(path: Path, shift: float) -> None:
    """Add ``shift`` to the one-element bias initializer (the output layer's) of a graph."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    (index,) = [
        i
        for i, init in enumerate(model.graph.initializer)
        if init.data_type == onnx.TensorProto.FLOAT and list(init.dims) == [1]
    ]
    old = model.graph.initializer[index]
    new = numpy_helper.from_array(
        (numpy_helper.to_array(old) + np.float32(shift)).astype(np.float32), old.name
    )
    model.graph.initializer[index].CopyFrom(new)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def log_bundle(bundle: Path, training_set: Path, tracking_uri: str, experiment: str) -> str:
    """Log a bundle (ONNX model, statistics, lineage) to MLflow; returns the run id."""
    from mlops_kit.tracking import Lineage, TrackingTarget, log_training_run
    from tests.conftest import REPO

    lineage = Lineage.from_training_set(str(training_set), launcher="local", cwd=REPO)
    target = TrackingTarget(
        uri=tracking_uri,
        experiment=experiment,
        artifact_location=(bundle.parent / "mlflow-artifacts").as_uri()
        if not tracking_uri.startswith("http")
        else None,
    )
    return log_training_run(None, str(bundle), None, lineage, target=target)


@pytest.fixture(scope="session")
def clean_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("MLOPS_KIT_", "MLFLOW_")):
                mp.delenv(key)
        mp.setenv("MLOPS_KIT_CONFIG", "/nonexistent/mlops_kit.yaml")
        yield


def make_registry(home: Path, tracking_uri: str, mirror: Any = None) -> Any:
    from mlops_kit.config import load_settings
    from mlops_kit.registry import ModelRegistry

    return ModelRegistry(load_settings(home=home), tracking_uri=tracking_uri, mirror=mirror)
