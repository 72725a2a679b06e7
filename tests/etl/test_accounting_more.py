"""The ETL run's steps with what the settings choose: the parse options and each released
object's encoding, another dataset spec from extraction to the committed readings, the
batch's own time for freshness, the objects and notes of the quality report, and what a
backend recorded of the stage the commit closes."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mlops_kit import storage
from mlops_kit.config import Settings, load_settings
from mlops_kit.etl import lake
from mlops_kit.etl import run as r

from .conftest import NOW
from .test_accounting import MIXED, put, rec


def test_extract_transform_reads_with_the_parse_settings_and_each_release(
    settings: Settings,
) -> None:
    """An object is decoded in ``parse.encoding``, a released one in its release's."""
    settings.parse.encoding = "latin-1"
    raw = settings.storage.raw_uri or ""
    latin = storage.join(raw, "source=f", "date=2026-01-01", "a.jsonl")
    storage.write_bytes(latin, (rec() + "\n{caf\u00e9\n").encode("latin-1"))
    cyrillic = storage.join(raw, "source=f", "date=2026-01-01", "b.jsonl")
    storage.write_bytes(cyrillic, (rec("dev-0001") + "\n{\u0436\n").encode("cp1251"))
    lake.write_release(
        r.layout_of(settings), {"uri": cyrillic, "after_seq": 0, "encoding": "cp1251"}
    )
    batch = r.extract_transform(settings, now=NOW)
    assert batch is not None and batch.inputs == [latin, cyrillic]
    assert [(o["uri"], o["read_as"]["encoding"]) for o in batch.objects] == [
        (latin, "latin-1"),
        (cyrillic, "cp1251"),
    ]
    assert batch.quarantined_objects == []
    assert (batch.rows_in, batch.rows.num_rows) == (4, 2)
    assert batch.quarantine["record"].to_pylist() == ["{caf\u00e9", "{\u0436"]


def test_a_run_on_another_spec_normalises_checks_and_commits_its_rows(home: Path) -> None:
    """Ids are cleaned, units converted and readings typed by the settings' spec."""
    s = load_settings(home=home, dataset="machine_telemetry")
    good = {"temperature": 40.0, "current": 10.0, "cycle_count": 7, "line": "A", "fault": 0}
    lines = [
        json.dumps(
            {"machine_id": " m-01 ", "recorded_at": "2026-01-01T00:00:00Z", "torque": 10.0, **good}
        ),
        json.dumps(
            {
                "machine_id": "m-02",
                "recorded_at": "2026-01-01T00:10:00Z",
                "torque": 10.0,
                "torque_unit": "lbf*ft",
                **good,
            }
        ),
    ]
    put(s, lines)
    batch = r.extract_transform(s, now=NOW)
    assert batch is not None
    assert batch.rows["machine_id"].to_pylist() == ["M-01", "M-02"]
    assert batch.rows["torque"].to_pylist() == [10.0, pytest.approx(13.558179483)]
    checked = r.quality_check(s, batch)
    assert checked.rows.schema.equals(r.record_layout_of(s).reading_schema)
    assert checked.accounting["loaded"] == 2
    res = r.load(s, checked)
    assert (res.rows_in, res.loaded, res.quarantined) == (2, 2, 0)
    rows = r.read_table(s, r.READINGS)
    assert rows["machine_id"].to_pylist() == ["M-01", "M-02"]
    assert "torque_unit" not in rows.column_names


def test_quality_check_judges_freshness_at_the_batch_time(settings: Settings) -> None:
    """Not at the clock's: a batch of 2020 keeps records of 2010 and of its own minutes."""
    then = datetime(2020, 1, 1, tzinfo=timezone.utc)
    stamps = [then - timedelta(days=3600), then + timedelta(seconds=240), then + timedelta(hours=1)]
    settings.quality.max_quarantine_rate = 0.5
    put(settings, [rec(f"dev-000{i}", t.isoformat()) for i, t in enumerate(stamps)])
    checked = r.quality_check(settings, r.extract_transform(settings, now=then))  # type: ignore[arg-type]
    assert checked.accounting["quarantined_by_reason"] == {"future_timestamp": 1}
    assert checked.rows["ts"].to_pylist() == stamps[:2]


def test_the_quality_report_lists_the_objects_quarantined_whole_and_the_notes(
    settings: Settings,
) -> None:
    settings.quality.max_quarantine_rate = 0.5
    mixed = put(settings, [*MIXED[:4], rec("dev-0002", colour="red")])
    empty = put(settings, [], source="api-x")
    checked = r.quality_check(settings, r.extract_transform(settings, now=NOW))  # type: ignore[arg-type]
    report = storage.read_json(checked.report["json"])
    assert report["objects_quarantined"] == [
        {
            "uri": empty,
            "reason": "empty_object",
            "detail": "the object has no bytes; nothing to read",
        }
    ]
    assert [(n["uri"], n["kind"], n["columns"]) for n in report["notes"]] == [
        (mixed, "extra_columns", ["colour"])
    ]
    assert report["notes"] == checked.notes


def test_finish_keeps_what_a_backend_recorded_of_its_last_stage(settings: Settings) -> None:
    """The last stage's times are added to what the backend put there (its tasks and
    workers), and the execution is the backend's."""
    put(settings, [rec()])
    checked = r.quality_check(settings, r.extract_transform(settings, now=NOW))  # type: ignore[arg-type]
    commit = lake.Commit(r.layout_of(settings), checked.run_id)
    staged = r.stage_processed(commit, r.record_layout_of(settings), checked.rows, {})
    checked.timings["commit"] = {"tasks": 2, "workers": 1}
    started = ("commit", time.perf_counter(), time.process_time())
    res = r.finish(settings, checked, commit, staged, {"backend": "b", "workers": 3}, started)
    assert list(res.execution) == ["backend", "workers", "stages"]
    assert (res.execution["backend"], res.execution["workers"]) == ("b", 3)
    stages = res.execution["stages"]
    assert list(stages) == ["extract", "quality", "commit"]
    assert set(stages["commit"]) == {"tasks", "workers", "wall_s", "cpu_s"}
    assert (stages["commit"]["tasks"], stages["commit"]["workers"]) == (2, 1)
    assert (res.loaded, storage.read_json(res.manifest_uri or "")["execution"]) == (
        1,
        res.execution,
    )
