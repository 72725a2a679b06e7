"""The IoT reading schema and the physical ranges the quality rules enforce."""

from __future__ import annotations

import pyarrow as pa

SENSORS: tuple[str, ...] = ("temperature", "vibration", "pressure", "humidity", "rpm", "voltage")
"""Sensor columns, in the order models see them."""

KEY: tuple[str, str] = ("device_id", "ts")
"""A reading is identified by its device and its event time."""

READING_SCHEMA = pa.schema(
    [
        pa.field("device_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        *[pa.field(name, pa.float64()) for name in SENSORS],
        pa.field("failure", pa.int8()),
    ]
)
"""Typed, normalised readings (temperature in degrees Celsius)."""

UNITS: dict[str, str] = {
    "temperature": "degC",
    "vibration": "mm/s",
    "pressure": "kPa",
    "humidity": "%RH",
    "rpm": "1/min",
    "voltage": "V",
}

RANGES: dict[str, tuple[float, float]] = {
    "temperature": (-40.0, 150.0),
    "vibration": (0.0, 50.0),
    "pressure": (50.0, 200.0),
    "humidity": (0.0, 100.0),
    "rpm": (0.0, 10_000.0),
    "voltage": (100.0, 300.0),
}
"""Physically plausible range of each sensor (inclusive), in normalised units."""

WINDOWS: dict[str, str] = {"1h": "1h", "24h": "24h"}
"""Trailing windows of the hourly aggregates."""
STATS: tuple[str, ...] = ("mean", "std", "max")
"""Statistics computed over each window."""


def feature_columns() -> list[str]:
    """Names of the aggregate columns: ``<sensor>_<stat>_<window>``."""
    return [f"{s}_{stat}_{w}" for w in WINDOWS for s in SENSORS for stat in STATS]


def count_columns() -> list[str]:
    """Names of the coverage columns: ``<sensor>_count_<window>``, how many values (not
    nulls) each window's statistics were computed from."""
    return [f"{s}_count_{w}" for w in WINDOWS for s in SENSORS]
