"""ONNX export: dynamic batch, pinned opset, the parity gate and its failure messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from mlops_kit import storage  # noqa: E402
from mlops_kit.training import ParityError, Preprocessor  # noqa: E402
from mlops_kit.training.onnx_export import (  # noqa: E402
    OPSET,
    check_parity,
    export_onnx,
    onnx_session,
)
from mlops_kit.training.trainer import train  # noqa: E402
from tests.training.conftest import run_cli, small_config  # noqa: E402


@pytest.fixture(scope="module")
def bundle(training_table: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A bundle trained on the demo lake and exported with the default (dynamo) exporter."""
    out = "file://" + str(tmp_path_factory.mktemp("bundle") / "model")
    cfg = small_config(epochs=3, export={"enabled": True})
    train(cfg, training_table, out)
    return out


def test_export_passes_parity_and_records_it(bundle: str) -> None:
    for name in ("model.pt", "preprocess.json", "metrics.json", "config.json", "holdout.parquet",
                 "model.onnx", "parity.json"):  # fmt: skip
        assert storage.exists(f"{bundle}/{name}"), name
    parity = storage.read_json(f"{bundle}/parity.json")
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-5 and parity["atol"] == 1e-5
    assert parity["rows"] == 256 and parity["opset"] == OPSET
    assert set(parity["where"]) == {"output", "row", "column"}
    assert storage.read_json(f"{bundle}/metrics.json")["parity"]["passed"]


def test_graph_has_dynamic_batch_and_serves_with_the_saved_stats(bundle: str) -> None:
    proto = onnx.load_from_string(storage.read_bytes(f"{bundle}/model.onnx"))
    dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param and not dim.dim_value
    assert [o.name for o in proto.graph.output] == ["logit", "probability"]
    assert any(o.version == OPSET for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    pre = Preprocessor.load(f"{bundle}/preprocess.json")
    assert Preprocessor.from_json(meta["mlops_kit.preprocess"]) == pre
    assert json.loads(meta["mlops_kit.feature_names"]) == list(pre.feature_names)
    holdout = storage.read_parquet(f"{bundle}/holdout.parquet")
    sess = onnx_session(f"{bundle}/model.onnx")
    for n in (1, 7, 256):
        (prob,) = sess.run(["probability"], {"features": pre.transform(holdout.slice(0, n))})
        assert prob.shape == (n, 1) and np.all((prob >= 0) & (prob <= 1))


def test_perturbed_graph_fails_naming_the_difference(bundle: str) -> None:
    from mlops_kit.training.model import load_model

    model = load_model(f"{bundle}/model.pt")
    pre = Preprocessor.load(f"{bundle}/preprocess.json")
    x = pre.transform(storage.read_parquet(f"{bundle}/holdout.parquet"))
    proto = onnx.load_from_string(storage.read_bytes(f"{bundle}/model.onnx"))
    biases = [t for t in proto.graph.initializer if len(t.dims) == 1 and t.dims[0] == 1]
    assert biases, "the output bias should be an initializer"
    arr = onnx.numpy_helper.to_array(biases[0]).copy() + 0.01
    biases[0].CopyFrom(onnx.numpy_helper.from_array(arr, biases[0].name))
    with pytest.raises(ParityError) as info:
        check_parity(model, proto.SerializeToString(), x)
    err = info.value
    assert err.code == "ONNX_PARITY_FAILED"
    assert err.max_abs_diff == pytest.approx(0.01, rel=1e-2)
    assert err.where[0] == "logit" and 0 <= err.where[1] < x.shape[0] and err.where[2] == 0
    msg = str(err)
    assert "max abs diff 1.000e-02" in msg and "max rel diff" in msg
    assert "output 'logit' row" in msg and "atol=1e-05" in msg


def test_too_strict_tolerance_fails_and_cli_exits_3(bundle: str, tmp_path: Path) -> None:
    from mlops_kit.training.model import load_model

    model = load_model(f"{bundle}/model.pt")
    pre = Preprocessor.load(f"{bundle}/preprocess.json")
    x = pre.transform(storage.read_parquet(f"{bundle}/holdout.parquet"))
    graph = export_onnx(model, pre, exporter="torchscript")
    report = check_parity(model, graph, x)
    if report.max_abs_diff == 0.0:
        pytest.skip("ONNX Runtime matched torch bit for bit; no tolerance is too strict")
    with pytest.raises(ParityError, match="max abs diff"):
        check_parity(model, graph, x, atol=report.max_abs_diff / 2)
    out = "file://" + str(tmp_path / "strict")
    proc = run_cli("export", "--model", bundle, "--out", out, "--exporter", "torchscript",
                   "--atol", f"{report.max_abs_diff / 2:.3e}")  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "ONNX_PARITY_FAILED" in proc.stderr and "worst at output" in proc.stderr
    assert not storage.exists(out + "/model.onnx")  # a failing graph is never published
    assert storage.read_json(out + "/parity.json")["passed"] is False
    ok = run_cli("export", "--model", bundle, "--out", out, "--exporter", "torchscript")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["passed"] and storage.exists(out + "/model.onnx")
