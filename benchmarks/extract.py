"""Extract benchmark: reading raw objects the way users send them, vs plain pyarrow readers.

The same in-memory objects (generated before timing) go, alternating, through

* **mlops_kit**: :mod:`mlops_kit.etl.extract` (magic-byte decompression, encoding checks,
  format detection, typing to the reading schema with event times in any accepted form,
  lineage columns, and per-record quarantine when an object is not clean);
* **baseline**: the plain pyarrow reader for the format (``pyarrow.json.read_json``,
  ``pyarrow.csv.read_csv``, ``pyarrow.parquet.read_table``) on the same bytes, with no
  checks at all; it cannot read a dirty object, so for those it reports the failure.

Rows/s and the ratio go into ``docs/benchmarks.md``.

Usage::

    python benchmarks/extract.py                # 500,000 rows per object
    python benchmarks/extract.py --rows 50000   # quicker
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq
from docsection import cpu_name, write_section
from iot_fleet import GeneratorConfig, generate_readings

from mlops_kit.etl.extract import extract_csv, extract_jsonl, extract_parquet

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- extract:start -->", "<!-- extract:end -->"


def objects(rows: int) -> dict[str, tuple[bytes, Callable, Callable | None]]:
    """name -> (bytes, our extractor, the plain reader or None)."""
    devices = max(1, rows // 2000)
    cfg = GeneratorConfig(
        n_devices=devices,
        start=datetime(2026, 1, 1, tzinfo=timezone.utc),
        freq_s=60,
        steps=-(-rows // devices),
        seed=3,
    )
    table = generate_readings(cfg).slice(0, rows)
    iso = table.set_column(
        1, "ts", pa.array([t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for t in table["ts"].to_pylist()])
    )
    jsonl = "".join(json.dumps(r) + "\n" for r in iso.to_pylist()).encode()
    sink = io.BytesIO()
    pcsv.write_csv(iso, sink)
    csv_bytes = sink.getvalue()
    sink = io.BytesIO()
    pq.write_table(table, sink)
    parquet = sink.getvalue()
    epoch = table.set_column(
        1, "ts", pa.array([int(t.timestamp() * 1000) for t in table["ts"].to_pylist()])
    )
    sink = io.BytesIO()
    pq.write_table(epoch, sink)
    parquet_ms = sink.getvalue()
    lines = jsonl.split(b"\n")
    for i in range(0, len(lines) - 1, 100):  # 1% of records cut mid-way
        lines[i] = lines[i][:-9]
    dirty = b"\n".join(lines)

    def read_json(data: bytes) -> pa.Table:
        return pjson.read_json(io.BytesIO(data))

    def read_csv(data: bytes) -> pa.Table:
        return pcsv.read_csv(io.BytesIO(data))

    def read_parquet(data: bytes) -> pa.Table:
        return pq.read_table(io.BytesIO(data))

    def read_gzip_json(data: bytes) -> pa.Table:
        return pjson.read_json(pa.input_stream(pa.py_buffer(data), compression="gzip"))

    return {
        "JSON lines": (jsonl, extract_jsonl, read_json),
        "JSON lines, gzip": (gzip.compress(jsonl, 1), extract_jsonl, read_gzip_json),
        "CSV": (csv_bytes, extract_csv, read_csv),
        "Parquet": (parquet, extract_parquet, read_parquet),
        "Parquet, epoch ms": (parquet_ms, extract_parquet, read_parquet),
        "JSON lines, 1% malformed": (dirty, extract_jsonl, read_json),
    }


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(rows: int, reps: int) -> dict:
    objs = objects(rows)
    out = {}
    for name, (data, ours, plain) in objs.items():
        ours_t, plain_t, plain_ok = [], [], True
        result = ours(data, "bench")
        for _ in range(reps):
            ours_t.append(_time(lambda d=data, f=ours: f(d, "bench")))
            if plain is not None and plain_ok:
                try:
                    plain_t.append(_time(lambda d=data, f=plain: f(d)))
                except pa.ArrowInvalid:
                    plain_ok = False
        out[name] = {
            "bytes": len(data),
            "records": result.records_in,
            "rows": result.rows.num_rows,
            "rejected": len(result.rejected),
            "ours_s": statistics.median(ours_t),
            "plain_s": statistics.median(plain_t) if plain_ok and plain_t else None,
        }
        print(name, out[name], flush=True)
    return out


def render(res: dict, rows: int, reps: int, argv: list[str]) -> str:
    lines = []
    for name, r in res.items():
        ours = r["records"] / r["ours_s"]
        if r["plain_s"] is None:
            plain, ratio = "fails (not valid JSON lines)", "-"
        else:
            p = r["records"] / r["plain_s"]
            plain, ratio = f"{p:,.0f}", f"{ours / p:.2f}x"
        lines.append(
            f"| {name} | {r['bytes'] / 2**20:.1f} | {plain} | {ours:,.0f} | {ratio} | "
            f"{r['rows']:,} + {r['rejected']:,} |"
        )
    table = "\n".join(lines)
    return f"""{START}
## Extract: reading raw objects as users send them ({rows:,} records per object)

Command: `python benchmarks/{Path(argv[0]).name} {" ".join(argv[1:])}`.
Machine: {cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()},
pyarrow {pa.__version__}. Each object is read from memory; the two paths alternate,
{reps} times, medians. The baseline is the plain pyarrow reader of the format with no
checks, no typing to the reading schema, no lineage and no quarantine.

| object | MiB | plain pyarrow records/s | mlops_kit records/s | vs plain | rows + rejected |
|---|---:|---:|---:|---:|---:|
{table}

mlops_kit adds, on clean objects: decompression by magic bytes, strict decoding (UTF-8 or a
byte-order mark), the check that each record sits on its own line (so line numbers in the
quarantine are exact), typing to the reading schema with event times in any accepted form,
and three lineage columns. A dirty object takes the per-record path, which keeps every good
record and quarantines each bad one with its exact text; the plain reader refuses the whole
object.
{END}"""


def write_doc(section: str) -> None:
    write_section(DOC, START, END, section)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=500_000, help="records per object")
    parser.add_argument("--reps", type=int, default=3, help="alternating repetitions")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs untouched")
    args = parser.parse_args()
    res = run(args.rows, args.reps)
    section = render(res, args.rows, args.reps, sys.argv)
    print(section)
    if not args.no_doc:
        write_doc(section)


if __name__ == "__main__":
    main()
