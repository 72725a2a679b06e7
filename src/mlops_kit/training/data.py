"""Training input: the training-set table, its time-based split and its arrays.

The trainer reads one table (Parquet, given as a storage URI or as a ``pyarrow.Table``)
with the feature columns named in :class:`~mlops_kit.training.config.DataConfig`, a
label column (0/1), an ``event_timestamp`` and the entity's join key. Any source that writes
such a table plugs in: :func:`build_training_table` builds one from the local lake, and a
feature store's point-in-time join gives the same shape.

Validation takes the latest rows in time (never a random sample), so the model is
always scored on a period after the one it learned from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops_kit import storage
from mlops_kit.training.config import DataConfig
from mlops_kit.training.errors import TrainingError

if TYPE_CHECKING:
    from mlops_kit.config import Settings


def build_training_table(
    settings: Settings,
    *,
    feature_table: pa.Table | None = None,
    readings: pa.Table | None = None,
) -> pa.Table:
    """A point-in-time correct training table from the local lake.

    Every labelled record is joined, per entity, with the latest feature row whose
    ``event_timestamp`` is at or before the record's event time (a backward as-of join),
    so no feature value postdates the label it predicts. Records older than their
    entity's first feature row have nothing to join and are dropped. The dataset spec of
    the settings names the entity, the event time, the label (its first) and the
    features (:func:`~mlops_kit.training.config.default_feature_columns`).

    Args:
        settings: :class:`~mlops_kit.config.Settings` whose lake holds the ETL's
            ``readings`` and feature tables.
        feature_table: use these feature rows instead of reading them from the lake.
        readings: use these records instead of reading them from the lake.

    Returns:
        Columns: the join key, ``event_timestamp`` (the record's time), every feature
        column, ``feature_timestamp`` (the end of the bucket the features describe) and
        ``label`` (the record's label, int8), sorted by time then entity.
    """
    import polars as pl

    from mlops_kit.data.spec import spec_of
    from mlops_kit.etl import read_table
    from mlops_kit.training.config import default_feature_columns

    spec = spec_of(settings)
    key, time = spec.entity.join_key, spec.event_time.column
    if not spec.labels:
        raise TrainingError(f"dataset {spec.name} declares no label: add one under labels")
    label = spec.labels[0].column
    feats = feature_table if feature_table is not None else read_table(settings, spec.feature_table)
    reads = readings if readings is not None else read_table(settings, "readings")
    names = default_feature_columns(spec)
    lf = pl.from_arrow(reads.select([key, time, label]))
    rf = pl.from_arrow(feats.select([key, "event_timestamp", *names]))
    assert isinstance(lf, pl.DataFrame) and isinstance(rf, pl.DataFrame)
    left = lf.filter(pl.col(label).is_not_null()).sort([key, time])
    right = rf.rename({"event_timestamp": "feature_timestamp"}).sort([key, "feature_timestamp"])
    joined = left.join_asof(
        right,
        left_on=time,
        right_on="feature_timestamp",
        by=key,
        strategy="backward",
        check_sortedness=False,
    )
    out = (
        joined.filter(pl.col("feature_timestamp").is_not_null())
        .select(
            pl.col(key),
            pl.col(time).alias("event_timestamp"),
            *[pl.col(n) for n in names],
            pl.col("feature_timestamp"),
            pl.col(label).cast(pl.Int8).alias("label"),
        )
        .sort(["event_timestamp", key])
    )
    return out.to_arrow()


def write_training_table(table: pa.Table, uri: str) -> None:
    """Write a training table as one Parquet file at ``uri`` (atomically)."""
    storage.write_parquet(uri, table)


def read_training_table(uri: str, config: DataConfig | None = None) -> pa.Table:
    """Read a training table (one Parquet file, or every ``.parquet`` file under a prefix).

    Raises:
        TrainingError: nothing is there, or a column named in ``config`` is missing.
    """
    if storage.exists(uri) and uri.endswith(".parquet"):
        table = storage.read_parquet(uri)
    else:
        files = storage.list_files(uri, suffix=".parquet")
        if not files:
            if storage.exists(uri):
                files = [uri]
            else:
                raise TrainingError(f"no training table at '{uri}' (a Parquet file or a prefix)")
        table = storage.read_parquet(files)
    if config is not None:
        check_columns(table, config)
    return table


def check_columns(table: pa.Table, config: DataConfig) -> None:
    """Raise :class:`TrainingError` naming every configured column the table lacks."""
    wanted = [config.label_column, config.timestamp_column, *config.feature_columns]
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise TrainingError(
            f"training table lacks column(s) {missing}; it has {table.column_names}. "
            "Set data.feature_columns / data.label_column / data.timestamp_column in the config."
        )


@dataclass(frozen=True)
class Split:
    """A time-based train/validation split."""

    train: pa.Table
    validation: pa.Table
    cutoff: Any
    """First timestamp of the validation period."""
    dropped_for_gap: int = 0


def time_split(table: pa.Table, config: DataConfig) -> Split:
    """Split by time: the latest ``validation_fraction`` of rows validate.

    Rows that share the cut-off timestamp all go to validation, so no instant is on both
    sides. Training rows within ``gap_hours`` before the cut-off are dropped.

    Raises:
        TrainingError: one side of the split would be empty.
    """
    check_columns(table, config)
    ts_col = config.timestamp_column
    table = table.sort_by([(ts_col, "ascending")])
    n = table.num_rows
    if n < 2:
        raise TrainingError(f"training table has {n} row(s); at least 2 are needed to split")
    ts = table[ts_col]
    cut_index = min(n - 1, max(1, round(n * (1.0 - config.validation_fraction))))
    cutoff = ts[cut_index]
    is_val = pc.greater_equal(ts, cutoff)
    validation = table.filter(is_val)
    train = table.filter(pc.invert(is_val))
    dropped = 0
    if config.gap_hours > 0 and train.num_rows:
        start = cutoff.as_py() - timedelta(hours=config.gap_hours)
        keep = pc.less(train[ts_col], pa.scalar(start, ts.type))
        dropped = train.num_rows - int(pc.sum(keep).as_py() or 0)
        train = train.filter(keep)
    if train.num_rows == 0 or validation.num_rows == 0:
        raise TrainingError(
            f"time split left {train.num_rows} training and {validation.num_rows} validation "
            f"rows (cut-off {cutoff.as_py()}, gap {config.gap_hours} h): use more data, another "
            "data.validation_fraction or a smaller data.gap_hours"
        )
    return Split(train=train, validation=validation, cutoff=cutoff.as_py(), dropped_for_gap=dropped)


def labels(table: pa.Table, config: DataConfig) -> np.ndarray:
    """The label column as float32 (0/1).

    Raises:
        TrainingError: a label is null or not 0/1.
    """
    col = table[config.label_column]
    if col.null_count:
        raise TrainingError(f"label column '{config.label_column}' has {col.null_count} null(s)")
    y = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float32)
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        raise TrainingError(
            f"label column '{config.label_column}' must hold 0/1; found {np.unique(y[bad])[:5]}"
        )
    return y


def synthetic_training_table(
    n_rows: int,
    feature_columns: list[str] | None = None,
    *,
    seed: int = 0,
    positive_rate: float = 0.15,
    n_devices: int = 100,
) -> pa.Table:
    """A training table with a learnable signal, for benchmarks and tests (no lake needed).

    Features are correlated Gaussians on the raw scale of the sensors; the label follows a
    logistic model of a few of them, thresholded to reach ``positive_rate``.
    """
    from datetime import datetime, timezone

    from mlops_kit.training.config import default_feature_columns

    names = feature_columns or default_feature_columns()
    rng = np.random.default_rng(seed)
    k = len(names)
    latent = rng.normal(size=(n_rows, 4))
    mix = rng.normal(size=(4, k))
    x = latent @ mix + 0.5 * rng.normal(size=(n_rows, k))
    offsets = rng.uniform(-50, 200, size=k)
    spreads = rng.uniform(0.1, 50, size=k)
    raw = x * spreads + offsets
    score = 1.5 * latent[:, 0] - 1.0 * latent[:, 1] + 0.7 * latent[:, 2] ** 2
    score = score + rng.logistic(size=n_rows) * 0.8
    y = (score >= np.quantile(score, 1.0 - positive_rate)).astype(np.int8)
    start = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() * 1_000_000)
    ts = start + np.arange(n_rows, dtype=np.int64) * 1_000_000
    cols: dict[str, Any] = {
        "device_id": pa.array([f"dev-{i % n_devices:04d}" for i in range(n_rows)]),
        "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
    }
    for j, name in enumerate(names):
        cols[name] = pa.array(raw[:, j])
    cols["label"] = pa.array(y)
    return pa.table(cols)


__all__ = [
    "Split",
    "build_training_table",
    "check_columns",
    "labels",
    "read_training_table",
    "synthetic_training_table",
    "time_split",
    "write_training_table",
]
