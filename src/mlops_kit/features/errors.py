"""Errors of the feature store (subclasses of :class:`~mlops_kit.errors.MlopsKitError`)."""

from __future__ import annotations

from mlops_kit.errors import MlopsKitError


class FeatureStoreError(MlopsKitError):
    """The feature store could not do what was asked; the message says why and what to do."""

    code = "FEATURE_STORE_ERROR"


class UnknownFeatureError(FeatureStoreError, KeyError):
    """Requested feature names that no feature view defines."""

    code = "FEATURE_UNKNOWN"

    def __init__(self, unknown: list[str], available: list[str]) -> None:
        super().__init__(
            f"unknown feature(s): {', '.join(unknown)}. Available features "
            f"(use 'view:feature' or a bare feature name): {', '.join(available)}",
            unknown=unknown,
            available=available,
        )
        self.unknown = unknown
        self.available = available

    def __str__(self) -> str:
        return self.message


class SchemaDriftError(FeatureStoreError):
    """The processed data's columns no longer match the feature views."""

    code = "FEATURE_SCHEMA_DRIFT"


class SourceNotCommittedError(FeatureStoreError):
    """The feature source folder holds files the ETL has not committed (or lacks some it
    has): a commit is open, was interrupted, or something else wrote there."""

    code = "FEATURE_SOURCE_NOT_COMMITTED"


class DuplicateFeatureRowsError(FeatureStoreError):
    """The feature source has more than one row for an entity and event time."""

    code = "FEATURE_DUPLICATE_ROWS"


class UnknownServiceVersionError(FeatureStoreError, ValueError):
    """A feature service version the dataset spec does not declare."""

    code = "FEATURE_SERVICE_UNKNOWN"


class OnlineWriteThrottledError(FeatureStoreError):
    """DynamoDB kept items of a BatchWriteItem unprocessed (throttled) past the retries."""

    code = "FEATURE_ONLINE_WRITE_THROTTLED"


class OnlineWriteIncompleteError(FeatureStoreError):
    """After a materialization, online rows of the window are missing or older than the
    newest feature row: a write failed that the compute engine did not report."""

    code = "FEATURE_ONLINE_WRITE_INCOMPLETE"


class EngineUnsupportedError(FeatureStoreError):
    """The selected compute engine (``features.engine``) cannot do this correctly."""

    code = "FEATURE_ENGINE_UNSUPPORTED"


class EntityKeyError(FeatureStoreError, ValueError):
    """An entity key Feast cannot encode: a join key value of no key kind, out of its
    kind's range or not valid Unicode, or join keys and values that do not pair up."""

    code = "FEATURE_ENTITY_KEY_INVALID"


class OnlineStoreUnreadableError(FeatureStoreError):
    """The SQLite online store cannot be read: the file is missing, is not a database,
    or SQLite refuses it."""

    code = "FEATURE_ONLINE_STORE_UNREADABLE"


class OnlineValueError(FeatureStoreError):
    """A stored online value the direct reader cannot decode: bytes that are not a Feast
    value, or a kind it does not read (maps, sets, structs)."""

    code = "FEATURE_ONLINE_VALUE_UNREADABLE"
