"""The dataset spec: one declaration of a dataset from which its pipeline is derived.

A :class:`DatasetSpec` names the entity and its join key, the event-time column, the value
columns (type, unit and accepted conversions, nullability, range, accepted values,
pattern), the label, the aggregations (grain, windows, statistics per column), on-demand
features as safe expressions (:mod:`mlops_kit.data.expressions`), the feature views with
their TTLs and the versioned feature service. It is written in YAML or built in Python,
and refuses unknown keys. A spec that is inconsistent fails as a whole with one
:class:`DatasetSpecError` that lists every problem with its field and the fix.

Example:
    >>> spec = load_spec("iot_readings")
    >>> spec.entity.join_key, spec.event_time.column
    ('device_id', 'ts')
    >>> spec.view_features("device_hourly")["temperature_mean_1h"]
    'Float64'
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlops_kit.data.errors import DatasetSpecError
from mlops_kit.data.expressions import Expression
from mlops_kit.errors import format_validation_error

if TYPE_CHECKING:
    from mlops_kit.config import Settings

ColumnType = Literal["float", "int", "bool", "string", "category", "timestamp"]
Stat = Literal["mean", "std", "min", "max", "sum", "count", "last"]
TimeFormat = Literal["iso8601", "epoch_s", "epoch_ms", "epoch_us", "epoch_ns"]

_ALL_FORMATS: tuple[TimeFormat, ...] = ("iso8601", "epoch_s", "epoch_ms", "epoch_us", "epoch_ns")
NUMERIC: frozenset[str] = frozenset({"float", "int", "bool"})
RESERVED: frozenset[str] = frozenset(
    {"event_timestamp", "created_at", "_source", "_line", "_record", "reason", "field", "detail"}
)
"""Column names the pipeline itself writes (feature rows, lineage, quarantine)."""

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_s(text: str) -> int:
    """Seconds of a duration written ``<n>s|m|h|d`` (``15m``, ``24h``, ``7d``)."""
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration: write a positive <n>s, <n>m, <n>h or <n>d")
    return int(m.group(1)) * _SECONDS[m.group(2)]


def _duration(value: str) -> str:
    duration_s(value)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KnownIds(_Model):
    """Where the known entity ids come from, for the referential check."""

    source: Literal["none", "registry", "values"] = "none"
    values: list[str] = Field(default_factory=list)


class EntitySpec(_Model):
    """The entity rows describe, e.g. a device keyed by ``device_id``."""

    name: str
    join_key: str
    clean: Literal["none", "strip", "strip_lower", "strip_upper"] = "strip"
    known_ids: KnownIds = Field(default_factory=KnownIds)
    description: str = ""


class EventTimeSpec(_Model):
    """The event-time column and the formats it is accepted in."""

    column: str
    formats: list[TimeFormat] = Field(default_factory=lambda: list(_ALL_FORMATS))
    max_future_skew_s: int = Field(300, ge=0)
    max_age_days: int = Field(3650, ge=1)


class UnitsSpec(_Model):
    """A per-record unit field and how each accepted unit converts to the column's unit.

    ``conversions`` maps a unit to an expression in ``x`` (``"(x - 32) * 5 / 9"``).
    """

    column: str
    conversions: dict[str, str]

    @field_validator("conversions")
    @classmethod
    def _safe(cls, value: dict[str, str]) -> dict[str, str]:
        for unit, text in value.items():
            names = Expression.parse(text).names
            if names - {"x"}:
                raise ValueError(
                    f"the conversion of {unit!r} may only read x, found {sorted(names - {'x'})}"
                )
        return value


class ColumnSpec(_Model):
    """A value column of the records."""

    type: ColumnType
    unit: str | None = None
    units: UnitsSpec | None = None
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    values: list[str | int | float] | None = None
    pattern: str | None = None
    description: str = ""


class LabelSpec(_Model):
    """A label column and how label rows are built from the records.

    ``aggregate`` turns the records of one grain bucket into one label (``max``: any
    positive record makes the bucket positive; ``last``: the newest record's value).
    """

    column: str
    aggregate: Literal["max", "last"] = "max"
    description: str = ""


class AggregationSpec(_Model):
    """Per-entity aggregates over trailing windows, one row per entity and grain bucket.

    Feature names are ``<column>_<stat>_<window>``; with ``coverage`` also
    ``<column>_count_<window>`` (the non-null values each statistic saw) and always
    ``<row_count>_<window>`` (the records in the window).
    """

    grain: str = "1h"
    windows: dict[str, str]
    stats: dict[str, list[Stat]]
    coverage: bool = True
    row_count: str = "rows"

    @field_validator("grain")
    @classmethod
    def _grain(cls, value: str) -> str:
        return _duration(value)


class ViewSpec(_Model):
    """A feature view: the features of one window, joined within ``ttl``."""

    name: str
    window: str
    ttl: str
    description: str = ""

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: str) -> str:
        return _duration(value)


class ServiceVersion(_Model):
    """What one version of the feature service serves."""

    views: list[str] | None = None
    coverage: bool = True


class ServiceSpec(_Model):
    """The versioned feature service a model is trained and served with."""

    name: str
    versions: dict[int, ServiceVersion]


def _int_type(col: ColumnSpec) -> Any:
    """The narrowest signed integer type that holds the declared range (int64 without one)."""
    import pyarrow as pa

    if col.min is None or col.max is None:
        return pa.int64()
    for bits, typ in ((8, pa.int8()), (16, pa.int16()), (32, pa.int32())):
        if -(2 ** (bits - 1)) <= col.min and col.max < 2 ** (bits - 1):
            return typ
    return pa.int64()


class DatasetSpec(_Model):
    """One dataset: entity, event time, columns, label, aggregations, views and service."""

    name: str
    version: int = Field(1, ge=1)
    description: str = ""
    entity: EntitySpec
    event_time: EventTimeSpec
    columns: dict[str, ColumnSpec]
    labels: list[LabelSpec] = Field(default_factory=list)
    aggregations: AggregationSpec
    derived: dict[str, str] = Field(default_factory=dict)
    derived_view: str | None = None
    table: str | None = None
    views: list[ViewSpec]
    service: ServiceSpec

    # ----------------------------------------------------------- derived names
    @property
    def feature_table(self) -> str:
        """The processed table of aggregates the feature views read."""
        return self.table or f"{self.entity.name}_features"

    @property
    def derived_view_name(self) -> str:
        return self.derived_view or f"{self.entity.name}_derived"

    @property
    def aggregated(self) -> list[str]:
        """Columns with statistics, in declaration order."""
        return [c for c in self.columns if c in self.aggregations.stats]

    @property
    def label_columns(self) -> list[str]:
        return [lab.column for lab in self.labels]

    def window_feature_list(self, window: str) -> list[tuple[str, str]]:
        """(feature, Feast type) of one window, duplicates kept (the checks look for them)."""
        a = self.aggregations
        out = [(f"{a.row_count}_{window}", "Int64")]
        for col in self.aggregated:
            for stat in a.stats[col]:
                out.append((f"{col}_{stat}_{window}", "Int64" if stat == "count" else "Float64"))
        if a.coverage:
            out.extend((f"{col}_count_{window}", "Int64") for col in self.aggregated)
        return out

    def window_features(self, window: str) -> dict[str, str]:
        """Feature name -> Feast type name of one window, in a stable order."""
        return dict(self.window_feature_list(window))

    def view(self, name: str) -> ViewSpec:
        for v in self.views:
            if v.name == name:
                return v
        raise KeyError(name)

    def view_features(self, view: str) -> dict[str, str]:
        return self.window_features(self.view(view).window)

    def all_features(self) -> dict[str, str]:
        """Every feature as ``<view>:<feature>`` -> Feast type name."""
        out = {
            f"{v.name}:{f}": t for v in self.views for f, t in self.view_features(v.name).items()
        }
        out.update({f"{self.derived_view_name}:{n}": "Float64" for n in self.derived})
        return out

    def derived_inputs(self) -> dict[str, str]:
        """Aggregate feature -> its view, for every name an on-demand feature reads."""
        owner = {f: v.name for v in self.views for f in self.view_features(v.name)}
        names = sorted({n for text in self.derived.values() for n in Expression.parse(text).names})
        return {n: owner[n] for n in names}

    def expressions(self) -> dict[str, Expression]:
        return {name: Expression.parse(text) for name, text in self.derived.items()}

    def service_members(self, version: int) -> dict[str, list[str]]:
        """View -> the features of it that the service of ``version`` serves."""
        spec = self.service.versions[version]
        derived = [self.derived_view_name] if self.derived else []
        views = spec.views or [*(v.name for v in self.views), *derived]
        coverage = {f"{c}_count_" for c in self.aggregated}
        out: dict[str, list[str]] = {}
        for view in views:
            if view == self.derived_view_name:
                out[view] = list(self.derived)
                continue
            names = list(self.view_features(view))
            if not spec.coverage:
                names = [n for n in names if not any(n.startswith(p) for p in coverage)]
            out[view] = names
        return out

    def digest(self) -> str:
        """SHA-256 of the spec's canonical JSON: equal specs, equal digests."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def lineage(self) -> dict[str, Any]:
        """Name, version and digest, as recorded with data and models."""
        return {"name": self.name, "version": self.version, "digest": self.digest()}

    def arrow_schema(self) -> Any:
        """The typed records: join key, event time, the columns in canonical units.

        Value columns are nullable in the schema whatever the spec says: ``nullable:
        false`` is enforced by the quality rules, and files written before a column
        became required still read with the same schema.
        """
        import pyarrow as pa

        types = {
            "float": pa.float64(),
            "int": pa.int64(),
            "bool": pa.bool_(),
            "string": pa.string(),
            "category": pa.string(),
            "timestamp": pa.timestamp("us", tz="UTC"),
        }
        fields = [
            pa.field(self.entity.join_key, pa.string(), nullable=False),
            pa.field(self.event_time.column, pa.timestamp("us", tz="UTC"), nullable=False),
        ]
        for name, col in self.columns.items():
            typ = _int_type(col) if col.type == "int" else types[col.type]
            fields.append(pa.field(name, typ))
        return pa.schema(fields)

    # ----------------------------------------------------------- validation
    def problems(self) -> list[str]:
        """Every inconsistency, each naming its field and the fix (empty when valid)."""
        from mlops_kit.data.spec_checks import problems

        return problems(self)

    def validated(self) -> DatasetSpec:
        """This spec, or :class:`DatasetSpecError` listing its problems."""
        found = self.problems()
        if found:
            raise DatasetSpecError(f"{self.name!r}", found)
        return self


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetSpecError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise DatasetSpecError(str(path), [f"{where}not valid YAML ({exc})"]) from None


def spec_from_dict(data: Any, origin: str = "<dict>") -> DatasetSpec:
    """A validated spec from parsed YAML / JSON.

    Raises:
        DatasetSpecError: naming each bad field and the fix.
    """
    if not isinstance(data, dict):
        raise DatasetSpecError(origin, ["the spec must be a mapping of keys to values"])
    try:
        spec = DatasetSpec.model_validate(data)
    except ValidationError as exc:
        text = format_validation_error(exc, f"dataset spec {origin}", root="spec")
        raise DatasetSpecError(origin, text.splitlines()[1:]) from None
    found = spec.problems()
    if found:
        raise DatasetSpecError(origin, found)
    return spec


def bundled_specs() -> list[str]:
    """Names of the specs shipped with the library (``load_spec(name)`` loads them)."""
    return list(_bundled_names())


@cache
def _bundled_names() -> tuple[str, ...]:
    root = resources.files("mlops_kit.data") / "datasets"
    return tuple(
        sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))
    )


