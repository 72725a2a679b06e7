"""The append-only audit log of a registered model.

Every decision (promotion accepted or refused, approval, rollback, registration) is one
JSON object. Where it goes depends on the state zone (``storage.state_uri``):

* a local path: one JSON line appended to ``<state>/registry/<model>.audit.jsonl``,
  opened with ``O_APPEND`` and written with a single ``write`` under an exclusive
  ``flock``, so concurrent writers never interleave or overwrite;
* ``s3://``: one object per entry, ``<state>/registry/<model>.audit/<time>-<id>.json``,
  written with ``If-None-Match: *`` (S3 has no append; no entry ever replaces another).

Entries are never rewritten; :func:`read_audit` returns them in time order.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from typing import Any

from mlops_kit import storage

AUDIT_DIR = "registry"


def now_iso() -> str:
    """The current UTC time, ISO 8601 with microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _local_path(uri: str) -> str:
    _, path = storage.resolve(uri)
    return path


class AuditLog:
    """Append-only audit entries of one model under ``base_uri`` (``<state>/registry``).

    Args:
        base_uri: folder or ``s3://`` prefix holding the logs.
    """

    def __init__(self, base_uri: str) -> None:
        self.base_uri = base_uri

    def location(self, model: str) -> str:
        """Where ``model``'s entries are (a file, or an S3 prefix)."""
        if storage.is_s3(self.base_uri):
            return storage.join(self.base_uri, f"{model}.audit")
        return storage.join(self.base_uri, f"{model}.audit.jsonl")

    def append(self, model: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Append ``entry`` (``at``, ``id`` and ``model`` are added); returns what was written."""
        record = {"at": now_iso(), "id": uuid.uuid4().hex[:12], "model": model, **entry}
        line = json.dumps(record, sort_keys=True, default=str)
        if storage.is_s3(self.base_uri):
            self._append_s3(model, record, line)
        else:
            self._append_local(model, line)
        return record

    def _append_local(self, model: str, line: str) -> None:
        import fcntl

        path = _local_path(self.location(model))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = (line + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                written = os.write(fd, data)
                if written != len(data):  # pragma: no cover - a full disk
                    raise OSError(f"short write to the audit log {path}")
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _append_s3(self, model: str, record: dict[str, Any], line: str) -> None:
        from mlops_kit.registry.lock import s3_client, split_s3

        stamp = record["at"].replace(":", "").replace("-", "").replace("+0000", "Z")
        bucket, key = split_s3(storage.join(self.location(model), f"{stamp}-{record['id']}.json"))
        s3_client().put_object(Bucket=bucket, Key=key, Body=line.encode(), IfNoneMatch="*")

    def read(self, model: str) -> list[dict[str, Any]]:
        """Every entry of ``model``, oldest first (``[]`` when none)."""
        where = self.location(model)
        if storage.is_s3(self.base_uri):
            files = storage.list_files(where, suffix=".json")
            rows = [json.loads(storage.read_bytes(f)) for f in sorted(files)]
        else:
            path = _local_path(where)
            if not os.path.isfile(path):
                return []
            with open(path, encoding="utf-8") as fh:
                rows = [json.loads(line) for line in fh if line.strip()]
        return sorted(rows, key=lambda r: r.get("at", ""))


def read_audit(base_uri: str, model: str) -> list[dict[str, Any]]:
    """The audit entries of ``model`` under ``base_uri``, oldest first."""
    return AuditLog(base_uri).read(model)


__all__ = ["AUDIT_DIR", "AuditLog", "now_iso", "read_audit"]
