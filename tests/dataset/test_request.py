"""Request and response models of a spec: the key required, unknown fields refused."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from mlops_kit.data.request import request_model, response_model
from mlops_kit.data.spec import bundled_specs, load_spec
from mlops_kit.training.config import default_feature_columns


@pytest.mark.parametrize("name", bundled_specs())
def test_requests_follow_the_spec(name: str) -> None:
    spec = load_spec(name)
    features = default_feature_columns(spec)
    Request = request_model(spec, features)
    key = spec.entity.join_key
    ok = Request.model_validate({key: "e-1", features[0]: 1.5})
    assert getattr(ok, key) == "e-1" and getattr(ok, features[0]) == 1.5
    assert getattr(ok, features[1]) is None  # omitted: looked up online
    with pytest.raises(ValidationError) as err:
        Request.model_validate({"entity": "e-1"})
    fields = {e["loc"][0] for e in err.value.errors()}
    assert fields == {key, "entity"}  # the key is missing, the unknown field refused
    with pytest.raises(ValidationError, match=features[0]):
        Request.model_validate({key: "e-1", features[0]: math.inf})
    with pytest.raises(ValidationError, match=features[0]):
        Request.model_validate({key: "e-1", features[0]: "hot"})
    schema = Request.model_json_schema()
    assert schema["required"] == [key]
    assert set(schema["properties"]) == {key, *features}

    Response = response_model(spec)
    assert Response.model_validate(
        {key: "e-1", "score": 0.25, "model_version": "3", "features_from": "online"}
    )
    with pytest.raises(ValidationError, match="score"):
        Response.model_validate(
            {key: "e-1", "score": 1.5, "model_version": "3", "features_from": "online"}
        )
