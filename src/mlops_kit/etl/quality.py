"""Declarative quality rules: split rows into valid and quarantined, one reason per row.

A rule set is data (pydantic models, loadable from YAML) and is evaluated with vectorised
Arrow compute kernels. Rules are checked in order; a row rejected by several rules is
quarantined with the first one's reason. After the row rules, uniqueness on the key is
checked among the rows that passed: an exact copy of a kept row is dropped and counted
as a duplicate; a different record with the same key is quarantined as
``duplicate_key``.

Example (YAML)::

    rules:
      - {kind: not_null, columns: [device_id, ts, temperature]}
      - {kind: range, column: temperature, min: -40, max: 150}
      - {kind: accepted_values, column: temperature_unit, values: [C, F, K]}
      - {kind: freshness, column: ts, max_future_skew_s: 300, max_age_days: 3650}
      - {kind: referential, column: device_id, entity: device}
      - {kind: pattern, column: site, pattern: "^[A-Z]{3}-[0-9]+$"}
    unique_key: [device_id, ts]

:func:`default_rules` derives the rule set of a dataset spec from its column facts.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from mlops_kit.data.spec import DatasetSpec, default_spec


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NotNull(_Rule):
    """The columns must hold a value."""

    kind: Literal["not_null"] = "not_null"
    columns: list[str]


class Range(_Rule):
    """Values must lie within [min, max] (nulls pass; pair with not_null)."""

    kind: Literal["range"] = "range"
    column: str
    min: float | None = None
    max: float | None = None
    unit: str | None = None


class AcceptedValues(_Rule):
    """Values must be one of a set (nulls pass)."""

    kind: Literal["accepted_values"] = "accepted_values"
    column: str
    values: list[str | int | float]


class Freshness(_Rule):
    """Event times may not lie in the future (beyond a skew) nor be older than an age."""

    kind: Literal["freshness"] = "freshness"
    column: str
    max_future_skew_s: int = 300
    max_age_days: int = 3650


class Referential(_Rule):
    """Values must exist in a reference table (the known devices), given at run time."""

    kind: Literal["referential"] = "referential"
    column: str
    reference: str = "devices"
    entity: str = "entity"


class Pattern(_Rule):
    """Text values must match a regular expression (nulls pass)."""

    kind: Literal["pattern"] = "pattern"
    column: str
    pattern: str


Rule = Annotated[
    NotNull | Range | AcceptedValues | Freshness | Referential | Pattern,
    Field(discriminator="kind"),
]


class RuleSet(BaseModel):
    """An ordered list of rules plus the unique key."""

    model_config = ConfigDict(extra="forbid")

    rules: list[Rule]
    unique_key: list[str] | None = None
    """Columns no two kept rows share; None: the dataset's (join key, event time)."""
    unit_fields: list[str] = Field(default_factory=list)
    """Fields that only say how another value was written (``temperature_unit``): two
    records equal after conversion are duplicates whatever their units."""

    def keyed(self, spec: DatasetSpec) -> RuleSet:
        """This rule set with ``unique_key`` and ``unit_fields`` defaulted from the spec
        (its join key and event time; its columns' unit fields)."""
        update: dict[str, list[str]] = {}
        if self.unique_key is None:
            update["unique_key"] = [spec.entity.join_key, spec.event_time.column]
        if not self.unit_fields:
            update["unit_fields"] = [c.units.column for c in spec.columns.values() if c.units]
        return self.model_copy(update=update) if update else self


