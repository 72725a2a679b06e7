"""Every file accounted for: a corpus of hostile raw files through ingest + ETL."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from iot_fleet import device_registry

from mlops_kit import storage
from mlops_kit.config import Settings, load_settings
from mlops_kit.errors import MlopsKitError
from mlops_kit.etl import (
    quarantined_objects,
    read_table,
    release_object,
    run_etl,
    write_device_registry,
)
from mlops_kit.etl.decode import ObjectRejected, open_parquet, open_text
from mlops_kit.etl.run import QUARANTINE, READINGS
from mlops_kit.ingest.files import ingest_files
from tests.etl.conftest import N_DEVICES, NOW, small_readings
from tests.etl.hostile import Hostile, corpus


@pytest.fixture
def lake(home: Path) -> Settings:
    s = load_settings(home=home, quality={"max_quarantine_rate": 1.0})
    write_device_registry(s, device_registry(N_DEVICES))
    return s


def _land(settings: Settings, tmp: Path, files: list[Hostile]) -> dict[str, str]:
    """Land each file; returns raw URI -> hostile file name."""
    tmp.mkdir(parents=True, exist_ok=True)
    paths = []
    for h in files:
        path = tmp / h.name
        path.write_bytes(h.data)
        paths.append(str(path))
    landed = ingest_files(paths, settings.storage.raw_uri or "")
    return {obj.uri: h.name for obj, h in zip(landed, files, strict=True)}


def _decoded(h: Hostile, uri: str) -> str | None:
    if uri.endswith(".parquet"):
        return None
    try:
        return open_text(storage.read_bytes(uri), h.release_encoding)[0]
    except ObjectRejected:
        return None


def test_every_hostile_file_is_accounted_for(lake: Settings, tmp_path: Path) -> None:
    files = corpus(small_readings(days=3))
    by_name = {h.name: h for h in files}
    names = _land(lake, tmp_path / "inbox", files)
    result = run_etl(lake, now=NOW)

    # the run went through, no object blocked the others
    assert result.status == "committed"
    assert set(result.inputs) == set(names)
    assert result.rows_in == result.loaded + result.quarantined + result.duplicates_dropped
    assert result.objects_in == len(files)

    # objects quarantined whole: exactly the unreadable ones, each with its reason
    whole = {names[o["uri"]]: o for o in result.objects_quarantined}
    expected_whole = {h.name for h in files if h.object_reason}
    assert set(whole) == expected_whole
    for name, obj in whole.items():
        want = by_name[name].object_reason
        assert obj["reason"] in (want if isinstance(want, set) else {want}), (name, obj)
        assert obj["detail"], name
        # a copy of the bytes as received sits in the quarantine zone
        assert storage.read_bytes(obj["quarantine_uri"]) == by_name[name].data, name

    # readable objects: their records, every rejected one with its reason and exact text
    readable = [h for h in files if not h.object_reason]
    assert result.rows_in == sum(h.records for h in readable)
    assert result.loaded == sum(h.loaded for h in readable)
    assert result.duplicates_dropped == 0
    quarantine = read_table(lake, QUARANTINE)
    per_file: dict[str, Counter[str]] = {}
    for row in quarantine.to_pylist():
        name = names[row["_source"]]
        per_file.setdefault(name, Counter())[row["reason"]] += 1
        assert row["reason"] and row["detail"], row
        text = _decoded(by_name[name], row["_source"])
        if text is not None:
            # the record byte for byte as received, starting on the line it names
            lines = text.split("\n")
            tail = "\n".join(lines[row["_line"] - 1 :])
            assert row["record"] in tail, (name, row)
            assert row["record"].split("\n")[0].rstrip("\r") in lines[row["_line"] - 1]
    assert {k: v for k, v in per_file.items()} == {
        h.name: h.rejected for h in readable if h.rejected
    }

    # object-level notes, once per object
    notes: dict[str, set[str]] = {}
    for note in result.notes:
        notes.setdefault(names[note["uri"]], set()).add(note["kind"])
    for h in readable:
        assert notes.get(h.name, set()) == h.notes, h.name

    # the loaded readings keep their event times, whatever form they came in
    readings = read_table(lake, READINGS)
    assert readings.num_rows == result.loaded
    days = {d.date() for d in readings["ts"].to_pylist()}
    assert min(days).year == 2026 and max(days).year == 2026

    # the report says the same
    report = storage.read_json(result.report_json_uri or "")
    assert {names[o["uri"]] for o in report["objects_quarantined"]} == expected_whole
    assert report["accounting"]["objects_quarantined"] == len(expected_whole)

    # a re-run changes nothing; the quarantined objects are not retried
    assert run_etl(lake, now=NOW).status == "noop"


def test_good_file_after_bad_one_is_loaded(lake: Settings, tmp_path: Path) -> None:
    rows = small_readings(days=1)
    bad = [Hostile("first.csv", b"\x00\x01garbage", "not_text")]
    _land(lake, tmp_path / "a", bad)
    first = run_etl(lake, now=NOW)
    assert first.status == "committed" and first.rows_in == 0
    assert [o["reason"] for o in first.objects_quarantined] == ["not_text"]

    good = tmp_path / "good.parquet"
    import pyarrow.parquet as pq

    pq.write_table(rows, good)
    ingest_files([str(good)], lake.storage.raw_uri or "")
    second = run_etl(lake, now=NOW)
    assert second.status == "committed"
    assert second.loaded == rows.num_rows and second.objects_quarantined == []
    assert len(second.inputs) == 1  # the bad object was not retried


def test_release_with_a_declared_encoding(lake: Settings, tmp_path: Path) -> None:
    files = [h for h in corpus(small_readings(days=1)) if h.name == "latin1.csv"]
    names = _land(lake, tmp_path / "in", files)
    (uri,) = names
    first = run_etl(lake, now=NOW)
    assert [o["reason"] for o in first.objects_quarantined] == ["unreadable_encoding"]
    assert "latin-1" in first.objects_quarantined[0]["detail"]
    assert [o["uri"] for o in quarantined_objects(lake)] == [uri]

    with pytest.raises(MlopsKitError, match="unknown encoding"):
        release_object(lake, uri, encoding="klingon")
    with pytest.raises(MlopsKitError, match="not an object quarantined whole"):
        release_object(lake, uri + ".nope")
    release_object(lake, uri, encoding="latin-1")
    assert quarantined_objects(lake)[0]["released"] is True

    second = run_etl(lake, now=NOW)
    assert second.inputs == [uri]
    assert second.loaded == files[0].records and second.objects_quarantined == []
    assert quarantined_objects(lake) == []
    assert run_etl(lake, now=NOW).status == "noop"


def test_null_sensor_values_are_not_zeros(lake: Settings, tmp_path: Path) -> None:
    """A null among readings is not averaged as 0; a window without values is null."""
    from mlops_kit.etl.quality import RuleSet, default_rules
    from mlops_kit.etl.run import features_table

    rules = default_rules()
    lenient = RuleSet(
        rules=[r for r in rules.rules if getattr(r, "kind", "") != "not_null"]
        + [type(rules.rules[0])(columns=["device_id", "ts"])],
        unique_key=rules.unique_key,
    )
    lines = [
        '{"device_id": "dev-0000", "ts": "2026-01-01T00:10:00Z", "temperature": 10.0}',
        '{"device_id": "dev-0000", "ts": "2026-01-01T00:20:00Z", "temperature": null}',
        '{"device_id": "dev-0000", "ts": "2026-01-01T00:30:00Z", "temperature": 30.0}',
    ]
    path = tmp_path / "nulls.jsonl"
    path.write_text("\n".join(lines) + "\n")
    ingest_files([str(path)], lake.storage.raw_uri or "")
    result = run_etl(lake, now=NOW, rules=lenient)
    assert result.loaded == 3
    (row,) = read_table(lake, features_table(lake)).to_pylist()
    assert row["readings_1h"] == 3
    assert row["temperature_mean_1h"] == pytest.approx(20.0)
    assert row["temperature_count_1h"] == 2
    assert row["temperature_max_24h"] == pytest.approx(30.0)
    # vibration was never sent: null statistics, zero values, never 0.0
    assert row["vibration_count_1h"] == 0
    assert row["vibration_mean_1h"] is None and row["vibration_max_1h"] is None
    assert row["vibration_mean_24h"] is None and row["vibration_std_24h"] is None


_RUN = (
    "from datetime import datetime, timezone\n"
    "from mlops_kit.config import load_settings\n"
    "from mlops_kit.etl import run_etl\n"
    "run_etl(load_settings(quality={'max_quarantine_rate': 1.0}), "
    "now=datetime(2026, 6, 1, tzinfo=timezone.utc))\n"
)


@pytest.mark.parametrize("point", ["etl.after_stage", "etl.mid_moves"])
def test_object_quarantine_is_crash_safe(lake: Settings, tmp_path: Path, point: str) -> None:
    """Killed mid-commit, a run leaves the object's quarantine whole or absent; the next
    run completes it exactly once."""
    import os
    import subprocess
    import sys

    from mlops_kit.etl import lake as lake_mod
    from mlops_kit.etl.run import layout_of

    h = Hostile("empty.jsonl", b"", "empty_object")
    (uri,) = _land(lake, tmp_path / "in", [h])
    env = {**os.environ, "MLOPS_KIT_FAULT_AT": point, "MLOPS_KIT_HOME": str(lake.home)}
    proc = subprocess.run([sys.executable, "-c", _RUN], env=env, capture_output=True, text=True)
    assert proc.returncode == 137, proc.stderr
    assert lake_mod.manifests(layout_of(lake)) == []
    assert quarantined_objects(lake) == []
    again = run_etl(lake, now=NOW)
    assert again.status == ("committed" if point == "etl.after_stage" else "noop")
    (obj,) = quarantined_objects(lake)
    assert obj["uri"] == uri and obj["reason"] == "empty_object"
    assert storage.read_bytes(obj["quarantine_uri"]) == b""
    assert len(lake_mod.manifests(layout_of(lake))) == 1


def test_parquet_reads_are_exact(tmp_path: Path) -> None:
    """Integer epochs in Parquet are seconds / ms / us by magnitude, not microseconds."""
    from mlops_kit.etl.extract import extract_parquet

    rows = small_readings(days=1).slice(0, 3)
    secs = [int(v.timestamp()) for v in rows["ts"].to_pylist()]
    t = rows.set_column(1, "ts", pa.array(secs, pa.int64()))
    import io

    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(t, sink)
    out = extract_parquet(sink.getvalue(), "x.parquet")
    assert out.rows["ts"].to_pylist() == rows["ts"].to_pylist()
    table, _ = open_parquet(sink.getvalue())
    assert table.num_rows == 3
