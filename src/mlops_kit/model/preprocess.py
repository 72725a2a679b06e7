"""Feature preprocessing shared by training, ONNX parity checks and serving.

A :class:`Preprocessor` holds the feature order, the training means and the scales. It is
fitted once on the training split, saved as ``preprocess.json`` beside the model, and its
:meth:`Preprocessor.transform` is the only code that turns raw feature values into model
inputs, so training and serving cannot skew. It needs numpy only (no torch), so a serving
process loads it without the training stack.

Missing values (NaN or null, e.g. the standard deviation of a single reading) become the
training mean, that is 0 after standardisation.
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


@dataclass(frozen=True)
class Preprocessor:
    """Standardisation with a fixed feature order.

    ``transform(x) = (x - means) / scales`` in float64, NaN replaced by 0, cast to float32.

    Attributes:
        feature_names: model input columns, in order.
        means: training mean of each feature (NaN ignored).
        scales: training standard deviation of each feature (1.0 where it is 0 or undefined).
        n_samples: rows the statistics were computed on.
    """

    feature_names: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    n_samples: int = 0
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        n = len(self.feature_names)
        if len(self.means) != n or len(self.scales) != n:
            raise ModelError(
                f"preprocessor has {n} features but {len(self.means)} means and "
                f"{len(self.scales)} scales"
            )
        if any(not (s > 0 and math.isfinite(s)) for s in self.scales):
            raise ModelError("preprocessor scales must be finite and > 0")

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @classmethod
    def fit(cls, data: Any, feature_names: Sequence[str]) -> Preprocessor:
        """Compute means and scales of ``feature_names`` over ``data``.

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
        return np.ascontiguousarray(out, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "feature_names": list(self.feature_names),
            "means": list(self.means),
            "scales": list(self.scales),
            "n_samples": self.n_samples,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessor:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelError(
                f"preprocessing statistics have format_version {version!r}; this mlops_kit "
                f"reads version {FORMAT_VERSION}"
            )
        return cls(
            feature_names=tuple(data["feature_names"]),
            means=tuple(float(v) for v in data["means"]),
            scales=tuple(float(v) for v in data["scales"]),
            n_samples=int(data.get("n_samples", 0)),
            metadata=dict(data.get("metadata", {})),
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


__all__ = ["FORMAT_VERSION", "Preprocessor"]
