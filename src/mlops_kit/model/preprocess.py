"""Feature preprocessing shared by training, ONNX parity checks and serving.

A :class:`Preprocessor` holds the feature order, the training means and the scales. It is
fitted once on the training split, saved as ``preprocess.json`` beside the model, and its
:meth:`Preprocessor.transform` is the only code that turns raw feature values into model
inputs, so training and serving cannot skew. It needs numpy only (no torch), so a serving
process loads it without the training stack.

Missing values (NaN or null, e.g. the standard deviation of a single reading) become the
training mean, that is 0 after standardisation.

:meth:`Preprocessor.fit` also records a :class:`FeatureProfile` of each feature (decile bins
of the training values and the share of rows in each, the null share): the reference that
:class:`~mlops_kit.serving.drift.DriftMonitor` compares served inputs with. Statistics
written before profiles existed read back with ``profile=None``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops_kit.model.errors import ModelError

FORMAT_VERSION = 1
"""Version of the JSON layout written by :meth:`Preprocessor.to_dict`."""

_MIN_SCALE = 1e-12
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_DECILES = tuple(q / 10 for q in range(1, 10))


@dataclass(frozen=True)
class FeatureProfile:
    """The distribution of one feature in the training data, as fixed bins.

    Bin ``i`` holds the values ``edges[i-1] < x <= edges[i]``; the first bin starts at
    minus infinity and the last ends at plus infinity, so there are ``len(edges) + 1``
    bins. Null, NaN and infinite values are counted apart, as nulls.

    Attributes:
        feature: the feature's name.
        edges: the deciles of the finite training values, increasing, duplicates dropped
            (a feature with few distinct values has fewer bins).
        fractions: share of the training rows in each bin.
        null_fraction: share of the training rows that were null (``sum(fractions) +
            null_fraction == 1``).
    """

    feature: str
    edges: tuple[float, ...]
    fractions: tuple[float, ...]
    null_fraction: float

    def __post_init__(self) -> None:
        where = f"profile of feature {self.feature!r}"
        if len(self.fractions) != len(self.edges) + 1:
            raise ModelError(
                f"{where} has {len(self.edges)} edges and {len(self.fractions)} fractions; "
                "it needs one fraction per bin (edges + 1): fit the preprocessor again"
            )
        if not all(math.isfinite(e) for e in self.edges) or any(
            b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)
        ):
            raise ModelError(f"{where}: edges must be finite and strictly increasing")
        shares = (*self.fractions, self.null_fraction)
        if not all(0.0 <= f <= 1.0 for f in shares) or abs(sum(shares) - 1.0) > 1e-6:
            raise ModelError(
                f"{where}: fractions and null_fraction must lie in [0, 1] and sum to 1"
            )

    @property
    def n_bins(self) -> int:
        """Bins of finite values (the null count comes after them)."""
        return len(self.edges) + 1

    def counts(self, values: Any) -> np.ndarray:
        """Rows of ``values`` per bin, then the nulls: int64, length :attr:`n_bins` + 1."""
        return _bin_counts(self.edges, np.asarray(values, dtype=np.float64).ravel())

    @classmethod
    def fit(cls, feature: str, values: Any) -> FeatureProfile:
        """The profile of ``values`` (float64; NaN, inf and null count as nulls)."""
        x = np.asarray(values, dtype=np.float64).ravel()
        if x.size == 0:
            raise ModelError(f"cannot profile feature {feature!r}: it has no rows")
        finite = x[np.isfinite(x)]
        edges = np.unique(np.quantile(finite, _DECILES)) if finite.size else np.empty(0)
        edges = edges[np.isfinite(edges)]
        profile_edges = tuple(float(e) for e in edges)
        shares = _bin_counts(profile_edges, x) / x.size
        return cls(
            feature=feature,
            edges=profile_edges,
            fractions=tuple(float(f) for f in shares[:-1]),
            null_fraction=float(shares[-1]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": list(self.edges),
            "fractions": list(self.fractions),
            "null_fraction": self.null_fraction,
        }

    @classmethod
    def from_dict(cls, feature: str, data: Mapping[str, Any]) -> FeatureProfile:
        try:
            return cls(
                feature=feature,
                edges=tuple(float(v) for v in data["edges"]),
                fractions=tuple(float(v) for v in data["fractions"]),
                null_fraction=float(data["null_fraction"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(
                f"profile of feature {feature!r} is malformed ({exc!r}): it needs edges, "
                "fractions and null_fraction; fit the preprocessor again"
            ) from exc


@dataclass(frozen=True)
class Preprocessor:
    """Standardisation with a fixed feature order.

    ``transform(x) = (x - means) / scales`` in float64, NaN replaced by 0, cast to float32.

    Attributes:
        feature_names: model input columns, in order.
        means: training mean of each feature (NaN ignored).
        scales: training standard deviation of each feature (1.0 where it is 0 or undefined).
        n_samples: rows the statistics were computed on.
        profile: the training distribution of each feature, in feature order (``None`` for
            statistics written before profiles existed).
    """

    feature_names: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    n_samples: int = 0
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)
    profile: tuple[FeatureProfile, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.feature_names)
        if len(self.means) != n or len(self.scales) != n:
            raise ModelError(
                f"preprocessor has {n} features but {len(self.means)} means and "
                f"{len(self.scales)} scales"
            )
        if any(not (s > 0 and math.isfinite(s)) for s in self.scales):
            raise ModelError("preprocessor scales must be finite and > 0")
        if self.profile is not None:
            profiled = tuple(p.feature for p in self.profile)
            if profiled != self.feature_names:
                raise ModelError(
                    f"preprocessor profile covers {list(profiled)[:3]}... but the features "
                    f"are {list(self.feature_names)[:3]}...: one profile per feature, in "
                    "feature order (fit the preprocessor again)"
                )

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @classmethod
    def fit(cls, data: Any, feature_names: Sequence[str]) -> Preprocessor:
        """Compute means, scales and the profile of ``feature_names`` over ``data``.

        Args:
            data: anything :meth:`transform` accepts (a table with those columns, or an array
                whose columns are already in ``feature_names`` order).
            feature_names: the input columns, in model order.
        """
        names = tuple(feature_names)
        x = _as_matrix(data, names)
        if x.shape[0] == 0:
            raise ModelError("cannot fit preprocessing statistics on an empty table")
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(x)
            counts = finite.sum(axis=0)
            filled = np.where(finite, x, 0.0)
            means = np.divide(
                filled.sum(axis=0), counts, where=counts > 0, out=np.zeros(len(names))
            )
            centred = np.where(finite, x - means, 0.0)
            var = np.divide(
                (centred**2).sum(axis=0), counts, where=counts > 0, out=np.zeros(len(names))
            )
        scales = np.sqrt(var)
        scales = np.where(scales > _MIN_SCALE, scales, 1.0)
        return cls(
            feature_names=names,
            means=tuple(float(m) for m in means),
            scales=tuple(float(s) for s in scales),
            n_samples=int(x.shape[0]),
            profile=tuple(FeatureProfile.fit(n, x[:, i]) for i, n in enumerate(names)),
        )

    def transform(self, data: Any) -> np.ndarray:
        """Model inputs for ``data``: a C-contiguous float32 array of shape (rows, features).

        Args:
            data: a ``pyarrow.Table`` or ``RecordBatch``, a polars or pandas DataFrame, a
                mapping of column name to values (one row: scalars; several: sequences), or a
                2-D array (or 1-D for one row) whose columns are in :attr:`feature_names` order.
                Extra columns of a table are ignored.

        Raises:
            ModelError: a feature column is missing or an array has the wrong width.
        """
        x = _as_matrix(data, self.feature_names)
        means = np.asarray(self.means, dtype=np.float64)
        scales = np.asarray(self.scales, dtype=np.float64)
        out = (x - means) / scales
        out[~np.isfinite(out)] = 0.0
        # a finite value far from the mean may standardize beyond float32: saturate it
        # rather than let it become an infinity the model turns into NaN
        np.clip(out, -_FLOAT32_MAX, _FLOAT32_MAX, out=out)
        return np.ascontiguousarray(out, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe statistics; ``profile`` maps each feature to its bins (when fitted)."""
        out: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "feature_names": list(self.feature_names),
            "means": list(self.means),
            "scales": list(self.scales),
            "n_samples": self.n_samples,
            "metadata": dict(self.metadata),
        }
        if self.profile is not None:
            out["profile"] = {p.feature: p.to_dict() for p in self.profile}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessor:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelError(
                f"preprocessing statistics have format_version {version!r}; this mlops_kit "
                f"reads version {FORMAT_VERSION}"
            )
        names = tuple(data["feature_names"])
        return cls(
            feature_names=names,
            means=tuple(float(v) for v in data["means"]),
            scales=tuple(float(v) for v in data["scales"]),
            n_samples=int(data.get("n_samples", 0)),
            metadata=dict(data.get("metadata", {})),
            profile=_read_profile(data.get("profile"), names),
        )

    def to_json(self) -> str:
        # repr of a float round-trips exactly, so the JSON holds the statistics bit for bit
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> Preprocessor:
        return cls.from_dict(json.loads(text))

    def save(self, uri: str) -> None:
        """Write the statistics as JSON to a storage URI (atomically)."""
        from mlops_kit import storage

        storage.write_bytes(uri, self.to_json().encode())

    @classmethod
    def load(cls, uri: str) -> Preprocessor:
        """Read statistics written by :meth:`save`."""
        from mlops_kit import storage

        return cls.from_json(storage.read_bytes(uri))


