"""The Ray Serve application on a local Ray cluster: the stable answers over HTTP and
names its version, a canary takes its share of traffic, a version moves in place
(``reconfigure``, same replicas) with no failed request, requests are batched across
callers, and /metrics counts it all."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest

from tests.serving.conftest import make_served, register_challenger

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    ray = pytest.importorskip("ray")
    from ray import serve

    served = make_served(
        tmp_path_factory.mktemp("ray-serve"), "iot_readings", serving={"port": _free_port()}
    )
    served["v2"] = register_challenger(served)
    served["v1"] = "1"
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        yield served
    finally:
        serve.shutdown()
        ray.shutdown()


def _client(s: Any) -> Any:
    import httpx

    return httpx.Client(base_url=f"http://127.0.0.1:{s.serving.port}", timeout=30)


def _ids(s: Any) -> list[str]:
    """Entities with a row in the online store."""
    from mlops_kit.data.spec import spec_of
    from mlops_kit.etl import features_table, read_table

    key = spec_of(s).entity.join_key
    return sorted(set(read_table(s, features_table(s)).column(key).to_pylist()))


def test_the_stable_answers_over_http_and_names_its_version(cluster) -> None:
    from mlops_kit.serving.ray_app import deploy, status

    s = cluster["settings"]
    deploy(s, stable_version=cluster["v1"])
    with _client(s) as http:
        assert http.get("/v2/health/ready").json() == {"ready": True}
        got = http.post("/predict", json=[{"device_id": i} for i in _ids(s)[:3]])
        assert got.status_code == 200, got.text
        assert got.headers["x-model-version"] == cluster["v1"]
        body = got.json()
        assert [a["model_version"] for a in body] == [cluster["v1"]] * 3
        assert all(0.0 <= a["score"] <= 1.0 and a["features_from"] == "online" for a in body)
        bad = http.post("/predict", json={"device_id": ""})
        assert bad.status_code == 422
        metrics = http.get("/metrics").text
    assert (
        'mlops_kit_serving_requests_total{model="device-failure",outcome="ok",role="stable",version="1"} 1.0'
        in metrics
    )
    assert status(s)["served"] == {"stable": cluster["v1"], "canary": None}
