"""The inference service and its HTTP API, for both bundled datasets: the champion scores
requests with online or given features, names its version, follows the alias, refuses
bad requests by field, and speaks the Open Inference Protocol. A model reference (what a
Ray Serve replica is given) serves the same scores from the files it names, locally or on
S3, without importing MLflow; missing or damaged files are refused naming the version."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import sys
from dataclasses import replace
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


HEAVY = ("mlflow", "sqlalchemy", "feast", "torch", "onnx")


def _located(s: Any, version: str = "champion") -> Any:
    from mlops_kit.registry.registry import ModelRegistry

    registry = ModelRegistry(s)
    return registry.locate(registry.default_name(None), version)


def test_a_reference_serves_like_the_registry_in_a_process_without_mlflow(
    served, tmp_path: Path
) -> None:
    """What a Ray Serve replica does with the reference deploy() gives it, in a fresh
    interpreter: the files it names are loaded, and no heavy library is imported."""
    from mlops_kit.serving import InferenceService

    s = served["settings"]
    key = spec_of(s).entity.join_key
    ref = _located(s)
    requests = [{key: i} for i in sorted(_newest(s))[:3]]
    want = InferenceService(s, online=served["online"]).predict(requests)
    (tmp_path / "settings.json").write_text(s.model_dump_json())
    code = (
        "import json, sys\n"
        "from mlops_kit.config import Settings\n"
        "from mlops_kit.serving.service import InferenceService\n"
        "settings = Settings.model_validate_json(open(sys.argv[1]).read())\n"
        "service = InferenceService(settings, reference=json.loads(sys.argv[2]))\n"
        "service.warm_up()\n"
        "answers = service.predict(json.loads(sys.argv[3]))\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print(json.dumps({'answers': answers, 'heavy': heavy}))\n"
    )
    argv = [str(tmp_path / "settings.json"), json.dumps(ref.to_dict()), json.dumps(requests)]
    run = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["heavy"] == []
    assert [a["model_version"] for a in out["answers"]] == [ref.version] * len(requests)
    got = [a["score"] for a in out["answers"]]
    assert got == pytest.approx([a["score"] for a in want], rel=1e-6)


def _copy(ref: Any, folder: Path) -> Any:
    """The reference's files copied into ``folder``, and a reference to the copies."""
    folder.mkdir()
    graph_folder = Path(ref.graph).parent
    for name in ("model.onnx", *ref.graph_data):
        shutil.copy(graph_folder / name, folder / name)
    shutil.copy(ref.preprocess, folder / "preprocess.json")
    return replace(
        ref, graph=str(folder / "model.onnx"), preprocess=str(folder / "preprocess.json")
    )


def test_a_reference_to_missing_or_damaged_files_is_refused_naming_the_version(
    served, tmp_path: Path
) -> None:
    from mlops_kit.serving import InferenceService
    from mlops_kit.serving.errors import ModelFilesError

    s = served["settings"]
    ref = _copy(_located(s), tmp_path / "copy")
    service = InferenceService(s, reference=ref, online=served["online"])
    assert service.model.version == ref.version
    (tmp_path / "garbage").write_bytes(b"\x00not a graph, not JSON\xff")
    cases = {
        "no graph": replace(ref, graph=str(tmp_path / "gone.onnx")),
        "a damaged graph": replace(ref, graph=str(tmp_path / "garbage")),
        "no statistics": replace(ref, preprocess=str(tmp_path / "gone.json")),
        "damaged statistics": replace(ref, preprocess=str(tmp_path / "garbage")),
    }
    if ref.graph_data:  # MLflow saves weights of more than 1 KiB beside the graph
        cases["no external data"] = _copy(ref, tmp_path / "no-data")
        (Path(cases["no external data"].graph).parent / ref.graph_data[0]).unlink()
    for what, bad in cases.items():
        with pytest.raises(ModelFilesError) as err:
            InferenceService(s, reference=bad)
        message = str(err.value)
        assert f"version {ref.version} of '{ref.name}'" in message, (what, message)
        assert "Deploy again" in message and str(tmp_path) in message, (what, message)
        # a running service keeps serving what it had
        with pytest.raises(ModelFilesError):
            service.serve_version(None, replace(bad, version="999"))
        assert service.model.version == ref.version
    malformed = {**ref.to_dict(), "graph": ""}
    with pytest.raises(ModelFilesError, match="'graph' must be a non-empty string"):
        InferenceService(s, reference=malformed)
    outside = {**ref.to_dict(), "graph_data": ["../../elsewhere.data"]}
    with pytest.raises(ModelFilesError, match="is not a file name in the graph's folder"):
        InferenceService(s, reference=outside)