def load_spec(ref: str | Path) -> DatasetSpec:
    """A spec from a YAML file path, or by name from the bundled specs.

    Raises:
        DatasetSpecError: the file is missing or invalid; the message names the field.
    """
    text = str(ref)
    if isinstance(ref, str) and NAME_PATTERN.match(text) and not Path(text).exists():
        if text not in bundled_specs():
            raise DatasetSpecError(
                text,
                [f"no file and no bundled spec {text!r}; bundled: {', '.join(bundled_specs())}"],
            )
        return _bundled(text)
    path = Path(ref)
    if not path.is_file():
        raise DatasetSpecError(text, ["no such file; give a path to a YAML spec or a name"])
    stat = path.stat()
    return _from_file(str(path), str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _from_file(shown: str, resolved: str, mtime_ns: int, size: int) -> DatasetSpec:
    """A spec file read and checked once per content version (its mtime and size)."""
    return spec_from_dict(_read_yaml(Path(resolved)), shown)


@cache
def _bundled(name: str) -> DatasetSpec:
    root = resources.files("mlops_kit.data") / "datasets"
    import yaml

    return spec_from_dict(yaml.safe_load((root / f"{name}.yaml").read_text("utf-8")), name)


DEFAULT_SPEC = "iot_readings"
"""The spec used when the settings name none."""


def default_spec() -> DatasetSpec:
    """The bundled IoT readings spec."""
    return _bundled(DEFAULT_SPEC)


def spec_of(settings: Settings) -> DatasetSpec:
    """The spec the settings select (``dataset``: a bundled name or a path).

    A path is resolved against the working directory; a bundled spec is loaded once.
    """
    return load_spec(settings.dataset)
