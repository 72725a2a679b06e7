"""The lake's zones as of the last commit: layouts, committed tables, the warehouse, and
where a run stages its processed files.

What every ETL backend reads and stages the same way (the local one in :mod:`mlops_kit.etl.run`, the
Ray one in :mod:`mlops_kit.etl.ray_backend`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mlops_kit import storage
from mlops_kit.config import Settings
from mlops_kit.data.spec import spec_of
from mlops_kit.etl import lake
from mlops_kit.etl.extract import QUARANTINE_SCHEMA, ReadOptions, record_texts
from mlops_kit.etl.layout import RecordLayout, layout_for
from mlops_kit.etl.warehouse import open_warehouse

READINGS = "readings"
QUARANTINE = "quarantine"
QUARANTINED_OBJECTS = "quarantined_objects"


def record_layout_of(settings: Settings) -> RecordLayout:
    """The layout of the settings' dataset spec (see :mod:`mlops_kit.etl.layout`)."""
    return layout_for(spec_of(settings))


def features_table(settings: Settings) -> str:
    """The processed table of feature rows: the spec's ``table``."""
    return spec_of(settings).feature_table


def warehouse_table(settings: Settings) -> str:
    """The warehouse table the feature rows load into (``warehouse.table``, by default
    the spec's feature table)."""
    return settings.warehouse.table or features_table(settings)


def layout_of(settings: Settings) -> lake.Layout:
    s = settings.storage
    return lake.Layout(
        processed_uri=s.processed_uri,  # type: ignore[arg-type]
        quarantine_uri=s.quarantine_uri,  # type: ignore[arg-type]
        reports_uri=s.reports_uri,  # type: ignore[arg-type]
        state_uri=s.state_uri,  # type: ignore[arg-type]
    )


