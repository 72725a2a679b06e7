"""Runtime of :mod:`mlops_kit.components.etl`: transform -> quality_check -> load, etl_run."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from mlops_kit import storage
from mlops_kit.components.runtime import (
    ACCOUNTING_METRICS,
    NOOP,
    ArtifactLike,
    MetricsLike,
    listed,
    parse_now,
    read_landed,
    settings_from_json,
)


def empty_batch(settings: Any, now: datetime | None = None) -> Any:
    """The batch of a run that found nothing new: no run id, no inputs, no rows."""
    from mlops_kit.etl.extract import QUARANTINE_SCHEMA
    from mlops_kit.etl.run import Batch, record_layout_of

    return Batch(
        run_id="",
        now=now or datetime.now(timezone.utc),
        inputs=[],
        rows_in=0,
        rows=record_layout_of(settings).extracted_schema.empty_table(),
        quarantine=QUARANTINE_SCHEMA.empty_table(),
    )


def is_noop(batch: Any) -> bool:
    """True for the empty batch of :func:`empty_batch`."""
    return not batch.run_id and not batch.inputs


def _log_accounting(metrics: MetricsLike, acc: dict[str, Any]) -> float:
    rate = acc["quarantined"] / acc["rows_in"] if acc["rows_in"] else 0.0
    for name in ACCOUNTING_METRICS[:-1]:
        metrics.log_metric(name, int(acc[name]))
    metrics.log_metric("quarantine_rate", round(rate, 6))
    return rate


def transform_step(
    batch: ArtifactLike,
    files_landed: ArtifactLike | None = None,
    api_landed: ArtifactLike | None = None,
    stream_landed: ArtifactLike | None = None,
    source: str = "",
    now: str = "",
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Extract and normalise every raw object not yet committed into a batch.

    The ``*_landed`` inputs are for lineage and ordering: the batch holds every pending
    raw object (including those of earlier runs that failed), whether listed there or not.
    When nothing is pending the empty batch is written and ``status`` is ``noop``.

    Args:
        batch: output; receives the :class:`~mlops_kit.etl.run.Batch` folder.
        files_landed: the landed objects of a file ingestion (optional).
        api_landed: the landed objects of an API ingestion (optional).
        stream_landed: the landed objects of a stream ingestion (optional).
        source: only take raw objects of this source (``""``: every source).
        now: reference time of the run (ISO 8601; ``""``: the current time).
        settings_json: settings overrides (see :func:`settings_from_json`).

    Returns:
        The metadata written on ``batch``.
    """
    from mlops_kit.etl.run import extract_transform

    settings = settings_from_json(settings_json)
    at = parse_now(now)
    landed = [
        row["uri"] for art in (files_landed, api_landed, stream_landed) for row in read_landed(art)
    ]
    result = extract_transform(settings, now=at, source=source or None)
    if result is None:
        result = empty_batch(settings, at)
    result.save(batch.path)
    pending = set(result.inputs)
    meta = {
        "status": NOOP if is_noop(result) else "pending",
        "run_id": result.run_id,
        "now": result.now.isoformat(),
        "inputs": len(result.inputs),
        "input_uris": listed(result.inputs),
        "rows_in": result.rows_in,
        "rows": result.rows.num_rows,
        "rejected_at_extract": result.quarantine.num_rows,
        "landed_objects": len(landed),
        "landed_in_batch": sum(1 for u in landed if u in pending),
    }
    batch.metadata.update(meta)
    return meta


def _noop_html(what: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>mlops_kit quality report"
        "</title></head><body style='font:14px system-ui,sans-serif;margin:2rem'>"
        f"<h1>Nothing to check</h1><p>{what}</p></body></html>"
    )


