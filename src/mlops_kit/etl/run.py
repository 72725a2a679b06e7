"""The ETL run: extract -> transform -> quality check -> load, with full accounting.

Every run states ``rows_in = loaded + quarantined + duplicates_dropped`` in its
manifest. Re-running with no new raw objects changes nothing. A crash at any point
leaves the previous or the new committed state (see :mod:`mlops_kit.etl.lake`), and the
next run completes the work.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mlops_kit import storage
from mlops_kit._faults import maybe_fail
from mlops_kit.config import Settings
from mlops_kit.etl import lake
from mlops_kit.etl.devices import read_device_registry
from mlops_kit.etl.errors import DataQualityError, EtlError
from mlops_kit.etl.extract import extract
from mlops_kit.etl.layout import TIMESTAMP
from mlops_kit.etl.quality import RuleSet, check, default_rules
from mlops_kit.etl.report import build_report, render_html
from mlops_kit.etl.transform import aggregate, normalise, to_readings
from mlops_kit.etl.zones import (
    QUARANTINE,
    QUARANTINED_OBJECTS,
    READINGS,
    StagedRows,
    by_date,
    check_spec_evolution,
    dates_of,
    features_table,
    layout_of,
    loader,
    quarantine_rows,
    read_options,
    read_table,
    record_layout_of,
    redact,
    stage_processed,
    warehouse_of,
    warehouse_table,
)
from mlops_kit.ingest.raw_zone import list_raw

__all__ = [
    "QUARANTINE",
    "QUARANTINED_OBJECTS",
    "READINGS",
    "Batch",
    "EtlResult",
    "extract_transform",
    "features_table",
    "layout_of",
    "load",
    "quality_check",
    "read_options",
    "read_table",
    "record_layout_of",
    "run_etl",
    "warehouse_of",
    "warehouse_table",
]


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
    execution: dict[str, Any] = field(default_factory=dict)
    """Where the run ran and its time per stage (the manifest's ``execution``)."""

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.loaded + self.quarantined + self.duplicates_dropped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _run_id(inputs: list[str], now: datetime, seq: int) -> str:
    """Deterministic for the same inputs at the same point of the lake's history (a
    released object read again later gets a new id)."""
    key = "\n".join([str(seq), *sorted(inputs)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"{now:%Y%m%dT%H%M%S}Z-{digest}"


@contextmanager
def timed(timings: dict[str, dict[str, Any]], stage: str) -> Iterator[None]:
    """Add the wall and CPU seconds (this process's) of the block to ``timings[stage]``."""
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        entry = timings.setdefault(stage, {"wall_s": 0.0, "cpu_s": 0.0})
        entry["wall_s"] = round(entry["wall_s"] + time.perf_counter() - wall, 4)
        entry["cpu_s"] = round(entry["cpu_s"] + time.process_time() - cpu, 4)


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
    timings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per stage: ``wall_s`` and ``cpu_s`` (see :func:`timed`)."""
    loaded: int | None = None
    """Rows loaded when ``rows`` does not hold them (a backend that staged them itself)."""

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
            "loaded": (self.rows.num_rows if self.loaded is None else self.loaded)
            if self.checked
            else 0,
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
            "timings": self.timings,
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
            timings=meta.get("timings", {}),
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
    now = now or datetime.now(timezone.utc)
    pending = pending_inputs(settings, source)
    if not pending:
        return None
    layout = layout_of(settings)
    timings: dict[str, dict[str, float]] = {}
    with timed(timings, "extract"):
        base, per_object = read_options(settings)
        extracted = extract(pending, base, per_object)
        rows = normalise(extracted.rows, base.layout)
    return Batch(
        run_id=run_id_for(layout, pending, now),
        now=now,
        inputs=pending,
        rows_in=extracted.records_in,
        rows=rows,
        quarantine=extracted.rejected_table(),
        objects=[o.to_dict() for o in extracted.objects],
        timings=timings,
    )


def pending_inputs(settings: Settings, source: str | None = None) -> list[str]:
    """Raw objects not yet consumed by a committed run, after completing any commit a
    crashed run left journaled and refusing a spec that cannot replace the lake's."""
    storage.configure_from_settings(settings)
    layout = layout_of(settings)
    lake.recover(layout, loader(settings))
    check_spec_evolution(settings)
    done = lake.processed_inputs(layout)
    return [u for u in list_raw(settings.storage.raw_uri or "", source) if u not in done]


def run_id_for(layout: lake.Layout, inputs: list[str], now: datetime) -> str:
    """The id of a run over ``inputs`` at this point of the lake's history."""
    return _run_id(inputs, now, len(lake.manifests(layout)))


def quality_check(settings: Settings, batch: Batch, rules: RuleSet | None = None) -> Batch:
    """Apply the quality rules; write the report; fail above the quarantine threshold.

    Raises:
        DataQualityError: when the quarantine rate exceeds
            ``settings.quality.max_quarantine_rate``; nothing is loaded, the report and
            the rejected rows are written under the reports zone.
    """
    storage.configure_from_settings(settings)
    records = record_layout_of(settings)
    rules = rules_of(settings, rules)
    timings = dict(batch.timings)
    with timed(timings, "quality"):
        typed = batch.rows
        new_dates = dates_of(typed[records.time].drop_null()) if typed.num_rows else set()
        existing = read_table(settings, READINGS, new_dates) if new_dates else None
        references = references_of(settings, rules)
        result = check(typed, rules, now=batch.now, references=references, existing_keys=existing)
        checked = Batch(
            run_id=batch.run_id,
            now=batch.now,
            inputs=batch.inputs,
            rows_in=batch.rows_in,
            rows=to_readings(result.valid, records),
            quarantine=pa.concat_tables(
                [batch.quarantine, quarantine_rows(settings, result.quarantined)]
            ),
            duplicates_dropped=result.duplicates_dropped,
            checked=True,
            objects=batch.objects,
            timings=timings,
        )
    gate(settings, checked)
    return checked


def rules_of(settings: Settings, rules: RuleSet | None = None) -> RuleSet:
    """``rules``, or the spec's default rules with the thresholds of ``settings.quality``,
    keyed by the spec's unique key."""
    records = record_layout_of(settings)
    q = settings.quality
    return (
        rules
        or default_rules(
            records.spec,
            q.max_future_skew_s if "max_future_skew_s" in q.model_fields_set else None,
            q.max_age_days if "max_age_days" in q.model_fields_set else None,
        )
    ).keyed(records.spec)


def references_of(settings: Settings, rules: RuleSet) -> dict[str, Any]:
    """The reference tables the rules need (the device registry for referential rules)."""
    needs_devices = any(getattr(r, "kind", "") == "referential" for r in rules.rules)
    return {"devices": read_device_registry(settings)} if needs_devices else {}


def gate(settings: Settings, checked: Batch) -> None:
    """Check the accounting balances, write the quality report, and stop above the
    quarantine threshold (see :func:`quality_check`)."""
    batch = checked
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


def load(settings: Settings, batch: Batch) -> EtlResult:
    """Commit a checked batch: processed readings, features, quarantine, warehouse, manifest."""
    if not batch.checked:
        raise EtlError("load takes a batch that went through quality_check first")
    storage.configure_from_settings(settings)
    layout = layout_of(settings)
    run_id, readings = batch.run_id, batch.rows
    if any(m["run_id"] == run_id for m in lake.manifests(layout)):
        raise EtlError(f"run {run_id} is already committed; nothing to load")
    timings = batch.timings
    commit = lake.Commit(layout, run_id)
    records = record_layout_of(settings)
    with timed(timings, "transform"):
        around, affected = feature_days(settings, dates_of(readings[records.time]))
        feature_tables = features_for(settings, readings, batch.now, around, affected)
    started = (time.perf_counter(), time.process_time())
    staged = stage_processed(commit, records, readings, feature_tables)
    execution = {"backend": "local", "workers": 1}
    return finish(settings, batch, commit, staged, execution, ("load", *started))


def finish(
    settings: Settings,
    batch: Batch,
    commit: lake.Commit,
    staged: StagedRows,
    execution: dict[str, Any],
    stage: tuple[str, float, float],
) -> EtlResult:
    """Stage the quarantine, then commit the run with its manifest (the commit point).

    ``staged`` holds the processed files the backend staged in ``commit``; the feature
    days it rewrites replace their live files. ``stage`` names the last stage and when it
    began (``time.perf_counter()``, ``time.process_time()``): it is timed up to the
    journal, the last moment the manifest can record.
    """
    layout = layout_of(settings)
    run_id, now, quarantine = batch.run_id, batch.now, batch.quarantine
    spec = record_layout_of(settings).spec
    features = spec.feature_table
    outputs: dict[str, dict[str, list[str]]] = {
        READINGS: {"added": list(staged.readings), "removed": []},
        features: {"added": [], "removed": []},
        QUARANTINE: {"added": [], "removed": []},
    }
    live_features = lake.live_files(layout, features)
    feature_files = []
    for day, files in sorted(staged.features.items()):
        replaced = [f for f in live_features if f"/date={day}/" in f.replace("\\", "/")]
        commit.replace(replaced)
        outputs[features]["added"].extend(files)
        outputs[features]["removed"].extend(replaced)
        feature_files.extend(files)
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
    name, wall, cpu = stage
    batch.timings[name] = {
        **batch.timings.get(name, {}),
        "wall_s": round(time.perf_counter() - wall, 4),
        "cpu_s": round(time.process_time() - cpu, 4),
    }

    accounting = batch.accounting
    ran = {**execution, "stages": batch.timings}
    table = warehouse_table(settings)
    commit.warehouse = {"table": table, "files": feature_files, "run_id": run_id}
    manifest = {
        "run_id": run_id,
        "committed_seq": len(lake.manifests(layout)) + 1,
        "created_at": now.isoformat(),
        "inputs": batch.inputs,
        "accounting": accounting,
        "outputs": outputs,
        "feature_rows": staged.feature_rows,
        "objects_quarantined": objects_quarantined,
        "notes": batch.notes,
        "report": batch.report,
        "warehouse": {"url": redact(settings.warehouse.url), "table": table},
        "execution": ran,
        "dataset": spec.lineage(),
        "dataset_spec": spec.model_dump(mode="json"),
    }
    commit.commit(manifest, loader(settings))
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
        feature_rows=staged.feature_rows,
        warehouse_rows_upserted=staged.feature_rows,
        report_json_uri=batch.report.get("json"),
        report_html_uri=batch.report.get("html"),
        manifest_uri=lake._manifest_uri(layout, manifest),
        execution=ran,
    )


def run_etl(
    settings: Settings,
    *,
    now: datetime | None = None,
    rules: RuleSet | None = None,
    source: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> EtlResult:
    """Extract, transform, check and load every raw object not yet consumed.

    Runs where ``settings.etl.backend`` says: in this process (``local``) or as Ray tasks
    (``ray``, see :mod:`mlops_kit.etl.ray_backend`); both commit the same rows.

    Args:
        settings: where the zones and the warehouse are.
        now: the reference time for freshness rules and run ids (default: now).
        rules: the quality rules (default: :func:`~mlops_kit.etl.quality.default_rules`
            with the thresholds from ``settings.quality``).
        source: only consume raw objects of this source.
        progress: called as ``progress(stage, done, total)`` as each stage advances.

    Raises:
        DataQualityError: see :func:`quality_check`.
    """
    if settings.etl.backend == "ray":
        from mlops_kit.etl.ray_backend import run_etl_ray

        return run_etl_ray(settings, now=now, rules=rules, source=source, progress=progress)

    def step(stage: str, done: int) -> None:
        if progress:
            progress(stage, done, 1)

    step("extract", 0)
    batch = extract_transform(settings, now=now, source=source)
    if batch is None:
        return EtlResult(run_id="", status="noop")
    step("extract", 1)
    step("quality", 0)
    checked = quality_check(settings, batch, rules)
    step("quality", 1)
    step("load", 0)
    result = load(settings, checked)
    step("load", 1)
    return result


def feature_days(settings: Settings, new_dates: set[date]) -> tuple[set[date], set[date]]:
    """The days whose readings feed the recomputed features, and the days recomputed.

    A record at day ``d`` enters the windows of the buckets up to the longest window
    later, so those days are rewritten (where the lake has readings); computing them
    needs the records of as many days before.
    """
    records = record_layout_of(settings)
    reach = max(records.windows.values(), default=records.grain)
    span = max(1, -(-int(reach.total_seconds()) // 86400))
    around = {d + timedelta(days=k) for d in new_dates for k in range(-span, span + 1)}
    later = {d + timedelta(days=k) for d in new_dates for k in range(1, span + 1)}
    have = {
        date.fromisoformat(part[5:])
        for f in lake.live_files(layout_of(settings), READINGS)
        for part in f.replace("\\", "/").split("/")
        if part.startswith("date=")
    }
    return around, new_dates | (later & have)


def features_for(
    settings: Settings,
    new: pa.Table,
    now: datetime,
    around: set[date],
    affected: set[date],
    keep: Callable[[pa.Table], pa.Table] | None = None,
) -> dict[date, pa.Table]:
    """Recomputed feature partitions of the ``affected`` days (see :func:`feature_days`),
    from the committed readings of the days ``around`` and the ``new`` ones.

    ``keep`` narrows the committed readings (a backend computing one entity partition
    passes its filter); every window is per entity, so a partition's features are
    exactly the whole's restricted to its entities.
    """
    if not affected:
        return {}
    records = record_layout_of(settings)
    nearby = read_table(settings, READINGS, around)
    if keep is not None and nearby.num_rows:
        nearby = keep(nearby)
    readings = pa.concat_tables([nearby, new]) if nearby.num_rows else new
    if readings.num_rows == 0:
        return {}
    features = aggregate(readings, records, created_at=now)
    start = pc.subtract(features[TIMESTAMP], pa.scalar(records.grain))
    parts = by_date(features.append_column("_bucket", start), "_bucket")
    return {d: t.drop_columns(["_bucket"]) for d, t in parts.items() if d in affected}
