"""``features.engine: ray``: materialization through Feast's Ray compute engine.

What Feast is given (:func:`mlops_kit.features.config.repo_config_dict`)::

    batch_engine:  {type: ray.engine, ray_address: <ray.address>, max_workers: <ray.workers>,
                    write_concurrency: 1 on SQLite (one writer) | <ray.workers> on DynamoDB}
    offline_store: {type: ray, ray_address: <ray.address>,
                    storage_path: <features home>/staging, broadcast_join_threshold_mb: 2^20}

Before Feast touches Ray the process joins the cluster with
:func:`mlops_kit.compute.ray_session` (a local cluster of ``ray.num_cpus`` CPUs, or the
one at ``ray.address``), and Feast reuses that connection.

A view's window ``[start, end]`` is materialized in four steps:

1. **newest row per entity, on the cluster**: one task per group of the committed source
   files keeps each entity's newest row in the window and splits those rows by a hash of
   the entity; one task per hash partition keeps the newest of them and stages it as
   Parquet under ``<features home>/staging/``;
2. **Feast's Ray engine** materializes the staged rows (its read, filter, dedup and
   online-write nodes on Ray workers) from a copy of the view that reads them and has no
   TTL, then the registry records the interval as ``FeatureStore.materialize`` does;
3. **read-back**: every entity of the window must have an online row at least as new as
   its newest feature row (to the second, the precision Feast's Ray engine keeps), else
   :class:`~mlops_kit.features.errors.OnlineWriteIncompleteError`;
4. the staged files are removed.

Why not Feast's engine alone (Feast 0.67):

* its materialization drops rows older than *now* minus the view's TTL (its filter node
  compares with the wall clock, not with ``end``), so a backfill of last week writes
  nothing; the local engine writes the newest row whatever its age, and so does the
  TTL-less copy (the TTL is a read-time rule);
* with ``pull_latest_features`` off (Feast's default) it deduplicates per block and
  writes blocks in no fixed order, so an entity's older row can overwrite its newest
  (1M rows in 24 hourly files left every device with an older hour); with it on, the Ray
  offline store keeps the newest row with ``groupby().map_groups()``, one pandas call per
  entity: 262 s for one view of 1M rows of 41,666 devices on 2 cores, against 18 s per
  view through the steps above, of which step 1 takes under a second (after it each
  entity has one row, so the per-block dedup is exact; docs/benchmarks.md);
* a failed online write is logged on the worker and skipped, and the job still reports
  success: step 3 is what notices it.

The training set's point-in-time join runs in Feast's Ray offline store (see
:mod:`mlops_kit.features.pit` for what that store needs).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from mlops_kit import storage
from mlops_kit.config import Settings, load_settings
from mlops_kit.features.catalog import TIMESTAMP
from mlops_kit.features.errors import OnlineWriteIncompleteError

if TYPE_CHECKING:
    from mlops_kit.features.store import FeatureClient


def newest_task(
    config: dict[str, Any],
    files: list[str],
    columns: list[str],
    key: str,
    window: tuple[datetime, datetime],
    partitions: int,
) -> tuple[pa.Table, ...]:
    """Map: the newest row per entity of ``files`` in ``window``, split by entity hash."""
    import polars as pl

    settings = load_settings(**config)
    storage.configure_from_settings(settings)
    table = storage.read_parquet(files, columns=columns)
    start, end = window
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    newest = (
        frame.filter((pl.col(TIMESTAMP) >= start) & (pl.col(TIMESTAMP) <= end))
        .sort(TIMESTAMP)
        .unique(subset=[key], keep="last")
    )
    part = newest[key].hash(seed=0) % partitions
    return tuple(newest.filter(part == p).to_arrow().cast(table.schema) for p in range(partitions))


def stage_task(config: dict[str, Any], uri: str, key: str, *pieces: pa.Table) -> pa.Table:
    """Reduce: the newest row per entity of one hash partition, staged at ``uri``.

    Returns:
        The key and event time of each staged row.
    """
    import polars as pl

    settings = load_settings(**config)
    storage.configure_from_settings(settings)
    table = pa.concat_tables(pieces)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    newest = frame.sort(TIMESTAMP).unique(subset=[key], keep="last").to_arrow().cast(table.schema)
    if newest.num_rows:
        storage.write_parquet(uri, newest)
    return newest.select([key, TIMESTAMP])


def stage_newest(
    settings: Settings,
    files: Sequence[str],
    columns: list[str],
    key: str,
    window: tuple[datetime, datetime],
    folder: str,
) -> pa.Table:
    """Stage the newest row per entity of ``files`` in ``window`` under ``folder``.

    Returns:
        The key and event time of every staged row.
    """
    from mlops_kit.compute import ray_session

    ray = ray_session(settings)
    workers = settings.ray.workers
    partitions = 2 * workers
    groups = [list(files[i :: 2 * workers]) for i in range(min(len(files), 2 * workers))]
    config = settings.model_dump(mode="json")
    newest = ray.remote(newest_task).options(num_returns=partitions)
    stage = ray.remote(stage_task)
    maps = [newest.remote(config, g, columns, key, window, partitions) for g in groups]
    maps = [m if isinstance(m, list) else [m] for m in maps]
    staged = [
        stage.remote(
            config, storage.join(folder, f"part-{p:03d}.parquet"), key, *(m[p] for m in maps)
        )
        for p in range(partitions)
    ]
    return pa.concat_tables(ray.get(staged))


def materialize_view(
    client: FeatureClient, name: str, start: datetime, end: datetime, files: Sequence[str]
) -> None:
    """Materialize view ``name`` over ``[start, end]`` through Feast's Ray engine.

    Raises:
        OnlineWriteIncompleteError: an entity of the window has no online row as new as
            its newest feature row after Feast's engine reported success.
    """
    from feast import FileSource

    store = client.store
    view = store.get_feature_view(name)
    key = client.catalog.join_key
    columns = [key, TIMESTAMP, *(f.name for f in view.features)]
    p = client.placement
    folder = storage.join(p.staging_uri, f"{name}-{uuid.uuid4().hex[:12]}")
    try:
        staged = stage_newest(client.settings, files, columns, key, (start, end), folder)
        if not staged.num_rows:
            return
        source = view.batch_source
        rows = copy.copy(view)
        rows.ttl = timedelta(0)
        rows.batch_source = FileSource(
            name=f"{source.name}_staged",
            path=folder,
            timestamp_field=TIMESTAMP,
            s3_endpoint_override=p.s3_endpoint if storage.is_s3(folder) else None,
        )
        store._get_provider().materialize_single_feature_view(
            config=store.config,
            feature_view=rows,
            start_date=start,
            end_date=end,
            registry=store.registry,
            project=store.project,
            tqdm_builder=_no_progress,
        )
        store.registry.apply_materialization(view, store.project, start, end)
    finally:
        storage.delete_tree(folder)
    check_written(client, name, staged)


def check_written(client: FeatureClient, name: str, staged: pa.Table) -> None:
    """Every staged entity has an online row at least as new as its staged row.

    Raises:
        OnlineWriteIncompleteError: naming the view, how many entities fell short and one.
    """
    key = client.catalog.join_key
    ids = staged[key].to_pylist()
    found = client._online_reader().event_times(name, ids)
    short: list[tuple[str, datetime, datetime | None]] = []
    for device, when in zip(ids, staged[TIMESTAMP].to_pylist(), strict=True):
        want = _utc(when).replace(microsecond=0)
        got = found.get(device)
        if got is None or _utc(got) < want:
            short.append((device, want, got))
    if short:
        device, want, got = short[0]
        raise OnlineWriteIncompleteError(
            f"materializing '{name}' with Feast's Ray engine left {len(short)} of {len(ids)} "
            f"entities without their newest row online (e.g. {device!r}: expected "
            f"{want.isoformat()}, found {got.isoformat() if got else 'no row'}). Feast's Ray "
            "engine logs a failed online write on the worker and goes on: read the Ray "
            "workers' logs (/tmp/ray/session_latest/logs on a local cluster), fix the cause "
            "and materialize again (the view's high-water mark did not move)",
            view=name,
            short=len(short),
            entities=len(ids),
        )


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _no_progress(length: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=length, disable=True)
