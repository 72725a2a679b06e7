"""The MLflow side of tracking: runs, per-epoch metrics, the model, its lineage.

Two entry points:

* :class:`MlflowCallback` plugs into the trainer's ``callbacks`` hook. On the first epoch
  it opens a run and logs the flattened :class:`~mlops_kit.training.TrainConfig` as
  params; every epoch it logs the epoch's metrics with ``step=epoch``;
  :meth:`MlflowCallback.finish` logs the best and final metrics.
* :func:`log_training_run` logs what a finished run produced: the ONNX graph as an MLflow
  model (signature and input example), the torch weights, the preprocessing statistics,
  the parity figures and the lineage tags.

Runs are written through :class:`mlflow.MlflowClient` bound to one tracking URI, so the
process-wide MLflow state (active run, tracking URI) is left as it was.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mlops_kit import storage
from mlops_kit._lazy import require
from mlops_kit.tracking.errors import TrackingError
from mlops_kit.tracking.lineage import Lineage
from mlops_kit.tracking.target import TRACKING_URI_ENV, TrackingTarget, tracking_target_of

mlflow = require("mlflow", "experiment tracking")
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

log = logging.getLogger("mlops_kit.tracking")

MODEL_NAME = "model"
"""Name (artifact path) of the ONNX model within a run."""
TORCH_DIR = "torch"
PREPROCESS_DIR = "preprocessing"
BUNDLE_DIR = "bundle"
INPUT_EXAMPLE_ROWS = 5

_MAX_PARAM_LEN = 6000
_BATCH = 100
_EPOCH_METRICS_SKIP = ("epoch", "improved")


def flatten_params(config: Any, prefix: str = "") -> dict[str, str]:
    """A config as MLflow params: dotted keys, scalars as text, lists as JSON.

    Args:
        config: a pydantic model (e.g. :class:`~mlops_kit.training.TrainConfig`) or a mapping.
        prefix: prepended to every key.
    """
    data = config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(config)
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{name}."))
            continue
        text = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
        out[name] = text if len(text) <= _MAX_PARAM_LEN else text[: _MAX_PARAM_LEN - 3] + "..."
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def client_for(target: TrackingTarget) -> Any:
    """An :class:`mlflow.MlflowClient` bound to ``target.uri``."""
    return MlflowClient(tracking_uri=target.uri)


def ensure_experiment(client: Any, target: TrackingTarget) -> str:
    """The id of ``target.experiment``, created (with its artifact location) when absent."""
    found = client.get_experiment_by_name(target.experiment)
    if found is not None:
        if found.lifecycle_stage != "active":
            client.restore_experiment(found.experiment_id)
        return str(found.experiment_id)
    try:
        return str(
            client.create_experiment(target.experiment, artifact_location=target.artifact_location)
        )
    except Exception as exc:  # another process created it first
        found = client.get_experiment_by_name(target.experiment)
        if found is None:
            raise TrackingError(
                f"cannot create experiment '{target.experiment}' at {target.display_uri}: {exc}"
            ) from exc
        return str(found.experiment_id)


def start_run(
    target: TrackingTarget,
    *,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> str:
    """Open a run in ``target``'s experiment; returns its id.

    Raises:
        TrackingError: the tracking store cannot be reached.
    """
    client = client_for(target)
    try:
        experiment_id = ensure_experiment(client, target)
        run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
    except TrackingError:
        raise
    except Exception as exc:
        raise TrackingError(
            f"cannot open a run at {target.display_uri} (experiment '{target.experiment}'): "
            f"{exc}. Check {TRACKING_URI_ENV} and that the tracking server is up"
        ) from exc
    run_id = str(run.info.run_id)
    if params:
        _log_params(client, run_id, params)
    return run_id


def _log_params(client: Any, run_id: str, params: Mapping[str, str]) -> None:
    items = [Param(k, v) for k, v in params.items()]
    for lo in range(0, len(items), _BATCH):
        client.log_batch(run_id, params=items[lo : lo + _BATCH])


def _log_metrics(
    client: Any, run_id: str, values: Mapping[str, Any], step: int = 0, when: int | None = None
) -> None:
    stamp = when if when is not None else int(time.time() * 1000)
    items = [Metric(k, float(v), stamp, step) for k, v in values.items() if _finite(v)]
    for lo in range(0, len(items), 1000):
        client.log_batch(run_id, metrics=items[lo : lo + 1000])


def _log_tags(client: Any, run_id: str, tags: Mapping[str, str]) -> None:
    items = [RunTag(k, str(v)) for k, v in tags.items()]
    for lo in range(0, len(items), _BATCH):
        client.log_batch(run_id, tags=items[lo : lo + _BATCH])


def epoch_metrics(record: Mapping[str, Any]) -> dict[str, float]:
    """The numeric metrics of a trainer epoch record (without ``epoch`` and ``improved``)."""
    return {k: float(v) for k, v in record.items() if k not in _EPOCH_METRICS_SKIP and _finite(v)}


def _summary(result: Any) -> dict[str, Any]:
    return dict(result.to_dict()) if hasattr(result, "to_dict") else dict(result)


def summary_metrics(result: Any) -> dict[str, float]:
    """Best-epoch and final metrics of a run.

    Args:
        result: a :class:`~mlops_kit.training.TrainResult` or its dict (``metrics.json``).

    Returns:
        ``best_epoch``, ``epochs_run``, ``stopped_early``, ``best_val_*`` (the record of
        the best epoch), ``final_val_*`` (the final validation, with the best weights
        restored by default) and ``train_samples_per_s_overall``.
    """
    data = _summary(result)
    out: dict[str, float] = {
        "best_epoch": float(data.get("best_epoch", 0)),
        "epochs_run": float(data.get("epochs_run", 0)),
        "stopped_early": float(bool(data.get("stopped_early"))),
    }
    if _finite(data.get("train_samples_per_s")):
        out["train_samples_per_s_overall"] = float(data["train_samples_per_s"])
    history = data.get("history") or []
    best = next((r for r in history if r.get("epoch") == data.get("best_epoch")), None)
    if best is not None:
        out.update({f"best_{k}": v for k, v in epoch_metrics(best).items() if k.startswith("val_")})
    final = data.get("metrics") or {}
    out.update({f"final_val_{k}": float(v) for k, v in final.items() if _finite(v)})
    return out


class MlflowCallback:
    """Trainer callback logging a run to MLflow (params, per-epoch metrics, best metrics).

    The run opens on the first epoch record (only rank 0 calls callbacks, so DDP ranks
    never open runs of their own) or on :meth:`start`::

        cb = MlflowCallback(config, run_name="nightly", tags=lineage.tags())
        result = train(config, data, out_uri, callbacks=[cb])
        cb.finish(result)
        log_training_run(result, out_uri, lineage=lineage, run_id=cb.run_id)

    Args:
        config: the run's TrainConfig (logged as flattened params).
        target: where to log (default: :func:`~mlops_kit.tracking.tracking_target_of`).
        run_name: the run's display name.
        tags: run tags set when the run opens (e.g. ``Lineage.tags()``).
    """

    def __init__(
        self,
        config: Any = None,
        target: TrackingTarget | None = None,
        *,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.target = target or tracking_target_of()
        self.run_name = run_name
        self.tags = dict(tags or {})
        self.run_id: str | None = None
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client_for(self.target)
        return self._client

    def start(self) -> str:
        """Open the run (once); returns its id."""
        if self.run_id is None:
            params = flatten_params(self.config) if self.config is not None else None
            self.run_id = start_run(
                self.target, run_name=self.run_name, tags=self.tags, params=params
            )
        return self.run_id

    def __call__(self, record: dict[str, Any]) -> None:
        """Log one epoch record (the trainer's callback signature)."""
        run_id = self.start()
        step = int(record.get("epoch", 0))
        _log_metrics(self.client, run_id, epoch_metrics(record), step=step)

    def finish(self, result: Any = None, status: str = "FINISHED") -> str:
        """Log the best and final metrics of ``result`` and end the run.

        Args:
            result: the :class:`~mlops_kit.training.TrainResult` (``None``: end only).
            status: ``FINISHED``, ``FAILED`` or ``KILLED``.

        Returns:
            The run id.
        """
        run_id = self.start()
        if result is not None:
            _log_metrics(self.client, run_id, summary_metrics(result))
            _log_tags(self.client, run_id, {"mlops_kit.device": str(result.device)})
        self.client.set_terminated(run_id, status)
        return run_id

    def __enter__(self) -> MlflowCallback:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.run_id is not None and exc_type is not None:
            self.client.set_terminated(self.run_id, "FAILED")


@contextmanager
def fluent_uri(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at ``uri`` for the block, then restore what was set."""
    from mlflow.tracking._tracking_service import utils as tracking_utils

    old_uri = getattr(tracking_utils, "_tracking_uri", None)
    old_env = os.environ.get(TRACKING_URI_ENV)
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(old_uri)
        if old_env is not None:
            os.environ[TRACKING_URI_ENV] = old_env


def _local_copy(uri: str, folder: str) -> str:
    path = os.path.join(folder, uri.rstrip("/").rsplit("/", 1)[-1])
    Path(path).write_bytes(storage.read_bytes(uri))
    return path


def _read_optional_json(uri: str) -> Any:
    return storage.read_json(uri) if storage.exists(uri) else None


def _parity_dict(parity: Any) -> dict[str, Any] | None:
    if parity is None:
        return None
    if hasattr(parity, "to_dict"):
        return dict(parity.to_dict())
    return dict(parity)


def parity_metrics(parity: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """Metrics and params of a parity report (``ParityReport.to_dict()`` or ``parity.json``)."""
    metrics: dict[str, float] = {"parity_passed": float(bool(parity.get("passed")))}
    for key in ("max_abs_diff", "max_rel_diff"):
        if _finite(parity.get(key)):
            metrics[f"parity_{key}"] = float(parity[key])
    params = {
        f"parity_{k}": str(parity[k]) for k in ("atol", "rtol", "rows", "opset") if k in parity
    }
    where = parity.get("where")
    if isinstance(where, Mapping):
        params["parity_where"] = f"{where.get('output')}[{where.get('row')},{where.get('column')}]"
    return metrics, params


def model_signature(onnx_bytes: bytes, preprocessor: Any, rows: Any = None) -> tuple[Any, Any]:
    """``(signature, input_example)`` of the ONNX graph.

    The input example is up to five preprocessed rows (float32 columns named after the
    features, in model order: the graph takes standardised values); the outputs are
    ``logit`` and ``probability``.

    Args:
        onnx_bytes: the serialised graph.
        preprocessor: its :class:`~mlops_kit.training.Preprocessor`.
        rows: raw rows to take the example from (anything ``Preprocessor.transform`` reads);
            ``None`` uses one row at the training means.
    """
    import pandas as pd
    from mlflow.models import infer_signature

    from mlops_kit.model.predictor import INPUT_NAME, OUTPUT_NAMES, onnx_session

    names = list(preprocessor.feature_names)
    if rows is None:
        x = np.zeros((1, len(names)), dtype=np.float32)
    else:
        x = preprocessor.transform(rows)[:INPUT_EXAMPLE_ROWS]
        if x.shape[0] == 0:
            x = np.zeros((1, len(names)), dtype=np.float32)
    example = pd.DataFrame(x.astype(np.float32), columns=names)
    outputs = onnx_session(onnx_bytes).run(list(OUTPUT_NAMES), {INPUT_NAME: x})
    signature = infer_signature(example, dict(zip(OUTPUT_NAMES, outputs, strict=True)))
    return signature, example


def log_training_run(
    result: Any,
    bundle_uri: str,
    parity: Any = None,
    lineage: Lineage | Mapping[str, Any] | None = None,
    *,
    run_id: str | None = None,
    target: TrackingTarget | None = None,
    onnx_uri: str | None = None,
    run_name: str | None = None,
) -> str:
    """Log a trained model bundle to MLflow and end the run; returns the run id.

    Logged: the ONNX graph (``onnx_uri``, default ``<bundle>/model.onnx``, when present)
    with ``mlflow.onnx.log_model`` under ``model`` with its signature and input example;
    ``model.pt`` under ``torch/``; ``preprocess.json`` under ``preprocessing/``;
    ``config.json``, ``metrics.json`` and ``parity.json`` under ``bundle/``; the parity
    figures as ``parity_*`` metrics and params; the lineage as ``mlops_kit.*`` tags; the
    best and final metrics (of ``result``, else of the bundle's ``metrics.json``). A new
    run (no ``run_id``) also gets the config as params and the per-epoch history, so a
    bundle trained elsewhere (EKS, SageMaker) is tracked like one trained here. The ONNX
    model declares the CPU execution provider, the one its parity gate ran on.

    Args:
        result: the :class:`~mlops_kit.training.TrainResult`, or ``None`` when training
            ran elsewhere (the bundle's ``metrics.json`` is read instead).
        bundle_uri: the model bundle written by ``train``.
        parity: a :class:`~mlops_kit.training.ParityReport` or its dict (default: the
            ``parity.json`` beside the ONNX graph, then in the bundle).
        lineage: the run's :class:`~mlops_kit.tracking.Lineage` (or its dict).
        run_id: log into this run (e.g. ``MlflowCallback.run_id``); ``None`` opens one.
        target: where to log (default: :func:`~mlops_kit.tracking.tracking_target_of`).
        onnx_uri: the ONNX graph to log (default ``<bundle>/model.onnx``).
        run_name: display name of a new run.

    Raises:
        TrackingError: the store cannot be reached or ``run_id`` is not in it.
    """
    from mlops_kit.model.preprocess import Preprocessor

    target = target or tracking_target_of()
    client = client_for(target)
    config = _read_optional_json(storage.join(bundle_uri, "config.json"))
    summary = (
        _summary(result)
        if result is not None
        else _read_optional_json(storage.join(bundle_uri, "metrics.json"))
    )
    if lineage is not None and not isinstance(lineage, Lineage):
        lineage = Lineage.from_dict(dict(lineage))
    tags = dict(lineage.tags()) if lineage is not None else {}
    tags["mlops_kit.bundle_uri"] = bundle_uri
    if run_id is None:
        run_id = start_run(
            target,
            run_name=run_name,
            tags=tags,
            params=flatten_params(config) if isinstance(config, dict) else None,
        )
        for record in (summary or {}).get("history") or []:
            _log_metrics(client, run_id, epoch_metrics(record), step=int(record["epoch"]))
    else:
        try:
            client.get_run(run_id)
        except Exception as exc:
            raise TrackingError(
                f"run '{run_id}' is not in the tracking store at {target.display_uri}: {exc}"
            ) from exc
    _log_tags(client, run_id, tags)
    if summary is not None:
        _log_metrics(client, run_id, summary_metrics(summary))
        if summary.get("device"):
            _log_tags(client, run_id, {"mlops_kit.device": str(summary["device"])})

    onnx_uri = onnx_uri or storage.join(bundle_uri, "model.onnx")
    onnx_dir = onnx_uri.rstrip("/").rsplit("/", 1)[0]
    report = _parity_dict(parity)
    if report is None:
        report = _read_optional_json(storage.join(onnx_dir, "parity.json"))
    if report is None:
        report = _read_optional_json(storage.join(bundle_uri, "parity.json"))
    if report is not None:
        metrics, params = parity_metrics(report)
        _log_metrics(client, run_id, metrics)
        existing = client.get_run(run_id).data.params
        _log_params(client, run_id, {k: v for k, v in params.items() if k not in existing})

    with tempfile.TemporaryDirectory(prefix="mlk-track-") as tmp:
        for name, folder in (
            ("model.pt", TORCH_DIR),
            ("preprocess.json", PREPROCESS_DIR),
            ("config.json", BUNDLE_DIR),
            ("metrics.json", BUNDLE_DIR),
        ):
            uri = storage.join(bundle_uri, name)
            if storage.exists(uri):
                client.log_artifact(run_id, _local_copy(uri, tmp), folder)
        if report is not None:
            path = os.path.join(tmp, "parity.json")
            Path(path).write_text(json.dumps(report, indent=2, default=str))
            client.log_artifact(run_id, path, BUNDLE_DIR)

    if storage.exists(onnx_uri):
        onnx = require("onnx", "logging the ONNX model")
        data = storage.read_bytes(onnx_uri)
        pre = Preprocessor.load(storage.join(bundle_uri, "preprocess.json"))
        holdout_uri = storage.join(bundle_uri, "holdout.parquet")
        rows = storage.read_parquet(holdout_uri) if storage.exists(holdout_uri) else None
        signature, example = model_signature(data, pre, rows)
        with fluent_uri(target.uri):
            active = mlflow.active_run() is not None
            with mlflow.start_run(run_id=run_id, nested=active):
                mlflow.onnx.log_model(
                    onnx.load_from_string(data),
                    name=MODEL_NAME,
                    signature=signature,
                    input_example=example,
                    onnx_execution_providers=["CPUExecutionProvider"],
                )
    client.set_terminated(run_id, "FINISHED")
    return run_id


def model_uri(run_id: str) -> str:
    """The MLflow model URI of a run's ONNX model (``runs:/<run_id>/model``)."""
    return f"runs:/{run_id}/{MODEL_NAME}"


__all__ = [
    "MODEL_NAME",
    "MlflowCallback",
    "client_for",
    "ensure_experiment",
    "epoch_metrics",
    "flatten_params",
    "log_training_run",
    "model_signature",
    "model_uri",
    "parity_metrics",
    "start_run",
    "summary_metrics",
]
