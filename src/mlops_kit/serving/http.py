"""The HTTP face of an :class:`~mlops_kit.serving.service.InferenceService` (FastAPI).

Routes:

* ``POST /predict`` — a request object or a list of them (the dataset spec's request
  model: the join key, optional features); answers one object per request with its score
  and the model version. The OpenAPI schema at ``/openapi.json`` is generated from the spec.
* ``GET /v2/health/live``, ``GET /v2/health/ready`` — the Open Inference Protocol's health.
* ``GET /v2/models/<name>`` and ``/v2/models/<name>/versions/<v>`` — model metadata.
* ``POST /v2/models/<name>/infer`` (and under ``/versions/<v>``) — an FP32 ``features``
  tensor in, ``probability`` out.

Bad requests answer 422 with each bad field named; an unknown model or version 404.

(No ``from __future__ import annotations`` here: FastAPI reads the route annotations,
which name the request model generated at run time.)
"""

from typing import Any

from mlops_kit._lazy import require
from mlops_kit.serving.errors import BadRequestError
from mlops_kit.serving.service import InferenceService


def create_app(service: InferenceService) -> Any:
    """A FastAPI application serving ``service``."""
    require("fastapi", "serving")
    from fastapi import Body, FastAPI, HTTPException
    from fastapi.responses import JSONResponse

    spec = service.spec
    app = FastAPI(
        title=f"mlops_kit inference: {spec.name} v{spec.version}",
        description=f"Scores {spec.entity.name}s with the '{service.alias}' of {service.name}.",
    )
    request_type = service._request
    response_type = service._response

    @app.exception_handler(BadRequestError)
    async def _bad(_: Any, exc: BadRequestError) -> JSONResponse:
        return JSONResponse(
            status_code=422, content={"error": exc.message, "code": exc.code, "errors": exc.errors}
        )

    def _model(name: str, version: str | None = None) -> None:
        if name != service.name:
            raise HTTPException(404, f"no model '{name}' here (this serves '{service.name}')")
        if version is not None and version != service.model.version:
            raise HTTPException(
                404,
                f"version {version} of '{name}' is not served (serving {service.model.version})",
            )

    @app.post("/predict", response_model=list[response_type])  # type: ignore[valid-type]
    def predict(
        body: request_type | list[request_type] = Body(...),  # type: ignore[valid-type]
    ) -> list[dict[str, Any]]:
        items = body if isinstance(body, list) else [body]
        return service.predict([i.model_dump() for i in items])

    @app.get("/v2/health/live")
    def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    def ready() -> dict[str, bool]:
        return {"ready": service.model is not None}

    @app.get("/v2/models/{name}")
    def metadata(name: str) -> dict[str, Any]:
        _model(name)
        return service.metadata_v2()

    @app.get("/v2/models/{name}/versions/{version}")
    def metadata_version(name: str, version: str) -> dict[str, Any]:
        _model(name, version)
        return service.metadata_v2()

    @app.post("/v2/models/{name}/infer")
    def infer(name: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        _model(name)
        return service.infer_v2(body)

    @app.post("/v2/models/{name}/versions/{version}/infer")
    def infer_version(name: str, version: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        _model(name, version)
        return service.infer_v2(body)

    return app
