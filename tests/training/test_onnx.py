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
from mlops_kit.model.predictor import onnx_session  # noqa: E402
from mlops_kit.training import ParityError, Preprocessor  # noqa: E402
from mlops_kit.training.onnx_export import OPSET, check_parity, export_onnx  # noqa: E402
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


def _offset_output_bias(graph: bytes, delta: float) -> tuple[bytes, float]:
    """The graph with ``delta`` added to the output bias, and the offset float32 really made."""
    proto = onnx.load_from_string(graph)
    bias = next(t for t in proto.graph.initializer if len(t.dims) == 1 and t.dims[0] == 1)
    before = onnx.numpy_helper.to_array(bias).copy()
    after = (before + np.float32(delta)).astype(np.float32)
    bias.CopyFrom(onnx.numpy_helper.from_array(after, bias.name))
    return proto.SerializeToString(), float(after[0]) - float(before[0])


def test_the_tolerance_is_the_boundary(bundle: str) -> None:
    # the reference is offset by a known amount, so a too-strict tolerance always exists,
    # whether or not ONNX Runtime matches torch bit for bit on the plain graph
    from mlops_kit.training.model import load_model

    model = load_model(f"{bundle}/model.pt")
    pre = Preprocessor.load(f"{bundle}/preprocess.json")
    x = pre.transform(storage.read_parquet(f"{bundle}/holdout.parquet"))
    graph, offset = _offset_output_bias(export_onnx(model, pre, exporter="torchscript"), 1e-4)
    assert offset > 0
    report = check_parity(model, graph, x, atol=2 * offset)
    assert report.passed and report.max_abs_diff == pytest.approx(offset, rel=0.05)
    assert report.where[0] == "logit"
    with pytest.raises(ParityError, match="max abs diff") as info:
        check_parity(model, graph, x, atol=offset / 2)
    assert info.value.max_abs_diff == report.max_abs_diff
    assert f"atol={offset / 2:g}" in str(info.value)


def _tail_bundle(bundle: str, root: Path) -> str:
    """A copy of ``bundle`` whose output bias puts every held-out logit at -25 or below.

    Down there torch keeps sigmoid's float32 tail (about 1e-11 at the top row) while ONNX
    Runtime's CPU Sigmoid clamps its input to [-18, 18] and returns 0, so the outputs differ
    and a tolerance below the difference fails the gate, whether or not the two engines
    agree on the logits.
    """
    from mlops_kit.training.model import load_model, save_model

    model = load_model(f"{bundle}/model.pt")
    pre = Preprocessor.load(f"{bundle}/preprocess.json")
    x = pre.transform(storage.read_parquet(f"{bundle}/holdout.parquet"))
    with torch.inference_mode():
        top = float(model(torch.from_numpy(x)).max())
        model.net[-1].bias -= top + 25.0
    out = "file://" + str(root / "tail")
    for name in ("preprocess.json", "config.json", "holdout.parquet"):
        storage.write_bytes(f"{out}/{name}", storage.read_bytes(f"{bundle}/{name}"))
    save_model(model, f"{out}/model.pt")
    return out


def test_too_strict_tolerance_fails_and_cli_exits_3(bundle: str, tmp_path: Path) -> None:
    from mlops_kit.training.model import load_model

    tail = _tail_bundle(bundle, tmp_path)
    model = load_model(f"{tail}/model.pt")
    pre = Preprocessor.load(f"{tail}/preprocess.json")
    x = pre.transform(storage.read_parquet(f"{tail}/holdout.parquet"))
    graph = export_onnx(model, pre, exporter="torchscript")
    report = check_parity(model, graph, x, atol=1e-3)
    assert report.max_abs_diff > 0, (
        "torch and ONNX Runtime agreed on sigmoid below -18: the premise of _tail_bundle no "
        "longer holds for this ONNX Runtime"
    )
    strict = f"{report.max_abs_diff / 2:.3e}"
    with pytest.raises(ParityError, match="max abs diff"):
        check_parity(model, graph, x, atol=float(strict))
    out = "file://" + str(tmp_path / "strict")
    proc = run_cli("export", "--model", tail, "--out", out, "--exporter", "torchscript",
                   "--atol", strict)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "ONNX_PARITY_FAILED" in proc.stderr and "worst at output" in proc.stderr
    assert not storage.exists(out + "/model.onnx")  # a failing graph is never published
    assert storage.read_json(out + "/parity.json")["passed"] is False
    ok = run_cli("export", "--model", bundle, "--out", out, "--exporter", "torchscript")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["passed"] and storage.exists(out + "/model.onnx")
