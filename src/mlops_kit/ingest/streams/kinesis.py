"""Amazon Kinesis Data Streams: a reader over every shard and a batching producer.

The reader starts each shard at ``TRIM_HORIZON``, or ``AFTER_SEQUENCE_NUMBER`` of the
checkpoint, follows ``NextShardIterator`` and renews an expired iterator from the last
record it returned. A closed shard (after a split or merge) is read to its end and then
reported in :attr:`KinesisStreamSource.finished_shards`, so that checkpoints skip it.
boto3 is imported only when a client is built.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import IngestionError
from mlops_kit.ingest.streams.base import (
    StreamRecord,
    StreamSource,
    encode_record,
    partition_key_of,
    to_line,
)

if TYPE_CHECKING:
    from mlops_kit.config import Settings

Sleep = Callable[[float], None]

_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "InternalFailure",
    "ServiceUnavailable",
    "KMSThrottlingException",
}
MAX_RECORDS_PER_PUT = 500
MAX_BYTES_PER_PUT = 5 * 1024 * 1024
MAX_RECORDS_PER_GET = 10_000


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _client(client: Any, settings: Settings | None) -> Any:
    if client is not None:
        return client
    if settings is None:
        from mlops_kit.config import load_settings

        settings = load_settings()
    return settings.aws.client("kinesis")


class _Backoff:
    def __init__(self, base: float, cap: float, retries: int, sleep: Sleep) -> None:
        self.base, self.cap, self.retries, self.sleep = base, cap, retries, sleep

    def wait(self, attempt: int) -> None:
        self.sleep(random.uniform(0.0, min(self.cap, self.base * 2**attempt)))


class KinesisStreamSource(StreamSource):
    """Reads every shard of a Kinesis data stream.

    Args:
        stream_name: the stream.
        client: a boto3 Kinesis client; by default one from ``settings.aws.client``.
        settings: :class:`~mlops_kit.config.Settings` for the default client
            (``load_settings()`` when both are omitted).
        max_retries: retries of a throttled call (``ProvisionedThroughputExceeded``...).
        backoff_base_s: first backoff of a throttled call (exponential, full jitter).
        backoff_cap_s: longest backoff.
        sleep: how to wait (tests pass a recorder).
    """

    def __init__(
        self,
        stream_name: str,
        client: Any = None,
        *,
        settings: Settings | None = None,
        max_retries: int = 8,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 5.0,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.stream_name = stream_name
        self.client = _client(client, settings)
        self._backoff = _Backoff(backoff_base_s, backoff_cap_s, max_retries, sleep)
        self._iterators: dict[str, str | None] = {}
        self._last: dict[str, str] = {}
        self._finished: set[str] = set()
        self._active: list[str] = []
        self._turn = 0

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> KinesisStreamSource:
        """The source of ``settings.stream.stream_name`` with a client from ``settings``."""
        return cls(settings.stream.stream_name, settings=settings, **kwargs)

    @property
    def identity(self) -> str:
        return f"kinesis:{self.stream_name}"

    @property
    def finished_shards(self) -> frozenset[str]:
        return frozenset(self._finished)

    def _call(self, op: str, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            try:
                return getattr(self.client, op)(**kwargs)
            except Exception as exc:
                code = _error_code(exc)
                if code == "ExpiredIteratorException":
                    raise
                if code not in _THROTTLED or attempt >= self._backoff.retries:
                    raise IngestionError(
                        f"Kinesis {op} on stream '{self.stream_name}' failed: {exc}; check the "
                        "stream name, region, endpoint_url and the IAM permissions "
                        f"(kinesis:{op[0].upper()}{op[1:].replace('_', '')})",
                        stream=self.stream_name,
                        code=code,
                    ) from exc
                self._backoff.wait(attempt)
                attempt += 1

    def shard_ids(self) -> list[str]:
        """Ids of every shard of the stream, open and closed (``ListShards``, paginated)."""
        ids: list[str] = []
        kwargs: dict[str, Any] = {"StreamName": self.stream_name}
        while True:
            page = self._call("list_shards", **kwargs)
            ids.extend(shard["ShardId"] for shard in page.get("Shards", []))
            token = page.get("NextToken")
            if not token:
                return ids
            kwargs = {"NextToken": token}

    def open(self, positions: Mapping[str, str], finished: Collection[str] = ()) -> None:
        shards = self.shard_ids()
        unknown = set(positions) - set(shards)
        if unknown and not set(positions) & set(shards):
            raise IngestionError(
                f"checkpoint names shards {sorted(unknown)} that stream '{self.stream_name}' "
                "does not have: it belongs to another stream; use another source name"
            )
        self._last = {s: positions[s] for s in shards if s in positions}
        self._finished = {s for s in finished if s in shards}
        self._active = [s for s in shards if s not in self._finished]
        self._iterators = {}
        self._turn = 0

    def _iterator(self, shard: str) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": shard}
        if shard in self._last:
            kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            kwargs["StartingSequenceNumber"] = self._last[shard]
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        return str(self._call("get_shard_iterator", **kwargs)["ShardIterator"])

    def _get(self, shard: str, limit: int) -> dict[str, Any]:
        for _ in range(3):
            iterator = self._iterators.get(shard) or self._iterator(shard)
            try:
                return dict(self._call("get_records", ShardIterator=iterator, Limit=limit))
            except Exception as exc:
                if _error_code(exc) != "ExpiredIteratorException":
                    raise
                self._iterators[shard] = None  # renew from the last record returned
        raise IngestionError(
            f"Kinesis shard iterators of '{self.stream_name}/{shard}' keep expiring: "
            "read more often than every 5 minutes"
        )

    def read(self, max_records: int) -> list[StreamRecord]:
        out: list[StreamRecord] = []
        while len(out) < max_records and self._active:
            got = 0
            order = self._active[self._turn :] + self._active[: self._turn]
            self._turn = (self._turn + 1) % max(1, len(self._active))
            for shard in order:
                remaining = max_records - len(out)
                if remaining <= 0:
                    break
                response = self._get(shard, min(remaining, MAX_RECORDS_PER_GET))
                for rec in response.get("Records", []):
                    out.append(
                        StreamRecord(
                            shard,
                            str(rec["SequenceNumber"]),
                            to_line(bytes(rec["Data"])),
                            rec.get("PartitionKey"),
                        )
                    )
                    self._last[shard] = str(rec["SequenceNumber"])
                    got += 1
                nxt = response.get("NextShardIterator")
                self._iterators[shard] = nxt
                if nxt is None:  # a closed shard, read to its end
                    self._finished.add(shard)
            self._active = [s for s in self._active if s not in self._finished]
            self._turn = self._turn % max(1, len(self._active))
            if got == 0:
                break
        return out


@dataclass
class PutResult:
    """What :meth:`KinesisProducer.put_records` did.

    Attributes:
        records: records accepted by the stream.
        requests: ``PutRecords`` calls made.
        retried: records sent again after the stream reported them failed.
        shards: records accepted per shard.
    """

    records: int = 0
    requests: int = 0
    retried: int = 0
    shards: dict[str, int] = field(default_factory=dict)


class KinesisProducer:
    """Puts records on a Kinesis stream in ``PutRecords`` batches of at most 500.

    Records the stream reports failed (``FailedRecordCount``; throttling, internal
    errors) are sent again with exponential backoff. A record reported failed may still
    have been stored, so a retry can deliver it twice: the stream consumer de-duplicates.

    Args:
        stream_name: the stream.
        client: a boto3 Kinesis client; by default one from ``settings.aws.client``.
        settings: :class:`~mlops_kit.config.Settings` for the default client.
        max_retries: rounds of re-sending failed records before giving up.
        backoff_base_s: first backoff (exponential, full jitter).
        backoff_cap_s: longest backoff.
        sleep: how to wait (tests pass a recorder).
    """

    def __init__(
        self,
        stream_name: str,
        client: Any = None,
        *,
        settings: Settings | None = None,
        max_retries: int = 8,
        backoff_base_s: float = 0.1,
        backoff_cap_s: float = 5.0,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.stream_name = stream_name
        self.client = _client(client, settings)
        self._backoff = _Backoff(backoff_base_s, backoff_cap_s, max_retries, sleep)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> KinesisProducer:
        """The producer of ``settings.stream.stream_name`` with a client from ``settings``."""
        return cls(settings.stream.stream_name, settings=settings, **kwargs)

    def put_records(
        self,
        records: Iterable[str | bytes | Mapping[str, object]],
        partition_key: str | Callable[[bytes], str] = "device_id",
    ) -> PutResult:
        """Put ``records`` on the stream.

        Args:
            records: JSON-lines strings or bytes, or mappings (dumped as JSON).
            partition_key: a payload field (``"device_id"``: all readings of a device go
                to one shard, in order), or a function of the payload bytes. A payload
                without the field is keyed by its SHA-256.

        Returns:
            Counts of records, calls and retries.

        Raises:
            IngestionError: when records still fail after ``max_retries`` rounds, or a
                call fails for another reason than throttling.
        """
        key_of = (
            partition_key
            if callable(partition_key)
            else (lambda data, f=partition_key: partition_key_of(data, f))
        )
        result = PutResult()
        batch: list[dict[str, Any]] = []
        size = 0
        for record in records:
            data = encode_record(record)
            key = key_of(data)
            entry: dict[str, Any] = {"Data": data, "PartitionKey": key}
            entry_size = len(data) + len(key.encode())
            if batch and (
                len(batch) >= MAX_RECORDS_PER_PUT or size + entry_size > MAX_BYTES_PER_PUT
            ):
                self._put(batch, result)
                batch, size = [], 0
            batch.append(entry)
            size += entry_size
        if batch:
            self._put(batch, result)
        return result

    def _put(self, entries: list[dict[str, Any]], result: PutResult) -> None:
        attempt = 0
        while True:
            result.requests += 1
            try:
                response = self.client.put_records(StreamName=self.stream_name, Records=entries)
            except Exception as exc:
                code = _error_code(exc)
                if code not in _THROTTLED or attempt >= self._backoff.retries:
                    raise IngestionError(
                        f"Kinesis PutRecords on stream '{self.stream_name}' failed: {exc}; "
                        "check the stream name, region, endpoint_url and kinesis:PutRecords",
                        stream=self.stream_name,
                        code=code,
                    ) from exc
                self._backoff.wait(attempt)
                attempt += 1
                continue
            failed = []
            for entry, outcome in zip(entries, response.get("Records", []), strict=False):
                if outcome.get("ErrorCode"):
                    failed.append((entry, outcome))
                else:
                    result.records += 1
                    shard = str(outcome.get("ShardId", ""))
                    result.shards[shard] = result.shards.get(shard, 0) + 1
            if not failed:
                return
            if attempt >= self._backoff.retries:
                codes = sorted({str(o.get("ErrorCode")) for _, o in failed})
                raise IngestionError(
                    f"{len(failed)} records were still rejected by Kinesis stream "
                    f"'{self.stream_name}' after {attempt} retries ({', '.join(codes)}): "
                    "add shards or slow the producer down",
                    stream=self.stream_name,
                    failed=len(failed),
                )
            entries = [entry for entry, _ in failed]
            result.retried += len(entries)
            self._backoff.wait(attempt)
            attempt += 1
