"""The ETL run's steps driven directly on a tiny lake: the accounting identity per reason,
run ids, stage timings, the batch between steps, the quality gate's refusals and the
commit's manifest (the feature days a run recomputes: test_zones)."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from mlops_kit import storage
from mlops_kit.config import Settings, load_settings
from mlops_kit.errors import DataQualityError
from mlops_kit.etl import lake
from mlops_kit.etl import run as r
from mlops_kit.etl.errors import EtlError
from mlops_kit.etl.extract import QUARANTINE_SCHEMA
from mlops_kit.etl.quality import Freshness, NotNull, Referential, RuleSet
from mlops_kit.ingest.raw_zone import land

from .conftest import NOW

GOOD = {
    "temperature": 20.0,
    "vibration": 1.0,
    "pressure": 100.0,
    "humidity": 40.0,
    "rpm": 1500.0,
    "voltage": 230.0,
    "failure": 0,
}


def rec(device: str = "dev-0000", ts: str = "2026-01-01T00:00:00Z", **over: object) -> str:
    """One raw JSON record, valid unless ``over`` says otherwise."""
    return json.dumps({"device_id": device, "ts": ts, **GOOD, **over})


def put(settings: Settings, lines: list[str], source: str = "files") -> str:
    """Land JSON lines as one raw object; returns its URI."""
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    return land(settings.storage.raw_uri or "", source, data, "jsonl").uri


MIXED = [
    rec("dev-0000", "2026-01-01T00:00:00Z"),
    rec("dev-0000", "2026-01-01T00:15:00Z"),
    rec("dev-0001", "2026-01-01T00:00:00Z"),
    rec("dev-0001", "2026-01-02T00:15:00Z"),
    rec("dev-0000", "2026-01-01T00:00:00Z"),  # an exact duplicate: dropped, counted
    rec("dev-0002", "2026-01-01T00:30:00Z", temperature=999.0),
    rec("dev-9999", "2026-01-01T00:30:00Z"),
    "{not json",
]
"""8 records: 4 loaded, 1 duplicate, 3 quarantined (range, unknown id, malformed)."""


def land_mixed(settings: Settings) -> Settings:
    """Land :data:`MIXED`, with a quarantine threshold that lets it through."""
    settings.quality.max_quarantine_rate = 0.5
    put(settings, MIXED)
    return settings


@pytest.fixture
def mixed(settings: Settings) -> Settings:
    return land_mixed(settings)


def within(timings: dict, elapsed_wall: float, elapsed_cpu: float) -> None:
    """Each stage took no more than the whole it ran in, in seconds rounded to 0.1 ms."""
    for stage, t in timings.items():
        assert set(t) == {"wall_s", "cpu_s"}, stage
        assert isinstance(t["wall_s"], float) and isinstance(t["cpu_s"], float), (stage, t)
        assert 0.0 <= t["wall_s"] <= elapsed_wall + 1e-4, (stage, t)
        assert 0.0 <= t["cpu_s"] <= elapsed_cpu + 1e-4, (stage, t)
        assert round(t["wall_s"], 4) == t["wall_s"] and round(t["cpu_s"], 4) == t["cpu_s"]


def test_etl_result_balances_only_when_every_row_is_accounted() -> None:
    ok = r.EtlResult(run_id="x", status="committed", rows_in=10, loaded=6, quarantined=3)
    ok.duplicates_dropped = 1
    assert ok.balanced
    for name in ("rows_in", "loaded", "quarantined", "duplicates_dropped"):
        off = r.EtlResult(**{**ok.to_dict(), name: getattr(ok, name) + 1})
        assert not off.balanced, name
    assert r.EtlResult(run_id="", status="noop").to_dict() == {
        "run_id": "",
        "status": "noop",
        "inputs": [],
        "rows_in": 0,
        "loaded": 0,
        "quarantined": 0,
        "duplicates_dropped": 0,
        "quarantined_by_reason": {},
        "objects_in": 0,
        "objects_quarantined": [],
        "notes": [],
        "feature_rows": 0,
        "warehouse_rows_upserted": 0,
        "report_json_uri": None,
        "report_html_uri": None,
        "manifest_uri": None,
        "execution": {},
    }


def test_run_id_is_stable_and_sensitive_to_inputs_time_and_history() -> None:
    digest = hashlib.sha256(b"3\na\nb").hexdigest()[:10]
    rid = r._run_id(["b", "a"], NOW, 3)
    assert rid == f"20260601T000000Z-{digest}"
    assert r._run_id(["a", "b"], NOW, 3) == rid
    assert r._run_id(["a", "b"], NOW, 4) != rid
    assert r._run_id(["a", "c"], NOW, 3) != rid
    assert r._run_id(["a"], NOW, 3) != rid
    later = r._run_id(["a", "b"], NOW + timedelta(seconds=1), 3)
    assert later == f"20260601T000001Z-{digest}"


def test_run_id_for_counts_the_committed_runs(mixed: Settings) -> None:
    layout = r.layout_of(mixed)
    assert r.run_id_for(layout, ["u"], NOW) == r._run_id(["u"], NOW, 0)
    r.run_etl(mixed, now=NOW)
    assert r.run_id_for(layout, ["u"], NOW) == r._run_id(["u"], NOW, 1)


def test_timed_adds_up_a_repeated_stage_and_records_a_failing_block() -> None:
    timings: dict = {}
    w0, c0 = time.perf_counter(), time.process_time()
    with r.timed(timings, "a"):
        sum(range(20000))
    with r.timed(timings, "b"), r.timed(timings, "a"):
        sum(range(20000))
    with pytest.raises(ValueError, match="boom"), r.timed(timings, "c"):
        raise ValueError("boom")
    within(timings, time.perf_counter() - w0, time.process_time() - c0)
    assert list(timings) == ["a", "b", "c"]
    first = dict(timings["a"])
    w1, c1 = time.perf_counter(), time.process_time()
    with r.timed(timings, "a"):
        sum(range(200000))
    dw, dc = time.perf_counter() - w1, time.process_time() - c1
    assert first["wall_s"] < timings["a"]["wall_s"] <= first["wall_s"] + dw + 1e-4
    assert first["cpu_s"] <= timings["a"]["cpu_s"] <= first["cpu_s"] + dc + 1e-4


def _batch(**over: object) -> r.Batch:
    quarantine = pa.Table.from_pylist(
        [
            {"reason": "out_of_range", "field": "t", "detail": "d", "record": "{}", "_line": 1},
            {"reason": "null", "field": "t", "detail": "d", "record": "{}", "_line": 2},
            {"reason": "out_of_range", "field": "t", "detail": "d", "record": "{}", "_line": 3},
        ],
        schema=QUARANTINE_SCHEMA,
    )
    base: dict = {
        "run_id": "run-1",
        "now": NOW,
        "inputs": ["s3://raw/a.jsonl", "s3://raw/b.csv", "s3://raw/c.csv"],
        "rows_in": 10,
        "rows": pa.table({"x": [1, 2, 3, 4, 5, 6]}),
        "quarantine": quarantine,
        "duplicates_dropped": 1,
        "checked": True,
        "objects": [
            {"uri": "s3://raw/a.jsonl", "records": 10, "notes": [{"kind": "extra", "detail": "n"}]},
            {"uri": "s3://raw/b.csv", "records": 0, "reason": "not_text", "detail": "x"},
            {
                "uri": "s3://raw/c.csv",
                "records": 0,
                "reason": "empty_object",
                "detail": "y",
                "notes": [{"kind": "drift", "detail": "t"}, {"kind": "extra", "detail": "m"}],
            },
        ],
    }
    base.update(over)
    return r.Batch(**base)


def test_batch_accounts_rows_and_objects_per_reason() -> None:
    b = _batch()
    assert [o["uri"] for o in b.quarantined_objects] == ["s3://raw/b.csv", "s3://raw/c.csv"]
    assert b.notes == [
        {"uri": "s3://raw/a.jsonl", "kind": "extra", "detail": "n"},
        {"uri": "s3://raw/c.csv", "kind": "drift", "detail": "t"},
        {"uri": "s3://raw/c.csv", "kind": "extra", "detail": "m"},
    ]
    assert b.accounting == {
        "rows_in": 10,
        "loaded": 6,
        "quarantined": 3,
        "duplicates_dropped": 1,
        "quarantined_by_reason": {"null": 1, "out_of_range": 2},
        "objects_in": 3,
        "objects_quarantined": 2,
        "objects_quarantined_by_reason": {"empty_object": 1, "not_text": 1},
    }
    assert list(b.accounting["quarantined_by_reason"]) == ["null", "out_of_range"]
    assert _batch(checked=False).accounting["loaded"] == 0
    assert _batch(loaded=4).accounting["loaded"] == 4
    assert _batch(checked=False, loaded=4).accounting["loaded"] == 0


def test_batch_save_and_load_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a file written beside the folder would be read back here
    b = _batch(timings={"extract": {"wall_s": 0.5, "cpu_s": 0.25}}, report={"passed": True})
    b.save(str(tmp_path / "b"))
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "batch.json",
        "quarantine.parquet",
        "rows.parquet",
    ]
    got = r.Batch.load(str(tmp_path / "b"))
    for name in ("run_id", "now", "inputs", "rows_in", "duplicates_dropped", "checked"):
        assert getattr(got, name) == getattr(b, name), name
    for name in ("report", "objects", "timings"):
        assert getattr(got, name) == getattr(b, name), name
    assert got.rows.equals(b.rows) and got.quarantine.equals(b.quarantine)
    assert got.accounting == b.accounting
    # a batch saved before objects and timings were kept loads with none
    meta = json.loads((tmp_path / "b" / "batch.json").read_text())
    del meta["objects"], meta["timings"]
    (tmp_path / "b" / "batch.json").write_text(json.dumps(meta))
    old = r.Batch.load(str(tmp_path / "b"))
    assert (old.objects, old.timings) == ([], {})


def test_extract_transform_reads_every_pending_object(mixed: Settings) -> None:
    empty = put(mixed, [], source="api-x")
    w0, c0 = time.perf_counter(), time.process_time()
    batch = r.extract_transform(mixed, now=NOW)
    within(batch.timings, time.perf_counter() - w0, time.process_time() - c0)
    assert batch is not None and list(batch.timings) == ["extract"]
    (jsonl,) = [u for u in batch.inputs if u.endswith(".jsonl") and u != empty]
    assert batch.inputs == sorted([empty, jsonl])
    assert batch.run_id == r._run_id(batch.inputs, NOW, 0) and batch.now == NOW
    assert (batch.rows_in, batch.rows.num_rows, batch.checked) == (8, 7, False)
    assert batch.quarantine["reason"].to_pylist() == ["malformed_json"]
    assert batch.quarantine["record"].to_pylist() == ["{not json"]
    assert [(o["uri"], o.get("reason")) for o in batch.quarantined_objects] == [
        (empty, "empty_object")
    ]
    assert batch.accounting["loaded"] == 0 and batch.duplicates_dropped == 0
    # only the source asked for, and nothing once every object is committed
    assert r.extract_transform(mixed, now=NOW, source="api-x").inputs == [empty]  # type: ignore[union-attr]
    r.run_etl(mixed, now=NOW)
    assert r.extract_transform(mixed, now=NOW) is None


def test_extract_transform_defaults_now_to_the_current_time(mixed: Settings) -> None:
    before = datetime.now(timezone.utc)
    batch = r.extract_transform(mixed)
    assert batch is not None
    assert before <= batch.now <= datetime.now(timezone.utc)
    assert batch.run_id.startswith(f"{batch.now:%Y%m%dT%H%M%S}Z-")


def test_pending_inputs_by_source_and_after_a_commit(settings: Settings) -> None:
    a = put(settings, [rec()], source="a")
    b = put(settings, [rec("dev-0001")], source="b")
    assert r.pending_inputs(settings) == sorted([a, b])
    assert r.pending_inputs(settings, "b") == [b]
    r.run_etl(settings, now=NOW, source="a")
    assert r.pending_inputs(settings) == [b]
    assert r.pending_inputs(settings, "a") == []


def test_pending_inputs_first_completes_a_journaled_commit(mixed: Settings) -> None:
    """A run that stopped after its journal is rolled forward: its warehouse rows loaded,
    its manifest written, its inputs no longer pending."""
    checked = r.quality_check(mixed, r.extract_transform(mixed, now=NOW))  # type: ignore[arg-type]
    layout = r.layout_of(mixed)
    commit = lake.Commit(layout, checked.run_id)
    records = r.record_layout_of(mixed)
    around, affected = r.feature_days(mixed, {date(2026, 1, 1), date(2026, 1, 2)})
    features = r.features_for(mixed, checked.rows, NOW, around, affected)
    staged = r.stage_processed(commit, records, checked.rows, features)
    table = r.warehouse_table(mixed)
    commit.warehouse = {"table": table, "files": staged.features["2026-01-01"], "run_id": "j"}
    manifest = {"run_id": checked.run_id, "committed_seq": 1, "inputs": checked.inputs}
    storage.write_json(
        commit.journal_uri(),
        {"run_id": checked.run_id, "moves": commit.moves, "deletes": [], "manifest": manifest}
        | {"warehouse": commit.warehouse},
    )
    assert lake.manifests(layout) == []
    assert r.pending_inputs(mixed) == []
    assert [m["run_id"] for m in lake.manifests(layout)] == [checked.run_id]
    assert r.warehouse_of(mixed).count(table) == 2


def test_quality_check_accounts_every_record_with_its_reason(mixed: Settings) -> None:
    batch = r.extract_transform(mixed, now=NOW)
    assert batch is not None
    w0, c0 = time.perf_counter(), time.process_time()
    checked = r.quality_check(mixed, batch)
    within(checked.timings, time.perf_counter() - w0 + 1, time.process_time() - c0 + 1)
    assert list(checked.timings) == ["extract", "quality"]
    assert batch.timings == {"extract": batch.timings["extract"]}
    assert checked.accounting == {
        "rows_in": 8,
        "loaded": 4,
        "quarantined": 3,
        "duplicates_dropped": 1,
        "quarantined_by_reason": {"malformed_json": 1, "out_of_range": 1, "unknown_entity": 1},
        "objects_in": 1,
        "objects_quarantined": 0,
        "objects_quarantined_by_reason": {},
    }
    assert (checked.run_id, checked.now, checked.inputs) == (batch.run_id, NOW, batch.inputs)
    assert checked.checked and checked.objects == batch.objects
    assert checked.rows.schema.equals(r.record_layout_of(mixed).reading_schema)
    assert sorted(checked.rows["device_id"].to_pylist()) == ["dev-0000"] * 2 + ["dev-0001"] * 2
    q = checked.quarantine.to_pylist()
    assert [(x["reason"], x["field"], x["record"], x["_line"]) for x in q] == [
        ("malformed_json", None, "{not json", 8),
        ("out_of_range", "temperature", MIXED[5], 6),
        ("unknown_entity", "device_id", MIXED[6], 7),
    ]
    assert {x["_source"] for x in q} == set(batch.inputs)
    assert checked.report["passed"] is True and checked.report["quarantine_rate"] == 0.375
    assert checked.report["json"].endswith(f"/run={batch.run_id}/quality.json")
    assert checked.report["html"].endswith(f"/run={batch.run_id}/quality.html")
    assert storage.read_json(checked.report["json"])["accounting"] == checked.accounting


def test_quality_check_against_the_committed_rows(mixed: Settings) -> None:
    r.run_etl(mixed, now=NOW)
    put(
        mixed,
        [
            MIXED[0],
            rec("dev-0001", "2026-01-02T00:15:00Z", rpm=10.0),
            rec(ts="2026-01-01T01:00:00Z"),
        ],
    )
    checked = r.quality_check(mixed, r.extract_transform(mixed, now=NOW))  # type: ignore[arg-type]
    acc = checked.accounting
    assert (acc["rows_in"], acc["loaded"], acc["duplicates_dropped"]) == (3, 1, 1)
    assert acc["quarantined_by_reason"] == {"duplicate_key": 1}


def test_quality_check_of_a_batch_without_rows(settings: Settings) -> None:
    put(settings, ["{bad", "{worse"])
    settings.quality.max_quarantine_rate = 1.0
    checked = r.quality_check(settings, r.extract_transform(settings, now=NOW))  # type: ignore[arg-type]
    assert checked.accounting["quarantined_by_reason"] == {"malformed_json": 2}
    assert checked.rows.num_rows == 0 and checked.report["quarantine_rate"] == 1.0


def test_rules_of_takes_the_thresholds_set_and_keys_the_rules(home: Path) -> None:
    s = load_settings(home=home, dataset="machine_telemetry")
    (fresh,) = [x for x in r.rules_of(s).rules if isinstance(x, Freshness)]
    assert (fresh.max_future_skew_s, fresh.max_age_days) == (60, 365)
    s.quality.max_future_skew_s = 300
    (fresh,) = [x for x in r.rules_of(s).rules if isinstance(x, Freshness)]
    assert (fresh.max_future_skew_s, fresh.max_age_days) == (300, 365)
    s = load_settings(home=home, dataset="machine_telemetry", quality={"max_age_days": 3650})
    (fresh,) = [x for x in r.rules_of(s).rules if isinstance(x, Freshness)]
    assert (fresh.max_future_skew_s, fresh.max_age_days) == (60, 3650)
    given = RuleSet(rules=[NotNull(columns=["machine_id"])])
    keyed = r.rules_of(s, given)
    assert keyed.rules == given.rules
    key = r.record_layout_of(s)
    assert keyed.unique_key == [key.key, key.time]
    assert keyed.unit_fields == list(key.unit_fields) != []


def test_references_of_reads_the_registry_only_for_referential_rules(
    settings: Settings, home: Path
) -> None:
    rules = r.rules_of(settings)
    refs = r.references_of(settings, rules)
    assert list(refs) == ["devices"]
    assert refs["devices"].to_pylist() == [f"dev-{i:04d}" for i in range(8)]
    other = load_settings(home=home / "other")  # no registry there: never read
    assert r.references_of(other, RuleSet(rules=[NotNull(columns=["device_id"])])) == {}
    only = RuleSet(rules=[Referential(column="device_id", entity="device")])
    assert list(r.references_of(settings, only)) == ["devices"]


def test_gate_refuses_an_unbalanced_batch(settings: Settings) -> None:
    settings.quality.max_quarantine_rate = 1.0
    batch = _batch(run_id="r-9", rows_in=11)
    with pytest.raises(EtlError) as err:
        r.gate(settings, batch)
    assert err.value.code == "ETL_ERROR"
    assert str(err.value).startswith("internal accounting mismatch in run r-9: {'rows_in': 11")
    assert storage.list_files(settings.storage.reports_uri or "") == []
    for off in ({"rows_in": 9}, {"duplicates_dropped": 2}, {"loaded": 7}):
        with pytest.raises(EtlError, match="internal accounting mismatch"):
            r.gate(settings, _batch(**off))


def test_gate_refuses_above_the_threshold_and_writes_the_rejects(settings: Settings) -> None:
    reasons = ["null"] * 3 + ["wrong_type"] * 4 + ["range"] * 2 + ["unknown_entity"]
    quarantine = pa.Table.from_pylist(
        [{"reason": x, "record": "{}"} for x in reasons], schema=QUARANTINE_SCHEMA
    )
    five = pa.table({"x": [1, 2, 3, 4, 5]})
    batch = _batch(run_id="r-7", rows_in=16, rows=five, quarantine=quarantine, objects=[])
    settings.quality.max_quarantine_rate = 0.6
    with pytest.raises(DataQualityError) as err:
        r.gate(settings, batch)
    report_dir = storage.join(settings.storage.reports_uri or "", "run=r-7")
    assert str(err.value) == (
        "run r-7: 62.5% of 16 records were quarantined, above the threshold of 60.0% "
        "(wrong_type: 4, null: 3, range: 2). Nothing was loaded. See "
        f"{report_dir}/quality.html; fix the source or raise quality.max_quarantine_rate"
    )
    assert err.value.code == "DATA_QUALITY_FAILED"
    assert err.value.details["report_uri"] == f"{report_dir}/quality.json"
    assert err.value.details["accounting"] == batch.accounting
    rejected = storage.read_parquet(f"{report_dir}/rejected.parquet")
    assert rejected["reason"].to_pylist() == reasons
    assert batch.report == {
        "json": f"{report_dir}/quality.json",
        "html": f"{report_dir}/quality.html",
        "passed": False,
        "quarantine_rate": 0.625,
    }
    assert storage.read_json(f"{report_dir}/quality.json")["passed"] is False
    assert "Data quality report" in storage.read_bytes(f"{report_dir}/quality.html").decode()
    # at the threshold it passes, and writes no rejects
    settings.quality.max_quarantine_rate = 0.625
    passed = _batch(run_id="r-8", rows_in=16, rows=five, quarantine=quarantine, objects=[])
    r.gate(settings, passed)
    assert passed.report["passed"] is True
    other = storage.join(settings.storage.reports_uri or "", "run=r-8")
    names = sorted(u.rsplit("/", 1)[-1] for u in storage.list_files(other))
    assert names == ["quality.html", "quality.json"]


def test_load_refuses_an_unchecked_or_committed_batch(mixed: Settings) -> None:
    batch = r.extract_transform(mixed, now=NOW)
    assert batch is not None
    with pytest.raises(EtlError) as err:
        r.load(mixed, batch)
    assert str(err.value) == "load takes a batch that went through quality_check first"
    checked = r.quality_check(mixed, batch)
    r.load(mixed, checked)
    with pytest.raises(EtlError) as err:
        r.load(mixed, checked)
    assert str(err.value) == f"run {checked.run_id} is already committed; nothing to load"
    assert len(lake.manifests(r.layout_of(mixed))) == 1


def test_run_etl_commits_the_run_with_its_manifest(mixed: Settings) -> None:
    empty = put(mixed, [], source="api-x")
    calls: list[tuple[str, int, int]] = []
    w0, c0 = time.perf_counter(), time.process_time()
    res = r.run_etl(mixed, now=NOW, progress=lambda *a: calls.append(a))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    assert calls == [
        ("extract", 0, 1),
        ("extract", 1, 1),
        ("quality", 0, 1),
        ("quality", 1, 1),
        ("load", 0, 1),
        ("load", 1, 1),
    ]
    run, s = res.run_id, mixed.storage
    assert (res.status, res.balanced, res.objects_in) == ("committed", True, 2)
    assert (res.rows_in, res.loaded, res.quarantined, res.duplicates_dropped) == (8, 4, 3, 1)
    assert res.quarantined_by_reason == {
        "malformed_json": 1,
        "out_of_range": 1,
        "unknown_entity": 1,
    }
    name = empty.rsplit("/", 1)[-1]
    moved = f"{s.quarantine_uri}/objects/date=2026-06-01/{name}"
    assert [(o["uri"], o["reason"], o["quarantine_uri"]) for o in res.objects_quarantined] == [
        (empty, "empty_object", moved)
    ]
    assert storage.read_bytes(moved) == b""
    assert res.execution["backend"] == "local" and res.execution["workers"] == 1
    assert list(res.execution["stages"]) == ["extract", "quality", "transform", "load"]
    within(res.execution["stages"], wall, cpu)
    assert res.manifest_uri == f"{s.state_uri}/etl/manifests/00000001-{run}.json"
    m = storage.read_json(res.manifest_uri)
    assert (m["run_id"], m["committed_seq"], m["created_at"]) == (run, 1, NOW.isoformat())
    assert m["inputs"] == res.inputs == sorted(res.inputs) and len(res.inputs) == 2
    assert m["accounting"]["quarantined_by_reason"] == res.quarantined_by_reason
    assert m["accounting"]["objects_quarantined_by_reason"] == {"empty_object": 1}
    part = f"part-{run}.parquet"
    readings = [f"{s.processed_uri}/readings/date=2026-01-0{d}/{part}" for d in (1, 2)]
    features = [
        f"{s.processed_uri}/device_features_hourly/date=2026-01-0{d}/{part}" for d in (1, 2)
    ]
    assert m["outputs"] == {
        "readings": {"added": readings, "removed": []},
        "device_features_hourly": {"added": features, "removed": []},
        "quarantine": {"added": [f"{s.quarantine_uri}/date=2026-06-01/{part}"], "removed": []},
        "quarantined_objects": {"added": [moved], "removed": []},
    }
    assert storage.read_parquet(readings[1])["ts"].to_pylist() == [
        datetime(2026, 1, 2, 0, 15, tzinfo=timezone.utc)
    ]
    rejected = storage.read_parquet(m["outputs"]["quarantine"]["added"])
    assert sorted(rejected["reason"].to_pylist()) == sorted(res.quarantined_by_reason)
    feature_rows = storage.read_parquet(features).num_rows
    assert set(storage.read_parquet(features)["created_at"].to_pylist()) == {NOW}
    assert m["feature_rows"] == res.feature_rows == res.warehouse_rows_upserted == feature_rows
    assert r.warehouse_of(mixed).count("device_features_hourly") == feature_rows
    assert m["objects_quarantined"] == res.objects_quarantined and m["notes"] == res.notes == []
    assert m["report"]["json"] == res.report_json_uri and m["report"]["passed"] is True
    assert m["report"]["html"] == res.report_html_uri
    assert m["warehouse"] == {"url": mixed.warehouse.url, "table": "device_features_hourly"}
    spec = r.record_layout_of(mixed).spec
    assert m["dataset"] == spec.lineage() and m["dataset_spec"]["name"] == "iot_readings"
    assert m["execution"] == res.execution
    # nothing new: a no-op that says so at the first step
    calls.clear()
    assert r.run_etl(mixed, now=NOW, progress=lambda *a: calls.append(a)).to_dict() == (
        r.EtlResult(run_id="", status="noop").to_dict()
    )
    assert calls == [("extract", 0, 1)]


def test_run_etl_checks_with_the_rules_given(mixed: Settings) -> None:
    only = RuleSet(rules=[NotNull(columns=["device_id"])])
    res = r.run_etl(mixed, now=NOW, rules=only)
    assert (res.rows_in, res.loaded, res.duplicates_dropped) == (8, 6, 1)
    assert res.quarantined_by_reason == {"malformed_json": 1}


def test_a_later_run_replaces_the_feature_days_it_recomputes(mixed: Settings) -> None:
    first = r.run_etl(mixed, now=NOW)
    late = put(mixed, [rec("dev-0001", "2026-01-01T23:30:00Z", rpm=5.0, colour="red")])
    second = r.run_etl(mixed, now=NOW)
    assert [(n["uri"], n["kind"], n["columns"]) for n in second.notes] == [
        (late, "extra_columns", ["colour"])
    ]
    m = storage.read_json(second.manifest_uri or "")
    root = f"{mixed.storage.processed_uri}/device_features_hourly"
    old = [f"{root}/date=2026-01-0{d}/part-{first.run_id}.parquet" for d in (1, 2)]
    new = [f"{root}/date=2026-01-0{d}/part-{second.run_id}.parquet" for d in (1, 2)]
    assert (m["run_id"], m["committed_seq"]) == (second.run_id, 2)
    assert second.manifest_uri.endswith(f"/00000002-{second.run_id}.json")  # type: ignore[union-attr]
    assert m["outputs"]["device_features_hourly"] == {"added": new, "removed": old}
    assert m["outputs"]["quarantine"] == {"added": [], "removed": []}
    assert m["notes"] == second.notes
    assert "quarantined_objects" not in m["outputs"]
    assert [storage.exists(u) for u in old + new] == [False, False, True, True]
    assert lake.live_files(r.layout_of(mixed), "device_features_hourly") == new
    rows = r.read_table(mixed, "device_features_hourly")
    assert r.warehouse_of(mixed).count("device_features_hourly") == rows.num_rows
    assert second.rows_in == 1 and second.loaded == 1 and second.quarantined == 0
    # the hour 23:00-24:00 of Jan 1 is Jan 1's, though its features are stamped Jan 2 00:00
    jan1 = storage.read_parquet(new[0])
    last = datetime(2026, 1, 2, tzinfo=timezone.utc)
    assert last in jan1["event_timestamp"].to_pylist()
    assert last not in storage.read_parquet(new[1])["event_timestamp"].to_pylist()
