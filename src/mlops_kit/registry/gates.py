"""Promotion gates as data: a pure function from a policy and evidence to checks.

The registry gathers the evidence (evaluations on the same data, the recomputed ONNX
parity, the data-quality tag, the recorded approval) and :func:`decide` turns it into one
:class:`Check` per gate, each with its figure, its limit and the comparison in words. The
same function serves :meth:`~mlops_kit.registry.ModelRegistry.promote`, the
``evaluate_model`` pipeline step and, next, the canary analysis of serving. Nothing here
does I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mlops_kit.registry.policy import PromotionPolicy

GATES = (
    "dataset",
    "thresholds",
    "champion_margin",
    "onnx_parity",
    "data_quality",
    "latency",
    "approval",
)
"""Every gate :func:`decide` knows, in the order it checks them."""


@dataclass(frozen=True)
class Check:
    """One gate of a promotion.

    Attributes:
        name: ``dataset``, ``threshold.roc_auc``, ``champion_margin``, ``onnx_parity``,
            ``data_quality``, ``latency_p99``, ``approval``, ``champion_unchanged``.
        passed: the gate held.
        value: the measured figure (``None`` when there is none).
        limit: the bound it is compared with.
        detail: the comparison in words.
    """

    name: str
    passed: bool
    value: Any = None
    limit: Any = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Evidence:
    """What the gates judge, gathered by the caller.

    Attributes:
        model: registered model name.
        version: the candidate version.
        target: ``champion`` or ``challenger``.
        candidate: the candidate's figures on the evaluation data (``roc_auc``, ``pr_auc``,
            ``f1``, and ``latency_p50_ms``, ``latency_p99_ms``, ``latency_calls`` when timed).
        champion_version: the champion it is compared with (``None``: there is none).
        champion: the champion's figures on the same data.
        parity: the ONNX parity check as measured (``None``: not measured).
        quality: the training data's quality verdict as recorded (``None``: none).
        quality_report: where that verdict comes from.
        approval: the recorded approval (``who``, ``at``, ``why``), or ``None``.
        dataset: the dataset the candidate was trained on (``name``, ``version``), as
            its lineage tags recorded it (``None`` or name ``none``: not recorded).
        expected_dataset: the dataset the settings select (``None``: not judged).
    """

    model: str
    version: str
    target: str = "champion"
    candidate: Mapping[str, Any] | None = None
    champion_version: str | None = None
    champion: Mapping[str, Any] | None = None
    parity: Check | None = None
    quality: str | None = None
    quality_report: str = "no report recorded"
    approval: Mapping[str, Any] | None = None
    dataset: Mapping[str, Any] | None = None
    expected_dataset: Mapping[str, Any] | None = None


def dataset_check(model: Mapping[str, Any] | None, expected: Mapping[str, Any]) -> Check:
    """The candidate was trained on the dataset, and the spec version, now selected.

    A spec version is the contract between data and model: a model of another version
    (or another dataset) would read columns that mean something else. A model without
    recorded dataset lineage passes, saying so.
    """
    want = f"{expected.get('name')} v{expected.get('version')}"
    name = (model or {}).get("name")
    if not name or name == "none":
        return Check("dataset", True, "not recorded", want, "no dataset lineage recorded")
    got = f"{name} v{(model or {}).get('version')}"
    ok = got == want
    detail = (
        f"trained on {got}, the settings select {want}"
        if ok
        else f"trained on {got} but the settings select {want}: retrain on {want} data, "
        f"or select the dataset the model was trained on"
    )
    return Check("dataset", ok, got, want, detail)


def fmt(value: Any) -> str:
    """A figure as the checks print it."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def at_least(name: str, value: float, limit: float) -> Check:
    """``value >= limit`` (NaN never passes)."""
    ok = value == value and value >= limit
    return Check(name, ok, value, limit, f"{fmt(value)} {'>=' if ok else '<'} {fmt(limit)}")


def truthy(text: str | None) -> bool | None:
    """A recorded yes/no tag as a boolean (``None`` when not recorded)."""
    if text is None:
        return None
    return text.strip().lower() in ("1", "1.0", "true", "yes")


