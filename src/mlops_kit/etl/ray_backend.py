"""The ETL on Ray (``etl.backend: ray``): the local backend's steps as Ray tasks.

The same spec-driven rules, accounting and journaled commit as :mod:`mlops_kit.etl.run`;
only where the work runs changes::

    extract    one task per group of raw objects (in the order of the local run):
               extract -> normalise -> split the rows by hash(entity) into P partitions
    quality    one task per entity partition: the quality check, with the committed rows
               of its entities (so uniqueness holds across runs and partitions), and
               each rejected record's text read back from its raw object
    transform  one task per entity partition: the features of the days the run affects
               (every window is per entity), then its readings and features staged as
               Parquet under the run's staging folder (many writers)
    commit     the driver: the quality gate, then one journal and one manifest, the
               commit point, exactly as the local backend

A row's partition is a fixed hash of its entity id, and each partition keeps the rows in
the local run's order, so every decision (which of two records with one key is kept,
which window a reading enters) is the one the local backend makes: the committed tables
are the same rows. A task is pure until it stages files whose names depend only on the
run and the partition, so Ray's retry of a task whose worker died writes the same files;
a driver that dies before the manifest leaves only staging, which the next run discards
and redoes (see :mod:`mlops_kit.etl.lake`).

The manifest's ``execution`` records the backend, the workers, and per stage the wall
time (the driver's), the CPU time and the wall time summed over the tasks (their ratio is
how busy a task kept its core), the tasks and the worker processes that ran them.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timezone
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from mlops_kit import storage
from mlops_kit._faults import maybe_fail
from mlops_kit.compute import cluster_cpus, ray_session
from mlops_kit.config import Settings, load_settings
from mlops_kit.etl import lake
from mlops_kit.etl.errors import DataQualityError, EtlError
from mlops_kit.etl.extract import extract
from mlops_kit.etl.quality import RuleSet, check
from mlops_kit.etl.run import (
    Batch,
    EtlResult,
    StagedRows,
    feature_days,
    features_for,
    finish,
    gate,
    pending_inputs,
    references_of,
    rules_of,
    run_id_for,
)
from mlops_kit.etl.transform import normalise, to_readings
from mlops_kit.etl.zones import (
    READINGS,
    dates_of,
    layout_of,
    quarantine_rows,
    read_options,
    read_table,
    record_layout_of,
    stage_processed,
)

Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, tasks_done, tasks)`` while a stage's tasks finish."""

HASH_SEED = 20_240_601
"""Seed of the entity hash: fixed, so a run and its retry partition rows alike."""


def partition_of(ids: pa.ChunkedArray | pa.Array, partitions: int) -> np.ndarray:
    """The partition (``0 .. partitions - 1``) of each entity id: a seeded hash of its
    value (dictionary-encoded ids by value, integers of any width as int64), so rows
    read from raw objects and from the lake's files agree."""
    if pa.types.is_dictionary(ids.type):
        ids = ids.cast(ids.type.value_type)
    if pa.types.is_integer(ids.type):
        ids = ids.cast(pa.int64())
    series = pl.Series("id", ids)
    hashed = series.hash(seed=HASH_SEED).to_numpy()
    return (hashed % np.uint64(partitions)).astype(np.int64)


def _only(key: str, partitions: int, part: int) -> Callable[[pa.Table], pa.Table]:
    def keep(table: pa.Table) -> pa.Table:
        return table.filter(pa.array(partition_of(table[key], partitions) == part))

    return keep


