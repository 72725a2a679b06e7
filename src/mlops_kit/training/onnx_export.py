"""ONNX export with a parity gate.

:func:`export_onnx` writes the model as an ONNX graph with a dynamic batch axis and the
pinned opset :data:`OPSET`: input ``features`` (float32, ``(batch, n_features)``, already
standardised by the :class:`~mlops_kit.model.preprocess.Preprocessor`), outputs
``logit`` and ``probability`` (float32, ``(batch, 1)``). The graph's metadata carries the
feature order and the preprocessing statistics, so the file alone is enough to serve.

:func:`check_parity` runs the graph in ONNX Runtime (one thread, as serving does) on a
held-out batch and compares every output element with PyTorch. Above the tolerance it
raises :class:`~mlops_kit.training.errors.ParityError` with the largest absolute and
relative differences and the ``(output, row, column)`` where the worst one is.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mlops_kit import storage
from mlops_kit._lazy import require
from mlops_kit._version import __version__
from mlops_kit.model.predictor import INPUT_NAME, OUTPUT_NAMES, onnx_session
from mlops_kit.model.preprocess import Preprocessor
from mlops_kit.training.config import ExportConfig
from mlops_kit.training.errors import ParityError, TrainingError
from mlops_kit.training.model import ScoringModel

torch = require("torch", "the ONNX export")

OPSET = 18
"""ONNX opset every export uses unless told otherwise (pinned, so graphs do not drift)."""

DEFAULT_ATOL = 1e-5
"""Default absolute tolerance of the parity gate."""


@dataclass(frozen=True)
class ParityReport:
    """Figures of one parity check.

    Attributes:
        passed: every element within ``atol + rtol * |torch|``.
        max_abs_diff: largest ``|onnx - torch|`` over all outputs.
        max_rel_diff: largest ``|onnx - torch| / |torch|`` (elements with ``torch == 0``
            count with a denominator of the smallest positive float32).
        where: ``(output, row, column)`` of the element with the largest excess over the
            tolerance (of the largest absolute difference when all pass).
        atol: absolute tolerance.
        rtol: relative tolerance.
        rows: rows compared.
        opset: opset of the graph.
        providers: ONNX Runtime execution providers used.
    """

    passed: bool
    max_abs_diff: float
    max_rel_diff: float
    where: tuple[str, int, int]
    atol: float
    rtol: float
    rows: int
    opset: int
    providers: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["where"] = {"output": self.where[0], "row": self.where[1], "column": self.where[2]}
        out["providers"] = list(self.providers)
        return out


def export_onnx(
    model: Any,
    preprocessor: Preprocessor,
    uri: str | None = None,
    *,
    opset: int | None = None,
    exporter: str = "dynamo",
) -> bytes:
    """Export ``model`` (a :class:`~mlops_kit.training.model.FailureMLP`) to ONNX bytes.

    Args:
        model: the trained model (any device; exported from a CPU copy in eval mode).
        preprocessor: its statistics, embedded in the graph metadata.
        uri: also write the graph there (atomically) when given.
        opset: ONNX opset; :data:`OPSET` by default.
        exporter: ``dynamo`` (``torch.export``, needs onnxscript) or ``torchscript``.

    Returns:
        The serialised ``ModelProto``.
    """
    onnx = require("onnx", "the ONNX export")
    opset = opset or OPSET
    if model.n_features != preprocessor.n_features:
        raise TrainingError(
            f"model takes {model.n_features} features, preprocessor has {preprocessor.n_features}"
        )
    cpu = type(model)(model.n_features, model.config)
    cpu.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    scoring = ScoringModel(cpu.eval()).eval()
    example = torch.zeros(4, model.n_features, dtype=torch.float32)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                require("onnxscript", "the dynamo ONNX exporter")
                program = torch.onnx.export(
                    scoring,
                    (example,),
                    dynamo=True,
                    opset_version=opset,
                    input_names=[INPUT_NAME],
                    output_names=list(OUTPUT_NAMES),
                    dynamic_shapes={INPUT_NAME: {0: torch.export.Dim("batch")}},
                    optimize=True,
                    verbose=False,
                )
                proto = program.model_proto
            elif exporter == "torchscript":
                buf = io.BytesIO()
                torch.onnx.export(
                    scoring,
                    (example,),
                    buf,
                    dynamo=False,
                    opset_version=opset,
                    input_names=[INPUT_NAME],
                    output_names=list(OUTPUT_NAMES),
                    dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)},
                )
                proto = onnx.load_from_string(buf.getvalue())
            else:
                raise TrainingError(f"unknown exporter '{exporter}': use dynamo or torchscript")
    finally:
        quiet.setLevel(level)
    del proto.metadata_props[:]
    meta = {
        "mlops_kit.version": __version__,
        "mlops_kit.feature_names": json.dumps(list(preprocessor.feature_names)),
        "mlops_kit.preprocess": preprocessor.to_json(),
        "mlops_kit.opset": str(opset),
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    data: bytes = proto.SerializeToString()
    if uri is not None:
        storage.write_bytes(uri, data)
    return data


def check_parity(
    model: Any,
    onnx_model: bytes | str,
    features: np.ndarray,
    *,
    atol: float = DEFAULT_ATOL,
    rtol: float = 0.0,
) -> ParityReport:
    """Compare ONNX Runtime with PyTorch on ``features`` (already preprocessed).

    Args:
        model: the PyTorch model (a FailureMLP).
        onnx_model: the serialised graph or its storage URI.
        features: float32 ``(rows, n_features)`` held-out inputs.
        atol: absolute tolerance.
        rtol: relative tolerance (added: an element passes when
            ``|onnx - torch| <= atol + rtol * |torch|``).

    Raises:
        ParityError: an element is outside the tolerance (message: max abs / rel
            difference, the worst ``(output, row, column)`` and both values there).
    """
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise TrainingError(f"parity needs a non-empty (rows, features) batch; got {x.shape}")
    session = onnx_session(onnx_model)
    got = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
    cpu = type(model)(model.n_features, model.config)
    cpu.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    with torch.inference_mode():
        ref = [t.numpy() for t in ScoringModel(cpu.eval())(torch.from_numpy(x))]
    max_abs, max_rel = 0.0, 0.0
    worst: tuple[str, int, int] = (OUTPUT_NAMES[0], 0, 0)
    worst_excess = -np.inf
    worst_values = (0.0, 0.0)
    tiny = float(np.finfo(np.float32).tiny)
    for name, o, r in zip(OUTPUT_NAMES, got, ref, strict=True):
        o64, r64 = o.astype(np.float64), r.astype(np.float64)
        if o64.shape != r64.shape:
            raise TrainingError(f"ONNX output '{name}' has shape {o.shape}, torch {r.shape}")
        diff = np.abs(o64 - r64)
        diff[np.isnan(o64) != np.isnan(r64)] = np.inf
        rel = diff / np.maximum(np.abs(r64), tiny)
        excess = diff - (atol + rtol * np.abs(r64))
        flat = int(np.nanargmax(excess))
        if excess.flat[flat] > worst_excess:
            worst_excess = float(excess.flat[flat])
            row, col = np.unravel_index(flat, excess.shape)
            worst = (name, int(row), int(col))
            worst_values = (float(o64.flat[flat]), float(r64.flat[flat]))
        max_abs = max(max_abs, float(np.nanmax(diff)))
        max_rel = max(max_rel, float(np.nanmax(rel)))
    proto_opset = _opset_of(onnx_model)
    report = ParityReport(
        passed=worst_excess <= 0.0,
        max_abs_diff=max_abs,
        max_rel_diff=max_rel,
        where=worst,
        atol=atol,
        rtol=rtol,
        rows=int(x.shape[0]),
        opset=proto_opset,
        providers=tuple(session.get_providers()),
    )
    if not report.passed:
        out_name, bad_row, bad_col = worst
        raise ParityError(
            f"ONNX parity failed: max abs diff {max_abs:.3e}, max rel diff {max_rel:.3e} "
            f"(tolerance atol={atol:g}, rtol={rtol:g}); worst at output '{out_name}' row {bad_row} "
            f"column {bad_col}: onnx={worst_values[0]!r} torch={worst_values[1]!r} "
            f"({x.shape[0]} held-out rows)",
            max_abs_diff=max_abs,
            max_rel_diff=max_rel,
            where=worst,
            atol=atol,
            rtol=rtol,
            rows=int(x.shape[0]),
            opset=proto_opset,
        )
    return report


def _opset_of(onnx_model: bytes | str) -> int:
    onnx = require("onnx", "the ONNX export")
    data = onnx_model if isinstance(onnx_model, bytes) else storage.read_bytes(onnx_model)
    proto = onnx.load_from_string(data)
    return max(
        (int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0
    )


def export_and_verify(
    model: Any,
    preprocessor: Preprocessor,
    holdout: Any,
    out_uri: str,
    config: ExportConfig | None = None,
) -> ParityReport:
    """Export, gate on parity, then write ``model.onnx`` and ``parity.json`` under ``out_uri``.

    Args:
        model: the trained model.
        preprocessor: its statistics (also used to prepare ``holdout``).
        holdout: held-out rows (a table with the feature columns, or a preprocessed array).
        out_uri: the model bundle location.
        config: opset, exporter and tolerances; defaults when None.

    Raises:
        ParityError: the graph is outside the tolerance; ``parity.json`` is written with
            ``passed: false`` and ``model.onnx`` is not written.
    """
    cfg = config or ExportConfig()
    x = holdout if isinstance(holdout, np.ndarray) else preprocessor.transform(holdout)
    data = export_onnx(model, preprocessor, opset=cfg.opset, exporter=cfg.exporter)
    parity_uri = storage.join(out_uri, "parity.json")
    try:
        report = check_parity(model, data, x, atol=cfg.atol, rtol=cfg.rtol)
    except ParityError as exc:
        storage.write_json(parity_uri, {"passed": False, **_jsonable(exc.details)})
        raise
    storage.write_bytes(storage.join(out_uri, "model.onnx"), data)
    storage.write_json(parity_uri, report.to_dict())
    return report


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    out = dict(details)
    where = out.get("where")
    if isinstance(where, tuple):
        out["where"] = {"output": where[0], "row": where[1], "column": where[2]}
    return out


__all__ = [
    "DEFAULT_ATOL",
    "OPSET",
    "ParityError",
    "ParityReport",
    "check_parity",
    "export_and_verify",
    "export_onnx",
]
