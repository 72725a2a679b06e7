"""Property tests: random bytes, random encodings and random CSV shapes at the parsers.

Whatever arrives, a parser either reads it or rejects the whole object with a reason;
it never raises anything else, never loses a record and never invents one.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_kit.etl.decode import (
    OBJECT_REASONS,
    ObjectRejected,
    csv_records,
    epoch_to_timestamp,
    epoch_unit_of,
    json_records,
    open_parquet,
    open_text,
    parse_timestamp,
)
from mlops_kit.etl.extract import extract_csv, extract_jsonl, extract_parquet

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# cells with the characters that break naive CSV handling
cell = st.text(alphabet=st.sampled_from(list('ab ,"\n\t;é€1.-')), min_size=0, max_size=12)


@PROPS
@given(st.binary(max_size=2000))
def test_random_bytes_are_read_or_rejected_whole(data: bytes) -> None:
    for extract in (extract_csv, extract_jsonl, extract_parquet):
        try:
            out = extract(data, "x")
        except ObjectRejected as exc:
            assert exc.reason in OBJECT_REASONS
            assert exc.detail
            continue
        # every record read is either a row or a rejected record, never both or neither
        assert out.records_in == out.rows.num_rows + len(out.rejected)
        assert out.objects[0].records == out.records_in


@PROPS
@given(st.binary(max_size=600), st.sampled_from(["gzip", "none"]))
def test_open_text_never_raises_anything_else(data: bytes, codec: str) -> None:
    payload = gzip.compress(data) if codec == "gzip" else data
    try:
        text, how = open_text(payload)
    except ObjectRejected as exc:
        assert exc.reason in OBJECT_REASONS
    else:
        assert "\x00" not in text
        assert how["compression"] == (None if codec == "none" else "gzip")


@PROPS
@given(
    st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=20),
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32", "utf-16-be-bom"]),
)
def test_every_unicode_encoding_with_a_bom_reads_the_same_text(
    values: list[str], encoding: str
) -> None:
    records = [{"device_id": v, "n": i} for i, v in enumerate(values) if "\x00" not in v]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if encoding == "utf-16-be-bom":
        data = b"\xfe\xff" + text.encode("utf-16-be")
    else:
        data = text.encode(encoding)
    if not text:
        return
    decoded, _ = open_text(data)
    assert decoded == text
    got = [r.value for r in json_records(decoded)]
    assert got == records


@PROPS
@given(
    st.lists(st.lists(cell, min_size=1, max_size=5), min_size=1, max_size=25),
    st.sampled_from(["\n", "\r\n"]),
)
def test_csv_records_keep_each_row_and_its_line(rows: list[list[str]], eol: str) -> None:
    width = max(len(r) for r in rows)
    header = [f"c{i}" for i in range(width)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=eol)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    text = buf.getvalue()
    got = list(csv_records(text))
    # a row of one blank cell is a blank line, which is not a record
    written = [r for r in rows if not (len(r) == 1 and not r[0].strip())]
    assert len(got) == len(written)
    for rec, row in zip(got, written, strict=True):
        # the exact text is where the record says it starts, and parses back to the row
        lines = text.split("\n")
        assert text.split("\n", rec.line - 1)[-1].startswith(rec.text)
        assert rec.text.split("\n")[0] in lines[rec.line - 1]
        assert next(csv.reader(io.StringIO(rec.text, newline=""))) == row
        if len(row) == width:
            assert rec.error is None
            assert list(rec.value.values()) == [v if v != "" else None for v in row]
        else:
            assert rec.error is not None and rec.error[0] == "ragged_row"
    assert [r.ordinal for r in got] == list(range(len(got)))


def test_a_bare_carriage_return_rejects_its_row_only() -> None:
    text = "a,b\n1,2\nx\ry,3\n4,5\n"
    got = list(csv_records(text))
    assert [r.value for r in got if r.error is None] == [{"a": "1", "b": "2"}, {"a": "4", "b": "5"}]
    (bad,) = [r for r in got if r.error is not None]
    assert bad.line == 3 and bad.text == "x\ry,3" and bad.error[0] == "ragged_row"


@PROPS
@given(st.lists(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), max_size=15))
def test_json_array_and_lines_give_the_same_records(items: list[dict]) -> None:
    as_lines = "".join(json.dumps(i) + "\n" for i in items)
    as_array = json.dumps(items, indent=1)
    lines = [r.value for r in json_records(as_lines)]
    array = [r.value for r in json_records(as_array)]
    assert lines == items
    if items:
        assert array == items
    for rec in json_records(as_array):
        assert rec.text in as_array
        assert json.loads(rec.text) == rec.value


@PROPS
@given(st.text(max_size=300))
def test_json_records_account_for_every_non_blank_line(text: str) -> None:
    if text.lstrip().startswith(("[", "{")):
        return  # arrays and single objects are tested above
    records = list(json_records(text))
    non_blank = [ln for ln in text.split("\n") if ln.rstrip("\r").strip()]
    assert len(records) == len(non_blank)
    for rec in records:
        assert (rec.value is None) != (rec.error is None)


@PROPS
@given(
    st.datetimes(
        min_value=datetime(1975, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(timezone.utc),
    ),
    st.sampled_from(["s", "ms", "us", "ns"]),
)
def test_epochs_are_read_in_their_unit_by_magnitude(when: datetime, unit: str) -> None:
    when = when.replace(microsecond=0)
    scale = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    value = int(when.timestamp()) * scale
    assert epoch_unit_of(value) == unit
    assert parse_timestamp(value) == when
    assert parse_timestamp(str(value)) == when
    import pyarrow as pa

    assert epoch_to_timestamp(pa.array([value], pa.int64())).to_pylist() == [when]


@PROPS
@given(st.one_of(st.text(max_size=40), st.floats(), st.integers(), st.booleans(), st.none()))
def test_parse_timestamp_never_raises(value: object) -> None:
    out = parse_timestamp(value)
    assert out is None or out.tzinfo is not None


def test_iso_forms() -> None:
    utc = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert parse_timestamp("2026-01-02T03:04:05Z") == utc
    assert parse_timestamp("2026-01-02T05:04:05+02:00") == utc
    assert parse_timestamp("2026-01-02T03:04:05") == utc  # naive: UTC by default
    assert parse_timestamp("2026-01-02T03:04:05", naive_timezone=None) is None
    berlin = __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    assert parse_timestamp("2026-01-02T04:04:05", naive_timezone=berlin) == utc
    assert parse_timestamp(1767323045) == utc
    assert parse_timestamp(1767323045000, epoch_unit="ms") == utc
    # a declared unit wins over the magnitude rule
    assert parse_timestamp(1767323045, epoch_unit="ms") == utc.replace(
        year=1970, month=1, day=21, hour=10, minute=55, second=23
    ) + timedelta(microseconds=45000)
    assert parse_timestamp(True) is None and parse_timestamp("yesterday") is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty_object"),
        (b"PAR1" + b"\x00" * 20, "truncated"),
        (b"a,b\n1,2\n", "not_parquet"),
        (b"PAR1" + b"\x00" * 20 + b"PAR1", "corrupt_parquet"),
    ],
)
def test_parquet_object_reasons(data: bytes, reason: str) -> None:
    with pytest.raises(ObjectRejected) as info:
        open_parquet(data)
    assert info.value.reason == reason
