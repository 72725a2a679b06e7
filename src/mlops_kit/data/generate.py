"""Synthetic data for any dataset spec: clean typed records, then records as they arrive.

:func:`generate` writes clean records of a :class:`~mlops_kit.data.spec.DatasetSpec` in
its canonical units and :meth:`~mlops_kit.data.spec.DatasetSpec.arrow_schema`: entities
report on a time grid (with a little jitter), each column within its declared range,
values and pattern, nulls only where nullable. Each entity carries a hidden, slowly
varying risk that the numeric columns drift with and the labels follow, so a model over
windowed aggregates can learn them. Nothing here names a dataset or a column.

:func:`to_raw` sends them as a source would (event times in accepted formats, values in
other accepted units, ids the spec's cleaning undoes) and injects bad records, one defect
each. Its :class:`RawBatch` is the ground truth of the ETL: ``records = clean_rows +
quarantined + duplicates_dropped``, the quarantine per reason named by :func:`reasons`.

Example:
    >>> spec = load_spec("machine_telemetry")
    >>> table = generate(spec, SpecGeneratorConfig(n_entities=3, steps=10))
    >>> table.num_rows, table.schema == spec.arrow_schema()
    (30, True)
    >>> raw = to_raw(spec, table, bad_rate=0.3, seed=1)
    >>> quarantined = sum(raw.expected_quarantine().values())
    >>> len(raw.records) == raw.clean_rows + quarantined + raw.duplicates_dropped
    True
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa

from mlops_kit.data.expressions import Expression
from mlops_kit.data.spec import ColumnSpec, DatasetSpec, duration_s
from mlops_kit.errors import ConfigError

REASONS: dict[str, str | None] = {
    "missing_required": "null",
    "out_of_range": "out_of_range",
    "wrong_type": "wrong_type",
    "invalid_timestamp": "invalid_timestamp",
    "unknown_unit": "unaccepted_value",
    "unknown_category": "unaccepted_value",
    "pattern_mismatch": "pattern_mismatch",
    "unknown_entity": "unknown_entity",
    "future_timestamp": "future_timestamp",
    "stale_timestamp": "stale_timestamp",
    "duplicate_key": "duplicate_key",
    "malformed_json": "malformed_json",
    "exact_duplicate": None,
}
"""The ETL's quarantine reason per bad kind (JSON lines, a registry of ids: see
:func:`reasons`); None: an exact copy of a good record, dropped as a duplicate."""

BAD_KINDS: tuple[str, ...] = tuple(REASONS)
"""Every kind of bad record :func:`to_raw` can inject."""

_Rng: TypeAlias = np.random.Generator
_Arr: TypeAlias = np.ndarray
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_PER_US = {"epoch_s": 10**6, "epoch_ms": 1000}
_OFFSETS_MIN = (0, 120, -300, 330)
_BAD_TIMES = ("not a time", "2026-13-45T25:61:00Z", "yesterday")
_MISFITS = ("~", "?!", "-", "0", "a", "A", "a b", "~" * 40)
_TEMPLATES = "{n}-{k:04d} {N}-{k:04d} {k} {k:06d} {l} {L} {l}{k} {L}{k} {L}-{k:03d} {l}_{k:03d}"


def reasons(spec: DatasetSpec, fmt: str = "jsonl") -> dict[str, str | None]:
    """The ETL's reason per bad kind for ``spec`` as ``jsonl`` or ``csv``: an id outside
    ``known_ids.values`` is an ``unaccepted_value``, a broken CSV record a ``ragged_row``."""
    out = dict(REASONS)
    if spec.entity.known_ids.source == "values":
        out["unknown_entity"] = "unaccepted_value"
    if fmt == "csv":
        out["malformed_json"] = "ragged_row"
    return out


@dataclass(frozen=True)
class SpecGeneratorConfig:
    """What to generate.

    Attributes:
        n_entities: entities (with ``known_ids.source: values``, at most those values).
        start: first grid time (timezone-aware; read in whole seconds).
        freq_s: seconds between two records of an entity; ``steps``: records per entity.
        seed: every output is a pure function of the spec and the config.
        positive_rate, null_rate: share of positive labels; of nulls per nullable column.
    """

    n_entities: int = 20
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
    freq_s: int = 300
    steps: int = 288
    seed: int = 7
    positive_rate: float = 0.1
    null_rate: float = 0.02

    def __post_init__(self) -> None:
        problems = []
        if min(self.n_entities, self.steps, self.freq_s) < 1:
            problems.append("n_entities, steps and freq_s must be at least 1")
        if self.start.utcoffset() is None:
            problems.append("start must be timezone-aware (tzinfo=timezone.utc)")
        if not 0 < self.positive_rate < 1:
            problems.append(f"positive_rate must lie in (0, 1), not {self.positive_rate}")
        if not 0 <= self.null_rate < 1:
            problems.append(f"null_rate must lie in [0, 1), not {self.null_rate}")
        if problems:
            raise ConfigError("invalid generator config: " + "; ".join(problems), problems=problems)


# ---------------------------------------------------------------- entities
def clean_id(spec: DatasetSpec, raw: str) -> str:
    """An entity id as the spec's ``entity.clean`` leaves it."""
    mode = spec.entity.clean
    text = raw if mode == "none" else raw.strip()
    return {"strip_lower": text.lower(), "strip_upper": text.upper()}.get(mode, text)


