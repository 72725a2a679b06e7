"""DynamoDB online writes in batches, retried with backoff when DynamoDB throttles them.

Feast's DynamoDB store writes through boto3's ``batch_writer``, which sends any
``UnprocessedItems`` straight back with no delay and no limit: under throttling it
hammers the table, and a table that stays throttled never lets the write finish. The
online store here is Feast's, with only ``online_write_batch`` replaced by
:func:`write_items`:

* ``BatchWriteItem`` of ``features.online_write_batch`` items (25 at most);
* the items a response leaves unprocessed, or a whole batch refused with a throttling
  error (after botocore's own retries), are sent again after an exponential backoff
  with jitter (``write_backoff_s`` doubling up to ``write_backoff_max_s``);
* after ``write_max_attempts`` attempts of one batch,
  :class:`~mlops_kit.features.errors.OnlineWriteThrottledError` names the table and the
  fix. The materialization stops there and does not advance its high-water mark, so the
  next run writes the window again.

:func:`mlops_kit.features.config.repo_config_dict` selects this store for
``features.online_store: dynamodb`` (both engines; a Ray worker imports it by name).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from mlops_kit._lazy import require

require("feast", "the feature store")

from feast.infra.online_stores.dynamodb import (  # noqa: E402
    DynamoDBOnlineStore,
    DynamoDBOnlineStoreConfig,
    _get_table_name,
    _latest_data_to_write,
    _to_client_write_item,
)
from pydantic import Field  # noqa: E402

from mlops_kit.features.config import DYNAMODB_STORE  # noqa: E402
from mlops_kit.features.errors import OnlineWriteThrottledError  # noqa: E402

THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
"""Error codes of a whole ``BatchWriteItem`` refused for capacity: sent again."""


class BatchedDynamoDBOnlineStoreConfig(DynamoDBOnlineStoreConfig):
    """Feast's DynamoDB settings, plus how writes are batched and retried."""

    type: Literal["mlops_kit.features.dynamo.BatchedDynamoDBOnlineStore"] = DYNAMODB_STORE  # type: ignore[assignment]
    write_batch_size: int = Field(25, ge=1, le=25)
    """Items per ``BatchWriteItem`` (DynamoDB takes 25 at most)."""
    write_max_attempts: int = Field(8, ge=1)
    """Attempts of one batch before its unprocessed items fail the write."""
    write_backoff_s: float = Field(0.05, ge=0)
    """Delay before the first retry; doubled at each further one."""
    write_backoff_max_s: float = Field(5.0, ge=0)
    """Longest delay between two attempts."""


class BatchedDynamoDBOnlineStore(DynamoDBOnlineStore):
    """Feast's DynamoDB online store with batched, bounded, backed-off writes."""

    def online_write_batch(
        self,
        config: Any,
        table: Any,
        data: list[tuple[Any, dict[str, Any], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        """Write the newest row of each entity in ``data`` (see :func:`write_items`)."""
        online = config.online_store
        assert isinstance(online, BatchedDynamoDBOnlineStoreConfig)
        client = self._get_dynamodb_client(
            online.region, online.endpoint_url, online.session_based_auth
        )
        items = [
            _to_client_write_item(config, key, values, ts)
            for key, values, ts, _ in _latest_data_to_write(data)
        ]
        write_items(
            client,
            _get_table_name(online, config, table),
            items,
            batch_size=online.write_batch_size,
            max_attempts=online.write_max_attempts,
            backoff_s=online.write_backoff_s,
            backoff_max_s=online.write_backoff_max_s,
            progress=progress,
        )


def write_items(
    client: Any,
    table: str,
    items: Sequence[dict[str, Any]],
    *,
    batch_size: int = 25,
    max_attempts: int = 8,
    backoff_s: float = 0.05,
    backoff_max_s: float = 5.0,
    progress: Callable[[int], Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Put ``items`` (DynamoDB attribute values) into ``table``, ``batch_size`` per call.

    Returns:
        The number of retries (calls beyond one per batch) it took.

    Raises:
        OnlineWriteThrottledError: a batch still had unprocessed items after
            ``max_attempts`` attempts.
        botocore.exceptions.ClientError: any error other than throttling.
    """
    from botocore.exceptions import ClientError

    retries = 0
    for first in range(0, len(items), batch_size):
        pending = [{"PutRequest": {"Item": item}} for item in items[first : first + batch_size]]
        size = len(pending)
        attempt = 0
        while pending:
            attempt += 1
            try:
                response = client.batch_write_item(RequestItems={table: pending})
                pending = list(response.get("UnprocessedItems", {}).get(table, []))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in THROTTLED:
                    raise
            if not pending:
                break
            if attempt >= max_attempts:
                raise OnlineWriteThrottledError(
                    f"DynamoDB table '{table}' left {len(pending)} of {size} items "
                    f"unprocessed after {attempt} BatchWriteItem attempts (throttled: its "
                    "write capacity is exhausted). Raise the table's write capacity or "
                    "switch it to on-demand (PAY_PER_REQUEST), or lower ray.workers so "
                    "fewer writers share it; then materialize again (the view's "
                    "high-water mark did not move)",
                    table=table,
                    unprocessed=len(pending),
                    attempts=attempt,
                )
            retries += 1
            delay = min(backoff_max_s, backoff_s * 2 ** (attempt - 1))
            sleep(delay * random.uniform(0.5, 1.0))
        if progress is not None:
            progress(size)
    return retries