def quality_check_step(
    batch: ArtifactLike,
    checked: ArtifactLike,
    metrics: MetricsLike,
    report: ArtifactLike,
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Apply the quality rules to a batch; fail above the quarantine threshold.

    Args:
        batch: input; the batch of the transform step.
        checked: output; the checked batch (valid readings plus every quarantined row).
        metrics: output; ``rows_in``, ``loaded``, ``quarantined``, ``duplicates_dropped``,
            ``quarantine_rate``.
        report: output; the quality report as HTML.
        settings_json: settings overrides (see :func:`settings_from_json`).

    Returns:
        The metadata written on ``checked``.

    Raises:
        DataQualityError: the quarantine rate is above
            ``settings.quality.max_quarantine_rate``; the report and the rejected rows
            are in the reports zone and the message says where.
    """
    from mlops_kit.etl.run import Batch, quality_check

    settings = settings_from_json(settings_json)
    given = Batch.load(batch.path)
    if is_noop(given):
        given.checked = True
        given.save(checked.path)
        rate = _log_accounting(metrics, given.accounting)
        with open(report.path, "w", encoding="utf-8") as f:
            f.write(_noop_html("No new raw objects: the run found nothing to check."))
        meta: dict[str, Any] = {"status": NOOP, "run_id": "", "quarantine_rate": rate}
        checked.metadata.update(meta)
        report.metadata.update(meta)
        return meta
    result = quality_check(settings, given)
    result.save(checked.path)
    acc = result.accounting
    rate = _log_accounting(metrics, acc)
    storage.write_bytes(report.path, storage.read_bytes(result.report["html"]))
    meta = {
        "status": "checked",
        "run_id": result.run_id,
        "rows_in": acc["rows_in"],
        "valid": acc["loaded"],
        "quarantined": acc["quarantined"],
        "duplicates_dropped": acc["duplicates_dropped"],
        "quarantined_by_reason": acc["quarantined_by_reason"],
        "quarantine_rate": rate,
        "max_quarantine_rate": settings.quality.max_quarantine_rate,
        "passed": bool(result.report.get("passed", True)),
        "report_json_uri": result.report.get("json"),
        "report_html_uri": result.report.get("html"),
    }
    checked.metadata.update(meta)
    report.metadata.update(
        {"run_id": result.run_id, "source_uri": result.report.get("html"), "passed": meta["passed"]}
    )
    return meta


def load_step(
    checked: ArtifactLike, metrics: MetricsLike, settings_json: str = "{}"
) -> dict[str, Any]:
    """Commit a checked batch: processed readings, features, quarantine, warehouse, manifest.

    Args:
        checked: input; the batch of the quality-check step.
        metrics: output; the accounting (``rows_in``, ``loaded``, ``quarantined``,
            ``duplicates_dropped``, ``quarantine_rate``) plus ``feature_rows`` and
            ``warehouse_rows_upserted``; its metadata also names ``run_id``, ``status``
            and ``manifest_uri``.
        settings_json: settings overrides (see :func:`settings_from_json`).

    Returns:
        The run's :class:`~mlops_kit.etl.run.EtlResult` as a dict.
    """
    from mlops_kit.etl.run import Batch, EtlResult, load

    settings = settings_from_json(settings_json)
    given = Batch.load(checked.path)
    result = EtlResult(run_id="", status=NOOP) if is_noop(given) else load(settings, given)
    _log_accounting(metrics, result.to_dict())
    metrics.log_metric("feature_rows", result.feature_rows)
    metrics.log_metric("warehouse_rows_upserted", result.warehouse_rows_upserted)
    metrics.metadata.update(
        {
            "run_id": result.run_id,
            "status": result.status,
            "manifest_uri": result.manifest_uri or "",
            "report_html_uri": result.report_html_uri or "",
        }
    )
    return result.to_dict()


def etl_run_step(
    metrics: MetricsLike,
    report: ArtifactLike,
    files_landed: ArtifactLike | None = None,
    api_landed: ArtifactLike | None = None,
    stream_landed: ArtifactLike | None = None,
    backend: str = "local",
    workers: int = 0,
    ray_address: str = "",
    source: str = "",
    now: str = "",
    settings_json: str = "{}",
) -> dict[str, Any]:
    """The whole ETL run on ``backend`` (see :func:`mlops_kit.etl.run.run_etl`).

    Args:
        metrics: output; the accounting plus ``feature_rows``; its metadata names the
            ``run_id``, ``status``, ``backend``, ``manifest_uri`` and each stage's
            ``stage_<name>_wall_s`` / ``stage_<name>_cpu_s``.
        report: output; receives the quality report (HTML).
        files_landed / api_landed / stream_landed: inputs, for lineage and ordering.
        backend: ``local`` or ``ray``.
        workers: Ray tasks per stage (0: the ``ray.workers`` setting).
        ray_address: the Ray cluster ("": a local one).
        source: only raw objects of this source ("": all).
        now: the run's reference time, ISO 8601 ("": now).
        settings_json: settings overrides (see :func:`settings_from_json`).

    Returns:
        The run's :class:`~mlops_kit.etl.run.EtlResult` as a dict.

    Raises:
        ConfigError: ``backend`` is neither ``local`` nor ``ray``.
        DataQualityError: above the quarantine threshold; nothing is committed.
    """
    import json

    from mlops_kit.etl.run import run_etl

    for landed in (files_landed, api_landed, stream_landed):
        if landed is not None:
            read_landed(landed)
    overrides = json.loads(settings_json or "{}")
    overrides["etl"] = {**overrides.get("etl", {}), "backend": backend}
    ray = {**overrides.get("ray", {})}
    if workers:
        ray["workers"] = workers
    if ray_address:
        ray["address"] = ray_address
    if ray:
        overrides["ray"] = ray
    settings = settings_from_json(json.dumps(overrides))
    result = run_etl(settings, now=parse_now(now), source=source or None)
    acc = result.to_dict()
    _log_accounting(metrics, acc)
    metrics.log_metric("feature_rows", result.feature_rows)
    meta: dict[str, Any] = {
        "run_id": result.run_id,
        "status": result.status,
        "backend": backend,
        "manifest_uri": result.manifest_uri or "",
        "report_html_uri": result.report_html_uri or "",
    }
    for stage, t in result.execution.get("stages", {}).items():
        for key in ("wall_s", "cpu_s"):
            if key in t:
                meta[f"stage_{stage}_{key}"] = t[key]
    metrics.metadata.update(meta)
    if result.report_html_uri:
        storage.write_bytes(report.path, storage.read_bytes(result.report_html_uri))
    else:
        with open(report.path, "w", encoding="utf-8") as f:
            f.write(_noop_html("No new raw objects: the run found nothing to check."))
    report.metadata.update({"run_id": result.run_id, "source_uri": result.report_html_uri or ""})
    return acc