def default_rules(
    spec: DatasetSpec | None = None,
    max_future_skew_s: int | None = None,
    max_age_days: int | None = None,
) -> RuleSet:
    """The rules a dataset spec declares, in the order a record's reason is chosen.

    Required fields (the join key, the event time, every ``nullable: false`` column);
    accepted unit fields; each column's range; category values; patterns; the event
    time's freshness; known entity ids; and uniqueness on (join key, event time).

    Args:
        spec: the dataset (default: the bundled default spec).
        max_future_skew_s: overrides the spec's ``event_time.max_future_skew_s``.
        max_age_days: overrides the spec's ``event_time.max_age_days``.
    """
    spec = spec or default_spec()
    key, ts = spec.entity.join_key, spec.event_time.column
    required = [n for n, c in spec.columns.items() if not c.nullable]
    rules: list = [NotNull(columns=[key, ts, *required])]
    # a range is only meaningful in a known unit
    for col in spec.columns.values():
        if col.units is not None:
            rules.append(
                AcceptedValues(column=col.units.column, values=list(col.units.conversions))
            )
    for name, col in spec.columns.items():
        if col.min is not None or col.max is not None:
            rules.append(Range(column=name, min=col.min, max=col.max, unit=col.unit))
    for name, col in spec.columns.items():
        if col.values is not None:
            rules.append(AcceptedValues(column=name, values=list(col.values)))
        if col.pattern is not None:
            rules.append(Pattern(column=name, pattern=col.pattern))
    et = spec.event_time
    rules.append(
        Freshness(
            column=ts,
            max_future_skew_s=et.max_future_skew_s
            if max_future_skew_s is None
            else max_future_skew_s,
            max_age_days=et.max_age_days if max_age_days is None else max_age_days,
        )
    )
    known = spec.entity.known_ids
    if known.source == "registry":
        rules.append(Referential(column=key, entity=spec.entity.name))
    elif known.source == "values":
        rules.append(AcceptedValues(column=key, values=list(known.values)))
    units = [c.units.column for c in spec.columns.values() if c.units is not None]
    return RuleSet(rules=rules, unique_key=[key, ts], unit_fields=units)


@dataclass
class QualityResult:
    """The outcome of a quality check."""

    valid: pa.Table
    quarantined: pa.Table
    """The rejected rows with ``reason``, ``field`` and ``detail`` columns added."""
    duplicates_dropped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


def _describe(rule: _Rule, column: str) -> str:
    if isinstance(rule, NotNull):
        return f"{column} is required: the record has no value for it"
    if isinstance(rule, Range):
        return f"{column} must be within [{rule.min}, {rule.max}] {rule.unit or ''}".rstrip()
    if isinstance(rule, AcceptedValues):
        return f"{column} must be one of {rule.values}"
    if isinstance(rule, Referential):
        return (
            f"{column} is not a known {rule.entity}: add it to the registry of known ids "
            "first (mlops-kit data register-devices)"
        )
    if isinstance(rule, Pattern):
        return f"{column} must match {rule.pattern}"
    return column


def _bounds(col: pa.ChunkedArray) -> tuple[object, object] | None:
    """Bounds that contain every non-null value, or None when unknown (NaN present).

    Floating columns go through NumPy on the Arrow value buffer (no copy), several times
    faster than Arrow's NaN-aware min/max kernel. The buffer also holds whatever sits
    under null slots, so these bounds may be wider than the data's, never narrower: a
    check they pass cannot fail, and one they do not pass computes its mask.
    """
    if pa.types.is_floating(col.type):
        lows, highs = [], []
        for chunk in col.chunks:
            if len(chunk) == 0:
                continue
            dtype = np.dtype(f"float{chunk.type.bit_width}")
            buffer = chunk.buffers()[1]
            values = np.frombuffer(buffer, dtype=dtype, count=chunk.offset + len(chunk))
            values = values[chunk.offset :]
            low, high = values.min(), values.max()
            if np.isnan(low) or np.isnan(high):
                return None
            lows.append(low)
            highs.append(high)
        return (min(lows), max(highs)) if lows else None
    bounds = pc.min_max(col)
    return bounds["min"].as_py(), bounds["max"].as_py()


def _within(col: pa.ChunkedArray, lo: object, hi: object) -> bool:
    """True when every non-null value is known to lie in [lo, hi] (no mask needed)."""
    if len(col) == col.null_count:
        return True
    bounds = _bounds(col)
    if bounds is None or bounds[0] is None:
        return False
    low, high = bounds
    if lo is not None and low < lo:  # type: ignore[operator]
        return False
    return not (hi is not None and high > hi)  # type: ignore[operator]


