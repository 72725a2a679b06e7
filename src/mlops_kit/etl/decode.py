"""Reading raw objects the way users really send them.

Two levels, so that one bad object never blocks the lake and one bad record never
blocks its object:

* **Object level** (:func:`open_text`, :func:`open_parquet`): compression is found by
  magic bytes (gzip, zstd, bz2), the text encoding by its byte-order mark (UTF-8 with or
  without BOM, UTF-16 and UTF-32 with a BOM) or by the encoding the user declared, and
  the format is checked (a Parquet object must start and end with ``PAR1``). An object
  that cannot be read raises :class:`ObjectRejected` with one of :data:`OBJECT_REASONS`;
  the ETL quarantines it whole and goes on with the other objects.
* **Record level** (:func:`json_records`, :func:`csv_records`): each record comes with
  the line it starts on, its ordinal in the object and its exact text as received, or
  with the reason it could not be parsed. JSON lines, a JSON array (or a single JSON
  object) and CSV with quoted multi-line fields are understood.

Event times (:func:`parse_timestamp`, :func:`epoch_to_timestamp`) may be ISO 8601 with
or without an offset (a time without one is read in ``naive_timezone``, UTC by default)
or epoch numbers. An epoch's unit is the declared one, or by magnitude: ``|v| < 1e11``
seconds, ``< 1e14`` milliseconds, ``< 1e17`` microseconds, otherwise nanoseconds (so
seconds are recognised until the year 5138 and milliseconds from March 1973 on).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Literal, cast

import numpy as np
import pyarrow as pa

EpochUnit = Literal["auto", "s", "ms", "us", "ns"]

OBJECT_REASONS: dict[str, str] = {
    "empty_object": "the object has no bytes",
    "truncated": "the object ends before its format says it should (cut off in transfer?)",
    "unsupported_compression": "compressed with a codec that is not read (gzip, zstd, bz2 are)",
    "unreadable_encoding": "the text is not UTF-8 (nor UTF-16/32 with a byte-order mark)",
    "not_text": "binary content in an object declared as text (CSV or JSON)",
    "not_parquet": "the object is not Parquet (no PAR1 magic bytes)",
    "corrupt_parquet": "the Parquet footer or a page could not be decoded",
    "missing_header": "the CSV's first line does not name the expected columns",
}
"""Why a whole object can be quarantined."""

RECORD_REASONS: dict[str, str] = {
    "malformed_json": "the record is not a JSON object",
    "ragged_row": "the CSV row has more or fewer fields than the header",
}
"""Why a record can be rejected before it is typed (typing adds its own reasons)."""

_EPOCH_SCALE = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}


class ObjectRejected(Exception):
    """A raw object that cannot be read at all; ``reason`` is one of OBJECT_REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class RawRecord:
    """One record of an object: where it starts, its text, and its value or problem."""

    line: int
    """1-based line of the object (after decompression and decoding) it starts on."""
    ordinal: int
    """0-based position among the object's records (blank lines are not records)."""
    text: str
    """The record exactly as received (decoded text)."""
    value: Any = None
    """A dict (JSON) or a dict of strings (CSV) when parsed."""
    error: tuple[str, str] | None = None
    """(reason, detail) when the record could not be parsed."""


