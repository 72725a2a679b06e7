"""Quickstart: land a file with bad records, run the ETL, look at what was rejected and why.

Run it with ``python examples/etl_quickstart.py [HOME]`` (default home: a temp folder).
Everything stays on this machine: the embedded default needs no cloud account.
"""

from __future__ import annotations

import sys
import tempfile

from iot_fleet import (
    GeneratorConfig,
    device_registry,
    generate_readings,
    to_raw_records,
)

from mlops_kit import load_settings, storage
from mlops_kit.etl import (
    features_table,
    read_table,
    run_etl,
    warehouse_table,
    write_device_registry,
)
from mlops_kit.etl.warehouse import open_warehouse
from mlops_kit.ingest.raw_zone import land


def main(home: str) -> dict:
    settings = load_settings(home=home)

    # 1. a fleet of 10 devices, two days of readings, 5% bad records of every kind
    readings = generate_readings(GeneratorConfig(n_devices=10, steps=2 * 288))
    write_device_registry(settings, device_registry(10))
    raw = to_raw_records(readings, bad_rate=0.05, seed=1)
    print(f"generated {len(raw.lines):,} JSON lines; injected: {dict(raw.injected)}")

    # 2. land them in the raw zone (content-addressed: landing twice is a no-op)
    obj = land(settings.storage.raw_uri, "gateway", raw.to_bytes(), "jsonl")
    print(f"landed {obj.uri}")

    # 3. extract -> transform -> quality check -> load
    result = run_etl(settings)
    print(
        f"rows in {result.rows_in:,} = loaded {result.loaded:,} + quarantined "
        f"{result.quarantined:,} + duplicates dropped {result.duplicates_dropped:,}"
    )
    print(f"quarantined by reason: {result.quarantined_by_reason}")
    print(f"quality report (open it in a browser): {result.report_html_uri}")

    # 4. what was rejected, and why: the quarantine keeps every record as received
    quarantine = storage.read_parquet(
        storage.list_files(settings.storage.quarantine_uri, ".parquet")
    )
    for row in quarantine.slice(0, 3).to_pylist():
        print(f"  {row['reason']:<18} {row['detail']}")

    # 5. processed data and the warehouse table
    features = read_table(settings, features_table(settings))
    warehouse = open_warehouse(settings.warehouse.url)
    print(
        f"processed readings: {read_table(settings, 'readings').num_rows:,}; hourly features: "
        f"{features.num_rows:,}; warehouse rows: {warehouse.count(warehouse_table(settings)):,}"
    )
    return {"result": result, "injected": dict(raw.injected)}


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="mlops-kit-"))
