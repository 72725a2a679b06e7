"""The warehouse table: DuckDB embedded by default, PostgreSQL as the Aurora path.

A load is one transaction: the rows are upserted on the table's key and the run id is
recorded in ``mlops_kit_etl_runs`` in the same transaction, so loading a run twice (for
instance when a crashed run is completed) changes nothing, and a crash mid-load leaves
the table as it was.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

import pyarrow as pa

from mlops_kit._lazy import require
from mlops_kit.errors import WarehouseError

RUNS_TABLE = "mlops_kit_etl_runs"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

_SQL_TYPES = {
    pa.string(): "TEXT",
    pa.int64(): "BIGINT",
    pa.int8(): "SMALLINT",
    pa.float64(): "DOUBLE PRECISION",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise WarehouseError(
            f"invalid table or column name '{name}': use letters, digits and '_' (max 63)"
        )
    return name


def _ddl(table: str, schema: pa.Schema, key: list[str]) -> str:
    cols = []
    for f in schema:
        sql_type = _SQL_TYPES.get(f.type)
        if sql_type is None:
            raise WarehouseError(f"column '{f.name}' has type {f.type} with no SQL mapping")
        null = " NOT NULL" if f.name in key else ""
        cols.append(f"{_ident(f.name)} {sql_type}{null}")
    return (
        f"CREATE TABLE IF NOT EXISTS {_ident(table)} ({', '.join(cols)}, "
        f"PRIMARY KEY ({', '.join(key)}))"
    )


def _upsert_sql(table: str, source: str, schema: pa.Schema, key: list[str]) -> str:
    names = [_ident(n) for n in schema.names]
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n not in key)
    return (
        f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(names)} FROM {source} "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


class Warehouse(ABC):
    """A SQL warehouse that takes idempotent, transactional loads."""

    @abstractmethod
    def load(self, table: str, rows: pa.Table, key: list[str], run_id: str) -> bool:
        """Upsert ``rows`` into ``table`` unless ``run_id`` was loaded; True when loaded."""

    @abstractmethod
    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a read-only query."""

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT count(*) FROM {_ident(table)}")[0][0])

    def loaded_runs(self) -> list[str]:
        try:
            return [r[0] for r in self.query(f"SELECT run_id FROM {RUNS_TABLE} ORDER BY run_id")]
        except Exception:
            return []


class DuckDBWarehouse(Warehouse):
    """An embedded DuckDB file (the default)."""

    def __init__(self, path: str) -> None:
        import os

        import duckdb

        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._duckdb = duckdb

    def _connect(self) -> Any:
        return self._duckdb.connect(self.path)

    def load(self, table: str, rows: pa.Table, key: list[str], run_id: str) -> bool:
        con = self._connect()
        try:
            con.execute(_ddl(table, rows.schema, key))
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (run_id TEXT PRIMARY KEY, "
                "table_name TEXT, n_rows BIGINT, loaded_at TIMESTAMPTZ DEFAULT now())"
            )
            con.execute("BEGIN TRANSACTION")
            done = con.execute(f"SELECT 1 FROM {RUNS_TABLE} WHERE run_id = ?", [run_id]).fetchone()
            if done:
                con.execute("ROLLBACK")
                return False
            con.register("_mlk_batch", rows)
            con.execute(_upsert_sql(_ident(table), "_mlk_batch", rows.schema, key))
            con.execute(
                f"INSERT INTO {RUNS_TABLE} (run_id, table_name, n_rows) VALUES (?, ?, ?)",
                [run_id, table, rows.num_rows],
            )
            con.execute("COMMIT")
            return True
        except Exception as exc:
            try:
                con.execute("ROLLBACK")
            except Exception:
                pass
            raise WarehouseError(f"load into DuckDB table '{table}' failed: {exc}") from exc
        finally:
            con.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        con = self._connect()
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


class PostgresWarehouse(Warehouse):
    """PostgreSQL (Aurora PostgreSQL on AWS), through psycopg 3."""

    def __init__(self, url: str, password: str | None = None) -> None:
        self.psycopg = require("psycopg", "the PostgreSQL warehouse")
        self.dsn = re.sub(r"^postgres(ql)?(\+psycopg2?)?://", "postgresql://", url)
        self.password = password

    def _connect(self) -> Any:
        kwargs = {"password": self.password} if self.password else {}
        try:
            return self.psycopg.connect(self.dsn, connect_timeout=10, **kwargs)
        except self.psycopg.OperationalError as exc:
            raise WarehouseError(f"cannot connect to PostgreSQL at {self.dsn}: {exc}") from exc

    def load(self, table: str, rows: pa.Table, key: list[str], run_id: str) -> bool:
        with self._connect() as con:
            try:
                with con.transaction():
                    cur = con.cursor()
                    cur.execute(_ddl(table, rows.schema, key))
                    cur.execute(
                        f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (run_id TEXT PRIMARY KEY, "
                        "table_name TEXT, n_rows BIGINT, loaded_at TIMESTAMPTZ DEFAULT now())"
                    )
                    # serialise concurrent loads of the same run
                    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [run_id])
                    cur.execute(f"SELECT 1 FROM {RUNS_TABLE} WHERE run_id = %s", [run_id])
                    if cur.fetchone():
                        return False
                    staging = "_mlk_batch"
                    cur.execute(
                        f"CREATE TEMP TABLE {staging} (LIKE {_ident(table)}) ON COMMIT DROP"
                    )
                    names = ", ".join(_ident(n) for n in rows.schema.names)
                    with cur.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
                        for record in rows.to_pylist():
                            copy.write_row([record[n] for n in rows.schema.names])
                    cur.execute(_upsert_sql(_ident(table), staging, rows.schema, key))
                    cur.execute(
                        f"INSERT INTO {RUNS_TABLE} (run_id, table_name, n_rows) VALUES (%s, %s, %s)",
                        [run_id, table, rows.num_rows],
                    )
                    return True
            except WarehouseError:
                raise
            except Exception as exc:
                raise WarehouseError(f"load into PostgreSQL table '{table}' failed: {exc}") from exc

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with self._connect() as con:
            return list(con.execute(sql).fetchall())


def open_warehouse(url: str, password: str | None = None) -> Warehouse:
    """The warehouse behind ``url`` (``duckdb:///path`` or ``postgresql+psycopg://...``).

    Raises:
        WarehouseError: for another scheme.
    """
    if url.startswith("duckdb://"):
        # SQLAlchemy convention: duckdb:///relative/path, duckdb:////absolute/path
        return DuckDBWarehouse(url[len("duckdb:///") :])
    if url.startswith(("postgresql", "postgres://")):
        return PostgresWarehouse(url, password)
    raise WarehouseError(
        f"unsupported warehouse URL '{url}': use duckdb:///<path> or "
        "postgresql+psycopg://user@host:5432/db"
    )
