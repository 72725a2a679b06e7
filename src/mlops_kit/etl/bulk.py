"""Bulk path: validate + transform + write a stream of typed batches in bounded memory.

Used for backfills of already-typed data (Parquet exports, a warehouse unload) and by
``benchmarks/ingest.py``. Each batch is normalised, checked with the same rules as the
ETL run, and appended to one Parquet file of valid rows and one of quarantined rows;
both files appear atomically when :meth:`BulkWriter.close` succeeds. Encoding and
writing the valid rows run on a background thread (Arrow releases the GIL), so the checks
of the next batch overlap the write of the previous one; the caller's thread, which has the
slack, also shapes the rows and writes the (few) quarantined ones, leaving the background
thread only the encoding. At most two batches wait in between, which bounds memory. Uniqueness is
checked within each batch: feed batches that hold whole keys (for instance all the
readings of a set of devices), or use :func:`~mlops_kit.etl.run.run_etl`, which also
checks against what was loaded before.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from mlops_kit.etl.layout import RecordLayout, layout_for
from mlops_kit.etl.quality import RuleSet, check, default_rules
from mlops_kit.etl.transform import normalise, to_readings


@dataclass
class BulkResult:
    rows_in: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates_dropped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(
        default_factory=lambda: {
            "validate": 0.0,
            "split": 0.0,
            "transform": 0.0,
            "write": 0.0,
            "write_quarantine": 0.0,
        }
    )


class BulkWriter:
    """Validate, transform and write batches to ``<out_dir>/valid.parquet`` (local paths).

    ``layout`` is the dataset's (default: the bundled default spec's); ``rules`` default
    to the rules its spec declares.
    """

    def __init__(
        self,
        out_dir: str,
        now: datetime,
        references: dict[str, pa.Array],
        rules: RuleSet | None = None,
        layout: RecordLayout | None = None,
    ) -> None:
        os.makedirs(out_dir, exist_ok=True)
        self.layout = layout or layout_for()
        self.out_dir = out_dir
        self.now = now
        self.references = references
        self.rules = (rules or default_rules(self.layout.spec)).keyed(self.layout.spec)
        self.result = BulkResult()
        token = uuid.uuid4().hex
        self._valid_tmp = os.path.join(out_dir, f".valid.parquet.tmp-{token}")
        self._bad_tmp = os.path.join(out_dir, f".quarantine.parquet.tmp-{token}")
        self._valid = pq.ParquetWriter(
            self._valid_tmp, self.layout.reading_schema, **self.layout.parquet_options
        )
        self._bad: pq.ParquetWriter | None = None
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="bulk-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue
            try:
                t0 = time.perf_counter()
                self._valid.write_table(item)
                self.result.seconds["write"] += time.perf_counter() - t0
            except BaseException as exc:
                self._error = exc

    def _raise_pending(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, batch: pa.Table) -> None:
        """Check ``batch`` now; its valid and quarantined rows are written in the background."""
        self._raise_pending()
        r = self.result
        t0 = time.perf_counter()
        typed = normalise(batch, self.layout)
        t1 = time.perf_counter()
        parts: dict[str, float] = {}
        q = check(typed, self.rules, now=self.now, references=self.references, timings=parts)
        t2 = time.perf_counter()
        r.seconds["transform"] += t1 - t0
        r.seconds["validate"] += parts["rules"] + parts["unique"]
        r.seconds["split"] += (t2 - t1) - parts["rules"] - parts["unique"]
        r.rows_in += batch.num_rows
        r.loaded += q.valid.num_rows
        r.quarantined += q.quarantined.num_rows
        r.duplicates_dropped += q.duplicates_dropped
        r.reasons.update(q.reasons)
        readings = to_readings(q.valid, self.layout)
        t3 = time.perf_counter()
        r.seconds["transform"] += t3 - t2
        self._queue.put(readings)
        if q.quarantined.num_rows:
            if self._bad is None:
                self._bad = pq.ParquetWriter(self._bad_tmp, q.quarantined.schema)
            self._bad.write_table(q.quarantined)
            r.seconds["write_quarantine"] += time.perf_counter() - t3

    def _finish_thread(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def close(self) -> BulkResult:
        """Wait for the writes, finish both files and move them into place."""
        self._finish_thread()
        self._raise_pending()
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
        self._finish_thread()
        for writer, path in ((self._valid, self._valid_tmp), (self._bad, self._bad_tmp)):
            if writer is not None:
                try:
                    writer.close()
                except Exception:
                    pass
            if os.path.exists(path):
                os.unlink(path)
