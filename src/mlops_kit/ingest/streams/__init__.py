"""Stream ingestion: one :class:`StreamSource` interface, a local and a Kinesis backend.

=========================  ==============================  ===============================
backend                    source                          producer
=========================  ==============================  ===============================
local (default)            :class:`LocalStreamSource`      :class:`LocalStreamProducer`
in-memory                  :class:`MemoryStreamSource`     :class:`MemoryStreamProducer`
Kinesis                    :class:`KinesisStreamSource`    :class:`KinesisProducer`
=========================  ==============================  ===============================

:func:`consume_stream` lands micro-batches in the raw zone and checkpoints after each
write; the raw zone holds every record once, even across crashes and producer retries.
"""

from mlops_kit.ingest.streams.base import (
    StreamRecord,
    StreamSource,
    device_ts_key,
    partition_key_of,
    record_key,
)
from mlops_kit.ingest.streams.consumer import (
    StreamBatch,
    StreamIngestResult,
    checkpoint_uri,
    consume_stream,
    load_checkpoint,
    pending_uri,
    stream_producer_of,
    stream_source_of,
)
from mlops_kit.ingest.streams.kinesis import KinesisProducer, KinesisStreamSource, PutResult
from mlops_kit.ingest.streams.local import (
    LOCAL_SHARD,
    LocalStreamProducer,
    LocalStreamSource,
    MemoryStream,
    MemoryStreamProducer,
    MemoryStreamSource,
)

__all__ = [
    "LOCAL_SHARD",
    "KinesisProducer",
    "KinesisStreamSource",
    "LocalStreamProducer",
    "LocalStreamSource",
    "MemoryStream",
    "MemoryStreamProducer",
    "MemoryStreamSource",
    "PutResult",
    "StreamBatch",
    "StreamIngestResult",
    "StreamRecord",
    "StreamSource",
    "checkpoint_uri",
    "consume_stream",
    "device_ts_key",
    "load_checkpoint",
    "partition_key_of",
    "pending_uri",
    "record_key",
    "stream_producer_of",
    "stream_source_of",
]
