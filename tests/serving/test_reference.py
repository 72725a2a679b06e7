"""Model references: what a driver hands a serving replica instead of a registry lookup.

The reference's own checks (a malformed mapping, a file name that leaves the graph's
folder), where the registry reads a tracking server's proxied artifacts, and the Serve
config carrying each side's reference in its ``user_config``. Loading from a reference
(locally, on S3, missing or damaged files, with no MLflow import) is tested on a served
model in test_service.py, and in a Ray Serve replica in test_ray_serve.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_kit import storage
from mlops_kit.config import load_settings
from mlops_kit.model import ModelError, ModelReference
from mlops_kit.registry.errors import MissingArtifactError
from mlops_kit.serving import deploy
from mlops_kit.serving.errors import ServingConfigError
from tests.conftest import REPO

EXAMPLE = REPO / "serving" / "example_settings.yaml"

REF = {
    "name": "device-failure",
    "version": "3",
    "graph": "s3://models/mlflow-artifacts/1/models/m-1/artifacts/model.onnx",
    "preprocess": "s3://models/mlflow-artifacts/1/r/artifacts/preprocessing/preprocess.json",
    "graph_data": ["w.data"],
    "alias": None,
    "tags": {"mlops_kit.dataset": "iot_readings"},
}


def test_a_reference_travels_as_plain_json_and_refuses_what_it_cannot_be() -> None:
    ref = ModelReference.from_dict(REF)
    assert ref.to_dict() == REF and ref.graph_data == ("w.data",)
    bad: list[tuple[Any, str]] = [
        ({k: v for k, v in REF.items() if k != "preprocess"}, "lacks preprocess"),
        ({**REF, "version": 3}, "'version' must be a non-empty string"),
        ({**REF, "graph_data": ["../w.data"]}, "not a file name in the graph's folder"),
        ({**REF, "graph_data": "w.data"}, "'graph_data' must be a list"),
        ({**REF, "tags": {"a": 1}}, "'tags' must map text to text"),
        ({**REF, "alias": 7}, "'alias' must be text or null"),
        (["not", "a", "mapping"], "expected a mapping"),
    ]
    for data, why in bad:
        with pytest.raises(ModelError, match=why):
            ModelReference.from_dict(data)


def test_the_registry_reads_proxied_artifacts_under_models_uri(home: Path) -> None:
    from mlops_kit.registry.registry import ModelRegistry

    s = load_settings()
    registry = ModelRegistry(s)
    under = storage.join(str(s.storage.models_uri), "mlflow-artifacts", "1/models/m-1/artifacts")
    for proxied in (
        "mlflow-artifacts:/1/models/m-1/artifacts",
        "mlflow-artifacts://h:5000/1/models/m-1/artifacts",
    ):
        assert registry._storage_uri(proxied, "v1") == under
    assert registry._storage_uri("file:///srv/a/b", "v1") == "/srv/a/b"
    assert registry._storage_uri("s3://bucket/a", "v1") == "s3://bucket/a"
    assert registry._storage_uri("mlruns/1", "v1") == str(Path("mlruns/1").absolute())
    with pytest.raises(
        MissingArtifactError, match=r"gs://b/x, which mlops_kit\.storage cannot read"
    ):
        registry._storage_uri("gs://b/x", "v1")
    bare = s.model_copy(update={"storage": s.storage.model_copy(update={"models_uri": None})})
    with pytest.raises(MissingArtifactError, match=r"set storage\.models_uri"):
        ModelRegistry(bare)._storage_uri("mlflow-artifacts:/1/x", "v1")


def test_a_model_reference_rides_in_its_sides_user_config() -> None:
    schema = pytest.importorskip("ray.serve.schema")
    example = deploy.settings_from_file(EXAMPLE)
    ref = REF
    rollout: dict[str, Any] = {"stable_version": "3", "canary_version": "4", "canary_weight": 0.1}
    config = deploy.serve_config(example, **rollout, stable_model=ref)
    (app,) = schema.ServeDeploySchema.model_validate(config).applications
    by_name = {d.name: d for d in app.deployments}
    assert by_name["stable"].user_config == {"version": "3", "model": ref}
    assert by_name["canary"].user_config == {"version": "4", "fault_rate": 0.0}
    assert app.args == {"alias": "champion", "model": None, "config": None}
    for side, bad in (
        ("stable_model", {**ref, "version": "2"}),
        ("canary_model", ref),
        ("stable_model", "s3://models/model.onnx"),
    ):
        with pytest.raises(ServingConfigError, match=rf"^{side}: ") as err:
            deploy.serve_config(example, **rollout, **{side: bad})
        assert err.value.field == side
    with pytest.raises(ServingConfigError, match=r"^canary_model: "):
        deploy.serve_config(example, stable_version="3", canary_model={**ref, "version": None})
