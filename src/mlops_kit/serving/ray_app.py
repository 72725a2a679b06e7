"""The Ray Serve application: a FastAPI ingress and the stable and canary model deployments.

::

    HTTP ─> ingress (FastAPI, spec-typed; splits traffic by weight; /metrics)
               ├─> stable  (ONNX Runtime, @serve.batch; follows the alias or a pinned version)
               └─> canary  (the same, on the version being rolled out; idle when none)

:func:`build` is the application builder (``import_path: mlops_kit.serving.ray_app:build``
in a Serve config, see :mod:`mlops_kit.serving.deploy`). What changes during a rollout —
the versions and the canary's weight — lives in each deployment's ``user_config``, so a
new weight or version reaches every replica through Serve's ``reconfigure``: replicas
are not restarted and no request is dropped (the new model is loaded before it is swapped
in). Batching is adaptive: ``batch_wait_timeout_s`` 0 scores whatever is queued at once,
and batches grow by themselves while the previous one runs.

:func:`deploy`, :func:`status` and :func:`shutdown` drive it from a driver process (the
CLI's ``mlops-kit serve up | status | down``, the rollout controller, tests). The driver
looks each version up in the registry (:func:`locate`) and hands the replicas a model
reference in their ``user_config``: where the version's ONNX graph and preprocessing
statistics lie. A replica loads them through :mod:`mlops_kit.storage` and imports neither
MLflow nor SQLAlchemy on the way to its first answer (``describe()`` lists the heavy
libraries its process holds).
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
import uuid
from typing import Any

from mlops_kit._lazy import require

require("ray.serve", "serving with Ray Serve")

from ray import serve  # noqa: E402

from mlops_kit.config import Settings  # noqa: E402
from mlops_kit.serving.errors import BadRequestError, ServingError  # noqa: E402
from mlops_kit.serving.router import (  # noqa: E402
    CANARY,
    STABLE,
    Reply,
    ServeRouter,
    bad_request,
)

log = logging.getLogger("mlops_kit.serving")
INGRESS = "ingress"
HEAVY_MODULES = ("mlflow", "sqlalchemy", "feast", "torch", "onnx")
"""Libraries a model replica has no need of (``describe()`` reports those imported)."""


def _settings(payload: dict[str, Any]) -> Settings:
    return Settings.model_validate(payload)


def _envelope(reply: Reply, **extra: Any) -> dict[str, Any]:
    return {"status": reply.status, "body": reply.body, "version": reply.version, **extra}


class ModelServer:
    """One model deployment's replica: a pinned :class:`InferenceService`, batched.

    ``user_config``: ``{"version": "<v>" | None, "model": <reference> | None,
    "fault_rate": 0.0}``. ``model``, a :class:`~mlops_kit.model.reference.ModelReference`
    as ``to_dict()`` (what :func:`deploy` locates in the registry), names the version's
    files: the replica loads them through :mod:`mlops_kit.storage` and never imports
    MLflow. Without one the replica looks the version up in the registry itself. The
    stable side with no version follows the alias; the canary with none is idle: the
    ingress sends it nothing, and requests still on their way when it went idle are
    answered by the model it had (one never given a version answers 503).
    ``fault_rate`` fails that share of requests with a 500, to rehearse a rollback: exactly
    that share, spread evenly (request n fails when ``floor(n * rate)`` steps up), so any
    window of the canary's requests holds its failures.
    """

    def __init__(self, settings: dict[str, Any], role: str, model: str | None, alias: str) -> None:
        self.settings = _settings(settings)
        self.role = role
        self.model_name = model
        self.alias = alias
        self.service: Any = None
        self.replica = uuid.uuid4().hex[:12]
        self.fault_rate = 0.0
        self._calls = 0
        self.drift: Any = None
        sv = self.settings.serving
        batcher: Any = self.predict_batch
        batcher.set_max_batch_size(sv.max_batch_size)
        batcher.set_batch_wait_timeout_s(sv.batch_wait_timeout_s)

    async def reconfigure(self, config: dict[str, Any]) -> None:
        version = config.get("version")
        self.fault_rate = float(config.get("fault_rate") or 0.0)
        if version is None and self.role == CANARY:
            return  # idle: the ingress stops sending; stragglers get the loaded model
        version = None if version is None else str(version)
        await asyncio.to_thread(self._load, version, config.get("model"))

    def _load(self, version: str | None, reference: dict[str, Any] | None) -> None:
        from mlops_kit.serving.service import InferenceService

        if self.service is None:
            service = InferenceService(
                self.settings, self.model_name, self.alias, version=version, reference=reference
            )
            service.warm_up()
            self.service = service
        else:
            self.service.serve_version(version, reference)
        self.drift = _drift_monitor(self.service)

    def _unavailable(self) -> dict[str, Any] | None:
        if self.service is None:
            reply = Reply(503, {"error": f"no version is deployed as {self.role}"}, None, self.role)
            return _envelope(reply)
        self._calls += 1
        rate, n = self.fault_rate, self._calls
        if rate and math.floor(n * rate) > math.floor((n - 1) * rate):
            body = {"error": "injected fault", "code": "SERVING_INJECTED_FAULT"}
            return _envelope(Reply(500, body, self.service.model.version, self.role))
        return None

    async def predict(self, payloads: list[dict[str, Any]]) -> dict[str, Any]:
        """Score one caller's requests (batched with other callers'), each with the
        fields this version takes (the ingress accepts every feature of the spec)."""
        return self._unavailable() or await self.predict_batch(self.service.own_fields(payloads))

    @serve.batch(max_batch_size=256, batch_wait_timeout_s=0.0)
    async def predict_batch(self, groups: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
        service = self.service  # set before any request reaches the batch (_unavailable)
        answers = await asyncio.to_thread(service.predict_many, groups)
        version = service.model.version
        batch = {"id": uuid.uuid4().hex, "rows": sum(len(g) for g in groups)}
        if self.drift is not None:
            self._observe(groups, answers)
        out = []
        for answer in answers:
            if isinstance(answer, BadRequestError):
                out.append(_envelope(bad_request(answer, version, self.role), batch=batch))
            else:
                out.append(_envelope(Reply(200, answer, version, self.role), batch=batch))
        return out

    def _observe(self, groups: list[list[dict[str, Any]]], answers: list[Any]) -> None:
        names = self.service.model.features
        rows = [
            p
            for g, a in zip(groups, answers, strict=True)
            if not isinstance(a, BadRequestError)
            for p in g
        ]
        cols = {n: [r.get(n) for r in rows if r.get(n) is not None] for n in names}
        self.drift.observe(cols)

    async def infer(self, body: dict[str, Any]) -> dict[str, Any]:
        """An Open Inference Protocol ``infer`` call (one caller: tensors are batches)."""
        down = self._unavailable()
        if down is not None:
            return down
        version = self.service.model.version
        try:
            out = await asyncio.to_thread(self.service.infer_v2, body)
        except BadRequestError as exc:
            return _envelope(bad_request(exc, version, self.role))
        return _envelope(Reply(200, out, version, self.role))

    def describe(self) -> dict[str, Any]:
        """The version served, its features and metadata, the input drift (PSI), and which
        of the heavy libraries the replica's process has imported."""
        heavy = sorted(m for m in HEAVY_MODULES if m in sys.modules)
        if self.service is None:
            return {"role": self.role, "version": None, "replica": self.replica, "heavy": heavy}
        psi = self.drift.psi() if self.drift is not None else {}
        return {
            "role": self.role,
            "replica": self.replica,
            "heavy": heavy,
            "name": self.service.name,
            "version": self.service.model.version,
            "features": list(self.service.model.features),
            "metadata": self.service.metadata_v2(),
            "psi": psi,
        }


