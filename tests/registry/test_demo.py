"""The demo's registry step: train on the demo lake, register, promote to champion."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_kit.config import load_settings


@pytest.mark.slow
def test_demo_step_promotes_the_trained_model_to_champion(clean_env: None, tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from iot_fleet import GeneratorConfig, device_registry, generate_readings

    from mlops_kit.demo.model import register_and_promote
    from mlops_kit.etl import run_etl, write_device_registry
    from mlops_kit.ingest.files import ingest_files

    settings = load_settings(home=tmp_path / "home")
    readings = generate_readings(
        GeneratorConfig(
            n_devices=6, steps=2 * 288, freq_s=300, seed=7, failures_per_device_per_day=1.0
        )
    )
    write_device_registry(settings, device_registry(6))
    drop = tmp_path / "drop.parquet"
    pq.write_table(readings, drop)
    ingest_files([str(drop)], settings.storage.raw_uri)
    assert run_etl(settings).status == "committed"

    out = register_and_promote(settings)
    assert out["challenger"]["accepted"], out["challenger"]["reasons"]
    champion = out["champion"]
    assert champion is not None and champion["accepted"], champion["reasons"]
    names = {c["name"] for c in champion["checks"]}
    assert {"threshold.roc_auc", "onnx_parity", "data_quality", "latency_p99", "approval"} <= names
    assert out["aliases"] == {"champion": out["registered"]["version"]}
    assert [e["action"] for e in out["audit"]] == ["register", "promote", "approve", "promote"]
    assert out["training"]["seconds"] < 60
