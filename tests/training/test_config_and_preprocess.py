"""Configs name the bad field; preprocessing statistics round-trip and transform identically."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_kit.errors import ConfigError
from mlops_kit.model import ModelError
from mlops_kit.training import Preprocessor, load_train_config, parse_train_config
from tests.training.conftest import REPO, run_cli


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"model": {"dropout": 1.5}}, "model.dropout"),
        ({"model": {"hidden_sizes": [16, 0]}}, "model.hidden_sizes"),
        ({"optimizer": {"lrr": 0.1}}, "optimizer.lrr"),
        ({"device": "tpu"}, "device"),
        ({"precision": "fp16"}, "precision"),
        ({"data": {"validation_fraction": 1.0}}, "data.validation_fraction"),
        ({"data": {"feature_columns": ["a", "a"]}}, "data.feature_columns"),
        ({"pos_weight": -1.0}, "pos_weight"),
    ],
)
def test_bad_config_names_the_field(data: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_train_config(data)
    assert f"  {field}:" in str(info.value)


def test_yaml_config_and_overrides(tmp_path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("model:\n  hidden_sizes: [8]\nepochs: 7\nseed: 3\n")
    cfg = load_train_config(path, epochs=2)
    assert cfg.model.hidden_sizes == [8] and cfg.epochs == 2 and cfg.seed == 3
    assert cfg.data.feature_columns[0] == "temperature_mean_1h"
    assert len(cfg.data.feature_columns) == 36
    path.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_train_config(path)


def test_cli_bad_config_exits_2_naming_the_field(tmp_path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("optimizer:\n  lr: -1\n")
    proc = run_cli("train", "--data", str(tmp_path / "x.parquet"), "--out", str(tmp_path / "o"),
                   "--config", str(path), "--set", "model.dropout=0.2")  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "optimizer.lr" in proc.stderr and "CONFIG_INVALID" in proc.stderr


def test_cli_help_lists_the_commands() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    for word in ("train", "export", "build-table", "torchrun", "exit status"):
        assert word in proc.stdout
    proc = run_cli("train", "--help")
    assert "--data" in proc.stdout and "--config" in proc.stdout and "--no-resume" in proc.stdout


def test_importing_the_configs_does_not_import_torch() -> None:
    code = (
        "import sys, mlops_kit, mlops_kit.training\n"
        "from mlops_kit.training import TrainConfig, Preprocessor, build_training_table\n"
        "TrainConfig()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'onnx' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr


def test_trainer_without_torch_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "from mlops_kit.errors import MissingExtraError\n"
        "try:\n"
        "    import mlops_kit.training.trainer\n"
        "except MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert "pip install 'mlops-kit[torch]'" in proc.stdout, proc.stdout + proc.stderr


# -- preprocessing -------------------------------------------------------------------------

NAMES = ("a", "b", "c")


def _table() -> pa.Table:
    return pa.table(
        {
            "b": [1.0, 2.0, None, 4.0],
            "a": [10.0, 10.0, 10.0, 10.0],
            "c": [0.5, -1.5, 2.0, float("nan")],
            "other": ["x", "y", "z", "w"],
        }
    )


def test_fit_and_transform_every_input_kind_identically() -> None:
    table = _table()
    pre = Preprocessor.fit(table, NAMES)
    assert pre.means[0] == 10.0 and pre.scales[0] == 1.0  # constant column: scale 1
    assert pre.means[1] == pytest.approx(7 / 3)
    assert pre.means[2] == pytest.approx(1 / 3)
    ref = pre.transform(table)
    assert ref.dtype == np.float32 and ref.shape == (4, 3) and ref.flags.c_contiguous
    assert ref[2, 1] == 0.0 and ref[3, 2] == 0.0  # missing values become the mean
    df = pl.from_arrow(table)
    raw = np.array([[10.0, 1.0, 0.5], [10.0, 2.0, -1.5], [10.0, np.nan, 2.0], [10.0, 4.0, np.nan]])
    for other in (
        df,
        df.to_pandas(),
        {"a": [10.0] * 4, "b": [1.0, 2.0, None, 4.0], "c": [0.5, -1.5, 2.0, float("nan")]},
        raw,
        raw.tolist(),
    ):
        np.testing.assert_array_equal(pre.transform(other), ref)
    one = pre.transform({"a": 10.0, "b": 2.0, "c": -1.5})
    np.testing.assert_array_equal(one, ref[1:2])


def test_transform_errors_name_the_problem() -> None:
    pre = Preprocessor.fit(_table(), NAMES)
    with pytest.raises(ModelError, match=r"\['c'\]"):
        pre.transform({"a": [1.0], "b": [2.0]})
    with pytest.raises(ModelError, match=r"shape \(rows, 3\)"):
        pre.transform(np.zeros((2, 4)))


def test_save_and_load_round_trip(tmp_path) -> None:
    pre = Preprocessor.fit(_table(), NAMES)
    uri = "file://" + str(tmp_path / "m" / "preprocess.json")
    pre.save(uri)
    back = Preprocessor.load(uri)
    assert back == pre
    np.testing.assert_array_equal(back.transform(_table()), pre.transform(_table()))
    bad = pre.to_dict() | {"format_version": 99}
    with pytest.raises(ModelError, match="format_version"):
        Preprocessor.from_dict(bad)


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(finite, finite, finite), min_size=1, max_size=30))
def test_json_round_trip_is_exact(rows: list[tuple[float, float, float]]) -> None:
    x = np.array(rows)
    pre = Preprocessor.fit(x, NAMES)
    back = Preprocessor.from_json(pre.to_json())
    assert back == pre  # bit-for-bit statistics
    np.testing.assert_array_equal(back.transform(x), pre.transform(x))
    assert all(math.isfinite(s) and s > 0 for s in back.scales)
