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


def test_every_check_states_its_figure_limit_and_comparison() -> None:
    """The whole record of each gate, as the audit log and the CLI show it."""
    ev = evidence(
        candidate={**GOOD, "latency_calls": 2000},
        champion_version="1",
        champion={**GOOD, "roc_auc": 0.75},
        quality_report="s3://r/q.json",
    )
    got = decide(policy(champion={"metric": "roc_auc", "margin": 0.15}), ev)
    assert [c.to_dict() for c in got] == [
        {
            "name": "threshold.roc_auc",
            "passed": True,
            "value": 0.9,
            "limit": 0.8,
            "detail": "0.9000 >= 0.8000",
        },
        {
            "name": "threshold.pr_auc",
            "passed": True,
            "value": 0.6,
            "limit": 0.5,
            "detail": "0.6000 >= 0.5000",
        },
        {
            "name": "champion_margin",
            "passed": True,
            "value": pytest.approx(0.15),
            "limit": 0.15,
            "detail": "roc_auc 0.9000 vs champion v1 0.7500: +0.1500 >= margin +0.1500",
        },
        PARITY_OK.to_dict(),
        {
            "name": "data_quality",
            "passed": True,
            "value": "true",
            "limit": "true",
            "detail": "report s3://r/q.json: passed",
        },
        {
            "name": "latency_p99",
            "passed": True,
            "value": 0.02,
            "limit": 1.0,
            "detail": "p99 0.0200 ms <= 1.0 ms (p50 0.0100 ms, 2000 single-row calls, 1 thread)",
        },
        {
            "name": "approval",
            "passed": True,
            "value": "ana",
            "limit": "recorded approval",
            "detail": "approved by ana at 2026-01-01: ok",
        },
    ]


def test_refusals_state_their_figures() -> None:
    ev = evidence(
        candidate={**GOOD, "roc_auc": 0.5, "latency_p99_ms": 3.0, "latency_calls": 10},
        champion_version="1",
        champion={**GOOD, "roc_auc": 0.75},
        quality="no",
        approval=None,
        parity=None,
    )
    got = {c.name: c.to_dict() for c in decide(policy(), ev)}
    assert got["threshold.roc_auc"] == {
        "name": "threshold.roc_auc",
        "passed": False,
        "value": 0.5,
        "limit": 0.8,
        "detail": "0.5000 < 0.8000",
    }
    assert got["champion_margin"] == {
        "name": "champion_margin",
        "passed": False,
        "value": -0.25,
        "limit": 0.01,
        "detail": "roc_auc 0.5000 vs champion v1 0.7500: -0.2500 < margin +0.0100",
    }
    assert got["onnx_parity"] == {
        "name": "onnx_parity",
        "passed": False,
        "value": "not measured",
        "limit": "measured",
        "detail": "no parity figures",
    }
    assert got["data_quality"] == {
        "name": "data_quality",
        "passed": False,
        "value": "no",
        "limit": "true",
        "detail": "report no report recorded: not passed",
    }
    assert got["latency_p99"] == {
        "name": "latency_p99",
        "passed": False,
        "value": 3.0,
        "limit": 1.0,
        "detail": "p99 3.0000 ms > 1.0 ms (p50 0.0100 ms, 10 single-row calls, 1 thread)",
    }
    assert got["approval"] == {
        "name": "approval",
        "passed": False,
        "value": "none",
        "limit": "recorded approval",
        "detail": "no approval recorded: run 'mlops-kit model approve m 2'",
    }


def test_margin_and_latency_hold_exactly_at_their_bound() -> None:
    exact = evidence(
        candidate={**GOOD, "roc_auc": 0.75}, champion_version="1", champion={**GOOD, "roc_auc": 0.5}
    )
    (edge,) = decide(
        policy(champion={"metric": "roc_auc", "margin": 0.25}), exact, ["champion_margin"]
    )
    assert (edge.passed, edge.value) == (True, 0.25)
    (lat,) = decide(policy(), evidence(candidate={**GOOD, "latency_p99_ms": 1.0}), ["latency"])
    assert lat.passed and lat.detail.startswith("p99 1.0000 ms <= 1.0 ms (p50 0.0100 ms, ")
    nan = evidence(champion_version="1", champion={**GOOD, "roc_auc": math.nan})
    assert not decide(policy(), nan, ["champion_margin"])[0].passed
    with pytest.raises(ValueError, match=r"use dataset, thresholds, champion_margin, onnx_parity"):
        decide(policy(), evidence(), gates=["vibes"])
    assert truthy("1.0") is True and truthy(" True ") is True and truthy("2") is False
    moved = champion_unchanged(None, "3")
    assert moved.to_dict() == {
        "name": "champion_unchanged",
        "passed": False,
        "value": "none",
        "limit": "3",
        "detail": "the champion moved from 3 to None during the evaluation "
        "(another promotion won): evaluate again",
    }
    assert champion_unchanged("3", "3").detail == "champion still 3"
    assert champion_unchanged(None, None).to_dict()["value"] == "none"


