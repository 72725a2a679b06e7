"""Feature store components: features_apply -> features_materialize, features_training_set.

Each component is an interface only: its body calls one function of
:mod:`mlops_kit.components.runtime.features`,
which calls :mod:`mlops_kit.features`. The training set travels as a Dataset folder
(``data.parquet``, ``manifest.json``) whose metadata carries the row accounting.
"""

from typing import List

from mlops_kit.components._kfp import Dataset, Input, Metrics, Output, dsl
from mlops_kit.components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def features_apply(
    metrics: Output[Metrics],
    settings_json: str = "{}",
):
    """Check the processed data's schema and register the Feast definitions.

    Fails with the column and both types when the processed data drifted from the
    feature views.

    Args:
        metrics: feature_views and source_files; metadata: project, registry, entities,
            feature_views, on_demand_feature_views, feature_services, source_uri.
        settings_json: JSON object of mlops_kit settings overrides ("{}": the pod's
            MLOPS_KIT_* environment and config file).
    """
    from mlops_kit.components.runtime.features import features_apply_step

    features_apply_step(metrics, settings_json)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def features_materialize(
    metrics: Output[Metrics],
    end: str = "",
    full: bool = False,
    settings_json: str = "{}",
):
    """Load feature rows newer than the high-water mark into the online store.

    Args:
        metrics: rows and rows_<view>; metadata: status (materialized or noop), end,
            views (window, rows and entities per view), etl_seq.
        end: event time to load up to, ISO 8601 ("": now).
        full: ignore the high-water marks and load everything up to end.
        settings_json: JSON object of mlops_kit settings overrides.
    """
    from mlops_kit.components.runtime.features import features_materialize_step

    features_materialize_step(metrics, end, full, settings_json)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def features_training_set(
    training_set: Output[Dataset],
    labels: Input[Dataset] = None,
    features: List[str] = [],
    missing: str = "",
    timestamp_column: str = "event_timestamp",
    settings_json: str = "{}",
):
    """Build a point-in-time-correct training set.

    Args:
        training_set: folder with data.parquet and manifest.json; metadata: rows_in,
            rows_out, complete, partial, without_features, dropped, kept_with_nulls,
            missing_policy, missing_by_view, features, service, data_uri.
        labels: Parquet of label rows (device_id, timestamp, labels); default: labels
            from the processed readings.
        features: feature references ([]: the feature service of
            features.service_version).
        missing: keep (null features) or drop rows with no earlier feature row
            ("": features.missing); counted either way.
        timestamp_column: the label time column.
        settings_json: JSON object of mlops_kit settings overrides.
    """
    from mlops_kit.components.runtime.features import features_training_set_step

    features_training_set_step(
        training_set, labels, features, missing, timestamp_column, settings_json
    )
