"""Ingest benchmark: validate + transform + write, side by side with a plain Parquet write.

The same synthetic batches (1% of rows corrupted) go, in one run and interleaved batch by
batch, through

* **mlops_kit**: :class:`mlops_kit.etl.bulk.BulkWriter` (normalise, every quality rule
  including uniqueness and the device registry, split valid / quarantine, write both);
* **ceiling**: a tuned ``pyarrow.parquet.ParquetWriter`` (snappy, dictionary encoding on
  the id column only) writing the rows as they are, with no checks at all;
* **pyarrow defaults**: the same write with pyarrow's default options.

The figures (rows/s, the ratio to the ceiling, validation time as a share of the write
time, peak memory) are written into ``docs/benchmarks.md``.

Usage::

    python benchmarks/ingest.py                 # 10 million rows
    python benchmarks/ingest.py --rows 1000000  # quicker
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlops_kit.data.synthetic import (
    GeneratorConfig,
    device_ids,
    inject_typed_bad,
    iter_reading_batches,
)
from mlops_kit.etl.bulk import BulkWriter
from mlops_kit.etl.transform import PARQUET_OPTIONS

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- ingest:start -->", "<!-- ingest:end -->"


def _cpu() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        match = re.search(r"model name\s*:\s*(.+)", text)
        return match.group(1).strip() if match else platform.processor()
    except OSError:
        return platform.processor() or "unknown"


def run(rows: int, devices_per_batch: int, bad_rate: float) -> dict:
    n_devices = 1000
    steps = max(1, rows // n_devices)
    cfg = GeneratorConfig(n_devices=n_devices, steps=steps, freq_s=60, seed=42)
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    known = pa.array(device_ids(n_devices))
    tmp = Path(tempfile.mkdtemp(prefix="mlk-bench-"))
    try:
        ours = BulkWriter(str(tmp / "ours"), now, {"devices": known})
        tuned_path, default_path = tmp / "ceiling.parquet", tmp / "defaults.parquet"
        tuned = defaults = None
        t_ours = t_tuned = t_defaults = 0.0
        total = 0
        for i, batch in enumerate(iter_reading_batches(cfg, devices_per_batch)):
            batch, _ = inject_typed_bad(batch, bad_rate, seed=i)
            total += batch.num_rows
            if tuned is None:
                tuned = pq.ParquetWriter(tuned_path, batch.schema, **PARQUET_OPTIONS)
                defaults = pq.ParquetWriter(default_path, batch.schema)
            t0 = time.perf_counter()
            tuned.write_table(batch)
            t1 = time.perf_counter()
            ours.write(batch)
            t2 = time.perf_counter()
            defaults.write_table(batch)  # type: ignore[union-attr]
            t3 = time.perf_counter()
            t_tuned += t1 - t0
            t_ours += t2 - t1
            t_defaults += t3 - t2
            print(f"\r{total:>12,} rows", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        t0 = time.perf_counter()
        tuned.close()  # type: ignore[union-attr]
        t_tuned += time.perf_counter() - t0
        t0 = time.perf_counter()
        result = ours.close()
        t_ours += time.perf_counter() - t0
        t0 = time.perf_counter()
        defaults.close()  # type: ignore[union-attr]
        t_defaults += time.perf_counter() - t0
        assert result.rows_in == result.loaded + result.quarantined + result.duplicates_dropped
        return {
            "rows": total,
            "ours_s": t_ours,
            "ceiling_s": t_tuned,
            "defaults_s": t_defaults,
            "stage_s": dict(result.seconds),
            "loaded": result.loaded,
            "quarantined": result.quarantined,
            "reasons": dict(result.reasons),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "arrow_peak_mib": pa.default_memory_pool().max_memory() / 2**20,
            "ceiling_mib": os.path.getsize(tuned_path) / 2**20,
            "ours_mib": os.path.getsize(tmp / "ours" / "valid.parquet") / 2**20,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def render(r: dict, argv: list[str]) -> str:
    rows = r["rows"]
    ours, ceil, dflt = rows / r["ours_s"], rows / r["ceiling_s"], rows / r["defaults_s"]
    stage = r["stage_s"]
    validate_share = stage["validate"] / r["ceiling_s"]
    return f"""{START}
## Ingest: validate + transform + write ({rows:,} rows)

Command: `python benchmarks/{Path(argv[0]).name} {" ".join(argv[1:])}`.
Machine: {_cpu()}, {os.cpu_count()} cores; Python {platform.python_version()},
pyarrow {pa.__version__}. Synthetic readings of 1,000 devices in batches of whole devices,
1% of rows corrupted (nulls, out-of-range, unknown devices, future timestamps).

| path | seconds | rows/s | vs ceiling |
|---|---:|---:|---:|
| ceiling: tuned `pyarrow.parquet` write, no checks | {r["ceiling_s"]:.2f} | {ceil:,.0f} | 1.00x |
| **mlops_kit** validate + transform + write (valid and quarantine files) | {r["ours_s"]:.2f} | {ours:,.0f} | **{ours / ceil:.2f}x** |
| pyarrow write with default options, no checks | {r["defaults_s"]:.2f} | {dflt:,.0f} | {dflt / ceil:.2f}x |

Inside the mlops_kit path: validation (every rule and the key check) {stage["validate"]:.2f} s,
**{validate_share:.0%} of the ceiling's write time**; split into valid and quarantined rows
{stage["split"]:.2f} s; transform {stage["transform"]:.2f} s; write {stage["write"]:.2f} s. Rows loaded {r["loaded"]:,}, quarantined {r["quarantined"]:,}
({", ".join(f"{k} {v:,}" for k, v in sorted(r["reasons"].items()))}).
Peak memory of the whole run (three writers, generator included): {r["peak_rss_mib"]:,.0f} MiB RSS,
{r["arrow_peak_mib"]:,.0f} MiB in Arrow's pool. Output size: ceiling {r["ceiling_mib"]:.0f} MiB,
mlops_kit valid rows {r["ours_mib"]:.0f} MiB.

Targets: at least 0.75x the ceiling's rows/s; validation at most 15% of the write time;
peak memory under 2 GiB.
{END}"""


def write_doc(section: str) -> None:
    text = (
        DOC.read_text()
        if DOC.exists()
        else "# Benchmarks\n\nEach section is written by its script under `benchmarks/`.\n"
    )
    if START in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows to push through")
    parser.add_argument("--devices-per-batch", type=int, default=50, help="devices per batch")
    parser.add_argument("--bad-rate", type=float, default=0.01, help="share of corrupted rows")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs untouched")
    args = parser.parse_args()
    result = run(args.rows, args.devices_per_batch, args.bad_rate)
    section = render(result, sys.argv)
    print(section)
    if not args.no_doc:
        write_doc(section)
        print(f"updated {DOC}")


if __name__ == "__main__":
    main()
