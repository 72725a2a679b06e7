"""The model bundle and its predictor, on a graph built by hand (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlops_kit.model import (
    INPUT_NAME,
    OUTPUT_NAMES,
    ModelError,
    Preprocessor,
    bundle,
    load_predictor,
)

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

NAMES = ("a", "b", "c")
W = np.array([[0.5], [-1.0], [2.0]], dtype=np.float32)
B = np.array([0.25], dtype=np.float32)


def _graph() -> bytes:
    """logit = x @ W + b, probability = sigmoid(logit), with the bundle's names."""
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", len(NAMES)])
    logit = helper.make_tensor_value_info(OUTPUT_NAMES[0], TensorProto.FLOAT, ["batch", 1])
    prob = helper.make_tensor_value_info(OUTPUT_NAMES[1], TensorProto.FLOAT, ["batch", 1])
    nodes = [
        helper.make_node("MatMul", [INPUT_NAME, "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], [OUTPUT_NAMES[0]]),
        helper.make_node("Sigmoid", [OUTPUT_NAMES[0]], [OUTPUT_NAMES[1]]),
    ]
    graph = helper.make_graph(
        nodes,
        "bundle-test",
        [x],
        [logit, prob],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    pre = Preprocessor(NAMES, (1.0, 2.0, 3.0), (2.0, 1.0, 0.5))
    pre.save(str(tmp_path / bundle.PREPROCESS))
    (tmp_path / bundle.ONNX_MODEL).write_bytes(_graph())
    return tmp_path


def test_predict_applies_the_preprocessing_then_the_graph(folder: Path) -> None:
    predictor = load_predictor(str(folder))
    rows = {"c": [3.0, 4.0], "a": [1.0, 5.0], "b": [2.0, np.nan]}  # any column order
    x = (np.array([[1.0, 2.0, 3.0], [5.0, 2.0, 4.0]]) - [1.0, 2.0, 3.0]) / [2.0, 1.0, 0.5]
    want = 1.0 / (1.0 + np.exp(-(x @ W.astype(np.float64) + B)))
    np.testing.assert_allclose(predictor.predict(rows), want.ravel(), rtol=1e-6)
    out = predictor.run(predictor.features(rows))
    assert set(out) == set(OUTPUT_NAMES)
    np.testing.assert_allclose(out["logit"], (x @ W + B).ravel(), rtol=1e-6)
    assert predictor.feature_names == NAMES


def test_a_bundle_without_its_graph_is_refused_by_name(folder: Path) -> None:
    (folder / bundle.ONNX_MODEL).unlink()
    with pytest.raises(ModelError, match=r"no model\.onnx"):
        load_predictor(str(folder))
    with pytest.raises(ModelError, match=r"\['b'\]"):
        Preprocessor.load(str(folder / bundle.PREPROCESS)).transform({"a": [1.0], "c": [1.0]})


def test_bundle_layout(tmp_path: Path, folder: Path) -> None:
    assert bundle.missing(str(folder)) == []
    assert bundle.copy(str(folder), str(tmp_path / "copy")) == [
        bundle.PREPROCESS,
        bundle.ONNX_MODEL,
    ]
    assert bundle.missing(str(tmp_path / "copy")) == []
    with pytest.raises(ValueError, match="not a bundle file"):
        bundle.path(str(folder), "weights.bin")