def _masks(
    table: pa.Table, rules: RuleSet, now: datetime, references: dict[str, pa.Array]
) -> list[tuple[pa.ChunkedArray | pa.Array, str, str, str]]:
    """(failing mask, reason, field, detail) per elementary check that fails somewhere.

    A check that no row can fail (no nulls, or every value within bounds after one
    min/max pass) yields no mask, so clean columns cost one cheap pass instead of several.
    """
    out: list[tuple[pa.ChunkedArray | pa.Array, str, str, str]] = []
    for rule in rules.rules:
        if (
            isinstance(rule, (Range, AcceptedValues, Pattern))
            and rule.column not in table.column_names
        ):
            continue  # an absent optional column holds only nulls, which these rules pass
        if isinstance(rule, NotNull):
            missing = [c for c in rule.columns if c not in table.column_names]
            if missing:
                raise ValueError(
                    f"rule not_null needs column(s) {missing}, absent from the data "
                    f"(columns: {table.column_names})"
                )
            for name in rule.columns:
                if table[name].null_count:
                    out.append((pc.is_null(table[name]), "null", name, _describe(rule, name)))
        elif isinstance(rule, Range):
            col = table[rule.column]
            if (rule.min is None and rule.max is None) or _within(col, rule.min, rule.max):
                continue
            bad = None
            if rule.min is not None:
                bad = pc.less(col, rule.min)
            if rule.max is not None:
                hi = pc.greater(col, rule.max)
                bad = hi if bad is None else pc.or_kleene(bad, hi)
            out.append(
                (
                    pc.fill_null(bad, False),
                    "out_of_range",
                    rule.column,
                    _describe(rule, rule.column),
                )
            )
        elif isinstance(rule, AcceptedValues):
            col = table[rule.column]
            if len(col) == col.null_count:
                continue
            ok = pc.is_in(col, value_set=pa.array(rule.values, col.type))
            bad = pc.and_(pc.invert(ok), pc.is_valid(col))
            out.append((bad, "unaccepted_value", rule.column, _describe(rule, rule.column)))
        elif isinstance(rule, Freshness):
            col = table[rule.column]
            horizon = now + timedelta(seconds=rule.max_future_skew_s)
            oldest = now - timedelta(days=rule.max_age_days)
            if _within(col, None, horizon) is False:
                future = pc.fill_null(pc.greater(col, pa.scalar(horizon, col.type)), False)
                out.append(
                    (
                        future,
                        "future_timestamp",
                        rule.column,
                        f"{rule.column} is more than {rule.max_future_skew_s}s in the future "
                        "(clock skew?)",
                    )
                )
            if _within(col, oldest, None) is False:
                stale = pc.fill_null(pc.less(col, pa.scalar(oldest, col.type)), False)
                out.append(
                    (
                        stale,
                        "stale_timestamp",
                        rule.column,
                        f"{rule.column} is older than {rule.max_age_days} days",
                    )
                )
        elif isinstance(rule, Referential):
            if rule.reference not in references:
                raise ValueError(
                    f"rule referential on '{rule.column}' needs the reference table "
                    f"'{rule.reference}': pass references={{'{rule.reference}': ...}}"
                )
            col = table[rule.column]
            known = references[rule.reference]
            bad = pc.and_(pc.invert(pc.is_in(col, value_set=known)), pc.is_valid(col))
            out.append((bad, "unknown_entity", rule.column, _describe(rule, rule.column)))
        elif isinstance(rule, Pattern):
            col = table[rule.column]
            if len(col) == col.null_count:
                continue
            ok = pc.match_substring_regex(col, rule.pattern)
            bad = pc.and_(pc.invert(pc.fill_null(ok, True)), pc.is_valid(col))
            out.append((bad, "pattern_mismatch", rule.column, _describe(rule, rule.column)))
    return out


