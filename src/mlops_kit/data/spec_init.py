"""Propose a dataset spec from a sample file (``mlops-kit dataset init SAMPLE``).

The proposal reads the sample's columns and guesses what a person would write first:
the event-time column (a timestamp, or a column named like one), the join key (a text
column named ``*_id``), the type of every other column, whether it has nulls, its
observed range, categories for text with few distinct values, labels (0/1 columns named
like ``failure``, ``fault``, ``label``, ``target``) and statistics for the numeric rest.
Units are left for the user. The proposal is valid as written; review it before use.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mlops_kit.data.spec import DatasetSpecError, spec_from_dict

_TIME_NAMES = ("ts", "timestamp", "time", "event_time", "event_timestamp", "recorded_at", "at")
_LABEL = re.compile(r"(failure|fault|label|target|anomaly|churn|fraud|^y$|^is_)", re.I)
_MAX_CATEGORIES = 20


def _read(sample: Path) -> Any:
    import polars as pl

    suffix = sample.suffix.lower()
    try:
        if suffix == ".csv":
            return pl.read_csv(sample, try_parse_dates=True, infer_schema_length=10_000)
        if suffix == ".parquet":
            return pl.read_parquet(sample)
        if suffix in (".jsonl", ".ndjson", ".json"):
            return pl.read_ndjson(sample)
    except Exception as exc:
        raise DatasetSpecError(str(sample), [f"cannot read the sample: {exc}"]) from None
    raise DatasetSpecError(
        str(sample), [f"unsupported sample type {suffix!r}; use .csv, .parquet or .jsonl"]
    )


def _number(value: Any) -> float | int:
    f = float(value)
    return int(f) if f.is_integer() else round(f, 6)


def propose(sample: str | Path, name: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """A spec (as a dict) for ``sample`` and notes on what was guessed.

    Raises:
        DatasetSpecError: the sample cannot be read, or has no usable time or key column.
    """
    import polars as pl

    path = Path(sample)
    df = _read(path)
    if df.height == 0:
        raise DatasetSpecError(str(path), ["the sample has no rows; give a few hundred"])
    notes: list[str] = []
    temporal = [c for c in df.columns if df[c].dtype in (pl.Datetime, pl.Date)]
    named = [c for c in df.columns if c.lower() in _TIME_NAMES]
    time_col = (temporal or named or [None])[0]
    if time_col is None:
        raise DatasetSpecError(
            str(path),
            ["no event-time column found: name one ts/timestamp/time or write ISO 8601 values"],
        )
    texts = [c for c in df.columns if df[c].dtype == pl.Utf8 and c != time_col]
    keys = [c for c in texts if c.lower().endswith("_id") or c.lower() == "id"] or texts
    if not keys:
        raise DatasetSpecError(str(path), ["no text column to use as the entity key"])
    key = keys[0]
    entity = re.sub(r"_?id$", "", key, flags=re.I) or "entity"
    notes.append(f"event time: {time_col}; entity {entity!r} keyed by {key}")
    columns: dict[str, Any] = {}
    labels: list[dict[str, Any]] = []
    flags: list[str] = []
    stats: dict[str, list[str]] = {}
    for col in df.columns:
        if col in (key, time_col):
            continue
        s = df[col]
        spec: dict[str, Any] = {}
        if s.dtype == pl.Boolean:
            spec["type"] = "bool"
        elif s.dtype.is_integer():
            spec["type"] = "int"
        elif s.dtype.is_float():
            spec["type"] = "float"
        elif s.dtype in (pl.Datetime, pl.Date):
            spec["type"] = "timestamp"
        else:
            distinct = s.drop_nulls().cast(pl.Utf8).unique().sort().to_list()
            if len(distinct) <= _MAX_CATEGORIES and len(distinct) < max(2, s.len() // 2):
                spec.update(type="category", values=distinct)
            else:
                spec["type"] = "string"
        spec["nullable"] = bool(s.null_count())
        if spec["type"] in ("int", "float") and s.drop_nulls().len():
            spec["min"], spec["max"] = _number(s.min()), _number(s.max())
        values = (
            set(s.drop_nulls().unique().to_list()) if spec["type"] in ("int", "bool") else set()
        )
        if values and values <= {0, 1}:
            flags.append(col)
        elif spec["type"] in ("int", "float"):
            spec["unit"] = None
            stats[col] = ["mean", "std", "max"]
        columns[col] = spec
    # a 0/1 column named like an outcome is the label; else the last 0/1 column
    named_labels = [c for c in flags if _LABEL.search(c)]
    for col in named_labels or flags[-1:]:
        labels.append({"column": col, "aggregate": "max"})
        notes.append(
            f"label: {col} (a 0/1 column{' named like an outcome' if named_labels else ''})"
        )
    for col in flags:
        if col not in {lab["column"] for lab in labels} and columns[col]["type"] == "int":
            columns[col]["unit"] = None
            stats[col] = ["mean", "max"]
    if not stats:
        raise DatasetSpecError(str(path), ["no numeric column to aggregate into features"])
    spec_name = name or re.sub(r"\W+", "_", path.stem).strip("_").lower() or "dataset"
    label = labels[0]["column"] if labels else "outcome"
    data = {
        "name": spec_name,
        "version": 1,
        "description": f"Proposed from {path.name}; review every entry.",
        "entity": {"name": entity, "join_key": key, "known_ids": {"source": "none"}},
        "event_time": {"column": time_col},
        "columns": columns,
        "labels": labels,
        "aggregations": {"grain": "1h", "windows": {"1h": "1h", "24h": "24h"}, "stats": stats},
        "views": [
            {"name": f"{entity}_1h", "window": "1h", "ttl": "2h"},
            {"name": f"{entity}_24h", "window": "24h", "ttl": "26h"},
        ],
        "service": {"name": f"{entity}_{label}", "versions": {1: {"coverage": True}}},
    }
    spec_from_dict(data, f"proposal for {path.name}")
    notes.append(
        f"{len(stats)} numeric column(s) aggregated over 1h and 24h; units are left null "
        "for you to fill in, and min/max are the sample's observed range"
    )
    return data, notes


def to_yaml(data: dict[str, Any], notes: list[str]) -> str:
    """The proposal as YAML, with the notes as a header comment."""
    import yaml

    head = "".join(
        f"# {n}\n" for n in ["Dataset spec proposed by `mlops-kit dataset init`.", *notes]
    )
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
