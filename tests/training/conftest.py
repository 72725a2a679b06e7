"""Fixtures of the trainer tests: a real lake built by the demo, and its training table."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from mlops_kit.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def lake_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A local-profile home filled by ``mlops-kit demo`` (20 devices, 3 days, ETL run)."""
    from rich.console import Console

    from mlops_kit.cli.demo import run_demo

    home = tmp_path_factory.mktemp("lake") / "home"
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("MLOPS_KIT_"):
                mp.delenv(key)
        mp.setenv("MLOPS_KIT_CONFIG", str(home.parent / "absent.yaml"))
        settings = load_settings(home=home)
        run_demo(settings, Console(file=io.StringIO(), width=120), with_rollout=False)
        yield settings


@pytest.fixture(scope="session")
def training_table(lake_settings: Settings) -> pa.Table:
    from mlops_kit.training import build_training_table

    return build_training_table(lake_settings)


@pytest.fixture(scope="session")
def table_uri(training_table: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> str:
    from mlops_kit.training import write_training_table

    uri = "file://" + str(tmp_path_factory.mktemp("table") / "train.parquet")
    write_training_table(training_table, uri)
    return uri


def small_config(**overrides: Any) -> Any:
    """A fast configuration for tests (small MLP, few epochs, one thread, no export)."""
    from mlops_kit.training import parse_train_config

    base: dict[str, Any] = {
        "model": {"hidden_sizes": [32, 16], "dropout": 0.1},
        "optimizer": {"lr": 3e-3},
        "epochs": 4,
        "batch_size": 256,
        "patience": None,
        "seed": 0,
        "device": "cpu",
        "num_threads": 1,
        "export": {"enabled": False},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return parse_train_config(base)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float | None = None) -> Any:
    """``python -m mlops_kit.training ARGS`` in a subprocess (one torch thread)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mlops_kit.training", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=REPO,
        timeout=timeout,
    )