def _drift_monitor(service: Any) -> Any:
    """A monitor of served inputs against the training profile, when the bundle has one."""
    try:
        from mlops_kit.serving.drift import DriftMonitor
    except ImportError:  # pragma: no cover - the module ships with the package
        return None
    profile = getattr(service.model.predictor.preprocessor, "profile", None)
    return DriftMonitor(profile) if profile else None


@serve.ingress()
class Ingress:
    """The HTTP entry: builds the FastAPI app (generated from the spec) around a router.

    ``user_config``: ``{"stable_version", "canary_version", "canary_weight", "step"}``.
    """

    async def __init__(  # type: ignore[misc]
        self, stable: Any, canary: Any, settings: dict[str, Any], model: str | None, alias: str
    ) -> None:
        s = _settings(settings)
        info = await stable.describe.remote()
        name = info.get("name")
        if not name:  # a stable with nothing loaded: the name the registry would give
            from mlops_kit.registry.registry import ModelRegistry

            name = ModelRegistry(s).default_name(model)
        self.router = ServeRouter(stable, canary, s, name, alias, info.get("features") or [])
        await self.router.refresh()

    async def reconfigure(self, config: dict[str, Any]) -> None:
        self.router.set_traffic(
            config.get("stable_version"),
            config.get("canary_version"),
            float(config.get("canary_weight") or 0.0),
            int(config.get("step") or 0),
        )
        await self.router.refresh()

    def __serve_build_asgi_app__(self) -> Any:
        from mlops_kit.serving.http import create_app

        return create_app(self.router)

    def window(self, reset: bool = False) -> dict[str, Any]:
        """The analysis window so far, per role (and start a new one when ``reset``)."""
        stats = self.router.window
        snaps = stats.drain() if reset else {r: stats.snapshot(r) for r in (STABLE, CANARY)}
        return {
            **{role: snap.to_dict() for role, snap in snaps.items()},
            "served": dict(self.router.served),
            "weight": self.router.weight,
        }