def check(
    table: pa.Table,
    rules: RuleSet | None = None,
    now: datetime | None = None,
    references: dict[str, pa.Array] | None = None,
    existing_keys: pa.Table | None = None,
    timings: dict[str, float] | None = None,
) -> QualityResult:
    """Split ``table`` into valid rows and a quarantine.

    Args:
        table: typed rows (the extract's output, after the transform).
        rules: the rule set (default: :func:`default_rules`).
        now: the reference time for freshness (default: the current time).
        references: reference tables by name, e.g. ``{"devices": pa.array([...])}``.
        existing_keys: rows already loaded (key columns plus payload) to check
            uniqueness across runs: an exact copy is a dropped duplicate, a different
            record is quarantined as ``duplicate_key``.
        timings: if given, seconds spent are added under ``rules`` (finding the
            rejected rows), ``split`` (materialising valid and rejected rows) and
            ``unique`` (the key check).
    """
    clock = time.perf_counter
    t0 = clock()
    rules = (rules or default_rules()).keyed(default_spec())
    now = now or datetime.now(timezone.utc)
    checks = _masks(table, rules, now, references or {})
    n = table.num_rows
    # one pass of Arrow kernels finds the rejected rows; only those are looked at again
    any_bad = None
    for mask, *_ in checks:
        any_bad = mask if any_bad is None else pc.or_(any_bad, mask)
    bad_idx = (
        np.flatnonzero(_to_numpy(any_bad)) if any_bad is not None and n else np.empty(0, np.int64)
    )
    reasons: Counter[str] = Counter()
    rejected_parts = []
    t1 = clock()
    if bad_idx.size:
        take = pa.array(bad_idx)
        # the first failing check names the row's reason
        first = np.full(bad_idx.size, -1, dtype=np.int32)
        for idx in range(len(checks) - 1, -1, -1):
            sub = _to_numpy(pc.take(checks[idx][0], take))
            first[sub] = idx
        keep = np.ones(n, dtype=bool)
        keep[bad_idx] = False
        valid = table.filter(pa.array(keep))
        rejected = table.take(take)
        reason = np.array([c[1] for c in checks], dtype=object)[first]
        fld = np.array([c[2] for c in checks], dtype=object)[first]
        detail = np.array([c[3] for c in checks], dtype=object)[first]
        rejected_parts.append(
            rejected.append_column("reason", pa.array(reason, pa.string()))
            .append_column("field", pa.array(fld, pa.string()))
            .append_column("detail", pa.array(detail, pa.string()))
        )
        reasons.update(reason.tolist())
    else:
        valid = table
    t2 = clock()
    assert rules.unique_key is not None
    valid, dup_rejected, dropped = _unique(
        valid, rules.unique_key, existing_keys, set(rules.unit_fields)
    )
    if timings is not None:
        timings["rules"] = timings.get("rules", 0.0) + (t1 - t0)
        timings["split"] = timings.get("split", 0.0) + (t2 - t1)
        timings["unique"] = timings.get("unique", 0.0) + (clock() - t2)
    if dup_rejected is not None and dup_rejected.num_rows:
        rejected_parts.append(dup_rejected)
        reasons["duplicate_key"] += dup_rejected.num_rows
    if rejected_parts:
        quarantined = pa.concat_tables(rejected_parts)
    else:
        quarantined = (
            table.schema.append(pa.field("reason", pa.string()))
            .append(pa.field("field", pa.string()))
            .append(pa.field("detail", pa.string()))
            .empty_table()
        )
    return QualityResult(valid, quarantined, dropped, reasons)


