"""Point-in-time training sets with explicit accounting of rows that have no features.

Feast's file offline store joins each label row to the newest feature row with
``label time - ttl <= event_timestamp <= label time`` and *drops* rows that have none
(and fails on an entity it has never seen when the data spans several files). Here every
label row is first classified per feature view with an as-of join on the key columns
only; the rows are then sent to Feast grouped by the views that cover them, so Feast only
ever sees rows it can join, and the rest are kept with nulls or dropped as asked, and
counted either way.

With ``features.engine: ray`` the join runs in Feast's Ray offline store, which floors
label and feature times to the second before joining: the label rows are sent with
their time floored (and joined back on it), which gives the same feature row as the
exact time as long as feature rows lie on whole seconds; a source with a sub-second
feature time is refused for that engine (the ETL's rows lie on their grain's bucket
ends). Its broadcast join (the only one configured: see
:func:`mlops_kit.features.config.repo_config_dict`) does not apply the TTL, which is
why only covered rows are sent: their newest feature row at or before the label time is
within the TTL by the classification above.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from mlops_kit.features.catalog import TIMESTAMP, Catalog
from mlops_kit.features.errors import EngineUnsupportedError, FeatureStoreError

if TYPE_CHECKING:
    from mlops_kit.features.store import FeatureClient, TrainingSet

ROW_ID = "__mlk_row"
_TYPES = {"Float64": pa.float64(), "Int64": pa.int64()}


def _labels_frame(labels: Any, timestamp_column: str, key: str) -> pl.DataFrame:
    if isinstance(labels, pa.Table):
        df = pl.from_arrow(labels)
    elif isinstance(labels, pl.DataFrame):
        df = labels
    else:
        df = pl.from_pandas(labels)
    assert isinstance(df, pl.DataFrame)
    missing = [c for c in (key, timestamp_column) if c not in df.columns]
    if missing:
        raise FeatureStoreError(
            f"the labels need columns {key!r} and {timestamp_column!r}; "
            f"missing {', '.join(missing)} (have {', '.join(df.columns)})"
        )
    if timestamp_column != TIMESTAMP:
        if TIMESTAMP in df.columns:
            df = df.drop(TIMESTAMP)
        df = df.rename({timestamp_column: TIMESTAMP})
    ts = df[TIMESTAMP]
    if ts.dtype != pl.Datetime:
        raise FeatureStoreError(
            f"the labels' time column {timestamp_column!r} must hold datetimes, found "
            f"{ts.dtype}; convert it to datetimes first (times without a zone are read as UTC)"
        )
    if getattr(ts.dtype, "time_zone", None) is None:
        df = df.with_columns(pl.col(TIMESTAMP).dt.replace_time_zone("UTC"))
    df = df.with_columns(
        pl.col(TIMESTAMP).dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        pl.col(key).cast(pl.Utf8),
    )
    return df.with_row_index(ROW_ID)


def coverage(
    keys: pl.DataFrame, rows: pl.DataFrame, ttl: dict[str, timedelta], key: str
) -> pl.DataFrame:
    """Per label row and view: whether a feature row lies in ``[t - ttl, t]``.

    Args:
        keys: the join key and ``event_timestamp`` of every feature row.
        rows: label rows with ``ROW_ID``, the join key and ``event_timestamp``.
        ttl: view -> TTL.
        key: the join key column.

    Returns:
        ``ROW_ID`` and one boolean column per view.
    """
    left = rows.select(ROW_ID, key, TIMESTAMP).sort([key, TIMESTAMP])
    right = (
        keys.select(
            pl.col(key).cast(pl.Utf8),
            pl.col(TIMESTAMP).dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        )
        .with_columns(pl.col(TIMESTAMP).alias("__fts"))
        .sort([key, TIMESTAMP])
    )
    joined = left.join_asof(
        right,
        on=TIMESTAMP,
        by=key,
        strategy="backward",
        check_sortedness=False,
    )
    age = pl.col(TIMESTAMP) - pl.col("__fts")
    return joined.select(
        ROW_ID,
        *[(pl.col("__fts").is_not_null() & (age <= t)).alias(v) for v, t in ttl.items()],
    ).sort(ROW_ID)


def _views_of(refs: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ref in refs:
        view, name = ref.split(":", 1)
        out.setdefault(view, []).append(name)
    return out


def _null_frame(cat: Catalog, refs: Sequence[str], n: int) -> dict[str, pa.Array]:
    types = cat.all_features()
    return {r.split(":", 1)[1]: pa.nulls(n, _TYPES[types[r]]) for r in refs}


def training_set(
    client: FeatureClient,
    labels: Any,
    features: Sequence[str] | None,
    missing: str | None,
    timestamp_column: str,
) -> TrainingSet:
    """See :meth:`mlops_kit.features.store.FeatureClient.training_set`."""
    from mlops_kit.features.store import TrainingSet

    settings = client.settings
    missing = missing or settings.features.missing
    if missing not in ("keep", "drop"):
        raise FeatureStoreError(f"missing must be 'keep' or 'drop', got {missing!r}")
    cat = client.catalog
    key = cat.join_key
    refs = cat.resolve_features(list(features or []), settings.features.service_version)
    df = _labels_frame(labels, timestamp_column, key)
    by_view = _views_of(refs)
    base_views = sorted({b for v in by_view for b in cat.needs(v)})
    ttl = {v: timedelta(seconds=cat.ttl_s(v, settings.features.ttl_s)) for v in base_views}
    files = client.source_files()
    keys_tbl = client._keys_in(files)
    keys = pl.from_arrow(keys_tbl)
    assert isinstance(keys, pl.DataFrame)
    if keys.height == 0:
        keys = pl.DataFrame(
            {
                key: pl.Series([], dtype=pl.Utf8),
                TIMESTAMP: pl.Series([], dtype=pl.Datetime("us", "UTC")),
            }
        )
    if settings.features.engine == "ray":
        _whole_seconds(keys, key)
        client._join_ray()
    cov = coverage(keys, df, ttl, key)
    n_views = cov.select(pl.sum_horizontal(base_views).alias("n"))["n"] if base_views else None
    n = df.height
    complete = int((n_views == len(base_views)).sum()) if n_views is not None else n
    none = int((n_views == 0).sum()) if n_views is not None else 0
    accounting: dict[str, Any] = {
        "rows_in": n,
        "complete": complete,
        "partial": n - complete - none,
        "without_features": none,
        "missing_policy": missing,
        "missing_by_view": {v: int((~cov[v]).sum()) for v in base_views},
        "ttl_s": {v: int(t.total_seconds()) for v, t in ttl.items()},
    }
    pieces: list[pa.Table] = []
    label_cols = [c for c in df.columns if c != ROW_ID]
    out_names = [r.split(":", 1)[1] for r in refs]
    dropped = 0
    kept_null = 0
    combos = cov.with_columns(
        pl.concat_str([pl.col(v).cast(pl.Int8).cast(pl.Utf8) for v in base_views]).alias("__c")
        if base_views
        else pl.lit("").alias("__c")
    )
    for (combo,), group in combos.group_by(["__c"], maintain_order=True):
        have = {v for v, bit in zip(base_views, str(combo), strict=True) if bit == "1"}
        rows = df.join(group.select(ROW_ID), on=ROW_ID, how="semi")
        usable = [r for r in refs if cat.needs(r.split(":", 1)[0]) <= have]
        if not have:
            if missing == "drop":
                dropped += rows.height
                continue
            kept_null += rows.height
            table = rows.to_arrow()
            for name, arr in _null_frame(cat, refs, rows.height).items():
                table = table.append_column(name, arr)
            pieces.append(table)
            continue
        joined = client._read_consistently(
            files, lambda rows=rows, usable=usable: _feast_join(client, rows, usable)
        )
        absent = [r for r in refs if r not in usable]
        for name, arr in _null_frame(cat, absent, joined.num_rows).items():
            joined = joined.append_column(name, arr)
        pieces.append(joined)
    schema_cols = [ROW_ID, *label_cols, *out_names]
    if pieces:
        aligned = [_align(cat, p, schema_cols, refs) for p in pieces]
        table = pa.concat_tables(aligned, promote_options="permissive")
        table = table.sort_by(ROW_ID).drop_columns([ROW_ID])
    else:
        empty = df.head(0).to_arrow()
        for name, arr in _null_frame(cat, refs, 0).items():
            empty = empty.append_column(name, arr)
        table = _align(cat, empty, schema_cols, refs).drop_columns([ROW_ID])
    accounting["dropped"] = dropped
    accounting["kept_with_nulls"] = kept_null
    accounting["rows_out"] = table.num_rows
    if accounting["rows_out"] != n - dropped:
        raise FeatureStoreError(f"internal accounting mismatch in the training set: {accounting}")
    return TrainingSet(table=table, accounting=accounting, features=list(refs))


def _align(cat: Catalog, table: pa.Table, columns: list[str], refs: Sequence[str]) -> pa.Table:
    types = cat.all_features()
    by_name = {r.split(":", 1)[1]: _TYPES[types[r]] for r in refs}
    cols = []
    for name in columns:
        col = table[name]
        if name in by_name and col.type != by_name[name]:
            col = col.cast(by_name[name])
        if pa.types.is_large_string(col.type):
            col = col.cast(pa.string())
        if name == TIMESTAMP and col.type != pa.timestamp("us", tz="UTC"):
            col = col.cast(pa.timestamp("us", tz="UTC"))
        cols.append(col)
    return pa.table(cols, names=columns)


def _whole_seconds(keys: pl.DataFrame, key: str) -> None:
    """Refuse, for Feast's Ray offline store, feature rows timed within a second."""
    ts = pl.col(TIMESTAMP)
    odd = keys.filter(ts.dt.truncate("1s") != ts)
    if odd.height:
        first = odd.row(0, named=True)
        raise EngineUnsupportedError(
            f"{odd.height} feature row(s) have an event_timestamp within a second (e.g. "
            f"{first[key]!r} at {first[TIMESTAMP].isoformat()}); Feast's Ray offline store "
            "joins on times floored to the second, so it could join a row from after the "
            "label time. Use features.engine: local for this source, or write feature rows "
            "on whole seconds",
            rows=odd.height,
        )


