"""Metrics match their definitions; the training table is point-in-time; the split is by time."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_kit.training import DataConfig, TrainingError, time_split
from mlops_kit.training.metrics import binary_metrics, f1, pr_auc, roc_auc

scores = st.lists(st.integers(0, 6).map(float), min_size=2, max_size=40)  # many ties


def _brute_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (pos.size * neg.size))


def _brute_ap(y: np.ndarray, s: np.ndarray) -> float:
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        pred = s >= t
        tp = float((pred & (y == 1)).sum())
        recall = tp / (y == 1).sum()
        ap += (recall - prev_recall) * tp / pred.sum()
        prev_recall = recall
    return ap


@settings(max_examples=60, deadline=None)
@given(scores, st.data())
def test_roc_and_pr_auc_match_their_definitions(s: list[float], data: st.DataObject) -> None:
    y = np.array(data.draw(st.lists(st.integers(0, 1), min_size=len(s), max_size=len(s))))
    x = np.array(s)
    if 0 < y.sum() < y.size:
        assert roc_auc(y, x) == pytest.approx(_brute_auc(y, x))
    else:
        assert np.isnan(roc_auc(y, x))
    if y.sum() > 0:
        assert pr_auc(y, x) == pytest.approx(_brute_ap(y, x))


def test_metrics_agree_with_scikit_learn() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    z = rng.normal(size=500) + y
    z[::7] = np.round(z[::7])  # ties
    p = 1 / (1 + np.exp(-z))
    m = binary_metrics(y, z, threshold=0.5)
    assert m["roc_auc"] == pytest.approx(sk.roc_auc_score(y, z))
    assert m["pr_auc"] == pytest.approx(sk.average_precision_score(y, z))
    assert m["f1"] == pytest.approx(sk.f1_score(y, p >= 0.5))
    assert m["loss"] == pytest.approx(sk.log_loss(y, p))
    assert f1(np.zeros(3), np.zeros(3)) == 0.0


def test_training_table_is_point_in_time(lake_settings, training_table: pa.Table) -> None:
    from mlops_kit.etl import read_table

    t = training_table
    assert {"device_id", "event_timestamp", "label", "feature_timestamp"} <= set(t.column_names)
    assert len(DataConfig().feature_columns) == 36
    assert set(DataConfig().feature_columns) <= set(t.column_names)
    # no feature is from after the reading it labels
    assert pc.all(pc.less_equal(t["feature_timestamp"], t["event_timestamp"])).as_py()
    # and it is the latest feature row at or before the reading, per device
    feats = read_table(lake_settings, "device_features_hourly")
    by_dev: dict[str, list] = {}
    for dev, ts in zip(
        feats["device_id"].to_pylist(), feats["event_timestamp"].to_pylist(), strict=True
    ):
        by_dev.setdefault(dev, []).append(ts)
    readings = read_table(lake_settings, "readings")
    failure = {
        (dev, ts): f
        for dev, ts, f in zip(
            readings["device_id"].to_pylist(),
            readings["ts"].to_pylist(),
            readings["failure"].to_pylist(),
            strict=True,
        )
    }
    rows = t.select(["device_id", "event_timestamp", "feature_timestamp", "label"]).to_pylist()
    for row in rows[:: max(1, len(rows) // 300)]:
        eligible = [ts for ts in by_dev[row["device_id"]] if ts <= row["event_timestamp"]]
        assert row["feature_timestamp"] == max(eligible)
        assert row["label"] == failure[(row["device_id"], row["event_timestamp"])]
    # every labelled reading at or after its device's first feature row, and only those
    first_feature = {dev: min(ts) for dev, ts in by_dev.items()}
    joinable = sum(
        1
        for (dev, ts), f in failure.items()
        if f is not None and dev in first_feature and ts >= first_feature[dev]
    )
    assert len(failure) == readings.num_rows
    assert t.num_rows == joinable
    assert (readings.num_rows, t.num_rows) == (16_784, 16_552)  # the figures of the docs
    # features are those of that row, label is the reading's failure
    first = t.slice(0, 1).to_pylist()[0]
    match = feats.filter(
        pc.and_(
            pc.equal(feats["device_id"], first["device_id"]),
            pc.equal(
                feats["event_timestamp"],
                pa.scalar(first["feature_timestamp"], feats["event_timestamp"].type),
            ),
        )
    ).to_pylist()[0]
    assert first["temperature_mean_24h"] == match["temperature_mean_24h"]
    assert set(pc.unique(t["label"]).to_pylist()) == {0, 1}


def test_time_split_never_mixes_periods(training_table: pa.Table) -> None:
    cfg = DataConfig(validation_fraction=0.25)
    split = time_split(training_table, cfg)
    assert split.train.num_rows + split.validation.num_rows == training_table.num_rows
    last_train = pc.max(split.train["event_timestamp"]).as_py()
    first_val = pc.min(split.validation["event_timestamp"]).as_py()
    assert last_train < first_val == split.cutoff
    assert split.validation.num_rows == pytest.approx(0.25 * training_table.num_rows, rel=0.05)
    gapped = time_split(training_table, DataConfig(validation_fraction=0.25, gap_hours=6))
    embargo = pa.scalar(first_val - timedelta(hours=6), split.train["event_timestamp"].type)
    in_gap = int(pc.sum(pc.greater_equal(split.train["event_timestamp"], embargo)).as_py())
    assert gapped.dropped_for_gap == in_gap > 0
    assert gapped.train.num_rows == split.train.num_rows - in_gap
    assert gapped.validation.num_rows == split.validation.num_rows
    assert gapped.cutoff == split.cutoff
    assert pc.max(gapped.train["event_timestamp"]).as_py() < first_val - timedelta(hours=6)
    with pytest.raises(TrainingError, match="lacks column"):
        time_split(training_table.drop_columns(["label"]), cfg)
    with pytest.raises(TrainingError, match="gap"):
        time_split(training_table, DataConfig(gap_hours=24 * 30))
