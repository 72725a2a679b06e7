"""Serving metrics in the Prometheus exposition format, parsed back; the analysis window's
figures, exact from several threads and JSON-safe."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import pytest

from mlops_kit.serving.errors import MonitoringError
from mlops_kit.serving.metrics import (
    METRIC_NAMES,
    PREDICTION_BUCKETS,
    ServingMetrics,
    WindowSnapshot,
    WindowStats,
)

pytest.importorskip("prometheus_client")


def _samples(metrics: ServingMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    body, _ = metrics.render()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_every_metric_is_rendered_with_its_values() -> None:
    m = ServingMetrics("device-failure")
    m.observe_request("7", "canary", "ok", 0.004, [0.05, 0.3])
    m.observe_request("7", "canary", "ok", 0.02, [0.95])
    m.observe_request("7", "canary", "server_error", 3.0, [])
    m.observe_request("6", "stable", "client_error", 0.0007, [])
    m.observe_batch("7", 3)
    m.observe_batch("7", 200)
    m.set_psi("7", {"temperature": 0.31, "humidity": 0.02})
    m.set_rollout(0.1, 1)

    from prometheus_client.parser import text_string_to_metric_families

    body, content_type = m.render()
    assert content_type.startswith("text/plain")
    types = {f.name: f.type for f in text_string_to_metric_families(body.decode())}
    for name in METRIC_NAMES:
        assert types[name.removesuffix("_total")] in ("counter", "histogram", "gauge"), name
    s = _samples(m)
    model = "device-failure"
    total = "mlops_kit_serving_requests_total"
    assert _value(s, total, model=model, version="7", role="canary", outcome="ok") == 2
    assert _value(s, total, model=model, version="7", role="canary", outcome="server_error") == 1
    assert _value(s, total, model=model, version="6", role="stable", outcome="client_error") == 1

    latency = "mlops_kit_serving_request_latency_seconds"
    canary7 = {"model": model, "version": "7", "role": "canary"}
    assert _value(s, f"{latency}_bucket", le="0.005", **canary7) == 1
    assert _value(s, f"{latency}_bucket", le="0.025", **canary7) == 2
    assert _value(s, f"{latency}_bucket", le="2.5", **canary7) == 2
    assert _value(s, f"{latency}_bucket", le="5.0", **canary7) == 3
    assert _value(s, f"{latency}_count", **canary7) == 3
    assert _value(s, f"{latency}_sum", **canary7) == pytest.approx(3.024)
    stable6 = {"model": model, "version": "6", "role": "stable"}
    assert _value(s, f"{latency}_bucket", le="0.001", **stable6) == 1
    assert _value(s, f"{latency}_bucket", le="0.0005", **stable6) == 0

    batch = "mlops_kit_serving_batch_size"
    assert _value(s, f"{batch}_bucket", le="2.0", model=model, version="7") == 0
    assert _value(s, f"{batch}_bucket", le="4.0", model=model, version="7") == 1
    assert _value(s, f"{batch}_bucket", le="256.0", model=model, version="7") == 2
    assert _value(s, f"{batch}_sum", model=model, version="7") == 203

    pred = "mlops_kit_serving_prediction"
    assert _value(s, f"{pred}_bucket", le="0.1", **canary7) == 1
    assert _value(s, f"{pred}_bucket", le="0.3", **canary7) == 2  # 0.3 is in (0.2, 0.3]
    assert _value(s, f"{pred}_bucket", le="0.9", **canary7) == 2
    assert _value(s, f"{pred}_bucket", le="1.0", **canary7) == 3

    psi = "mlops_kit_serving_feature_psi"
    assert _value(s, psi, model=model, version="7", feature="temperature") == 0.31
    assert _value(s, psi, model=model, version="7", feature="humidity") == 0.02
    assert _value(s, "mlops_kit_serving_canary_weight", model=model) == 0.1
    assert _value(s, "mlops_kit_serving_rollout_step", model=model) == 1


def test_each_model_has_its_own_registry() -> None:
    a, b = ServingMetrics("a"), ServingMetrics("b")
    a.observe_request("1", "stable", "ok", 0.01, [0.5])
    s = _samples(b)
    assert not [k for k in s if k[0] == "mlops_kit_serving_requests_total"]
    assert _value(s, "mlops_kit_serving_canary_weight", model="b") == 0
    assert _value(s, "mlops_kit_serving_rollout_step", model="b") == 0


def test_unknown_labels_and_rollout_values_are_refused() -> None:
    m = ServingMetrics("m")
    with pytest.raises(MonitoringError, match="role 'blue' is not one of stable, canary"):
        m.observe_request("1", "blue", "ok", 0.01, [])
    with pytest.raises(MonitoringError, match="outcome 'timeout'") as err:
        m.observe_request("1", "stable", "timeout", 0.01, [])
    assert err.value.code == "SERVING_MONITORING_INVALID"
    with pytest.raises(MonitoringError, match="pass 0 to 1"):
        m.set_rollout(10, 1)
    with pytest.raises(MonitoringError, match="negative"):
        m.set_rollout(0.5, -1)
    with pytest.raises(MonitoringError, match="role"):
        WindowStats().record("blue", True, 0.01, 0.5)
    assert not [k for k in _samples(m) if k[0] == "mlops_kit_serving_requests_total"]


def test_window_counts_are_exact_from_several_threads() -> None:
    stats = WindowStats()
    threads, per_thread = 8, 1500

    def work(t: int) -> None:
        for i in range(per_thread):
            role = "canary" if i % 3 == 0 else "stable"
            ok = i % 10 != 0
            stats.record(role, ok, 0.001 * (1 + i % 7), (i % 10) / 10 + 0.05 if ok else None)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    expected: dict[str, dict[str, Any]] = {
        r: {"requests": 0, "errors": 0, "counts": [0] * 10} for r in ("stable", "canary")
    }
    for i in range(per_thread):
        e = expected["canary" if i % 3 == 0 else "stable"]
        e["requests"] += threads
        if i % 10 == 0:
            e["errors"] += threads
        else:
            e["counts"][i % 10] += threads
    window = stats.drain()
    for role, e in expected.items():
        snap = window[role]
        assert (snap.requests, snap.errors) == (e["requests"], e["errors"])
        assert list(snap.prediction_counts) == e["counts"]
        assert snap.error_rate == e["errors"] / e["requests"]
        assert snap.p99_ms == pytest.approx(7.0)  # the slowest, 7 ms, is above the 99th rank
    assert stats.snapshot("canary").requests == 0  # drain started a new window


def test_draining_while_threads_record_loses_and_repeats_nothing() -> None:
    stats = WindowStats()
    threads, per_thread = 4, 3000

    def work() -> None:
        for i in range(per_thread):
            stats.record("canary", i % 2 == 0, 0.002, [0.15, 0.85])

    pool = [threading.Thread(target=work) for _ in range(threads)]
    drained: list[WindowSnapshot] = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so an unguarded update would show
    try:
        for th in pool:
            th.start()
        while any(th.is_alive() for th in pool):
            drained.append(stats.drain()["canary"])
        for th in pool:
            th.join()
    finally:
        sys.setswitchinterval(interval)
    drained.append(stats.drain()["canary"])
    total = threads * per_thread
    assert sum(d.requests for d in drained) == total
    assert sum(d.errors for d in drained) == total // 2
    assert sum(d.predictions for d in drained) == 2 * total
    assert sum(d.prediction_counts[1] for d in drained) == total


def test_p99_is_within_one_percent_and_exact_at_the_extremes() -> None:
    stats = WindowStats()
    for ms in range(1, 1001):
        stats.record("stable", True, ms / 1000, 0.5)
    p99 = stats.snapshot("stable").p99_ms
    assert p99 is not None and 990.0 <= p99 <= 990.0 * 1.01
    stats.reset()
    stats.record("canary", True, 0.0123, None)
    assert stats.snapshot("canary").p99_ms == pytest.approx(12.3)
    assert stats.snapshot("stable").p99_ms is None
    assert stats.snapshot("stable").error_rate == 0.0


def test_window_and_prometheus_bin_scores_alike() -> None:
    scores = [0.0, 0.1, 0.1000001, 0.3, 0.7, 0.99, 1.0, 1.2, -0.1]
    stats = WindowStats()
    stats.record("canary", True, 0.01, scores)  # one request of several rows
    snap = stats.snapshot("canary")
    assert snap.requests == 1 and snap.predictions == len(scores)
    m = ServingMetrics("m")
    m.observe_request("1", "canary", "ok", 0.01, scores)
    s = _samples(m)
    labels = {"model": "m", "version": "1", "role": "canary"}
    cumulative = 0
    for bound, count in zip(PREDICTION_BUCKETS, snap.prediction_counts, strict=True):
        cumulative += count
        if bound < 1.0:  # Prometheus puts scores above 1 in +Inf only; the window in the last bin
            assert _value(s, "mlops_kit_serving_prediction_bucket", le=str(bound), **labels) == (
                cumulative
            ), bound


def test_snapshot_travels_as_json() -> None:
    stats = WindowStats()
    stats.record("canary", False, 0.2, None)
    stats.record("canary", True, 0.01, 0.42)
    snap = stats.snapshot("canary")
    text = json.dumps(snap.to_dict(), allow_nan=False)
    back = WindowSnapshot.from_dict(json.loads(text))
    assert back == snap
    assert back.to_dict()["error_rate"] == 0.5
    empty = WindowStats().snapshot("stable")
    assert WindowSnapshot.from_dict(json.loads(json.dumps(empty.to_dict()))) == empty


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"role": "blue"}, "role 'blue'"),
        ({"errors": 5}, "errors 5 must lie in 0..requests"),
        ({"requests": True}, "requests must be a whole number"),
        ({"requests": 2.5}, "requests must be a whole number"),
        ({"p99_ms": None}, "p99_ms None"),
        ({"p99_ms": "fast"}, "malformed"),
        ({"prediction_counts": [1, 2]}, "prediction_counts needs 10 counts"),
        ({"prediction_counts": [-1] + [0] * 9}, "prediction_counts needs 10 counts"),
    ],
)
def test_a_malformed_snapshot_is_refused_naming_the_field(
    change: dict[str, Any], match: str
) -> None:
    good = {"role": "canary", "requests": 2, "errors": 1, "p99_ms": 12.0}
    good["prediction_counts"] = [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    WindowSnapshot.from_dict(good)
    with pytest.raises(MonitoringError, match=match):
        WindowSnapshot.from_dict(good | change)


def test_a_snapshot_without_a_field_names_it() -> None:
    with pytest.raises(MonitoringError, match="lacks the field 'p99_ms'") as err:
        WindowSnapshot.from_dict({"role": "stable", "requests": 0, "errors": 0})
    assert err.value.details["field"] == "p99_ms"
