"""Direct readers of Feast's online tables: the serving hot path.

Feast's ``get_online_features`` resolves the registry, builds protos for every entity
and every requested feature and converts the response on each call. The readers here
keep what does not change between calls (table names, serialized entity keys,
prepared statements, one connection or client) and read exactly the rows and, on
DynamoDB, only the requested attributes (a ``ProjectionExpression``). They write
nothing: Feast's materialization owns the tables, so the values are Feast's.

They never import Feast (seconds of a serving replica's start-up): keys are written and
values read with :mod:`mlops_kit.features.wire`, Feast's formats in plain Python.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from mlops_kit.features import wire
from mlops_kit.features.catalog import Catalog
from mlops_kit.features.errors import OnlineStoreUnreadableError

_KEY_CACHE_MAX = 100_000


def _when(ts: Any) -> datetime | None:
    """An online row's event time as stored by Feast's SQLite store (epoch s or text)."""
    if ts is None:
        return None
    if isinstance(ts, (int, float)):
        return datetime.fromtimestamp(ts, tz=timezone.utc)
    when = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


class _Keys:
    """Serialized entity keys (and DynamoDB entity ids), cached per device id."""

    def __init__(self, join_key: str) -> None:
        self._join_key = [join_key]
        self._bytes: dict[str, bytes] = {}
        self._ids: dict[str, str] = {}

    def serialized(self, device_id: str) -> bytes:
        out = self._bytes.get(device_id)
        if out is None:
            out = wire.serialize_entity_key(self._join_key, [device_id], ["string_val"])
            if len(self._bytes) < _KEY_CACHE_MAX:
                self._bytes[device_id] = out
        return out

    def entity_id(self, device_id: str) -> str:
        out = self._ids.get(device_id)
        if out is None:
            out = wire.entity_id(self.serialized(device_id))
            if len(self._ids) < _KEY_CACHE_MAX:
                self._ids[device_id] = out
        return out


Rows = dict[str, tuple[datetime | None, dict[str, Any]]]
"""device id -> (event time of the row, feature name -> value) for one view."""


class SqliteReader:
    """Reads Feast's SQLite online tables (one connection per thread)."""

    def __init__(self, path: str, project: str, join_key: str) -> None:
        self._path = path
        self._project = project
        self._keys = _Keys(join_key)
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, check_same_thread=False)
            self._local.conn = conn
        return conn

    def table(self, view: str) -> str:
        return f"{self._project}_{view}"

    def _query(self, sql: str, params: Sequence[Any]) -> list[Any] | None:
        """The rows of ``sql``; None when the view's table does not exist (nothing has
        been materialized into it).

        Raises:
            OnlineStoreUnreadableError: the file is missing, not a database, or refused.
        """
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            if "no such table" in str(exc):
                return None
            raise OnlineStoreUnreadableError(
                f"the online store {self._path} cannot be read (SQLite: {exc}): materialize "
                "the features into it first (`mlops-kit features materialize`), or set "
                "features.online_path to the store they were materialized into",
                path=self._path,
            ) from None

    def read(self, view: str, device_ids: Sequence[str], features: Sequence[str]) -> Rows:
        """The rows of ``view`` for ``device_ids``, only ``features``."""
        keys = {self._keys.serialized(d): d for d in device_ids}
        sql = (
            f'SELECT entity_key, feature_name, value, event_ts FROM "{self.table(view)}" '
            f"WHERE entity_key IN ({','.join('?' * len(keys))}) "
            f"AND feature_name IN ({','.join('?' * len(features))})"
        )
        out: Rows = {}
        decode = wire.decode_value
        rows = self._query(sql, [*keys, *features])
        if rows is None:
            return out
        for key, name, blob, ts in rows:
            device = keys[key]
            entry = out.get(device)
            if entry is None:
                entry = out[device] = (_when(ts), {})
            entry[1][name] = decode(blob, name)
        return out

    def event_times(self, view: str, device_ids: Sequence[str]) -> dict[str, datetime | None]:
        """The event time of the online row of each of ``device_ids`` that has one."""
        out: dict[str, datetime | None] = {}
        for first in range(0, len(device_ids), 500):
            keys = {self._keys.serialized(d): d for d in device_ids[first : first + 500]}
            sql = (
                f'SELECT entity_key, max(event_ts) FROM "{self.table(view)}" '
                f"WHERE entity_key IN ({','.join('?' * len(keys))}) GROUP BY entity_key"
            )
            rows = self._query(sql, list(keys))
            if rows is None:
                return out
            out.update((keys[key], _when(ts)) for key, ts in rows)
        return out

    def newest(self, view: str) -> datetime | None:
        """The newest event time in ``view``'s table (None when empty or absent)."""
        try:
            row = self._conn().execute(f'SELECT max(event_ts) FROM "{self.table(view)}"').fetchone()
        except sqlite3.OperationalError:
            return None
        return _when(row[0]) if row else None

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class DynamoReader:
    """Reads Feast's DynamoDB online tables with BatchGetItem and a projection."""

    def __init__(
        self,
        table_template: str,
        project: str,
        region: str,
        endpoint_url: str | None,
        join_key: str,
    ) -> None:
        import boto3
        from botocore.config import Config

        self._template = table_template
        self._project = project
        self._client = boto3.client(
            "dynamodb",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(max_pool_connections=16, retries={"max_attempts": 3}),
        )
        self._keys = _Keys(join_key)
        self.project_features = True

    @property
    def client(self) -> Any:
        return self._client

    def table(self, view: str) -> str:
        return self._template.format(project=self._project, table_name=view)

    def read(self, view: str, device_ids: Sequence[str], features: Sequence[str]) -> Rows:
        """The items of ``view`` for ``device_ids``; only ``features`` are transferred."""
        ids = {self._keys.entity_id(d): d for d in device_ids}
        names = {"#e": "entity_id", "#t": "event_ts", "#v": "values"}
        request: dict[str, Any] = {}
        if self.project_features:
            proj = ["#e", "#t"]
            for i, f in enumerate(features):
                names[f"#f{i}"] = f
                proj.append(f"#v.#f{i}")
            request = {"ProjectionExpression": ", ".join(proj), "ExpressionAttributeNames": names}
        out: Rows = {}
        decode = wire.decode_value
        pending = list(ids)
        table = self.table(view)
        while pending:
            batch, pending = pending[:100], pending[100:]
            items = {table: {"Keys": [{"entity_id": {"S": i}} for i in batch], **request}}
            while items:
                resp = self._client.batch_get_item(RequestItems=items)
                for item in resp.get("Responses", {}).get(table, []):
                    device = ids[item["entity_id"]["S"]]
                    values = item.get("values", {}).get("M", {})
                    when = datetime.fromisoformat(item["event_ts"]["S"])
                    out[device] = (
                        when,
                        {k: decode(v["B"], k) for k, v in values.items() if k in features},
                    )
                items = resp.get("UnprocessedKeys") or {}
        return out

    def event_times(self, view: str, device_ids: Sequence[str]) -> dict[str, datetime | None]:
        """The event time of the item of each of ``device_ids`` that has one (strongly
        consistent reads of ``event_ts`` only)."""
        ids = {self._keys.entity_id(d): d for d in device_ids}
        table = self.table(view)
        request = {
            "ProjectionExpression": "#e, #t",
            "ExpressionAttributeNames": {"#e": "entity_id", "#t": "event_ts"},
            "ConsistentRead": True,
        }
        out: dict[str, datetime | None] = {}
        pending = list(ids)
        while pending:
            batch, pending = pending[:100], pending[100:]
            items = {table: {"Keys": [{"entity_id": {"S": i}} for i in batch], **request}}
            while items:
                try:
                    resp = self._client.batch_get_item(RequestItems=items)
                except self._client.exceptions.ResourceNotFoundException:
                    return out
                for item in resp.get("Responses", {}).get(table, []):
                    out[ids[item["entity_id"]["S"]]] = datetime.fromisoformat(item["event_ts"]["S"])
                items = resp.get("UnprocessedKeys") or {}
        return out

    def newest(self, view: str) -> datetime | None:
        """The newest event time in ``view``'s table (a scan of ``event_ts`` only)."""
        newest: datetime | None = None
        paginator = self._client.get_paginator("scan")
        try:
            pages = paginator.paginate(
                TableName=self.table(view),
                ProjectionExpression="#t",
                ExpressionAttributeNames={"#t": "event_ts"},
            )
            for page in pages:
                for item in page.get("Items", []):
                    when = datetime.fromisoformat(item["event_ts"]["S"])
                    if newest is None or when > newest:
                        newest = when
        except self._client.exceptions.ResourceNotFoundException:
            return None
        return newest

    def close(self) -> None:
        self._client.close()


