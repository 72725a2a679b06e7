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

import json
import math
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from mlops_kit._lazy import require
from mlops_kit._version import __version__
from mlops_kit.serving.router import LocalRouter, Reply, Router, infer_rows, too_large
from mlops_kit.serving.service import InferenceService

_JSON = ("application/json", "application/problem+json")
_FP32_MAX = 3.4028234663852886e38
_NUMERIC = {"FP16", "FP32", "FP64"} | {f"{s}INT{b}" for s in ("", "U") for b in (8, 16, 32, 64)}


class ErrorBody(BaseModel):
    """The body of every refusal: ``error`` is the Open Inference Protocol's message."""

    error: str
    code: str | None = None


class TensorInput(BaseModel):
    """An input tensor of an Open Inference Protocol request (``$request_input``).

    ``data`` holds the values in row-major order, flat or nested (the protocol allows
    both); it is flattened here. Values of a numeric datatype must be finite numbers
    (within the FP32 range for ``FP32``); null is no tensor value.
    """

    name: str
    shape: list[Annotated[int, Field(ge=0, le=2**64 - 1)]]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any]

    @field_validator("data")
    @classmethod
    def _flatten(cls, data: list[Any], info: ValidationInfo) -> list[Any]:
        numeric = info.data.get("datatype") in _NUMERIC
        fp32 = info.data.get("datatype") == "FP32"
        flat: list[Any] = []
        stack = [iter(data)]
        while stack:
            item = next(stack[-1], stack)
            if item is stack:
                stack.pop()
            elif isinstance(item, list):
                stack.append(iter(item))
            elif numeric and (isinstance(item, bool) or not isinstance(item, int | float)):
                raise ValueError(f"a numeric tensor holds numbers, got {json.dumps(item)[:40]}")
            elif not isinstance(item, bool | int | float | str):
                raise ValueError(
                    f"tensor values are numbers, strings or booleans, got {json.dumps(item)[:40]}"
                )
            elif numeric and isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"tensor values must be finite, got {item}")
            elif fp32 and isinstance(item, int | float) and abs(item) > _FP32_MAX:
                raise ValueError(f"{item:.3g} is beyond the FP32 range (+-{_FP32_MAX:.4g})")
            else:
                flat.append(item)
        return flat