# ---------------------------------------------------------------- object level
_GZIP, _ZSTD, _BZ2 = b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"BZh"
_OTHER_CODECS = {b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip", b"\x04\x22\x4d\x18": "lz4"}


def compression_of(data: bytes) -> str | None:
    """``gzip``, ``zstd``, ``bz2`` (or another codec's name) from the magic bytes."""
    if data.startswith(_GZIP):
        return "gzip"
    if data.startswith(_ZSTD):
        return "zstd"
    if data.startswith(_BZ2) and len(data) > 3 and data[3:4].isdigit():
        return "bz2"
    for magic, name in _OTHER_CODECS.items():
        if data.startswith(magic):
            return name
    return None


def decompress(data: bytes) -> tuple[bytes, str | None]:
    """The object's bytes with any outer compression removed, and the codec found.

    Raises:
        ObjectRejected: ``truncated`` or ``unsupported_compression``.
    """
    codec = compression_of(data)
    if codec is None:
        return data, None
    try:
        if codec == "gzip":
            return gzip.decompress(data), codec
        if codec == "bz2":
            return bz2.decompress(data), codec
        if codec == "zstd":
            stream = pa.input_stream(pa.py_buffer(data), compression="zstd")
            return stream.read(), codec
    except (EOFError, OSError, zlib.error, pa.ArrowInvalid, ValueError) as exc:
        raise ObjectRejected(
            "truncated",
            f"the {codec} stream is incomplete or corrupt ({exc}); land the whole file again",
        ) from exc
    raise ObjectRejected(
        "unsupported_compression",
        f"the object is {codec}-compressed; decompress it or recompress with gzip, zstd or bz2",
    )


_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def decode_text(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The text of an object and the encoding it was read with.

    A byte-order mark wins; otherwise the declared ``encoding``; otherwise strict UTF-8.

    Raises:
        ObjectRejected: ``unreadable_encoding`` or ``not_text``, naming the first bad byte
            and how to declare the encoding.
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(name)
            except UnicodeDecodeError as exc:
                raise ObjectRejected(
                    "unreadable_encoding",
                    f"the object starts with a {name} byte-order mark but byte {exc.start} "
                    f"is not valid {name}",
                ) from exc
            return _check_text(text, name), name
    name = encoding or "utf-8"
    try:
        text = data.decode(name)
    except LookupError as exc:
        raise ObjectRejected(
            "unreadable_encoding", f"'{name}' is not an encoding Python knows"
        ) from exc
    except UnicodeDecodeError as exc:
        if _looks_binary(data):
            raise ObjectRejected("not_text", _binary_detail(data)) from exc
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 1].hex().upper()
        hint = (
            " It looks like a single-byte encoding such as Latin-1 or Windows-1252: release it "
            "with 'mlops-kit etl release URI --encoding latin-1', or set parse.encoding."
            if encoding is None
            else ""
        )
        raise ObjectRejected(
            "unreadable_encoding",
            f"byte 0x{bad} at offset {exc.start} (line {line}) is not valid {name}.{hint}",
        ) from exc
    return _check_text(text, name), name


def _looks_binary(data: bytes) -> bool:
    sample = data[:4096]
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return control > len(sample) * 0.05


def _binary_detail(data: bytes) -> str:
    sample = data[:4096]
    if len(sample) > 3 and sample[1::2].count(0) > len(sample) * 0.4:
        return "NUL bytes between characters: UTF-16 without a byte-order mark? Re-export as UTF-8"
    return "binary content (NUL or control bytes) in an object declared as CSV or JSON text"


def _check_text(text: str, encoding: str) -> str:
    if "\x00" in text:
        raise ObjectRejected(
            "not_text", f"NUL characters in the {encoding} text: the object is not CSV or JSON"
        )
    return text


def open_text(data: bytes, encoding: str | None = None) -> tuple[str, dict[str, str | None]]:
    """Decompress and decode a text object; returns the text and how it was read.

    Raises:
        ObjectRejected: ``empty_object``, ``truncated``, ``unsupported_compression``,
            ``unreadable_encoding`` or ``not_text``.
    """
    if not data:
        raise ObjectRejected("empty_object", "the object has no bytes; nothing to read")
    raw, codec = decompress(data)
    if not raw:
        raise ObjectRejected("empty_object", f"the {codec} stream holds no bytes")
    text, used = decode_text(raw, encoding)
    return text, {"compression": codec, "encoding": used}


def open_parquet(data: bytes) -> tuple[pa.Table, dict[str, str | None]]:
    """Read a Parquet object (optionally compressed as a whole).

    Raises:
        ObjectRejected: ``empty_object``, ``truncated``, ``not_parquet`` or
            ``corrupt_parquet``.
    """
    import pyarrow.parquet as pq

    if not data:
        raise ObjectRejected("empty_object", "the object has no bytes; nothing to read")
    raw, codec = decompress(data)
    if not raw.startswith(b"PAR1"):
        kind = "text" if not _looks_binary(raw[:4096]) else "binary data"
        raise ObjectRejected(
            "not_parquet",
            f"the object does not start with the Parquet magic bytes PAR1 (it holds {kind}); "
            "land it with the extension of its real format",
        )
    if len(raw) < 12 or not raw.endswith(b"PAR1"):
        raise ObjectRejected(
            "truncated",
            f"the Parquet object ends without its footer ({len(raw)} bytes): it was cut off; "
            "land the whole file again",
        )
    try:
        table = pq.read_table(io.BytesIO(raw))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ObjectRejected("corrupt_parquet", f"pyarrow could not read it: {exc}") from exc
    return table, {"compression": codec, "encoding": None}


# ---------------------------------------------------------------- record level
def _iter_lines(text: str) -> Iterator[str]:
    """Lines split on LF only (CR LF endings stay with their line), lazily."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1


def _strip_eol(line: str) -> str:
    return line[:-1] if line.endswith("\n") else line


def json_records(text: str) -> Iterator[RawRecord]:
    """Records of a JSON text: JSON lines, a JSON array of objects, or one JSON object.

    A line (or array element) that does not parse becomes a record with
    ``error=("malformed_json", ...)``; the records around it are unaffected. Once an
    array is broken its remaining text is one malformed record (nothing is lost).
    """
    head = text.lstrip()
    if head.startswith("["):
        yield from _json_array(text)
        return
    if head.startswith("{") and "\n" in text.strip():
        try:
            whole = json.loads(text)
        except ValueError:
            whole = None
        if isinstance(whole, dict):  # one pretty-printed object
            start = len(text) - len(head)
            yield RawRecord(text.count("\n", 0, start) + 1, 0, text.strip(), whole)
            return
    ordinal = 0
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line[:-1] if line.endswith("\r") else line
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            yield RawRecord(
                lineno, ordinal, line, error=("malformed_json", f"not valid JSON: {exc}")
            )
        else:
            if isinstance(value, dict):
                yield RawRecord(lineno, ordinal, line, value)
            else:
                yield RawRecord(
                    lineno,
                    ordinal,
                    line,
                    error=(
                        "malformed_json",
                        f"a record must be a JSON object, got {type(value).__name__}",
                    ),
                )
        ordinal += 1


_WS = re.compile(r"\s*")


def _json_array(text: str) -> Iterator[RawRecord]:
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line, counted = 1, 0
    ordinal = 0

    def line_at(i: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, i)
        counted = i
        return line

    while True:
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= len(text):
            return  # an unclosed array: every element read is a record
        if text[pos] == "]":
            rest = text[pos + 1 :].strip()
            if rest:
                yield RawRecord(
                    line_at(pos),
                    ordinal,
                    rest,
                    error=("malformed_json", "text after the end of the JSON array"),
                )
            return
        try:
            value, end = decoder.raw_decode(text, pos)
        except ValueError as exc:
            rest = text[pos:].rstrip()
            yield RawRecord(
                line_at(pos),
                ordinal,
                rest,
                error=("malformed_json", f"not valid JSON from here to the end: {exc}"),
            )
            return
        rec_text = text[pos:end]
        if isinstance(value, dict):
            yield RawRecord(line_at(pos), ordinal, rec_text, value)
        else:
            yield RawRecord(
                line_at(pos),
                ordinal,
                rec_text,
                error=(
                    "malformed_json",
                    f"an array element must be a JSON object, got {type(value).__name__}",
                ),
            )
        ordinal += 1
        pos = _WS.match(text, end).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] == ",":
            pos += 1


def csv_header(text: str) -> tuple[list[str], int]:
    """The header fields of a CSV text and the number of lines the header spans.

    Raises:
        ObjectRejected: ``missing_header`` when the first line is not CSV at all.
    """
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(_iter_lines(text))
    try:
        for row in reader:
            if row:
                return [c.strip() for c in row], reader.line_num
    except csv.Error as exc:
        raise ObjectRejected(
            "missing_header", f"the header line cannot be parsed as CSV: {exc}"
        ) from exc
    return [], reader.line_num


def csv_records(text: str) -> Iterator[RawRecord]:
    """Records of a CSV text with a header row, each with its exact text and first line.

    Quoted fields may span lines (line numbers stay right); a row with more or fewer
    fields than the header becomes a ``ragged_row`` record; blank lines are skipped.
    Values are strings, ``None`` for an empty field.
    """
    csv.field_size_limit(sys.maxsize)
    lines = list(_iter_lines(text))
    reader = csv.reader(lines)
    header: list[str] | None = None
    consumed = 0
    ordinal = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            start = consumed
            consumed = reader.line_num
            rec_text = "".join(lines[start:consumed]).rstrip("\r\n")
            yield RawRecord(
                start + 1, ordinal, rec_text, error=("ragged_row", f"unparseable CSV row: {exc}")
            )
            ordinal += 1
            continue
        start, consumed = consumed, reader.line_num
        if not row or (len(row) == 1 and not row[0].strip() and header is not None):
            continue
        if header is None:
            header = [c.strip() for c in row]
            continue
        rec_text = _strip_eol("".join(lines[start:consumed]))
        rec_text = rec_text[:-1] if rec_text.endswith("\r") else rec_text
        if len(row) != len(header):
            yield RawRecord(
                start + 1,
                ordinal,
                rec_text,
                error=(
                    "ragged_row",
                    f"line {start + 1} has {len(row)} fields, the header has {len(header)}",
                ),
            )
        else:
            value = {k: (v if v != "" else None) for k, v in zip(header, row, strict=True)}
            yield RawRecord(start + 1, ordinal, rec_text, value)
        ordinal += 1


# ---------------------------------------------------------------- event times
_NUMERIC = re.compile(r"^[+-]?\d+(\.\d*)?([eE][+-]?\d+)?$")


def epoch_unit_of(value: float) -> str:
    """The unit of an epoch number by magnitude (see the module docstring)."""
    v = abs(value)
    if v < 1e11:
        return "s"
    if v < 1e14:
        return "ms"
    if v < 1e17:
        return "us"
    return "ns"


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


_INT_SCALE = {"s": (1_000_000, 1), "ms": (1_000, 1), "us": (1, 1), "ns": (1, 1_000)}


def _from_epoch(value: float | int, unit: EpochUnit) -> datetime | None:
    if value != value or value in (float("inf"), float("-inf")):
        return None
    u = epoch_unit_of(value) if unit == "auto" else unit
    if isinstance(value, int):  # exact: no float rounding of large nanosecond values
        mul, div = _INT_SCALE[u]
        micros: float | int = (value * mul + div // 2) // div
    else:
        micros = round(value * _EPOCH_SCALE[u])
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return None


def parse_timestamp(
    value: object, epoch_unit: EpochUnit = "auto", naive_timezone: tzinfo | None = timezone.utc
) -> datetime | None:
    """A UTC datetime from ISO 8601 text or an epoch number (or numeric text); else None.

    ISO text without an offset is read in ``naive_timezone``; None refuses it.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return _from_epoch(value, epoch_unit)
    if not isinstance(value, str):
        return None
    s = value.strip()
    if _NUMERIC.match(s):
        try:
            return _from_epoch(int(s), epoch_unit)
        except ValueError:
            return _from_epoch(float(s), epoch_unit)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        if naive_timezone is None:
            return None
        dt = dt.replace(tzinfo=naive_timezone)
    try:
        return dt.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


def epoch_to_timestamp(values: pa.Array | pa.ChunkedArray, unit: EpochUnit = "auto") -> pa.Array:
    """Integer or float epochs to ``timestamp[us, UTC]``, the unit per value by magnitude
    when ``auto``; values out of range become null."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_integer(arr.type):
        ints = arr.fill_null(0).to_numpy(zero_copy_only=False).astype("int64")
        mag = np.abs(ints)
        present = mag[valid]
        if present.size and unit == "auto":
            lo, hi = epoch_unit_of(float(present.min())), epoch_unit_of(float(present.max()))
            if lo == hi:
                unit = cast(EpochUnit, lo)  # one unit for the whole column: one multiply
        if unit in ("s", "ms", "us") and len(ints):
            mul = {"s": 1_000_000, "ms": 1_000, "us": 1}[unit]
            limit = {"s": 2.5e11, "ms": 2.5e14, "us": 2.5e17}[unit]
            ok = valid & (mag < limit)
            micros = np.where(ok, ints, 0) * mul
            return pa.array(micros, pa.int64(), mask=~ok).cast(pa.timestamp("us", tz="UTC"))
        if unit == "auto":
            unit_idx = np.select([mag < 10**11, mag < 10**14, mag < 10**17], [0, 1, 2], default=3)
        else:
            unit_idx = np.full(len(ints), ["s", "ms", "us", "ns"].index(unit))
        ns_ok = np.ones(len(ints), dtype=bool)  # any int64 of nanoseconds fits
        in_range = np.choose(unit_idx, [mag < 2.5e11, mag < 2.5e14, mag < 2.5e17, ns_ok])
        safe = np.where(in_range, ints, 0)
        rounded_ns = safe // 1_000 + (safe % 1_000 >= 500)
        micros = np.choose(unit_idx, [safe * 1_000_000, safe * 1_000, safe, rounded_ns])
        ok = valid & in_range
        out = np.where(ok, micros, 0).astype("int64")
        return pa.array(out, pa.int64(), mask=~ok).cast(pa.timestamp("us", tz="UTC"))
    nums = arr.to_numpy(zero_copy_only=False).astype("float64")
    finite = np.isfinite(nums)
    nums = np.where(finite, nums, 0.0)
    if unit == "auto":
        mag = np.abs(nums)
        scale = np.select(
            [mag < 1e11, mag < 1e14, mag < 1e17], [1_000_000.0, 1_000.0, 1.0], default=0.001
        )
    else:
        scale = np.full(len(nums), float(_EPOCH_SCALE[unit]))
    micros = np.round(nums * scale)
    in_range = np.abs(micros) < 2.5e17  # datetime's year 9999
    ok = valid & finite & in_range
    out = np.where(ok, micros, 0).astype("int64")
    return pa.array(out, pa.int64(), mask=~ok).cast(pa.timestamp("us", tz="UTC"))
