"""The promotion lock: one alias move per model at a time, across processes and machines.

:func:`registry_lock` picks the lock by where the registry lives:

* a database tracking URI (``sqlite:``, ``postgresql``, ``mysql``, the RDS path): a lease
  row in the table ``mlops_kit_registry_locks`` of that same database. Taking it is an
  ``INSERT`` on the primary key (the database refuses a second holder); a lease older than
  its expiry is taken over with ``UPDATE ... WHERE expires_at < now`` (one winner);
* otherwise (a tracking server over HTTP) the state zone: for a local path an exclusive
  ``flock`` on ``<state>/registry/<model>.lock`` (released by the kernel if the holder
  dies); for ``s3://`` a lease object written with ``If-None-Match: *``.

The holder re-reads the aliases after taking the lock and moves them only when the
champion is still the one it evaluated against (compare-and-set); see
:meth:`mlops_kit.registry.ModelRegistry.promote`.

For the race tests only, :mod:`mlops_kit.registry._race` records when a caller is refused
the lock and can switch the lock off (its ``_MLOPS_KIT_RACE_*`` environment variables).
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from mlops_kit import storage
from mlops_kit.registry import _race
from mlops_kit.registry.errors import RegistryLockError

LOCK_TABLE = "mlops_kit_registry_locks"
SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mssql")


def owner_id() -> str:
    """``host:pid:random``, the holder written into a lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_database_uri(uri: str) -> bool:
    """True for a tracking URI that is a database (SQLAlchemy URL)."""
    scheme = urlsplit(uri).scheme.split("+", 1)[0]
    return scheme in SQL_SCHEMES


def _sleep(attempt: int) -> None:
    time.sleep(min(0.25, 0.01 * (2 ** min(attempt, 5))) * (0.5 + random.random()))


_ENGINES: dict[str, Any] = {}


def _engine(uri: str) -> Any:
    if uri not in _ENGINES:
        import sqlalchemy as sa

        args: dict[str, Any] = {}
        if uri.startswith("sqlite"):
            args["connect_args"] = {"timeout": 30}
        _ENGINES[uri] = sa.create_engine(uri, pool_pre_ping=True, **args)
    return _ENGINES[uri]


