"""The embedded stream: a JSON-lines file (one shard) or an in-memory queue.

A record's sequence in the file is the byte offset just after its line, so resuming
after it is a seek. Producers append whole lines under an exclusive lock with one
``O_APPEND`` write, so a reader never sees a line interleaved with another; a reader only
takes lines that end with a newline and leaves a partial last line for the next read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_kit.errors import IngestionError
from mlops_kit.ingest.streams.base import StreamRecord, StreamSource, encode_record, to_line

if TYPE_CHECKING:
    from mlops_kit.config import Settings

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCAL_SHARD = "local-0"
"""The only shard of a local stream file."""


def _local_path(path: str | os.PathLike[str]) -> Path:
    text = os.fspath(path)
    if not text:
        raise IngestionError(
            "no local stream file: set stream.local_path (MLOPS_KIT_STREAM__LOCAL_PATH), "
            "or use stream.backend 'kinesis'"
        )
    if text.startswith("file://"):
        text = text[len("file://") :]
    if "://" in text:
        raise IngestionError(
            f"the local stream must be a local file, got '{text}': set stream.local_path to "
            "a path, or use stream.backend 'kinesis'"
        )
    return Path(text)


class LocalStreamProducer:
    """Appends records to a local stream file, each as one line.

    Args:
        path: the JSON-lines file (created with its folder on first write).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = _local_path(path)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStreamProducer:
        """The producer of ``settings.stream.local_path``."""
        return cls(settings.stream.local_path or "")

    def put_records(self, records: Iterable[str | bytes | Mapping[str, object]]) -> int:
        """Append ``records`` atomically (all of them, or none if the write fails).

        Args:
            records: JSON-lines strings or bytes, or mappings (dumped as JSON).

        Returns:
            The number of records appended.
        """
        lines = [to_line(encode_record(r)) for r in records]
        if not lines:
            return 0
        payload = b"".join(line + b"\n" for line in lines)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)  # closing the descriptor releases the lock
        return len(lines)


class LocalStreamSource(StreamSource):
    """Reads a local JSON-lines stream file (the default stream backend).

    Args:
        path: the file; it need not exist yet (the stream is then empty).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = _local_path(path)
        self._offset = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStreamSource:
        """The source of ``settings.stream.local_path``."""
        return cls(settings.stream.local_path or "")

    @property
    def identity(self) -> str:
        return f"local:{self.path.absolute()}"

    def open(self, positions: Mapping[str, str], finished: Collection[str] = ()) -> None:
        unknown = set(positions) - {LOCAL_SHARD}
        if unknown:
            raise IngestionError(
                f"checkpoint names shards {sorted(unknown)} that a local stream does not have: "
                "the checkpoint belongs to another backend; use another source name"
            )
        self._offset = int(positions.get(LOCAL_SHARD, 0))
        size = self.path.stat().st_size if self.path.exists() else 0
        if self._offset > size:
            raise IngestionError(
                f"the checkpoint is at byte {self._offset} of {self.path} but the file has "
                f"{size} bytes: it was truncated or replaced; delete the checkpoint to read "
                "it again from the start"
            )

    def read(self, max_records: int) -> list[StreamRecord]:
        if max_records <= 0 or not self.path.exists():
            return []
        out: list[StreamRecord] = []
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            while len(out) < max_records:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break  # end of file, or a line still being written
                self._offset += len(line)
                body = to_line(line)
                if not body.strip():
                    continue
                out.append(StreamRecord(LOCAL_SHARD, str(self._offset), body))
        return out


class MemoryStream:
    """An in-memory queue shared by :class:`MemoryStreamProducer` and
    :class:`MemoryStreamSource` (tests and notebooks; lost when the process exits)."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self._lines: list[bytes] = []
        self._lock = threading.Lock()

    def append(self, lines: list[bytes]) -> None:
        with self._lock:
            self._lines.extend(lines)

    def slice(self, start: int, stop: int) -> list[bytes]:
        with self._lock:
            return self._lines[start:stop]

    def __len__(self) -> int:
        with self._lock:
            return len(self._lines)


class MemoryStreamProducer:
    """Appends records to a :class:`MemoryStream`."""

    def __init__(self, stream: MemoryStream) -> None:
        self.stream = stream

    def put_records(self, records: Iterable[str | bytes | Mapping[str, object]]) -> int:
        """Append ``records``; returns how many."""
        lines = [to_line(encode_record(r)) for r in records]
        self.stream.append(lines)
        return len(lines)


class MemoryStreamSource(StreamSource):
    """Reads a :class:`MemoryStream`; the sequence is the index after the record."""

    def __init__(self, stream: MemoryStream) -> None:
        self.stream = stream
        self._index = 0

    @property
    def identity(self) -> str:
        return f"memory:{self.stream.name}"

    def open(self, positions: Mapping[str, str], finished: Collection[str] = ()) -> None:
        self._index = int(positions.get(LOCAL_SHARD, 0))

    def read(self, max_records: int) -> list[StreamRecord]:
        lines = self.stream.slice(self._index, self._index + max(0, max_records))
        out = []
        for line in lines:
            self._index += 1
            out.append(StreamRecord(LOCAL_SHARD, str(self._index), line))
        return out
