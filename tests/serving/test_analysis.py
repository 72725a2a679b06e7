"""The canary analysis on constructed windows: a pass, each rule failing on its own, a
quiet window waiting, and a window recorded by the ingress's accumulator judged end to end."""

from __future__ import annotations

import json

import pytest

from mlops_kit.config import RolloutSettings
from mlops_kit.serving.analysis import analyze
from mlops_kit.serving.errors import MonitoringError
from mlops_kit.serving.metrics import WindowSnapshot, WindowStats

ROLLOUT = RolloutSettings(
    min_requests=100,
    max_error_rate=0.01,
    max_p99_ratio=1.5,
    p99_slack_ms=5.0,
    max_prediction_psi=0.25,
)
SCORES = (40, 30, 20, 10, 0, 0, 0, 0, 0, 0)  # mostly low failure probabilities


def snap(
    role: str,
    requests: int = 1000,
    errors: int = 0,
    p99_ms: float | None = 20.0,
    scores: tuple[int, ...] = SCORES,
) -> WindowSnapshot:
    counts = tuple(c * (requests - errors) // 100 for c in scores)
    return WindowSnapshot(role, requests, errors, p99_ms if requests else None, counts)


def _json_safe(figures: dict) -> dict:
    return json.loads(json.dumps(figures, allow_nan=False))


def test_a_canary_like_the_stable_passes_with_every_check_in_words() -> None:
    verdict = analyze(snap("stable", errors=2), snap("canary", errors=5, p99_ms=24.0), ROLLOUT)
    assert verdict.outcome == "pass" and verdict.passed
    assert verdict.reasons == [
        "stable answered 1000 requests in the window >= min_requests 100",
        "canary answered 1000 requests in the window >= min_requests 100",
        "canary error rate 0.5% <= stable 0.2% + 1.0%",
        "canary p99 24.0 ms <= 30.0 ms = max(stable 20.0 ms x 1.5, stable 20.0 ms + 5 ms)",
        "canary prediction PSI 0.000 vs stable <= 0.25",
    ]
    figures = _json_safe(verdict.figures)
    assert figures["canary"]["error_rate"] == 0.005
    assert figures["thresholds"]["max_p99_ratio"] == 1.5
    checks = {c["name"]: c for c in figures["checks"]}
    assert checks["latency_p99"]["limit"] == 30.0 and checks["latency_p99"]["value"] == 24.0
    assert json.loads(json.dumps(verdict.to_dict()))["outcome"] == "pass"


def test_an_error_rate_above_the_stables_plus_the_allowance_fails() -> None:
    verdict = analyze(snap("stable"), snap("canary", errors=200), ROLLOUT)
    assert verdict.outcome == "fail"
    assert verdict.reasons == ["canary error rate 20.0% > stable 0.0% + 1.0%"]
    # exactly at the allowance is not above it
    assert analyze(snap("stable", errors=10), snap("canary", errors=20), ROLLOUT).passed


def test_a_p99_above_the_ratio_fails() -> None:
    verdict = analyze(snap("stable", p99_ms=100.0), snap("canary", p99_ms=160.0), ROLLOUT)
    assert verdict.outcome == "fail"
    assert verdict.reasons == [
        "canary p99 160.0 ms > 150.0 ms = max(stable 100.0 ms x 1.5, stable 100.0 ms + 5 ms)"
    ]
    assert analyze(snap("stable", p99_ms=100.0), snap("canary", p99_ms=150.0), ROLLOUT).passed


def test_the_latency_slack_forgives_jitter_of_fast_models_but_no_more() -> None:
    # 2 ms x 1.5 = 3 ms would fail a 6 ms canary; the 5 ms slack allows up to 7 ms
    assert analyze(snap("stable", p99_ms=2.0), snap("canary", p99_ms=6.9), ROLLOUT).passed
    verdict = analyze(snap("stable", p99_ms=2.0), snap("canary", p99_ms=7.5), ROLLOUT)
    assert verdict.outcome == "fail"
    assert verdict.reasons[0].startswith("canary p99 7.5 ms > 7.0 ms")


def test_shifted_predictions_fail() -> None:
    shifted = (0, 0, 0, 0, 0, 10, 20, 30, 40, 0)
    verdict = analyze(snap("stable"), snap("canary", scores=shifted), ROLLOUT)
    assert verdict.outcome == "fail"
    assert len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("canary prediction PSI ")
    assert verdict.reasons[0].endswith(" vs stable > 0.25")
    psi = {c["name"]: c for c in verdict.figures["checks"]}["prediction_psi"]["value"]
    assert psi > 0.25
    slightly = (38, 31, 21, 10, 0, 0, 0, 0, 0, 0)
    assert analyze(snap("stable"), snap("canary", scores=slightly), ROLLOUT).passed


def test_every_failed_rule_is_a_reason() -> None:
    shifted = (0, 0, 0, 0, 0, 10, 20, 30, 40, 0)
    canary = snap("canary", errors=300, p99_ms=500.0, scores=shifted)
    verdict = analyze(snap("stable"), canary, ROLLOUT)
    assert verdict.outcome == "fail"
    assert [r.split(" ")[1] for r in verdict.reasons] == ["error", "p99", "prediction"]


@pytest.mark.parametrize(
    ("stable", "canary", "reason"),
    [
        (1000, 99, "canary answered 99 requests in the window < min_requests 100"),
        (40, 1000, "stable answered 40 requests in the window < min_requests 100"),
        (0, 0, "stable answered 0 requests in the window < min_requests 100"),
    ],
)
def test_a_quiet_window_waits_and_is_never_a_pass(stable: int, canary: int, reason: str) -> None:
    verdict = analyze(snap("stable", stable), snap("canary", canary), ROLLOUT)
    assert verdict.outcome == "wait"
    assert verdict.reasons[0] == reason
    _json_safe(verdict.figures)


def test_a_quiet_window_waits_even_when_what_it_saw_looks_bad() -> None:
    verdict = analyze(snap("stable"), snap("canary", 50, errors=50), ROLLOUT)
    assert verdict.outcome == "wait"
    assert verdict.reasons == ["canary answered 50 requests in the window < min_requests 100"]


def test_a_side_without_scores_is_judged_by_its_errors() -> None:
    verdict = analyze(snap("stable"), snap("canary", errors=1000), ROLLOUT)
    assert verdict.outcome == "fail"
    assert verdict.reasons == ["canary error rate 100.0% > stable 0.0% + 1.0%"]
    checks = {c["name"]: c for c in verdict.figures["checks"]}
    assert checks["prediction_psi"]["detail"].endswith(
        "the canary answered no scores in the window"
    )


def test_the_sides_must_come_in_order() -> None:
    with pytest.raises(MonitoringError, match="stable's snapshot then the canary's"):
        analyze(snap("canary"), snap("stable"), ROLLOUT)


def test_a_window_recorded_by_the_ingress_is_judged_after_travelling_as_json() -> None:
    stats = WindowStats()
    for i in range(400):
        stats.record("stable", True, 0.010 + (i % 10) / 1000, 0.05 + (i % 4) / 10)
        ok = i % 20 != 0  # 5% errors on the canary
        stats.record("canary", ok, 0.011 + (i % 10) / 1000, 0.05 + (i % 4) / 10 if ok else None)
    window = {
        role: WindowSnapshot.from_dict(json.loads(json.dumps(s.to_dict())))
        for role, s in stats.drain().items()
    }
    verdict = analyze(window["stable"], window["canary"], ROLLOUT)
    assert verdict.outcome == "fail"
    assert verdict.reasons == ["canary error rate 5.0% > stable 0.0% + 1.0%"]
    lenient = ROLLOUT.model_copy(update={"max_error_rate": 0.05})
    assert analyze(window["stable"], window["canary"], lenient).passed
