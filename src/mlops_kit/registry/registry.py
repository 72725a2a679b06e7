"""The registry facade over ``MlflowClient``: versions, aliases, gates, approvals, audit.

Aliases (not the deprecated stages) say what each version is for:

* ``challenger``: the candidate, promoted with ``target="challenger"``;
* ``champion``: production; serving follows it;
* ``previous_champion``: the champion before the current one, so a rollback is one
  alias move. The registered-model tag ``mlops_kit.champion_history`` keeps the whole
  chain, so rollback works more than once.

Every alias move happens under :func:`~mlops_kit.registry.lock.registry_lock` after
re-reading the champion (compare-and-set): of two promotions racing from the same
champion, one wins and the other is refused with the check ``champion_unchanged``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mlops_kit import storage
from mlops_kit._lazy import require
from mlops_kit.errors import ConfigError
from mlops_kit.registry import _race
from mlops_kit.registry.audit import AUDIT_DIR, AuditLog, now_iso
from mlops_kit.registry.errors import (
    MissingArtifactError,
    ModelNotFoundError,
    RegistryError,
)
from mlops_kit.registry.evaluate import Evaluation, evaluate_onnx, read_evaluation_table
from mlops_kit.registry.gates import Check, Evidence, champion_unchanged, decide
from mlops_kit.registry.lock import registry_lock
from mlops_kit.registry.policy import PromotionPolicy, load_policy

if TYPE_CHECKING:
    from mlops_kit.config import Settings

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous_champion"
TARGETS = (CHAMPION, CHALLENGER)

TAG_RUN = "mlops_kit.run_id"
TAG_MODEL_ID = "mlops_kit.model_id"
TAG_ONNX_SHA = "mlops_kit.onnx_sha256"
TAG_PARITY = "mlops_kit.parity_passed"
TAG_QUALITY = "mlops_kit.data_quality_passed"
TAG_QUALITY_REPORT = "mlops_kit.data_quality_report"
TAG_APPROVAL = "mlops_kit.approval"
TAG_ROLLED_BACK = "mlops_kit.rolled_back"
TAG_HISTORY = "mlops_kit.champion_history"
TAG_SAGEMAKER = "mlops_kit.sagemaker_package_arn"
ONNX_MODEL_NAME = "model"
PREPROCESS_ARTIFACT = "preprocessing/preprocess.json"
TORCH_ARTIFACT = "torch/model.pt"
_TAG_MAX = 4900
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


class ModelRegistry:
    """Register, evaluate, promote, approve and roll back versions of registered models.

    Args:
        settings: :class:`~mlops_kit.config.Settings` (default: :func:`load_settings`).
        tracking_uri: MLflow tracking URI (default: :func:`~mlops_kit.tracking.resolve_target`).
        state_uri: folder of the audit logs and file locks (default
            ``<storage.state_uri>/registry``).
        mirror: a :class:`~mlops_kit.registry.sagemaker_mirror.SageMakerMirror` to keep in
            sync (default: one from the settings when ``registry.sagemaker_mirror``).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tracking_uri: str | None = None,
        state_uri: str | None = None,
        mirror: Any = None,
    ) -> None:
        from mlops_kit.tracking.target import resolve_target

        if settings is None:
            from mlops_kit.config import load_settings

            settings = load_settings()
        self.settings = settings
        self.target = resolve_target(settings, uri=tracking_uri)
        base = state_uri or (
            storage.join(str(settings.storage.state_uri), AUDIT_DIR)
            if settings.storage.state_uri
            else None
        )
        if not base:
            raise ConfigError("the registry needs storage.state_uri (audit log and locks)")
        self.state_uri = base
        self.audit_log = AuditLog(base)
        if mirror is None and settings.registry.sagemaker_mirror:
            from mlops_kit.registry.sagemaker_mirror import SageMakerMirror

            mirror = SageMakerMirror.from_settings(settings)
        self.mirror = mirror
        self._models: dict[tuple[str, str], tuple[bytes, Any]] = {}
        self._references: dict[tuple[str, str], tuple[Any, float, float]] = {}

    # ------------------------------------------------------------------ plumbing
    @cached_property
    def client(self) -> Any:
        """The ``MlflowClient`` bound to the tracking URI."""
        require("mlflow", "the model registry")
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.target.uri, registry_uri=self.target.uri)

    def default_name(self, name: str | None) -> str:
        """``name``, else the ``registry.model_name`` setting."""
        return name or str(self.settings.registry.model_name)

    def policy(self, path: str | None = None) -> PromotionPolicy:
        """The policy at ``path``, else the ``registry.policy`` setting, else the defaults."""
        return load_policy(path or self.settings.registry.policy)

    def _lock(self, name: str) -> Any:
        return registry_lock(
            self.target.uri, self.state_uri, name, ttl_s=self.settings.registry.lock_ttl_s
        )

    def _registered(self, name: str) -> Any:
        try:
            return self.client.get_registered_model(name)
        except Exception as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or (
                "not found" in str(exc).lower()
            ):
                known = [m.name for m in self.client.search_registered_models(max_results=50)]
                raise ModelNotFoundError(
                    f"no registered model '{name}' at {self.target.display_uri} "
                    f"(registered: {', '.join(known) or 'none'})"
                ) from None
            raise RegistryError(f"cannot read model '{name}': {exc}") from exc

    def version(self, name: str, ref: str | int) -> Any:
        """The ``ModelVersion`` of ``name`` for a version number or an alias.

        Raises:
            ModelNotFoundError: no such model, version or alias.
        """
        model = self._registered(name)
        text = str(ref)
        if text.isdigit():
            try:
                return self.client.get_model_version(name, text)
            except Exception:
                versions = sorted(
                    (str(v.version) for v in self.client.search_model_versions(f"name='{name}'")),
                    key=int,
                )
                raise ModelNotFoundError(
                    f"model '{name}' has no version {text} (versions: "
                    f"{', '.join(versions) or 'none'})"
                ) from None
        if text not in model.aliases:
            raise ModelNotFoundError(
                f"model '{name}' has no version {text!r} and no alias {text!r} (aliases: "
                f"{', '.join(f'{a}={v}' for a, v in sorted(model.aliases.items())) or 'none'})"
            )
        return self.client.get_model_version_by_alias(name, text)

    def aliases(self, name: str) -> dict[str, str]:
        """Alias -> version of ``name``."""
        return {a: str(v) for a, v in self._registered(name).aliases.items()}

    def _alias(self, name: str, alias: str) -> str | None:
        return self.aliases(name).get(alias)

    def _history(self, name: str) -> list[str]:
        text = self._registered(name).tags.get(TAG_HISTORY)
        return [str(v) for v in json.loads(text)] if text else []

    # ------------------------------------------------------------------ artifacts
    def _logged_onnx(self, run: Any) -> Any:
        found = self.client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}'",
        )
        models = [m for m in found if m.name == ONNX_MODEL_NAME]
        if not models:
            raise MissingArtifactError(
                f"run '{run.info.run_id}' has no ONNX model '{ONNX_MODEL_NAME}': log the bundle "
                "with mlops_kit.tracking.log_training_run after the ONNX export (model.onnx)"
            )
        return max(models, key=lambda m: m.creation_timestamp or 0)

    def _download(self, run_id: str, artifact_location: str) -> tuple[bytes, Any]:
        import mlflow.artifacts

        from mlops_kit.model.preprocess import Preprocessor

        with tempfile.TemporaryDirectory(prefix="mlk-registry-") as tmp:
            try:
                folder = mlflow.artifacts.download_artifacts(
                    artifact_uri=artifact_location,
                    dst_path=os.path.join(tmp, "onnx"),
                    tracking_uri=self.target.uri,
                )
                onnx_path = os.path.join(folder, "model.onnx")
                if not os.path.isfile(onnx_path):
                    raise FileNotFoundError(f"no model.onnx in {sorted(os.listdir(folder))}")
                onnx = require("onnx", "loading the registered ONNX model")
                # MLflow may save the weights as external data beside the graph
                data = onnx.load(onnx_path, load_external_data=True).SerializeToString()
            except Exception as exc:
                raise MissingArtifactError(
                    f"run '{run_id}' has no usable model.onnx in its ONNX model ({exc})"
                ) from None
            try:
                pre_path = self.client.download_artifacts(
                    run_id, PREPROCESS_ARTIFACT, os.path.join(tmp, "pre")
                )
                pre = Preprocessor.load(pre_path)
            except Exception as exc:
                raise MissingArtifactError(
                    f"run '{run_id}' has no {PREPROCESS_ARTIFACT} (the preprocessing statistics "
                    f"the model needs): {exc}"
                ) from None
        return data, pre

    def load_model(self, name: str, ref: str | int) -> tuple[bytes, Any]:
        """``(onnx_bytes, preprocessor)`` of a version (a number or an alias)."""
        mv = self.version(name, ref)
        key = (name, str(mv.version))
        if key not in self._models:
            tags = mv.tags or {}
            model_id = tags.get(TAG_MODEL_ID) or str(mv.source).removeprefix("models:/")
            try:
                location = self.client.get_logged_model(model_id).artifact_location
            except Exception as exc:
                raise MissingArtifactError(
                    f"version {mv.version} of '{name}' has no ONNX model ({mv.source}): {exc}"
                ) from None
            self._models[key] = self._download(str(mv.run_id), location)
        return self._models[key]

    def reference_model(self, name: str, ref: str | int) -> tuple[Any, float, float]:
        """``(torch_model, atol, rtol)``: the weights logged with a version's run and the
        tolerance of its export's parity gate (the run's ``parity_atol``/``parity_rtol``
        params, else the export defaults).

        Raises:
            MissingArtifactError: the run has no usable ``torch/model.pt``.
        """
        from mlops_kit.training.onnx_export import DEFAULT_ATOL

        mv = self.version(name, ref)
        key = (name, str(mv.version))
        if key not in self._references:
            from mlops_kit.training.model import load_model

            run_id = str(mv.run_id)
            with tempfile.TemporaryDirectory(prefix="mlk-registry-") as tmp:
                try:
                    path = self.client.download_artifacts(run_id, TORCH_ARTIFACT, tmp)
                    model = load_model(path)
                except Exception as exc:
                    raise MissingArtifactError(
                        f"run '{run_id}' has no usable {TORCH_ARTIFACT} (the weights the ONNX "
                        f"graph is checked against): {exc}"
                    ) from None
            params = self.client.get_run(run_id).data.params
            atol = float(params.get("parity_atol", DEFAULT_ATOL))
            rtol = float(params.get("parity_rtol", 0.0))
            self._references[key] = (model, atol, rtol)
        return self._references[key]

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

    # ------------------------------------------------------------------ register
    def _quality(self, report: Any, run: Any) -> tuple[bool | None, str]:
        if report is None:
            report = run.data.tags.get(TAG_QUALITY_REPORT)
        if report is None:
            reports = self.settings.storage.reports_uri
            if reports and storage.exists(str(reports)):
                found = sorted(storage.list_files(str(reports), suffix="quality.json"))
                report = found[-1] if found else None
        if report is None:
            return None, ""
        if isinstance(report, dict):
            return bool(report.get("passed")), str(report.get("run_id", "inline"))
        try:
            data = storage.read_json(str(report))
        except Exception as exc:
            raise RegistryError(f"cannot read the data-quality report '{report}': {exc}") from None
        if not isinstance(data, dict) or "passed" not in data:
            raise RegistryError(f"'{report}' is not a data-quality report (no 'passed' field)")
        return bool(data["passed"]), str(report)

    def register(
        self,
        run_id: str,
        name: str | None = None,
        *,
        quality_report: Any = None,
        description: str | None = None,
        who: str = "",
    ) -> dict[str, Any]:
        """Register the ONNX model of ``run_id`` as a new version of ``name``.

        The version carries the run's ``mlops_kit.*`` lineage tags, the run id, the
        ONNX sha256, whether parity passed (the run's ``parity_passed`` metric) and whether
        the data-quality report of the training data passed.

        Args:
            run_id: the MLflow run of :func:`~mlops_kit.tracking.log_training_run`.
            name: registered model name (default ``registry.model_name``); created if absent.
            quality_report: the ETL's ``quality.json`` (URI or dict); default: the run's
                ``mlops_kit.data_quality_report`` tag, else the latest report under
                ``storage.reports_uri``.
            description: the version's description.
            who: recorded in the audit log.

        Raises:
            ModelNotFoundError: no such run.
            MissingArtifactError: the run has no ONNX model or no preprocessing statistics.
        """
        import hashlib

        name = self.default_name(name)
        client = self.client  # a missing extra is named as such, not as a missing run
        try:
            run = client.get_run(run_id)
        except Exception:
            raise ModelNotFoundError(
                f"no run '{run_id}' at {self.target.display_uri}: pass the run id that "
                "log_training_run returned"
            ) from None
        logged = self._logged_onnx(run)
        data, pre = self._download(run_id, logged.artifact_location)
        quality, report_ref = self._quality(quality_report, run)
        parity = run.data.metrics.get("parity_passed")
        tags = {k: v for k, v in run.data.tags.items() if k.startswith("mlops_kit.")}
        tags.update(
            {
                TAG_RUN: run_id,
                TAG_MODEL_ID: logged.model_id,
                TAG_ONNX_SHA: hashlib.sha256(data).hexdigest(),
                TAG_PARITY: "unknown" if parity is None else str(bool(parity)).lower(),
                TAG_QUALITY: "unknown" if quality is None else str(quality).lower(),
                "mlops_kit.features": ",".join(pre.feature_names)[:_TAG_MAX],
            }
        )
        if report_ref:
            tags[TAG_QUALITY_REPORT] = report_ref[:_TAG_MAX]
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise RegistryError(f"cannot create registered model '{name}': {exc}") from exc
        from mlops_kit.tracking.runs import _fluent_uri

        with _fluent_uri(self.target.uri):
            mv = self.client.create_model_version(
                name,
                source=f"models:/{logged.model_id}",
                run_id=run_id,
                tags=tags,
                description=description,
                model_id=logged.model_id,
            )
        version = str(mv.version)
        self._models[(name, version)] = (data, pre)
        entry: dict[str, Any] = {"action": "register", "version": version, "run_id": run_id}
        if who:
            entry["who"] = who
        if self.mirror is not None:
            arn = self.mirror.register_version(name, version, tags)
            self.client.set_model_version_tag(name, version, TAG_SAGEMAKER, arn)
            entry["sagemaker_package_arn"] = arn
        self.audit_log.append(name, entry)
        return {"name": name, "version": version, "run_id": run_id, "tags": tags}

    # ------------------------------------------------------------------ read
    def list_models(self) -> list[dict[str, Any]]:
        """Every registered model with its aliases and latest version number."""
        out = []
        for model in self.client.search_registered_models(max_results=1000):
            versions = self.client.search_model_versions(f"name='{model.name}'")
            out.append(
                {
                    "name": model.name,
                    "aliases": {a: str(v) for a, v in sorted(model.aliases.items())},
                    "versions": len(versions),
                    "latest": max((int(v.version) for v in versions), default=None),
                }
            )
        return sorted(out, key=lambda m: m["name"])

    def show(self, name: str) -> dict[str, Any]:
        """A model, its aliases, champion history and each version with its tags."""
        model = self._registered(name)
        by_version: dict[str, list[str]] = {}
        for alias, v in model.aliases.items():
            by_version.setdefault(str(v), []).append(alias)
        versions = []
        for mv in sorted(
            self.client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)
        ):
            versions.append(
                {
                    "version": str(mv.version),
                    "aliases": sorted(by_version.get(str(mv.version), [])),
                    "run_id": mv.run_id,
                    "created": mv.creation_timestamp,
                    "tags": dict(sorted((mv.tags or {}).items())),
                }
            )
        return {
            "name": name,
            "aliases": {a: str(v) for a, v in sorted(model.aliases.items())},
            "champion_history": self._history(name),
            "versions": versions,
        }

    def audit(self, name: str) -> list[dict[str, Any]]:
        """The audit entries of ``name``, oldest first."""
        return self.audit_log.read(name)

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
            f"{prefix}.checks": json.dumps(compact, default=str)[:_TAG_MAX],
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

    # ------------------------------------------------------------------ rollback
    def rollback(self, name: str, why: str, who: str = "") -> dict[str, Any]:
        """Point ``champion`` back to ``previous_champion`` and record why.

        ``previous_champion`` then moves one step further back along the champion history,
        so a second rollback goes back again.

        Raises:
            RegistryError: ``why`` is empty, or there is no previous champion.
            ModelNotFoundError: unknown model.
        """
        if not why.strip():
            raise RegistryError("a rollback needs a reason (why)")
        self._registered(name)
        with self._lock(name):
            aliases = self.aliases(name)
            current, previous = aliases.get(CHAMPION), aliases.get(PREVIOUS)
            if previous is None:
                raise RegistryError(
                    f"model '{name}' has no previous champion to roll back to "
                    f"(champion: {current or 'none'})"
                )
            history = self._history(name)
            while history and history[-1] != previous:
                history.pop()
            before = history[-2] if len(history) >= 2 else None
            client = self.client
            client.set_registered_model_alias(name, CHAMPION, previous)
            if before is not None:
                client.set_registered_model_alias(name, PREVIOUS, before)
            else:
                client.delete_registered_model_alias(name, PREVIOUS)
            client.set_registered_model_tag(name, TAG_HISTORY, json.dumps(history))
            at = now_iso()
            if current is not None:
                client.set_model_version_tag(
                    name, current, TAG_ROLLED_BACK, json.dumps({"who": who, "why": why, "at": at})
                )
            entry = self.audit_log.append(
                name,
                {
                    "action": "rollback",
                    "from_version": current,
                    "version": previous,
                    "previous_champion": before,
                    "who": who,
                    "why": why,
                },
            )
            if self.mirror is not None:
                if current is not None:
                    self._mirror_status(name, current, "Rejected", f"rolled back: {why}")
                self._mirror_status(name, previous, "Approved", "champion after rollback")
        return {
            "name": name,
            "from_version": current,
            "champion": previous,
            "previous_champion": before,
            "why": why,
            "who": who,
            "audit_id": entry["id"],
        }


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS",
    "Check",
    "Decision",
    "ModelRegistry",
]
