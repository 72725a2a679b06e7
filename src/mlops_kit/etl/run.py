"""The ETL run: extract -> transform -> quality check -> load, with full accounting.

Every run states ``rows_in = loaded + quarantined + duplicates_dropped`` in its
manifest. Re-running with no new raw objects changes nothing. A crash at any point
leaves the previous or the new committed state (see :mod:`mlops_kit.etl.lake`), and the
next run completes the work.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mlops_kit import storage
from mlops_kit._faults import maybe_fail
from mlops_kit.config import Settings
from mlops_kit.data.spec import spec_of
from mlops_kit.etl import lake
from mlops_kit.etl.devices import read_device_registry
from mlops_kit.etl.errors import DataQualityError, EtlError
from mlops_kit.etl.extract import QUARANTINE_SCHEMA, ReadOptions, extract, record_texts
from mlops_kit.etl.layout import TIMESTAMP, RecordLayout, layout_for
from mlops_kit.etl.quality import RuleSet, check, default_rules
from mlops_kit.etl.report import build_report, render_html
from mlops_kit.etl.transform import aggregate, normalise, to_readings
from mlops_kit.etl.warehouse import open_warehouse
from mlops_kit.ingest.raw_zone import list_raw

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


@dataclass
class EtlResult:
    """What a run did. ``status`` is ``committed`` or ``noop`` (nothing new to process)."""

    run_id: str
    status: str
    inputs: list[str] = field(default_factory=list)
    rows_in: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates_dropped: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    objects_in: int = 0
    objects_quarantined: list[dict[str, Any]] = field(default_factory=list)
    """Objects that could not be read at all: ``uri``, ``reason``, ``detail``,
    ``quarantine_uri`` (a copy of the bytes as received)."""
    notes: list[dict[str, Any]] = field(default_factory=list)
    """Object-level findings (columns beyond the schema, schema drift), once per object."""
    feature_rows: int = 0
    warehouse_rows_upserted: int = 0
    report_json_uri: str | None = None
    report_html_uri: str | None = None
    manifest_uri: str | None = None

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.loaded + self.quarantined + self.duplicates_dropped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _dates(ts: pa.ChunkedArray | pa.Array) -> set[date]:
    if len(ts) == 0:
        return set()
    days = pc.unique(pc.cast(pc.floor_temporal(ts, unit="day"), pa.timestamp("us", tz="UTC")))
    return {d.date() for d in days.to_pylist()}


def _by_date(table: pa.Table, column: str) -> dict[date, pa.Table]:
    day = pc.floor_temporal(table[column], unit="day")
    out = {}
    for d in _dates(table[column]):
        mask = pc.equal(
            day, pa.scalar(datetime(d.year, d.month, d.day, tzinfo=timezone.utc), day.type)
        )
        out[d] = table.filter(mask)
    return out


def _run_id(inputs: list[str], now: datetime, seq: int) -> str:
    """Deterministic for the same inputs at the same point of the lake's history (a
    released object read again later gets a new id)."""
    key = "\n".join([str(seq), *sorted(inputs)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"{now:%Y%m%dT%H%M%S}Z-{digest}"


def _loader(settings: Settings) -> Callable[[dict[str, Any]], None]:
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
    arn = settings.warehouse.secret_arn
    if not arn:
        return None
    secret = settings.aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    try:
        return str(json.loads(secret)["password"])
    except (ValueError, KeyError):
        return str(secret)


@dataclass
class Batch:
    """What passes between the ETL steps; saved as a folder between pipeline tasks."""

    run_id: str
    now: datetime
    inputs: list[str]
    rows_in: int
    rows: pa.Table
    """Typed, normalised rows (before the quality check) or valid readings (after)."""
    quarantine: pa.Table
    duplicates_dropped: int = 0
    checked: bool = False
    report: dict[str, Any] = field(default_factory=dict)
    objects: list[dict[str, Any]] = field(default_factory=list)
    """One entry per input: records, and ``reason``/``detail`` when quarantined whole."""

    @property
    def quarantined_objects(self) -> list[dict[str, Any]]:
        return [o for o in self.objects if o.get("reason")]

    @property
    def notes(self) -> list[dict[str, Any]]:
        return [{"uri": o["uri"], **n} for o in self.objects for n in o.get("notes", [])]

    @property
    def accounting(self) -> dict[str, Any]:
        reasons = Counter(self.quarantine["reason"].to_pylist())
        whole = Counter(o["reason"] for o in self.quarantined_objects)
        return {
            "rows_in": self.rows_in,
            "loaded": self.rows.num_rows if self.checked else 0,
            "quarantined": self.quarantine.num_rows,
            "duplicates_dropped": self.duplicates_dropped,
            "quarantined_by_reason": dict(sorted(reasons.items())),
            "objects_in": len(self.inputs),
            "objects_quarantined": sum(whole.values()),
            "objects_quarantined_by_reason": dict(sorted(whole.items())),
        }

    def save(self, uri: str) -> None:
        """Write the batch as ``rows.parquet``, ``quarantine.parquet`` and ``batch.json``."""
        storage.write_parquet(storage.join(uri, "rows.parquet"), self.rows)
        storage.write_parquet(storage.join(uri, "quarantine.parquet"), self.quarantine)
        meta = {
            "run_id": self.run_id,
            "now": self.now.isoformat(),
            "inputs": self.inputs,
            "rows_in": self.rows_in,
            "duplicates_dropped": self.duplicates_dropped,
            "checked": self.checked,
            "report": self.report,
            "objects": self.objects,
        }
        storage.write_json(storage.join(uri, "batch.json"), meta)

    @classmethod
    def load(cls, uri: str) -> Batch:
        meta = storage.read_json(storage.join(uri, "batch.json"))
        return cls(
            run_id=meta["run_id"],
            now=datetime.fromisoformat(meta["now"]),
            inputs=meta["inputs"],
            rows_in=meta["rows_in"],
            rows=storage.read_parquet(storage.join(uri, "rows.parquet")),
            quarantine=storage.read_parquet(storage.join(uri, "quarantine.parquet")),
            duplicates_dropped=meta["duplicates_dropped"],
            checked=meta["checked"],
            report=meta["report"],
            objects=meta.get("objects", []),
        )


def extract_transform(
    settings: Settings,
    *,
    now: datetime | None = None,
    source: str | None = None,
) -> Batch | None:
    """Extract and normalise every raw object not yet consumed by a committed run.

    First completes any commit a crashed run left journaled. Returns None when there is
    nothing new to process.
    """
    storage.configure_from_settings(settings)
    now = now or datetime.now(timezone.utc)
    layout = layout_of(settings)
    lake.recover(layout, _loader(settings))
    check_spec_evolution(settings)
    done = lake.processed_inputs(layout)
    pending = [u for u in list_raw(settings.storage.raw_uri or "", source) if u not in done]
    if not pending:
        return None
    base, per_object = read_options(settings)
    extracted = extract(pending, base, per_object)
    return Batch(
        run_id=_run_id(pending, now, len(lake.manifests(layout))),
        now=now,
        inputs=pending,
        rows_in=extracted.records_in,
        rows=normalise(extracted.rows, base.layout),
        quarantine=extracted.rejected_table(),
        objects=[o.to_dict() for o in extracted.objects],
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


def read_options(settings: Settings) -> tuple[ReadOptions, dict[str, ReadOptions]]:
    """How raw objects are read: from ``settings.parse``, and per released object."""
    base = ReadOptions.from_settings(settings)
    per_object = {
        uri: base.with_encoding(rel.get("encoding"))
        for uri, rel in lake.releases(layout_of(settings)).items()
    }
    return base, per_object


def quality_check(settings: Settings, batch: Batch, rules: RuleSet | None = None) -> Batch:
    """Apply the quality rules; write the report; fail above the quarantine threshold.

    Raises:
        DataQualityError: when the quarantine rate exceeds
            ``settings.quality.max_quarantine_rate``; nothing is loaded, the report and
            the rejected rows are written under the reports zone.
    """
    storage.configure_from_settings(settings)
    records = record_layout_of(settings)
    q = settings.quality
    rules = (
        rules
        or default_rules(
            records.spec,
            q.max_future_skew_s if "max_future_skew_s" in q.model_fields_set else None,
            q.max_age_days if "max_age_days" in q.model_fields_set else None,
        )
    ).keyed(records.spec)
    typed = batch.rows
    new_dates = _dates(typed[records.time].drop_null()) if typed.num_rows else set()
    existing = read_table(settings, READINGS, new_dates) if new_dates else None
    needs_devices = any(getattr(r, "kind", "") == "referential" for r in rules.rules)
    references = {"devices": read_device_registry(settings)} if needs_devices else {}
    result = check(typed, rules, now=batch.now, references=references, existing_keys=existing)
    checked = Batch(
        run_id=batch.run_id,
        now=batch.now,
        inputs=batch.inputs,
        rows_in=batch.rows_in,
        rows=to_readings(result.valid, records),
        quarantine=pa.concat_tables(
            [batch.quarantine, _quarantine_rows(settings, result.quarantined)]
        ),
        duplicates_dropped=result.duplicates_dropped,
        checked=True,
        objects=batch.objects,
    )
    acc = checked.accounting
    if acc["rows_in"] != acc["loaded"] + acc["quarantined"] + acc["duplicates_dropped"]:
        raise EtlError(f"internal accounting mismatch in run {batch.run_id}: {acc}")
    report = build_report(
        batch.run_id,
        acc,
        checked.quarantine,
        settings.quality.max_quarantine_rate,
        objects=checked.quarantined_objects,
        notes=checked.notes,
    )
    report_dir = storage.join(settings.storage.reports_uri or "", f"run={batch.run_id}")
    json_uri = storage.join(report_dir, "quality.json")
    html_uri = storage.join(report_dir, "quality.html")
    storage.write_json(json_uri, report)
    storage.write_bytes(html_uri, render_html(report).encode())
    checked.report = {
        "json": json_uri,
        "html": html_uri,
        "passed": report["passed"],
        "quarantine_rate": report["quarantine_rate"],
    }
    if not report["passed"]:
        storage.write_parquet(storage.join(report_dir, "rejected.parquet"), checked.quarantine)
        top = ", ".join(
            f"{k}: {v}" for k, v in Counter(acc["quarantined_by_reason"]).most_common(3)
        )
        raise DataQualityError(
            f"run {batch.run_id}: {report['quarantine_rate']:.1%} of {acc['rows_in']} records "
            f"were quarantined, above the threshold of {settings.quality.max_quarantine_rate:.1%} "
            f"({top}). Nothing was loaded. See {html_uri}; fix the source or raise "
            "quality.max_quarantine_rate",
            report_uri=json_uri,
            accounting=acc,
        )
    return checked


def load(settings: Settings, batch: Batch) -> EtlResult:
    """Commit a checked batch: processed readings, features, quarantine, warehouse, manifest."""
    if not batch.checked:
        raise EtlError("load takes a batch that went through quality_check first")
    storage.configure_from_settings(settings)
    layout = layout_of(settings)
    run_id, now, readings, quarantine = batch.run_id, batch.now, batch.rows, batch.quarantine
    if any(m["run_id"] == run_id for m in lake.manifests(layout)):
        raise EtlError(f"run {run_id} is already committed; nothing to load")
    commit = lake.Commit(layout, run_id)
    records = record_layout_of(settings)
    features = records.spec.feature_table
    feature_tables = _features(settings, readings, now)
    outputs: dict[str, dict[str, list[str]]] = {
        READINGS: {"added": [], "removed": []},
        features: {"added": [], "removed": []},
        QUARANTINE: {"added": [], "removed": []},
    }
    for d, part in sorted(_by_date(readings, records.time).items()):
        final = storage.join(layout.processed_uri, READINGS, f"date={d}", f"part-{run_id}.parquet")
        commit.stage(final, part, **records.parquet_options)
        outputs[READINGS]["added"].append(final)
    live_features = lake.live_files(layout, features)
    feature_files = []
    n_features = 0
    for d, part in sorted(feature_tables.items()):
        final = storage.join(layout.processed_uri, features, f"date={d}", f"part-{run_id}.parquet")
        commit.stage(final, part)
        replaced = [f for f in live_features if f"/date={d}/" in f.replace("\\", "/")]
        commit.replace(replaced)
        outputs[features]["added"].append(final)
        outputs[features]["removed"].extend(replaced)
        feature_files.append(final)
        n_features += part.num_rows
    if quarantine.num_rows:
        final = storage.join(layout.quarantine_uri, f"date={now.date()}", f"part-{run_id}.parquet")
        commit.stage(final, quarantine)
        outputs[QUARANTINE]["added"].append(final)
    objects_quarantined = []
    for obj in batch.quarantined_objects:
        final = storage.join(
            layout.quarantine_uri, "objects", f"date={now.date()}", obj["uri"].rsplit("/", 1)[-1]
        )
        commit.stage_bytes(final, storage.read_bytes(obj["uri"]))
        outputs.setdefault(QUARANTINED_OBJECTS, {"added": [], "removed": []})["added"].append(final)
        objects_quarantined.append({**obj, "quarantine_uri": final})
    maybe_fail("etl.after_stage")

    accounting = batch.accounting
    table = warehouse_table(settings)
    commit.warehouse = {"table": table, "files": feature_files, "run_id": run_id}
    manifest = {
        "run_id": run_id,
        "committed_seq": len(lake.manifests(layout)) + 1,
        "created_at": now.isoformat(),
        "inputs": batch.inputs,
        "accounting": accounting,
        "outputs": outputs,
        "feature_rows": n_features,
        "objects_quarantined": objects_quarantined,
        "notes": batch.notes,
        "report": batch.report,
        "warehouse": {"url": _redact(settings.warehouse.url), "table": table},
        "dataset": records.spec.lineage(),
        "dataset_spec": records.spec.model_dump(mode="json"),
    }
    commit.commit(manifest, _loader(settings))
    return EtlResult(
        run_id=run_id,
        status="committed",
        inputs=batch.inputs,
        rows_in=accounting["rows_in"],
        loaded=accounting["loaded"],
        quarantined=accounting["quarantined"],
        duplicates_dropped=accounting["duplicates_dropped"],
        quarantined_by_reason=accounting["quarantined_by_reason"],
        objects_in=accounting["objects_in"],
        objects_quarantined=objects_quarantined,
        notes=batch.notes,
        feature_rows=n_features,
        warehouse_rows_upserted=n_features,
        report_json_uri=batch.report.get("json"),
        report_html_uri=batch.report.get("html"),
        manifest_uri=lake._manifest_uri(layout, manifest),
    )


def run_etl(
    settings: Settings,
    *,
    now: datetime | None = None,
    rules: RuleSet | None = None,
    source: str | None = None,
) -> EtlResult:
    """Extract, transform, check and load every raw object not yet consumed.

    Args:
        settings: where the zones and the warehouse are.
        now: the reference time for freshness rules and run ids (default: now).
        rules: the quality rules (default: :func:`~mlops_kit.etl.quality.default_rules`
            with the thresholds from ``settings.quality``).
        source: only consume raw objects of this source.

    Raises:
        DataQualityError: see :func:`quality_check`.
    """
    batch = extract_transform(settings, now=now, source=source)
    if batch is None:
        return EtlResult(run_id="", status="noop")
    return load(settings, quality_check(settings, batch, rules))


def _quarantine_rows(settings: Settings, rejected: pa.Table) -> pa.Table:
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


def _features(settings: Settings, new: pa.Table, now: datetime) -> dict[date, pa.Table]:
    """Recomputed feature partitions for every day the new records affect.

    A record at day ``d`` enters the windows of the buckets up to the longest window
    later, so those days are rewritten; computing them needs the records of as many
    days before.
    """
    if new.num_rows == 0:
        return {}
    records = record_layout_of(settings)
    reach = max(records.windows.values(), default=records.grain)
    span = max(1, -(-int(reach.total_seconds()) // 86400))
    new_dates = _dates(new[records.time])
    around = {d + timedelta(days=k) for d in new_dates for k in range(-span, span + 1)}
    nearby = read_table(settings, READINGS, around)
    readings = pa.concat_tables([nearby, new]) if nearby.num_rows else new
    have = _dates(readings[records.time])
    later = {d + timedelta(days=k) for d in new_dates for k in range(1, span + 1)}
    affected = new_dates | (later & have)
    features = aggregate(readings, records, created_at=now)
    start = pc.subtract(features[TIMESTAMP], pa.scalar(records.grain))
    parts = _by_date(features.append_column("_bucket", start), "_bucket")
    return {d: t.drop_columns(["_bucket"]) for d, t in parts.items() if d in affected}


def _redact(url: str | None) -> str | None:
    if not url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