def decide(
    policy: PromotionPolicy, evidence: Evidence, gates: Collection[str] = GATES
) -> list[Check]:
    """The checks of ``policy`` on ``evidence``, one per gate that applies.

    Args:
        policy: thresholds, champion margin, required parity / quality / approval, latency.
        evidence: the figures (see :class:`Evidence`).
        gates: the gates to judge (default: all of :data:`GATES`); a pipeline step that
            has no registry yet judges ``thresholds``, ``onnx_parity`` and ``latency``.

    Returns:
        The checks in gate order; the candidate passes when every one passed.
    """
    unknown = set(gates) - set(GATES)
    if unknown:
        raise ValueError(f"unknown gates {sorted(unknown)}: use {', '.join(GATES)}")
    cand = dict(evidence.candidate or {})
    checks: list[Check] = []
    if "dataset" in gates and evidence.expected_dataset is not None:
        checks.append(dataset_check(evidence.dataset, evidence.expected_dataset))
    if "thresholds" in gates:
        for metric in ("roc_auc", "pr_auc", "f1"):
            limit = getattr(policy.thresholds, metric)
            if limit is not None:
                checks.append(at_least(f"threshold.{metric}", float(cand[metric]), limit))
    gate = policy.champion
    if (
        "champion_margin" in gates
        and gate.enabled
        and evidence.champion is not None
        and evidence.champion_version not in (None, evidence.version)
    ):
        mine, theirs = float(cand[gate.metric]), float(evidence.champion[gate.metric])
        diff = mine - theirs
        ok = diff == diff and diff >= gate.margin
        checks.append(
            Check(
                "champion_margin",
                ok,
                diff,
                gate.margin,
                f"{gate.metric} {fmt(mine)} vs champion v{evidence.champion_version} "
                f"{fmt(theirs)}: {diff:+.4f} {'>=' if ok else '<'} margin {gate.margin:+.4f}",
            )
        )
    if "onnx_parity" in gates and policy.require_parity:
        checks.append(
            evidence.parity
            or Check("onnx_parity", False, "not measured", "measured", "no parity figures")
        )
    if "data_quality" in gates and policy.require_data_quality:
        quality = truthy(evidence.quality)
        checks.append(
            Check(
                "data_quality",
                quality is True,
                evidence.quality if evidence.quality is not None else "unknown",
                "true",
                f"report {evidence.quality_report}: " + ("passed" if quality else "not passed"),
            )
        )
    p99 = cand.get("latency_p99_ms")
    if "latency" in gates and policy.latency.max_p99_ms is not None and p99 is not None:
        bound = policy.latency.max_p99_ms
        checks.append(
            Check(
                "latency_p99",
                p99 <= bound,
                p99,
                bound,
                f"p99 {p99:.4f} ms {'<=' if p99 <= bound else '>'} {bound} ms "
                f"(p50 {cand.get('latency_p50_ms', float('nan')):.4f} ms, "
                f"{cand.get('latency_calls')} single-row calls, 1 thread)",
            )
        )
    if "approval" in gates and evidence.target == "champion" and policy.require_approval:
        approval = evidence.approval
        checks.append(
            Check(
                "approval",
                approval is not None,
                approval["who"] if approval is not None else "none",
                "recorded approval",
                f"approved by {approval['who']} at {approval['at']}: {approval['why']}"
                if approval
                else "no approval recorded: run "
                f"'mlops-kit model approve {evidence.model} {evidence.version}'",
            )
        )
    return checks


def champion_unchanged(now: str | None, expected: str | None) -> Check:
    """The compare-and-set check under the lock: the champion is still the one compared."""
    if now != expected:
        return Check(
            "champion_unchanged",
            False,
            now or "none",
            expected or "none",
            f"the champion moved from {expected} to {now} during the evaluation "
            "(another promotion won): evaluate again",
        )
    return Check(
        "champion_unchanged",
        True,
        now or "none",
        expected or "none",
        f"champion still {now or 'none'}",
    )