def test_a_reference_on_s3_is_read_through_the_settings_endpoint(
    served, s3_bucket: str, moto_endpoint: str
) -> None:
    from mlops_kit import storage
    from mlops_kit.serving import InferenceService

    s = served["settings"]
    ref = _located(s)
    base = f"s3://{s3_bucket}/models/{ref.version}"
    folder = str(Path(ref.graph).parent)
    for name in ("model.onnx", *ref.graph_data):
        storage.write_bytes(f"{base}/{name}", storage.read_bytes(storage.join(folder, name)))
    storage.write_bytes(f"{base}/preprocess.json", storage.read_bytes(ref.preprocess))
    on_s3 = replace(ref, graph=f"{base}/model.onnx", preprocess=f"{base}/preprocess.json")
    storage.configure_s3("us-east-1", None)  # only the settings name moto's endpoint now
    aws = s.aws.model_copy(update={"endpoint_url": moto_endpoint})
    service = InferenceService(s.model_copy(update={"aws": aws}), reference=on_s3)
    local = InferenceService(s, reference=ref)
    rows = {n: [0.5, 2.0] for n in local.model.features}
    np_got, np_want = service.model.predictor.predict(rows), local.model.predictor.predict(rows)
    assert list(np_got) == pytest.approx(list(np_want), rel=1e-7)


def test_a_driver_falls_back_to_the_registry_for_files_storage_cannot_read(
    served, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("ray")
    from mlops_kit.registry.errors import ModelNotFoundError
    from mlops_kit.registry.names import TAG_MODEL_ID
    from mlops_kit.registry.registry import ModelRegistry
    from mlops_kit.serving.ray_app import locate

    s = served["settings"]
    registry = ModelRegistry(s)
    name = registry.default_name(None)
    version = registry.aliases(name)["champion"]
    got = locate(s, {"stable": version, "canary": None})
    assert got["stable"] == _located(s, version).to_dict() and got["canary"] is None
    model_id = registry.version(name, version).tags[TAG_MODEL_ID]
    registry.client.set_model_version_tag(name, version, TAG_MODEL_ID, "m-nowhere")
    try:
        with caplog.at_level("WARNING", logger="mlops_kit.serving"):
            assert locate(s, {"stable": version}) == {"stable": None}
    finally:
        registry.client.set_model_version_tag(name, version, TAG_MODEL_ID, model_id)
    assert f"load version {version} of '{name}' through the registry" in caplog.text
    with pytest.raises(ModelNotFoundError, match="has no version 999"):
        locate(s, {"stable": "999"})


def test_an_ingress_serves_a_stable_following_the_alias_under_its_version(served) -> None:
    from mlops_kit.serving.router import ServeRouter

    class Handle:
        """Stands in for a Ray Serve deployment handle: ``describe.remote()`` answers."""

        def __init__(self, info: dict[str, Any]) -> None:
            self.info = info
            self.describe = self

        async def remote(self) -> dict[str, Any]:
            return self.info

    s = served["settings"]
    stable = Handle({"version": "4", "metadata": {"name": "m"}})
    router = ServeRouter(stable, Handle({"version": None}), s, "m", "champion", [])
    router.set_traffic(None, None, 0.0)
    asyncio.run(router.refresh())
    assert router.served == {"stable": "4", "canary": None} and router.versions() == ["4"]
    router.set_traffic("3", None, 0.0)  # pinned: the configured version stands
    asyncio.run(router.refresh())
    assert router.served["stable"] == "3"
