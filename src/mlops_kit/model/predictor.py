"""Load a model bundle and predict: the one way training, the registry and serving score.

A :class:`Predictor` owns the graph's input and output names and the preprocessing, so a
caller passes feature rows by name and gets probabilities back::

    from mlops_kit.model import load_predictor

    predictor = load_predictor("s3://models/device-failure/7")
    predictor.predict({"temperature_mean_1h": [61.2], ...})   # -> array([0.03])

ONNX Runtime runs with one intra-op thread by default (fastest per row for small models on
shared CPUs, see docs/benchmarks.md).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_kit import storage
from mlops_kit._lazy import require
from mlops_kit.errors import StorageError
from mlops_kit.model import bundle
from mlops_kit.model.errors import ModelError
from mlops_kit.model.preprocess import Preprocessor

INPUT_NAME = "features"
"""The graph's input: float32, shape (batch, n_features), in the preprocessor's order."""
OUTPUT_NAMES: tuple[str, str] = ("logit", "probability")
"""The graph's outputs, shape (batch, 1) each."""


def onnx_session(
    model: bytes | str,
    threads: int = 1,
    providers: list[str] | None = None,
    external_data: Sequence[str] = (),
) -> Any:
    """An ONNX Runtime session (``threads`` intra-op threads, sequential execution).

    Args:
        model: the serialised graph, or its URI. A local graph is opened where it lies, so
            ONNX Runtime finds external data files beside it; an ``s3://`` graph is read,
            with its ``external_data`` files first copied beside it into a temporary folder.
        threads: intra-op threads.
        providers: ONNX Runtime's execution providers (default: the CPU).
        external_data: file names of the graph's external data, in the graph's folder
            (see :func:`external_data_files`); only an ``s3://`` graph needs them named.
    """
    ort = require("onnxruntime", "ONNX inference")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    chosen = providers or ["CPUExecutionProvider"]
    if isinstance(model, bytes):
        return ort.InferenceSession(model, opts, providers=chosen)
    if not storage.is_s3(model):
        path = storage.resolve(model)[1]
        if not os.path.isfile(path):
            raise StorageError(f"'{model}' does not exist")
        return ort.InferenceSession(path, opts, providers=chosen)
    if not external_data:
        return ort.InferenceSession(storage.read_bytes(model), opts, providers=chosen)
    folder, name = model.rstrip("/").rsplit("/", 1)
    with tempfile.TemporaryDirectory(prefix="mlk-graph-") as tmp:
        for file in (name, *external_data):
            with open(os.path.join(tmp, file), "wb") as fh:
                fh.write(storage.read_bytes(storage.join(folder, file)))
        return ort.InferenceSession(os.path.join(tmp, name), opts, providers=chosen)


def external_data_files(model: bytes) -> list[str]:
    """The file names of the external data a serialised graph refers to (sorted; none when
    its weights are inside it). Needs the ``onnx`` package.

    Raises:
        ModelError: ``model`` is not an ONNX graph.
    """
    onnx = require("onnx", "reading an ONNX graph's external data")
    from onnx.external_data_helper import uses_external_data

    try:
        proto = onnx.load_from_string(model)
    except Exception as exc:
        raise ModelError(f"not an ONNX graph ({type(exc).__name__}: {exc})") from None
    names = set()
    for tensor in _tensors(proto.graph):
        if uses_external_data(tensor):
            names |= {e.value for e in tensor.external_data if e.key == "location"}
    return sorted(names)


def _tensors(graph: Any) -> Any:
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for sub in (*([attr.g] if attr.HasField("g") else []), *attr.graphs):
                yield from _tensors(sub)


@dataclass
class Predictor:
    """An ONNX graph with its preprocessing."""

    session: Any
    preprocessor: Preprocessor

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.preprocessor.feature_names

    def features(self, rows: Any) -> np.ndarray:
        """The model input of ``rows`` (a table, a mapping of columns or a matrix)."""
        return self.preprocessor.transform(rows)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every output of the graph for model inputs ``x``, by name, one value per row."""
        outputs = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
        return {
            name: np.asarray(out, dtype=np.float64).ravel()
            for name, out in zip(OUTPUT_NAMES, outputs, strict=True)
        }

    def predict(self, rows: Any) -> np.ndarray:
        """Probabilities for ``rows``, one per row."""
        return self.run(self.features(rows))["probability"]


def load_predictor(source: str, threads: int = 1) -> Predictor:
    """A predictor from a bundle folder (``model.onnx`` and ``preprocess.json``).

    Raises:
        ModelError: naming the files the bundle lacks.
    """
    lacking = bundle.missing(source)
    if lacking:
        raise ModelError(
            f"'{source}' is not a servable model bundle: it has no {', '.join(lacking)} "
            "(export it with 'mlops-kit train export --model BUNDLE')"
        )
    return Predictor(
        onnx_session(bundle.path(source, bundle.ONNX_MODEL), threads),
        Preprocessor.load(bundle.path(source, bundle.PREPROCESS)),
    )