def entity_ids(spec: DatasetSpec, n_entities: int) -> list[str]:
    """The ids :func:`generate` writes: ``<entity>-0000``.. cleaned, or ``known_ids.values``."""
    ent = spec.entity
    if ent.known_ids.source == "values":
        ids = list(dict.fromkeys(clean_id(spec, str(v)) for v in ent.known_ids.values))
        return ids[:n_entities]
    return [clean_id(spec, f"{ent.name}-{i:04d}") for i in range(n_entities)]


def known_ids(spec: DatasetSpec, n_entities: int) -> pa.Table:
    """The registry of known entity ids: one column named after the join key."""
    return pa.table({spec.entity.join_key: pa.array(entity_ids(spec, n_entities), pa.string())})


# ---------------------------------------------------------------- clean records
def generate(spec: DatasetSpec, config: SpecGeneratorConfig | None = None) -> pa.Table:
    """The clean records of ``n_entities`` entities over ``steps`` grid times, by time;
    :class:`ConfigError` names a column it cannot fill and why."""
    cfg = config or SpecGeneratorConfig()
    ids = entity_ids(spec, cfg.n_entities)
    if not ids:
        raise ConfigError("entity.known_ids.values is empty: list the known ids to generate them")
    n_e, steps = len(ids), cfg.steps
    rng = np.random.default_rng(cfg.seed)
    grid = math.floor(cfg.start.timestamp()) + np.arange(steps, dtype=np.int64) * cfg.freq_s
    secs = grid[None, :] + rng.integers(0, cfg.freq_s // 10 + 1, (n_e, steps))
    risk = _risk(rng, n_e, steps, 4 * duration_s(spec.aggregations.grain) / cfg.freq_s)
    positive = risk > np.quantile(risk, 1.0 - cfg.positive_rate)
    schema = spec.arrow_schema()
    order = np.lexsort((np.repeat(np.arange(n_e), steps), secs.ravel()))
    arrays = [
        pa.array(np.repeat(np.array(ids, dtype=object), steps)[order], pa.string()),
        pa.array(secs.ravel()[order] * 1_000_000, pa.int64()).cast(schema[1].type),
    ]
    for name, col in spec.columns.items():
        nulls = None
        if name in spec.label_columns:
            values = _label(name, col, positive)
        else:
            values = _values(name, col, rng, risk, secs)
            if col.nullable and cfg.null_rate > 0:
                nulls = (rng.random((n_e, steps)) < cfg.null_rate).ravel()[order]
        typ = schema.field(name).type
        raw_type = pa.int64() if col.type == "timestamp" else typ
        arrays.append(pa.array(values.reshape(-1)[order], raw_type, mask=nulls).cast(typ))
    return pa.Table.from_arrays(arrays, schema=schema)


def _risk(rng: np.random.Generator, n_e: int, steps: int, tau: float) -> np.ndarray:
    """A standard-normal AR(1) process per entity, correlated over ``tau`` steps."""
    phi = math.exp(-1.0 / max(tau, 1.0))
    risk = rng.normal(0.0, math.sqrt(1.0 - phi * phi), (n_e, steps))
    risk[:, 0] = rng.normal(0.0, 1.0, n_e)
    for t in range(1, steps):
        risk[:, t] += phi * risk[:, t - 1]
    return risk


def _bounds(col: ColumnSpec) -> tuple[float, float]:
    """The range values are drawn from: the declared one, 100 wide where a side is open."""
    lo, hi = col.min, col.max
    if lo is None:
        return (0.0, 100.0) if hi is None else (hi - 100.0, hi)
    return (lo, lo + 100.0) if hi is None else (lo, hi)


def _options(col: ColumnSpec) -> list[Any]:
    """The declared values of a column, typed as records carry them."""
    cast = {"int": int, "float": float, "bool": bool}.get(col.type, str)
    return list(dict.fromkeys(cast(v) for v in col.values or []))


def _signal(rng: _Rng, risk: _Arr, secs: _Arr, lo: float, hi: float) -> _Arr:
    """Per-entity level + daily cycle + the risk's drift + noise, in units of the range."""
    n_e, span = risk.shape[0], hi - lo
    base = lo + span * rng.uniform(0.35, 0.65, (n_e, 1))
    phase = rng.uniform(0.0, 2 * math.pi, (n_e, 1))
    daily = 0.05 * span * np.sin(2 * math.pi * (secs % 86400) / 86400 + phase)
    drift = float(rng.choice([-1.0, 1.0])) * 0.12 * span * risk
    return base + daily + drift + rng.normal(0.0, 0.03 * span, risk.shape)


def _values(name: str, col: ColumnSpec, rng: _Rng, risk: _Arr, secs: _Arr) -> _Arr:
    shape = risk.shape
    lo, hi = _bounds(col)
    if col.values is not None and col.type != "timestamp":
        options = np.array(_options(col), dtype=object)
        return np.repeat(options[rng.integers(0, len(options), (shape[0], 1))], shape[1], axis=1)
    if col.type == "float":
        margin = 1e-6 * (hi - lo)  # a converted value read back stays within the range
        return np.clip(np.round(_signal(rng, risk, secs, lo, hi), 4), lo + margin, hi - margin)
    if col.type == "int":
        low, high = math.ceil(lo), math.floor(hi)
        if low > high:
            raise ConfigError(f"columns.{name}: no integer lies in [{col.min}, {col.max}]")
        if (col.max is None and col.min is not None) or high - low >= 10_000:
            high = high if col.max is not None else low + 10**9  # a counter
            room = high - low
            first = low + rng.integers(0, max(1, room // 10), (shape[0], 1))
            steps = rng.integers(1, max(1, min(100, room // (2 * shape[1]))) + 1, shape)
            steps[:, 0] = 0
            return np.minimum(first + np.cumsum(steps, axis=1), high)
        return np.clip(np.rint(_signal(rng, risk, secs, lo, hi)), low, high).astype(np.int64)
    if col.type == "bool":
        return rng.random(shape) < np.clip(0.5 + 0.2 * risk, 0.05, 0.95)
    if col.type == "string":
        texts = np.array(_texts(name, col), dtype=object)
        return texts[rng.integers(0, len(texts), shape)]
    return (secs - rng.integers(0, 86_401, shape)) * 1_000_000


def _texts(name: str, col: ColumnSpec) -> list[str]:
    """1000 values of a text column: the first template whose every value fits the pattern."""
    for template in _TEMPLATES.split():
        texts = [_fill(template, name, k) for k in range(1000)]
        if col.pattern is None or all(re.fullmatch(col.pattern, t) for t in texts):
            return texts
    shapes = ", ".join(repr(_fill(t, name, 42)) for t in _TEMPLATES.split())
    msg = f"columns.{name}: cannot generate text matching the pattern {col.pattern!r}"
    hint = "loosen the pattern to accept one, list the column's values, or fill it yourself"
    raise ConfigError(f"{msg}; the generator writes text like {shapes}: {hint}", column=name)


def _fill(template: str, name: str, k: int) -> str:
    letters = chr(97 + k % 26) + chr(97 + (k // 26) % 26)
    return template.format(n=name, N=name.upper(), k=k, l=letters, L=letters.upper())


def _label(name: str, col: ColumnSpec, positive: np.ndarray) -> np.ndarray:
    """False / True, the first / second of the values, else 0 / 1 (or min / max)."""
    if col.type == "bool":
        return positive
    if col.type == "category" or col.values is not None:
        options = _options(col)
        if len(options) < 2:
            raise ConfigError(f"columns.{name}: a label needs two values (negative, positive)")
        return np.where(positive, options[1], options[0]).astype(object)
    neg, pos = 0.0, 1.0
    if (col.min is not None and col.min > 0) or (col.max is not None and col.max < 1):
        if col.min is None or col.max is None:
            raise ConfigError(f"columns.{name}: the label excludes 0/1; declare min and max")
        neg, pos = col.min, col.max
    return np.where(positive, pos, neg).astype(np.int64 if col.type == "int" else np.float64)


# ---------------------------------------------------------------- raw records
@dataclass
class RawBatch:
    """Records as a source sends them, with the ground truth of what the ETL must do.

    Per record: its bad kind (None when good) and the clean row it was made from; the
    records at ``malformed`` are written broken (cut JSON, a CSV row short of a field).
    """

    records: list[dict[str, Any]]
    kinds: list[str | None]
    sources: list[int]
    malformed: set[int]
    fields: list[str]
    reasons: dict[str, str | None]

    def add(self, record: dict[str, Any], source: int, kind: str | None) -> None:
        self.records.append(record)
        self.sources.append(source)
        self.kinds.append(kind)

    @property
    def clean_rows(self) -> int:
        """Records the ETL loads."""
        return sum(k is None for k in self.kinds)

    @property
    def injected(self) -> Counter[str]:
        """Bad records by kind (exact duplicates included)."""
        return Counter(k for k in self.kinds if k is not None)

    @property
    def kept(self) -> list[int]:
        """Rows of the clean table the ETL loads, in record order."""
        return [s for s, k in zip(self.sources, self.kinds, strict=True) if k is None]

    @property
    def duplicates_dropped(self) -> int:
        return self.injected["exact_duplicate"]

    def expected_quarantine(self, fmt: str = "jsonl") -> dict[str, int]:
        """Quarantined records per ETL reason when sent as ``jsonl`` or ``csv``."""
        by_kind = {**self.reasons, "malformed_json": "ragged_row"} if fmt == "csv" else self.reasons
        out = Counter({by_kind[k]: 0 for k in self.injected})
        for kind, n in self.injected.items():
            out[by_kind[kind]] += n
        return {r: n for r, n in sorted(out.items(), key=str) if r is not None}

    @property
    def lines(self) -> list[str]:
        """One JSON text per record (a broken one cut in half)."""
        texts = [json.dumps(rec) for rec in self.records]
        return [t[: len(t) // 2] if i in self.malformed else t for i, t in enumerate(texts)]

    def to_bytes(self) -> bytes:
        """The records as JSON lines."""
        return ("\n".join(self.lines) + "\n").encode()

    def to_csv_bytes(self) -> bytes:
        """The records as CSV with a header (an absent or null value is an empty field)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.fields)
        for i, rec in enumerate(self.records):
            row = [_cell(rec.get(f)) for f in self.fields]
            writer.writerow(row[:-1] if i in self.malformed else row)
        return buf.getvalue().encode()


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def _iso(dt: datetime, offset_min: int = 0) -> str:
    local = dt.astimezone(timezone(timedelta(minutes=offset_min)))
    return local.isoformat(timespec="microseconds" if dt.microsecond else "seconds")


def _linear(text: str) -> tuple[Expression, float, float] | None:
    """(expression, a, b) of a conversion read as ``a * x + b``; None for the identity."""
    expr = Expression.parse(text)
    b, f1 = expr.value({"x": 0.0}), expr.value({"x": 1024.0})
    a = (f1 - b) / 1024.0 if b is not None and f1 is not None else 0.0
    return (expr, a, b) if a and b is not None and (a, b) != (1.0, 0.0) else None


def _misfit(col: ColumnSpec) -> str | None:
    """A text the column's pattern does not find (the ETL searches the pattern)."""
    if col.type != "string" or col.pattern is None or col.values is not None:
        return None
    return next((t for t in _MISFITS if not re.search(col.pattern, t)), None)


def _mutable(col: ColumnSpec) -> bool:
    """True when a second valid value can always be written in place of any value."""
    if col.values is not None and col.type != "timestamp":
        return len(_options(col)) >= 2
    lo, hi = _bounds(col)
    return col.type not in ("float", "int") or hi - lo >= (1 if col.type == "int" else 1e-6)


def _targets(spec: DatasetSpec) -> dict[str, list[str]]:
    """The fields each bad kind can hit (none: the kind does not apply to the spec)."""
    key, ts, cols = spec.entity.join_key, spec.event_time.column, spec.columns
    mutable = [n for n, c in cols.items() if _mutable(c)]

    def of(*types: str) -> list[str]:
        return [n for n, c in cols.items() if c.type in types]

    return {
        "missing_required": [key, ts, *(n for n, c in cols.items() if not c.nullable)],
        "out_of_range": [
            n for n in of("float", "int") if (cols[n].min, cols[n].max) != (None, None)
        ],
        "wrong_type": of("float", "int", "bool"),
        "invalid_timestamp": [ts, *of("timestamp")],
        "unknown_unit": [n for n, c in cols.items() if c.units is not None],
        "unknown_category": [n for n in of("category", "string") if cols[n].values],
        "pattern_mismatch": [n for n, c in cols.items() if _misfit(c) is not None],
        "unknown_entity": [key] if spec.entity.known_ids.source != "none" else [],
        "future_timestamp": [ts],
        "stale_timestamp": [ts],
        "duplicate_key": [n for n in mutable if n not in spec.label_columns] or mutable,
        "malformed_json": [key],
        "exact_duplicate": [key],
    }


def applicable_kinds(spec: DatasetSpec) -> tuple[str, ...]:
    """The bad kinds ``spec`` has fields for, in :data:`BAD_KINDS` order."""
    targets = _targets(spec)
    return tuple(k for k in BAD_KINDS if targets[k])


def _within(col: ColumnSpec, v: float) -> bool:
    return (col.min is None or v >= col.min) and (col.max is None or v <= col.max)


def _unlisted(known: set[str], base: str) -> str:
    while base in known:
        base += "_"
    return base


class _Writer:
    """Turns clean rows into raw records and corrupts them, drawing from one generator."""

    def __init__(self, spec: DatasetSpec, seed: int, times: list[datetime]) -> None:
        self.spec, self.rng = spec, np.random.default_rng(seed)
        self.key, self.ts = spec.entity.join_key, spec.event_time.column
        self.formats: list[str] = list(spec.event_time.formats) or ["iso8601"]
        self.targets = _targets(spec)
        self.units: dict[str, list[tuple[str, Expression, float, float]]] = {}
        for name, col in spec.columns.items():
            if col.units is not None:
                conv = [(u, _linear(t)) for u, t in col.units.conversions.items() if u != col.unit]
                self.units[name] = [(u, *lin) for u, lin in conv if lin is not None]
        et, self.first = spec.event_time, min(times, default=None)
        self.future: datetime | None = None
        self.stale: datetime | None = None
        with contextlib.suppress(ValueError, OverflowError):
            self.future = max(times) + timedelta(3650, et.max_future_skew_s)
        with contextlib.suppress(ValueError, OverflowError):
            self.stale = min(times) - timedelta(et.max_age_days + 2)

    def pick(self, options: Sequence[Any]) -> Any:
        return options[int(self.rng.integers(0, len(options)))]

    def record(self, row: dict[str, Any]) -> dict[str, Any]:
        """The clean row as a record: the event time in an accepted format, canonical units."""
        dt = row[self.ts]
        us = (dt - _EPOCH) // timedelta(microseconds=1)
        fmt = self.pick([f for f in self.formats if us % _PER_US.get(f, 1) == 0] or self.formats)
        when = us * 1000 if fmt == "epoch_ns" else us // _PER_US.get(fmt, 1)
        rec = {self.key: row[self.key], self.ts: when}
        if fmt == "iso8601":
            rec[self.ts] = _iso(dt, self.pick(_OFFSETS_MIN))
        for name, col in self.spec.columns.items():
            v = row[name]
            rec[name] = _iso(v) if col.type == "timestamp" and v is not None else v
        return rec

    def arrive(self, rec: dict[str, Any], unit_rate: float, dirty_rate: float) -> dict[str, Any]:
        """A good record as sent: some values in another unit, some ids unclean."""
        out = dict(rec)
        for name, options in self.units.items():
            if self.rng.random() < unit_rate and options and out[name] is not None:
                unit, expr, a, b = self.pick(options)
                x = (out[name] - b) / a
                back, col = expr.value({"x": x}), self.spec.columns[name]
                exact = back is not None and math.isclose(back, out[name], abs_tol=1e-9)
                if exact and _within(col, back) and col.units is not None:
                    out[name], out[col.units.column] = x, unit
        if self.rng.random() < dirty_rate and self.spec.entity.clean != "none":
            ident = out[self.key]
            cased = {"strip_lower": ident.upper(), "strip_upper": ident.lower()}
            out[self.key] = f"  {cased.get(self.spec.entity.clean, ident)} "
        return out

    def conflicting(self, rec: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
        """Another valid record with the same key: one value changed."""
        name = self.pick(self.targets["duplicate_key"])
        col, old = self.spec.columns[name], row[name]
        if col.values is not None and col.type != "timestamp":
            new: Any = next(v for v in _options(col) if v != old)
        elif col.type in ("float", "int"):
            new = _shift(col, old)
        elif col.type == "bool":
            new = not old
        elif col.type == "timestamp":
            new = _iso((old or row[self.ts]) + timedelta(seconds=1))
        else:
            new = next(t for t in _texts(name, col) if t != old)
        return {**rec, name: new}

    def corrupt(self, rec: dict[str, Any], row: dict[str, Any], kind: str, i: int) -> None:
        """Give ``rec`` the one defect of ``kind``, in canonical units (in place)."""
        name = self.pick(self.targets[kind])
        col = self.spec.columns.get(name)
        if kind == "missing_required":
            del rec[name]
        elif kind == "wrong_type":
            rec[name] = "n/a"
        elif kind == "invalid_timestamp":
            rec[name] = self.pick(_BAD_TIMES)
        elif kind == "unknown_entity":
            known = {clean_id(self.spec, str(v)) for v in self.spec.entity.known_ids.values}
            unknown = clean_id(self.spec, f"{self.spec.entity.name}-unknown-{i:06d}")
            rec[name] = _unlisted(known, unknown)
        elif kind in ("future_timestamp", "stale_timestamp"):
            anchor = self.future if kind == "future_timestamp" else self.stale
            assert anchor is not None and self.first is not None
            rec[name] = _iso(anchor + (row[self.ts] - self.first))
        elif col is None:
            raise AssertionError(f"{kind} hits a value column, not {name}")
        elif kind == "out_of_range":
            rec[name] = _outside(col, self.rng)
        elif kind == "unknown_unit" and col.units is not None:
            rec[col.units.column] = _unlisted(set(col.units.conversions), "unknown")
            rec[name] = _shift(col, None) if rec[name] is None else rec[name]
        elif kind == "unknown_category":
            rec[name] = _unlisted({str(v) for v in col.values or []}, "unknown")
        elif kind == "pattern_mismatch":
            rec[name] = _misfit(col)


def _shift(col: ColumnSpec, old: float | None) -> float | int:
    """A valid value other than ``old``: a quarter of the range away (the middle for none)."""
    lo, hi = _bounds(col)
    if col.type == "int":
        if old is None:
            return (math.ceil(lo) + math.floor(hi)) // 2
        step = max(1, round((hi - lo) / 4))
        return int(old + step if _within(col, old + step) else old - step)
    if old is None:
        return (lo + hi) / 2
    up = old + (hi - lo) / 4
    return up if _within(col, up) else old - (hi - lo) / 4


def _outside(col: ColumnSpec, rng: np.random.Generator) -> float | int:
    """A value well outside the declared range (in the column's own unit)."""
    lo, hi = col.min, col.max
    d = math.ceil(((hi - lo) if lo is not None and hi is not None else 100.0) / 2 + 1)
    v = hi + d if hi is not None and (lo is None or rng.random() < 0.5) else lo - d  # type: ignore[operator]
    return int(v) if col.type == "int" else round(v, 4)


def to_raw(
    spec: DatasetSpec,
    table: pa.Table,
    *,
    bad_rate: float = 0.0,
    seed: int = 11,
    unit_rate: float = 0.0,
    kinds: Sequence[str] | None = None,
    dirty_id_rate: float = 0.0,
) -> RawBatch:
    """Records as a source sends the clean ``table``, ``bad_rate`` of its rows made bad.

    ``kinds`` (default :func:`applicable_kinds`) are dealt out evenly over the bad rows. A
    bad row becomes one record with one defect, in canonical units; ``exact_duplicate``
    and ``duplicate_key`` send the good record and a copy (identical, or the same key with
    a value changed). Good records send ``unit_rate`` of the values of columns with units
    in another accepted unit (the unit field set; without it a value is in the column's
    unit) and ``dirty_id_rate`` of their ids padded and recased as the spec's cleaning
    undoes. Raises :class:`ConfigError` for a kind ``spec`` has no field for.
    """
    rows = table.to_pylist()
    writer = _Writer(spec, seed, [r[spec.event_time.column] for r in rows])
    dead = {"future_timestamp": writer.future is None, "stale_timestamp": writer.stale is None}
    applicable = {k for k in applicable_kinds(spec) if not (rows and dead.get(k))}
    chosen = [k for k in BAD_KINDS if k in applicable] if kinds is None else list(kinds)
    wrong = [k for k in chosen if k not in applicable]
    if wrong:
        raise ConfigError(
            f"cannot inject {wrong} into {spec.name}: it has fields for {sorted(applicable)} "
            f"(of {', '.join(BAD_KINDS)})"
        )
    rng = writer.rng
    bad_at = np.flatnonzero(rng.random(len(rows)) < bad_rate) if chosen else np.empty(0, int)
    deal = rng.permutation(bad_at.size)
    kind_of = {int(i): chosen[int(j) % len(chosen)] for i, j in zip(bad_at, deal, strict=True)}
    units = [c.units.column for c in spec.columns.values() if c.units is not None]
    fields = [spec.entity.join_key, spec.event_time.column, *spec.columns, *units]
    batch = RawBatch([], [], [], set(), fields, reasons(spec))
    for i, row in enumerate(rows):
        kind = kind_of.get(i)
        rec = writer.record(row)
        if kind is None or kind in ("exact_duplicate", "duplicate_key"):
            good = writer.arrive(rec, unit_rate, dirty_id_rate)
            batch.add(good, i, None)
            if kind is not None:
                copy = dict(good) if kind == "exact_duplicate" else writer.conflicting(rec, row)
                batch.add(copy, i, kind)
            continue
        if kind == "malformed_json":
            batch.malformed.add(len(batch.records))
        else:
            writer.corrupt(rec, row, kind, i)
        batch.add(rec, i, kind)
    return batch
