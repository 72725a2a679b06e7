"""The ``export_onnx`` component's step: ONNX export behind the parity gate, logged to MLflow."""

from __future__ import annotations

import os
from typing import Any

from mlops_kit import storage
from mlops_kit.components.runtime import ArtifactLike, MetricsLike, settings_from_json
from mlops_kit.components.runtime.training.artifacts import (
    LINEAGE_FILE,
    TRACKING_FILE,
    read_optional,
    tracking_target,
    training_data_uri,
)


def _holdout(model_dir: str, validation: ArtifactLike | None, config: Any, rows: int) -> Any:
    from mlops_kit.training.data import read_training_table, time_split

    if (
        validation is not None
        and getattr(validation, "path", "")
        and os.path.exists(validation.path)
    ):
        table = read_training_table(training_data_uri(validation), config.data)
        return time_split(table, config.data).validation.slice(0, rows)
    return storage.read_parquet(os.path.join(model_dir, "holdout.parquet")).slice(0, rows)


def export_onnx_step(
    model: ArtifactLike,
    onnx_model: ArtifactLike,
    metrics: MetricsLike,
    validation: ArtifactLike | None = None,
    atol: float = 1e-5,
    rtol: float = 0.0,
    opset: int = 0,
    exporter: str = "dynamo",
    parity_rows: int = 256,
    experiment: str = "",
    tracking_uri: str = "",
    track: bool = True,
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Export a model bundle to ONNX behind the parity gate, and log it to MLflow.

    Args:
        model: input; the model bundle of ``train`` or a launch step.
        onnx_model: output; folder with ``model.onnx``, ``parity.json`` and
            ``preprocess.json``; metadata: the parity figures, opset, sha256, MLflow run.
        metrics: output; ``parity_passed``, ``max_abs_diff``, ``max_rel_diff``, ``rows``.
        validation: optional input; a training set or table whose time-split validation
            rows feed the gate (default: the bundle's ``holdout.parquet``).
        atol: absolute tolerance of the gate.
        rtol: relative tolerance of the gate.
        opset: ONNX opset (0: the pinned one).
        exporter: ``dynamo`` or ``torchscript``.
        parity_rows: held-out rows compared.
        experiment: MLflow experiment of a new run ("": default).
        tracking_uri: MLflow tracking URI ("": ``MLFLOW_TRACKING_URI`` or the local store).
        track: log the ONNX model and parity to the bundle's MLflow run (a new run when
            the bundle was not tracked).
        settings_json: settings overrides (see ``settings_from_json``).

    Raises:
        ParityError: ONNX Runtime disagrees with PyTorch beyond the tolerance; the task
            fails with the figures and where the worst element is.
    """
    import hashlib

    from mlops_kit.model.preprocess import Preprocessor
    from mlops_kit.training.config import ExportConfig, parse_train_config
    from mlops_kit.training.errors import ParityError
    from mlops_kit.training.model import load_model
    from mlops_kit.training.onnx_export import export_and_verify

    settings = settings_from_json(settings_json)
    bundle = model.path
    config = parse_train_config(read_optional(bundle, "config.json") or {}, " in config.json")
    export = ExportConfig(
        atol=atol,
        rtol=rtol,
        opset=opset or None,
        exporter=exporter or "dynamo",  # type: ignore[arg-type]
        parity_rows=parity_rows,
    )
    torch_model = load_model(os.path.join(bundle, "model.pt"))
    pre = Preprocessor.load(os.path.join(bundle, "preprocess.json"))
    holdout = _holdout(bundle, validation, config, export.parity_rows)
    out = onnx_model.path
    os.makedirs(out, exist_ok=True)
    tracking = read_optional(bundle, TRACKING_FILE) or {}
    try:
        report = export_and_verify(torch_model, pre, holdout, out, export).to_dict()
    except ParityError as exc:
        failed = storage.read_json(os.path.join(out, "parity.json"))
        metrics.log_metric("parity_passed", 0)
        metrics.log_metric("max_abs_diff", float(exc.max_abs_diff))
        metrics.log_metric("max_rel_diff", float(exc.max_rel_diff))
        metrics.metadata.update({"parity": failed, "error": str(exc)})
        raise
    pre.save(os.path.join(out, "preprocess.json"))
    data = storage.read_bytes(os.path.join(out, "model.onnx"))
    metrics.log_metric("parity_passed", 1)
    metrics.log_metric("max_abs_diff", float(report["max_abs_diff"]))
    metrics.log_metric("max_rel_diff", float(report["max_rel_diff"]))
    metrics.log_metric("rows", int(report["rows"]))
    meta: dict[str, Any] = {
        "parity_passed": True,
        "max_abs_diff": report["max_abs_diff"],
        "max_rel_diff": report["max_rel_diff"],
        "where": report["where"],
        "atol": report["atol"],
        "rtol": report["rtol"],
        "rows": report["rows"],
        "opset": report["opset"],
        "providers": report["providers"],
        "exporter": export.exporter,
        "sha256": hashlib.sha256(data).hexdigest(),
        "feature_names": list(pre.feature_names),
    }
    if track:
        from mlops_kit.tracking.lineage import Lineage
        from mlops_kit.tracking.runs import log_training_run, model_uri

        lineage_data = read_optional(bundle, LINEAGE_FILE)
        lineage = Lineage.from_dict(lineage_data) if lineage_data else None
        target = tracking_target(
            settings, tracking_uri, experiment or tracking.get("experiment", "")
        )
        run_id = log_training_run(
            None,
            bundle,
            report,
            lineage,
            run_id=tracking.get("run_id") or None,
            target=target,
            onnx_uri=os.path.join(out, "model.onnx"),
        )
        meta.update({"mlflow_run_id": run_id, "mlflow_model_uri": model_uri(run_id)})
    onnx_model.metadata.update(meta)
    metrics.metadata.update(meta)
    return meta


__all__ = ["export_onnx_step"]