def test_the_dataset_gate_compares_name_and_version() -> None:
    from mlops_kit.registry.gates import dataset_check

    want = {"name": "machine_telemetry", "version": 2, "digest": "abc"}
    same = dataset_check({"name": "machine_telemetry", "version": "2"}, want)
    assert same.passed and same.value == "machine_telemetry v2"
    older = dataset_check({"name": "machine_telemetry", "version": "1"}, want)
    assert not older.passed
    assert "trained on machine_telemetry v1 but the settings select machine_telemetry v2" in (
        older.detail
    )
    other = dataset_check({"name": "iot_readings", "version": "2"}, want)
    assert not other.passed
    unknown = dataset_check({"name": "none", "version": "none"}, want)
    assert unknown.passed and unknown.value == "not recorded"
    assert dataset_check(None, want).passed


def test_the_dataset_gate_in_full_and_where_decide_applies_it() -> None:
    from mlops_kit.registry.gates import dataset_check

    want = {"name": "machine_telemetry", "version": 2}
    assert dataset_check(None, want) == Check(
        "dataset", True, "not recorded", "machine_telemetry v2", "no dataset lineage recorded"
    )
    assert dataset_check({"name": "machine_telemetry", "version": 2}, want) == Check(
        "dataset",
        True,
        "machine_telemetry v2",
        "machine_telemetry v2",
        "trained on machine_telemetry v2, the settings select machine_telemetry v2",
    )
    assert dataset_check({"name": "iot_readings", "version": 2}, want) == Check(
        "dataset",
        False,
        "iot_readings v2",
        "machine_telemetry v2",
        "trained on iot_readings v2 but the settings select machine_telemetry v2: retrain on "
        "machine_telemetry v2 data, or select the dataset the model was trained on",
    )
    trained = {"name": "iot_readings", "version": 1}
    refused = decide(policy(), evidence(dataset=trained, expected_dataset=want))
    assert refused[0] == dataset_check(trained, want) and not refused[0].passed
    assert names(refused) == {**names(decide(policy(), evidence())), "dataset": False}
    # not judged without an expected dataset, nor when the gate is left out
    assert "dataset" not in names(decide(policy(), evidence(dataset=trained)))
    others = [g for g in GATES if g != "dataset"]
    left_out = decide(policy(), evidence(dataset=trained, expected_dataset=want), others)
    assert "dataset" not in names(left_out)


def test_champion_unchanged_in_full() -> None:
    assert champion_unchanged("3", "3") == Check(
        "champion_unchanged", True, "3", "3", "champion still 3"
    )
    assert champion_unchanged(None, None) == Check(
        "champion_unchanged", True, "none", "none", "champion still none"
    )
    assert champion_unchanged(None, "3") == Check(
        "champion_unchanged",
        False,
        "none",
        "3",
        "the champion moved from 3 to None during the evaluation (another promotion won): "
        "evaluate again",
    )
    assert champion_unchanged("4", None).limit == "none"


def test_figures_print_as_the_checks_state_them() -> None:
    from mlops_kit.registry.gates import fmt

    assert [fmt(0.5), fmt(3), fmt("v2"), fmt(None)] == ["0.5000", "3", "v2", "None"]
    # a candidate timed for its p99 only states its p50 as not measured
    only_p99 = {k: v for k, v in GOOD.items() if k != "latency_p50_ms"}
    (latency,) = [
        c for c in decide(policy(), evidence(candidate=only_p99)) if c.name == "latency_p99"
    ]
    assert latency.passed and "(p50 nan ms, " in latency.detail
