"""The stream consumer: micro-batches into the raw zone, checkpointed after each write.

Per micro-batch::

    read -> drop keys already in raw -> write pending.json -> land -> checkpoint.json

Reads are at-least-once: the checkpoint moves only after the batch is in the raw zone,
so a crash re-reads the records after the last checkpoint. The raw zone still holds each
record once: ``pending.json`` names the object about to land, so the next run knows
whether that write happened, and the keys of the last ``dedup_window`` landed objects are
skipped when they are read again (a redelivery after a crash, or a producer retry).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from mlops_kit import storage
from mlops_kit._faults import maybe_fail
from mlops_kit.errors import IngestionError
from mlops_kit.ingest.raw_zone import LandedObject, check_source, land
from mlops_kit.ingest.streams.base import StreamRecord, StreamSource, record_key

if TYPE_CHECKING:
    from mlops_kit.config import Settings

KeyFn = Callable[[bytes], str]


@dataclass(frozen=True)
class StreamBatch:
    """One micro-batch that was processed (passed to the progress callback).

    Attributes:
        number: 1-based batch number within this run.
        records_read: records read from the stream.
        records_landed: records written to the raw zone.
        duplicates_skipped: records whose key had already landed.
        landed: the raw-zone object (``None`` when every record was a duplicate).
        positions: the per-shard checkpoint saved after the batch.
    """

    number: int
    records_read: int
    records_landed: int
    duplicates_skipped: int
    landed: LandedObject | None
    positions: dict[str, str]


@dataclass
class StreamIngestResult:
    """What one :func:`consume_stream` run did.

    Attributes:
        source_name: the raw-zone source name.
        batches: micro-batches processed (each one checkpointed).
        records_read: records read from the stream (re-reads after a crash included).
        records_landed: records written to the raw zone.
        duplicates_skipped: records not written because their key had already landed.
        landed: the raw-zone objects written.
        checkpoint: shard id -> sequence of the last record stored.
        finished_shards: closed shards read to their end.
        recovered: the object of an interrupted batch that was found in the raw zone and
            whose records were therefore skipped when read again.
    """

    source_name: str
    batches: int = 0
    records_read: int = 0
    records_landed: int = 0
    duplicates_skipped: int = 0
    landed: list[LandedObject] = field(default_factory=list)
    checkpoint: dict[str, str] = field(default_factory=dict)
    finished_shards: list[str] = field(default_factory=list)
    recovered: str | None = None


def checkpoint_uri(state_uri: str, source_name: str) -> str:
    """``<state_uri>/streams/<source_name>/checkpoint.json``."""
    return storage.join(state_uri, "streams", source_name, "checkpoint.json")


def pending_uri(state_uri: str, source_name: str) -> str:
    """``<state_uri>/streams/<source_name>/pending.json`` (the batch being written)."""
    return storage.join(state_uri, "streams", source_name, "pending.json")


def load_checkpoint(state_uri: str, source_name: str) -> dict[str, Any] | None:
    """The saved checkpoint of ``source_name`` (``None`` before the first batch)."""
    path = checkpoint_uri(state_uri, source_name)
    return storage.read_json(path) if storage.exists(path) else None


def _raw_paths(raw_uri: str, source: str, day: date, digest: str) -> tuple[str, str]:
    """Object and index-marker URIs that ``raw_zone.land`` uses for these bytes."""
    obj = storage.join(raw_uri, f"source={source}", f"date={day.isoformat()}", f"{digest}.jsonl")
    marker = storage.join(raw_uri, "_index", f"source={source}", f"{digest}.json")
    return obj, marker


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n")


class _KeyWindow:
    """Keys of the last ``size`` landed objects, rebuilt from the objects themselves."""

    def __init__(self, size: int, key_fn: KeyFn) -> None:
        self.size = size
        self.key_fn = key_fn
        self.objects: deque[tuple[str, list[str]]] = deque()
        self.counts: Counter[str] = Counter()

    def __contains__(self, key: str) -> bool:
        return self.counts[key] > 0

    def uris(self) -> list[str]:
        return [uri for uri, _ in self.objects]

    def add(self, uri: str, keys: list[str]) -> None:
        if uri in self.uris():
            return
        self.objects.append((uri, keys))
        self.counts.update(keys)
        while len(self.objects) > self.size:
            _, old = self.objects.popleft()
            self.counts.subtract(old)
            self.counts += Counter()  # drop zero counts

    def load(self, uri: str) -> bool:
        if not storage.exists(uri):
            return False
        self.add(uri, [self.key_fn(line) for line in _lines(storage.read_bytes(uri))])
        return True


def _save(path: str, source: StreamSource, state: dict[str, Any], window: _KeyWindow) -> None:
    state = {
        **state,
        "version": 1,
        "source": source.identity,
        "recent_objects": window.uris(),
        "updated_at": datetime.now(timezone.utc).isoformat(),
    }
    storage.write_json(path, state)


def _recover(
    raw_uri: str, source_name: str, pending: dict[str, Any], window: _KeyWindow
) -> str | None:
    """The object of an interrupted batch if it reached the raw zone (its keys are added)."""
    digest = pending["sha256"]
    obj, marker = _raw_paths(raw_uri, source_name, date.fromisoformat(pending["date"]), digest)
    if storage.exists(marker):
        obj = storage.read_json(marker)["uri"]
    elif storage.exists(obj):  # the object was written, its index marker not yet
        data = storage.read_bytes(obj)
        land(raw_uri, source_name, data, "jsonl", date.fromisoformat(pending["date"]))
    else:
        return None
    return obj if window.load(obj) else None


def consume_stream(
    source: StreamSource,
    raw_uri: str,
    state_uri: str,
    source_name: str,
    batch_size: int = 500,
    max_batches: int | None = None,
    *,
    dedup_window: int = 20,
    key_fn: KeyFn = record_key,
    idle_timeout_s: float = 0.0,
    poll_interval_s: float = 1.0,
    ingest_date: date | None = None,
    progress: Callable[[StreamBatch], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> StreamIngestResult:
    """Read ``source`` in micro-batches into the raw zone, resuming at the checkpoint.

    Each batch lands as one JSON-lines object (one record per line) with
    ``land(raw_uri, source_name, data, "jsonl")``; the per-shard checkpoint is saved
    after it, atomically, under ``<state_uri>/streams/<source_name>/checkpoint.json``.
    Records whose key (``key_fn``) is among those of the last ``dedup_window`` landed
    objects, or earlier in the same batch, are skipped and counted.

    Args:
        source: the stream (:class:`KinesisStreamSource`, :class:`LocalStreamSource`...).
        raw_uri: root of the raw zone.
        state_uri: root of the state (checkpoints).
        source_name: raw-zone source name and checkpoint folder, e.g. ``"kinesis-iot"``.
        batch_size: records per micro-batch at most.
        max_batches: stop after this many batches (``None``: until the stream is idle).
        dedup_window: landed objects whose keys are remembered (at least 1).
        key_fn: the identity of a record's line; :func:`record_key` by default.
        idle_timeout_s: keep polling an idle stream this long before returning
            (``0``: return as soon as the stream is caught up).
        poll_interval_s: wait between two reads of an idle stream.
        ingest_date: date partition of the landed objects (today in UTC by default).
        progress: called after each checkpointed batch with a :class:`StreamBatch`.
        sleep: how to wait while polling (tests pass a recorder).

    Returns:
        Counts of batches, records and duplicates, the landed objects and the checkpoint.

    Raises:
        IngestionError: the checkpoint belongs to another stream, or the stream failed.
    """
    check_source(source_name)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if dedup_window < 1:
        raise ValueError(f"dedup_window must be at least 1, got {dedup_window}")
    ckpt_path = checkpoint_uri(state_uri, source_name)
    pend_path = pending_uri(state_uri, source_name)
    state: dict[str, Any] = {"positions": {}, "finished_shards": [], "batches": 0, "records": 0}
    if storage.exists(ckpt_path):
        state.update(storage.read_json(ckpt_path))
        if state.get("source") != source.identity:
            raise IngestionError(
                f"the checkpoint at {ckpt_path} belongs to '{state.get('source')}', not "
                f"'{source.identity}': use another source_name for this stream, or delete the "
                "checkpoint to read it from the start"
            )
    window = _KeyWindow(dedup_window, key_fn)
    for uri in state.get("recent_objects", []):
        window.load(uri)
    result = StreamIngestResult(source_name=source_name)
    if storage.exists(pend_path):
        result.recovered = _recover(raw_uri, source_name, storage.read_json(pend_path), window)
        if result.recovered:
            _save(ckpt_path, source, state, window)
        storage.delete(pend_path)

    positions: dict[str, str] = dict(state["positions"])
    source.open(positions, state["finished_shards"])
    try:
        idle_since: float | None = None
        while max_batches is None or result.batches < max_batches:
            records: list[StreamRecord] = []
            while len(records) < batch_size:
                got = source.read(batch_size - len(records))
                if not got:
                    break
                records.extend(got)
            if not records:
                now = time.monotonic()
                idle_since = now if idle_since is None else idle_since
                if now - idle_since >= idle_timeout_s:
                    break
                sleep(poll_interval_s)
                continue
            idle_since = None
            maybe_fail("stream.before_write")

            lines: list[bytes] = []
            keys: list[str] = []
            in_batch: set[str] = set()
            for rec in records:
                key = key_fn(rec.data)
                if key in window or key in in_batch:
                    continue
                in_batch.add(key)
                lines.append(rec.data)
                keys.append(key)
            for rec in records:
                positions[rec.shard_id] = rec.sequence
            duplicates = len(records) - len(lines)

            landed = None
            if lines:
                data = b"\n".join(lines) + b"\n"
                day = ingest_date or datetime.now(timezone.utc).date()
                digest = hashlib.sha256(data).hexdigest()
                storage.write_json(
                    pend_path, {"sha256": digest, "date": day.isoformat(), "records": len(lines)}
                )
                landed = land(raw_uri, source_name, data, "jsonl", day)
                maybe_fail("stream.after_write")
                window.add(landed.uri, keys)
                result.landed.append(landed)

            state["positions"] = dict(positions)
            state["finished_shards"] = sorted(source.finished_shards)
            state["batches"] = int(state["batches"]) + 1
            state["records"] = int(state["records"]) + len(lines)
            _save(ckpt_path, source, state, window)
            if landed is not None:
                storage.delete(pend_path)
            maybe_fail("stream.after_checkpoint")

            result.batches += 1
            result.records_read += len(records)
            result.records_landed += len(lines)
            result.duplicates_skipped += duplicates
            if progress is not None:
                progress(
                    StreamBatch(
                        result.batches,
                        len(records),
                        len(lines),
                        duplicates,
                        landed,
                        dict(positions),
                    )
                )
    finally:
        source.close()
    result.checkpoint = dict(positions)
    result.finished_shards = sorted(source.finished_shards)
    return result


def stream_source_of(settings: Settings) -> StreamSource:
    """The stream source that ``settings.stream.backend`` selects.

    ``local`` reads ``settings.stream.local_path``; ``kinesis`` reads
    ``settings.stream.stream_name`` with a client from ``settings.aws``.
    """
    if settings.stream.backend == "kinesis":
        from mlops_kit.ingest.streams.kinesis import KinesisStreamSource

        return KinesisStreamSource.from_settings(settings)
    from mlops_kit.ingest.streams.local import LocalStreamSource

    return LocalStreamSource.from_settings(settings)


def stream_producer_of(settings: Settings) -> Any:
    """The producer matching :func:`stream_source_of` (``put_records(records)``)."""
    if settings.stream.backend == "kinesis":
        from mlops_kit.ingest.streams.kinesis import KinesisProducer

        return KinesisProducer.from_settings(settings)
    from mlops_kit.ingest.streams.local import LocalStreamProducer

    return LocalStreamProducer.from_settings(settings)
