"""The stream interface: a source of records in shards, read after per-shard positions."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class StreamRecord:
    """One record read from a stream.

    Attributes:
        shard_id: the shard (Kinesis) or partition (local file) it came from.
        sequence: its position in the shard; resuming *after* it skips it. Opaque to
            callers: a Kinesis sequence number, or the byte offset after the line locally.
        data: the payload as received.
        partition_key: the producer's partition key, when the backend has one.
    """

    shard_id: str
    sequence: str
    data: bytes
    partition_key: str | None = None


class StreamSource(ABC):
    """A stream read in order within each shard, resumable from per-shard positions.

    Use: :meth:`open` with the positions of the last checkpoint (empty for the start of
    the stream), then :meth:`read` repeatedly. A read returns the records available now,
    at most ``max_records``, and nothing that it does not return (no hidden buffer), so
    the sequence of the last record returned per shard is a safe checkpoint once those
    records are stored.
    """

    @property
    @abstractmethod
    def identity(self) -> str:
        """Names the stream, e.g. ``kinesis:iot-readings``; stored in checkpoints."""

    @abstractmethod
    def open(self, positions: Mapping[str, str], finished: Collection[str] = ()) -> None:
        """Position every shard after ``positions`` (the start of a shard without one).

        Args:
            positions: shard id -> sequence of the last record already stored.
            finished: closed shards that were read to their end; they are skipped.
        """

    @abstractmethod
    def read(self, max_records: int) -> list[StreamRecord]:
        """Up to ``max_records`` records available now; ``[]`` when caught up."""

    @property
    def finished_shards(self) -> frozenset[str]:
        """Closed shards whose every record has been returned by :meth:`read`."""
        return frozenset()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or file handles."""

    def __enter__(self) -> StreamSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def to_line(data: bytes) -> bytes:
    """A payload as one JSON-lines line (no newline inside, none at the end).

    A trailing newline is dropped. A JSON payload spread over several lines is written
    compactly; any other payload with line breaks keeps them escaped as ``\\n``.
    """
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if b"\n" not in data and b"\r" not in data:
        return data
    try:
        return json.dumps(json.loads(data), ensure_ascii=False).encode()
    except (UnicodeDecodeError, ValueError):
        return data.replace(b"\r", b"\\r").replace(b"\n", b"\\n")


def record_key(line: bytes) -> str:
    """The identity a consumer de-duplicates on.

    For a JSON object with ``device_id`` and ``ts`` it is ``device_id|ts|<digest>``
    where the digest covers the canonical JSON of the record (sorted keys, compact), so a
    redelivered record matches however it was re-serialised, while a *conflicting* copy
    (same device and time, other values) is kept for the quality rules to judge. Any
    other line (not JSON, not an object, no key fields) is keyed by the SHA-256 of its
    bytes, so it too is stored exactly once and never dropped.
    """
    try:
        obj = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        obj = None
    if isinstance(obj, dict) and obj.get("device_id") is not None and obj.get("ts") is not None:
        canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
        return f"{obj['device_id']}|{obj['ts']}|{digest}"
    return "sha256:" + hashlib.sha256(line).hexdigest()


def device_ts_key(line: bytes) -> str:
    """The strict reading key ``device_id|ts``: a later copy of the same key is dropped.

    Pass it as ``key_fn`` to :func:`~mlops_kit.ingest.streams.consume_stream` for a
    stream whose producers never send two different readings for one device and time.
    Lines without the key fields fall back to the SHA-256 of their bytes.
    """
    try:
        obj = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        obj = None
    if isinstance(obj, dict) and obj.get("device_id") is not None and obj.get("ts") is not None:
        return f"{obj['device_id']}|{obj['ts']}"
    return "sha256:" + hashlib.sha256(line).hexdigest()


def partition_key_of(data: bytes, field: str = "device_id") -> str:
    """``field`` of a JSON-object payload, else the SHA-256 of the payload (for producers)."""
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        obj = None
    if isinstance(obj, dict) and obj.get(field) not in (None, ""):
        return str(obj[field])[:256]
    return hashlib.sha256(data).hexdigest()


def encode_record(record: str | bytes | Mapping[str, object]) -> bytes:
    """A producer's record as bytes: str is UTF-8 encoded, a mapping is dumped as JSON."""
    if isinstance(record, bytes):
        return record
    if isinstance(record, str):
        return record.encode()
    return json.dumps(dict(record), ensure_ascii=False).encode()
