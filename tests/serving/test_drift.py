"""Input drift: the training profile recorded by the preprocessor, served values counted
into its bins, the population stability index per feature and of two score histograms."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pyarrow as pa
import pytest

from mlops_kit.model.errors import ModelError
from mlops_kit.model.preprocess import FeatureProfile, Preprocessor
from mlops_kit.serving.drift import PSI_EPSILON, DriftMonitor, prediction_psi, psi
from mlops_kit.serving.errors import MonitoringError

NAMES = ("temperature", "humidity", "errors")
N = 50_000


def _training(rng: np.random.Generator, n: int = N) -> dict[str, np.ndarray]:
    humidity = rng.uniform(20, 80, n)
    humidity[rng.random(n) < 0.05] = np.nan
    return {
        "temperature": rng.normal(60, 5, n),
        "humidity": humidity,
        "errors": rng.poisson(0.7, n).astype(np.float64),  # mostly 0 and 1: few distinct bins
    }


@pytest.fixture(scope="module")
def pre() -> Preprocessor:
    return Preprocessor.fit(_training(np.random.default_rng(1)), NAMES)


def test_fit_records_decile_bins_of_the_training_data(pre: Preprocessor) -> None:
    assert pre.profile is not None
    temperature, humidity, errors = pre.profile
    assert temperature.feature == "temperature" and temperature.n_bins == 10
    assert temperature.null_fraction == 0.0
    assert temperature.fractions == pytest.approx([0.1] * 10, abs=1e-4)
    assert temperature.edges[4] == pytest.approx(60, abs=0.2)  # the median
    assert humidity.null_fraction == pytest.approx(0.05, abs=0.005)
    assert sum(humidity.fractions) + humidity.null_fraction == pytest.approx(1.0)
    assert errors.edges == (0.0, 1.0, 2.0)  # repeated deciles are one edge
    assert errors.fractions[0] == pytest.approx(math.exp(-0.7), abs=0.01)  # x <= 0
    # a value on an edge falls in the bin below it, as Prometheus's le buckets count
    assert list(errors.counts([0.0, 0.5, 1.0, 2.0, 9.0, None, np.inf])) == [1, 2, 1, 1, 2]


def test_a_feature_without_values_profiles_as_all_nulls() -> None:
    profile = FeatureProfile.fit("empty", [np.nan, np.nan])
    assert (profile.edges, profile.fractions, profile.null_fraction) == ((), (0.0,), 1.0)
    one = FeatureProfile.fit("one", [3.0])
    assert (one.edges, one.fractions) == ((3.0,), (1.0, 0.0))


def test_the_same_distribution_is_stable(pre: Preprocessor) -> None:
    monitor = DriftMonitor(pre.profile)
    served = _training(np.random.default_rng(2))
    for start in range(0, N, 1000):  # served in batches
        monitor.observe({k: v[start : start + 1000] for k, v in served.items()})
    assert monitor.samples == N
    result = monitor.psi()
    assert set(result) == set(NAMES)
    assert all(0 <= v < 0.1 for v in result.values()), result
    assert max(result.values()) < 0.01


def test_a_shifted_feature_is_reported_and_the_others_are_not(pre: Preprocessor) -> None:
    monitor = DriftMonitor(pre.profile)
    served = _training(np.random.default_rng(3))
    served["temperature"] = served["temperature"] + 5  # one standard deviation hotter
    monitor.observe(served)
    result = monitor.psi()
    assert result["temperature"] > 0.25, result
    assert result["humidity"] < 0.1 and result["errors"] < 0.1, result


def test_nulls_the_training_data_did_not_have_are_drift(pre: Preprocessor) -> None:
    monitor = DriftMonitor(pre.profile)
    served = _training(np.random.default_rng(4), 4000)
    temperature = served["temperature"].astype(object)
    temperature[::2] = None  # the online store stopped filling half of them
    monitor.observe({**served, "temperature": list(temperature)})
    assert monitor.psi()["temperature"] > 0.25


def test_values_above_the_training_range_are_drift() -> None:
    pre = Preprocessor.fit({"x": [0.0, 1.0, 2.0] * 100}, ["x"])
    monitor = DriftMonitor(pre.profile)
    monitor.observe({"x": [5.0] * 300})  # the last bin held no training row
    assert monitor.psi()["x"] > 0.25


def test_columns_are_counted_each_on_its_own(pre: Preprocessor) -> None:
    monitor = DriftMonitor(pre.profile)
    monitor.observe({"temperature": [60.0, 61.0, 59.0], "humidity": [50.0], "other": ["x"]})
    assert monitor.samples == 3
    assert set(monitor.psi()) == {"temperature", "humidity"}  # no errors value seen yet
    monitor.observe(pa.table({n: [1.0, 2.0] for n in NAMES}))
    assert monitor.samples == 5 and set(monitor.psi()) == set(NAMES)
    with pytest.raises(ModelError, match=r"lacks 1 feature column.*\['errors'\]"):
        monitor.observe(pa.table({"temperature": [1.0], "humidity": [1.0]}))
    monitor.reset()
    assert monitor.samples == 0 and monitor.psi() == {}


def test_observations_from_several_threads_are_all_counted(pre: Preprocessor) -> None:
    monitor = DriftMonitor(pre.profile)
    batch = {n: [1.0] * 50 for n in NAMES}

    def work() -> None:
        for _ in range(100):
            monitor.observe(batch)

    pool = [threading.Thread(target=work) for _ in range(6)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert monitor.samples == 6 * 100 * 50


def test_a_bundle_without_a_profile_gives_a_monitor_without_reference(
    pre: Preprocessor, tmp_path
) -> None:
    old = pre.to_dict()
    del old["profile"]  # statistics written before profiles existed
    path = tmp_path / "preprocess.json"
    path.write_text(json.dumps(old))
    loaded = Preprocessor.load(f"file://{path}")
    assert loaded.profile is None
    assert loaded.transform({n: [1.0] for n in NAMES}).shape == (1, 3)
    monitor = DriftMonitor(loaded.profile)
    assert not monitor.has_reference and monitor.features == ()
    monitor.observe({n: [1.0, 2.0] for n in NAMES})
    assert monitor.psi() == {} and monitor.samples == 0


def test_the_profile_round_trips_through_preprocess_json(pre: Preprocessor, tmp_path) -> None:
    uri = f"file://{tmp_path}/bundle/preprocess.json"
    pre.save(uri)
    written = json.loads((tmp_path / "bundle" / "preprocess.json").read_text())
    assert list(written["profile"]) == list(NAMES)
    assert set(written["profile"]["humidity"]) == {"edges", "fractions", "null_fraction"}
    back = Preprocessor.load(uri)
    assert back == pre and back.profile == pre.profile
    served = _training(np.random.default_rng(5), 5000)
    a, b = DriftMonitor(pre.profile), DriftMonitor(back.profile)
    a.observe(served)
    b.observe(served)
    assert a.psi() == b.psi()


def test_a_malformed_profile_is_refused_naming_the_feature(pre: Preprocessor) -> None:
    data = pre.to_dict()
    data["profile"]["humidity"]["fractions"] = [0.5, 0.5]
    with pytest.raises(ModelError, match="profile of feature 'humidity' has 9 edges and 2"):
        Preprocessor.from_dict(data)
    data = pre.to_dict()
    del data["profile"]["errors"]
    with pytest.raises(ModelError, match=r"lacks the feature\(s\) \['errors'\]"):
        Preprocessor.from_dict(data)
    data = pre.to_dict()
    data["profile"]["temperature"]["null_fraction"] = 0.5
    with pytest.raises(ModelError, match="sum to 1"):
        Preprocessor.from_dict(data)
    data = pre.to_dict()
    del data["profile"]["temperature"]["edges"]
    with pytest.raises(ModelError, match="'temperature' is malformed"):
        Preprocessor.from_dict(data)
    with pytest.raises(ModelError, match="strictly increasing"):
        FeatureProfile("x", (2.0, 1.0), (0.2, 0.3, 0.5), 0.0)


def test_psi_is_the_documented_formula() -> None:
    expected, actual = [0.5, 0.5, 0.0], [0.9, 0.1, 0.0]
    by_hand = 0.4 * math.log(0.9 / 0.5) + (-0.4) * math.log(0.1 / 0.5)
    assert psi(expected, actual) == pytest.approx(by_hand)
    assert psi(expected, expected) == 0.0
    floor = PSI_EPSILON
    assert psi([1.0, 0.0], [0.0, 1.0]) == pytest.approx(2 * (1 - floor) * math.log(1 / floor))


def test_prediction_psi_compares_two_histograms() -> None:
    stable = [10, 20, 30, 20, 10, 5, 3, 1, 1, 0]
    assert prediction_psi(stable, stable) == 0.0
    assert prediction_psi(stable, [2 * c for c in stable]) == pytest.approx(0.0)
    shifted = [0, 1, 1, 3, 5, 10, 20, 30, 20, 10]
    assert prediction_psi(stable, shifted) > 0.25
    with pytest.raises(MonitoringError, match="10 and 9 bins"):
        prediction_psi(stable, stable[:-1])
    with pytest.raises(MonitoringError, match="actual prediction histogram is empty"):
        prediction_psi(stable, [0] * 10)
    with pytest.raises(MonitoringError, match="expected prediction counts must be finite"):
        prediction_psi([-1, *stable[1:]], stable)
