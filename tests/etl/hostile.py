"""A corpus of hostile raw files, generated (never committed), with what each must give.

Each :class:`Hostile` holds the bytes a user might really send and the expected
outcome: quarantined whole with a reason, or so many records of which so many are
rejected for which reasons. Every file carries its own readings (disjoint slices of
one synthetic fleet), so no two files share a key.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
from iot_fleet import SENSORS

FIELDS = ["device_id", "ts", *SENSORS, "failure"]


@dataclass
class Hostile:
    name: str
    data: bytes
    object_reason: str | set[str] | None = None
    """Expected reason when the whole object must be quarantined."""
    records: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    notes: set[str] = field(default_factory=set)
    """Kinds of object-level notes expected (extra_columns, schema_drift)."""
    release_encoding: str | None = None
    """Declaring this encoding on release makes the object readable."""

    @property
    def loaded(self) -> int:
        return self.records - sum(self.rejected.values())


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_rows(rows: list[dict]) -> list[dict]:
    return [{**r, "ts": _iso(r["ts"])} for r in rows]


def _csv_text(rows: list[dict], extra: dict[str, str] | None = None, eol: str = "\n") -> str:
    buf = io.StringIO()
    names = FIELDS + list(extra or {})
    w = csv.writer(buf, lineterminator=eol)
    w.writerow(names)
    for r in rows:
        w.writerow([_iso(r["ts"]) if k == "ts" else r.get(k, (extra or {}).get(k)) for k in names])
    return buf.getvalue()


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in _json_rows(rows))


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _zstd(data: bytes) -> bytes:
    out = pa.BufferOutputStream()
    with pa.CompressedOutputStream(out, "zstd") as f:
        f.write(data)
    return out.getvalue().to_pybytes()


def corpus(readings: pa.Table, per_file: int = 20, seed: int = 5) -> list[Hostile]:
    """The hostile files, each built from its own ``per_file`` readings."""
    rows = readings.select(FIELDS).to_pylist()
    rng = random.Random(seed)
    chunks = iter([rows[i : i + per_file] for i in range(0, len(rows), per_file)])
    n = per_file
    out: list[Hostile] = []

    # whole objects that cannot be read
    out.append(Hostile("empty.csv", b"", "empty_object"))
    out.append(Hostile("empty.parquet", b"", "empty_object"))
    out.append(Hostile("empty.jsonl", b"", "empty_object"))
    noise = bytes(rng.randrange(256) for _ in range(3000))
    out.append(Hostile("noise.csv", noise, {"not_text", "unreadable_encoding"}))
    out.append(Hostile("noise.jsonl", noise, {"not_text", "unreadable_encoding"}))
    out.append(Hostile("noise.parquet", noise, "not_parquet"))
    out.append(Hostile("text.parquet", _csv_text(next(chunks)).encode(), "not_parquet"))
    good_parquet = _parquet(pa.Table.from_pylist(next(chunks)))
    out.append(Hostile("cut.parquet", good_parquet[: len(good_parquet) // 2], "truncated"))
    gz = gzip.compress(_jsonl(next(chunks)).encode())
    out.append(Hostile("cut.jsonl", gz[: len(gz) // 2], "truncated"))
    out.append(Hostile("xz.jsonl", b"\xfd7zXZ\x00" + b"\x00" * 40, "unsupported_compression"))
    headerless = _csv_text(next(chunks)).split("\n", 1)[1]
    out.append(Hostile("headerless.csv", headerless.encode(), "missing_header"))
    latin = _csv_text(next(chunks), extra={"site": "Köln-Süd"})
    out.append(
        Hostile(
            "latin1.csv",
            latin.encode("latin-1"),
            "unreadable_encoding",
            records=n,
            notes={"extra_columns"},
            release_encoding="latin-1",
        )
    )
    utf16_nobom = _jsonl(next(chunks)).encode("utf-16-le")
    out.append(Hostile("utf16-nobom.jsonl", utf16_nobom, "not_text"))

    wide = _csv_text(next(chunks), extra={"x" * 2_000_000: "1"})
    out.append(Hostile("wide-header.csv", wide.encode(), records=n, notes={"extra_columns"}))

    # readable objects in the forms users send
    out.append(Hostile("gzip-named.jsonl", gzip.compress(_jsonl(next(chunks)).encode()), records=n))
    out.append(Hostile("zstd.jsonl", _zstd(_jsonl(next(chunks)).encode()), records=n))
    out.append(Hostile("bz2.csv", bz2.compress(_csv_text(next(chunks)).encode()), records=n))
    out.append(Hostile("utf16.jsonl", _jsonl(next(chunks)).encode("utf-16"), records=n))
    out.append(
        Hostile("utf16be.csv", b"\xfe\xff" + _csv_text(next(chunks)).encode("utf-16-be"), records=n)
    )
    out.append(Hostile("bom.csv", b"\xef\xbb\xbf" + _csv_text(next(chunks)).encode(), records=n))
    out.append(Hostile("crlf.csv", _csv_text(next(chunks), eol="\r\n").encode(), records=n))
    arr = json.dumps(_json_rows(next(chunks)))
    out.append(Hostile("array.json", arr.encode(), records=n))
    pretty = json.dumps(_json_rows(next(chunks)), indent=2)
    out.append(Hostile("pretty-array.json", pretty.encode(), records=n))
    one = json.dumps(_json_rows(next(chunks)[:1])[0], indent=2)
    out.append(Hostile("one-object.json", one.encode(), records=1))
    open_arr = json.dumps(_json_rows(next(chunks)))[:-1]  # no closing bracket
    out.append(Hostile("unclosed-array.json", open_arr.encode(), records=n))
    broken = _json_rows(next(chunks))
    text = "[" + ",".join(json.dumps(r) for r in broken[:5]) + ", {broken" + "]"
    out.append(
        Hostile("broken-array.json", text.encode(), records=6, rejected=Counter(malformed_json=1))
    )

    # records that must be quarantined one by one, the rest loaded
    rag = _csv_text(next(chunks)).split("\n")
    rag[3] = rag[3].rsplit(",", 2)[0]  # a short row
    rag[7] = rag[7] + ",surplus"  # a long row
    out.append(
        Hostile("ragged.csv", "\n".join(rag).encode(), records=n, rejected=Counter(ragged_row=2))
    )
    inf = _csv_text(next(chunks)).split("\n")
    head = inf[0].split(",")
    cells = inf[2].split(",")
    cells[head.index("pressure")] = "1e309"
    inf[2] = ",".join(cells)
    out.append(
        Hostile("inf.csv", "\n".join(inf).encode(), records=n, rejected=Counter(wrong_type=1))
    )
    ml_rows = next(chunks)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*FIELDS, "note"])
    for i, r in enumerate(ml_rows):
        values = [_iso(r["ts"]) if k == "ts" else r[k] for k in FIELDS]
        if i == 4:
            values[FIELDS.index("vibration")] = "n/a"  # after the multi-line field below
        w.writerow([*values, "line one\nline two" if i == 2 else ""])
    out.append(
        Hostile(
            "multiline.csv",
            buf.getvalue().encode(),
            records=n,
            rejected=Counter(wrong_type=1),
            notes={"extra_columns"},
        )
    )
    extra = _json_rows(next(chunks))
    for r in extra:
        r["firmware"] = "1.2.3"
    out.append(
        Hostile(
            "extra-field.jsonl",
            "".join(json.dumps(r) + "\n" for r in extra).encode(),
            records=n,
            notes={"extra_columns"},
        )
    )
    drift = _json_rows(next(chunks))
    for r in drift:
        r["humidity"] = f"{r['humidity']:.1f}%"
    out.append(
        Hostile(
            "drift.jsonl",
            "".join(json.dumps(r) + "\n" for r in drift).encode(),
            records=n,
            rejected=Counter(wrong_type=n),
            notes={"schema_drift"},
        )
    )
    mixed = _jsonl(next(chunks)).split("\n")
    mixed[5] = mixed[5][:-9]  # cut mid-record
    mixed[9] = "[1, 2, 3]"  # valid JSON, not an object
    out.append(
        Hostile(
            "mixed.jsonl", "\n".join(mixed).encode(), records=n, rejected=Counter(malformed_json=2)
        )
    )

    # event times in every form devices send
    epoch = next(chunks)
    for kind, scale in (("s", 1), ("ms", 1_000)):
        recs = [
            {**r, "ts": int(r["ts"].timestamp() * scale)}
            for r in (epoch if kind == "s" else next(chunks))
        ]
        out.append(
            Hostile(
                f"epoch-{kind}.jsonl",
                "".join(json.dumps(r) + "\n" for r in recs).encode(),
                records=n,
            )
        )
    naive = [{**r, "ts": r["ts"].strftime("%Y-%m-%dT%H:%M:%S")} for r in next(chunks)]
    out.append(
        Hostile("naive.jsonl", "".join(json.dumps(r) + "\n" for r in naive).encode(), records=n)
    )
    offset = [{**r, "ts": r["ts"].astimezone(_PLUS2).isoformat()} for r in next(chunks)]
    out.append(
        Hostile("offset.jsonl", "".join(json.dumps(r) + "\n" for r in offset).encode(), records=n)
    )
    numeric_text = _csv_text(next(chunks))
    lines = numeric_text.split("\n")
    for i in range(1, len(lines) - 1):
        cells = lines[i].split(",")
        cells[1] = str(int(datetime.fromisoformat(cells[1]).timestamp() * 1000))
        lines[i] = ",".join(cells)
    out.append(Hostile("epoch-ms.csv", "\n".join(lines).encode(), records=n))
    bad_ts = _json_rows(next(chunks))
    bad_ts[3]["ts"] = "yesterday"
    bad_ts[4]["ts"] = True
    out.append(
        Hostile(
            "bad-ts.jsonl",
            "".join(json.dumps(r) + "\n" for r in bad_ts).encode(),
            records=n,
            rejected=Counter(invalid_timestamp=2),
        )
    )
    for unit in ("s", "ms", "ns"):
        t = pa.Table.from_pylist(next(chunks))
        t = t.set_column(1, "ts", t["ts"].cast(pa.timestamp(unit, tz="UTC")))
        out.append(Hostile(f"ts-{unit}.parquet", _parquet(t), records=n))
    t = pa.Table.from_pylist(next(chunks))
    t = t.set_column(1, "ts", t["ts"].cast(pa.timestamp("us")))  # no zone
    out.append(Hostile("ts-naive.parquet", _parquet(t), records=n))
    for name, scale in (("epoch-s", 1), ("epoch-ms", 1_000), ("epoch-us", 1_000_000)):
        t = pa.Table.from_pylist(next(chunks))
        secs = [int(v.timestamp() * scale) for v in t["ts"].to_pylist()]
        t = t.set_column(1, "ts", pa.array(secs, pa.int64()))
        out.append(Hostile(f"{name}.parquet", _parquet(t), records=n))
    t = pa.Table.from_pylist(next(chunks))
    hum = [str(v) for v in t["humidity"].to_pylist()]
    hum[6] = "wet"
    t = t.set_column(t.schema.get_field_index("humidity"), "humidity", pa.array(hum))
    t = t.append_column("batch", pa.array(["b1"] * t.num_rows))
    out.append(
        Hostile(
            "text-cells.parquet",
            _parquet(t),
            records=n,
            rejected=Counter(wrong_type=1),
            notes={"extra_columns"},
        )
    )
    return out


_PLUS2 = timezone(__import__("datetime").timedelta(hours=2))