def read_table(settings: Settings, table: str, dates: set[date] | None = None) -> pa.Table:
    """The committed rows of a processed table (optionally only some date partitions)."""
    layout = layout_of(settings)
    files = lake.live_files(layout, table)
    if dates is not None:
        wanted = {f"date={d.isoformat()}" for d in dates}
        files = [f for f in files if any(part in wanted for part in f.split("/"))]
    records = record_layout_of(settings)
    schema = {
        READINGS: records.reading_schema,
        features_table(settings): records.features_schema,
    }.get(table)
    if not files:
        if schema is None:
            return QUARANTINE_SCHEMA.empty_table()
        return schema.empty_table()
    table = storage.read_parquet(files)
    return _conform(table, schema) if schema is not None else table


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``: columns in its order and types; a column that files
    written before the spec gained it lack comes back as nulls."""
    if table.schema.equals(schema):
        return table
    cols = [
        table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(cols, schema=schema)


def dates_of(ts: pa.ChunkedArray | pa.Array) -> set[date]:
    if len(ts) == 0:
        return set()
    days = pc.unique(pc.cast(pc.floor_temporal(ts, unit="day"), pa.timestamp("us", tz="UTC")))
    return {d.date() for d in days.to_pylist()}


def by_date(table: pa.Table, column: str) -> dict[date, pa.Table]:
    day = pc.floor_temporal(table[column], unit="day")
    out = {}
    for d in dates_of(table[column]):
        mask = pc.equal(
            day, pa.scalar(datetime(d.year, d.month, d.day, tzinfo=timezone.utc), day.type)
        )
        out[d] = table.filter(mask)
    return out


def loader(settings: Settings) -> Callable[[dict[str, Any]], None]:
    def load(spec: dict[str, Any]) -> None:
        records = record_layout_of(settings)
        rows = (
            storage.read_parquet(spec["files"])
            if spec["files"]
            else records.features_schema.empty_table()
        )
        wh = warehouse_of(settings)
        wh.load(spec["table"], rows, records.feature_key, spec["run_id"])

    return load


def warehouse_of(settings: Settings) -> Any:
    """The warehouse the settings select (its password from ``warehouse.secret_arn``)."""
    return open_warehouse(settings.warehouse.url or "", _warehouse_password(settings))


def _warehouse_password(settings: Settings) -> str | None:
    """The password in the ``warehouse.secret_arn`` secret: its JSON's ``password``, or
    the whole secret when it is not a JSON object with one (a plain-text password)."""
    arn = settings.warehouse.secret_arn
    if not arn:
        return None
    secret = settings.aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    try:
        value = json.loads(secret)
    except ValueError:
        return str(secret)
    if isinstance(value, dict) and "password" in value:
        return str(value["password"])
    return str(secret)


def read_options(settings: Settings) -> tuple[ReadOptions, dict[str, ReadOptions]]:
    """How raw objects are read: from ``settings.parse``, and per released object."""
    base = ReadOptions.from_settings(settings)
    per_object = {
        uri: base.with_encoding(rel.get("encoding"))
        for uri, rel in lake.releases(layout_of(settings)).items()
    }
    return base, per_object


def redact(url: str | None) -> str | None:
    if not url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


def quarantine_rows(settings: Settings, rejected: pa.Table) -> pa.Table:
    """Quality rejects in the quarantine schema, each with its record as received.

    The record's exact text is read back from its raw object by its position (for
    Parquet, which has no text form, the row's original values as JSON).
    """
    if rejected.num_rows == 0:
        return QUARANTINE_SCHEMA.empty_table()
    lineage = [c for c in ("_source", "_line", "_record") if c in rejected.column_names]
    payload = rejected.drop_columns(["reason", "field", "detail", *lineage])
    sources = rejected["_source"].to_pylist()
    ordinals = (
        rejected["_record"].to_pylist()
        if "_record" in rejected.column_names
        else [None] * rejected.num_rows
    )
    wanted: dict[str, set[int]] = {}
    for src, ordinal in zip(sources, ordinals, strict=True):
        if src and ordinal is not None:
            wanted.setdefault(src, set()).add(ordinal)
    base, per_object = read_options(settings)
    texts = {
        src: record_texts(src, ords, per_object.get(src, base)) for src, ords in wanted.items()
    }
    records = []
    for src, ordinal, row in zip(sources, ordinals, payload.to_pylist(), strict=True):
        text = texts.get(src, {}).get(ordinal) if ordinal is not None else None
        records.append(text if text is not None else json.dumps(row, default=str))
    return pa.table(
        {
            "reason": rejected["reason"],
            "field": rejected["field"],
            "detail": rejected["detail"],
            "record": pa.array(records, pa.string()),
            "_source": rejected["_source"].cast(pa.string()),
            "_line": rejected["_line"],
        },
        schema=QUARANTINE_SCHEMA,
    )


def check_spec_evolution(settings: Settings) -> None:
    """Refuse a spec that cannot replace the one the lake was last written with.

    Raises:
        DatasetSpecError: another dataset, an older version, or a same-version change
            that is not an addition, each problem naming the field and the fix.
    """
    from mlops_kit.data.spec import DatasetSpec, DatasetSpecError
    from mlops_kit.data.spec_checks import evolution_problems

    last = next(
        (m for m in reversed(lake.manifests(layout_of(settings))) if m.get("dataset_spec")),
        None,
    )
    if last is None:
        return
    old = DatasetSpec.model_validate(last["dataset_spec"])
    new = spec_of(settings)
    problems = evolution_problems(old, new)
    if problems:
        raise DatasetSpecError(
            f"{new.name} v{new.version} over the lake written by run {last['run_id']} "
            f"({old.name} v{old.version})",
            problems,
        )


@dataclass
class StagedRows:
    """The processed files a backend staged for one run."""

    readings: list[str] = field(default_factory=list)
    features: dict[str, list[str]] = field(default_factory=dict)
    """Feature files by the day (ISO date) they replace."""
    feature_rows: int = 0

    def add(self, other: StagedRows) -> None:
        """Take in what another writer of the same run staged."""
        self.readings.extend(other.readings)
        for day, files in other.features.items():
            self.features.setdefault(day, []).extend(files)
        self.feature_rows += other.feature_rows


def stage_processed(
    commit: lake.Commit,
    records: RecordLayout,
    readings: pa.Table,
    features: dict[date, pa.Table],
    part: str = "",
) -> StagedRows:
    """Stage a run's processed readings and feature partitions, one file per day
    (``part`` names the writer when several stage files of one run)."""
    layout, run_id = commit.layout, commit.run_id
    staged = StagedRows()
    for d, rows in sorted(by_date(readings, records.time).items()):
        final = processed_part(layout, READINGS, d, run_id, part)
        commit.stage(final, rows, prefix=part, **records.parquet_options)
        staged.readings.append(final)
    for d, rows in sorted(features.items()):
        final = processed_part(layout, records.spec.feature_table, d, run_id, part)
        commit.stage(final, rows, prefix=part)
        staged.features[d.isoformat()] = [final]
        staged.feature_rows += rows.num_rows
    return staged


def processed_part(layout: lake.Layout, table: str, d: date, run_id: str, part: str = "") -> str:
    """The final path of one file of a run's output in a processed table's day."""
    name = f"part-{run_id}{'-' + part if part else ''}.parquet"
    return storage.join(layout.processed_uri, table, f"date={d}", name)
