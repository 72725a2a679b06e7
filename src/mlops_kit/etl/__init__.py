"""ETL: extract -> transform -> quality check -> load, with nothing lost."""

from mlops_kit.etl.devices import read_device_registry, register_devices, write_device_registry
from mlops_kit.etl.quality import RuleSet, default_rules
from mlops_kit.etl.release import quarantined_objects, release_object
from mlops_kit.etl.run import (
    EtlResult,
    features_table,
    read_table,
    run_etl,
    warehouse_table,
)

__all__ = [
    "EtlResult",
    "RuleSet",
    "default_rules",
    "features_table",
    "quarantined_objects",
    "read_device_registry",
    "read_table",
    "register_devices",
    "release_object",
    "run_etl",
    "warehouse_table",
    "write_device_registry",
]
