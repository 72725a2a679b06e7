"""Serving metrics for Prometheus, and the per-window figures of the canary analysis.

:class:`ServingMetrics` holds one model's metrics in its own
``prometheus_client.CollectorRegistry`` (several apps in one process never share series)
and renders them in the exposition format. :class:`WindowStats` accumulates what the
canary analysis judges, per role (``stable`` or ``canary``), for one watch window; its
:class:`WindowSnapshot` travels as JSON from the ingress to the rollout controller::

    metrics = ServingMetrics("device-failure")
    stats = WindowStats()
    metrics.observe_request("7", "canary", "ok", 0.004, [0.03])
    stats.record("canary", ok=True, seconds=0.004, prediction=0.03)
    body, content_type = metrics.render()           # GET /metrics
    window = stats.drain()                          # {"stable": ..., "canary": ...}

prometheus_client comes with the ``serve`` extra; importing this module does not need it.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

from mlops_kit.errors import MissingExtraError
from mlops_kit.serving.errors import MonitoringError

ROLES = ("stable", "canary")
"""Which side of a rollout answered: the version in service, or the one being rolled out."""
OUTCOMES = ("ok", "client_error", "server_error")
"""How a request ended: answered, refused for the request's fault (4xx), failed (5xx)."""

METRIC_NAMES = (
    "mlops_kit_serving_requests_total",
    "mlops_kit_serving_request_latency_seconds",
    "mlops_kit_serving_batch_size",
    "mlops_kit_serving_prediction",
    "mlops_kit_serving_feature_psi",
    "mlops_kit_serving_canary_weight",
    "mlops_kit_serving_rollout_step",
)
"""Every metric :class:`ServingMetrics` exposes."""

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds of the request latency histogram, in seconds (0.5 ms to 5 s)."""
BATCH_BUCKETS = tuple(float(2**i) for i in range(11))
"""Upper bounds of the batch size histogram: 1, 2, 4, ..., 1024."""
PREDICTION_BUCKETS = tuple(i / 10 for i in range(1, 11))
"""Upper bounds of the prediction histogram: 0.1, 0.2, ..., 1.0 (scores are probabilities)."""

_LATENCY_FLOOR_S = 1e-5
_LATENCY_RATIO = 1.01
_LATENCY_BINS = math.ceil(math.log(1e7) / math.log(_LATENCY_RATIO)) + 1  # 10 us .. 100 s


def _check(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise MonitoringError(
            f"{name} {value!r} is not one of {', '.join(allowed)}: pass one of them",
            field=name,
        )


class ServingMetrics:
    """The Prometheus metrics of one served model (see :data:`METRIC_NAMES`).

    Args:
        model: the registered model's name (the ``model`` label of every series).

    Raises:
        MissingExtraError: prometheus_client is not installed (the ``serve`` extra).
    """

    def __init__(self, model: str) -> None:
        try:
            import prometheus_client as prom
        except ImportError as exc:
            raise MissingExtraError("prometheus_client", "serve", "serving metrics") from exc
        self.model = model
        self.registry = prom.CollectorRegistry(auto_describe=True)
        kw: dict[str, Any] = {"registry": self.registry}
        self._requests = prom.Counter(
            "mlops_kit_serving_requests",
            "Requests answered, by version, role and outcome.",
            ["model", "version", "role", "outcome"],
            **kw,
        )
        self._latency = prom.Histogram(
            "mlops_kit_serving_request_latency_seconds",
            "Time from a request's arrival to its answer (seconds).",
            ["model", "version", "role"],
            buckets=LATENCY_BUCKETS,
            **kw,
        )
        self._batch = prom.Histogram(
            "mlops_kit_serving_batch_size",
            "Rows scored in one model call.",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            **kw,
        )
        self._prediction = prom.Histogram(
            "mlops_kit_serving_prediction",
            "Scores answered (probabilities).",
            ["model", "version", "role"],
            buckets=PREDICTION_BUCKETS,
            **kw,
        )
        self._psi = prom.Gauge(
            "mlops_kit_serving_feature_psi",
            "Population stability index of each served feature against the training data.",
            ["model", "version", "feature"],
            **kw,
        )
        self._weight = prom.Gauge(
            "mlops_kit_serving_canary_weight",
            "Share of traffic routed to the canary, 0 to 1 (0 when none is rolling out).",
            ["model"],
            **kw,
        )
        self._step = prom.Gauge(
            "mlops_kit_serving_rollout_step",
            "Rollout step in progress, counted from 1 (0 when none is rolling out).",
            ["model"],
            **kw,
        )
        self._weight.labels(model).set(0)
        self._step.labels(model).set(0)
        self._exposition = prom.generate_latest
        self._content_type = prom.CONTENT_TYPE_LATEST

    def observe_request(
        self, version: str, role: str, outcome: str, seconds: float, predictions: Sequence[float]
    ) -> None:
        """Count one request, its latency and the scores it answered.

        Args:
            version: the model version that answered.
            role: ``stable`` or ``canary``.
            outcome: ``ok``, ``client_error`` (4xx) or ``server_error`` (5xx).
            seconds: time from arrival to answer.
            predictions: the scores answered (one per row; none for an error).

        Raises:
            MonitoringError: ``role`` or ``outcome`` is not one of the known values.
        """
        _check("role", role, ROLES)
        _check("outcome", outcome, OUTCOMES)
        self._requests.labels(self.model, version, role, outcome).inc()
        self._latency.labels(self.model, version, role).observe(seconds)
        if predictions:
            hist = self._prediction.labels(self.model, version, role)
            for p in predictions:
                hist.observe(p)

    def observe_batch(self, version: str, size: int) -> None:
        """Record one model call of ``size`` rows."""
        self._batch.labels(self.model, version).observe(size)

    def set_psi(self, version: str, feature_psi: Mapping[str, float]) -> None:
        """Publish the drift of each feature (from :meth:`DriftMonitor.psi`)."""
        for feature, value in feature_psi.items():
            self._psi.labels(self.model, version, feature).set(value)

    def set_rollout(self, weight: float, step: int) -> None:
        """Publish the rollout's state.

        Args:
            weight: the canary's share of traffic, 0 to 1 (a step of 10 in
                ``settings.serving.rollout.steps`` is 0.1; 0 when no rollout is in progress).
            step: the step in progress, counted from 1 (0 when none).

        Raises:
            MonitoringError: ``weight`` is outside [0, 1] or ``step`` is negative.
        """
        if not 0 <= weight <= 1:
            raise MonitoringError(
                f"canary weight {weight} is not a share of traffic: pass 0 to 1 "
                "(a step of 10% is 0.1)",
                field="weight",
            )
        if step < 0:
            raise MonitoringError(
                f"rollout step {step} is negative: count steps from 1, 0 for none",
                field="step",
            )
        self._weight.labels(self.model).set(weight)
        self._step.labels(self.model).set(step)

    def render(self) -> tuple[bytes, str]:
        """The exposition text of every metric, and its HTTP content type."""
        return self._exposition(self.registry), self._content_type


@dataclass(frozen=True)
class WindowSnapshot:
    """One role's figures over a watch window (JSON-safe through :meth:`to_dict`).

    Attributes:
        role: ``stable`` or ``canary``.
        requests: requests answered in the window.
        errors: those that failed (``ok=False`` in :meth:`WindowStats.record`).
        p99_ms: 99th percentile latency in milliseconds, within 1% (``None``: no requests).
        prediction_counts: scores per bin of :data:`PREDICTION_BUCKETS` (``[0, 0.1]``,
            ``(0.1, 0.2]``, ..., ``(0.9, 1.0]``).
    """

    role: str
    requests: int
    errors: int
    p99_ms: float | None
    prediction_counts: tuple[int, ...]

    def __post_init__(self) -> None:
        _check("role", self.role, ROLES)
        if not 0 <= self.errors <= self.requests:
            raise MonitoringError(
                f"window of {self.role}: errors {self.errors} must lie in 0..requests "
                f"({self.requests})",
                field="errors",
            )
        if (self.p99_ms is None) != (self.requests == 0) or (
            self.p99_ms is not None and not (math.isfinite(self.p99_ms) and self.p99_ms >= 0)
        ):
            raise MonitoringError(
                f"window of {self.role}: p99_ms {self.p99_ms!r} must be a finite latency >= 0 "
                "when there were requests, and null when there were none",
                field="p99_ms",
            )
        if len(self.prediction_counts) != len(PREDICTION_BUCKETS) or any(
            c < 0 for c in self.prediction_counts
        ):
            raise MonitoringError(
                f"window of {self.role}: prediction_counts needs {len(PREDICTION_BUCKETS)} "
                f"counts >= 0 (one per bin of 0.1), got {list(self.prediction_counts)}",
                field="prediction_counts",
            )

    @property
    def error_rate(self) -> float:
        """``errors / requests`` (0 for an empty window)."""
        return self.errors / self.requests if self.requests else 0.0

    @property
    def predictions(self) -> int:
        """Scores counted in :attr:`prediction_counts`."""
        return sum(self.prediction_counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p99_ms": self.p99_ms,
            "prediction_counts": list(self.prediction_counts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowSnapshot:
        """Read :meth:`to_dict`'s output (``error_rate`` is recomputed, not trusted).

        Raises:
            MonitoringError: a field is missing or has the wrong type or range.
        """
        try:
            p99 = data["p99_ms"]
            return cls(
                role=str(data["role"]),
                requests=_integer(data["requests"], "requests"),
                errors=_integer(data["errors"], "errors"),
                p99_ms=None if p99 is None else float(p99),
                prediction_counts=tuple(
                    _integer(c, "prediction_counts") for c in data["prediction_counts"]
                ),
            )
        except KeyError as exc:
            raise MonitoringError(
                f"window snapshot lacks the field {exc.args[0]!r}: send what "
                "WindowSnapshot.to_dict() writes",
                field=str(exc.args[0]),
            ) from exc
        except (TypeError, ValueError) as exc:
            raise MonitoringError(
                f"window snapshot is malformed ({exc}): send what WindowSnapshot.to_dict() writes",
                field="snapshot",
            ) from exc


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MonitoringError(
            f"window snapshot field {name} must be a whole number, got {value!r}", field=name
        )
    return value


class _Window:
    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latency = [0] * _LATENCY_BINS
        self.fastest = math.inf
        self.slowest = 0.0
        self.predictions = [0] * len(PREDICTION_BUCKETS)


class WindowStats:
    """What the canary analysis judges, per role, accumulated over one watch window.

    Thread-safe: every method holds one lock. Memory is fixed: latencies fall into
    log-spaced bins 1% wide (10 microseconds to 100 seconds), scores into
    :data:`PREDICTION_BUCKETS`. The ingress records every request; the controller takes
    the window with :meth:`drain` (or :meth:`snapshot` and :meth:`reset`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows = {role: _Window() for role in ROLES}

    def record(
        self, role: str, ok: bool, seconds: float, prediction: float | Sequence[float] | None
    ) -> None:
        """Count one request.

        Args:
            role: ``stable`` or ``canary``.
            ok: False when the service failed it (a server error; a request refused for its
                own fault is the client's, and counts as ok).
            seconds: time from arrival to answer.
            prediction: the score answered, or the scores of a request of several rows
                (``None`` for an error).

        Raises:
            MonitoringError: ``role`` is not ``stable`` or ``canary``.
        """
        _check("role", role, ROLES)
        seconds = seconds if math.isfinite(seconds) and seconds > 0 else 0.0
        latency_bin = _latency_bin(seconds)
        scores: Sequence[float] = ()
        if isinstance(prediction, (int, float, Real)):
            scores = (float(prediction),)
        elif prediction is not None:
            scores = prediction
        score_bins = [_score_bin(float(p)) for p in scores if math.isfinite(p)]
        with self._lock:
            w = self._windows[role]
            w.requests += 1
            w.errors += not ok
            w.latency[latency_bin] += 1
            w.fastest = min(w.fastest, seconds)
            w.slowest = max(w.slowest, seconds)
            for b in score_bins:
                w.predictions[b] += 1

    def snapshot(self, role: str) -> WindowSnapshot:
        """``role``'s figures so far in this window."""
        _check("role", role, ROLES)
        with self._lock:
            return _snapshot(role, self._windows[role])

    def reset(self) -> None:
        """Start a new window for every role."""
        with self._lock:
            self._windows = {role: _Window() for role in ROLES}

    def drain(self) -> dict[str, WindowSnapshot]:
        """Every role's snapshot and a new window, in one step (no request counted twice
        or lost between them)."""
        with self._lock:
            windows, self._windows = self._windows, {role: _Window() for role in ROLES}
        return {role: _snapshot(role, w) for role, w in windows.items()}


def _score_bin(score: float) -> int:
    # the bin whose upper bound is the first >= score, as Prometheus's ``le`` buckets count
    return min(bisect.bisect_left(PREDICTION_BUCKETS, score), len(PREDICTION_BUCKETS) - 1)


def _latency_bin(seconds: float) -> int:
    if seconds <= _LATENCY_FLOOR_S:
        return 0
    index = math.ceil(math.log(seconds / _LATENCY_FLOOR_S) / math.log(_LATENCY_RATIO))
    return min(index, _LATENCY_BINS - 1)


def _snapshot(role: str, w: _Window) -> WindowSnapshot:
    p99_ms = None
    if w.requests:
        upper = _LATENCY_FLOOR_S * _LATENCY_RATIO ** _rank_bin(w.latency, 0.99 * w.requests)
        p99_ms = min(max(upper, w.fastest), w.slowest) * 1000.0
    return WindowSnapshot(role, w.requests, w.errors, p99_ms, tuple(w.predictions))


def _rank_bin(counts: Sequence[int], rank: float) -> int:
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return index
    return len(counts) - 1


__all__ = [
    "BATCH_BUCKETS",
    "LATENCY_BUCKETS",
    "METRIC_NAMES",
    "OUTCOMES",
    "PREDICTION_BUCKETS",
    "ROLES",
    "ServingMetrics",
    "WindowSnapshot",
    "WindowStats",
]
