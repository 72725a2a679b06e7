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

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_kit import storage
from mlops_kit._lazy import require
from mlops_kit.model import bundle
from mlops_kit.model.errors import ModelError
from mlops_kit.model.preprocess import Preprocessor

INPUT_NAME = "features"
"""The graph's input: float32, shape (batch, n_features), in the preprocessor's order."""
OUTPUT_NAMES: tuple[str, str] = ("logit", "probability")
"""The graph's outputs, shape (batch, 1) each."""


def onnx_session(model: bytes | str, threads: int = 1, providers: list[str] | None = None) -> Any:
    """An ONNX Runtime session (``threads`` intra-op threads, sequential execution)."""
    ort = require("onnxruntime", "ONNX inference")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    data = model if isinstance(model, bytes) else storage.read_bytes(model)
    return ort.InferenceSession(data, opts, providers=providers or ["CPUExecutionProvider"])


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
