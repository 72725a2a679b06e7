"""The canary analysis: one watch window of the canary judged against the stable.

:func:`analyze` is a pure function from the two sides' :class:`WindowSnapshot` and the
rollout thresholds (``settings.serving.rollout``) to a :class:`Verdict`. Its checks are
the registry's promotion :class:`~mlops_kit.registry.gates.Check`, each with its figure,
its limit and the comparison in words::

    verdict = analyze(window["stable"], window["canary"], settings.serving.rollout)
    verdict.outcome      # "pass", "fail" or "wait"
    verdict.reasons      # ["canary error rate 20.0% > stable 0.0% + 1.0%"]

The rules, in order:

* **wait** when either side answered fewer than ``min_requests`` in the window: a quiet
  window is never a pass (the controller extends it, at most ``max_extensions`` times).
* **fail** when the canary's error rate is above the stable's + ``max_error_rate``; when
  its p99 latency is above ``max(stable p99 * max_p99_ratio, stable p99 + p99_slack_ms)``;
  or when the PSI of its scores against the stable's is above ``max_prediction_psi``.
* **pass** otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mlops_kit.config import RolloutSettings
from mlops_kit.registry.gates import Check
from mlops_kit.serving.drift import prediction_psi
from mlops_kit.serving.errors import MonitoringError
from mlops_kit.serving.metrics import WindowSnapshot

Outcome = Literal["pass", "fail", "wait"]

_TOLERANCE = 1e-12  # sums of thresholds in floating point must not fail an equal figure


@dataclass(frozen=True)
class Verdict:
    """The judgement of one watch window.

    Attributes:
        outcome: ``pass`` (go to the next step), ``fail`` (roll back) or ``wait`` (too few
            requests on a side: extend the window).
        reasons: one sentence per deciding check, naming the figure and the threshold
            (the failed checks for ``fail``, the short sides for ``wait``, every check for
            ``pass``).
        figures: JSON-safe: both snapshots, the thresholds, the computed limits and every
            check, for the registry's audit log.
    """

    outcome: Outcome
    reasons: list[str]
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reasons": list(self.reasons), "figures": self.figures}


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _samples(snap: WindowSnapshot, min_requests: int) -> Check:
    ok = snap.requests >= min_requests
    return Check(
        f"{snap.role}_requests",
        ok,
        snap.requests,
        min_requests,
        f"{snap.role} answered {snap.requests} requests in the window "
        f"{'>=' if ok else '<'} min_requests {min_requests}",
    )


def _error_rate(stable: WindowSnapshot, canary: WindowSnapshot, allowed: float) -> Check:
    limit = stable.error_rate + allowed
    ok = canary.error_rate <= limit + _TOLERANCE
    return Check(
        "error_rate",
        ok,
        canary.error_rate,
        limit,
        f"canary error rate {_pct(canary.error_rate)} {'<=' if ok else '>'} stable "
        f"{_pct(stable.error_rate)} + {_pct(allowed)}",
    )


def _p99(stable: WindowSnapshot, canary: WindowSnapshot, r: RolloutSettings) -> Check:
    base = stable.p99_ms or 0.0
    mine = canary.p99_ms or 0.0
    limit = max(base * r.max_p99_ratio, base + r.p99_slack_ms)
    ok = mine <= limit + _TOLERANCE
    return Check(
        "latency_p99",
        ok,
        mine,
        limit,
        f"canary p99 {mine:.1f} ms {'<=' if ok else '>'} {limit:.1f} ms = max(stable "
        f"{base:.1f} ms x {r.max_p99_ratio:g}, stable {base:.1f} ms + {r.p99_slack_ms:g} ms)",
    )


def _prediction_shift(stable: WindowSnapshot, canary: WindowSnapshot, allowed: float) -> Check:
    if not stable.predictions or not canary.predictions:
        empty = "stable" if not stable.predictions else "canary"
        return Check(
            "prediction_psi",
            True,
            None,
            allowed,
            f"prediction PSI not measured: the {empty} answered no scores in the window",
        )
    value = prediction_psi(stable.prediction_counts, canary.prediction_counts)
    ok = value <= allowed + _TOLERANCE
    return Check(
        "prediction_psi",
        ok,
        value,
        allowed,
        f"canary prediction PSI {value:.3f} vs stable {'<=' if ok else '>'} {allowed:g}",
    )


def analyze(stable: WindowSnapshot, canary: WindowSnapshot, rollout: RolloutSettings) -> Verdict:
    """Judge one watch window of the canary against the stable.

    Args:
        stable: the stable's figures over the window (``role`` ``stable``).
        canary: the canary's figures over the same window (``role`` ``canary``).
        rollout: the thresholds (``settings.serving.rollout``).

    Returns:
        ``wait`` when a side is short of ``min_requests``; else ``fail`` when any rule
        failed, with one reason per failed rule; else ``pass``.

    Raises:
        MonitoringError: the snapshots are not the stable's and the canary's, in that order.
    """
    if (stable.role, canary.role) != ("stable", "canary"):
        raise MonitoringError(
            f"analyze takes the stable's snapshot then the canary's, got {stable.role!r} "
            f"then {canary.role!r}: pass them in that order",
            field="role",
        )
    figures: dict[str, Any] = {
        "stable": stable.to_dict(),
        "canary": canary.to_dict(),
        "thresholds": {
            "min_requests": rollout.min_requests,
            "max_error_rate": rollout.max_error_rate,
            "max_p99_ratio": rollout.max_p99_ratio,
            "p99_slack_ms": rollout.p99_slack_ms,
            "max_prediction_psi": rollout.max_prediction_psi,
        },
    }
    samples = [_samples(stable, rollout.min_requests), _samples(canary, rollout.min_requests)]
    short = [c for c in samples if not c.passed]
    if short:
        figures["checks"] = [c.to_dict() for c in samples]
        return Verdict("wait", [c.detail for c in short], figures)
    checks = [
        *samples,
        _error_rate(stable, canary, rollout.max_error_rate),
        _p99(stable, canary, rollout),
        _prediction_shift(stable, canary, rollout.max_prediction_psi),
    ]
    figures["checks"] = [c.to_dict() for c in checks]
    failed = [c for c in checks if not c.passed]
    if failed:
        return Verdict("fail", [c.detail for c in failed], figures)
    return Verdict("pass", [c.detail for c in checks], figures)


__all__ = ["Outcome", "Verdict", "analyze"]
