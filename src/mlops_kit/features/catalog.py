"""The feature catalogue of a dataset spec, in plain Python (no Feast import).

A :class:`Catalog` names the entity, the feature views with their typed features and
TTLs, the on-demand features and the versioned feature services of one
:class:`~mlops_kit.data.spec.DatasetSpec`. :mod:`mlops_kit.features.definitions` turns it
into Feast objects; the CLI, input validation and the online reader use it directly, so
they stay fast.

Example:
    >>> cat = catalog_for()                      # the bundled default spec
    >>> cat.join_key, list(cat.views)
    ('device_id', ['device_hourly', 'device_daily'])
    >>> cat.service_name(1)
    'device_failure_v1'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_kit.data.spec import DatasetSpec, default_spec, duration_s, spec_of

if TYPE_CHECKING:
    from mlops_kit.config import Settings

TIMESTAMP = "event_timestamp"
"""The event time of feature rows (and of label rows given to a training set)."""


@dataclass(frozen=True)
class ViewSpec:
    """One feature view: its name, its features (name -> Feast type name), its TTL."""

    name: str
    features: dict[str, str]
    ttl_s: int
    description: str


class Catalog:
    """Names and types of one spec's features, views and services."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self.entity = spec.entity.name
        self.join_key = spec.entity.join_key
        self.source_table = spec.feature_table
        self.derived_view = spec.derived_view_name
        self.service_prefix = spec.service.name
        self.views: dict[str, ViewSpec] = {
            v.name: ViewSpec(
                v.name,
                spec.view_features(v.name),
                duration_s(v.ttl),
                v.description or f"Aggregates over the {v.window} ending at {TIMESTAMP}.",
            )
            for v in spec.views
        }
        self.derived: dict[str, str] = {name: "Float64" for name in spec.derived}
        types = {f: t for v in self.views.values() for f, t in v.features.items()}
        self.derived_inputs: dict[str, tuple[str, str]] = {
            name: (view, types[name]) for name, view in spec.derived_inputs().items()
        }
        self.services: tuple[int, ...] = tuple(sorted(spec.service.versions))
        self.expressions = spec.expressions()

    def derive(self, inputs: dict[str, list[float | None]]) -> dict[str, list[float | None]]:
        """The on-demand features, row by row (None in, None out).

        Args:
            inputs: columns named as in :attr:`derived_inputs`.
        """
        return {name: expr.evaluate(inputs) for name, expr in self.expressions.items()}

    def ttl_s(self, view: str, overrides: dict[str, int] | None = None) -> int:
        """The TTL of ``view`` in seconds (``features.ttl_s`` overrides the spec's)."""
        return int((overrides or {}).get(view, self.views[view].ttl_s))

    def service_members(self, version: int) -> dict[str, list[str]]:
        """View -> the features of it that the service of ``version`` serves."""
        self.service_name(version)
        return self.spec.service_members(version)

    def service_name(self, version: int) -> str:
        """The name of the feature service of ``version``, e.g. ``device_failure_v1``."""
        if version not in self.services:
            known = ", ".join(str(v) for v in self.services)
            from mlops_kit.features.errors import UnknownServiceVersionError

            raise UnknownServiceVersionError(
                f"no feature service version {version}: known versions are {known} "
                "(add one under the dataset spec's service.versions)"
            )
        return f"{self.service_prefix}_v{version}"

    def all_features(self) -> dict[str, str]:
        """Every feature, as ``<view>:<feature>`` -> Feast type name."""
        return self.spec.all_features()

    def service_features(self, version: int) -> list[str]:
        """The ``<view>:<feature>`` references the service of ``version`` serves."""
        return [
            f"{view}:{f}" for view, names in self.service_members(version).items() for f in names
        ]

    def needs(self, view: str) -> set[str]:
        """The stored views a view reads (an on-demand view reads its inputs' views)."""
        if view == self.derived_view:
            return {v for v, _ in self.derived_inputs.values()}
        return {view}

    def resolve_features(self, names: Sequence[str] | None, version: int) -> list[str]:
        """Feature references for ``names`` (``view:feature`` or a bare, unique name).

        Args:
            names: requested features; None or empty means the service of ``version``.
            version: the feature service version.

        Raises:
            UnknownFeatureError: naming the unknown ones and listing the available ones.
        """
        from mlops_kit.features.errors import UnknownFeatureError

        if not names:
            return self.service_features(version)
        refs = self.all_features()
        by_name: dict[str, list[str]] = {}
        for ref in refs:
            by_name.setdefault(ref.split(":", 1)[1], []).append(ref)
        out, unknown = [], []
        for name in names:
            if name in refs:
                out.append(name)
            elif ":" not in name and len(by_name.get(name, [])) == 1:
                out.append(by_name[name][0])
            else:
                unknown.append(name)
        if unknown:
            raise UnknownFeatureError(unknown, sorted(refs))
        return list(dict.fromkeys(out))


_CATALOGS: dict[str, Catalog] = {}


def catalog_for(spec: DatasetSpec | None = None) -> Catalog:
    """The catalogue of ``spec`` (default: the bundled default spec), built once."""
    spec = spec or default_spec()
    digest = spec.digest()
    if digest not in _CATALOGS:
        _CATALOGS[digest] = Catalog(spec)
    return _CATALOGS[digest]


def catalog_of(settings: Settings) -> Catalog:
    """The catalogue of the settings' dataset spec."""
    return catalog_for(spec_of(settings))


def service_name(settings: Settings, version: int | None = None) -> str:
    """The feature service name of the settings' dataset (default version from settings)."""
    return catalog_of(settings).service_name(version or settings.features.service_version)


def resolve_features(settings: Settings, names: Sequence[str] | None) -> list[str]:
    """Feature references of the settings' dataset (see :meth:`Catalog.resolve_features`)."""
    return catalog_of(settings).resolve_features(names, settings.features.service_version)
