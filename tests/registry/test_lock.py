"""The promotion lock's three leases, driven directly (no MLflow): who may take them, when a
lease is taken over, what a refused caller is told, and that releasing touches only the
caller's own lease."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_kit.registry import RegistryLockError
from mlops_kit.registry import lock as lk

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _rows(uri: str) -> list[tuple[str, str, float]]:
    import sqlalchemy as sa

    with lk._engine(uri).connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(lk._table()))]  # type: ignore[misc]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'locks.db'}"


def test_owner_id_names_host_process_and_a_random_part() -> None:
    a, b = lk.owner_id(), lk.owner_id()
    assert re.fullmatch(rf"{re.escape(socket.gethostname())}:{os.getpid()}:[0-9a-f]{{8}}", a)
    assert a != b


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///x.db", True),
        ("postgresql+psycopg://u@h/db", True),
        ("postgres://h/db", True),
        ("mysql+pymysql://h/db", True),
        ("mssql://h/db", True),
        ("http://mlflow:5000", False),
        ("https://mlflow", False),
        ("file:///tmp/mlruns", False),
        ("/tmp/mlruns", False),
        ("databricks", False),
    ],
)
def test_is_database_uri(uri: str, expected: bool) -> None:
    assert lk.is_database_uri(uri) is expected


def test_split_s3() -> None:
    assert lk.split_s3("s3://bucket/a/b/m.lock") == ("bucket", "a/b/m.lock")
    assert lk.split_s3("s3://bucket") == ("bucket", "")


def test_backoff_doubles_from_10_ms_up_to_a_quarter_second_with_jitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(lk.time, "sleep", slept.append)
    for extreme in (0.0, 0.999999):
        monkeypatch.setattr(lk.random, "random", lambda e=extreme: e)
        slept.clear()
        for attempt in range(8):
            lk._sleep(attempt)
        base = [min(0.25, 0.01 * 2 ** min(a, 5)) for a in range(8)]
        assert slept == pytest.approx([b * (0.5 + extreme) for b in base])
    assert base == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.16, 0.25, 0.25, 0.25])


def test_lock_table_shape(db: str) -> None:
    table = lk._table()
    assert table.name == lk.LOCK_TABLE == "mlops_kit_registry_locks"
    cols = {c.name: c for c in table.columns}
    assert list(cols) == ["name", "owner", "expires_at"]
    assert cols["name"].primary_key and not cols["owner"].primary_key
    assert cols["name"].type.length == 256 and cols["owner"].type.length == 128
    assert not cols["owner"].nullable and not cols["expires_at"].nullable
    assert lk._engine(db) is lk._engine(db)  # one engine (pool) per URI
    assert lk._engine(db).dialect.name == "sqlite"


def test_sql_lease_row_refusal_and_release(db: str) -> None:
    t0 = time.time()
    with lk.sql_lease(db, "m", ttl_s=60, timeout_s=5) as me:
        [(name, owner, expires)] = _rows(db)
        assert (name, owner) == ("m", me)
        assert t0 + 59 < expires < time.time() + 61
        with lk.sql_lease(db, "other-model", ttl_s=60, timeout_s=5) as other:
            assert other != me  # one lease per model name
            assert sorted(r[0] for r in _rows(db)) == ["m", "other-model"]
        with (
            pytest.raises(RegistryLockError) as err,
            lk.sql_lease(db, "m", ttl_s=60, timeout_s=0.2),
        ):
            pytest.fail("a second holder got the lease")
        assert str(err.value) == (
            f"the promotion lock of 'm' is held by {me}; retry later (a lease expires after 60 s)"
        )
    assert _rows(db) == []


def test_sql_lease_takes_over_only_an_expired_lease(db: str) -> None:
    with lk.sql_lease(db, "m", ttl_s=60, timeout_s=5):
        pass  # creates the table
    import sqlalchemy as sa

    table = lk._table()
    with lk._engine(db).begin() as conn:
        conn.execute(table.insert().values(name="m", owner="dead", expires_at=time.time() - 1))
    with lk.sql_lease(db, "m", ttl_s=60, timeout_s=5) as me:
        assert [r[1] for r in _rows(db)] == [me]
        # the lease changes hands while held (it expired): releasing leaves the new row
        with lk._engine(db).begin() as conn:
            conn.execute(table.update().values(owner="next"))
    assert [r[1] for r in _rows(db)] == ["next"]
    with lk._engine(db).begin() as conn:
        conn.execute(sa.delete(table))
    with lk._engine(db).begin() as conn:
        conn.execute(table.insert().values(name="m", owner="alive", expires_at=time.time() + 60))
    with (
        pytest.raises(RegistryLockError, match="held by alive"),
        lk.sql_lease(db, "m", ttl_s=60, timeout_s=0.1),
    ):
        pass
    assert [r[1] for r in _rows(db)] == ["alive"]
    with lk._engine(db).begin() as conn:
        conn.execute(sa.delete(table))


def test_sql_lease_released_when_the_block_raises(db: str) -> None:
    with pytest.raises(ZeroDivisionError), lk.sql_lease(db, "m", ttl_s=60, timeout_s=5):
        1 / 0  # noqa: B018
    assert _rows(db) == []


def test_file_lock_content_refusal_and_release(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "registry" / "m.lock"
    t0 = time.time()
    with lk.file_lock(str(path), timeout_s=5) as me:
        body = json.loads(path.read_text())
        assert body["owner"] == me and t0 <= body["since"] <= time.time()
        assert oct(path.stat().st_mode & 0o777) == oct(0o644 & ~_umask())
        with pytest.raises(RegistryLockError) as err, lk.file_lock(str(path), timeout_s=0.2):
            pytest.fail("a second holder got the flock")
        assert str(err.value) == (
            f"the promotion lock {path} is held by another process; retry later"
        )
    with lk.file_lock(str(path), timeout_s=0.2) as again:
        assert json.loads(path.read_text()) == {
            "owner": again,
            "since": pytest.approx(time.time(), abs=5),
        }


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_file_lock_released_when_the_block_raises(tmp_path: Path) -> None:
    path = str(tmp_path / "m.lock")
    with pytest.raises(ZeroDivisionError), lk.file_lock(path, timeout_s=5):
        1 / 0  # noqa: B018
    with lk.file_lock(path, timeout_s=0.1):
        pass


@pytest.fixture
def s3_lock(s3_bucket: str) -> Iterator[tuple[str, object]]:
    yield f"s3://{s3_bucket}/_state/registry/m.lock", lk.s3_client()


def _body(client: object, uri: str) -> dict[str, object]:
    bucket, key = lk.split_s3(uri)
    return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())  # type: ignore[attr-defined]


@pytest.mark.aws
def test_s3_client_follows_the_storage_settings(s3_lock: tuple[str, object]) -> None:
    from mlops_kit import storage

    client = s3_lock[1]
    assert client.meta.region_name == "us-east-1"  # type: ignore[attr-defined]
    assert client.meta.endpoint_url == storage._default_s3.endpoint_url  # type: ignore[attr-defined]


@pytest.mark.aws
def test_s3_lease_object_refusal_takeover_and_release(s3_lock: tuple[str, object]) -> None:
    uri, client = s3_lock
    bucket, key = lk.split_s3(uri)
    t0 = time.time()
    with lk.s3_lease(uri, ttl_s=60, timeout_s=5) as me:
        body = _body(client, uri)
        assert body["owner"] == me and t0 + 59 < float(body["expires_at"]) < time.time() + 61  # type: ignore[arg-type]
        with pytest.raises(RegistryLockError) as err, lk.s3_lease(uri, ttl_s=60, timeout_s=0.2):
            pytest.fail("a second holder got the lease")
        assert str(err.value) == f"the promotion lock {uri} is held by {me}; retry later"
    with pytest.raises(client.exceptions.NoSuchKey):  # type: ignore[attr-defined]
        client.get_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
    stale = json.dumps({"owner": "dead", "expires_at": time.time() - 1}).encode()
    client.put_object(Bucket=bucket, Key=key, Body=stale)  # type: ignore[attr-defined]
    with lk.s3_lease(uri, ttl_s=60, timeout_s=5) as me:
        assert _body(client, uri)["owner"] == me
        # the lease changes hands while held: releasing leaves the new holder's object
        other = json.dumps({"owner": "next", "expires_at": time.time() + 60}).encode()
        client.put_object(Bucket=bucket, Key=key, Body=other)  # type: ignore[attr-defined]
    assert _body(client, uri)["owner"] == "next"


@pytest.mark.aws
def test_s3_lease_raises_other_s3_errors(s3_lock: tuple[str, object]) -> None:
    from botocore.exceptions import ClientError

    with (
        pytest.raises(ClientError, match="NoSuchBucket"),
        lk.s3_lease("s3://no-such-bucket-here/m.lock", ttl_s=60, timeout_s=1),
    ):
        pass


def test_registry_lock_picks_the_lease_by_where_the_registry_lives(db: str, tmp_path: Path) -> None:
    with lk.registry_lock(db, str(tmp_path), "m", ttl_s=30, timeout_s=5) as me:
        [(name, owner, expires)] = _rows(db)
        assert (name, owner) == ("m", me)
        assert expires < time.time() + 31
        assert not (tmp_path / "m.lock").exists()
    with lk.registry_lock("http://mlflow:5000", str(tmp_path), "m", timeout_s=5) as me:
        assert json.loads((tmp_path / "m.lock").read_text())["owner"] == me
        with (
            pytest.raises(RegistryLockError, match="held by another process"),
            lk.registry_lock("http://mlflow:5000", str(tmp_path), "m", timeout_s=0.1),
        ):
            pass
    assert _rows(db) == []


@pytest.mark.aws
def test_registry_lock_on_s3_state(s3_lock: tuple[str, object]) -> None:
    uri, client = s3_lock
    state = uri.rsplit("/", 1)[0]
    with lk.registry_lock("http://mlflow:5000", state, "m", ttl_s=30, timeout_s=5) as me:
        body = _body(client, uri)
        assert body["owner"] == me and float(body["expires_at"]) < time.time() + 31  # type: ignore[arg-type]


def test_registry_lock_default_ttl_and_timeout(db: str, tmp_path: Path) -> None:
    t0 = time.time()
    with lk.registry_lock(db, str(tmp_path), "m"):
        [(_, _, expires)] = _rows(db)
        assert expires == pytest.approx(t0 + 120, abs=0.5)


OWNER = re.compile(rf"{re.escape(socket.gethostname())}:{os.getpid()}:[0-9a-f]{{8}}")


def _wait_for_release(take: object, hold_s: float = 0.3) -> str:
    """Hold ``take()`` in a thread for ``hold_s``; meanwhile take it here, waiting up to 30 s."""
    import threading

    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with take(30):  # type: ignore[operator]
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(30)
    threading.Timer(hold_s, release.set).start()
    try:
        with take(30) as me:  # type: ignore[operator]
            assert release.is_set()  # not before the first holder let go
            return me  # type: ignore[no-any-return]
    finally:
        thread.join(30)


def test_a_waiting_caller_gets_the_lease_when_the_holder_releases(db: str, tmp_path: Path) -> None:
    me = _wait_for_release(lambda t: lk.sql_lease(db, "m", ttl_s=60, timeout_s=t))
    assert OWNER.fullmatch(me)
    me = _wait_for_release(lambda t: lk.file_lock(str(tmp_path / "m.lock"), timeout_s=t))
    assert OWNER.fullmatch(me)


@pytest.mark.aws
def test_a_waiting_caller_gets_the_s3_lease_when_the_holder_releases(
    s3_lock: tuple[str, object],
) -> None:
    uri = s3_lock[0]
    assert OWNER.fullmatch(_wait_for_release(lambda t: lk.s3_lease(uri, ttl_s=60, timeout_s=t)))


@pytest.mark.aws
def test_s3_lease_object_without_expiry_or_owner(s3_lock: tuple[str, object]) -> None:
    uri, client = s3_lock
    bucket, key = lk.split_s3(uri)
    client.put_object(Bucket=bucket, Key=key, Body=b'{"owner": "old"}')  # type: ignore[attr-defined]
    with lk.s3_lease(uri, ttl_s=60, timeout_s=5) as me:  # no expiry: taken over
        assert _body(client, uri)["owner"] == me
    future = json.dumps({"expires_at": time.time() + 60}).encode()
    client.put_object(Bucket=bucket, Key=key, Body=future)  # type: ignore[attr-defined]
    with pytest.raises(RegistryLockError) as err, lk.s3_lease(uri, ttl_s=60, timeout_s=0.1):
        pass
    assert str(err.value) == f"the promotion lock {uri} is held by unknown; retry later"