def build(args: dict[str, Any] | None = None) -> Any:
    """The application (Serve's builder signature: ``args`` from the Serve config).

    Args keys: ``settings`` (a settings dict; else ``config``, the path of an
    ``mlops_kit.yaml``, and the ``MLOPS_KIT_*`` environment), ``model``, ``alias``,
    ``stable_version`` (None: the stable follows the alias), ``canary_version``,
    ``canary_weight``, ``canary_fault_rate``, ``step``.

    A version given here is located in the registry (:func:`locate`), so that its replicas
    load it without MLflow; with no version given, nothing is looked up (a Serve config
    built by :func:`mlops_kit.serving.deploy.serve_config` carries the versions and their
    references in the deployments' ``user_config``, which take the place of these).
    """
    from mlops_kit.config import load_settings
    from mlops_kit.serving.deploy import ACTOR_CPUS

    args = dict(args or {})
    if args.get("settings"):
        settings = _settings(args["settings"])
    else:
        config = args.get("config")
        if config:
            import os

            os.environ["MLOPS_KIT_CONFIG"] = str(config)
        settings = load_settings()
    sv = settings.serving
    alias = args.get("alias") or sv.alias
    model = args.get("model")
    stable_version, canary_version = args.get("stable_version"), args.get("canary_version")
    versions = {STABLE: stable_version, CANARY: canary_version}
    refs = locate(settings, versions, model) if any(versions.values()) else {}
    payload = settings.model_dump(mode="json")
    common = {"num_replicas": sv.replicas, "max_ongoing_requests": sv.max_ongoing_requests}
    deployment: Any = serve.deployment
    model_server = deployment(ModelServer)
    stable = model_server.options(
        name=STABLE,
        user_config=_side(stable_version, refs.get(STABLE)),
        ray_actor_options={"num_cpus": ACTOR_CPUS[STABLE]},
        **common,
    ).bind(payload, STABLE, model, alias)
    canary = model_server.options(
        name=CANARY,
        user_config={
            **_side(canary_version, refs.get(CANARY)),
            "fault_rate": float(args.get("canary_fault_rate") or 0.0),
        },
        ray_actor_options={"num_cpus": ACTOR_CPUS[CANARY]},
        **common,
    ).bind(payload, CANARY, model, alias)
    ingress = deployment(Ingress).options(
        name=INGRESS,
        num_replicas=1,
        ray_actor_options={"num_cpus": ACTOR_CPUS[INGRESS]},
        max_ongoing_requests=max(sv.max_ongoing_requests, 1024),
        user_config={
            "stable_version": None if stable_version is None else str(stable_version),
            "canary_version": None if canary_version is None else str(canary_version),
            "canary_weight": float(args.get("canary_weight") or 0.0),
            "step": int(args.get("step") or 0),
        },
    )
    return ingress.bind(stable, canary, payload, model, alias)


def _side(version: Any, reference: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"version": None if version is None else str(version)}
    if reference is not None:
        out["model"] = reference
    return out


def locate(
    settings: Settings, versions: dict[str, Any], model: str | None = None
) -> dict[str, dict[str, Any] | None]:
    """Each side's version (``{"stable": "3", "canary": None}``) as a model reference
    (:meth:`~mlops_kit.registry.versions.RegistryVersions.locate`, as ``to_dict()``), for
    the side's ``user_config``; None for a side without a version, and for one whose files
    :mod:`mlops_kit.storage` cannot read (its replicas then load it through the registry;
    logged as a warning).

    Raises:
        ModelNotFoundError: no such model or version.
    """
    from mlops_kit.registry.errors import MissingArtifactError
    from mlops_kit.registry.registry import ModelRegistry

    registry = ModelRegistry(settings)
    name = registry.default_name(model)
    out: dict[str, dict[str, Any] | None] = {}
    for role, version in versions.items():
        out[role] = None
        if version is None:
            continue
        try:
            out[role] = registry.locate(name, str(version)).to_dict()
        except MissingArtifactError as exc:
            log.warning(
                "the %s's replicas load version %s of '%s' through the registry: %s",
                role,
                version,
                name,
                exc,
            )
    return out


