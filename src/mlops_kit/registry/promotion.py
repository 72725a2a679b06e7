"""Promotion: approvals, evaluation, the gates and the compare-and-set alias move.

:class:`RegistryPromotions` adds to :class:`~mlops_kit.registry.versions.RegistryVersions`
what moves a version to ``challenger`` or ``champion``: recording a manual approval,
scoring a version on an evaluation table, recomputing ONNX parity, deciding the policy's
gates, and, under :func:`~mlops_kit.registry.lock.registry_lock`, re-reading the champion
and moving the aliases only if it is unchanged. Every decision, accepted or refused, is a
:class:`Decision` written as version tags and appended to the audit log.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_kit.data.spec import spec_of
from mlops_kit.registry import _race
from mlops_kit.registry.audit import now_iso
from mlops_kit.registry.errors import MissingArtifactError, RegistryError
from mlops_kit.registry.evaluate import Evaluation, evaluate_onnx, read_evaluation_table
from mlops_kit.registry.gates import Check, Evidence, champion_unchanged, decide
from mlops_kit.registry.names import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    TAG_APPROVAL,
    TAG_HISTORY,
    TAG_PARITY,
    TAG_QUALITY,
    TAG_QUALITY_REPORT,
    TAG_SAGEMAKER,
    TAG_VALUE_MAX,
    TARGETS,
    TORCH_ARTIFACT,
)
from mlops_kit.registry.policy import PromotionPolicy
from mlops_kit.registry.versions import RegistryVersions
from mlops_kit.tracking.lineage import TAG_PREFIX

_UNSET: Any = object()


@dataclass
class Decision:
    """The outcome of :meth:`ModelRegistry.promote`, accepted or refused, with every check."""

    model: str
    version: str
    target: str
    accepted: bool
    checks: list[Check]
    evaluation: dict[str, Any] = field(default_factory=dict)
    champion_evaluation: dict[str, Any] | None = None
    champion_before: str | None = None
    champion_after: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    policy_sha256: str = ""
    who: str = ""
    why: str = ""
    at: str = ""
    audit_id: str = ""

    @property
    def decision(self) -> str:
        """``accepted`` or ``refused``."""
        return "accepted" if self.accepted else "refused"

    @property
    def failed(self) -> list[Check]:
        """The checks that did not hold."""
        return [c for c in self.checks if not c.passed]

    def reasons(self) -> list[str]:
        """One line per failed check with its figures."""
        return [f"{c.name}: {c.detail}" for c in self.failed]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["decision"] = self.decision
        out["reasons"] = self.reasons()
        return out


class RegistryPromotions(RegistryVersions):
    """Approve, evaluate and promote versions (see :meth:`promote`).

    The arguments are those of :class:`~mlops_kit.registry.registry.ModelRegistry`.
    """

    # ------------------------------------------------------------------ approve
    def approve(self, name: str, ref: str | int, who: str, why: str) -> dict[str, Any]:
        """Record a manual approval of a version for production (tag + audit entry).

        Raises:
            RegistryError: ``who`` or ``why`` is empty.
            ModelNotFoundError: unknown model or version.
        """
        if not who.strip() or not why.strip():
            raise RegistryError("an approval needs who approves and why (both non-empty)")
        mv = self.version(name, ref)
        approval = {"who": who.strip(), "why": why.strip(), "at": now_iso()}
        self.client.set_model_version_tag(name, mv.version, TAG_APPROVAL, json.dumps(approval))
        entry = self.audit_log.append(
            name, {"action": "approve", "version": str(mv.version), **approval}
        )
        return {"name": name, "version": str(mv.version), **approval, "audit_id": entry["id"]}

    # ------------------------------------------------------------------ evaluate
    def evaluate(
        self,
        name: str,
        ref: str | int,
        table: Any,
        policy: PromotionPolicy | None = None,
        *,
        latency: bool = True,
    ) -> Evaluation:
        """Score a version on an evaluation table (``latency``: time it as the policy says)."""
        policy = policy or PromotionPolicy()
        data, pre = self.load_model(name, ref)
        return evaluate_onnx(
            data,
            pre,
            table,
            label_column=policy.evaluation.label_column,
            threshold=policy.evaluation.threshold,
            latency_calls=policy.latency.calls if latency else 0,
            latency_warmup=policy.latency.warmup,
        )

    def _table(self, evaluation: Any, policy: PromotionPolicy, name: str, ref: str) -> Any:
        if evaluation is None:
            evaluation = policy.evaluation.uri or self.settings.registry.evaluation_uri
        if evaluation is None:
            raise RegistryError(
                "no evaluation set: pass one (--eval), or set evaluation.uri in the policy or "
                "registry.evaluation_uri in the settings"
            )
        if isinstance(evaluation, str):
            _, pre = self.load_model(name, ref)
            return read_evaluation_table(evaluation, policy.evaluation, list(pre.feature_names))
        return evaluation

    # ------------------------------------------------------------------ parity
    def _parity(self, name: str, version: str, table: Any, recorded: str) -> Check:
        """Recompute parity: the registered graph in ONNX Runtime vs the run's torch weights."""
        from mlops_kit.training.errors import ParityError, TrainingError
        from mlops_kit.training.onnx_export import check_parity

        data, pre = self.load_model(name, version)
        note = f"(the export recorded parity_passed={recorded})"
        try:
            model, atol, rtol = self.reference_model(name, version)
        except MissingArtifactError as exc:
            return Check("onnx_parity", False, "not recomputed", TORCH_ARTIFACT, f"{exc} {note}")
        x = pre.transform(table)
        try:
            report = check_parity(model, data, x, atol=atol, rtol=rtol)
        except ParityError as exc:
            return Check(
                "onnx_parity",
                False,
                exc.max_abs_diff,
                atol,
                f"registered graph vs the run's torch weights on {x.shape[0]} evaluation rows: "
                f"{exc} {note}",
            )
        except TrainingError as exc:
            return Check("onnx_parity", False, "not comparable", "same shapes", f"{exc} {note}")
        return Check(
            "onnx_parity",
            True,
            report.max_abs_diff,
            atol,
            f"registered graph vs the run's torch weights on {report.rows} evaluation rows: "
            f"max abs diff {report.max_abs_diff:.3e}, max rel diff {report.max_rel_diff:.3e} "
            f"within atol={atol:g}, rtol={rtol:g}",
        )

    # ------------------------------------------------------------------ promote
    def promote(
        self,
        name: str,
        ref: str | int,
        policy: PromotionPolicy | str | None = None,
        *,
        target: str = CHAMPION,
        evaluation: Any = None,
        who: str = "",
        why: str = "",
        expected_champion: Any = _UNSET,
    ) -> Decision:
        """Evaluate the policy for a version and move ``target`` to it, or refuse.

        The gates: absolute thresholds; beating the current champion by the margin on the
        same evaluation data (skipped when there is no champion); ONNX parity, recomputed
        on the registered graph against the run's torch weights; the training data's
        quality report; the p99 single-row latency; for ``champion`` a recorded
        approval when the policy requires one. Then, under the model's lock, the champion
        is read again and the aliases move only if it is still ``expected_champion`` (by
        default the champion the candidate was compared with). Accepted or refused, the
        decision is written as version tags and appended to the audit log.

        Args:
            name: registered model.
            ref: version number or alias (e.g. ``challenger``).
            policy: a policy, a YAML path, or ``None`` (the settings', else the defaults).
            target: ``champion`` or ``challenger``.
            evaluation: the evaluation table (pyarrow) or its URI (default: the policy's).
            who: who asks (recorded).
            why: why (recorded).
            expected_champion: compare-and-set: move only if the champion is still this
                version (``None``: only if there is none).

        Raises:
            ModelNotFoundError: unknown model or version.
            MissingArtifactError: the version has no ONNX model.
            PolicyError: the policy file is invalid.
            RegistryError: unknown target, the version already holds it, or no evaluation set.
        """
        if target not in TARGETS:
            raise RegistryError(f"unknown target '{target}': use one of {', '.join(TARGETS)}")
        if not isinstance(policy, PromotionPolicy):
            policy = self.policy(policy)
        mv = self.version(name, ref)
        version = str(mv.version)
        if self._alias(name, target) == version:
            raise RegistryError(f"version {version} of '{name}' is already {target}")
        table = self._table(evaluation, policy, name, version)
        champion = self._alias(name, CHAMPION)
        expected = champion if expected_champion is _UNSET else expected_champion
        expected = None if expected is None else str(expected)
        cand = self.evaluate(name, version, table, policy)
        champ_eval: Evaluation | None = None
        if policy.champion.enabled and expected is not None and expected != version:
            champ_eval = self.evaluate(name, expected, table, policy, latency=False)
        tags = mv.tags or {}
        raw_approval = tags.get(TAG_APPROVAL)
        evidence = Evidence(
            model=name,
            version=version,
            target=target,
            candidate=cand.to_dict(),
            champion_version=expected,
            champion=champ_eval.to_dict() if champ_eval else None,
            parity=(
                self._parity(name, version, table, tags.get(TAG_PARITY, "unknown"))
                if policy.require_parity
                else None
            ),
            quality=tags.get(TAG_QUALITY),
            quality_report=tags.get(TAG_QUALITY_REPORT, "no report recorded"),
            approval=json.loads(raw_approval) if raw_approval else None,
            dataset={
                "name": tags.get(f"{TAG_PREFIX}dataset"),
                "version": tags.get(f"{TAG_PREFIX}dataset_version"),
            },
            expected_dataset=spec_of(self.settings).lineage(),
        )
        checks = decide(policy, evidence)
        decision = Decision(
            model=name,
            version=version,
            target=target,
            accepted=False,
            checks=checks,
            evaluation=cand.to_dict(),
            champion_evaluation=champ_eval.to_dict() if champ_eval else None,
            champion_before=champion,
            champion_after=champion,
            policy_sha256=policy.sha256(),
            who=who,
            why=why,
        )
        if all(c.passed for c in checks):
            with self._lock(name):
                now = self._alias(name, CHAMPION)
                _race.checkpoint(name, version, now)
                unchanged = champion_unchanged(now, expected)
                checks.append(unchanged)
                if unchanged.passed:
                    self._move(name, version, target, now)
                    decision.accepted = True
                decision.champion_before = now
                decision.champion_after = self._alias(name, CHAMPION)
                decision.aliases = self.aliases(name)
                self._record(decision)
        else:
            decision.aliases = self.aliases(name)
            self._record(decision)
        return decision

    def _move(self, name: str, version: str, target: str, champion: str | None) -> None:
        client = self.client
        if target == CHALLENGER:
            client.set_registered_model_alias(name, CHALLENGER, version)
            return
        history = self._history(name)
        if champion is not None:
            client.set_registered_model_alias(name, PREVIOUS, champion)
            if not history or history[-1] != champion:
                history.append(champion)
        history.append(version)
        client.set_registered_model_tag(name, TAG_HISTORY, json.dumps(history[-100:]))
        client.set_registered_model_alias(name, CHAMPION, version)
        if self._alias(name, CHALLENGER) == version:
            client.delete_registered_model_alias(name, CHALLENGER)

    def _record(self, decision: Decision) -> None:
        decision.at = now_iso()
        compact = [
            {"name": c.name, "passed": c.passed, "value": c.value, "limit": c.limit}
            for c in decision.checks
        ]
        entry = self.audit_log.append(
            decision.model,
            {
                "action": "promote",
                "version": decision.version,
                "target": decision.target,
                "decision": decision.decision,
                "reasons": decision.reasons(),
                "checks": [c.to_dict() for c in decision.checks],
                "evaluation": decision.evaluation,
                "champion_evaluation": decision.champion_evaluation,
                "champion_before": decision.champion_before,
                "champion_after": decision.champion_after,
                "policy_sha256": decision.policy_sha256,
                "who": decision.who,
                "why": decision.why,
            },
        )
        decision.audit_id = entry["id"]
        prefix = f"mlops_kit.decision.{decision.target}"
        values = {
            prefix: decision.decision,
            f"{prefix}.at": decision.at,
            f"{prefix}.audit_id": decision.audit_id,
            f"{prefix}.failed": ",".join(c.name for c in decision.failed) or "none",
            f"{prefix}.checks": json.dumps(compact, default=str)[:TAG_VALUE_MAX],
        }
        for key, value in values.items():
            self.client.set_model_version_tag(decision.model, decision.version, key, value)
        if self.mirror is not None and decision.target == CHAMPION:
            status = "Approved" if decision.accepted else "Rejected"
            self._mirror_status(decision.model, decision.version, status, decision.decision)

    def _mirror_status(self, name: str, version: str, status: str, note: str) -> None:
        arn = (self.client.get_model_version(name, version).tags or {}).get(TAG_SAGEMAKER)
        if arn and self.mirror is not None:
            self.mirror.set_status(arn, status, note)


__all__ = ["Decision", "RegistryPromotions"]
