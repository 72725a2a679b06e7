"""Stream ingestion: one contract suite over the local file, in-memory and Kinesis (moto) streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from iot_fleet import GeneratorConfig, generate_readings, to_raw_records

from mlops_kit import storage
from mlops_kit._faults import EXIT_CODE, FAULT_ENV
from mlops_kit.errors import IngestionError
from mlops_kit.ingest.raw_zone import land, list_raw
from mlops_kit.ingest.streams import (
    LOCAL_SHARD,
    KinesisProducer,
    KinesisStreamSource,
    LocalStreamProducer,
    LocalStreamSource,
    MemoryStream,
    MemoryStreamProducer,
    MemoryStreamSource,
    StreamSource,
    checkpoint_uri,
    consume_stream,
    device_ts_key,
    load_checkpoint,
    pending_uri,
    record_key,
)
from mlops_kit.ingest.streams import consumer as consumer_module

NAME = "iot"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lines() -> list[str]:
    table = generate_readings(GeneratorConfig(n_devices=5, steps=500))
    batch = to_raw_records(table, bad_rate=0.05)
    assert sum(batch.injected.values()) > 50 and batch.injected["malformed_json"] > 0
    assert len(set(batch.lines)) == len(batch.lines)
    return batch.lines


@dataclass
class Backend:
    """A stream under test: how to make a source, put records, and rebuild it in a child."""

    name: str
    source: Callable[[], StreamSource]
    put: Callable[[list[str]], object]
    child: dict[str, Any] | None = None


def _kinesis(endpoint: str, shards: int = 3) -> tuple[Any, str]:
    import boto3

    client = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")
    name = f"iot-{uuid.uuid4().hex[:10]}"
    client.create_stream(StreamName=name, ShardCount=shards)
    return client, name


def _backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if kind == "local":
        path = tmp_path / "stream" / "readings.jsonl"
        producer = LocalStreamProducer(path)
        return Backend(
            kind,
            lambda: LocalStreamSource(path),
            producer.put_records,
            {"backend": "local", "path": str(path)},
        )
    if kind == "memory":
        stream = MemoryStream()
        mem_producer = MemoryStreamProducer(stream)
        return Backend(
            kind,
            lambda: MemoryStreamSource(stream),
            mem_producer.put_records,
        )
    endpoint = request.getfixturevalue("moto_endpoint")
    client, name = _kinesis(endpoint)
    kin_producer = KinesisProducer(name, client)
    return Backend(
        kind,
        lambda: KinesisStreamSource(name, client),
        kin_producer.put_records,
        {"backend": "kinesis", "stream": name, "endpoint": endpoint},
    )


@pytest.fixture(params=["local", "memory", "kinesis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _backend(request.param, request, tmp_path)


@pytest.fixture(params=["local", "kinesis"])
def durable_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Backends that outlive a process (for the crash tests)."""
    return _backend(request.param, request, tmp_path)


@pytest.fixture
def lake(tmp_path: Path) -> tuple[str, str]:
    return str(tmp_path / "raw"), str(tmp_path / "state")