# ---------------------------------------------------------------------- driving it
def connect(settings: Settings, start: bool = False) -> None:
    """Join the Ray cluster the settings name (``serving.ray_address``), else the local
    one; then make sure Serve's HTTP proxy listens on ``serving.host:port``.

    Args:
        settings: ``serving.ray_address`` (``None``: this process's cluster if it has one,
            else the cluster running on this machine).
        start: with no cluster on this machine, start one (``ray start --head``) that
            outlives this process, as ``mlops-kit serve up`` needs.

    Raises:
        ServingError: no cluster to join (and ``start`` not asked).
    """
    import logging

    import ray

    if not ray.is_initialized():
        address = settings.serving.ray_address or "auto"
        opts: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR}
        try:
            ray.init(address=address, **opts)
        except ConnectionError:
            if settings.serving.ray_address or not start:
                raise ServingError(
                    f"no Ray cluster at {address}: start one with 'mlops-kit serve up' (or "
                    "'ray start --head'), or set serving.ray_address"
                ) from None
            _start_local_cluster()
            ray.init(address="auto", **opts)
    sv = settings.serving
    serve.start(http_options={"host": sv.host, "port": sv.port})


def _start_local_cluster() -> None:
    """``ray start --head`` on this machine (no dashboard, no usage stats)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head"]
    cmd += ["--include-dashboard=false", "--disable-usage-stats"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ServingError(f"could not start a local Ray cluster: {done.stderr.strip()[-500:]}")


def stop_local_cluster() -> None:
    """``ray stop``: the local cluster ``serve up`` started."""
    import subprocess
    import sys

    import ray

    ray.shutdown()
    subprocess.run(
        [sys.executable, "-m", "ray.scripts.scripts", "stop"], capture_output=True, check=False
    )


def deploy(
    settings: Settings,
    *,
    stable_version: str | None = None,
    canary_version: str | None = None,
    canary_weight: float = 0.0,
    canary_fault_rate: float = 0.0,
    step: int = 0,
    timeout_s: float = 600.0,
) -> str:
    """Deploy (or update in place) the application and wait until it runs (at most
    ``timeout_s``); returns its base URL.

    The application is deployed declaratively, from the Serve config of
    :func:`mlops_kit.serving.deploy.serve_config` (what ``serve deploy`` and a RayService
    apply), so Serve compares it with what runs: when only ``user_config`` differs — a
    version, the canary's weight — the running replicas are reconfigured in place, not
    replaced. The stable version defaults to the one the alias points to now. Each
    version is located in the registry here (:func:`locate`) and its reference goes with
    it in ``user_config``, so the replicas load its files without MLflow.
    """
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeDeploySchema

    from mlops_kit.registry.registry import ModelRegistry
    from mlops_kit.serving.deploy import serve_config

    connect(settings)
    if stable_version is None:
        registry = ModelRegistry(settings)
        name = registry.default_name(None)
        stable_version = str(registry.version(name, settings.serving.alias).version)
    refs = locate(settings, {STABLE: stable_version, CANARY: canary_version})
    config = serve_config(
        settings,
        stable_version=stable_version,
        canary_version=canary_version,
        canary_weight=canary_weight,
        canary_fault_rate=canary_fault_rate,
        step=step,
        stable_model=refs[STABLE],
        canary_model=refs[CANARY],
    )
    client: Any = _get_global_client()
    client.deploy_apps(ServeDeploySchema.model_validate(config), _blocking=False)
    _wait_running(settings.serving.app_name, timeout_s)
    return f"http://{settings.serving.host}:{settings.serving.port}"


def _wait_running(app_name: str, timeout_s: float) -> None:
    """Until Serve reports the application RUNNING (replicas loaded, warmed up).

    Raises:
        ServingError: it failed to deploy (Serve's message), or is still not running
            after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    state, message = "NOT_STARTED", ""
    while time.monotonic() < deadline:
        app = serve.status().applications.get(app_name)
        if app is not None:
            state = str(getattr(app.status, "value", app.status))
            message = app.message or ""
            if state == "RUNNING":
                return
            if state == "DEPLOY_FAILED":
                raise ServingError(f"application {app_name} failed to deploy: {message}")
        time.sleep(0.5)
    raise ServingError(
        f"application {app_name} is still {state} after {timeout_s:.0f} s"
        + (f": {message}" if message else "")
        + "; the replicas may still be loading on a busy machine (raise timeout_s)"
    )


def window(settings: Settings, reset: bool = False) -> dict[str, Any]:
    """The ingress's analysis window (see :meth:`Ingress.window`)."""
    connect(settings)
    handle = serve.get_app_handle(settings.serving.app_name)
    return handle.window.remote(reset).result()


def status(settings: Settings) -> dict[str, Any]:
    """Serve's status of the application and what each side serves."""
    connect(settings)
    apps = serve.status().applications
    app = apps.get(settings.serving.app_name)
    if app is None:
        return {"status": "NOT_DEPLOYED"}
    out: dict[str, Any] = {
        "status": str(app.status.value if hasattr(app.status, "value") else app.status)
    }
    if out["status"] == "RUNNING":
        out.update(window(settings))
    return out


def shutdown(settings: Settings) -> None:
    """Delete the application (the Ray cluster stays up)."""
    connect(settings)
    serve.delete(settings.serving.app_name)
