"""Input drift: the served feature values against the training data, as a PSI per feature.

The reference is the profile :meth:`~mlops_kit.model.preprocess.Preprocessor.fit` records
in ``preprocess.json`` (decile bins of each feature's training values, the share of rows
in each, the null share). A :class:`DriftMonitor` counts the served values into the same
bins, so its memory is fixed whatever the traffic, and reports the population stability
index of each feature::

    monitor = DriftMonitor(predictor.preprocessor.profile)
    monitor.observe({"temperature_mean_1h": [61.2, 58.0], ...})   # what was scored
    monitor.psi()                        # {"temperature_mean_1h": 0.02, ...}

The population stability index of an expected distribution ``e`` and an actual one ``a``
over the same bins (proportions, each floored at :data:`PSI_EPSILON` so that an empty bin
counts as rare rather than impossible) is::

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

The usual reading: below 0.1 the population is stable, 0.1 to 0.25 it moved a little,
above 0.25 it moved. Nulls are a bin of their own: a feature the online store stops
filling shows as drift. :func:`prediction_psi` compares two score histograms the same way
(the canary's against the stable's).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlops_kit.model.preprocess import FeatureProfile, raw_features
from mlops_kit.serving.errors import MonitoringError

PSI_EPSILON = 1e-4
"""Floor of each bin's proportion in :func:`psi`."""
PSI_STABLE = 0.1
"""Below this PSI a population is usually read as stable."""
PSI_SHIFTED = 0.25
"""Above this PSI a population is usually read as shifted."""


def psi(
    expected: Sequence[float] | np.ndarray,
    actual: Sequence[float] | np.ndarray,
    epsilon: float = PSI_EPSILON,
) -> float:
    """Population stability index of two distributions over the same bins.

    Args:
        expected: proportions of the reference, one per bin.
        actual: proportions observed, one per bin.
        epsilon: floor of each proportion (an empty bin would make the index infinite).
    """
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def prediction_psi(expected_counts: Sequence[int], actual_counts: Sequence[int]) -> float:
    """PSI of two score histograms over the same bins (e.g. stable vs canary).

    Args:
        expected_counts: scores per bin of the reference (the stable).
        actual_counts: scores per bin of the compared side (the canary).

    Raises:
        MonitoringError: the histograms have different bins, a count is negative, or one
            side counted nothing.
    """
    if len(expected_counts) != len(actual_counts):
        raise MonitoringError(
            f"prediction histograms have {len(expected_counts)} and {len(actual_counts)} "
            "bins: count both sides into the same bins",
            field="prediction_counts",
        )
    sides = {"expected": expected_counts, "actual": actual_counts}
    shares = {}
    for side, counts in sides.items():
        c = np.asarray(counts, dtype=np.float64)
        if (c < 0).any() or not np.isfinite(c).all():
            raise MonitoringError(
                f"{side} prediction counts must be finite and >= 0, got {list(counts)}",
                field=f"{side}_counts",
            )
        if c.sum() == 0:
            raise MonitoringError(
                f"{side} prediction histogram is empty: compare windows with scores on both sides",
                field=f"{side}_counts",
            )
        shares[side] = c / c.sum()
    return psi(shares["expected"], shares["actual"])


class DriftMonitor:
    """Counts served feature values into the training bins and reports PSI per feature.

    Thread-safe; memory is one count per bin per feature.

    Args:
        profile: the training profile (``Preprocessor.profile``); ``None`` for a bundle
            written before profiles existed: the monitor then has no reference, observes
            nothing and reports no PSI.
    """

    def __init__(self, profile: Sequence[FeatureProfile] | None) -> None:
        self._profile: tuple[FeatureProfile, ...] = tuple(profile or ())
        self._lock = threading.Lock()
        self._counts = [np.zeros(p.n_bins + 1, dtype=np.int64) for p in self._profile]
        self._samples = 0

    @property
    def has_reference(self) -> bool:
        """True when the bundle carried a training profile to compare with."""
        return bool(self._profile)

    @property
    def features(self) -> tuple[str, ...]:
        """The features monitored, in model order."""
        return tuple(p.feature for p in self._profile)

    @property
    def samples(self) -> int:
        """Rows observed since the start or the last :meth:`reset` (the longest column of
        each :meth:`observe`)."""
        return self._samples

    def observe(self, columns: Mapping[str, Any] | Any) -> None:
        """Count served values.

        Args:
            columns: the raw feature values scored. A mapping of feature name to values:
                each monitored feature present is counted from its own column (nulls count
                as nulls; columns may differ in length, e.g. only the values a request
                gave); others are ignored. Or anything :meth:`Preprocessor.transform`
                accepts, with every monitored feature. Nothing is counted without a
                reference.

        Raises:
            ModelError: a table or array lacks a monitored feature.
        """
        if not self._profile:
            return
        if isinstance(columns, Mapping):
            values = {
                name: raw_features({name: columns[name]}, (name,))[:, 0]
                for name in self.features
                if name in columns
            }
        else:
            x = raw_features(columns, self.features)
            values = {name: x[:, i] for i, name in enumerate(self.features)}
        counts = [
            (i, p.counts(values[p.feature]))
            for i, p in enumerate(self._profile)
            if p.feature in values
        ]
        rows = max((v.size for v in values.values()), default=0)
        with self._lock:
            for i, new in counts:
                self._counts[i] += new
            self._samples += rows

    def psi(self) -> dict[str, float]:
        """PSI of each feature's served values against its training profile.

        Only features with a value observed (nothing without a reference). Few values give
        a noisy index: judge it over hundreds of rows or more.
        """
        with self._lock:
            counts = [c.copy() for c in self._counts]
        return {
            p.feature: psi((*p.fractions, p.null_fraction), c / c.sum())
            for p, c in zip(self._profile, counts, strict=True)
            if c.sum() > 0
        }

    def reset(self) -> None:
        """Forget every observed row (start a new monitoring window)."""
        with self._lock:
            for c in self._counts:
                c[:] = 0
            self._samples = 0


__all__ = [
    "PSI_EPSILON",
    "PSI_SHIFTED",
    "PSI_STABLE",
    "DriftMonitor",
    "prediction_psi",
    "psi",
]