class TensorOutput(BaseModel):
    """An output an Open Inference Protocol request asks for (``$request_output``)."""

    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    """An Open Inference Protocol inference request (``$inference_request``)."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[TensorInput]
    outputs: list[TensorOutput] | None = None


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    what = {
        400: "the body is not readable JSON",
        404: "no such model or version",
        413: "more rows than serving.max_request_rows",
        415: "not JSON",
        422: "invalid request: each bad field named",
        503: "not ready",
    }
    return {s: {"model": ErrorBody, "description": what[s]} for s in statuses}


class JsonOnly:
    """Answers 415 to a POST whose body is not JSON, before any parsing (pure ASGI: no
    per-request task or body buffering, unlike ``@app.middleware``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            refusal = _refusal(dict(scope["headers"]))
            if refusal is not None:
                from starlette.responses import JSONResponse

                await JSONResponse(status_code=415, content=refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _refusal(headers: dict[bytes, bytes]) -> dict[str, str] | None:
    if b"inference-header-content-length" in headers:
        return {
            "error": "binary tensor data is not accepted (the server offers no protocol "
            "extension): send the tensors as JSON (tritonclient: binary_data=False)",
            "code": "SERVING_UNSUPPORTED_MEDIA_TYPE",
        }
    kind = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
    if kind and kind not in _JSON and not kind.endswith("+json"):
        return {
            "error": f"content type '{kind}' is not accepted: send JSON "
            "('Content-Type: application/json')",
            "code": "SERVING_UNSUPPORTED_MEDIA_TYPE",
        }
    return None


def create_app(target: InferenceService | Router, max_rows: int | None = None) -> Any:
    """A FastAPI application serving ``target``: an in-process service, or a router
    (the Ray Serve ingress's, which splits traffic between stable and canary)."""
    require("fastapi", "serving")
    from fastapi import Body, FastAPI, Request
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException

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

    app.add_middleware(JsonOnly)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Any:
        # without the offending input: it may be what JSON cannot carry (NaN, 1e999)
        detail = jsonable_encoder(
            [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in exc.errors()]
        )
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

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Any:
        return JSONResponse(
            status_code=exc.status_code,
            content={"error": str(exc.detail), "detail": exc.detail},
            headers=exc.headers,
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
        responses=_errors(400, 413, 415, 422),
    )
    async def predict(
        body: request_type | list[request_type] = Body(...),  # type: ignore[valid-type]
    ) -> Any:
        items = body if isinstance(body, list) else [body]
        if len(items) > router.max_rows:
            return _respond(too_large(len(items), router.max_rows))
        payloads = [i.model_dump(exclude_unset=True) for i in items]
        beyond = [
            {"request": r, "field": n, "error": f"beyond the FP32 range (+-{_FP32_MAX:.4g})"}
            for r, p in enumerate(payloads)
            for n, v in p.items()
            if isinstance(v, float) and abs(v) > _FP32_MAX
        ]
        if beyond:
            first = beyond[0]
            refusal = {
                "error": f"request {first['request']}, {first['field']}: the model scores "
                f"FP32 values; send values within +-{_FP32_MAX:.4g}",
                "code": "SERVING_BAD_REQUEST",
                "errors": beyond,
            }
            return _respond(Reply(422, refusal))
        return _respond(await router.predict(payloads))

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", responses=_errors(503))
    async def ready() -> Any:
        ok = router.ready()
        return JSONResponse(status_code=200 if ok else 503, content={"ready": ok})

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "mlops_kit", "version": __version__, "extensions": []}

    @app.get("/v2/models/{name}", responses=_errors(404))
    async def metadata(name: str) -> Any:
        return _unknown(name) or router.metadata()

    @app.get("/v2/models/{name}/versions/{version}", responses=_errors(404))
    async def metadata_version(name: str, version: str) -> Any:
        return _unknown(name, version) or {**router.metadata(), "versions": [version]}

    def _model_ready(name: str, version: str | None) -> Any:
        missing = _unknown(name, version)
        if missing is not None:
            return missing
        ok = router.ready()
        return JSONResponse(status_code=200 if ok else 503, content={"name": name, "ready": ok})

    @app.get("/v2/models/{name}/ready", responses=_errors(404, 503))
    async def model_ready(name: str) -> Any:
        return _model_ready(name, None)

    @app.get("/v2/models/{name}/versions/{version}/ready", responses=_errors(404, 503))
    async def model_version_ready(name: str, version: str) -> Any:
        return _model_ready(name, version)

    async def _infer(name: str, version: str | None, request: InferenceRequest) -> Any:
        missing = _unknown(name, version)
        if missing is not None:
            return missing
        body = request.model_dump(exclude_none=True)
        rows = infer_rows(body)
        if rows > router.max_rows:
            return _respond(too_large(rows, router.max_rows))
        return _respond(await router.infer(body, version))

    infer_errors = _errors(400, 404, 413, 415, 422)

    @app.post("/v2/models/{name}/infer", responses=infer_errors)
    async def infer(name: str, body: InferenceRequest) -> Any:
        return await _infer(name, None, body)

    @app.post("/v2/models/{name}/versions/{version}/infer", responses=infer_errors)
    async def infer_version(name: str, version: str, body: InferenceRequest) -> Any:
        return await _infer(name, version, body)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Any:
        await router.collect()
        out = router.metrics()
        if out is None:
            return Response(status_code=404, content=b"no metrics recorded by this server\n")
        return Response(content=out[0], media_type=out[1])

    return app
