"""The etl pipeline end to end through kfp.local, on synthetic data with bad records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_kit import storage
from mlops_kit.etl import read_table
from mlops_kit.etl.lake import manifests
from mlops_kit.etl.run import layout_of, warehouse_table
from mlops_kit.etl.warehouse import open_warehouse

pytest.importorskip("kfp")

pytestmark = [
    pytest.mark.kfp,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:.*have no effect in the current local runner:UserWarning"),
]

ACCOUNTING = ("rows_in", "loaded", "quarantined", "duplicates_dropped")


def _metrics(artifact) -> dict:
    return {k: artifact.metadata[k] for k in (*ACCOUNTING, "quarantine_rate")}


def _run(**arguments):
    from mlops_kit.pipelines import etl_pipeline

    return etl_pipeline(**arguments).outputs


def test_etl_pipeline_lands_checks_and_loads_then_noops(kfp_local: Path, lake, api_server):
    outputs = _run(
        settings_json=lake.settings_json,
        file_prefix=str(lake.drop),
        api_url=api_server.url,
        api_config_json=json.dumps({"page_size": 20}),
    )
    settings = lake.settings
    load_m, quality_m = outputs["load_metrics"], outputs["quality_metrics"]
    rows_in = lake.lines["files"] + lake.lines["stream"] + len(api_server.items)

    # the accounting identity, and the same numbers at the quality gate and the load
    acc = _metrics(load_m)
    assert acc["rows_in"] == rows_in
    assert acc["rows_in"] == acc["loaded"] + acc["quarantined"] + acc["duplicates_dropped"]
    assert _metrics(quality_m) == acc
    assert acc["quarantined"] == sum(lake.injected.values())
    assert acc["quarantine_rate"] == pytest.approx(acc["quarantined"] / rows_in, abs=1e-6)

    checked = outputs["checked"].metadata
    assert checked["status"] == "checked" and checked["passed"] is True
    by_reason = {k: int(v) for k, v in checked["quarantined_by_reason"].items()}
    assert sum(by_reason.values()) == acc["quarantined"]
    assert by_reason.get("malformed_json", 0) == lake.injected["malformed_json"]

    meta = load_m.metadata
    assert meta["status"] == "committed" and meta["run_id"] == checked["run_id"]
    assert storage.exists(meta["manifest_uri"])
    manifest = storage.read_json(meta["manifest_uri"])
    assert manifest["accounting"]["loaded"] == acc["loaded"]
    assert len(manifest["inputs"]) == 1 + 1 + 3  # one file, one stream batch, three API pages

    # the processed readings and the warehouse rows exist
    readings = read_table(settings, "readings")
    assert readings.num_rows == acc["loaded"]
    assert readings.column("device_id").null_count == 0
    features = read_table(settings, "device_features_hourly")
    assert features.num_rows == meta["feature_rows"] > 0
    warehouse = open_warehouse(settings.warehouse.url or "")
    assert warehouse.count(warehouse_table(settings)) == meta["warehouse_rows_upserted"] > 0
    assert warehouse.loaded_runs() == [meta["run_id"]]
    quarantine = storage.list_files(settings.storage.quarantine_uri or "", ".parquet")
    assert sum(storage.read_parquet(f).num_rows for f in quarantine) == acc["quarantined"]
    assert "<html" in Path(outputs["checked"].path).parent.joinpath("report").read_text().lower()

    # nothing new: every step is a no-op and nothing changes
    again = _run(
        settings_json=lake.settings_json, file_prefix=str(lake.drop), api_url=api_server.url
    )
    assert again["load_metrics"].metadata["status"] == "noop"
    assert again["checked"].metadata["status"] == "noop"
    assert all(again["load_metrics"].metadata[k] == 0 for k in ACCOUNTING)
    assert read_table(settings, "readings").num_rows == acc["loaded"]
    assert warehouse.loaded_runs() == [meta["run_id"]]
    assert len(manifests(layout_of(settings))) == 1


def test_quality_gate_fails_the_run_and_loads_nothing(
    kfp_local: Path, lake, capsys: pytest.CaptureFixture[str]
):
    strict = lake.settings_json_with(quality={"max_quarantine_rate": 0.01})
    with pytest.raises(RuntimeError, match="quality-check"):
        _run(settings_json=strict, file_uris=[str(lake.drop / "readings-1.jsonl")])
    logs = capsys.readouterr().out
    assert "DataQualityError" in logs
    assert "above the threshold of 1.0%" in logs and "Nothing was loaded" in logs

    settings = lake.settings
    assert manifests(layout_of(settings)) == []
    assert read_table(settings, "readings").num_rows == 0
    reports = storage.list_files(settings.storage.reports_uri or "")
    assert any(r.endswith("quality.html") for r in reports)
    assert any(r.endswith("rejected.parquet") for r in reports)


@pytest.mark.ray
def test_etl_run_component_on_ray_commits_what_the_step_components_commit(
    kfp_local: Path, lake, tmp_path: Path
):
    """``etl_run`` with backend ray (a local Ray cluster in the task's process) commits
    the rows the transform -> quality_check -> load pipeline commits on the same raw
    zone, and reports its stages."""
    import shutil

    from mlops_kit.components import etl_run
    from mlops_kit.config import load_settings
    from mlops_kit.ingest.files import ingest_files

    twin = tmp_path / "twin"
    shutil.copytree(lake.home, twin)
    ingest_files([str(lake.drop / "readings-1.jsonl")], lake.settings.storage.raw_uri or "")
    twin_settings = load_settings(home=twin)
    ingest_files([str(lake.drop / "readings-1.jsonl")], twin_settings.storage.raw_uri or "")
    now = "2026-06-01T00:00:00Z"
    steps = _run(settings_json=lake.settings_json, now=now, stream_enabled=False)
    steps = steps["load_metrics"].metadata
    task = etl_run(backend="ray", workers=2, now=now, settings_json=json.dumps({"home": str(twin)}))
    meta = task.outputs["metrics"].metadata
    assert meta["status"] == "committed" and meta["backend"] == "ray"
    assert {k: meta[k] for k in ACCOUNTING} == {k: steps[k] for k in ACCOUNTING}
    assert meta["feature_rows"] == steps["feature_rows"] > 0
    for stage in ("extract", "quality", "transform", "commit"):
        assert meta[f"stage_{stage}_wall_s"] >= 0 and meta[f"stage_{stage}_cpu_s"] >= 0
    assert storage.read_json(meta["manifest_uri"])["execution"]["backend"] == "ray"
    for table in ("readings", "device_features_hourly"):
        key = ["device_id", "ts" if table == "readings" else "event_timestamp"]
        want = read_table(lake.settings, table).sort_by([(k, "ascending") for k in key])
        got = read_table(twin_settings, table).sort_by([(k, "ascending") for k in key])
        assert got.equals(want), table
    assert "<html" in Path(task.outputs["report"].path).read_text().lower()
