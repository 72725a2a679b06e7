"""Prediction request and response models generated from a dataset spec.

A request names the entity (the spec's join key) and may carry the model's features
itself; features it leaves out are looked up in the online store by the service. The
models refuse unknown fields and non-finite numbers, so a bad payload is refused with
the field named, before it reaches a model.

Example:
    >>> from mlops_kit.data.spec import load_spec
    >>> Request = request_model(load_spec("machine_telemetry"), ["torque_mean_2h"])
    >>> Request.model_validate({"machine_id": "M-1", "torque_mean_2h": 40.5}).machine_id
    'M-1'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from mlops_kit.data.spec import DatasetSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def request_model(spec: DatasetSpec, features: Sequence[str]) -> type[BaseModel]:
    """The request of one prediction: the join key (required) and ``features`` (optional).

    Args:
        spec: the dataset the model was trained on.
        features: the model's input features, in its order.
    """
    key = spec.entity.join_key
    fields: dict[str, Any] = {
        key: (str, Field(..., min_length=1, description=f"The {spec.entity.name} to score.")),
    }
    for name in features:
        fields[name] = (float | None, Field(None, description=f"Feature {name}; omitted: online."))
    name = "".join(p.title() for p in spec.name.split("_")) + "Request"
    return create_model(name, __base__=_Strict, **fields)


def spec_features(spec: DatasetSpec, first: Sequence[str] = ()) -> list[str]:
    """Every feature a model of ``spec`` may take (each view's and each derived one),
    after ``first``, once each: what a router serving several versions accepts."""
    names = [f.split(":", 1)[1] for f in spec.all_features()]
    return list(dict.fromkeys([*first, *names]))


def response_model(spec: DatasetSpec) -> type[BaseModel]:
    """The response of one prediction: the entity, the score, the model version."""
    key = spec.entity.join_key
    fields: dict[str, Any] = {
        key: (str, ...),
        "score": (float, Field(..., ge=0.0, le=1.0, description="Probability of the label.")),
        "model_version": (str, Field(..., description="The registry version that scored.")),
        "features_from": (
            str,
            Field(..., pattern="^(request|online|mixed)$", description="Where inputs came from."),
        ),
    }
    name = "".join(p.title() for p in spec.name.split("_")) + "Response"
    return create_model(name, __base__=_Strict, **fields)