def _feast_join(client: FeatureClient, rows: pl.DataFrame, refs: list[str]) -> pa.Table:
    """Feast's point-in-time join for ``rows``, one result per label row.

    Feast's offline stores return one row per distinct (entity, timestamp) of the entity
    frame, so label rows that repeat a key would be merged: Feast gets each key once and
    its features are joined back to every label row that has it. For the Ray offline
    store the key's time is floored to the second (the store does so itself).
    """
    key = client.catalog.join_key
    when = TIMESTAMP
    if client.settings.features.engine == "ray":
        when = "__mlk_second"
        rows = rows.with_columns(pl.col(TIMESTAMP).dt.truncate("1s").alias(when))
    on = [key, when]
    unique = rows.select(on).unique(maintain_order=True)
    entity_df = unique.rename({when: TIMESTAMP}) if when != TIMESTAMP else unique
    job = client.store.get_historical_features(entity_df=entity_df.to_pandas(), features=list(refs))
    got = pl.from_arrow(job.to_arrow())
    assert isinstance(got, pl.DataFrame)
    if got.height != unique.height:
        raise FeatureStoreError(
            f"Feast returned {got.height} rows for {unique.height} distinct covered label keys"
        )
    names = [r.split(":", 1)[1] for r in refs]
    got = got.select(
        pl.col(key).cast(rows.schema[key]),
        pl.col(TIMESTAMP).cast(rows.schema[when]).alias(when),
        *names,
    )
    joined = rows.join(got, on=on, how="left")
    if when != TIMESTAMP:
        joined = joined.drop(when)
    if joined.height != rows.height:
        raise FeatureStoreError(
            f"joining Feast's {got.height} results back gave {joined.height} rows for "
            f"{rows.height} label rows"
        )
    return joined.to_arrow()
