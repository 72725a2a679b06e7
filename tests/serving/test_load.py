"""A bounded load test of the Ray Serve application on loopback: CLIENTS concurrent
clients send requests for DURATION_S seconds to ``deploy()``'s application on a local
Ray cluster, and not one fails or times out.

The claim is "no failed request under this load", not a speed: the request count and
the latency percentiles are reported in the assertion messages only.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import numpy as np
import pytest

from tests.serving.conftest import free_port, make_served

pytestmark = pytest.mark.slow

CLIENTS = 64
DURATION_S = 30.0
# Long enough that only a stuck request hits it: a request the server has queued counts
# as answered however late, a request never answered counts as a timeout.
REQUEST_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    ray = pytest.importorskip("ray")
    from ray import serve

    from mlops_kit.serving.ray_app import deploy

    served = make_served(
        tmp_path_factory.mktemp("load"), "iot_readings", serving={"port": free_port()}
    )
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        served["url"] = deploy(served["settings"])
        yield served
    finally:
        serve.shutdown()
        ray.shutdown()


def _ids(s: Any) -> list[str]:
    """Entities with a row in the online store."""
    from mlops_kit.data.spec import spec_of
    from mlops_kit.etl import features_table, read_table

    key = spec_of(s).entity.join_key
    return sorted(set(read_table(s, features_table(s)).column(key).to_pylist()))


async def _client(
    number: int,
    url: str,
    requests: list[tuple[str, dict[str, Any] | list[dict[str, Any]]]],
    until: float,
    latencies: list[float],
    failures: Counter[str],
) -> None:
    """One client: its own connection, requests in a loop until ``until``."""
    import httpx

    pick = random.Random(number)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S) as http:
        while time.monotonic() < until:
            path, body = pick.choice(requests)
            t0 = time.perf_counter()
            try:
                got = await http.post(path, json=body)
            except httpx.TimeoutException:
                failures["timeout"] += 1
                continue
            except httpx.HTTPError as exc:
                failures[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - t0)
            if got.status_code != 200:
                failures[f"{got.status_code} {got.text[:120]}"] += 1


def test_concurrent_clients_get_every_answer(deployed: dict[str, Any]) -> None:
    import httpx

    from mlops_kit.data.spec import spec_of
    from mlops_kit.registry.registry import ModelRegistry

    s = deployed["settings"]
    key = spec_of(s).entity.join_key
    ids = _ids(s)
    name = ModelRegistry(s).default_name(None)
    meta = httpx.get(f"{deployed['url']}/v2/models/{name}", timeout=30).json()
    k = len(meta["parameters"]["feature_names"])
    tensor = {
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [2, k], "data": [0.5] * 2 * k}]
    }
    requests: list[tuple[str, Any]] = [
        *[("/predict", {key: i}) for i in ids],  # online features
        ("/predict", [{key: i} for i in ids[:3]]),  # several rows in one request
        (f"/v2/models/{name}/infer", tensor),
    ]
    latencies: list[float] = []
    failures: Counter[str] = Counter()

    async def run() -> None:
        until = time.monotonic() + DURATION_S
        await asyncio.gather(
            *(
                _client(n, deployed["url"], requests, until, latencies, failures)
                for n in range(CLIENTS)
            )
        )

    asyncio.run(run())
    answered = len(latencies)
    p50, p99 = (np.percentile(latencies, [50, 99]) * 1000).round(1) if latencies else (0, 0)
    figures = (
        f"{CLIENTS} clients for {DURATION_S:.0f} s: {answered} answered "
        f"({answered / DURATION_S:.0f}/s), p50 {p50} ms, p99 {p99} ms"
    )
    assert not failures, f"{sum(failures.values())} failed ({dict(failures)}); {figures}"
    assert answered >= CLIENTS, figures
