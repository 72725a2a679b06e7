"""Bulk path: validate + transform + write a stream of typed batches in bounded memory.

Used for backfills of already-typed data (Parquet exports, a warehouse unload) and by
``benchmarks/ingest.py``. Each batch is normalised, checked with the same rules as the
ETL run, and appended to one Parquet file of valid rows and one of quarantined rows;
both files appear atomically when :meth:`BulkWriter.close` succeeds. Uniqueness is
checked within each batch: feed batches that hold whole keys (for instance all the
readings of a set of devices), or use :func:`~mlops_kit.etl.run.run_etl`, which also
checks against what was loaded before.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from mlops_kit.data.schema import READING_SCHEMA
from mlops_kit.etl.quality import RuleSet, check, default_rules
from mlops_kit.etl.transform import PARQUET_OPTIONS, normalise, to_readings


@dataclass
class BulkResult:
    rows_in: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates_dropped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(
        default_factory=lambda: {"validate": 0.0, "split": 0.0, "transform": 0.0, "write": 0.0}
    )


class BulkWriter:
    """Validate, transform and write batches to ``<out_dir>/valid.parquet`` (local paths)."""

    def __init__(
        self,
        out_dir: str,
        now: datetime,
        references: dict[str, pa.Array],
        rules: RuleSet | None = None,
    ) -> None:
        os.makedirs(out_dir, exist_ok=True)
        self.out_dir = out_dir
        self.now = now
        self.references = references
        self.rules = rules or default_rules()
        self.result = BulkResult()
        token = uuid.uuid4().hex
        self._valid_tmp = os.path.join(out_dir, f".valid.parquet.tmp-{token}")
        self._bad_tmp = os.path.join(out_dir, f".quarantine.parquet.tmp-{token}")
        self._valid = pq.ParquetWriter(self._valid_tmp, READING_SCHEMA, **PARQUET_OPTIONS)
        self._bad: pq.ParquetWriter | None = None

    def write(self, batch: pa.Table) -> None:
        r = self.result
        t0 = time.perf_counter()
        typed = normalise(batch)
        t1 = time.perf_counter()
        parts: dict[str, float] = {}
        q = check(typed, self.rules, now=self.now, references=self.references, timings=parts)
        t2 = time.perf_counter()
        readings = to_readings(q.valid)
        t3 = time.perf_counter()
        self._valid.write_table(readings)
        if q.quarantined.num_rows:
            if self._bad is None:
                self._bad = pq.ParquetWriter(self._bad_tmp, q.quarantined.schema)
            self._bad.write_table(q.quarantined)
        t4 = time.perf_counter()
        r.seconds["transform"] += (t1 - t0) + (t3 - t2)
        r.seconds["validate"] += parts["rules"] + parts["unique"]
        r.seconds["split"] += (t2 - t1) - parts["rules"] - parts["unique"]
        r.seconds["write"] += t4 - t3
        r.rows_in += batch.num_rows
        r.loaded += readings.num_rows
        r.quarantined += q.quarantined.num_rows
        r.duplicates_dropped += q.duplicates_dropped
        r.reasons.update(q.reasons)

    def close(self) -> BulkResult:
        """Finish both files and move them into place."""
        t0 = time.perf_counter()
        self._valid.close()
        os.replace(self._valid_tmp, os.path.join(self.out_dir, "valid.parquet"))
        if self._bad is not None:
            self._bad.close()
            os.replace(self._bad_tmp, os.path.join(self.out_dir, "quarantine.parquet"))
        self.result.seconds["write"] += time.perf_counter() - t0
        return self.result

    def abort(self) -> None:
        """Drop the partial files (nothing appears in ``out_dir``)."""
        for writer, path in ((self._valid, self._valid_tmp), (self._bad, self._bad_tmp)):
            if writer is not None:
                try:
                    writer.close()
                except Exception:
                    pass
            if os.path.exists(path):
                os.unlink(path)
