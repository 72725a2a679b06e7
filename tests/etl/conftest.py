"""Helpers for the ETL tests: a local-profile lake seeded with synthetic data."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from iot_fleet import GeneratorConfig, device_registry, generate_readings

from mlops_kit.config import Settings, load_settings
from mlops_kit.etl import write_device_registry

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
N_DEVICES = 8


def small_readings(days: int = 2, start_day: int = 1, n_devices: int = N_DEVICES, seed: int = 7):
    cfg = GeneratorConfig(
        n_devices=n_devices,
        start=datetime(2026, 1, start_day, tzinfo=timezone.utc),
        freq_s=900,
        steps=96 * days,
        seed=seed,
    )
    return generate_readings(cfg)


@pytest.fixture
def settings(home: Path) -> Settings:
    s = load_settings(home=home)
    write_device_registry(s, device_registry(N_DEVICES))
    return s
