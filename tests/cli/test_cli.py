"""The command line: help, a light import, clear config errors, doctor, and the demo end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_kit.cli.main import app

runner = CliRunner()
HEAVY = ("torch", "feast", "ray", "mlflow", "sagemaker", "kfp", "onnxruntime", "kubernetes")


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlops_kit.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_import_is_light() -> None:
    code = f"import mlops_kit, sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_explains() -> None:
    # start-up time is measured by benchmarks/startup.py, not asserted here
    proc = _run("--help")
    assert proc.returncode == 0, proc.stderr
    for word in ("demo", "doctor", "etl", "ingest", "config"):
        assert word in proc.stdout


def test_config_show_reflects_env(home: Path) -> None:
    result = runner.invoke(
        app,
        ["config", "show", "--format", "json"],
        env={"MLOPS_KIT_QUALITY__MAX_QUARANTINE_RATE": "0.05"},
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["quality"]["max_quarantine_rate"] == 0.05
    assert data["storage"]["raw_uri"].endswith("lake/raw")


def test_bad_config_names_field_and_accepted_values(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "mlops_kit.yaml"
    cfg.write_text("profile: gcp\nstream:\n  backend: kafka\n")
    proc = _run("config", "show", env={"MLOPS_KIT_CONFIG": str(cfg)})
    assert proc.returncode == 2
    assert "profile: Input should be 'local' or 'aws'" in proc.stderr
    assert "stream.backend: Input should be 'local' or 'kinesis'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_aws_profile_without_uris_says_how_to_generate_them(home: Path) -> None:
    proc = _run("config", "show", env={"MLOPS_KIT_PROFILE": "aws"})
    assert proc.returncode == 2
    assert "storage.raw_uri" in proc.stderr and "from-terraform" in proc.stderr


def test_doctor_reports_extras_and_backends(home: Path) -> None:
    result = runner.invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "extra kfp" in result.output and "installed" in result.output
    assert "storage" in result.output and "warehouse" in result.output


def test_doctor_fails_with_a_fix_when_the_warehouse_is_down(home: Path) -> None:
    result = runner.invoke(
        app,
        ["doctor"],
        env={
            "COLUMNS": "250",
            "MLOPS_KIT_WAREHOUSE__URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        },
    )
    assert result.exit_code == 1
    assert "start the database or set warehouse.url" in result.output


def test_generate_then_ingest_then_etl(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "readings.jsonl"
    result = runner.invoke(
        app, ["data", "generate", str(out), "--devices", "5", "--days", "1", "--bad-rate", "0.05"]
    )
    assert result.exit_code == 0, result.output
    assert "injected bad records" in result.output
    result = runner.invoke(app, ["ingest", "files", str(out)])
    assert result.exit_code == 0 and "landed:" in result.output
    result = runner.invoke(app, ["etl", "run", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (
        summary["rows_in"]
        == summary["loaded"] + summary["quarantined"] + summary["duplicates_dropped"]
    )
    assert summary["quarantined"] > 0
    again = runner.invoke(app, ["etl", "run"])
    assert "no change" in again.output
    runs = runner.invoke(app, ["etl", "runs"], env={"COLUMNS": "200"})
    assert summary["run_id"] in runs.output


@pytest.mark.slow
def test_demo_runs_end_to_end(home: Path) -> None:
    from rich.console import Console

    from mlops_kit.cli.demo import run_demo
    from mlops_kit.config import load_settings

    with open(os.devnull, "w") as sink:
        summary = run_demo(load_settings(), Console(file=sink), devices=10, days=3)
    result = summary["result"]
    assert summary["identity"] and summary["rerun"] == "noop"
    # every injected bad record is quarantined with its reason, and nothing else is
    assert result.quarantined_by_reason == summary["injected"]
    assert summary["api_records"] > 0 and summary["stream_records"] > 0
    # the Latin-1 export is quarantined whole; nothing was skipped in a full install
    assert [o["reason"] for o in result.objects_quarantined] == ["unreadable_encoding"]
    assert summary["skipped"] == []
    # the feature store step applied, materialized and served an online lookup
    features = summary["features"]
    assert features["materialize"]["views"]["device_hourly"]["rows"] == result.feature_rows
    assert features["missing"] == ["device-unknown"]
    known = [r for r in features["rows"] if r["device_id"] != "device-unknown"]
    assert known and all(r["temperature_mean_1h"] is not None for r in known)
    # the training leg: a model above 0.8 ROC-AUC, exported behind the parity gate, logged
    training = summary["training"]
    assert training["metrics"]["val_roc_auc"] > 0.8
    assert training["export"]["parity_passed"] is True
    assert training["metrics"]["mlflow_run_id"]
    # the registry leg: the run became champion after passing every gate and the approval
    champion = summary["registry"]["champion"]
    assert champion["accepted"] is True
    assert champion["aliases"]["champion"] == champion["version"]
    # and the loop ends in served predictions, each naming the champion's version
    served = summary["served"]
    assert served["version"] == champion["version"] and len(served["answers"]) == 3
    assert all(0.0 <= a["score"] <= 1.0 for a in served["answers"])
    assert {a["model_version"] for a in served["answers"]} == {champion["version"]}
    assert "device-unknown" in served["refused"]
    # on Ray Serve, a retrained version goes 10% -> 50% -> 100% under client traffic and
    # becomes champion with no failed request; a faulty canary is rolled back
    rollout = summary["rollout"]
    state = rollout["rollout"]
    assert state["stable"] == champion["version"] and state["status"] == "promoted", state
    assert [h["step"] for h in state["history"] if h["outcome"] == "pass"] == [10, 50, 100]
    assert rollout["traffic"]["failed"] == 0 and rollout["traffic"]["requests"] > 0
    assert {a["model_version"] for a in rollout["samples"]} == {state["canary"]}
    faulty = rollout["faulty"]
    assert faulty["status"] == "rolled_back" and "error rate" in faulty["reason"], faulty
    assert rollout["faulty_traffic"]["failed"] > 0


@pytest.mark.slow
def test_demo_runs_the_same_loop_on_the_second_dataset(home: Path) -> None:
    """``mlops-kit demo --dataset <spec.yaml>``: the whole loop on machine telemetry, from
    the command line, with no code of its own."""
    spec = Path(__file__).resolve().parents[2] / "examples" / "datasets" / "machine_telemetry.yaml"
    proc = _run(
        "demo", "--dataset", str(spec), "--entities", "6", "--no-rollout", env={"COLUMNS": "200"}
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "mlops_kit demo on machine_telemetry v1" in out
    assert "rows in = loaded + quarantined + duplicates dropped: holds" in out
    assert "warehouse machine_features:" in out
    assert "applied machine_recent, machine_shift (services machine_fault_v1)" in out
    assert "unknown ids come back as explicit nulls: ['machine-unknown']" in out
    assert "machine-fault v1 -> champion: accepted" in out
    assert "served by machine-fault v1 (the champion)" in out
    # the only step left out is the one turned off (the rollout runs in the test above)
    assert "canary rollout │ turned off by the caller" in out
    assert "Warning" not in proc.stderr and "INFO" not in proc.stderr


def test_ingest_api_and_stream_commands(home: Path) -> None:
    from mlops_kit.config import load_settings
    from mlops_kit.demo.api import serve_records
    from mlops_kit.ingest.streams import stream_producer_of

    lines = [json.dumps({"device_id": f"dev-{i:04d}", "n": i}) for i in range(250)]
    with serve_records(lines, page_size=100) as url:
        result = runner.invoke(app, ["ingest", "api", url, "--source", "api-test"])
    assert result.exit_code == 0, result.output
    assert "250 records" in result.output and "complete" in result.output
    stream_producer_of(load_settings()).put_records(lines[:40])
    result = runner.invoke(app, ["ingest", "stream"])
    assert result.exit_code == 0, result.output
    assert "40 landed" in result.output


def test_pipelines_compile_check_passes_on_the_committed_specs() -> None:
    result = runner.invoke(app, ["pipelines", "compile", "--check"])
    assert result.exit_code == 0, result.output


def test_pipelines_submit_rejects_a_malformed_argument(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["pipelines", "submit", "pipelines/etl.yaml", "--host", "http://x", "--arg", "oops"]
    )
    assert result.exit_code != 0
    assert "NAME=VALUE" in str(result.exception)


def test_train_passes_through_to_the_training_entrypoint() -> None:
    proc = _run("train", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "build-table" in proc.stdout and "export" in proc.stdout
    bad = _run("train", "train", "--data", "file:///nonexistent.parquet", "--out", "/tmp/x")
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr


def test_launch_dry_run_prints_a_valid_gpu_pytorchjob(home: Path, tmp_path: Path) -> None:
    import yaml

    spec = tmp_path / "job.yaml"
    spec.write_text(
        "name: failure-mlp\n"
        "image: registry.example/mlops-kit-training:0.1.0\n"
        "data_uri: s3://processed/training/train.parquet\n"
        "output_uri: s3://models/failure-mlp/\n"
        "gpus_per_node: 1\n"
    )
    result = runner.invoke(app, ["launch", str(spec), "--backend", "eks", "--dry-run"])
    assert result.exit_code == 0, result.output
    job = yaml.safe_load(result.output)
    pod = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    assert job["kind"] == "PyTorchJob" and pod["serviceAccountName"] == "training"
    assert pod["nodeSelector"] == {"mlops-kit/accelerator": "nvidia-gpu"}
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    bad = runner.invoke(app, ["launch", str(spec), "--backend", "sagemaker", "--dry-run"])
    assert bad.exit_code != 0
