"""The bulk path: same rules as the ETL, both files or none, accounting holds."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from iot_fleet import (
    GeneratorConfig,
    device_ids,
    inject_typed_bad,
    iter_reading_batches,
)

from mlops_kit.etl.bulk import BulkWriter

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def _batches(n_devices: int = 40, per_batch: int = 10):
    cfg = GeneratorConfig(n_devices=n_devices, steps=200, freq_s=60, seed=3)
    for i, batch in enumerate(iter_reading_batches(cfg, per_batch)):
        yield inject_typed_bad(batch, 0.02, seed=i)


def test_bulk_accounts_for_every_row_and_matches_injection(tmp_path) -> None:
    writer = BulkWriter(str(tmp_path), NOW, {"devices": pa.array(device_ids(40))})
    injected: dict[str, int] = {}
    for batch, counts in _batches():
        writer.write(batch)
        for k, v in counts.items():
            injected[k] = injected.get(k, 0) + v
    result = writer.close()
    assert result.rows_in == result.loaded + result.quarantined + result.duplicates_dropped
    assert dict(result.reasons) == {k: v for k, v in injected.items() if v}
    assert pq.read_metadata(tmp_path / "valid.parquet").num_rows == result.loaded
    assert pq.read_metadata(tmp_path / "quarantine.parquet").num_rows == result.quarantined
    assert sorted(os.listdir(tmp_path)) == ["quarantine.parquet", "valid.parquet"]


def test_bulk_failure_leaves_no_partial_file(tmp_path) -> None:
    writer = BulkWriter(str(tmp_path), NOW, {"devices": pa.array(device_ids(40))})
    batch, _ = next(_batches())
    writer.write(batch)
    with pytest.raises(ValueError, match="not_null"):
        writer.write(batch.drop_columns(["ts"]))  # a malformed batch stops the run
    writer.abort()
    assert os.listdir(tmp_path) == []