def _read_profile(
    data: Mapping[str, Any] | None, names: tuple[str, ...]
) -> tuple[FeatureProfile, ...] | None:
    if data is None:
        return None
    missing = [n for n in names if n not in data]
    if missing:
        raise ModelError(
            f"preprocessing profile lacks the feature(s) {missing}: fit the preprocessor "
            "again, or remove the profile key to serve without drift monitoring"
        )
    return tuple(FeatureProfile.from_dict(n, data[n]) for n in names)


def _bin_counts(edges: Sequence[float], x: np.ndarray) -> np.ndarray:
    finite = np.isfinite(x)
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), x[finite], side="left")
    counts = np.bincount(index, minlength=len(edges) + 1).astype(np.int64)
    return np.append(counts, np.int64(x.size - int(finite.sum())))


def raw_features(data: Any, feature_names: Sequence[str]) -> np.ndarray:
    """The raw values of ``feature_names`` in ``data``: float64, shape (rows, features).

    Accepts what :meth:`Preprocessor.transform` accepts; nulls become NaN. Nothing is
    standardised (drift monitoring bins the raw values).

    Raises:
        ModelError: a feature column is missing or an array has the wrong width.
    """
    return _as_matrix(data, tuple(feature_names))


def _as_matrix(data: Any, names: tuple[str, ...]) -> np.ndarray:
    if isinstance(data, np.ndarray) or (
        isinstance(data, Sequence) and not isinstance(data, (str, bytes))
    ):
        x = np.asarray(data, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != len(names):
            raise ModelError(
                f"expected an array of shape (rows, {len(names)}) in the order "
                f"{list(names)[:3]}...; got shape {x.shape}"
            )
        return x
    columns = _columns(data)
    missing = [n for n in names if n not in columns]
    if missing:
        raise ModelError(f"input lacks {len(missing)} feature column(s) the model needs: {missing}")
    cols = [_column_values(columns[n]) for n in names]
    lengths = {len(c) for c in cols}
    if len(lengths) > 1:
        raise ModelError(f"feature columns have different lengths: {sorted(lengths)}")
    return np.stack(cols, axis=1)


def _columns(data: Any) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        return data
    try:
        import pyarrow as pa

        if isinstance(data, (pa.Table, pa.RecordBatch)):
            return {name: data.column(name) for name in data.column_names}
    except ImportError:  # pragma: no cover - pyarrow is a core dependency
        pass
    if hasattr(data, "columns") and hasattr(data, "__getitem__"):  # polars / pandas
        return {str(c): data[c] for c in data.columns}
    raise ModelError(
        f"cannot read features from {type(data).__name__}: pass a pyarrow Table, a polars or "
        "pandas DataFrame, a mapping of columns or a 2-D array"
    )


def _column_values(col: Any) -> np.ndarray:
    if hasattr(col, "to_numpy") and not isinstance(col, np.ndarray):
        try:
            import pyarrow as pa

            if isinstance(col, (pa.Array, pa.ChunkedArray)):
                col = col.cast(pa.float64()).fill_null(float("nan"))
                return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
        except ImportError:  # pragma: no cover
            pass
        col = col.to_numpy()
    arr = np.asarray(col, dtype=object if _has_none(col) else None)
    if arr.dtype == object:
        arr = np.array([np.nan if v is None else v for v in arr.ravel()], dtype=np.float64)
    return np.atleast_1d(arr.astype(np.float64))


def _has_none(col: Any) -> bool:
    if isinstance(col, (list, tuple)):
        return any(v is None for v in col)
    return col is None


__all__ = ["FORMAT_VERSION", "FeatureProfile", "Preprocessor", "raw_features"]
