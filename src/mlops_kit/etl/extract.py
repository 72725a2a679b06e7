"""Extract: raw objects (JSON lines, CSV, Parquet) to typed columns.

Clean files take a vectorised fast path (Arrow's JSON/CSV readers). A file with a line
that is not JSON, or a value of the wrong type, takes a per-record path that keeps
every good record and turns each bad one into a quarantine entry with its reason; no
record is dropped.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from mlops_kit import storage
from mlops_kit.data.schema import READING_SCHEMA, SENSORS
from mlops_kit.ingest.raw_zone import format_of

RAW_FIELDS: tuple[str, ...] = (*READING_SCHEMA.names, "temperature_unit")

EXTRACTED_SCHEMA = pa.schema(
    [
        pa.field("device_id", pa.string()),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        *[pa.field(name, pa.float64()) for name in SENSORS],
        pa.field("failure", pa.float64()),
        pa.field("temperature_unit", pa.string()),
        pa.field("_source", pa.string()),
        pa.field("_line", pa.int64()),
    ]
)
"""Typed columns plus lineage (raw object and 1-based record number)."""

_JSON_SCHEMA = pa.schema(
    [
        pa.field("device_id", pa.string()),
        pa.field("ts", pa.string()),
        *[pa.field(name, pa.float64()) for name in SENSORS],
        pa.field("failure", pa.float64()),
        pa.field("temperature_unit", pa.string()),
    ]
)

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


@dataclass
class Extracted:
    """The typed rows of some raw objects and the records that could not be typed."""

    rows: pa.Table
    rejected: list[dict] = field(default_factory=list)
    records_in: int = 0

    def rejected_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rejected, schema=QUARANTINE_SCHEMA)


def _reject(reason: str, fld: str | None, detail: str, record: str, src: str, line: int) -> dict:
    return {
        "reason": reason,
        "field": fld,
        "detail": detail,
        "record": record,
        "_source": src,
        "_line": line,
    }


def _parse_ts(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return dt.astimezone(timezone.utc)


def _with_lineage(table: pa.Table, src: str, first_line: int = 1) -> pa.Table:
    n = table.num_rows
    table = table.append_column("_source", pa.array([src] * n, pa.string()))
    return table.append_column("_line", pa.array(range(first_line, first_line + n), pa.int64()))


def _typed_ts(table: pa.Table) -> pa.Table | None:
    """Cast the ``ts`` strings to UTC timestamps; None when any value does not parse."""
    try:
        ts = pc.cast(table["ts"], pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if ts.null_count != table["ts"].null_count:
        return None
    return table.set_column(table.schema.get_field_index("ts"), "ts", ts)


def _records_path(lines: list[str], src: str, first_line: int = 1) -> Extracted:
    """Per-record extraction: keep what types, reject the rest with a reason.

    ``_line`` is the record's line in the raw object (1-based), counting from
    ``first_line`` (2 for CSV, after the header).
    """
    cols: dict[str, list] = {name: [] for name in EXTRACTED_SCHEMA.names}
    rejected: list[dict] = []
    n_in = 0
    for lineno, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        n_in += 1
        try:
            rec = json.loads(line)
        except ValueError as exc:
            rejected.append(
                _reject("malformed_json", None, f"not valid JSON: {exc}", line, src, lineno)
            )
            continue
        if not isinstance(rec, dict):
            rejected.append(
                _reject("malformed_json", None, "a record must be a JSON object", line, src, lineno)
            )
            continue
        problem = _type_problem(rec)
        if problem:
            reason, fld, detail = problem
            rejected.append(_reject(reason, fld, detail, line, src, lineno))
            continue
        cols["device_id"].append(rec.get("device_id"))
        cols["ts"].append(_parse_ts(rec.get("ts")) if rec.get("ts") is not None else None)
        for name in (*SENSORS, "failure"):
            v = rec.get(name)
            cols[name].append(float(v) if v is not None else None)
        cols["temperature_unit"].append(rec.get("temperature_unit"))
        cols["_source"].append(src)
        cols["_line"].append(lineno)
    rows = pa.table(cols, schema=EXTRACTED_SCHEMA)
    return Extracted(rows=rows, rejected=rejected, records_in=n_in)


def _type_problem(rec: dict) -> tuple[str, str, str] | None:
    dev = rec.get("device_id")
    if dev is not None and not isinstance(dev, str):
        return ("wrong_type", "device_id", f"device_id must be a string, got {type(dev).__name__}")
    ts = rec.get("ts")
    if ts is not None and _parse_ts(ts) is None:
        return (
            "invalid_timestamp",
            "ts",
            "ts must be an ISO 8601 string with a zone, e.g. 2026-01-01T00:00:00Z",
        )
    for name in (*SENSORS, "failure"):
        v = rec.get(name)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return ("wrong_type", name, f"{name} must be a number, got {type(v).__name__} {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            return ("wrong_type", name, f"{name} must be a finite number, got {v!r}")
    unit = rec.get("temperature_unit")
    if unit is not None and not isinstance(unit, str):
        return ("wrong_type", "temperature_unit", "temperature_unit must be a string")
    return None


def extract_jsonl(data: bytes, src: str) -> Extracted:
    """Typed rows of a JSON-lines object."""
    try:
        table = pjson.read_json(
            io.BytesIO(data),
            parse_options=pjson.ParseOptions(
                explicit_schema=_JSON_SCHEMA, unexpected_field_behavior="ignore"
            ),
        )
        typed = _typed_ts(table)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        typed = None
    if typed is not None:
        lines = data.splitlines()
        # line numbers must point into the object: blank lines take the per-record path
        if len(lines) == typed.num_rows and all(line.strip() for line in lines):
            typed = _with_lineage(typed, src).cast(EXTRACTED_SCHEMA)
            return Extracted(rows=typed, records_in=typed.num_rows)
    return _records_path(data.decode("utf-8", errors="replace").splitlines(), src)


def extract_csv(data: bytes, src: str) -> Extracted:
    """Typed rows of a CSV object (header row required)."""
    table = pcsv.read_csv(
        io.BytesIO(data),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in RAW_FIELDS}, strings_can_be_null=True
        ),
    )
    lines = []
    for rec in table.to_pylist():
        out = {}
        for key, value in rec.items():
            if key in (*SENSORS, "failure") and value is not None:
                try:
                    out[key] = float(value) if "." in value or "e" in value.lower() else int(value)
                except ValueError:
                    out[key] = value
            else:
                out[key] = value
        lines.append(json.dumps(out))
    return _records_path(lines, src, first_line=2)


def extract_parquet(data: bytes, src: str) -> Extracted:
    """Typed rows of a Parquet object (columns are cast to the reading schema)."""
    table = pq.read_table(io.BytesIO(data))
    try:
        cols = {}
        for name in _JSON_SCHEMA.names:
            if name == "ts" and name in table.column_names:
                ts = table[name]
                cols[name] = (
                    pc.cast(ts, pa.timestamp("us", tz="UTC"))
                    if pa.types.is_timestamp(ts.type)
                    else ts
                )
            elif name in table.column_names:
                cols[name] = pc.cast(table[name], _JSON_SCHEMA.field(name).type)
            else:
                cols[name] = pa.nulls(table.num_rows, _JSON_SCHEMA.field(name).type)
        typed_in = pa.table(cols)
        typed = typed_in if pa.types.is_timestamp(typed_in["ts"].type) else _typed_ts(typed_in)
        if typed is not None:
            return Extracted(
                rows=_with_lineage(typed, src).cast(EXTRACTED_SCHEMA), records_in=typed.num_rows
            )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    lines = [json.dumps(rec, default=str) for rec in table.to_pylist()]
    return _records_path(lines, src)


def extract_object(uri: str) -> Extracted:
    """Typed rows of one raw object, by its format."""
    data = storage.read_bytes(uri)
    fmt = format_of(uri)
    if fmt == "jsonl":
        return extract_jsonl(data, uri)
    if fmt == "csv":
        return extract_csv(data, uri)
    return extract_parquet(data, uri)


def extract(uris: list[str]) -> Extracted:
    """Typed rows of several raw objects, concatenated."""
    parts = [extract_object(uri) for uri in uris]
    if not parts:
        return Extracted(rows=EXTRACTED_SCHEMA.empty_table())
    return Extracted(
        rows=pa.concat_tables([p.rows for p in parts]),
        rejected=[r for p in parts for r in p.rejected],
        records_in=sum(p.records_in for p in parts),
    )