def _to_numpy(mask: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks() if mask.num_chunks != 1 else mask.chunk(0)
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def _strictly_sorted(table: pa.Table, key: list[str]) -> bool:
    """True when rows are strictly increasing in the key, in either column order.

    Time-ordered streams and per-device exports usually are; the check is a few linear
    Arrow kernels instead of a hash of every key.
    """
    if len(key) != 2 or table.num_rows < 2:
        return table.num_rows < 2
    cols = [table[k] for k in key]
    if any(c.null_count for c in cols):
        return False
    for first, second in ((cols[1], cols[0]), (cols[0], cols[1])):
        a0, a1 = first.slice(0, len(first) - 1), first.slice(1)
        b0, b1 = second.slice(0, len(second) - 1), second.slice(1)
        increasing = pc.or_(pc.less(a0, a1), pc.and_(pc.equal(a0, a1), pc.less(b0, b1)))
        if pc.all(increasing).as_py():
            return True
    return False


def _payload_columns(table: pa.Table) -> list[str]:
    return [c for c in table.column_names if not c.startswith("_")]


def _unique(
    valid: pa.Table, key: list[str], existing: pa.Table | None, ignore: set[str]
) -> tuple[pa.Table, pa.Table | None, int]:
    """Drop exact duplicates and quarantine conflicting ones, within and across runs."""
    if valid.num_rows == 0 or not key:
        return valid, None, 0
    has_existing = existing is not None and existing.num_rows > 0
    if not has_existing and _strictly_sorted(valid, key):
        return valid, None, 0  # rows strictly ordered by the key cannot repeat it
    payload = [c for c in _payload_columns(valid) if c not in ignore]
    df = pl.from_arrow(valid.select(key), rechunk=False)
    assert isinstance(df, pl.DataFrame)
    later = ~df.select(pl.struct(key).is_first_distinct()).to_series()
    later_np = later.to_numpy()
    if not later_np.any() and not has_existing:
        return valid, None, 0

    full = pl.from_arrow(valid.select(payload))
    assert isinstance(full, pl.DataFrame)
    full = full.with_row_index("_row")
    # reference = the first occurrence in this batch, or the already loaded row
    firsts = full.filter(~pl.Series(later_np))
    reference = firsts.drop("_row")
    if has_existing:
        target = valid.select(payload).schema
        prior = pl.from_arrow(existing.select(payload).cast(target))  # type: ignore[union-attr]
        assert isinstance(prior, pl.DataFrame)
        prior = prior.unique(subset=key, keep="first")
        reference = pl.concat([prior, reference]).unique(
            subset=key, keep="first", maintain_order=True
        )
        # every row may collide with an already loaded one
        in_prior = full.join(prior.select(key), on=key, how="semi")["_row"].to_numpy()
        check_rows = np.union1d(np.flatnonzero(later_np), in_prior)
    else:
        check_rows = np.flatnonzero(later_np)
    if check_rows.size == 0:
        return valid, None, 0
    cand = full.filter(pl.col("_row").is_in(check_rows.tolist()))
    joined = cand.join(reference, on=key, how="left", suffix="_ref")
    same = pl.lit(True)
    for col in payload:
        if col in key:
            continue
        a, b = pl.col(col), pl.col(f"{col}_ref")
        same = same & ((a == b) | (a.is_null() & b.is_null())).fill_null(False)
    flags = joined.select("_row", same.alias("same"))
    exact_rows = flags.filter(pl.col("same"))["_row"].to_numpy()
    conflict_rows = flags.filter(~pl.col("same"))["_row"].to_numpy()
    keep = np.ones(valid.num_rows, dtype=bool)
    keep[exact_rows] = False
    keep[conflict_rows] = False
    rejected = None
    if conflict_rows.size:
        mask = np.zeros(valid.num_rows, dtype=bool)
        mask[conflict_rows] = True
        part = valid.filter(pa.array(mask))
        k = part.num_rows
        rejected = (
            part.append_column("reason", pa.array(["duplicate_key"] * k, pa.string()))
            .append_column("field", pa.array([",".join(key)] * k, pa.string()))
            .append_column(
                "detail",
                pa.array(
                    [
                        f"another record with the same {' and '.join(key)} and different values was kept"
                    ]
                    * k,
                    pa.string(),
                ),
            )
        )
    return valid.filter(pa.array(keep)), rejected, int(exact_rows.size)