def raw_lines(raw: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for uri in list_raw(raw, NAME):
        out.update(storage.read_bytes(uri).decode().split("\n")[:-1])
    return out


def assert_exactly_once(raw: str, lines: list[str]) -> None:
    landed = raw_lines(raw)
    assert landed == Counter(lines)
    assert max(landed.values()) == 1


# --- the contract, over every backend ------------------------------------------------------


def test_every_put_record_lands_once_with_a_per_shard_checkpoint(backend, lake, lines) -> None:
    raw, state = lake
    backend.put(lines)
    batches: list[Any] = []
    result = consume_stream(
        backend.source(), raw, state, NAME, batch_size=400, progress=batches.append
    )
    assert result.records_read == result.records_landed == len(lines)
    assert result.duplicates_skipped == 0 and result.batches == len(batches) == 7
    assert all(b.records_read <= 400 for b in batches)
    assert len(result.landed) == len(list_raw(raw, NAME)) == result.batches
    assert_exactly_once(raw, lines)

    saved = load_checkpoint(state, NAME)
    assert saved is not None and saved["positions"] == result.checkpoint
    assert checkpoint_uri(state, NAME).endswith("streams/iot/checkpoint.json")
    assert not storage.exists(pending_uri(state, NAME))
    if backend.name == "kinesis":
        assert len(result.checkpoint) == 3  # every shard was read
    else:
        assert set(result.checkpoint) == {LOCAL_SHARD}

    again = consume_stream(backend.source(), raw, state, NAME, batch_size=400)
    assert again.batches == again.records_read == 0
    backend.put(["not json at all"])
    tail = consume_stream(backend.source(), raw, state, NAME, batch_size=400)
    assert tail.records_landed == 1
    assert_exactly_once(raw, [*lines, "not json at all"])


def test_checkpoint_advances_only_after_the_batch_is_written(
    backend, lake, lines, monkeypatch
) -> None:
    raw, state = lake
    backend.put(lines[:1000])
    seen: list[int] = []
    real_land = consumer_module.land

    def checking_land(*args: Any, **kwargs: Any) -> Any:
        saved = load_checkpoint(state, NAME)
        seen.append(saved["batches"] if saved else 0)
        if len(seen) == 3:
            raise OSError("disk full")
        return real_land(*args, **kwargs)

    monkeypatch.setattr(consumer_module, "land", checking_land)
    with pytest.raises(OSError, match="disk full"):
        consume_stream(backend.source(), raw, state, NAME, batch_size=200)
    assert seen == [0, 1, 2]  # each write happened before its own checkpoint
    saved = load_checkpoint(state, NAME)
    assert saved is not None and saved["batches"] == 2 and saved["records"] == 400
    assert sum(raw_lines(raw).values()) == 400

    monkeypatch.setattr(consumer_module, "land", real_land)
    rest = consume_stream(backend.source(), raw, state, NAME, batch_size=200)
    assert rest.records_landed == 600 and rest.duplicates_skipped == 0
    assert_exactly_once(raw, lines[:1000])


def test_producer_retries_do_not_duplicate_records_in_raw(backend, lake, lines) -> None:
    raw, state = lake
    backend.put(lines[:1500])
    first = consume_stream(backend.source(), raw, state, NAME, batch_size=250)
    assert first.records_landed == 1500
    # a producer that timed out re-sends records already delivered, plus new ones,
    # and one that re-serialised a record with its keys in another order
    resent = lines[1000:1200]
    reordered = json.dumps(dict(reversed(list(json.loads(lines[5]).items()))))
    backend.put([*resent, *lines[1500:], *resent[:50], reordered])
    second = consume_stream(backend.source(), raw, state, NAME, batch_size=250)
    assert second.duplicates_skipped == len(resent) + 50 + 1
    assert second.records_landed == len(lines) - 1500
    assert_exactly_once(raw, lines)


# --- crash recovery: a consumer killed in a subprocess, then run again ---------------------

_CHILD = """
import json, os, sys
from mlops_kit.ingest.streams import KinesisStreamSource, LocalStreamSource, consume_stream

spec = json.loads(sys.argv[1])
if spec["backend"] == "kinesis":
    import boto3
    client = boto3.client("kinesis", endpoint_url=spec["endpoint"], region_name="us-east-1")
    make = lambda: KinesisStreamSource(spec["stream"], client)
else:
    make = lambda: LocalStreamSource(spec["path"])
consume_stream(make(), spec["raw"], spec["state"], "iot", batch_size=300, max_batches=1)
os.environ[spec["env"]] = spec["fault"]
consume_stream(make(), spec["raw"], spec["state"], "iot", batch_size=300)
"""


def _run_child(backend: Backend, raw: str, state: str, fault: str) -> int:
    assert backend.child is not None
    spec = {**backend.child, "raw": raw, "state": state, "fault": fault, "env": FAULT_ENV}
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode in (0, EXIT_CODE), proc.stderr
    return proc.returncode


def test_kill_after_the_write_before_the_checkpoint(durable_backend, lake, lines) -> None:
    raw, state = lake
    durable_backend.put(lines)
    assert _run_child(durable_backend, raw, state, "stream.after_write") == EXIT_CODE
    # batch 2 is in raw, the checkpoint still says batch 1
    assert load_checkpoint(state, NAME)["batches"] == 1  # type: ignore[index]
    assert len(list_raw(raw, NAME)) == 2 and sum(raw_lines(raw).values()) == 600
    assert storage.exists(pending_uri(state, NAME))

    result = consume_stream(durable_backend.source(), raw, state, NAME, batch_size=300)
    assert result.recovered is not None
    assert result.duplicates_skipped == 300  # batch 2 was read again and skipped
    assert result.records_landed == len(lines) - 600
    assert_exactly_once(raw, lines)
    assert not storage.exists(pending_uri(state, NAME))


def test_kill_before_the_write(durable_backend, lake, lines) -> None:
    raw, state = lake
    durable_backend.put(lines)
    assert _run_child(durable_backend, raw, state, "stream.before_write") == EXIT_CODE
    assert sum(raw_lines(raw).values()) == 300
    result = consume_stream(durable_backend.source(), raw, state, NAME, batch_size=300)
    assert result.recovered is None and result.duplicates_skipped == 0
    assert result.records_landed == len(lines) - 300
    assert_exactly_once(raw, lines)


def test_kill_after_the_checkpoint_loses_and_repeats_nothing(lake, lines, tmp_path) -> None:
    raw, state = lake
    backend = _backend("local", None, tmp_path)  # type: ignore[arg-type]
    backend.put(lines)
    assert _run_child(backend, raw, state, "stream.after_checkpoint") == EXIT_CODE
    result = consume_stream(backend.source(), raw, state, NAME, batch_size=300)
    assert result.duplicates_skipped == 0 and result.records_landed == len(lines) - 600
    assert_exactly_once(raw, lines)


def test_interrupted_object_without_its_index_marker_is_recovered(lake, lines, tmp_path) -> None:
    raw, state = lake
    backend = _backend("local", None, tmp_path)  # type: ignore[arg-type]
    backend.put(lines[:600])
    assert _run_child(backend, raw, state, "stream.after_write") == EXIT_CODE
    # as if the process died inside land(): the object is there, its marker is not
    for marker in storage.list_files(storage.join(raw, "_index")):
        if storage.read_json(marker)["uri"] not in load_checkpoint(state, NAME)["recent_objects"]:  # type: ignore[index]
            storage.delete(marker)
    result = consume_stream(backend.source(), raw, state, NAME, batch_size=300)
    assert result.recovered is not None and result.duplicates_skipped == 300
    assert_exactly_once(raw, lines[:600])


# --- backend details -------------------------------------------------------------------------


def test_raw_layout_assumed_by_recovery_matches_the_raw_zone(tmp_path) -> None:
    import hashlib
    from datetime import date

    data = b'{"a":1}\n'
    obj, marker = consumer_module._raw_paths(
        str(tmp_path), NAME, date(2026, 1, 2), hashlib.sha256(data).hexdigest()
    )
    landed = land(str(tmp_path), NAME, data, "jsonl", date(2026, 1, 2))
    assert landed.uri == obj and storage.exists(marker)


def test_raw_and_state_on_s3(s3_bucket, lines, tmp_path) -> None:
    raw, state = f"s3://{s3_bucket}/raw", f"s3://{s3_bucket}/state"
    backend = _backend("local", None, tmp_path)  # type: ignore[arg-type]
    backend.put(lines[:700])
    result = consume_stream(backend.source(), raw, state, NAME, batch_size=300, max_batches=2)
    assert result.batches == 2 and load_checkpoint(state, NAME)["records"] == 600  # type: ignore[index]
    consume_stream(backend.source(), raw, state, NAME, batch_size=300)
    assert_exactly_once(raw, lines[:700])


def test_kinesis_producer_batches_and_resends_failed_records(moto_endpoint, lake, lines) -> None:
    raw, state = lake
    client, name = _kinesis(moto_endpoint, shards=2)

    class FlakyClient:
        """Stores every record but reports the last 40 of the first call as throttled."""

        def __init__(self) -> None:
            self.sizes: list[int] = []

        def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> Any:
            self.sizes.append(len(Records))
            response = client.put_records(StreamName=StreamName, Records=Records)
            if len(self.sizes) == 1:
                for outcome in response["Records"][-40:]:
                    outcome.clear()
                    outcome["ErrorCode"] = "ProvisionedThroughputExceededException"
                    outcome["ErrorMessage"] = "Rate exceeded"
                response["FailedRecordCount"] = 40
            return response

    flaky = FlakyClient()
    slept: list[float] = []
    put = KinesisProducer(name, flaky, sleep=slept.append).put_records(lines[:1200])
    assert flaky.sizes == [500, 40, 500, 200] and max(flaky.sizes) <= 500
    assert (put.records, put.requests, put.retried) == (1200, 4, 40) and len(slept) == 1
    assert sum(put.shards.values()) == 1200 and len(put.shards) == 2

    result = consume_stream(KinesisStreamSource(name, client), raw, state, NAME, batch_size=500)
    assert result.records_read == 1240 and result.duplicates_skipped == 40
    assert_exactly_once(raw, lines[:1200])


def test_kinesis_producer_gives_up_naming_the_count(moto_endpoint) -> None:
    class AlwaysThrottled:
        def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> Any:
            return {
                "FailedRecordCount": len(Records),
                "Records": [{"ErrorCode": "InternalFailure"} for _ in Records],
            }

    producer = KinesisProducer("s", AlwaysThrottled(), max_retries=2, sleep=lambda s: None)
    with pytest.raises(IngestionError, match=r"3 records .* after 2 retries \(InternalFailure\)"):
        producer.put_records(["a", "b", "c"])


class _StubKinesis:
    """A Kinesis client with a closed parent shard, throttling and an expiring iterator."""

    def __init__(self) -> None:
        self.shards = {
            "shardId-0": ([f'{{"n": {i}}}' for i in range(5)], True),  # closed
            "shardId-1": ([f'{{"n": {i}}}' for i in range(5, 12)], False),
            "shardId-2": ([f'{{"n": {i}}}' for i in range(12, 15)], False),
        }
        self.calls: Counter[str] = Counter()
        self.expire_next = True

    def list_shards(self, **kwargs: Any) -> Any:
        self.calls["list_shards"] += 1
        ids = sorted(self.shards)
        if "NextToken" not in kwargs:
            return {"Shards": [{"ShardId": ids[0]}], "NextToken": "page-2"}
        return {"Shards": [{"ShardId": s} for s in ids[1:]]}

    def get_shard_iterator(self, StreamName, ShardId, ShardIteratorType, **kw) -> Any:
        start = (
            int(kw["StartingSequenceNumber"]) if ShardIteratorType == "AFTER_SEQUENCE_NUMBER" else 0
        )
        return {"ShardIterator": f"{ShardId}:{start}"}

    def get_records(self, ShardIterator: str, Limit: int) -> Any:
        from botocore.exceptions import ClientError

        self.calls["get_records"] += 1
        if self.calls["get_records"] == 2:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException"}}, "GetRecords"
            )
        if self.expire_next and self.calls["get_records"] == 4:
            self.expire_next = False
            raise ClientError({"Error": {"Code": "ExpiredIteratorException"}}, "GetRecords")
        shard, start = ShardIterator.split(":")
        data, closed = self.shards[shard]
        chunk = data[int(start) : int(start) + min(Limit, 2)]
        end = int(start) + len(chunk)
        records = [
            {"SequenceNumber": str(i + 1), "Data": d.encode(), "PartitionKey": "k"}
            for i, d in zip(range(int(start), end), chunk, strict=True)
        ]
        nxt = None if closed and end >= len(data) else f"{shard}:{end}"
        return {"Records": records, "NextShardIterator": nxt, "MillisBehindLatest": 0}


