"""Extract: raw objects (JSON lines or arrays, CSV, Parquet) to typed columns.

Each object is opened on its own (see :mod:`mlops_kit.etl.decode`): one that cannot be
read at all (empty, truncated, binary, an unknown encoding...) is rejected whole with
its reason and the other objects go on. A readable object takes a vectorised fast path
(Arrow's readers) when it is clean; otherwise a per-record path keeps every good record
and turns each bad one into a quarantine entry with its reason and its exact text. No
record is dropped, and what an object holds beyond the schema is reported once per
object, not silently ignored.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson

from mlops_kit import storage
from mlops_kit.etl.decode import (
    EpochUnit,
    ObjectRejected,
    RawRecord,
    csv_header,
    csv_records,
    epoch_to_timestamp,
    json_records,
    open_parquet,
    open_text,
    parse_timestamp,
)
from mlops_kit.etl.layout import RecordLayout, layout_for
from mlops_kit.ingest.raw_zone import format_of

if TYPE_CHECKING:
    from mlops_kit.config import Settings

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("reason", pa.string()),
        pa.field("field", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("record", pa.string()),
        pa.field("_source", pa.string()),
        pa.field("_line", pa.int64()),
    ]
)
"""One row per rejected record: why, which field, and the record as received."""

_TRUE = frozenset({"true", "1", "yes", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "f", "n"})


@dataclass(frozen=True)
class ReadOptions:
    """How raw objects are read (from ``settings.parse``, or a release's declaration),
    and what a record holds (the layout of the settings' dataset spec)."""

    encoding: str | None = None
    epoch_unit: EpochUnit = "auto"
    naive_timezone: tzinfo | None = timezone.utc
    layout: RecordLayout = field(default_factory=layout_for)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReadOptions:
        from mlops_kit.data.spec import spec_of

        p = settings.parse
        return cls(
            encoding=p.encoding,
            epoch_unit=p.epoch_unit,
            naive_timezone=p.zone(),
            layout=layout_for(spec_of(settings)),
        )

    def with_encoding(self, encoding: str | None) -> ReadOptions:
        if not encoding:
            return self
        return ReadOptions(encoding, self.epoch_unit, self.naive_timezone, self.layout)


@dataclass
class ObjectOutcome:
    """What happened to one raw object."""

    uri: str
    records: int = 0
    rejected: int = 0
    reason: str | None = None
    """Set when the whole object was quarantined (one of ``decode.OBJECT_REASONS``)."""
    detail: str | None = None
    read_as: dict[str, str | None] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)
    """Object-level findings: columns beyond the schema, a column whose type drifted."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uri": self.uri, "records": self.records}
        if self.reason:
            out.update(reason=self.reason, detail=self.detail)
        if self.read_as:
            out["read_as"] = self.read_as
        if self.notes:
            out["notes"] = self.notes
        return out


@dataclass
class Extracted:
    """The typed rows of some raw objects, the records that could not be typed, and what
    became of each object."""

    rows: pa.Table
    rejected: list[dict] = field(default_factory=list)
    records_in: int = 0
    objects: list[ObjectOutcome] = field(default_factory=list)

    def rejected_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rejected, schema=QUARANTINE_SCHEMA)

    @property
    def quarantined_objects(self) -> list[ObjectOutcome]:
        return [o for o in self.objects if o.reason]


def _reject(reason: str, fld: str | None, detail: str, record: str, src: str, line: int) -> dict:
    return {
        "reason": reason,
        "field": fld,
        "detail": detail,
        "record": record,
        "_source": src,
        "_line": line,
    }


# ---------------------------------------------------------------- typing one record
def _type_time(
    name: str, value: Any, opts: ReadOptions
) -> tuple[datetime | None, tuple[str, str, str] | None]:
    help_text = opts.layout.ts_help.replace(opts.layout.time, name, 1)
    if isinstance(value, datetime):
        zone = opts.naive_timezone
        if value.tzinfo is None and zone is None:
            return None, ("invalid_timestamp", name, help_text)
        return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(
            timezone.utc
        ), None
    if isinstance(value, date):
        return None, (
            "invalid_timestamp",
            name,
            f"{name} is a date ({value}), not a time; {help_text}",
        )
    parsed = parse_timestamp(value, opts.epoch_unit, opts.naive_timezone)
    if parsed is None:
        return None, ("invalid_timestamp", name, f"got {value!r}: {help_text}")
    return parsed, None


def _type_record(
    rec: dict[str, Any], opts: ReadOptions, text_values: bool
) -> tuple[dict[str, Any] | None, tuple[str, str, str] | None]:
    """The typed values of a record, or (reason, field, detail).

    ``text_values``: numbers may arrive as text (CSV, a string column in Parquet).
    """
    layout = opts.layout
    out: dict[str, Any] = {}
    for name in (layout.key, *layout.texts):
        v = rec.get(name)
        if v is not None and not isinstance(v, str):
            if text_values and isinstance(v, (int, float)) and not isinstance(v, bool):
                v = str(v)
            else:
                return None, (
                    "wrong_type",
                    name,
                    f"{name} must be a string, got {type(v).__name__}",
                )
        out[name] = v
    for name in (layout.time, *layout.times):
        v = rec.get(name)
        if v is None:
            out[name] = None
            continue
        typed_time, problem = _type_time(name, v, opts)
        if problem is not None:
            return None, problem
        out[name] = typed_time
    for name in layout.numeric:
        v = rec.get(name)
        if v is None:
            out[name] = None
            continue
        if text_values and isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                return None, ("wrong_type", name, f"{name} must be a number, got text {v!r}")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None, (
                "wrong_type",
                name,
                f"{name} must be a number, got {type(v).__name__} {v!r}",
            )
        if not math.isfinite(v):
            return None, ("wrong_type", name, f"{name} must be a finite number, got {v!r}")
        if name in layout.integers and not float(v).is_integer():
            return None, ("wrong_type", name, f"{name} must be a whole number, got {v!r}")
        out[name] = float(v)
    for name in layout.booleans:
        v = rec.get(name)
        if isinstance(v, str) and text_values and v.strip().lower() in _TRUE | _FALSE:
            v = v.strip().lower() in _TRUE
        elif isinstance(v, int) and not isinstance(v, bool) and v in (0, 1):
            v = bool(v)
        if v is not None and not isinstance(v, bool):
            return None, ("wrong_type", name, f"{name} must be true or false, got {v!r}")
        out[name] = v
    for name in layout.unit_fields:
        unit = rec.get(name)
        if unit is not None and not isinstance(unit, str):
            return None, ("wrong_type", name, f"{name} must be a string")
        out[name] = unit
    return out, None


def _records_path(
    records: Iterable[RawRecord],
    src: str,
    opts: ReadOptions,
    text_values: bool,
    note_extra_keys: bool = True,
) -> Extracted:
    """Per-record extraction: keep what types, reject the rest with its reason and text.

    ``note_extra_keys``: note keys beyond the schema found in the records (JSON); CSV and
    Parquet note them once from their header or schema instead.
    """
    schema = opts.layout.extracted_schema
    raw_fields = set(opts.layout.raw_fields)
    cols: dict[str, list] = {name: [] for name in schema.names if name != "_source"}
    rejected: list[dict] = []
    outcome = ObjectOutcome(src)
    extra: Counter[str] = Counter()
    problems: Counter[tuple[str, str]] = Counter()
    n_in = 0
    for rec in records:
        n_in += 1
        if rec.error is not None:
            reason, detail = rec.error
            rejected.append(_reject(reason, None, detail, rec.text, src, rec.line))
            continue
        value = rec.value
        extra.update(k for k in value if k not in raw_fields)
        typed, problem = _type_record(value, opts, text_values)
        if problem is not None:
            reason, fld, detail = problem
            problems[(reason, fld)] += 1
            rejected.append(_reject(reason, fld, detail, rec.text, src, rec.line))
            continue
        assert typed is not None
        for name, v in typed.items():
            cols[name].append(v)
        cols["_line"].append(rec.line)
        cols["_record"].append(rec.ordinal)
    data = {**cols, "_source": _source_column(src, len(cols["_line"]))}
    rows = pa.table({name: data[name] for name in schema.names}, schema=schema)
    outcome.records, outcome.rejected = n_in, len(rejected)
    if extra and note_extra_keys:
        outcome.notes.append(_extra_note(sorted(extra), f"in {max(extra.values())} records"))
    for (reason, fld), count in sorted(problems.items()):
        if count >= 2 and count * 2 >= n_in:
            outcome.notes.append(
                {
                    "kind": "schema_drift",
                    "field": fld,
                    "detail": f"{fld}: {reason} in {count} of {n_in} records; did the source "
                    "change the column's type or format? (each record is quarantined)",
                }
            )
    return Extracted(rows=rows, rejected=rejected, records_in=n_in, objects=[outcome])


def _extra_note(columns: list[str], where: str) -> dict[str, Any]:
    return {
        "kind": "extra_columns",
        "columns": columns,
        "detail": f"column(s) {', '.join(columns)} are not in the dataset spec ({where}): "
        "they are not loaded and stay in the raw zone",
    }


# ---------------------------------------------------------------- fast paths
def _source_column(src: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([src]))


def _with_lineage(table: pa.Table, src: str, first_line: int = 1) -> pa.Table:
    n = table.num_rows
    table = table.append_column("_source", _source_column(src, n))
    table = table.append_column("_line", pa.array(np.arange(first_line, first_line + n)))
    return table.append_column("_record", pa.array(np.arange(n, dtype=np.int64)))


def _typed_time(table: pa.Table, name: str, opts: ReadOptions) -> pa.Table | None:
    """Column ``name`` as UTC timestamps; None when any value does not convert."""
    col = table[name]
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            zone = opts.naive_timezone
            if zone is None:
                return None
            key = getattr(zone, "key", "UTC")
            col = pc.assume_timezone(col, timezone=key) if key != "UTC" else col
            col = pc.cast(col, pa.timestamp(col.type.unit, tz="UTC"))
        ts = pc.cast(col, pa.timestamp("us", tz="UTC"), safe=False)
    elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        ts = epoch_to_timestamp(col, opts.epoch_unit)
    elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        try:
            ts = pc.cast(col, pa.timestamp("us", tz="UTC"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    elif pa.types.is_null(col.type):
        ts = pa.nulls(len(col), pa.timestamp("us", tz="UTC"))
    else:
        return None
    if ts.null_count != col.null_count:
        return None
    return table.set_column(table.schema.get_field_index(name), name, ts)


def _bool_column(col: Any) -> Any:
    """A boolean column from booleans, 0/1 integers or true/false text; None otherwise."""
    if pa.types.is_boolean(col.type) or pa.types.is_null(col.type):
        return pc.cast(col, pa.bool_())
    if pa.types.is_integer(col.type):
        if not pc.all(pc.fill_null(pc.is_in(col, pa.array([0, 1], col.type)), True)).as_py():
            return None
        return pc.cast(col, pa.bool_())
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        text = pc.utf8_lower(pc.utf8_trim_whitespace(col))
        known = pc.is_in(text, pa.array(sorted(_TRUE | _FALSE)))
        if not pc.all(pc.fill_null(known, True)).as_py():
            return None
        truth = pc.is_in(text, pa.array(sorted(_TRUE)))
        return pc.if_else(pc.is_null(text), pa.scalar(None, pa.bool_()), truth)
    return None


def _cast_columns(table: pa.Table, opts: ReadOptions) -> pa.Table | None:
    """Raw columns to the extracted types, vectorised; None when any value needs a look."""
    layout = opts.layout
    times = {layout.time, *layout.times}
    cols = {}
    try:
        for f in layout.text_schema:
            if f.name not in table.column_names:
                cols[f.name] = pa.nulls(table.num_rows, f.type)
                continue
            col = table[f.name]
            if f.name in times:
                cols[f.name] = col
            elif f.name in layout.booleans:
                cols[f.name] = _bool_column(col)
                if cols[f.name] is None:
                    return None
            else:
                numeric = f.name in layout.numeric
                if numeric and pa.types.is_boolean(col.type):
                    return None
                cast = pc.cast(col, f.type)
                if numeric and cast.null_count < len(cast):
                    finite = pc.is_finite(cast)
                    if not pc.all(pc.fill_null(finite, True)).as_py():
                        return None
                    if f.name in layout.integers:
                        whole = pc.equal(pc.floor(cast), cast)
                        if not pc.all(pc.fill_null(whole, True)).as_py():
                            return None
                cols[f.name] = cast
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    out: pa.Table | None = pa.table(cols)
    for name in (layout.time, *layout.times):
        if out is None:
            return None
        out = _typed_time(out, name, opts)
    return out


def _lines_match(data: bytes, rows: int) -> bool:
    """True when the object has exactly ``rows`` lines.

    Arrow's readers skip blank lines and refuse a record spanning lines, so when the
    counts agree each record sits on its own line and record i is line i + first line.
    """
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    return lines == rows


def extract_jsonl(data: bytes, src: str, opts: ReadOptions | None = None) -> Extracted:
    """Typed rows of a JSON object: JSON lines, a JSON array or one JSON object."""
    opts = opts or ReadOptions()
    text, read_as = open_text(data, opts.encoding)
    out = _extract_json_text(text, _utf8(data, text, read_as), src, opts)
    out.objects[0].read_as = read_as
    return out


def _utf8(data: bytes, text: str, read_as: dict[str, str | None]) -> bytes:
    """The object's text as UTF-8 bytes (the bytes as received when they already are)."""
    plain = read_as.get("compression") is None and read_as.get("encoding") == "utf-8"
    return data if plain and not data.startswith(b"\xef\xbb\xbf") else text.encode()


def _extract_json_text(text: str, raw: bytes, src: str, opts: ReadOptions) -> Extracted:
    if text.lstrip().startswith("{"):
        try:
            table = pjson.read_json(
                io.BytesIO(raw),
                parse_options=pjson.ParseOptions(
                    explicit_schema=opts.layout.text_schema, unexpected_field_behavior="error"
                ),
            )
            typed = _cast_columns(table, opts)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            typed = None
        if typed is not None and _lines_match(raw, typed.num_rows):
            rows = _with_lineage(typed, src).cast(opts.layout.extracted_schema)
            return Extracted(rows, [], rows.num_rows, [ObjectOutcome(src, rows.num_rows)])
    return _records_path(json_records(text), src, opts, text_values=False)


def extract_csv(data: bytes, src: str, opts: ReadOptions | None = None) -> Extracted:
    """Typed rows of a CSV object (a header row naming the columns is required)."""
    opts = opts or ReadOptions()
    text, read_as = open_text(data, opts.encoding)
    header, header_lines = csv_header(text)
    raw_fields = opts.layout.raw_fields
    known = [c for c in header if c in raw_fields]
    if not known:
        shown = ", ".join(repr(c[:40]) for c in header[:6]) or "nothing"
        raise ObjectRejected(
            "missing_header",
            f"the first line must name the columns ({', '.join(raw_fields)}); found {shown}",
        )
    extra = [c for c in header if c not in raw_fields]
    out = None
    raw = _utf8(data, text, read_as)
    if header_lines == 1 and len(set(header)) == len(header):
        typed = _csv_fast(raw, header, opts, block=4 * (text.find("\n") + 1))
        if typed is not None and _lines_match(raw, typed.num_rows + 1):
            rows = _with_lineage(typed, src, first_line=2).cast(opts.layout.extracted_schema)
            out = Extracted(rows, [], rows.num_rows, [ObjectOutcome(src, rows.num_rows)])
    if out is None:
        out = _records_path(csv_records(text), src, opts, text_values=True, note_extra_keys=False)
    if extra:
        out.objects[0].notes.insert(0, _extra_note(extra, "in the header"))
    out.objects[0].read_as = read_as
    return out


def _csv_fast(raw: bytes, header: list[str], opts: ReadOptions, block: int) -> pa.Table | None:
    """A clean CSV read by Arrow: first with the reading types (numbers and zoned ISO
    times parsed by the reader), then as text cast afterwards (epochs, naive times);
    None when a value needs the per-record path."""
    typed_columns: dict[str, pa.DataType] = {name: pa.string() for name in header}
    layout = opts.layout
    typed_columns.update({n: pa.float64() for n in layout.numeric if n in typed_columns})
    if layout.time in typed_columns:
        typed_columns[layout.time] = pa.timestamp("us", tz="UTC")
    for column_types in (typed_columns, {name: pa.string() for name in header}):
        try:
            table = pcsv.read_csv(
                io.BytesIO(raw),
                read_options=pcsv.ReadOptions(block_size=max(1 << 20, block)),
                convert_options=pcsv.ConvertOptions(
                    column_types=column_types,
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        typed = _cast_columns(table, opts)
        if typed is not None:
            return typed
    return None


def _json_safe(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)


def parquet_record_text(row: dict[str, Any]) -> str:
    """The text form of a Parquet row as received (JSON of its original values)."""
    return json.dumps(row, default=_json_safe, allow_nan=True)


def extract_parquet(data: bytes, src: str, opts: ReadOptions | None = None) -> Extracted:
    """Typed rows of a Parquet object; timestamps of any unit, integer epochs or text."""
    opts = opts or ReadOptions()
    table, read_as = open_parquet(data)
    extra = [c for c in table.column_names if c not in opts.layout.raw_fields]
    typed = _cast_columns(table, opts)
    if typed is not None:
        rows = _with_lineage(typed, src).cast(opts.layout.extracted_schema)
        out = Extracted(rows, [], rows.num_rows, [ObjectOutcome(src, rows.num_rows)])
    else:
        records = (
            RawRecord(i + 1, i, parquet_record_text(row), row)
            for i, row in enumerate(table.to_pylist())
        )
        out = _records_path(records, src, opts, text_values=True, note_extra_keys=False)
    if extra:
        out.objects[0].notes.insert(0, _extra_note(extra, "in the schema"))
    out.objects[0].read_as = read_as
    return out


_EXTRACTORS = {"jsonl": extract_jsonl, "csv": extract_csv, "parquet": extract_parquet}


def extract_object(uri: str, opts: ReadOptions | None = None) -> Extracted:
    """Typed rows of one raw object, by its format; an unreadable object comes back with
    no rows and its :class:`ObjectOutcome` saying why."""
    opts = opts or ReadOptions()
    data = storage.read_bytes(uri)
    try:
        return _EXTRACTORS[format_of(uri)](data, uri, opts)
    except ObjectRejected as exc:
        outcome = ObjectOutcome(uri, reason=exc.reason, detail=exc.detail)
        return Extracted(rows=opts.layout.extracted_schema.empty_table(), objects=[outcome])


def extract(
    uris: list[str],
    opts: ReadOptions | None = None,
    per_object: dict[str, ReadOptions] | None = None,
) -> Extracted:
    """Typed rows of several raw objects, concatenated, with each object's outcome."""
    opts = opts or ReadOptions()
    per_object = per_object or {}
    parts = [extract_object(uri, per_object.get(uri, opts)) for uri in uris]
    if not parts:
        return Extracted(rows=opts.layout.extracted_schema.empty_table())
    return Extracted(
        rows=pa.concat_tables([p.rows for p in parts]),
        rejected=[r for p in parts for r in p.rejected],
        records_in=sum(p.records_in for p in parts),
        objects=[o for p in parts for o in p.objects],
    )


def record_texts(uri: str, ordinals: set[int], opts: ReadOptions | None = None) -> dict[int, str]:
    """The exact text of some records of a raw object, by ordinal (0-based)."""
    opts = opts or ReadOptions()
    data = storage.read_bytes(uri)
    fmt = format_of(uri)
    out: dict[int, str] = {}
    if fmt == "parquet":
        table, _ = open_parquet(data)
        wanted = [i for i in sorted(ordinals) if 0 <= i < table.num_rows]
        rows = table.take(pa.array(wanted, pa.int64())).to_pylist() if wanted else []
        return {i: parquet_record_text(row) for i, row in zip(wanted, rows, strict=True)}
    text, _ = open_text(data, opts.encoding)
    records = csv_records(text) if fmt == "csv" else json_records(text)
    last = max(ordinals, default=-1)
    for rec in records:
        if rec.ordinal in ordinals:
            out[rec.ordinal] = rec.text
        if rec.ordinal >= last:
            break
    return out
