"""The project's Feast objects, built from the catalogue and the settings (imports feast).

* entity ``device`` (join key ``device_id``);
* source: the ETL's processed Parquet folder ``device_features_hourly`` (one row per
  device and hour, ``event_timestamp`` the end of the hour);
* feature views ``device_hourly`` (1 h window, TTL ``features.hourly_ttl_s``) and
  ``device_daily`` (24 h window, TTL ``features.daily_ttl_s``) over that source;
* on-demand view ``device_derived`` (differences and a z-score of the two windows);
* feature services ``device_failure_v<N>``, one per entry of
  :data:`~mlops_kit.features.catalog.SERVICES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mlops_kit._lazy import require
from mlops_kit.config import Settings
from mlops_kit.features import catalog
from mlops_kit.features.config import placement

require("feast", "the feature store")

from feast import (  # noqa: E402
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    ValueType,
)
from feast.types import Float64, Int64  # noqa: E402

_TYPES = {"Float64": Float64, "Int64": Int64}


@dataclass
class Definitions:
    """Every Feast object of the project, in the order ``FeatureStore.apply`` takes them."""

    entity: Entity
    source: FileSource
    views: dict[str, FeatureView]
    derived: OnDemandFeatureView
    services: dict[int, FeatureService] = field(default_factory=dict)

    def objects(self) -> list[Any]:
        """All objects, for ``FeatureStore.apply``."""
        return [
            self.entity,
            self.source,
            *self.views.values(),
            self.derived,
            *self.services.values(),
        ]

    def service(self, version: int) -> FeatureService:
        """The feature service of ``version``."""
        catalog.service_name(version)
        return self.services[version]


_UDF_SOURCE = """def device_derived(inputs):
    from mlops_kit.features.catalog import derive

    return derive(inputs)
"""


def _derived_udf() -> Any:
    """A fresh UDF object: Feast serializes it by value (module ``__main__``)."""

    def device_derived(inputs: dict[str, Any]) -> dict[str, Any]:
        from mlops_kit.features.catalog import derive

        return derive(inputs)

    device_derived.__module__ = "__main__"
    return device_derived


def build(settings: Settings) -> Definitions:
    """The project's Feast objects for ``settings`` (source location, TTLs, names)."""
    p = placement(settings)
    entity = Entity(
        name=catalog.ENTITY,
        join_keys=[catalog.JOIN_KEY],
        value_type=ValueType.STRING,
        description="An IoT device.",
    )
    source = FileSource(
        name=catalog.SOURCE_TABLE,
        path=p.source_uri,
        timestamp_field=catalog.TIMESTAMP,
        s3_endpoint_override=p.s3_endpoint if p.source_uri.startswith("s3://") else None,
        description="Hourly per-device aggregates written by the ETL.",
    )
    views = {}
    for spec in catalog.VIEWS.values():
        views[spec.name] = FeatureView(
            name=spec.name,
            entities=[entity],
            ttl=timedelta(seconds=getattr(settings.features, spec.ttl_setting)),
            schema=[Field(name=n, dtype=_TYPES[t]) for n, t in spec.features.items()],
            source=source,
            online=True,
            description=spec.description,
            tags={"owner": "mlops_kit", "source": catalog.SOURCE_TABLE},
        )
    sources = [
        views[view][[name for name, (v, _) in catalog.DERIVED_INPUTS.items() if v == view]]
        for view in dict.fromkeys(v for v, _ in catalog.DERIVED_INPUTS.values())
    ]
    derived = OnDemandFeatureView(
        name=catalog.DERIVED_VIEW,
        sources=sources,
        schema=[Field(name=n, dtype=_TYPES[t]) for n, t in catalog.DERIVED.items()],
        mode="python",
        udf=_derived_udf(),
        udf_string=_UDF_SOURCE,
        description="Differences between the 1 h and 24 h windows, computed at request time.",
    )
    services = {}
    for version in catalog.SERVICES:
        members: list[Any] = [
            (views[view][names] if view in views else derived)
            for view, names in catalog.service_members(version).items()
        ]
        services[version] = FeatureService(
            name=catalog.service_name(version),
            features=members,
            tags={"version": str(version)},
            description=f"Features of the device failure model, version {version}.",
        )
    return Definitions(entity, source, views, derived, services)
