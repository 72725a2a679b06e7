"""The inference service and its HTTP API, for both bundled datasets: the champion scores
requests with online or given features, names its version, follows the alias, refuses
bad requests by field, and speaks the Open Inference Protocol."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit.config import load_settings
from mlops_kit.data.spec import bundled_specs, spec_of
from mlops_kit.etl import features_table, read_table
from mlops_kit.etl.layout import TIMESTAMP
from tests.serving.conftest import CONFIG, free_port, make_served

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=bundled_specs())
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A lake of the dataset, its features materialized, a champion in the registry."""
    return make_served(tmp_path_factory.mktemp(request.param), request.param)


def _newest(s: Any) -> dict[str, dict]:
    spec = spec_of(s)
    rows = sorted(read_table(s, features_table(s)).to_pylist(), key=lambda r: r[TIMESTAMP])
    return {r[spec.entity.join_key]: r for r in rows}


def test_online_and_given_features_score_like_the_bundle(served) -> None:
    from mlops_kit.model.predictor import load_predictor
    from mlops_kit.serving import InferenceService

    s = served["settings"]
    key = spec_of(s).entity.join_key
    service = InferenceService(s, online=served["online"])
    bundle = load_predictor(served["trained"]["bundle_uri"])
    assert service.model.features == tuple(bundle.feature_names)
    newest = _newest(s)
    ids = sorted(newest)[:3]
    got = service.predict([{key: i} for i in ids])
    want = bundle.predict({n: [newest[i][n] for i in ids] for n in bundle.feature_names})
    for row, w, i in zip(got, want, ids, strict=True):
        assert row[key] == i and row["features_from"] == "online"
        assert row["model_version"] == service.model.version
        assert row["score"] == pytest.approx(float(w), rel=1e-6)
    # features sent in the request are used as they are
    given = {n: 1.0 for n in bundle.feature_names}
    (row,) = service.predict([{key: "anyone", **given}])
    assert row["features_from"] == "request"
    assert row["score"] == pytest.approx(float(bundle.predict({n: [1.0] for n in given})[0]))


def test_bad_requests_are_refused_by_field(served) -> None:
    from mlops_kit.serving import BadRequestError, InferenceService

    s = served["settings"]
    key = spec_of(s).entity.join_key
    service = InferenceService(s, online=served["online"])
    first = service.model.features[0]
    with pytest.raises(BadRequestError) as err:
        service.predict([{key: "a"}, {"entity": "b"}, {key: "c", first: math.inf}])
    fields = {(e["request"], e["field"]) for e in err.value.errors}
    assert fields == {(1, key), (1, "entity"), (2, first)}
    with pytest.raises(BadRequestError, match="has no online row"):
        service.predict([{key: "nobody-at-all"}])


def test_http_api_and_open_inference_protocol(served) -> None:
    from fastapi.testclient import TestClient

    from mlops_kit.serving import InferenceService, create_app

    s = served["settings"]
    key = spec_of(s).entity.join_key
    service = InferenceService(s, online=served["online"])
    http = TestClient(create_app(service))
    ids = sorted(_newest(s))[:2]
    one = http.post("/predict", json={key: ids[0]})
    assert one.status_code == 200, one.text
    many = http.post("/predict", json=[{key: i} for i in ids])
    assert [r[key] for r in many.json()] == ids
    assert many.json()[0]["score"] == one.json()[0]["score"]
    bad = http.post("/predict", json={"nope": 1})
    assert bad.status_code == 422
    schema = http.get("/openapi.json").json()
    assert any(key in str(v) for v in schema["components"]["schemas"].values())
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").json() == {"ready": True}
    meta = http.get(f"/v2/models/{service.name}").json()
    k = len(service.model.features)
    assert meta["inputs"][0]["shape"] == [-1, k] and meta["versions"] == [service.model.version]
    assert http.get("/v2/models/other").status_code == 404
    body = {
        "id": "r1",
        "inputs": [
            {"name": "features", "datatype": "FP32", "shape": [2, k], "data": [0.5] * (2 * k)}
        ],
    }
    out = http.post(f"/v2/models/{service.name}/versions/{service.model.version}/infer", json=body)
    assert out.status_code == 200, out.text
    result = out.json()
    assert result["id"] == "r1" and result["model_version"] == service.model.version
    assert result["outputs"][0]["shape"] == [2, 1]
    assert result["outputs"][0]["data"][0] == pytest.approx(result["outputs"][0]["data"][1])
    wrong = {
        "inputs": [
            {"name": "features", "datatype": "FP32", "shape": [1, k + 1], "data": [0.0] * (k + 1)}
        ]
    }
    refused = http.post(f"/v2/models/{service.name}/infer", json=wrong)
    assert refused.status_code == 422 and f"[n, {k}]" in refused.json()["error"]


def test_the_service_follows_the_alias_and_refuses_another_spec_version(served) -> None:
    from mlops_kit.demo.model import register_and_promote, train_on_lake
    from mlops_kit.serving import InferenceService, ServingError

    s = served["settings"]
    service = InferenceService(s, online=served["online"])
    before = service.model.version
    assert service.refresh() is False
    again = train_on_lake(s, config={**CONFIG, "seed": 1})
    out = register_and_promote(
        s, again["run_id"], evaluation_uri=again["evaluation_uri"], policy=served["policy"]
    )
    assert out["champion"]["accepted"], out["champion"]
    assert service.refresh() is True and service.model.version != before
    key = spec_of(s).entity.join_key
    (row,) = service.predict([{key: sorted(_newest(s))[0]}])
    assert row["model_version"] == service.model.version
    # the same champion under version 2 of the dataset spec is not served
    raw = spec_of(s).model_dump(mode="json", exclude_none=True)
    raw["version"] = 2
    v2 = Path(served["root"]) / "v2.yaml"
    v2.write_text(yaml.safe_dump(raw, sort_keys=False))
    other = load_settings(home=s.home, dataset=str(v2))
    with pytest.raises(ServingError, match=r"settings select .* v2"):
        InferenceService(other)


def test_mlops_kit_serve_answers_over_http(served, tmp_path: Path) -> None:
    """``mlops-kit serve local`` in its own process: ready, then a prediction over real HTTP."""
    import json
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    s = served["settings"]
    config = tmp_path / "mlops_kit.yaml"
    config.write_text(yaml.safe_dump({"home": str(s.home), "dataset": s.dataset}))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_KIT_")}
    env["MLOPS_KIT_CONFIG"] = str(config)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_kit.cli.main", "serve", "local", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=1) as r:
                    if json.loads(r.read()) == {"ready": True}:
                        break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(
                        f"mlops-kit serve exited: {proc.stderr.read() if proc.stderr else ''}"
                    )
                time.sleep(0.1)
        key = spec_of(s).entity.join_key
        entity = sorted(_newest(s))[0]
        req = urllib.request.Request(
            f"{base}/predict",
            data=json.dumps({key: entity}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            (answer,) = json.loads(r.read())
        assert answer[key] == entity and answer["features_from"] == "online"
        assert 0.0 <= answer["score"] <= 1.0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
