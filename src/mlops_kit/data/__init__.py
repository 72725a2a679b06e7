"""The IoT predictive-maintenance domain: schema and synthetic data."""

from mlops_kit.data.schema import KEY, RANGES, READING_SCHEMA, SENSORS

__all__ = ["KEY", "RANGES", "READING_SCHEMA", "SENSORS"]
