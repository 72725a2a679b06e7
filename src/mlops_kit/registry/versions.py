"""Versions of registered models: lookup by number or alias, artifacts, registration, reads.

:class:`RegistryVersions` is the base of :class:`~mlops_kit.registry.registry.ModelRegistry`:
it binds the ``MlflowClient``, the audit log and the optional SageMaker mirror, resolves a
version from a number or an alias, loads a version's ONNX model, preprocessing statistics
and torch weights, registers a run's ONNX model as a new version, and lists models and
versions. Moving aliases is :mod:`mlops_kit.registry.promotion`'s and
:mod:`mlops_kit.registry.registry`'s job.
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mlops_kit import storage
from mlops_kit._lazy import require
from mlops_kit.errors import ConfigError
from mlops_kit.registry.audit import AUDIT_DIR, AuditLog
from mlops_kit.registry.errors import (
    MissingArtifactError,
    ModelNotFoundError,
    RegistryError,
)
from mlops_kit.registry.lock import registry_lock
from mlops_kit.registry.names import (
    ONNX_MODEL_NAME,
    PREPROCESS_ARTIFACT,
    SERVING_TAGS,
    TAG_HISTORY,
    TAG_MODEL_ID,
    TAG_ONNX_SHA,
    TAG_PARITY,
    TAG_QUALITY,
    TAG_QUALITY_REPORT,
    TAG_RUN,
    TAG_SAGEMAKER,
    TAG_VALUE_MAX,
    TORCH_ARTIFACT,
)
from mlops_kit.registry.policy import PromotionPolicy, load_policy

if TYPE_CHECKING:
    from mlops_kit.config import Settings


class RegistryVersions:
    """Find, load, register and list versions of registered models.

    The arguments are those of :class:`~mlops_kit.registry.registry.ModelRegistry`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tracking_uri: str | None = None,
        state_uri: str | None = None,
        mirror: Any = None,
    ) -> None:
        from mlops_kit.tracking.target import tracking_target_of

        if settings is None:
            from mlops_kit.config import load_settings

            settings = load_settings()
        self.settings = settings
        self.target = tracking_target_of(settings, uri=tracking_uri)
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
        """``name``, else the ``registry.model_name`` setting, else the dataset spec's
        feature service name with ``-`` for ``_`` (``device-failure``)."""
        if name or self.settings.registry.model_name:
            return str(name or self.settings.registry.model_name)
        from mlops_kit.data.spec import spec_of

        return spec_of(self.settings).service.name.replace("_", "-")

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

    def locate(self, name: str, ref: str | int) -> Any:
        """A :class:`~mlops_kit.model.reference.ModelReference` to a version (a number or an
        alias): the URIs of its ONNX graph (with the graph's external data files) and of its
        preprocessing statistics, checked readable through :mod:`mlops_kit.storage`, and its
        dataset tags, so that a serving process loads it without MLflow.

        Artifacts a tracking server proxies (``mlflow-artifacts:`` URIs) are read under
        ``<storage.models_uri>/mlflow-artifacts``, the server's ``--artifacts-destination``
        (docs/tracking.md).

        Raises:
            ModelNotFoundError: no such model, version or alias.
            MissingArtifactError: the graph or the statistics cannot be read there.
        """
        from mlops_kit.errors import StorageError
        from mlops_kit.model.errors import ModelError
        from mlops_kit.model.predictor import external_data_files
        from mlops_kit.model.reference import ModelReference

        mv = self.version(name, ref)
        tags = mv.tags or {}
        model_id = tags.get(TAG_MODEL_ID) or str(mv.source).removeprefix("models:/")
        where = f"version {mv.version} of '{name}'"
        try:
            folder = self.client.get_logged_model(model_id).artifact_location
            run_root = self.client.get_run(str(mv.run_id)).info.artifact_uri
        except Exception as exc:
            raise MissingArtifactError(f"{where} has no ONNX model ({mv.source}): {exc}") from None
        folder = self._storage_uri(folder, where)
        graph = storage.join(folder, "model.onnx")
        pre = storage.join(self._storage_uri(run_root, where), PREPROCESS_ARTIFACT)
        try:
            data = external_data_files(storage.read_bytes(graph))
            needed = (pre, *(storage.join(folder, d) for d in data))
            lacking = [u for u in needed if not storage.exists(u)]
        except (StorageError, ModelError) as exc:
            raise MissingArtifactError(f"{where}: cannot read its ONNX graph: {exc}") from None
        if lacking:
            raise MissingArtifactError(f"{where}: {', '.join(lacking)} cannot be read")
        return ModelReference(
            name=name,
            version=str(mv.version),
            graph=graph,
            preprocess=pre,
            graph_data=tuple(data),
            alias=None if str(ref).isdigit() else str(ref),
            tags={k: str(tags[k]) for k in SERVING_TAGS if k in tags},
        )

    def _storage_uri(self, uri: str, where: str) -> str:
        """``uri`` (an MLflow artifact URI) as :mod:`mlops_kit.storage` reads it."""
        from urllib.parse import urlsplit

        from mlops_kit.tracking.target import ARTIFACTS_DIR

        scheme = urlsplit(uri).scheme
        if scheme == "mlflow-artifacts":
            models = self.settings.storage.models_uri
            if not models:
                raise MissingArtifactError(
                    f"{where}: its artifacts are proxied by the tracking server ({uri}); set "
                    "storage.models_uri to the folder holding the server's "
                    f"--artifacts-destination ({ARTIFACTS_DIR}/)"
                )
            return storage.join(str(models), ARTIFACTS_DIR, urlsplit(uri).path.lstrip("/"))
        if scheme in ("", "file", "s3") or len(scheme) == 1:  # one letter: a Windows drive
            return uri if scheme == "s3" else storage.resolve(uri)[1]
        raise MissingArtifactError(
            f"{where}: its artifacts are at {uri}, which mlops_kit.storage cannot read "
            f"(it reads {', '.join(storage.SUPPORTED_SCHEMES)})"
        )

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
                "mlops_kit.features": ",".join(pre.feature_names)[:TAG_VALUE_MAX],
            }
        )
        if report_ref:
            tags[TAG_QUALITY_REPORT] = report_ref[:TAG_VALUE_MAX]
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise RegistryError(f"cannot create registered model '{name}': {exc}") from exc
        from mlops_kit.tracking.runs import fluent_uri

        with fluent_uri(self.target.uri):
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


__all__ = ["RegistryVersions"]
