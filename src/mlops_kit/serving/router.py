"""What the HTTP API serves: a :class:`Router` answers each request with a :class:`Reply`.

The FastAPI application (:func:`mlops_kit.serving.http.create_app`) only parses, calls a
router and turns its reply into a response, so one API serves two set-ups:

* :class:`LocalRouter` — one :class:`~mlops_kit.serving.service.InferenceService` in the
  process (``mlops-kit serve local``, notebooks, tests);
* :class:`ServeRouter`, the Ray Serve ingress's (:mod:`mlops_kit.serving.ray_app`) —
  requests split by weight between the stable and the canary model deployments, batched
  across callers.

A reply carries its HTTP status, so a client error is never a 500: 422 for an invalid
request (each bad field named), 413 for more rows than ``serving.max_request_rows``, 404 for
a model or version that is not served.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_kit.serving.errors import BadRequestError

if TYPE_CHECKING:
    from mlops_kit.config import Settings
    from mlops_kit.data.spec import DatasetSpec
    from mlops_kit.serving.service import InferenceService

STABLE, CANARY = "stable", "canary"


@dataclass
class Reply:
    """An answer: the HTTP status, the JSON body, the version and role that produced it."""

    status: int
    body: Any
    version: str | None = None
    role: str = "stable"

    @property
    def ok(self) -> bool:
        return self.status < 400


def bad_request(exc: BadRequestError, version: str | None = None, role: str = "stable") -> Reply:
    """The 422 reply of a refused request."""
    body = {"error": exc.message, "code": exc.code, "errors": exc.errors}
    return Reply(422, body, version, role)


def too_large(rows: int, limit: int) -> Reply:
    """The 413 reply of a request carrying more rows than allowed."""
    return Reply(
        413,
        {
            "error": f"{rows} rows in one request, at most {limit} are accepted: split the "
            "request (or raise serving.max_request_rows)",
            "code": "SERVING_TOO_LARGE",
        },
    )


def infer_rows(body: Any) -> int:
    """Rows of an Open Inference Protocol request (its first input's first dimension)."""
    try:
        return int(body["inputs"][0]["shape"][0])
    except (KeyError, IndexError, TypeError, ValueError):
        return 0


class Router:
    """The interface the HTTP API serves (see the module docstring).

    Attributes:
        spec: the dataset spec (request and response models are generated from it).
        name: the registered model served.
        alias: the alias the stable side follows.
        request_type: the spec's request model for the served features.
        response_type: the spec's response model.
        max_rows: rows one request may carry.
    """

    spec: DatasetSpec
    name: str
    alias: str
    request_type: Any
    response_type: Any
    max_rows: int

    async def predict(self, payloads: list[dict[str, Any]]) -> Reply:
        """Score a list of request objects."""
        raise NotImplementedError

    async def infer(self, body: dict[str, Any], version: str | None = None) -> Reply:
        """An Open Inference Protocol ``infer`` call, on ``version`` when one is named."""
        raise NotImplementedError

    def versions(self) -> list[str]:
        """The versions served now (stable first)."""
        raise NotImplementedError

    def metadata(self) -> dict[str, Any]:
        """Open Inference Protocol model metadata."""
        raise NotImplementedError

    def ready(self) -> bool:
        return bool(self.versions())

    def metrics(self) -> tuple[bytes, str] | None:
        """Prometheus exposition text and its content type, or None when not recorded."""
        return None

    async def collect(self) -> None:
        """Gather what :meth:`metrics` reports from elsewhere (called before a scrape)."""


class LocalRouter(Router):
    """Every request to one in-process :class:`InferenceService` (scored in a worker
    thread, so the event loop keeps accepting requests)."""

    def __init__(self, service: InferenceService, max_rows: int | None = None) -> None:
        self.service = service
        self.spec = service.spec
        self.name = service.name
        self.alias = service.alias
        self.request_type = service._request
        self.response_type = service._response
        self.max_rows = max_rows or service.settings.serving.max_request_rows

    async def predict(self, payloads: list[dict[str, Any]]) -> Reply:
        from starlette.concurrency import run_in_threadpool

        version = self.service.model.version
        try:
            answers = await run_in_threadpool(self.service.predict, payloads)
        except BadRequestError as exc:
            return bad_request(exc, version)
        return Reply(200, answers, version)

    async def infer(self, body: dict[str, Any], version: str | None = None) -> Reply:
        from starlette.concurrency import run_in_threadpool

        served = self.service.model.version
        if version is not None and version != served:
            return Reply(404, {"error": f"version {version} of '{self.name}' is not served"})
        try:
            return Reply(200, await run_in_threadpool(self.service.infer_v2, body), served)
        except BadRequestError as exc:
            return bad_request(exc, served)

    def versions(self) -> list[str]:
        return [self.service.model.version]

    def metadata(self) -> dict[str, Any]:
        return self.service.metadata_v2()


class ServeRouter(Router):
    """The ingress's router: each request to the canary with probability ``weight``,
    else to the stable; a request naming a version goes to the side serving it."""

    def __init__(
        self,
        stable: Any,
        canary: Any,
        settings: Settings,
        name: str,
        alias: str,
        features: list[str],
    ) -> None:
        from mlops_kit.data.request import request_model, response_model, spec_features
        from mlops_kit.data.spec import spec_of
        from mlops_kit.serving.metrics import ServingMetrics, WindowStats

        self.handles = {STABLE: stable, CANARY: canary}
        self.spec = spec_of(settings)
        self.name = name
        self.alias = alias
        # stable and canary may take different features, and a version move changes
        # them: the ingress accepts every feature of the spec, each side what it takes
        self.request_type = request_model(self.spec, spec_features(self.spec, features))
        self.response_type = response_model(self.spec)
        self.max_rows = settings.serving.max_request_rows
        self.served: dict[str, str | None] = {STABLE: None, CANARY: None}
        self.follows_alias = True
        self.weight = 0.0
        self.step = 0
        self.recorder = ServingMetrics(name)
        self.window = WindowStats()
        self._batches: OrderedDict[str, None] = OrderedDict()
        self._meta: dict[str, Any] = {}
        self._features: dict[str, list[str] | None] = {STABLE: None, CANARY: None}

    def set_traffic(
        self, stable: str | None, canary: str | None, weight: float, step: int = 0
    ) -> None:
        self.follows_alias = stable is None
        self.served = {STABLE: stable, CANARY: canary}
        self.weight = weight if canary is not None else 0.0
        self.step = step
        self.recorder.set_rollout(self.weight, step)

    def _role(self, version: str | None, tensor: bool = False) -> str | None:
        if version is None:
            if tensor and self._features[CANARY] != self._features[STABLE]:
                # a tensor holds the columns of the metadata at /v2/models/<name>, the
                # stable's: a canary on other features answers only calls naming it
                return STABLE
            return CANARY if self.weight and random.random() < self.weight else STABLE
        for role, served in self.served.items():
            if served == version:
                return role
        return None

    async def _call(self, method: str, arg: Any, version: str | None = None) -> Reply:
        role = self._role(version, tensor=method == "infer")
        if role is None:
            return Reply(404, {"error": f"version {version} of '{self.name}' is not served"})
        t0 = time.perf_counter()
        try:
            env = await getattr(self.handles[role], method).remote(arg)
        except Exception as exc:  # a replica died or the call failed: the client sees a 503
            env = {"status": 503, "body": {"error": f"{role} unavailable: {exc}"}}
        seconds = time.perf_counter() - t0
        reply = Reply(env["status"], env["body"], env.get("version"), role)
        self._record(reply, seconds, env.get("batch"))
        return reply

    def _record(self, reply: Reply, seconds: float, batch: dict[str, Any] | None) -> None:
        version = reply.version or "none"
        outcome = "ok" if reply.ok else "client_error" if reply.status < 500 else "server_error"
        scores: list[float] = []
        if reply.ok and isinstance(reply.body, list):
            scores = [float(a["score"]) for a in reply.body]
        self.recorder.observe_request(version, reply.role, outcome, seconds, scores)
        self.window.record(reply.role, reply.status < 500, seconds, scores or None)
        if batch and batch["id"] not in self._batches:
            self._batches[batch["id"]] = None
            if len(self._batches) > 4096:
                self._batches.popitem(last=False)
            self.recorder.observe_batch(version, batch["rows"])

    async def predict(self, payloads: list[dict[str, Any]]) -> Reply:
        return await self._call("predict", payloads)

    async def infer(self, body: dict[str, Any], version: str | None = None) -> Reply:
        return await self._call("infer", body, version)

    def versions(self) -> list[str]:
        return [v for v in (self.served[STABLE], self.served[CANARY]) if v is not None]

    def metadata(self) -> dict[str, Any]:
        meta = dict(self._meta.get(STABLE) or {})
        meta["versions"] = self.versions()
        meta.setdefault("parameters", {})["canary_weight"] = self.weight
        return meta

    def metrics(self) -> tuple[bytes, str] | None:
        return self.recorder.render()

    async def collect(self) -> None:
        await self.refresh()

    async def refresh(self) -> None:
        """Ask each side what it serves (its metadata and input drift) for /metrics; a
        stable that follows the alias is served under the version it answers with."""
        for role, handle in self.handles.items():
            info = await handle.describe.remote()
            if info.get("version") is None:
                continue
            if role == STABLE and self.follows_alias:
                self.served[STABLE] = info["version"]
            self._meta[role] = info.get("metadata")
            self._features[role] = info.get("features")
            if info.get("psi"):
                self.recorder.set_psi(info["version"], info["psi"])
