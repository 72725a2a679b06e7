"""Score an ONNX model on a fixed evaluation table, and time it.

The model takes standardised features: rows go through the saved
:class:`~mlops_kit.model.preprocess.Preprocessor` (``preprocess.json``), then through ONNX
Runtime with one intra-op thread, as serving runs it. ROC-AUC, PR-AUC and F1 come from
:mod:`mlops_kit.training.metrics` (numpy; the same definitions as scikit-learn). Latency is
measured per single-row call (``perf_counter_ns`` around ``session.run``) after a warm-up.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, get_args

import numpy as np

from mlops_kit import storage
from mlops_kit.registry.errors import PolicyError, RegistryError
from mlops_kit.registry.policy import EvaluationSpec, Metric

METRICS: tuple[str, ...] = get_args(Metric)
"""The figures a policy may compare by name."""

ROC_POINTS = 51
"""Points of the ROC curve kept for ``ClassificationMetrics``."""


@dataclass(frozen=True)
class Evaluation:
    """Figures of one model on one evaluation table.

    Attributes:
        roc_auc: area under the ROC curve.
        pr_auc: average precision.
        f1: F1 at ``threshold``.
        positive_rate: share of positive labels.
        n: rows scored.
        threshold: decision threshold on the probability.
        confusion: ``[[tn, fp], [fn, tp]]`` at ``threshold``.
        data_sha256: digest of the features and labels scored (same data, same digest).
        latency_p50_ms: median single-row latency (``None`` when not timed).
        latency_p99_ms: 99th percentile single-row latency.
        latency_calls: timed calls.
        roc: ``{"fpr": [...], "tpr": [...], "threshold": [...]}`` (thinned).
    """

    roc_auc: float
    pr_auc: float
    f1: float
    positive_rate: float
    n: int
    threshold: float
    confusion: list[list[int]]
    data_sha256: str
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_calls: int = 0
    roc: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def to_dict(self, with_curve: bool = False) -> dict[str, Any]:
        """JSON-ready figures (the ROC curve only when asked)."""
        out = asdict(self)
        if not with_curve:
            out.pop("roc")
        return out

    def metric(self, name: str) -> float:
        """The value of ``roc_auc``, ``pr_auc`` or ``f1``.

        Raises:
            PolicyError: ``name`` is none of them (what ``champion.metric`` of a policy
                may name).
        """
        if name not in METRICS:
            raise PolicyError(
                f"no metric {name!r} to compare: use one of {', '.join(METRICS)} "
                "(champion.metric in the promotion policy)"
            )
        return float(getattr(self, name))


def read_evaluation_table(
    uri: str, spec: EvaluationSpec | None = None, feature_names: list[str] | None = None
) -> Any:
    """The evaluation rows of ``uri`` (a Parquet file, a prefix, or a training-set folder).

    Args:
        uri: where the table is.
        spec: label column, split (``all`` rows, or the time-split ``validation`` rows).
        feature_names: columns the model needs (checked when given).

    Raises:
        RegistryError: nothing readable there, or a needed column is missing.
    """
    from mlops_kit.training.config import DataConfig
    from mlops_kit.training.data import read_training_table, time_split

    spec = spec or EvaluationSpec()
    data_uri = uri
    if not uri.endswith(".parquet") and storage.exists(storage.join(uri, "data.parquet")):
        data_uri = storage.join(uri, "data.parquet")
    try:
        table = read_training_table(data_uri)
    except Exception as exc:
        raise RegistryError(f"cannot read the evaluation table '{uri}': {exc}") from None
    wanted = [spec.label_column, *(feature_names or [])]
    if spec.split == "validation":
        wanted.append(spec.timestamp_column)
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise RegistryError(
            f"evaluation table '{uri}' lacks column(s) {missing} (has {table.column_names}); "
            "set evaluation.label_column in the policy or pass a table with the model's features"
        )
    if spec.split == "validation":
        config = DataConfig(
            feature_columns=list(feature_names or [spec.label_column]),
            label_column=spec.label_column,
            timestamp_column=spec.timestamp_column,
            validation_fraction=spec.validation_fraction,
        )
        table = time_split(table, config).validation
    if table.num_rows == 0:
        raise RegistryError(f"evaluation table '{uri}' has no rows")
    return table


def _labels(table: Any, column: str) -> np.ndarray:
    col = table[column]
    if col.null_count:
        raise RegistryError(f"label column '{column}' of the evaluation table has nulls")
    y = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    if not np.isin(y, (0.0, 1.0)).all():
        raise RegistryError(f"label column '{column}' of the evaluation table must hold 0/1")
    return y


def _digest(x: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    h.update(np.ascontiguousarray(y, dtype=np.float32).tobytes())
    return h.hexdigest()


def roc_curve(
    y: np.ndarray, scores: np.ndarray, points: int = ROC_POINTS
) -> dict[str, list[float]]:
    """A thinned ROC curve: false and true positive rates at score thresholds."""
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], y[order] > 0.5
    n_pos, n_neg = max(1, int(t.sum())), max(1, int((~t).sum()))
    tps, fps = np.cumsum(t), np.cumsum(~t)
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    fpr = np.r_[0.0, fps[last] / n_neg]
    tpr = np.r_[0.0, tps[last] / n_pos]
    thr = np.r_[1.0, s[last]]
    if fpr.size > points:
        keep = np.unique(np.linspace(0, fpr.size - 1, points).round().astype(int))
        fpr, tpr, thr = fpr[keep], tpr[keep], thr[keep]
    return {
        "fpr": [float(v) for v in fpr],
        "tpr": [float(v) for v in tpr],
        "threshold": [float(min(1.0, max(0.0, v))) for v in thr],
    }


def measure_latency(
    session: Any, row: np.ndarray, calls: int, warmup: int = 50
) -> tuple[float, float]:
    """``(p50, p99)`` in milliseconds of ``calls`` single-row ``session.run`` calls."""
    from mlops_kit.model.predictor import INPUT_NAME

    x = np.ascontiguousarray(row.reshape(1, -1), dtype=np.float32)
    feed = {INPUT_NAME: x}
    out = ["probability"]
    for _ in range(warmup):
        session.run(out, feed)
    times = np.empty(calls, dtype=np.int64)
    clock = time.perf_counter_ns
    for i in range(calls):
        t0 = clock()
        session.run(out, feed)
        times[i] = clock() - t0
    ms = times / 1e6
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def evaluate_onnx(
    onnx_model: bytes | str,
    preprocessor: Any,
    table: Any,
    *,
    label_column: str = "label",
    threshold: float = 0.5,
    latency_calls: int = 0,
    latency_warmup: int = 50,
) -> Evaluation:
    """Score ``onnx_model`` on ``table`` and, when ``latency_calls`` > 0, time it.

    Args:
        onnx_model: the serialised graph or its path/URI.
        preprocessor: its :class:`~mlops_kit.model.preprocess.Preprocessor`.
        table: the evaluation rows (features by name and the label).
        label_column: 0/1 label column.
        threshold: decision threshold on the probability (F1, confusion matrix).
        latency_calls: single-row calls timed (0: no timing).
        latency_warmup: untimed calls first.
    """
    from mlops_kit.model.predictor import Predictor, onnx_session
    from mlops_kit.training import metrics as m

    session = onnx_session(onnx_model if isinstance(onnx_model, bytes) else str(onnx_model))
    predictor = Predictor(session, preprocessor)
    x = predictor.features(table)
    y = _labels(table, label_column)
    p = predictor.run(x)["probability"]
    pred, truth = p >= threshold, y > 0.5
    confusion = [
        [int(np.sum(~pred & ~truth)), int(np.sum(pred & ~truth))],
        [int(np.sum(~pred & truth)), int(np.sum(pred & truth))],
    ]
    p50 = p99 = None
    if latency_calls > 0:
        p50, p99 = measure_latency(session, x[0], latency_calls, latency_warmup)
    return Evaluation(
        roc_auc=float(m.roc_auc(y, p)),
        pr_auc=float(m.pr_auc(y, p)),
        f1=float(m.f1(y, p, threshold)),
        positive_rate=float(truth.mean()),
        n=int(y.size),
        threshold=threshold,
        confusion=confusion,
        data_sha256=_digest(x, y),
        latency_p50_ms=p50,
        latency_p99_ms=p99,
        latency_calls=latency_calls,
        roc=roc_curve(y, p),
    )


def evaluate_folder(
    folder: str,
    table: Any,
    spec: EvaluationSpec,
    latency_calls: int = 0,
    latency_warmup: int = 50,
) -> Any:
    """Evaluate the ONNX folder of ``export_onnx`` (``model.onnx`` + ``preprocess.json``),
    with ``latency_warmup`` untimed calls before ``latency_calls`` timed ones.

    Raises:
        MissingArtifactError: a file of the folder is missing.
    """
    from mlops_kit.model import bundle
    from mlops_kit.model.preprocess import Preprocessor

    onnx_path = bundle.path(folder, bundle.ONNX_MODEL)
    pre_path = bundle.path(folder, bundle.PREPROCESS)
    for path in (onnx_path, pre_path):
        if not os.path.isfile(path):
            from mlops_kit.registry.errors import MissingArtifactError

            raise MissingArtifactError(
                f"'{folder}' has no {os.path.basename(path)}: give the folder export_onnx "
                f"wrote ({bundle.ONNX_MODEL} and {bundle.PREPROCESS} side by side)"
            )
    return evaluate_onnx(
        onnx_path,
        Preprocessor.load(pre_path),
        table,
        label_column=spec.label_column,
        threshold=spec.threshold,
        latency_calls=latency_calls,
        latency_warmup=latency_warmup,
    )


__all__ = [
    "Evaluation",
    "evaluate_folder",
    "evaluate_onnx",
    "measure_latency",
    "read_evaluation_table",
    "roc_curve",
]