def _groups(pending: list[str], n: int) -> list[list[str]]:
    """``pending`` in ``n`` contiguous groups (the local run's order kept)."""
    n = max(1, min(n, len(pending)))
    bounds = np.linspace(0, len(pending), n + 1).round().astype(int)
    return [pending[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _usage(wall: float, cpu: float) -> dict[str, Any]:
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "worker": f"{os.uname().nodename}:{os.getpid()}",
    }


def extract_task(config: dict[str, Any], uris: list[str], partitions: int) -> tuple[Any, ...]:
    """Map: extract and normalise ``uris``; return the metadata, then one table per
    partition (rows in their local order)."""
    wall, cpu = time.perf_counter(), time.process_time()
    settings = load_settings(**config)
    storage.configure_from_settings(settings)
    base, per_object = read_options(settings)
    extracted = extract(uris, base, per_object)
    rows = normalise(extracted.rows, base.layout)
    records = base.layout
    part = partition_of(rows[records.key], partitions)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(partitions + 1))
    ordered = rows.take(pa.array(order))
    pieces = [ordered.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
    meta = {
        "records_in": extracted.records_in,
        "rejected": extracted.rejected_table(),
        "objects": [o.to_dict() for o in extracted.objects],
        "dates": dates_of(rows[records.time].drop_null()) if rows.num_rows else set(),
        **_usage(wall, cpu),
    }
    return (meta, *pieces)


def check_task(
    config: dict[str, Any],
    rules: RuleSet,
    now: datetime,
    part: int,
    partitions: int,
    new_dates: set[date],
    *pieces: pa.Table,
) -> tuple[dict[str, Any], pa.Table]:
    """Reduce: the quality check of one entity partition, against the committed rows of
    its entities; returns the metadata and the partition's processed readings."""
    wall, cpu = time.perf_counter(), time.process_time()
    settings = load_settings(**config)
    storage.configure_from_settings(settings)
    records = record_layout_of(settings)
    typed = pa.concat_tables(pieces)
    existing = read_table(settings, READINGS, new_dates) if new_dates else None
    if existing is not None and existing.num_rows:
        existing = _only(records.key, partitions, part)(existing)
    references = references_of(settings, rules)
    result = check(typed, rules, now=now, references=references, existing_keys=existing)
    readings = to_readings(result.valid, records)
    meta = {
        "loaded": readings.num_rows,
        "duplicates_dropped": result.duplicates_dropped,
        "rejected": quarantine_rows(settings, result.quarantined),
        "dates": dates_of(readings[records.time]),
        **_usage(wall, cpu),
    }
    return meta, readings


def stage_task(
    config: dict[str, Any],
    run_id: str,
    now: datetime,
    part: int,
    partitions: int,
    days: tuple[set[date], set[date]],
    readings: pa.Table,
) -> dict[str, Any]:
    """The features of one entity partition on the affected days (every window is per
    entity); its readings and features staged as Parquet under the run's staging."""
    wall, cpu = time.perf_counter(), time.process_time()
    settings = load_settings(**config)
    storage.configure_from_settings(settings)
    records = record_layout_of(settings)
    around, affected = days
    keep = _only(records.key, partitions, part)
    features = features_for(settings, readings, now, around, affected, keep)
    maybe_fail("etl.ray_partition")
    commit = lake.Commit(layout_of(settings), run_id)
    staged = stage_processed(commit, records, readings, features, f"p{part:04d}")
    return {"moves": commit.moves, "staged": staged, **_usage(wall, cpu)}


def _gather(ray: Any, refs: Sequence[Any], stage: str, progress: Progress | None) -> list[Any]:
    """The values of ``refs`` in their order, reporting progress as they finish."""
    pending = list(refs)
    done = 0
    if progress:
        progress(stage, 0, len(refs))
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        done += len(ready)
        if progress:
            progress(stage, done, len(refs))
    return list(ray.get(list(refs)))


def _stage_record(wall: float, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "wall_s": round(wall, 4),
        "cpu_s": round(sum(r["cpu_s"] for r in results), 4),
        "task_wall_s": round(sum(r["wall_s"] for r in results), 4),
        "tasks": len(results),
        "workers": len({r["worker"] for r in results}),
    }


def run_etl_ray(
    settings: Settings,
    *,
    now: datetime | None = None,
    rules: RuleSet | None = None,
    source: str | None = None,
    progress: Progress | None = None,
) -> EtlResult:
    """:func:`~mlops_kit.etl.run.run_etl` on the Ray cluster ``settings.ray`` names.

    Raises:
        DataQualityError: as the local backend; nothing is committed and the run's
            staged files are removed.
        EtlError: a task failed past Ray's retries; nothing is committed.
    """
    ray = ray_session(settings)
    now = now or datetime.now(timezone.utc)
    pending = pending_inputs(settings, source)
    if not pending:
        return EtlResult(run_id="", status="noop")
    layout = layout_of(settings)
    run_id = run_id_for(layout, pending, now)
    workers = settings.ray.workers
    partitions = settings.etl.partitions or 2 * workers
    config = settings.model_dump(mode="json")
    rules = rules_of(settings, rules)
    extract_remote = ray.remote(extract_task)
    check_remote = ray.remote(check_task)
    stage_remote = ray.remote(stage_task)
    timings: dict[str, dict[str, Any]] = {}
    try:
        t0 = time.perf_counter()
        maps = [
            extract_remote.options(num_returns=partitions + 1).remote(config, group, partitions)
            for group in _groups(pending, 2 * workers)
        ]
        metas = _gather(ray, [m[0] for m in maps], "extract", progress)
        timings["extract"] = _stage_record(time.perf_counter() - t0, metas)
        t1 = time.perf_counter()
        typed_dates = set().union(*(m["dates"] for m in metas))
        checks = [
            check_remote.options(num_returns=2).remote(
                config, rules, now, p, partitions, typed_dates, *(m[p + 1] for m in maps)
            )
            for p in range(partitions)
        ]
        checked = _gather(ray, [c[0] for c in checks], "quality", progress)
        del maps  # the extracted rows are no longer needed in the object store
        timings["quality"] = _stage_record(time.perf_counter() - t1, checked)
        t2 = time.perf_counter()
        days = feature_days(settings, set().union(*(c["dates"] for c in checked)))
        stages = [
            stage_remote.remote(config, run_id, now, p, partitions, days, checks[p][1])
            for p in range(partitions)
        ]
        parts = _gather(ray, stages, "transform", progress)
        timings["transform"] = _stage_record(time.perf_counter() - t2, parts)
    except ray.exceptions.RayError as exc:
        raise EtlError(
            f"run {run_id}: a Ray task failed after Ray's retries ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}). Nothing was "
            "committed; its staged files are discarded by the next run. Run it again"
        ) from exc
    t3, c3 = time.perf_counter(), time.process_time()
    rejected = [c["rejected"] for c in checked if c["rejected"].num_rows]
    batch = Batch(
        run_id=run_id,
        now=now,
        inputs=pending,
        rows_in=sum(m["records_in"] for m in metas),
        rows=record_layout_of(settings).reading_schema.empty_table(),
        quarantine=pa.concat_tables([m["rejected"] for m in metas] + rejected),
        duplicates_dropped=sum(c["duplicates_dropped"] for c in checked),
        checked=True,
        objects=[o for m in metas for o in m["objects"]],
        timings=timings,
        loaded=sum(c["loaded"] for c in checked),
    )
    try:
        gate(settings, batch)
    except DataQualityError:
        storage.delete_tree(layout.staging(run_id))
        raise
    commit = lake.Commit(layout, run_id)
    staged = StagedRows()
    for p in parts:
        commit.moves.extend(p["moves"])
        staged.add(p["staged"])
    timings["commit"] = {"tasks": 0, "workers": 1}
    execution = {
        "backend": "ray",
        "workers": workers,
        "partitions": partitions,
        "cluster_cpus": cluster_cpus(settings),
    }

    if progress:
        progress("commit", 0, 1)
    result = finish(settings, batch, commit, staged, execution, ("commit", t3, c3))
    if progress:
        progress("commit", 1, 1)
    return result
