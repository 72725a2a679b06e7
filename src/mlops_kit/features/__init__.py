"""The feature store: Feast definitions, repo configuration from settings, and operations.

Importing this package does not import feast (about 10 s); the names below are loaded on
first access, and Feast itself only when a store is used::

    from mlops_kit.features import FeatureClient   # needs: pip install 'mlops-kit[feast]'

Embedded default: SQLite online store, file offline store over the ETL's processed
Parquet, local registry. AWS: DynamoDB online store, Parquet on S3, registry on S3 or a
SQL registry on PostgreSQL. See docs/features.md.
"""

from __future__ import annotations

from mlops_kit._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "FeatureClient": "mlops_kit.features.store",
    "OnlineFeatures": "mlops_kit.features.store",
    "TrainingSet": "mlops_kit.features.store",
    "ApplyResult": "mlops_kit.features.store",
    "MaterializeResult": "mlops_kit.features.store",
    "feature_client_of": "mlops_kit.features.store",
    "apply": "mlops_kit.features.ops",
    "materialize": "mlops_kit.features.ops",
    "build_training_set": "mlops_kit.features.ops",
    "labels_from_readings": "mlops_kit.features.ops",
    "get_online": "mlops_kit.features.ops",
    "freshness": "mlops_kit.features.ops",
    "repo_config": "mlops_kit.features.config",
    "repo_config_dict": "mlops_kit.features.config",
    "placement": "mlops_kit.features.config",
    "FeatureStoreError": "mlops_kit.features.errors",
    "UnknownFeatureError": "mlops_kit.features.errors",
    "SchemaDriftError": "mlops_kit.features.errors",
    "service_name": "mlops_kit.features.catalog",
    "resolve_features": "mlops_kit.features.catalog",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = sorted(_EXPORTS)
