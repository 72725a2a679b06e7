"""The promotion gates as a pure function: every gate on its own, at its boundary."""

from __future__ import annotations

import math

import pytest

from mlops_kit.registry.gates import (
    GATES,
    Check,
    Evidence,
    at_least,
    champion_unchanged,
    decide,
    truthy,
)
from mlops_kit.registry.policy import parse_policy

GOOD = {"roc_auc": 0.90, "pr_auc": 0.60, "f1": 0.50, "latency_p50_ms": 0.01, "latency_p99_ms": 0.02}
PARITY_OK = Check("onnx_parity", True, 1e-7, 1e-5, "within")


def policy(**overrides: object):
    base = {
        "thresholds": {"roc_auc": 0.8, "pr_auc": 0.5, "f1": None},
        "champion": {"metric": "roc_auc", "margin": 0.01},
        "latency": {"max_p99_ms": 1.0},
        "require_approval": True,
    }
    base.update(overrides)
    return parse_policy(base)


def evidence(**overrides: object) -> Evidence:
    base: dict = {
        "model": "m",
        "version": "2",
        "target": "champion",
        "candidate": GOOD,
        "parity": PARITY_OK,
        "quality": "true",
        "approval": {"who": "ana", "at": "2026-01-01", "why": "ok"},
    }
    base.update(overrides)
    return Evidence(**base)


def names(checks: list[Check]) -> dict[str, bool]:
    return {c.name: c.passed for c in checks}


def test_all_gates_pass_with_good_evidence() -> None:
    got = names(decide(policy(), evidence()))
    assert got == {
        "threshold.roc_auc": True,
        "threshold.pr_auc": True,
        "onnx_parity": True,
        "data_quality": True,
        "latency_p99": True,
        "approval": True,
    }


def test_thresholds_hold_at_the_boundary_and_nan_never_passes() -> None:
    at = decide(policy(), evidence(candidate={**GOOD, "roc_auc": 0.8}), gates=["thresholds"])
    assert names(at)["threshold.roc_auc"] is True
    below = decide(policy(), evidence(candidate={**GOOD, "roc_auc": 0.7999}), gates=["thresholds"])
    (fail,) = [c for c in below if not c.passed]
    assert (fail.name, fail.value, fail.limit) == ("threshold.roc_auc", 0.7999, 0.8)
    assert fail.detail == "0.7999 < 0.8000"
    nan = decide(policy(), evidence(candidate={**GOOD, "pr_auc": math.nan}), gates=["thresholds"])
    assert names(nan)["threshold.pr_auc"] is False
    assert at_least("x", 1.0, 1.0).passed and not at_least("x", math.nan, 0.0).passed


def test_champion_margin_only_against_another_champion() -> None:
    champ = {**GOOD, "roc_auc": 0.89}
    passed = decide(
        policy(), evidence(champion_version="1", champion=champ), gates=["champion_margin"]
    )
    (check,) = passed
    assert check.name == "champion_margin" and check.passed
    assert check.value == pytest.approx(0.01) and check.limit == 0.01
    assert "vs champion v1" in check.detail
    worse = decide(
        policy(),
        evidence(champion_version="1", champion={**GOOD, "roc_auc": 0.895}),
        gates=["champion_margin"],
    )
    assert names(worse) == {"champion_margin": False}
    assert decide(policy(), evidence(), gates=["champion_margin"]) == []
    same = evidence(champion_version="2", champion=champ)
    assert decide(policy(), same, gates=["champion_margin"]) == []
    off = policy(champion={"enabled": False})
    assert decide(off, evidence(champion_version="1", champion=champ), gates=GATES)[0].name != (
        "champion_margin"
    )


def test_parity_quality_latency_and_approval_refuse_on_their_own() -> None:
    refused = {
        "onnx_parity": evidence(parity=Check("onnx_parity", False, 0.05, 1e-5, "off")),
        "data_quality": evidence(quality="false"),
        "latency_p99": evidence(candidate={**GOOD, "latency_p99_ms": 1.5}),
        "approval": evidence(approval=None),
    }
    for gate, ev in refused.items():
        got = names(decide(policy(), ev))
        assert [k for k, ok in got.items() if not ok] == [gate], gate
    missing = decide(policy(), evidence(parity=None), gates=["onnx_parity"])
    assert (missing[0].passed, missing[0].value) == (False, "not measured")
    unknown_quality = decide(policy(), evidence(quality=None), gates=["data_quality"])
    assert (unknown_quality[0].passed, unknown_quality[0].value) == (False, "unknown")
    assert (
        "mlops-kit model approve m 2"
        in decide(policy(), evidence(approval=None), gates=["approval"])[0].detail
    )


def test_gates_that_do_not_apply() -> None:
    challenger = names(decide(policy(), evidence(target="challenger", approval=None)))
    assert "approval" not in challenger and all(challenger.values())
    relaxed = policy(require_parity=False, require_data_quality=False, latency={"max_p99_ms": None})
    assert set(names(decide(relaxed, evidence(parity=None, quality=None)))) == {
        "threshold.roc_auc",
        "threshold.pr_auc",
        "approval",
    }
    untimed = evidence(candidate={k: v for k, v in GOOD.items() if "latency" not in k})
    assert "latency_p99" not in names(decide(policy(), untimed))
    with pytest.raises(ValueError, match="unknown gates"):
        decide(policy(), evidence(), gates=["vibes"])


def test_champion_unchanged_and_truthy() -> None:
    assert champion_unchanged("3", "3").passed and champion_unchanged(None, None).passed
    moved = champion_unchanged("4", "3")
    assert (moved.passed, moved.value, moved.limit) == (False, "4", "3")
    assert [truthy(v) for v in ("true", "1", "YES", "false", "0", None)] == [
        True,
        True,
        True,
        False,
        False,
        None,
    ]
