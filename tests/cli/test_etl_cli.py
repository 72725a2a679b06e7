"""The ETL and ingest commands as a user meets them: bad files, JSON errors, releases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlops_kit import storage
from mlops_kit.config import load_settings
from mlops_kit.etl import read_device_registry
from mlops_kit.ingest.raw_zone import list_raw


def _cli(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLOPS_KIT_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mlops_kit.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )


def _flat(proc: subprocess.CompletedProcess) -> str:
    return " ".join((proc.stdout + proc.stderr).split())


def test_ingest_files_lands_all_or_nothing(home: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text('{"device_id": "dev-0000", "ts": "2026-01-01T00:00:00Z"}\n')
    bad = tmp_path / "bad.txt"
    bad.write_text("hello")
    missing = tmp_path / "nope.csv"
    proc = _cli(home, "ingest", "files", str(good), str(bad), str(missing))
    assert proc.returncode == 2
    out = _flat(proc)
    assert "nothing was landed" in out and "bad.txt" in out and "nope.csv" in out
    assert "Traceback" not in out
    s = load_settings(home=home)
    assert list_raw(s.storage.raw_uri or "") == []
    ok = _cli(home, "ingest", "files", str(good), str(tmp_path / "good.jsonl"))
    assert ok.returncode == 0, ok.stderr
    assert "landed:" in ok.stdout and "already landed:" in ok.stdout
    assert len(list_raw(s.storage.raw_uri or "")) == 1


def test_compressed_names_are_accepted(home: Path, tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "r.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"device_id": "dev-0000", "ts": 1767225600}\n'))
    proc = _cli(home, "ingest", "files", str(path))
    assert proc.returncode == 0, proc.stderr
    (uri,) = list_raw(load_settings(home=home).storage.raw_uri or "")
    assert uri.endswith(".jsonl")


def test_register_devices_from_a_file_and_ids(home: Path, tmp_path: Path) -> None:
    ids = tmp_path / "fleet.csv"
    ids.write_text("device_id,site\n  m-001 ,a\nm-002,b\n")
    proc = _cli(home, "data", "register-devices", str(ids), "--id", "m-003")
    assert proc.returncode == 0, proc.stderr
    assert "3 ids, 3 new" in _flat(proc)
    again = _cli(home, "data", "register-devices", "--id", "m-003", "--id", "m-004")
    assert "4 ids, 1 new" in _flat(again)
    s = load_settings(home=home)
    assert sorted(read_device_registry(s).to_pylist()) == ["m-001", "m-002", "m-003", "m-004"]
    table = tmp_path / "fleet.parquet"
    pq.write_table(pa.table({"serial": ["x"]}), table)
    wrong = _cli(home, "data", "register-devices", str(table))
    assert wrong.returncode == 2 and "no device_id column" in _flat(wrong)


def test_missing_registry_names_the_command(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"device_id": "dev-0000", "ts": "2026-01-01T00:00:00Z"}\n')
    _cli(home, "ingest", "files", str(path))
    proc = _cli(home, "etl", "run")
    assert proc.returncode == 2
    assert "mlops-kit data register-devices FILE" in _flat(proc)


def test_etl_run_json_reports_errors_as_json(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("not json\n" * 5 + '{"device_id": "dev-0000", "ts": "2026-01-01T00:00:00Z"}\n')
    assert _cli(home, "data", "register-devices", "--id", "dev-0000").returncode == 0
    _cli(home, "ingest", "files", str(path))
    proc = _cli(home, "etl", "run", "--json")
    assert proc.returncode == 2
    err = json.loads(proc.stdout)
    assert err["status"] == "error" and err["code"] == "DATA_QUALITY_FAILED"
    assert err["details"]["accounting"]["quarantined_by_reason"] == {"malformed_json": 5, "null": 1}


def test_etl_commands_show_and_release_quarantined_objects(home: Path, tmp_path: Path) -> None:
    assert _cli(home, "data", "register-devices", "--id", "dev-0000").returncode == 0
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        "device_id,ts,temperature,vibration,pressure,humidity,rpm,voltage,site\n"
        "dev-0000,2026-01-01T00:00:00Z,60,3,101,45,1500,230,Köln\n".encode("latin-1")
    )
    _cli(home, "ingest", "files", str(latin))
    run = _cli(home, "etl", "run")
    assert run.returncode == 0, run.stderr
    out = _flat(run)
    assert "object quarantined (unreadable_encoding)" in out and "latin-1" in out
    listed = _cli(home, "etl", "quarantined", "--json")
    (obj,) = json.loads(listed.stdout)
    assert obj["reason"] == "unreadable_encoding" and obj["released"] is False
    rel = _cli(home, "etl", "release", obj["uri"], "--encoding", "latin-1")
    assert rel.returncode == 0, rel.stderr
    again = _cli(home, "etl", "run", "--json")
    result = json.loads(again.stdout)
    assert result["loaded"] == 1 and result["objects_quarantined"] == []
    assert [n["kind"] for n in result["notes"]] == ["extra_columns"]
    assert "site" in result["notes"][0]["detail"]
    assert json.loads(_cli(home, "etl", "quarantined", "--json").stdout) == []
    # the object stays as received in the raw zone
    assert storage.read_bytes(obj["uri"]) == latin.read_bytes()


def test_messages_with_brackets_print_literally(home: Path) -> None:
    proc = _cli(home, "etl", "release", "/no/such[feast].jsonl")
    assert proc.returncode == 2
    assert "/no/such[feast].jsonl" in _flat(proc)


def test_etl_run_on_ray_shows_each_stage_and_records_it(home: Path, tmp_path: Path) -> None:
    """``etl run --backend ray`` on a local Ray cluster: a bar per stage, the same
    accounting table, and the manifest's execution record in ``etl runs``."""
    values = '"temperature": 60, "vibration": 3, "pressure": 101, "humidity": 45, '
    values += '"rpm": 1500, "voltage": 230'
    rows = "".join(
        f'{{"device_id": "dev-000{d}", "ts": "2026-01-01T0{h}:00:00Z", {values}}}\n'
        for d in range(4)
        for h in range(6)
    )
    path = tmp_path / "r.jsonl"
    path.write_text(rows + "not json\n")
    ids = [a for d in range(4) for a in ("--id", f"dev-000{d}")]
    assert _cli(home, "data", "register-devices", *ids).returncode == 0
    _cli(home, "ingest", "files", str(path))
    bad = _cli(home, "etl", "run", "--backend", "spark")
    assert bad.returncode == 2 and "expected 'local' or 'ray'" in _flat(bad)
    run = _cli(home, "etl", "run", "--backend", "ray", "--workers", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    out = " ".join(_flat(run).replace("━", "").split())
    for stage in ("extract 1/1", "quality 4/4", "transform 4/4", "commit 1/1"):
        assert stage in out, (stage, out)
    for line in ("│ rows in │ 25 │", "│ loaded │ 24 │", "│ malformed_json │ 1 │"):
        assert line in out, (line, out)
    runs = _cli(home, "etl", "runs", "--json")
    assert runs.returncode == 0, runs.stderr
    (manifest,) = json.loads(runs.stdout)
    assert manifest["execution"]["backend"] == "ray"
    assert manifest["execution"]["partitions"] == 4
