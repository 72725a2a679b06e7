"""The Open Inference Protocol API through an existing v2 client: tritonclient's HTTP
client talks to the service over real HTTP (uvicorn on loopback): health, server and model
metadata, model readiness, inference that scores like the exported bundle, and each
refusal reaching the client as an ``InferenceServerException`` with its status and message."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from mlops_kit.data.spec import spec_of
from mlops_kit.etl import features_table, read_table
from mlops_kit.etl.layout import TIMESTAMP
from tests.serving.conftest import free_port, make_served

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The champion of a fresh lake behind ``create_app``, served by uvicorn in a thread."""
    pytest.importorskip("tritonclient.http")
    import uvicorn

    from mlops_kit.serving import InferenceService, create_app

    served = make_served(tmp_path_factory.mktemp("oip"), "iot_readings")
    service = InferenceService(served["settings"], online=served["online"])
    service.warm_up()
    port = free_port()
    config = uvicorn.Config(
        create_app(service), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    http = uvicorn.Server(config)
    thread = threading.Thread(target=http.run, daemon=True)
    thread.start()
    while not http.started:
        assert thread.is_alive(), "uvicorn stopped before it started listening"
        time.sleep(0.05)
    try:
        yield {**served, "service": service, "url": f"127.0.0.1:{port}"}
    finally:
        http.should_exit = True
        thread.join()


@pytest.fixture()
def client(server: dict[str, Any]) -> Iterator[Any]:
    from tritonclient.http import InferenceServerClient

    c = InferenceServerClient(server["url"], network_timeout=60.0)
    try:
        yield c
    finally:
        c.close()


def _newest_rows(s: Any, n: int) -> tuple[list[str], dict[str, list[float]]]:
    """The ``n`` first entities and their newest feature values, by feature."""
    key = spec_of(s).entity.join_key
    rows = sorted(read_table(s, features_table(s)).to_pylist(), key=lambda r: r[TIMESTAMP])
    newest = {r[key]: r for r in rows}
    ids = sorted(newest)[:n]
    return ids, {f: [newest[i][f] for i in ids] for f in rows[0] if f not in (key, TIMESTAMP)}


def test_health_readiness_and_metadata(server: dict[str, Any], client: Any) -> None:
    from tritonclient.utils import InferenceServerException

    service = server["service"]
    name, version = service.name, service.model.version
    k = len(service.model.features)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(name)
    assert client.is_model_ready(name, version)
    assert not client.is_model_ready("no-such-model")
    assert not client.is_model_ready(name, "999")

    meta = client.get_server_metadata()
    assert meta["name"] and meta["version"] and meta["extensions"] == []

    model = client.get_model_metadata(name)
    assert model["name"] == name and model["versions"] == [version]
    assert model["platform"] == "onnxruntime_onnx"
    assert model["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, k]}]
    assert model["outputs"] == [{"name": "probability", "datatype": "FP32", "shape": [-1, 1]}]
    assert model["parameters"]["feature_names"] == list(service.model.features)
    assert client.get_model_metadata(name, model_version=version)["versions"] == [version]

    with pytest.raises(InferenceServerException) as unknown:
        client.get_model_metadata("no-such-model")
    assert unknown.value.status() == "404" and "no-such-model" in unknown.value.message()
    with pytest.raises(InferenceServerException) as old:
        client.get_model_metadata(name, model_version="999")
    assert old.value.status() == "404" and "999" in old.value.message()


@pytest.mark.parametrize("requested", [True, False], ids=["outputs-named", "outputs-default"])
def test_inference_scores_like_the_bundle(
    server: dict[str, Any], client: Any, requested: bool
) -> None:
    from tritonclient.http import InferInput, InferRequestedOutput

    from mlops_kit.model.predictor import load_predictor

    service = server["service"]
    bundle = load_predictor(server["trained"]["bundle_uri"])
    names = list(service.model.features)
    ids, values = _newest_rows(server["settings"], 4)
    table = np.array([values[f] for f in names], dtype=np.float32).T
    assert table.shape == (len(ids), len(names))

    tensor = InferInput("features", list(table.shape), "FP32")
    tensor.set_data_from_numpy(table, binary_data=False)
    outputs = [InferRequestedOutput("probability", binary_data=False)] if requested else None
    result = client.infer(service.name, [tensor], outputs=outputs, request_id="req-7")

    got = result.as_numpy("probability")
    assert got.shape == (len(ids), 1) and got.dtype == np.float32
    response = result.get_response()
    assert response["id"] == "req-7" and response["model_name"] == service.name
    assert response["model_version"] == service.model.version
    # the values the client sent (FP32), scored by the exported bundle and by the service
    want = bundle.predict({n: table[:, j].astype(np.float64) for j, n in enumerate(names)})
    assert got[:, 0] == pytest.approx(np.asarray(want, dtype=np.float64), rel=1e-6, abs=1e-7)
    own = service.infer_v2(
        {
            "inputs": [
                {
                    "name": "features",
                    "datatype": "FP32",
                    "shape": list(table.shape),
                    "data": table.ravel().tolist(),
                }
            ]
        }
    )
    assert got[:, 0] == pytest.approx(own["outputs"][0]["data"], rel=1e-6, abs=1e-7)


def test_a_wrong_shape_reaches_the_client_with_the_servers_message(
    server: dict[str, Any], client: Any
) -> None:
    from tritonclient.http import InferInput
    from tritonclient.utils import InferenceServerException

    service = server["service"]
    k = len(service.model.features)
    tensor = InferInput("features", [2, k + 1], "FP32")
    tensor.set_data_from_numpy(np.zeros((2, k + 1), dtype=np.float32), binary_data=False)
    with pytest.raises(InferenceServerException) as err:
        client.infer(service.name, [tensor])
    assert err.value.status() == "422"
    assert f"shape [n, {k}]" in err.value.message(), err.value.message()

    other = InferInput("features", [1, k], "FP64")
    other.set_data_from_numpy(np.zeros((1, k), dtype=np.float64), binary_data=False)
    with pytest.raises(InferenceServerException) as err:
        client.infer(service.name, [other])
    assert err.value.status() == "422" and "FP32" in err.value.message()

    with pytest.raises(InferenceServerException) as err:
        client.infer(service.name, [tensor], model_version="999")
    assert err.value.status() == "404"


def test_binary_tensor_data_is_refused_naming_the_fix(server: dict[str, Any], client: Any) -> None:
    """The binary tensor extension is Triton's, not the protocol's: the server lists no
    extension and refuses a binary body instead of misreading it."""
    from tritonclient.http import InferInput, InferRequestedOutput
    from tritonclient.utils import InferenceServerException

    service = server["service"]
    k = len(service.model.features)
    tensor = InferInput("features", [1, k], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, k), dtype=np.float32), binary_data=True)
    with pytest.raises(InferenceServerException) as err:
        client.infer(
            service.name, [tensor], outputs=[InferRequestedOutput("probability", binary_data=False)]
        )
    assert err.value.status() == "415"
    assert "binary_data=False" in err.value.message(), err.value.message()
