"""SQLite online writes: a batch in a few multi-row upsert statements.

Feast's SQLite store writes a batch with one ``execute`` per feature value from Python
(the statement looked up, the two timestamps converted, the value's text extracted, one
row bound and stepped, per call). The online store here is Feast's, with only
``online_write_batch`` replaced:

* the rows of a batch are built first (:func:`upsert_rows`): each entity key serialized
  once, each entity's event and created times converted once (by the adapter Feast
  registered with :mod:`sqlite3`, so the stored numbers are the ones Feast's would
  store), then one row per feature value, in the order of the serialized keys (the
  index inserts then land next to each other: about a quarter less work for SQLite on a
  fresh table);
* they are written (:func:`write_rows`) in one transaction (``BEGIN IMMEDIATE``: the
  write lock is taken up front, waiting up to ``busy_timeout_s`` for another writer)
  with one ``executemany`` of Feast's upsert over :data:`ROWS_PER_STATEMENT` rows at a
  time (a ``VALUES`` list; SQLite upserts its rows in order, as separate statements
  would), the rows left over in one last statement.

The table, its columns and the bytes in them are Feast's: ``entity_key`` (Feast's
serialized key), ``feature_name``, ``value`` (the serialized ``ValueProto``),
``value_text`` (as Feast extracts it), ``event_ts`` and ``created_ts`` (whole epoch
seconds). Like Feast's, the upsert is unconditional: a row older than the stored one
replaces it (materialization writes each entity's newest row of the window it is
given). Feature views with vectors and the OpenAI-compatible ``value_num`` column are
written by Feast's own code.

The file is switched to write-ahead logging (``journal_mode=WAL``, which stays with the
file): readers (serving) keep reading the last committed rows while a batch is written,
and a write does not wait for readers. ``synchronous=FULL`` keeps Feast's durability: a
committed batch survives a power cut (with ``NORMAL`` it could be undone after the run
recorded its interval, and no later run would write it again; ``FULL`` costs one
``fsync`` per batch). A crash mid-batch leaves the batch's transaction
uncommitted, so SQLite discards all of it on the next open: every row of the table is
either the previous value or the new one of a committed batch, never part of a row. The
run that crashed did not record its interval, so the next materialization writes the
window again (an upsert of the same rows is idempotent).

:func:`mlops_kit.features.config.repo_config_dict` selects this store for
``features.online_store: sqlite`` unless ``features.sqlite_writer`` is ``feast`` (both
engines; a Ray worker imports it by name).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import chain, islice
from operator import itemgetter
from typing import Any, Literal

from mlops_kit._lazy import require

require("feast", "the feature store")

from feast.infra.key_encoding_utils import serialize_entity_key  # noqa: E402
from feast.infra.online_stores.sqlite import (  # noqa: E402
    SqliteOnlineStore,
    SqliteOnlineStoreConfig,
    _quote_id,
    _table_id,
)
from feast.utils import to_naive_utc  # noqa: E402
from pydantic import Field  # noqa: E402

from mlops_kit.features.config import SQLITE_STORE  # noqa: E402

Row = tuple[bytes, str, bytes, str | None, Any, Any]
"""One upserted row: entity_key, feature_name, value, value_text, event_ts, created_ts."""

ROWS_PER_STATEMENT = 100
"""Rows per upsert statement (600 parameters; SQLite takes 32,766)."""

WAL_LIMIT = 64 << 20
"""Bytes the write-ahead log is cut back to after a checkpoint (it grows with a batch)."""

_TEXT = frozenset({"int64_val", "int32_val", "double_val", "float_val", "bool_val"})
"""``ValueProto`` kinds whose ``value_text`` is ``str()`` of the value (Feast's rule)."""


class BatchedSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """Feast's SQLite settings, plus how long a write waits for another writer."""

    type: Literal["mlops_kit.features.sqlite_store.BatchedSqliteOnlineStore"] = SQLITE_STORE  # type: ignore[assignment]
    busy_timeout_s: float = Field(60.0, ge=0)
    """How long a batch waits for the write lock another writer holds before failing."""


class BatchedSqliteOnlineStore(SqliteOnlineStore):
    """Feast's SQLite online store, writing each batch with one ``executemany``."""

    def online_write_batch(
        self,
        config: Any,
        table: Any,
        data: list[tuple[Any, dict[str, Any], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        """Upsert every feature value of ``data`` (see :func:`write_rows`)."""
        online = config.online_store
        if online.vector_enabled or getattr(online, "enable_openai_compatible_store", False):
            super().online_write_batch(config, table, data, progress)
            return
        conn = self._get_conn(config)
        name = _table_id(
            config.project, table, config.registry.enable_online_feature_view_versioning
        )
        write_rows(
            conn,
            name,
            upsert_rows(data, config.entity_key_serialization_version),
            busy_timeout_s=getattr(online, "busy_timeout_s", 60.0),
        )
        if progress is not None:
            progress(len(data))


def upsert_sql(table: str, rows: int = 1) -> str:
    """Feast's upsert of ``rows`` rows of ``table`` (no vector or ``value_num`` column).

    SQLite upserts the rows of a ``VALUES`` list one after the other, so a statement of
    several rows stores what as many one-row statements would, in that order.
    """
    values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)
    return (
        f"INSERT INTO {_quote_id(table)} "
        "(entity_key, feature_name, value, value_text, event_ts, created_ts) "
        f"VALUES {values} "
        "ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, "
        "value_text = excluded.value_text, event_ts = excluded.event_ts, "
        "created_ts = excluded.created_ts;"
    )


def value_text(value: Any) -> str | None:
    """The ``value_text`` column of a ``ValueProto``: its string, ``str()`` of a number
    or bool, else ``None`` (Feast's ``extract_text_and_num``)."""
    kind = value.WhichOneof("val")
    if kind == "string_val":
        return str(value.string_val)
    if kind in _TEXT:
        return str(getattr(value, kind))
    return None


def _stored(when: datetime) -> Any:
    """``when`` as Feast's SQLite store binds it: naive UTC, through the adapter
    registered for its type (Feast registers whole epoch seconds for ``datetime``)."""
    naive = to_naive_utc(when)
    adapt = sqlite3.adapters.get((type(naive), sqlite3.PrepareProtocol))
    return adapt(naive) if adapt is not None else naive


def upsert_rows(
    data: Iterable[tuple[Any, dict[str, Any], datetime, datetime | None]], key_version: int
) -> Iterator[Row]:
    """The rows Feast's SQLite store writes for ``data``, ordered by entity key.

    The order (a stable sort of the entities by serialized key) puts every index insert
    next to the one before; an entity given twice is still written in ``data``'s order,
    so its last row wins, as in Feast's store.

    Args:
        data: Feast's online rows: entity key proto, feature name -> ``ValueProto``,
            event time, created time (or ``None``).
        key_version: ``entity_key_serialization_version`` of the repository.
    """
    keyed = [
        (
            serialize_entity_key(key, entity_key_serialization_version=key_version),
            values,
            when,
            made,
        )
        for key, values, when, made in data
    ]
    keyed.sort(key=itemgetter(0))
    text = value_text
    for key_bin, values, when, created in keyed:
        event_ts = _stored(when)
        created_ts = None if created is None else _stored(created)
        for name, value in values.items():
            yield key_bin, name, value.SerializeToString(), text(value), event_ts, created_ts


def write_rows(
    conn: sqlite3.Connection,
    table: str,
    rows: Iterable[Row],
    *,
    busy_timeout_s: float = 60.0,
    per_statement: int = ROWS_PER_STATEMENT,
) -> None:
    """Upsert ``rows`` into ``table``, in order, in one transaction: one ``executemany``
    of a ``per_statement``-row upsert, then one upsert of the rows left over.

    The file is put in write-ahead-log mode first (``synchronous=FULL``; the log is cut
    back to :data:`WAL_LIMIT` bytes after a checkpoint). On any error the transaction is
    rolled back and nothing of ``rows`` is stored.

    Raises:
        sqlite3.Error: the write failed (e.g. the table is missing, or another writer held
            the lock past ``busy_timeout_s``).
    """
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    if conn.in_transaction:
        conn.commit()
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
    rest: list[Row] = []

    def statements() -> Iterator[tuple[Any, ...]]:
        it = iter(rows)
        while True:
            block = list(islice(it, per_statement))
            if len(block) < per_statement:
                rest.extend(block)
                return
            yield tuple(chain.from_iterable(block))

    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(upsert_sql(table, per_statement), statements())
        if rest:
            conn.execute(upsert_sql(table, len(rest)), tuple(chain.from_iterable(rest)))
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