def test_kinesis_reader_handles_pages_closed_shards_throttling_and_expiry(lake) -> None:
    raw, state = lake
    stub = _StubKinesis()
    slept: list[float] = []
    source = KinesisStreamSource("s", stub, sleep=slept.append, backoff_base_s=0.01)
    result = consume_stream(source, raw, state, NAME, batch_size=4)
    expected = [json.dumps({"n": i}) for i in range(15)]
    assert_exactly_once(raw, expected)
    assert result.finished_shards == ["shardId-0"] and len(slept) == 1
    assert result.checkpoint == {"shardId-0": "5", "shardId-1": "7", "shardId-2": "3"}
    assert load_checkpoint(state, NAME)["finished_shards"] == ["shardId-0"]  # type: ignore[index]

    stub.shards["shardId-1"][0].append('{"n": 15}')
    stub.calls.clear()
    more = consume_stream(KinesisStreamSource("s", stub), raw, state, NAME, batch_size=4)
    assert more.records_landed == 1 and more.records_read == 1
    assert_exactly_once(raw, [*expected, '{"n": 15}'])


def test_a_checkpoint_of_another_stream_is_refused(lake, tmp_path) -> None:
    raw, state = lake
    LocalStreamProducer(tmp_path / "a.jsonl").put_records(['{"x": 1}'])
    consume_stream(LocalStreamSource(tmp_path / "a.jsonl"), raw, state, NAME)
    with pytest.raises(IngestionError, match=r"belongs to 'local:.*a\.jsonl'.*another source_name"):
        consume_stream(LocalStreamSource(tmp_path / "b.jsonl"), raw, state, NAME)


