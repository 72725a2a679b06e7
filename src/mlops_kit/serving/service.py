"""The inference service: a registry alias's model, spec-typed requests, online features.

One :class:`InferenceService` per replica. It loads the version the alias points to
(``champion`` by default) with the registry's own loader (the registered ONNX graph and
its preprocessing), refuses a model trained on another dataset or spec version than the
settings select, and answers batches of requests. A request names the entity and may
carry the model's features; the features it leaves out are read from the online store
(the spec's feature service) in one lookup per batch. Every answer names the model
version that produced it. :meth:`InferenceService.refresh` follows the alias when it
moves.

Given a :class:`~mlops_kit.model.reference.ModelReference` (what
:meth:`~mlops_kit.registry.versions.RegistryVersions.locate` returns, as a Ray Serve
replica receives it), the service loads the files the reference names through
:mod:`mlops_kit.storage` instead, and builds no registry client: no MLflow import.

Example:
    >>> from mlops_kit import load_settings
    >>> service = InferenceService(load_settings())                      # doctest: +SKIP
    >>> service.predict([{"device_id": "device-0001"}])                  # doctest: +SKIP
    [{'device_id': 'device-0001', 'score': 0.03, 'model_version': '3', 'features_from': 'online'}]
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_kit.data.request import request_model, response_model
from mlops_kit.data.spec import spec_of
from mlops_kit.serving.errors import BadRequestError, ModelFilesError, ServingError

if TYPE_CHECKING:
    from mlops_kit.config import Settings
    from mlops_kit.model.predictor import Predictor
    from mlops_kit.model.reference import ModelReference


@dataclass(frozen=True)
class LoadedModel:
    """The version a replica serves."""

    name: str
    version: str
    alias: str
    predictor: Predictor
    dataset: str

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.predictor.feature_names)


def as_reference(value: ModelReference | Mapping[str, Any] | None) -> ModelReference | None:
    """``value`` as a :class:`~mlops_kit.model.reference.ModelReference` (a mapping is read
    with ``from_dict``).

    Raises:
        ModelFilesError: the mapping is not a model reference (names the field).
    """
    if value is None:
        return None
    from mlops_kit.model.errors import ModelError
    from mlops_kit.model.reference import ModelReference

    if isinstance(value, ModelReference):
        return value
    try:
        return ModelReference.from_dict(value)
    except ModelError as exc:
        raise ModelFilesError(
            f"{exc}: the deployment's user_config 'model' must be what "
            "ModelRegistry.locate returns, as to_dict() (deploy with ray_app.deploy)"
        ) from None


class InferenceService:
    """Scores requests with the model a registry alias points to.

    Args:
        settings: the dataset spec, the registry and the online store.
        model: registered model (default: ``registry.model_name``, else the spec's service).
        alias: the alias to serve (``champion``).
        online: a feature client for online lookups (default: built on first need).
        version: serve this version instead of the alias's.
        reference: serve the version this
            :class:`~mlops_kit.model.reference.ModelReference` (or its ``to_dict()``)
            names, from the files it names, without the registry (what a Ray Serve
            replica is given); its name and version take the place of ``model`` and
            ``version``.
    """

    def __init__(
        self,
        settings: Settings,
        model: str | None = None,
        alias: str = "champion",
        online: Any = None,
        version: str | None = None,
        reference: ModelReference | Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.spec = spec_of(settings)
        ref = as_reference(reference)
        self.name = ref.name if ref is not None else self.registry.default_name(model)
        self.alias = alias
        self.pinned = ref.version if ref is not None else version
        self._online = online
        self._lock = threading.Lock()
        self.model = self._load(self.pinned, ref)
        self._request = request_model(self.spec, self.model.features)
        self._response = response_model(self.spec)

    @cached_property
    def registry(self) -> Any:
        """The :class:`~mlops_kit.registry.registry.ModelRegistry` of the settings (built on
        first need: a service given references never builds it)."""
        from mlops_kit.registry.registry import ModelRegistry

        return ModelRegistry(self.settings)

    # ------------------------------------------------------------------ model
    def _load(
        self, version: str | None = None, reference: ModelReference | None = None
    ) -> LoadedModel:
        if reference is not None:
            return self._load_reference(reference)
        from mlops_kit.model.predictor import Predictor, onnx_session
        from mlops_kit.registry.errors import RegistryError

        try:
            mv = self.registry.version(self.name, version or self.alias)
        except RegistryError as exc:
            if version is not None:
                raise ServingError(
                    f"cannot serve version {version} of '{self.name}': {exc}"
                ) from None
            raise ServingError(
                f"nothing to serve: {exc}. Promote a version to '{self.alias}' first "
                f"('mlops-kit model promote {self.name} <version> --target {self.alias}')"
            ) from None
        self._check_dataset(str(mv.version), mv.tags or {})
        data, pre = self.registry.load_model(self.name, str(mv.version))
        predictor = Predictor(onnx_session(data), pre)
        return LoadedModel(self.name, str(mv.version), self.alias, predictor, self.spec.name)

    def _load_reference(self, ref: ModelReference) -> LoadedModel:
        from mlops_kit import storage
        from mlops_kit.model.errors import ModelError
        from mlops_kit.model.reference import load_reference

        self._check_dataset(ref.version, ref.tags)
        storage.configure_from_settings(self.settings)
        try:
            predictor = load_reference(ref)
        except ModelError as exc:
            raise ModelFilesError(
                f"cannot load version {ref.version} of '{ref.name}' from the files its "
                f"reference names: {exc}. Deploy again, so that the registry locates the "
                "version anew (mlops-kit serve up, or ray_app.deploy), and check that this "
                "process reads them (storage.models_uri, aws.endpoint_url and its S3 rights)"
            ) from None
        return LoadedModel(ref.name, ref.version, self.alias, predictor, self.spec.name)

    def _check_dataset(self, version: str, tags: Mapping[str, str]) -> None:
        trained = (tags.get("mlops_kit.dataset"), tags.get("mlops_kit.dataset_version"))
        want = (self.spec.name, str(self.spec.version))
        if trained[0] not in (None, "none") and trained != want:
            raise ServingError(
                f"version {version} of '{self.name}' was trained on {trained[0]} "
                f"v{trained[1]}, the settings select {want[0]} v{want[1]}: serve a model of "
                "the selected dataset, or select the dataset the model was trained on"
            )

    def refresh(self) -> bool:
        """Load the version the alias points to now; True when it moved.

        In-flight requests finish on the version they started with: the swap is one
        assignment, made after the new model is loaded. A service pinned to a version
        (``version=``) stays on it; use :meth:`serve_version` to move it.
        """
        if self.pinned is not None:
            return False
        now = str(self.registry.version(self.name, self.alias).version)
        return self._swap(now, None)

    def serve_version(
        self,
        version: str | None,
        reference: ModelReference | Mapping[str, Any] | None = None,
    ) -> bool:
        """Pin the service to ``version`` (``None``: follow the alias again), or to the
        version a ``reference`` names, loaded from its files; True when the served version
        changed. The new version is loaded before it is swapped in."""
        ref = as_reference(reference)
        if ref is not None:
            version = ref.version
        self.pinned = version
        target = version or str(self.registry.version(self.name, self.alias).version)
        return self._swap(target, version, ref)

    def _swap(self, target: str, version: str | None, ref: ModelReference | None = None) -> bool:
        if target == self.model.version:
            return False
        with self._lock:
            if target != self.model.version:
                loaded = self._load(version, ref)
                self._request = request_model(self.spec, loaded.features)
                self.model = loaded
        return True

    def warm_up(self) -> None:
        """Open the online store and score one row, so that the first request does not
        pay for imports and connections (call before reporting ready)."""
        self._online_client().online([], list(self.model.features))
        self.model.predictor.predict({n: [0.0] for n in self.model.features})

    # ------------------------------------------------------------------ requests
    def _online_client(self) -> Any:
        if self._online is None:
            from mlops_kit.features.store import feature_client_of

            self._online = feature_client_of(self.settings)
        return self._online

    def validate(self, payloads: list[Any]) -> list[Any]:
        """The requests as the spec's request model.

        Raises:
            BadRequestError: naming each bad request (by position) and field.
        """
        from pydantic import ValidationError

        out, errors = [], []
        for i, payload in enumerate(payloads):
            try:
                out.append(self._request.model_validate(payload))
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(p) for p in err["loc"]) or "request"
                    errors.append({"request": i, "field": loc, "error": err["msg"]})
        if errors:
            first = errors[0]
            raise BadRequestError(
                f"{len(errors)} problem(s) in {len(payloads)} request(s); first: request "
                f"{first['request']}, {first['field']}: {first['error']}",
                errors,
            )
        return out

    def own_fields(self, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The requests with only the fields this version takes (the join key and the
        model's features): what a router accepting every feature of the spec sends the
        version it routes to, so that stable and canary may differ in their features."""
        fields = self._request.model_fields
        return [{k: v for k, v in p.items() if k in fields} for p in payloads]

    def predict(self, payloads: list[Any]) -> list[dict[str, Any]]:
        """Score a batch of requests (dicts with the join key and optional features).

        Raises:
            BadRequestError: a request is invalid, or an entity has neither the features
                in the request nor a row in the online store.
        """
        (answer,) = self.predict_many([payloads])
        if isinstance(answer, BadRequestError):
            raise answer
        return answer

    def predict_many(self, groups: list[list[Any]]) -> list[list[dict[str, Any]] | BadRequestError]:
        """Score several callers' requests together: each group is validated on its own
        (a bad group gets its :class:`BadRequestError`, the others their answers), the
        features the valid groups leave out are read in one online lookup, and all their
        rows are scored in one ONNX Runtime call. This is what a batching server calls."""
        model = self.model
        key = self.spec.entity.join_key
        names = model.features
        answers: list[list[dict[str, Any]] | BadRequestError | None] = [None] * len(groups)
        rows: list[Any] = []
        owner: list[int] = []
        for g, payloads in enumerate(groups):
            try:
                valid = self.validate(payloads)
            except BadRequestError as exc:
                answers[g] = exc
                continue
            rows.extend(valid)
            owner.extend([g] * len(valid))
        columns = {n: [getattr(r, n) for r in rows] for n in names}
        sources = ["request"] * len(rows)
        lacking = [i for i, r in enumerate(rows) if any(getattr(r, n) is None for n in names)]
        if lacking:
            ids = [getattr(rows[i], key) for i in lacking]
            online = self._online_client().online(ids, list(names))
            unknown = set(online.missing)
            refused: dict[int, list[int]] = {}
            for i, entity in zip(lacking, ids, strict=True):
                if entity in unknown:
                    refused.setdefault(owner[i], []).append(i)
            for g, bad in refused.items():
                first = rows[bad[0]]
                start = owner.index(g)
                answers[g] = BadRequestError(
                    f"{len(bad)} request(s) lack features and their {key} has no online "
                    f"row (first: {getattr(first, key)!r}): send the features, or "
                    "materialize the feature store",
                    [
                        {
                            "request": i - start,
                            "field": key,
                            "error": "no online features for this id",
                        }
                        for i in bad
                    ],
                )
            for j, i in enumerate(lacking):
                given = [getattr(rows[i], n) is not None for n in names]
                for n in names:
                    if columns[n][i] is None:
                        columns[n][i] = online.columns[n][j]
                sources[i] = "mixed" if any(given) else "online"
        keep = [i for i in range(len(rows)) if answers[owner[i]] is None]
        scores: Any = (
            model.predictor.predict(
                {
                    n: [math.nan if columns[n][i] is None else float(columns[n][i]) for i in keep]
                    for n in names
                }
            )
            if keep
            else []
        )
        for i, score in zip(keep, scores, strict=True):
            out = answers[owner[i]]
            if out is None:
                out = answers[owner[i]] = []
            assert isinstance(out, list)
            out.append(
                {
                    key: getattr(rows[i], key),
                    "score": float(score),
                    "model_version": model.version,
                    "features_from": sources[i],
                }
            )
        return [[] if a is None else a for a in answers]

    # ------------------------------------------------------------------ Open Inference Protocol
    def metadata_v2(self) -> dict[str, Any]:
        """``GET /v2/models/<name>``: name, versions, platform, the input and output tensors."""
        k = len(self.model.features)
        return {
            "name": self.name,
            "versions": [self.model.version],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, k]}],
            "outputs": [{"name": "probability", "datatype": "FP32", "shape": [-1, 1]}],
            "parameters": {"feature_names": list(self.model.features), "alias": self.alias},
        }

    def infer_v2(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v2/models/<name>/infer``: an FP32 ``features`` tensor of shape
        ``[n, k]`` (raw feature values in the model's order, row-major) in, the
        ``probability`` tensor out.

        Raises:
            BadRequestError: no such input, another datatype or a shape that does not fit.
        """
        model = self.model
        k = len(model.features)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        tensor = next((t for t in inputs or [] if t.get("name") == "features"), None)
        if tensor is None:
            raise BadRequestError(
                "the request has no input named 'features' (FP32, shape [n, k])",
                [{"field": "inputs", "error": "missing 'features'"}],
            )
        shape = tensor.get("shape") or []
        if tensor.get("datatype") != "FP32" or len(shape) != 2 or shape[1] != k:
            raise BadRequestError(
                f"input 'features' must be FP32 with shape [n, {k}] (the model's "
                f"{k} features), got {tensor.get('datatype')} {shape}",
                [{"field": "inputs.features", "error": "datatype or shape"}],
            )
        data = np.asarray(tensor.get("data", []), dtype=np.float64)
        if data.size != shape[0] * k:
            raise BadRequestError(
                f"input 'features' holds {data.size} values for shape {shape}",
                [{"field": "inputs.features.data", "error": "size"}],
            )
        rows = data.reshape(shape[0], k)
        probs = model.predictor.predict({n: rows[:, j] for j, n in enumerate(model.features)})
        return {
            "model_name": self.name,
            "model_version": model.version,
            "id": body.get("id", ""),
            "outputs": [
                {
                    "name": "probability",
                    "datatype": "FP32",
                    "shape": [int(shape[0]), 1],
                    "data": [float(p) for p in probs],
                }
            ],
        }
