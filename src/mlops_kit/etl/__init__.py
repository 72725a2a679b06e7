"""ETL: extract -> transform -> quality check -> load, with nothing lost."""

from mlops_kit.etl.quality import RuleSet, default_rules
from mlops_kit.etl.run import (
    EtlResult,
    read_device_registry,
    read_table,
    run_etl,
    write_device_registry,
)

__all__ = [
    "EtlResult",
    "RuleSet",
    "default_rules",
    "read_device_registry",
    "read_table",
    "run_etl",
    "write_device_registry",
]
