"""Transform: cleaning, unit normalisation and per-entity windowed aggregates.

Everything here follows the dataset spec through its :class:`~mlops_kit.etl.layout.RecordLayout`:
how entity ids are cleaned, which unit conversions apply, the grain of the feature rows,
the windows and the statistics of each column.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from mlops_kit.data.expressions import Expression
from mlops_kit.etl.layout import CREATED, TIMESTAMP, RecordLayout, layout_for


def normalise(table: pa.Table, layout: RecordLayout | None = None) -> pa.Table:
    """Clean entity ids and convert values given in another accepted unit.

    A value whose unit field names a unit of the column's ``units.conversions`` is
    converted with that expression; an unknown unit is left for the quality check to
    reject, and a value with no unit field is taken to be in the column's unit.
    """
    layout = layout or layout_for()
    key = layout.key
    ids = table[key]
    clean = layout.spec.entity.clean
    if clean != "none":
        ids = pc.ascii_trim_whitespace(ids)
        if clean == "strip_lower":
            ids = pc.utf8_lower(ids)
        elif clean == "strip_upper":
            ids = pc.utf8_upper(ids)
        table = table.set_column(table.schema.get_field_index(key), key, ids)
    for name, units in layout.units.items():
        if units.column not in table.column_names:
            continue
        unit = table[units.column]
        if unit.null_count == len(unit):
            continue
        value = table[name]
        for unit_name, text in units.conversions.items():
            if text.strip() == "x":
                continue
            converted = Expression.parse(text).arrow({"x": table[name]})
            match = pc.fill_null(pc.equal(unit, unit_name), False)
            value = pc.if_else(match, converted, value)
        table = table.set_column(table.schema.get_field_index(name), name, value)
    return table


def to_readings(table: pa.Table, layout: RecordLayout | None = None) -> pa.Table:
    """Valid rows in the processed schema of the spec (lineage and unit fields dropped)."""
    layout = layout or layout_for()
    schema = layout.reading_schema
    cols = {f.name: pc.cast(table[f.name], f.type) for f in schema}
    return pa.table(cols, schema=schema)


def aggregate(
    readings: pa.Table, layout: RecordLayout | None = None, created_at: datetime | None = None
) -> pa.Table:
    """Per-entity aggregates over the spec's trailing windows, one row per grain bucket.

    A row exists for each (entity, bucket) with at least one record in that bucket; its
    ``event_timestamp`` is the end of the bucket, so every value it holds was observable
    at that time (no leakage into point-in-time joins). A window of length ``w`` covers
    the buckets ending in ``(event_timestamp - w, event_timestamp]``; ``readings`` must
    include that lookback.

    Nulls are not values: a statistic is computed over the values present, and a window
    in which a column has no value (an absent column, or only nulls) gives null, never 0.
    ``<column>_count_<w>`` says how many values each statistic saw; ``last`` is the
    newest value in the window.
    """
    layout = layout or layout_for()
    schema = layout.features_schema
    if readings.num_rows == 0:
        return schema.empty_table()
    spec, key, time = layout.spec, layout.key, layout.time
    stats = spec.aggregations.stats
    columns = spec.aggregated
    cols: dict[str, pa.Array] = {key: readings[key], time: readings[time]}
    for c in columns:
        cols[c] = (
            pc.cast(readings[c], pa.float64())
            if c in readings.column_names
            else pa.nulls(readings.num_rows, pa.float64())
        )
    df = pl.from_arrow(pa.table(cols))
    assert isinstance(df, pl.DataFrame)
    grain = spec.aggregations.grain
    parts: list[pl.Expr] = [pl.len().alias("__n")]
    for c in columns:
        x = pl.col(c)
        parts += [x.count().alias(f"{c}__n"), x.sum().alias(f"{c}__sum")]
        wanted = set(stats[c])
        if "std" in wanted:
            parts.append((x**2).sum().alias(f"{c}__sq"))
        if "max" in wanted:
            parts.append(x.max().alias(f"{c}__max"))
        if "min" in wanted:
            parts.append(x.min().alias(f"{c}__min"))
        if "last" in wanted:
            parts.append(x.sort_by(time).drop_nulls().last().alias(f"{c}__last"))
    partial = (
        df.with_columns(pl.col(time).dt.truncate(grain).alias("__b"))
        .group_by([key, "__b"])
        .agg(*parts)
        .sort([key, "__b"])
    )
    exprs: list[pl.Expr] = []
    for w, length in layout.windows.items():
        direct = length == layout.grain

        def roll(
            name: str, how: str = "sum", length: timedelta = length, direct: bool = direct
        ) -> pl.Expr:
            col = pl.col(name)
            if direct:
                return col
            fn = {"sum": col.rolling_sum_by, "max": col.rolling_max_by, "min": col.rolling_min_by}
            return fn[how]("__b", length).over(key)  # the declared length, not the name

        exprs.append(roll("__n").alias(f"{spec.aggregations.row_count}_{w}"))
        for c in columns:
            n, sm = roll(f"{c}__n"), roll(f"{c}__sum")
            for stat in stats[c]:
                exprs.append(_stat(c, stat, w, length, n, sm, roll, key).alias(f"{c}_{stat}_{w}"))
            exprs.append(n.alias(f"{c}_count_{w}"))
    out = partial.select(key, (pl.col("__b") + layout.grain).alias(TIMESTAMP), *exprs)
    table = out.to_arrow()
    created = pa.array([created_at] * table.num_rows, pa.timestamp("us", tz="UTC"))
    table = table.append_column(CREATED, created)
    return table.select(schema.names).cast(schema)


def _stat(
    c: str, stat: str, w: str, length: object, n: pl.Expr, sm: pl.Expr, roll: object, key: str
) -> pl.Expr:
    """One statistic of column ``c`` over window ``w`` from the buckets' partial sums."""
    assert callable(roll)
    some = n > 0
    if stat == "mean":
        return pl.when(some).then(sm / n).otherwise(None)
    if stat == "std":
        sq = roll(f"{c}__sq")
        var = ((sq - sm * sm / n) / (n - 1)).clip(lower_bound=0.0)
        return pl.when(n > 1).then(var.sqrt()).otherwise(None)
    if stat == "sum":
        return pl.when(some).then(sm).otherwise(None)
    if stat == "count":
        return n
    if stat in ("max", "min"):
        return pl.when(some).then(roll(f"{c}__{stat}", stat)).otherwise(None)
    assert stat == "last"
    value = pl.col(f"{c}__last")
    seen = pl.when(value.is_not_null()).then(pl.col("__b")).otherwise(None)
    last_value = value.forward_fill().over(key)
    last_seen = seen.forward_fill().over(key)
    inside = (pl.col("__b") - last_seen) < pl.lit(length)
    return pl.when(last_seen.is_not_null() & inside).then(last_value).otherwise(None)
