"""Transform: cleaning, unit normalisation and per-device windowed aggregates."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from mlops_kit.data.schema import READING_SCHEMA, SENSORS, count_columns, feature_columns

FEATURES_SCHEMA = pa.schema(
    [
        pa.field("device_id", pa.string(), nullable=False),
        pa.field("event_timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("readings_1h", pa.int64()),
        pa.field("readings_24h", pa.int64()),
        *[pa.field(name, pa.float64()) for name in feature_columns()],
        *[pa.field(name, pa.int64()) for name in count_columns()],
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
    ]
)
"""Hourly per-device features; ``event_timestamp`` is the end of the hour they describe.

``readings_<w>`` counts the readings of the window; ``<sensor>_count_<w>`` counts the
values the sensor's statistics were computed from (nulls are not values)."""


def normalise(table: pa.Table) -> pa.Table:
    """Trim device ids and convert temperatures to degrees Celsius.

    Records with ``temperature_unit`` ``F`` or ``K`` are converted; unknown units are left
    for the quality check to reject.
    """
    dev = pc.ascii_trim_whitespace(table["device_id"])
    temp = table["temperature"]
    unit = table["temperature_unit"] if "temperature_unit" in table.column_names else None
    if unit is not None and unit.null_count < len(unit):
        is_f = pc.fill_null(pc.equal(unit, "F"), False)
        is_k = pc.fill_null(pc.equal(unit, "K"), False)
        celsius_f = pc.divide(pc.multiply(pc.subtract(temp, 32.0), 5.0), 9.0)
        celsius_k = pc.subtract(temp, 273.15)
        temp = pc.if_else(is_f, celsius_f, pc.if_else(is_k, celsius_k, temp))
    table = table.set_column(table.schema.get_field_index("device_id"), "device_id", dev)
    return table.set_column(table.schema.get_field_index("temperature"), "temperature", temp)


PARQUET_OPTIONS: dict = {
    "compression": "snappy",
    "use_dictionary": ["device_id"],
    "write_statistics": ["device_id", "ts"],
}
"""How processed readings are written: snappy, a dictionary for the low-cardinality id
only (dictionaries on float sensor columns cost time and gain nothing), and statistics
on the columns readers filter on."""


def to_readings(table: pa.Table) -> pa.Table:
    """Valid rows in the processed reading schema (lineage and unit columns dropped)."""
    cols = {name: table[name] for name in READING_SCHEMA.names}
    cols["failure"] = pc.cast(cols["failure"], pa.int8())
    return pa.table(cols, schema=READING_SCHEMA)


def hourly_features(readings: pa.Table, created_at: object = None) -> pa.Table:
    """Per-device hourly aggregates over the trailing 1 h and 24 h.

    A row exists for each (device, hour) with at least one reading in that hour; its
    ``event_timestamp`` is the end of the hour, so every value it holds was observable
    at that time (no leakage into point-in-time joins). The 24 h window covers the 24
    hours ending at ``event_timestamp``; ``readings`` must include that lookback.

    Nulls are not values: a statistic is computed over the values present, and a window
    in which a sensor has no value (an absent column, or only nulls) gives null, never 0.
    ``<sensor>_count_<w>`` says how many values each statistic saw.
    """
    if readings.num_rows == 0:
        return FEATURES_SCHEMA.empty_table()
    cols = {"device_id": readings["device_id"], "ts": readings["ts"]}
    for s in SENSORS:
        cols[s] = (
            readings[s] if s in readings.column_names else pa.nulls(readings.num_rows, pa.float64())
        )
    df = pl.from_arrow(pa.table(cols))
    assert isinstance(df, pl.DataFrame)
    partial = (
        df.with_columns(pl.col("ts").dt.truncate("1h").alias("hour"))
        .group_by(["device_id", "hour"])
        .agg(
            pl.len().alias("n"),
            *[pl.col(s).count().alias(f"{s}__n") for s in SENSORS],
            *[pl.col(s).sum().alias(f"{s}__sum") for s in SENSORS],
            *[(pl.col(s) ** 2).sum().alias(f"{s}__sq") for s in SENSORS],
            *[pl.col(s).max().alias(f"{s}__max") for s in SENSORS],
        )
        .sort(["device_id", "hour"])
    )
    exprs: list[pl.Expr] = [
        pl.col("n").alias("readings_1h"),
        pl.col("n").rolling_sum_by("hour", "24h").over("device_id").alias("readings_24h"),
    ]
    for s in SENSORS:
        n, sm, sq, mx = (
            pl.col(f"{s}__n"),
            pl.col(f"{s}__sum"),
            pl.col(f"{s}__sq"),
            pl.col(f"{s}__max"),
        )
        exprs += _stats(s, "1h", n, sm, sq, mx)
        n24 = n.rolling_sum_by("hour", "24h").over("device_id")
        sm24 = sm.rolling_sum_by("hour", "24h").over("device_id")
        sq24 = sq.rolling_sum_by("hour", "24h").over("device_id")
        mx24 = mx.rolling_max_by("hour", "24h").over("device_id")
        exprs += _stats(s, "24h", n24, sm24, sq24, mx24)
    out = partial.select(
        "device_id", (pl.col("hour") + pl.duration(hours=1)).alias("event_timestamp"), *exprs
    )
    table = out.to_arrow()
    created = pa.array([created_at] * table.num_rows, pa.timestamp("us", tz="UTC"))
    table = table.append_column("created_at", created)
    return table.select(FEATURES_SCHEMA.names).cast(FEATURES_SCHEMA)


def _stats(s: str, w: str, n: pl.Expr, sm: pl.Expr, sq: pl.Expr, mx: pl.Expr) -> list[pl.Expr]:
    """Mean, std and max from a window's value count, sum, sum of squares and max."""
    mean = pl.when(n > 0).then(sm / n).otherwise(None)
    var = ((sq - sm * sm / n) / (n - 1)).clip(lower_bound=0.0)
    std = pl.when(n > 1).then(var.sqrt()).otherwise(None)
    top = pl.when(n > 0).then(mx).otherwise(None)
    return [
        mean.alias(f"{s}_mean_{w}"),
        std.alias(f"{s}_std_{w}"),
        top.alias(f"{s}_max_{w}"),
        n.alias(f"{s}_count_{w}"),
    ]
