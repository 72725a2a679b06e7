"""The Feast objects of a dataset spec, built from its catalogue and the settings.

* the entity (its join key, e.g. ``device`` keyed by ``device_id``);
* the source: the ETL's processed Parquet folder of feature rows (one row per entity
  and grain bucket, ``event_timestamp`` the end of the bucket);
* one feature view per spec view (its window's features, TTL from the spec or
  ``features.ttl_s``) over that source;
* the on-demand view of the spec's ``derived`` expressions;
* the feature services ``<service>_v<N>``, one per version the spec declares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mlops_kit._lazy import require
from mlops_kit.config import Settings
from mlops_kit.features.catalog import TIMESTAMP, Catalog, catalog_of
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
    derived: OnDemandFeatureView | None
    services: dict[int, FeatureService] = field(default_factory=dict)

    def objects(self) -> list[Any]:
        """All objects, for ``FeatureStore.apply``."""
        derived = [self.derived] if self.derived is not None else []
        return [self.entity, self.source, *self.views.values(), *derived, *self.services.values()]

    def service(self, version: int) -> FeatureService:
        """The feature service of ``version``."""
        if version not in self.services:
            known = ", ".join(str(v) for v in self.services)
            from mlops_kit.features.errors import UnknownServiceVersionError

            raise UnknownServiceVersionError(
                f"no feature service version {version}: known versions are {known} "
                "(add one under the dataset spec's service.versions)"
            )
        return self.services[version]


def _derived_udf(cat: Catalog) -> tuple[Any, str]:
    """The on-demand view's function and its source.

    Feast serializes the function by value (module ``__main__``), so its source holds
    the expressions themselves; it evaluates them with the library's safe evaluator.
    """
    name = cat.derived_view
    source = (
        f"def {name}(inputs):\n"
        "    from mlops_kit.data.expressions import Expression\n\n"
        f"    expressions = {dict(cat.spec.derived)!r}\n"
        "    return {n: Expression.parse(t).evaluate(inputs) for n, t in expressions.items()}\n"
    )
    scope: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, f"<{name}>", "exec"), scope)
    udf = scope[name]
    udf.__module__ = "__main__"
    return udf, source


def build(settings: Settings) -> Definitions:
    """The Feast objects of the settings' dataset (source location, TTLs, names)."""
    p = placement(settings)
    cat = catalog_of(settings)
    entity = Entity(
        name=cat.entity,
        join_keys=[cat.join_key],
        value_type=ValueType.STRING,
        description=cat.spec.entity.description or f"A {cat.entity}.",
    )
    source = FileSource(
        name=cat.source_table,
        path=p.source_uri,
        timestamp_field=TIMESTAMP,
        s3_endpoint_override=p.s3_endpoint if p.source_uri.startswith("s3://") else None,
        description="Per-entity aggregates written by the ETL.",
    )
    views = {}
    for spec in cat.views.values():
        views[spec.name] = FeatureView(
            name=spec.name,
            entities=[entity],
            ttl=timedelta(seconds=cat.ttl_s(spec.name, settings.features.ttl_s)),
            schema=[Field(name=n, dtype=_TYPES[t]) for n, t in spec.features.items()],
            source=source,
            online=True,
            description=spec.description,
            tags={"owner": "mlops_kit", "source": cat.source_table, "dataset": cat.spec.name},
        )
    derived = None
    if cat.derived:
        sources = [
            views[view][[name for name, (v, _) in cat.derived_inputs.items() if v == view]]
            for view in dict.fromkeys(v for v, _ in cat.derived_inputs.values())
        ]
        udf, udf_source = _derived_udf(cat)
        derived = OnDemandFeatureView(
            name=cat.derived_view,
            sources=sources,
            schema=[Field(name=n, dtype=_TYPES[t]) for n, t in cat.derived.items()],
            mode="python",
            udf=udf,
            udf_string=udf_source,
            description="On-demand features of the dataset spec, computed at request time.",
        )
    services = {}
    for version in cat.services:
        members: list[Any] = [
            (views[view][names] if view in views else derived)
            for view, names in cat.service_members(version).items()
        ]
        services[version] = FeatureService(
            name=cat.service_name(version),
            features=members,
            tags={"version": str(version), "dataset": cat.spec.name},
            description=f"Features of {cat.spec.name}, version {version}.",
        )
    return Definitions(entity, source, views, derived, services)
