"""The HTTP API under hostile input.

Schemathesis generates requests from the app's own OpenAPI schema (valid ones and ones
the schema forbids), runs them against the ASGI app in-process and checks that no answer
is a 5xx and that every answer's status, content type and body are those the schema
declares. Then the refusals a client can meet, one by one: too many rows (413), a body
that is not JSON (415), a missing join key, a wrong type, a non-finite or out-of-range
feature, an unknown field (422 naming it), an unknown entity (the documented 422) and an
unknown model or version (404).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.serving.conftest import make_served

pytestmark = pytest.mark.slow

MAX_ROWS = 8
# Examples per operation and generation mode: enough to reach every branch of the
# request models, bounded so the whole run stays well under a minute here.
EXAMPLES = 40


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from mlops_kit.serving import InferenceService, create_app

    served = make_served(
        tmp_path_factory.mktemp("fuzz"), "iot_readings", serving={"max_request_rows": MAX_ROWS}
    )
    service = InferenceService(served["settings"], online=served["online"])
    yield {**served, "service": service, "app": create_app(service)}


@pytest.fixture(scope="module")
def http(app: dict[str, Any]) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app["app"], raise_server_exceptions=False) as client:
        yield client


# ---------------------------------------------------------------------- generated requests
def test_generated_requests_never_fail_the_server_and_match_the_schema(
    app: dict[str, Any],
) -> None:
    """Every operation of the schema, with generated valid and invalid requests: path
    parameters free (mostly unknown models: 404) and pinned to the served model and
    version (so that bodies reach the model)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    service = app["service"]
    pinned = {"name": service.name, "version": service.model.version}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app["app"])
    seen: dict[str, dict[int, int]] = {}

    def run(op: Any, mode: Any, path: dict[str, str] | None) -> None:
        label = f"{op.label} {mode.value} {'pinned' if path else 'free'}"
        counts = seen.setdefault(label, {})

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy(generation_mode=mode, path_parameters=path))
        def fuzz(case: Any) -> None:
            response = case.call()
            counts[response.status_code] = counts.get(response.status_code, 0) + 1
            case.validate_response(response, checks=checks)

        fuzz()

    operations = [result.ok() for result in schema.get_all_operations()]
    assert {"POST /predict", "POST /v2/models/{name}/infer", "GET /v2"} <= {
        op.label for op in operations
    }
    for op in operations:
        params = {p.name for p in op.path_parameters}
        path = {k: v for k, v in pinned.items() if k in params} or None
        run(op, GenerationMode.POSITIVE, None)
        if path:
            run(op, GenerationMode.POSITIVE, path)
        if op.body:  # invalid bodies (a path of strings only has no invalid value)
            run(op, GenerationMode.NEGATIVE, path)
    # the generated requests reached the model, and were refused too
    assert seen["POST /predict positive free"].get(200), seen
    assert seen["POST /predict negative free"].get(422), seen
    assert seen["POST /v2/models/{name}/infer negative pinned"].get(422), seen
    assert seen["GET /v2/models/{name} positive free"].get(404), seen


# ---------------------------------------------------------------------- refusals one by one
def _tensor(k: int, rows: int, value: float = 0.0) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "features", "datatype": "FP32", "shape": [rows, k], "data": [value] * rows * k}
        ]
    }


def _fields(body: dict[str, Any]) -> set[str]:
    """The fields a 422 names, from FastAPI's detail or the service's errors."""
    named = {str(e["loc"][-1]) for e in body.get("detail", [])}
    return named | {e["field"] for e in body.get("errors", [])}


def test_more_rows_than_allowed_answer_413(app: dict[str, Any], http: Any) -> None:
    service = app["service"]
    k = len(service.model.features)
    key = service.spec.entity.join_key
    rows = [{key: f"e-{i}"} for i in range(MAX_ROWS + 1)]
    too_many = http.post("/predict", json=rows)
    assert too_many.status_code == 413, too_many.text
    assert too_many.json()["code"] == "SERVING_TOO_LARGE"
    assert f"at most {MAX_ROWS}" in too_many.json()["error"]
    url = f"/v2/models/{service.name}/infer"
    assert http.post(url, json=_tensor(k, MAX_ROWS + 1)).status_code == 413
    # at the limit both are scored
    assert http.post(url, json=_tensor(k, MAX_ROWS)).status_code == 200
    given = {n: 1.0 for n in service.model.features}
    assert http.post("/predict", json=[{**r, **given} for r in rows[:MAX_ROWS]]).status_code == 200


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_answers_415(app: dict[str, Any], http: Any, kind: str) -> None:
    service = app["service"]
    for url in ("/predict", f"/v2/models/{service.name}/infer"):
        got = http.post(url, content=b'{"a": 1}', headers={"content-type": kind})
        assert got.status_code == 415, got.text
        assert kind in got.json()["error"] and "application/json" in got.json()["error"]


