"""What the feature views read: the files the ETL committed, each (entity, time) once.

When the feature source is the ETL's feature table, the files read are those of committed
runs (the run manifests), and the folder Feast reads must hold exactly those: while a
commit is open (or after one was interrupted) the folder also holds the files it
replaces, so reading it then would join a day twice. A Feast read is checked against a
commit that lands during it, and a source with two rows of one entity and time is
refused: which of them Feast's file store would join is not defined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from mlops_kit import storage
from mlops_kit.config import Settings
from mlops_kit.features.catalog import TIMESTAMP
from mlops_kit.features.errors import DuplicateFeatureRowsError, SourceNotCommittedError


def etl_layout(settings: Settings, source_uri: str) -> Any:
    """The ETL layout when ``source_uri`` is the ETL's feature table, else None."""
    from mlops_kit.etl.run import features_table, layout_of

    if not settings.storage.processed_uri:
        return None
    layout = layout_of(settings)
    table = storage.join(layout.processed_uri, features_table(settings)).rstrip("/")
    return layout if table == source_uri else None


def committed_files(settings: Settings, source_uri: str) -> list[str]:
    """The Parquet files of the feature source: the committed ones for the ETL's table,
    the folder's for a source of the user's own.

    Raises:
        SourceNotCommittedError: an ETL commit is open, or the folder holds files no
            committed run wrote (or lacks some that one did).
    """
    from mlops_kit.etl import lake
    from mlops_kit.etl.run import features_table

    listed = storage.list_files(source_uri, ".parquet")
    layout = etl_layout(settings, source_uri)
    if layout is None:
        return listed
    busy = lake.open_commits(layout)
    if busy:
        raise SourceNotCommittedError(
            f"ETL run {busy[0]} is committing (or was interrupted mid-commit), so "
            f"{source_uri} holds both the files it writes and those it "
            "replaces. Wait for it to finish, or after a crash run `mlops-kit etl run`, "
            "which completes the interrupted commit first",
            runs=busy,
        )
    live = lake.live_files(layout, features_table(settings))
    key = storage.resolve
    extra = sorted({key(u)[1] for u in listed} - {key(u)[1] for u in live})
    lost = sorted({key(u)[1] for u in live} - {key(u)[1] for u in listed})
    if extra or lost:
        what = (
            f"{len(extra)} file(s) no committed ETL run wrote (first: {extra[0]})"
            if extra
            else f"{len(lost)} committed file(s) are missing (first: {lost[0]})"
        )
        raise SourceNotCommittedError(
            f"the feature source {source_uri} does not match the ETL's "
            f"manifests: {what}. Only the ETL may write there; move other files out, "
            "or restore the missing ones from the lake's backup / versioning",
            extra=extra,
            missing=lost,
        )
    return live


def read_consistently(
    list_files: Callable[[], list[str]], files: list[str], read: Callable[[], Any]
) -> Any:
    """``read()`` (a Feast read of the source folder), checked against a commit.

    The committed files are listed before and after the read; if an ETL run committed in
    between, the read may have seen two versions of a day and is done again.
    """
    for _ in range(3):
        result = read()
        now = list_files()
        if now == files:
            return result
        files = now
    raise SourceNotCommittedError(
        "the ETL committed three times while the feature store read its source; "
        "read again when the ETL is idle"
    )


def unique_keys(files: list[str], key: str, source_uri: str) -> pa.Table:
    """Entity and event time of every feature row, each pair at most once.

    Raises:
        DuplicateFeatureRowsError: a pair occurs twice; which row Feast's file store
            joins is then not defined, so the rows are refused, not guessed between.
    """
    import polars as pl

    if not files:
        return pa.table({key: pa.array([], pa.string())})
    keys = storage.read_parquet(files, columns=[key, TIMESTAMP])
    frame = pl.from_arrow(keys)
    assert isinstance(frame, pl.DataFrame)
    dup = frame.group_by([key, TIMESTAMP]).len().filter(pl.col("len") > 1).sort([key, TIMESTAMP])
    if dup.height:
        first = dup.row(0, named=True)
        raise DuplicateFeatureRowsError(
            f"the feature source has {dup.height} ({key}, {TIMESTAMP}) pair(s) with more "
            f"than one row, for example {first[key]!r} at {first[TIMESTAMP].isoformat()} "
            f"({first['len']} rows) in {len(files)} file(s) under {source_uri}. Keep one "
            "row per entity and event time: write each partition once (the ETL rewrites a "
            "whole day) instead of appending corrections",
            pairs=dup.height,
            example={key: first[key], TIMESTAMP: first[TIMESTAMP].isoformat()},
        )
    return keys
