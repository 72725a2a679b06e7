"""The HTTP face of an :class:`~mlops_kit.serving.service.InferenceService` (FastAPI).

Routes:

* ``POST /predict`` — a request object or a list of them (the dataset spec's request
  model: the join key, optional features); answers one object per request with its score
  and the model version. The OpenAPI schema at ``/openapi.json`` is generated from the spec.
* ``GET /v2/health/live``, ``GET /v2/health/ready`` — the Open Inference Protocol's health.
* ``GET /v2`` — server metadata (name, version, extensions: none).
* ``GET /v2/models/<name>`` and ``/v2/models/<name>/versions/<v>`` — model metadata;
  ``.../ready`` under either — model readiness (200 ready, 503 not yet).
* ``POST /v2/models/<name>/infer`` (and under ``/versions/<v>``) — an FP32 ``features``
  tensor in, ``probability`` out.
* ``GET /metrics`` — Prometheus metrics, where the router records them (Ray Serve).

Bad requests answer 422 with each bad field named; more rows than
``serving.max_request_rows`` 413; a body that is not JSON 415 (so is a body in Triton's
binary tensor extension, which this server does not offer); an unknown model or version
404. Every error body carries ``error``, the protocol's message. Every answer names the
model version in the ``x-model-version`` header.

(No ``from __future__ import annotations`` here: FastAPI reads the route annotations,
which name the request model generated at run time.)
"""

from typing import Any

from mlops_kit._lazy import require
from mlops_kit._version import __version__
from mlops_kit.serving.router import LocalRouter, Reply, Router, infer_rows, too_large
from mlops_kit.serving.service import InferenceService

_JSON = ("application/json", "application/problem+json")


def create_app(target: InferenceService | Router, max_rows: int | None = None) -> Any:
    """A FastAPI application serving ``target``: an in-process service, or a router
    (the Ray Serve ingress's, which splits traffic between stable and canary)."""
    require("fastapi", "serving")
    from fastapi import Body, FastAPI, Request
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response

    router = target if isinstance(target, Router) else LocalRouter(target, max_rows)
    spec = router.spec
    app = FastAPI(
        title=f"mlops_kit inference: {spec.name} v{spec.version}",
        description=f"Scores {spec.entity.name}s with the '{router.alias}' of {router.name}.",
        # every body here is JSON: one sent without a Content-Type is read as JSON
        strict_content_type=False,
    )
    request_type = router.request_type
    response_type = router.response_type

    @app.middleware("http")
    async def _json_only(request: Request, call_next: Any) -> Any:
        if request.method == "POST" and "inference-header-content-length" in request.headers:
            return JSONResponse(
                status_code=415,
                content={
                    "error": "binary tensor data is not accepted (the server offers no "
                    "protocol extension): send the tensors as JSON (tritonclient: "
                    "binary_data=False)",
                    "code": "SERVING_UNSUPPORTED_MEDIA_TYPE",
                },
            )
        if request.method == "POST":
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind and kind not in _JSON and not kind.endswith("+json"):
                return JSONResponse(
                    status_code=415,
                    content={
                        "error": f"content type '{kind}' is not accepted: send JSON "
                        "('Content-Type: application/json')",
                        "code": "SERVING_UNSUPPORTED_MEDIA_TYPE",
                    },
                )
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Any:
        detail = jsonable_encoder(exc.errors())
        first = detail[0] if detail else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        return JSONResponse(
            status_code=422,
            content={
                "error": f"{len(detail)} problem(s) in the request; first: {where}: "
                f"{first.get('msg', 'invalid')}",
                "code": "SERVING_BAD_REQUEST",
                "detail": detail,
            },
        )

    def _respond(reply: Reply) -> Any:
        headers = {"x-model-version": reply.version} if reply.version else None
        return JSONResponse(status_code=reply.status, content=reply.body, headers=headers)

    def _unknown(name: str, version: str | None = None) -> Any:
        if name != router.name:
            return JSONResponse(
                status_code=404,
                content={"error": f"no model '{name}' here (this serves '{router.name}')"},
            )
        if version is not None and version not in router.versions():
            served = ", ".join(router.versions()) or "none"
            return JSONResponse(
                status_code=404,
                content={"error": f"version {version} of '{name}' is not served ({served} is)"},
            )
        return None

    @app.post(
        "/predict",
        response_model=list[response_type],  # type: ignore[valid-type]
        responses={413: {"description": "too many rows"}, 415: {"description": "not JSON"}},
    )
    async def predict(
        body: request_type | list[request_type] = Body(...),  # type: ignore[valid-type]
    ) -> Any:
        items = body if isinstance(body, list) else [body]
        if len(items) > router.max_rows:
            return _respond(too_large(len(items), router.max_rows))
        return _respond(await router.predict([i.model_dump() for i in items]))

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> Any:
        ok = router.ready()
        return JSONResponse(status_code=200 if ok else 503, content={"ready": ok})

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "mlops_kit", "version": __version__, "extensions": []}

    @app.get("/v2/models/{name}")
    async def metadata(name: str) -> Any:
        return _unknown(name) or router.metadata()

    @app.get("/v2/models/{name}/versions/{version}")
    async def metadata_version(name: str, version: str) -> Any:
        return _unknown(name, version) or {**router.metadata(), "versions": [version]}

    def _model_ready(name: str, version: str | None) -> Any:
        missing = _unknown(name, version)
        if missing is not None:
            return missing
        ok = router.ready()
        return JSONResponse(status_code=200 if ok else 503, content={"name": name, "ready": ok})

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> Any:
        return _model_ready(name, None)

    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def model_version_ready(name: str, version: str) -> Any:
        return _model_ready(name, version)

    async def _infer(name: str, version: str | None, body: Any) -> Any:
        missing = _unknown(name, version)
        if missing is not None:
            return missing
        rows = infer_rows(body)
        if rows > router.max_rows:
            return _respond(too_large(rows, router.max_rows))
        return _respond(await router.infer(body, version))

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, body: dict[str, Any] = Body(...)) -> Any:
        return await _infer(name, None, body)

    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer_version(name: str, version: str, body: dict[str, Any] = Body(...)) -> Any:
        return await _infer(name, version, body)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Any:
        out = router.metrics()
        if out is None:
            return Response(status_code=404, content=b"no metrics recorded by this server\n")
        return Response(content=out[0], media_type=out[1])

    return app
