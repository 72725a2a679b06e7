"""A rollout whose stable and canary take different features: the ingress accepts every
feature of the dataset spec, passes on only the fields the client sent, and each side
scores with the fields its own model takes, so neither side refuses a request the other
would score. A field that is no feature of the spec is still refused at the ingress.

The ingress's router, the two replicas' classes and the HTTP app are the real ones, in
this process; only Ray Serve's handles between them (``Handle``) and its batcher are
stood in for."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from mlops_kit.data.spec import spec_of
from mlops_kit.etl import features_table, read_table
from mlops_kit.etl.layout import TIMESTAMP
from tests.serving.conftest import CONFIG, make_served

pytestmark = pytest.mark.slow


class Handle:
    """Stands in for a Ray Serve deployment handle: ``handle.<method>.remote(*args)``
    awaits the method of a replica object in this process."""

    def __init__(self, replica: Any) -> None:
        self.replica = replica

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.replica, name)

        class Call:
            async def remote(self, *args: Any) -> Any:
                out = method(*args)
                return await out if inspect.isawaitable(out) else out

        return Call()


def _one_at_a_time(side: Any) -> Any:
    """The replica's batch method without Ray Serve's batcher (which needs a replica
    context): each caller's requests are a batch of their own."""
    batched = type(side).predict_batch.__wrapped__

    async def call(payloads: list[dict[str, Any]]) -> Any:
        (answer,) = await batched(side, [payloads])
        return answer

    return call


@pytest.fixture(scope="module")
def rollout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A champion on every default feature and a second version on half of them."""
    pytest.importorskip("ray")
    from mlops_kit.demo.model import train_on_lake
    from mlops_kit.registry.registry import ModelRegistry
    from mlops_kit.training.config import default_feature_columns

    served = make_served(tmp_path_factory.mktemp("ingress"), "iot_readings")
    s = served["settings"]
    full = default_feature_columns(spec_of(s))
    half = full[: len(full) // 2]
    trained = train_on_lake(s, config={**CONFIG, "seed": 5, "data": {"feature_columns": half}})
    registry = ModelRegistry(s)
    name = registry.default_name(None)
    champion = str(registry.version(name, "champion").version)
    other = str(registry.register(trained["run_id"], name, who="test")["version"])
    key = spec_of(s).entity.join_key
    rows = sorted(read_table(s, features_table(s)).to_pylist(), key=lambda r: r[TIMESTAMP])
    entity = sorted({r[key] for r in rows})[0]
    only_full = next(f for f in full if f not in half)
    return {
        "settings": s,
        "key": key,
        "entity": entity,
        "versions": {"full": champion, "half": other},
        "only_full": only_full,
        "full": full,
        "name": name,
    }


def _post(
    rollout: dict[str, Any], stable: str, canary: str, body: Any, path: str = "/predict"
) -> Any:
    """POST ``body`` to ``path`` of an ingress sending every request to the canary."""
    import httpx

    from mlops_kit.serving.http import create_app
    from mlops_kit.serving.ray_app import ModelServer
    from mlops_kit.serving.router import ServeRouter

    s = rollout["settings"]
    replica = ModelServer

    async def go() -> Any:
        sides = {}
        for role, version in (("stable", stable), ("canary", canary)):
            side = replica(s.model_dump(mode="json"), role, None, "champion")
            await side.reconfigure({"version": version})
            side.predict_batch = _one_at_a_time(side)
            sides[role] = side
        info = sides["stable"].describe()
        router = ServeRouter(
            Handle(sides["stable"]),
            Handle(sides["canary"]),
            s,
            info["name"],
            "champion",
            info["features"],
        )
        router.set_traffic(stable, canary, 1.0)
        await router.refresh()
        transport = httpx.ASGITransport(app=create_app(router))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.post(path, json=body)

    return asyncio.run(go())


def test_a_canary_on_fewer_features_scores_what_the_ingress_accepts(rollout) -> None:
    """Stable on every feature, canary on half: a request with the key only, and one with
    a feature only the stable takes, are both scored by the canary (that feature ignored,
    its own read online)."""
    key, entity, v = rollout["key"], rollout["entity"], rollout["versions"]
    for body in ({key: entity}, {key: entity, rollout["only_full"]: 0.5}):
        reply = _post(rollout, v["full"], v["half"], body)
        assert reply.status_code == 200, reply.text
        (answer,) = reply.json()
        assert answer[key] == entity and answer["model_version"] == v["half"]
        assert answer["features_from"] == "online"


def test_a_canary_on_more_features_gets_a_feature_the_stable_does_not_take(rollout) -> None:
    """Stable on half the features, canary on all: a request giving a feature only the
    canary takes passes the ingress, and the canary scores with it."""
    key, entity, v = rollout["key"], rollout["entity"], rollout["versions"]
    body = {key: entity, rollout["only_full"]: 0.5}
    reply = _post(rollout, v["half"], v["full"], body)
    assert reply.status_code == 200, reply.text
    (answer,) = reply.json()
    assert answer["model_version"] == v["full"] and answer["features_from"] == "mixed"
    unknown = _post(rollout, v["half"], v["full"], {key: entity, "temprature_mean_1h": 1.0})
    assert unknown.status_code == 422
    assert "temprature_mean_1h" in unknown.text and "Extra inputs" in unknown.text


def test_an_unversioned_tensor_goes_to_the_stable_when_the_canary_takes_other_features(
    rollout,
) -> None:
    """An Open Inference Protocol tensor holds the columns of ``/v2/models/<name>``'s
    metadata, the stable's: with a canary on other features it is answered by the stable
    whatever the weight; a call naming the canary's version reaches the canary."""
    v, name = rollout["versions"], rollout["name"]
    k = {"full": len(rollout["full"]), "half": len(rollout["full"]) // 2}

    def tensor(n: int) -> dict[str, Any]:
        return {
            "inputs": [{"name": "features", "shape": [1, n], "datatype": "FP32", "data": [0.0] * n}]
        }

    reply = _post(rollout, v["full"], v["half"], tensor(k["full"]), f"/v2/models/{name}/infer")
    assert reply.status_code == 200, reply.text
    assert reply.json()["model_version"] == v["full"]
    path = f"/v2/models/{name}/versions/{v['half']}/infer"
    reply = _post(rollout, v["full"], v["half"], tensor(k["half"]), path)
    assert reply.status_code == 200, reply.text
    assert reply.json()["model_version"] == v["half"]