def lookup(
    reader: SqliteReader | DynamoReader,
    device_ids: Sequence[str],
    refs: Sequence[str],
    cat: Catalog,
) -> tuple[dict[str, list[Any]], list[str]]:
    """Online values of ``refs`` (``view:feature``) for ``device_ids``.

    On-demand features are computed from their inputs with
    :meth:`~mlops_kit.features.catalog.Catalog.derive`, as Feast's on-demand view does.

    Returns:
        Columns (``device_id`` then one per feature, named by feature) and the device ids
        found in no view.
    """
    wanted: dict[str, list[str]] = {}
    derived = [r.split(":", 1)[1] for r in refs if r.startswith(cat.derived_view + ":")]
    for ref in refs:
        view, name = ref.split(":", 1)
        if view != cat.derived_view:
            wanted.setdefault(view, []).append(name)
    if derived:
        for name, (view, _) in cat.derived_inputs.items():
            names = wanted.setdefault(view, [])
            if name not in names:
                names.append(name)
    unique = list(dict.fromkeys(device_ids))
    found: set[str] = set()
    values: dict[str, dict[str, Any]] = {}
    for view, names in wanted.items():
        rows = reader.read(view, unique, names) if unique else {}
        found.update(rows)
        for name in names:
            values[name] = {d: row[1].get(name) for d, row in rows.items()}
    columns: dict[str, list[Any]] = {cat.join_key: list(device_ids)}
    for ref in refs:
        view, name = ref.split(":", 1)
        if view != cat.derived_view:
            col = values[name]
            columns[name] = [col.get(d) for d in device_ids]
    if derived:
        inputs = {name: [values[name].get(d) for d in device_ids] for name in cat.derived_inputs}
        computed = cat.derive(inputs)
        for name in derived:
            columns[name] = computed[name]
    missing = [d for d in unique if d not in found]
    return columns, missing