def _table() -> Any:
    import sqlalchemy as sa

    meta = sa.MetaData()
    return sa.Table(
        LOCK_TABLE,
        meta,
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def _sql_lease(uri: str, name: str, ttl_s: float, timeout_s: float) -> Iterator[str]:
    """Hold the lease row ``name`` in the database at ``uri`` for the block."""
    import sqlalchemy as sa
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    engine = _engine(uri)
    table = _table()
    for _ in range(3):  # two processes may create the table at once
        try:
            table.metadata.create_all(engine, checkfirst=True)
            break
        except (IntegrityError, OperationalError, ProgrammingError):
            _sleep(2)
    me = owner_id()
    deadline = time.monotonic() + timeout_s
    attempt = 0
    while True:
        now = time.time()
        try:
            with engine.begin() as conn:
                conn.execute(table.insert().values(name=name, owner=me, expires_at=now + ttl_s))
            break
        except IntegrityError:
            try:
                with engine.begin() as conn:
                    taken = conn.execute(
                        table.update()
                        .where(table.c.name == name, table.c.expires_at < now)
                        .values(owner=me, expires_at=now + ttl_s)
                    ).rowcount
                if taken == 1:
                    break
                _race.blocked(name)
            except OperationalError:
                pass
        except OperationalError:  # SQLite busy: try again
            pass
        if time.monotonic() > deadline:
            with engine.connect() as conn:
                row = conn.execute(sa.select(table).where(table.c.name == name)).first()
            holder = row.owner if row is not None else "unknown"
            raise RegistryLockError(
                f"the promotion lock of '{name}' is held by {holder}; retry later (a lease "
                f"expires after {ttl_s:.0f} s)"
            )
        attempt += 1
        _sleep(attempt)
    try:
        yield me
    finally:
        with engine.begin() as conn:
            conn.execute(table.delete().where(table.c.name == name, table.c.owner == me))


def _file_lock(path: str, timeout_s: float) -> Iterator[str]:
    """Hold an exclusive ``flock`` on ``path`` for the block."""
    import fcntl

    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    me = owner_id()
    deadline = time.monotonic() + timeout_s
    attempt = 0
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                _race.blocked(path)
                if time.monotonic() > deadline:
                    raise RegistryLockError(
                        f"the promotion lock {path} is held by another process; retry later"
                    ) from None
                attempt += 1
                _sleep(attempt)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"owner": me, "since": time.time()}).encode())
        try:
            yield me
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def split_s3(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://`` URI."""
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    return bucket, key


def s3_client() -> Any:
    """A boto3 S3 client honouring the region and endpoint of :mod:`mlops_kit.storage`."""
    import boto3

    opts = storage._default_s3
    return boto3.client("s3", region_name=opts.region, endpoint_url=opts.endpoint_url)


def _s3_lease(uri: str, ttl_s: float, timeout_s: float) -> Iterator[str]:
    """Hold a lease object at ``uri`` (created with ``If-None-Match: *``) for the block."""
    from botocore.exceptions import ClientError

    client = s3_client()
    bucket, key = split_s3(uri)
    me = owner_id()
    deadline = time.monotonic() + timeout_s
    attempt = 0
    while True:
        body = json.dumps({"owner": me, "expires_at": time.time() + ttl_s}).encode()
        try:
            client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
            break
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                raise
        holder: dict[str, Any] = {}
        try:
            got = client.get_object(Bucket=bucket, Key=key)
            holder = json.loads(got["Body"].read())
            if float(holder.get("expires_at", 0)) < time.time():
                client.delete_object(Bucket=bucket, Key=key, IfMatch=got["ETag"])
                continue
        except ClientError:
            continue
        _race.blocked(uri)
        if time.monotonic() > deadline:
            raise RegistryLockError(
                f"the promotion lock {uri} is held by {holder.get('owner', 'unknown')}; retry later"
            )
        attempt += 1
        _sleep(attempt)
    try:
        yield me
    finally:
        try:
            got = client.get_object(Bucket=bucket, Key=key)
            if json.loads(got["Body"].read()).get("owner") == me:
                client.delete_object(Bucket=bucket, Key=key)
        except ClientError:
            pass


def _registry_lock(
    tracking_uri: str,
    state_uri: str,
    model: str,
    *,
    ttl_s: float = 120.0,
    timeout_s: float = 60.0,
) -> Iterator[str]:
    """Hold the promotion lock of ``model`` for the block; yields the holder id.

    Args:
        tracking_uri: the MLflow tracking URI (a database URI gets a lease row there).
        state_uri: the registry's state folder (``<state_uri>/registry``) for other URIs.
        model: the registered model name.
        ttl_s: lease duration; an expired lease is taken over.
        timeout_s: how long to wait for the holder.

    Raises:
        RegistryLockError: still held after ``timeout_s``.
    """
    if _race.lock_disabled():  # test-only switch, see mlops_kit.registry._race
        yield "unlocked"
    elif is_database_uri(tracking_uri):
        with sql_lease(tracking_uri, model, ttl_s, timeout_s) as me:
            yield me
    elif storage.is_s3(state_uri):
        with s3_lease(storage.join(state_uri, f"{model}.lock"), ttl_s, timeout_s) as me:
            yield me
    else:
        _, path = storage.resolve(storage.join(state_uri, f"{model}.lock"))
        with file_lock(path, timeout_s) as me:
            yield me


# The context managers are wrapped by assignment rather than decorated, so that mutation
# testing (``make mutation``), which leaves decorated functions alone, reaches their bodies.
sql_lease = contextmanager(_sql_lease)
file_lock = contextmanager(_file_lock)
s3_lease = contextmanager(_s3_lease)
registry_lock = contextmanager(_registry_lock)

__all__ = [
    "LOCK_TABLE",
    "file_lock",
    "is_database_uri",
    "owner_id",
    "registry_lock",
    "s3_lease",
    "sql_lease",
]
