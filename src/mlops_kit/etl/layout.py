"""What the ETL reads, checks and writes for one dataset spec.

:func:`layout_for` turns a :class:`~mlops_kit.data.spec.DatasetSpec` into the names and
Arrow schemas the extract, the transform and the load work with: the raw fields a record
may carry, the typed columns after extraction (numbers as float64 until the quality
check has seen them, text, booleans, timestamps, each record's lineage), and the
processed reading and feature tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any

import pyarrow as pa

from mlops_kit.data.spec import DatasetSpec, UnitsSpec, default_spec, duration_s

TIMESTAMP = "event_timestamp"
"""The event-time column of feature rows: the end of the bucket a row describes."""
CREATED = "created_at"
"""When a feature row was computed (the ETL run's time)."""
LINEAGE = ("_source", "_line", "_record")

_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class RecordLayout:
    """Names and schemas of one spec's records, from raw fields to feature rows."""

    spec: DatasetSpec

    # ------------------------------------------------------------ names
    @property
    def key(self) -> str:
        return self.spec.entity.join_key

    @property
    def time(self) -> str:
        return self.spec.event_time.column

    @cached_property
    def numeric(self) -> tuple[str, ...]:
        """Float and int columns (extracted as float64)."""
        return tuple(n for n, c in self.spec.columns.items() if c.type in ("float", "int"))

    @cached_property
    def integers(self) -> frozenset[str]:
        return frozenset(n for n, c in self.spec.columns.items() if c.type == "int")

    @cached_property
    def booleans(self) -> tuple[str, ...]:
        return tuple(n for n, c in self.spec.columns.items() if c.type == "bool")

    @cached_property
    def texts(self) -> tuple[str, ...]:
        return tuple(n for n, c in self.spec.columns.items() if c.type in ("string", "category"))

    @cached_property
    def times(self) -> tuple[str, ...]:
        """Timestamp value columns other than the event time."""
        return tuple(n for n, c in self.spec.columns.items() if c.type == "timestamp")

    @cached_property
    def units(self) -> dict[str, UnitsSpec]:
        """Column -> its per-record unit field and conversions."""
        return {n: c.units for n, c in self.spec.columns.items() if c.units is not None}

    @cached_property
    def unit_fields(self) -> tuple[str, ...]:
        return tuple(u.column for u in self.units.values())

    @cached_property
    def raw_fields(self) -> tuple[str, ...]:
        """Every field a raw record may carry."""
        return (self.key, self.time, *self.spec.columns, *self.unit_fields)

    @property
    def ts_help(self) -> str:
        return (
            f"{self.time} must be ISO 8601 (e.g. 2026-01-01T00:00:00Z; without an offset it "
            "is read in parse.naive_timezone) or an epoch number in s, ms, us or ns"
        )

    # ------------------------------------------------------------ schemas
    def _extracted_type(self, name: str) -> pa.DataType:
        kind = self.spec.columns[name].type
        if kind in ("float", "int"):
            return pa.float64()
        if kind == "bool":
            return pa.bool_()
        if kind == "timestamp":
            return _TS
        return pa.string()

    @cached_property
    def extracted_schema(self) -> pa.Schema:
        """Typed columns plus lineage: the raw object (dictionary-encoded: one value per
        object), the line its record starts on (1-based) and its position among the
        object's records (0-based)."""
        return pa.schema(
            [
                pa.field(self.key, pa.string()),
                pa.field(self.time, _TS),
                *[pa.field(n, self._extracted_type(n)) for n in self.spec.columns],
                *[pa.field(u, pa.string()) for u in self.unit_fields],
                pa.field("_source", pa.dictionary(pa.int32(), pa.string())),
                pa.field("_line", pa.int64()),
                pa.field("_record", pa.int64()),
            ]
        )

    @cached_property
    def text_schema(self) -> pa.Schema:
        """How the fast readers first read a record: numbers as float64, times as text."""
        fields = [pa.field(self.key, pa.string()), pa.field(self.time, pa.string())]
        for n in self.spec.columns:
            typ = self._extracted_type(n)
            fields.append(pa.field(n, pa.string() if typ in (_TS, pa.bool_()) else typ))
        fields += [pa.field(u, pa.string()) for u in self.unit_fields]
        return pa.schema(fields)

    @cached_property
    def reading_schema(self) -> pa.Schema:
        """The processed records, in canonical units."""
        return self.spec.arrow_schema()

    @cached_property
    def grain(self) -> timedelta:
        return timedelta(seconds=duration_s(self.spec.aggregations.grain))

    @cached_property
    def windows(self) -> dict[str, timedelta]:
        return {
            n: timedelta(seconds=duration_s(t)) for n, t in self.spec.aggregations.windows.items()
        }

    @cached_property
    def feature_names(self) -> dict[str, str]:
        """Every aggregate feature -> its Feast type: the row counts of each window, then
        the statistics of each window, then the coverage counts of each window."""
        a = self.spec.aggregations
        out: dict[str, str] = {f"{a.row_count}_{w}": "Int64" for w in a.windows}
        for w in a.windows:
            for col in self.spec.aggregated:
                for stat in a.stats[col]:
                    out[f"{col}_{stat}_{w}"] = "Int64" if stat == "count" else "Float64"
        if a.coverage:
            for w in a.windows:
                out.update({f"{col}_count_{w}": "Int64" for col in self.spec.aggregated})
        return out

    @cached_property
    def features_schema(self) -> pa.Schema:
        """Feature rows: one per entity and bucket; ``event_timestamp`` is the bucket's end.

        ``<row_count>_<w>`` counts the records of the window; ``<column>_count_<w>``
        counts the values a column's statistics were computed from (nulls are not values).
        """
        types = {"Int64": pa.int64(), "Float64": pa.float64()}
        return pa.schema(
            [
                pa.field(self.key, pa.string(), nullable=False),
                pa.field(TIMESTAMP, _TS, nullable=False),
                *[pa.field(n, types[t]) for n, t in self.feature_names.items()],
                pa.field(CREATED, _TS),
            ]
        )

    @property
    def feature_key(self) -> list[str]:
        return [self.key, TIMESTAMP]

    @property
    def parquet_options(self) -> dict[str, Any]:
        """How processed records are written: snappy, a dictionary for the entity id
        only (dictionaries on float columns cost time and gain nothing), and statistics
        on the columns readers filter on."""
        return {
            "compression": "snappy",
            "use_dictionary": [self.key],
            "write_statistics": [self.key, self.time],
        }


_LAYOUTS: dict[str, RecordLayout] = {}


def layout_for(spec: DatasetSpec | None = None) -> RecordLayout:
    """The layout of ``spec`` (default: the bundled default spec), built once per digest."""
    spec = spec or default_spec()
    digest = spec.digest()
    if digest not in _LAYOUTS:
        _LAYOUTS[digest] = RecordLayout(spec)
    return _LAYOUTS[digest]