def test_local_stream_partial_lines_and_truncation(lake, tmp_path) -> None:
    raw, state = lake
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"a": 2}\n{"a": 3')  # a blank line, a line being written
    first = consume_stream(LocalStreamSource(path), raw, state, NAME)
    assert first.records_landed == 2 and raw_lines(raw) == Counter(['{"a": 1}', '{"a": 2}'])
    with open(path, "ab") as f:
        f.write(b"}\n")
    assert consume_stream(LocalStreamSource(path), raw, state, NAME).records_landed == 1
    path.write_bytes(b'{"a": 1}\n')
    with pytest.raises(IngestionError, match="truncated or replaced; delete the checkpoint"):
        consume_stream(LocalStreamSource(path), raw, state, NAME)


def test_local_producer_keeps_each_record_on_one_line(tmp_path) -> None:
    path = tmp_path / "s.jsonl"
    producer = LocalStreamProducer(path)
    assert (
        producer.put_records([{"device_id": "d", "ts": "t"}, b'{\n "pretty": true\n}', "x\ny"]) == 3
    )
    assert path.read_bytes().split(b"\n")[:-1] == [
        b'{"device_id": "d", "ts": "t"}',
        b'{"pretty": true}',
        b"x\\ny",
    ]


def test_idle_polling_stops_after_the_timeout(lake) -> None:
    raw, state = lake
    stream = MemoryStream()
    MemoryStreamProducer(stream).put_records(['{"x": 1}'])
    polls: list[float] = []

    def sleep_and_produce(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 1:
            MemoryStreamProducer(stream).put_records(['{"x": 2}'])

    result = consume_stream(
        MemoryStreamSource(stream),
        raw,
        state,
        NAME,
        idle_timeout_s=0.05,
        poll_interval_s=0.01,
        sleep=sleep_and_produce,
    )
    assert result.records_landed == 2 and result.batches == 2 and polls


def test_record_keys() -> None:
    a = b'{"device_id": "d1", "ts": "2026-01-01T00:00:00Z", "temperature": 1.0}'
    same = b'{"temperature": 1.0, "ts": "2026-01-01T00:00:00Z", "device_id": "d1"}'
    conflicting = b'{"device_id": "d1", "ts": "2026-01-01T00:00:00Z", "temperature": 2.0}'
    assert record_key(a) == record_key(same) != record_key(conflicting)
    assert device_ts_key(a) == device_ts_key(conflicting) == "d1|2026-01-01T00:00:00Z"
    assert record_key(b'{"device_id": "d1", "ts": ').startswith("sha256:")
    assert record_key(b"[1, 2]") != record_key(b"[1, 3]")


def test_strict_device_ts_key_drops_conflicting_copies(lake) -> None:
    raw, state = lake
    stream = MemoryStream()
    MemoryStreamProducer(stream).put_records(
        [
            '{"device_id": "d1", "ts": "t1", "v": 1}',
            '{"device_id": "d1", "ts": "t1", "v": 2}',
            "broken {",
        ]
    )
    result = consume_stream(MemoryStreamSource(stream), raw, state, NAME, key_fn=device_ts_key)
    assert result.records_landed == 2 and result.duplicates_skipped == 1
    assert raw_lines(raw) == Counter(['{"device_id": "d1", "ts": "t1", "v": 1}', "broken {"])


def test_backends_from_settings(home, moto_endpoint, lake) -> None:
    from mlops_kit.config import load_settings
    from mlops_kit.ingest.streams import stream_producer_of, stream_source_of

    raw, state = lake
    local = load_settings()
    stream_producer_of(local).put_records(['{"device_id": "d", "ts": "t"}'])
    source = stream_source_of(local)
    assert isinstance(source, LocalStreamSource)
    assert str(source.path).startswith(str(home))
    assert consume_stream(source, raw, state, NAME).records_landed == 1

    _, name = _kinesis(moto_endpoint, shards=1)
    aws = load_settings(
        stream={"backend": "kinesis", "stream_name": name}, aws={"endpoint_url": moto_endpoint}
    )
    stream_producer_of(aws).put_records(['{"device_id": "d", "ts": "t2"}'])
    kinesis = stream_source_of(aws)
    assert isinstance(kinesis, KinesisStreamSource) and kinesis.identity == f"kinesis:{name}"
    assert consume_stream(kinesis, raw, state, "iot-kinesis").records_landed == 1