def test_invalid_requests_answer_422_naming_the_field(app: dict[str, Any], http: Any) -> None:
    service = app["service"]
    key = service.spec.entity.join_key
    first = service.model.features[0]
    cases: dict[str, tuple[Any, str]] = {
        "missing join key": ({first: 1.0}, key),
        "join key of another type": ({key: 123}, key),
        "feature of another type": ({key: "x", first: "hot"}, first),
        "unknown field": ({key: "x", "colour": "red"}, "colour"),
        "feature beyond FP32": ({key: "x", first: 1e300}, first),
    }
    for what, (body, field) in cases.items():
        got = http.post("/predict", json=body)
        assert got.status_code == 422, (what, got.text)
        refusal = got.json()
        assert field in _fields(refusal), (what, refusal)
        assert field in refusal["error"], (what, refusal["error"])
        assert refusal["code"] == "SERVING_BAD_REQUEST"
    # JSON that Python reads as non-finite numbers (not valid JSON, but parsed)
    for token in ("NaN", "Infinity", "-Infinity", "1e999"):
        raw = f'{{"{key}": "x", "{first}": {token}}}'.encode()
        got = http.post("/predict", content=raw, headers={"content-type": "application/json"})
        assert got.status_code == 422, (token, got.text)
        assert first in _fields(got.json()) and first in got.json()["error"], got.json()
    # text that is no Unicode (a lone surrogate) is refused, and the refusal encodes
    for text in (f'{{"{key}": "x\\ud800"}}', f'{{"{key}": "x", "\\ud800": 1}}'):
        got = http.post(
            "/predict", content=text.encode(), headers={"content-type": "application/json"}
        )
        assert got.status_code == 422 and "unicode" in got.json()["error"], got.text


def test_invalid_tensors_answer_422_naming_the_field(app: dict[str, Any], http: Any) -> None:
    service = app["service"]
    k = len(service.model.features)
    url = f"/v2/models/{service.name}/infer"

    def tensor(**change: Any) -> dict[str, Any]:
        return {"inputs": [{**_tensor(k, 1)["inputs"][0], **change}]}

    cases: dict[str, tuple[Any, str]] = {
        "inputs not a list": ({"inputs": "features"}, "inputs"),
        "input not an object": ({"inputs": [1]}, "0"),
        "text values": (tensor(data=["a"] * k), "data"),
        "null values": (tensor(data=[None] * k), "data"),
        "boolean values": (tensor(data=[True] * k), "data"),
        "value beyond FP32": (tensor(data=[1e300] * k), "data"),
        "negative dimension": (tensor(shape=[-1, k]), "0"),
        "shape not a list": (tensor(shape=k), "shape"),
        "id not a string": ({**tensor(), "id": 7}, "id"),
        "wrong width": (tensor(shape=[1, k + 1], data=[0.0] * (k + 1)), "inputs.features"),
        "wrong size": (tensor(shape=[2, k]), "inputs.features.data"),
        "ragged rows": (
            tensor(shape=[2, k], data=[[0.0] * k, [0.0] * (k - 1)]),
            "inputs.features.data",
        ),
    }
    for what, (body, field) in cases.items():
        got = http.post(url, json=body)
        assert got.status_code == 422, (what, got.text)
        assert field in _fields(got.json()), (what, got.json())
        assert got.json()["error"], what
    raw = '{"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, %d], "data": [%s]}]}'
    got = http.post(url, content=(raw % (k, ", ".join(["NaN"] * k))).encode())
    assert got.status_code == 422 and "finite" in got.json()["error"], got.text
    # nested rows are the protocol's other layout of the same values
    nested = tensor(shape=[2, k], data=[[0.5] * k, [0.5] * k])
    flat = tensor(shape=[2, k], data=[0.5] * 2 * k)
    assert (
        http.post(url, json=nested).json()["outputs"] == http.post(url, json=flat).json()["outputs"]
    )


def test_an_unknown_entity_answers_the_documented_422(app: dict[str, Any], http: Any) -> None:
    key = app["service"].spec.entity.join_key
    got = http.post("/predict", json=[{key: "nobody-at-all"}])
    assert got.status_code == 422, got.text
    body = got.json()
    assert body["code"] == "SERVING_BAD_REQUEST"
    assert "has no online row" in body["error"] and "nobody-at-all" in body["error"]
    assert body["errors"] == [
        {"request": 0, "field": key, "error": "no online features for this id"}
    ]


def test_an_unknown_model_or_version_answers_404(app: dict[str, Any], http: Any) -> None:
    service = app["service"]
    k = len(service.model.features)
    name, version = service.name, service.model.version
    for url in ("/v2/models/other", "/v2/models/other/ready", f"/v2/models/{name}/versions/999"):
        got = http.get(url)
        assert got.status_code == 404 and got.json()["error"], (url, got.text)
    assert http.get(f"/v2/models/{name}/versions/999/ready").status_code == 404
    for url in ("/v2/models/other/infer", f"/v2/models/{name}/versions/999/infer"):
        got = http.post(url, json=_tensor(k, 1))
        assert got.status_code == 404 and got.json()["error"], (url, got.text)
    assert http.get(f"/v2/models/{name}/versions/{version}/ready").json() == {
        "name": name,
        "ready": True,
    }
    # a route that does not exist answers the same error body
    assert http.get("/v3/anything").json()["error"] == "Not Found"


def test_a_finite_fp32_feature_far_below_the_mean_is_scored(app: dict[str, Any], http: Any) -> None:
    service = app["service"]
    given = {n: -3.4e38 for n in service.model.features}
    got = http.post("/predict", json={service.spec.entity.join_key: "x", **given})
    assert got.status_code == 200, got.text  # saturated, not overflowed to -inf -> NaN
