"""The feature store client: one long-lived Feast ``FeatureStore`` behind a small API.

A serving replica builds one :class:`FeatureClient` (or calls :func:`feature_client_of`) at
start-up and reuses it for every request: the Feast store, its registry cache, the online
store connection and the serialized entity keys live as long as the client.

Example:
    >>> from mlops_kit import load_settings
    >>> from mlops_kit.features import FeatureClient
    >>> client = FeatureClient(load_settings(home="/tmp/fs-demo"))
    >>> client.apply()                         # doctest: +SKIP
    >>> client.materialize()                   # doctest: +SKIP
    >>> client.online(["dev-0001"]).columns    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlops_kit import storage
from mlops_kit.config import Settings
from mlops_kit.features.catalog import TIMESTAMP, Catalog, catalog_of
from mlops_kit.features.config import Placement, placement, repo_config, repo_config_dict
from mlops_kit.features.errors import (
    FeatureStoreError,
    SchemaDriftError,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ARROW_TYPES = {"Float64": pa.float64(), "Int64": pa.int64()}


@dataclass
class ApplyResult:
    """What ``apply`` registered."""

    project: str
    registry: str
    entities: list[str]
    feature_views: list[str]
    on_demand_feature_views: list[str]
    feature_services: list[str]
    source_uri: str
    source_files: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MaterializeResult:
    """What one incremental materialization wrote, per feature view.

    ``views`` maps a view to ``{"start", "end", "rows", "entities"}``: the event-time
    window ``[start, end)`` that was read, the feature rows in it and the entities whose
    online row was written. ``status`` is ``materialized`` or ``noop``.
    """

    status: str
    end: str
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: int = 0
    seconds: float = 0.0
    etl_seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainingSet:
    """A point-in-time-correct training set and its row accounting.

    ``accounting`` holds ``rows_in`` (label rows given), ``rows_out``, ``complete``
    (a feature row in every requested view), ``partial`` (in some views only),
    ``without_features`` (in none), ``dropped`` and ``kept_with_nulls``, with
    ``rows_in = complete + partial + without_features`` and
    ``rows_out = rows_in - dropped``. ``missing_by_view`` counts rows per view with no
    feature row in ``[label time - ttl, label time]``.
    """

    table: pa.Table
    accounting: dict[str, Any]
    features: list[str]

    def manifest(self) -> dict[str, Any]:
        return {"features": self.features, "accounting": self.accounting}


@dataclass
class OnlineFeatures:
    """Online feature values for a batch of entities, in request order.

    Entities with no online row come back as explicit nulls and are listed in
    ``missing`` (``missing_count`` of them).
    """

    columns: dict[str, list[Any]]
    missing: list[str]

    @property
    def missing_count(self) -> int:
        return len(self.missing)

    def to_rows(self) -> list[dict[str, Any]]:
        names = list(self.columns)
        return [
            dict(zip(names, vals, strict=True)) for vals in zip(*self.columns.values(), strict=True)
        ]


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


class FeatureClient:
    """The feature store of one :class:`~mlops_kit.config.Settings`.

    Feast is imported on first use, not when the client is built; building one without
    Feast installed fails at once, naming the extra to install.

    Args:
        settings: where the registry, the online store and the feature data are.
    """

    def __init__(self, settings: Settings) -> None:
        from mlops_kit._lazy import is_installed

        if not is_installed("feast"):
            from mlops_kit.errors import MissingExtraError

            raise MissingExtraError("feast", "feast", "the feature store")
        self.settings = settings
        self.catalog: Catalog = catalog_of(settings)
        self.placement: Placement = placement(settings)
        self._store: Any = None
        self._defs: Any = None
        self._reader: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------- plumbing
    @property
    def store(self) -> Any:
        """The long-lived ``feast.FeatureStore`` (built on first access)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    storage.configure_from_settings(self.settings)
                    self._join_ray()
                    cfg = repo_config(self.settings)
                    from feast import FeatureStore

                    self._store = FeatureStore(config=cfg)
        return self._store

    def _join_ray(self) -> None:
        """With ``features.engine: ray``, join the settings' Ray cluster before Feast
        does (Feast then reuses the connection instead of starting a cluster of its own)."""
        if self.settings.features.engine == "ray":
            from mlops_kit.compute import ray_session

            ray_session(self.settings)

    @property
    def definitions(self) -> Any:
        """The project's Feast objects (:class:`~mlops_kit.features.definitions.Definitions`)."""
        if self._defs is None:
            from mlops_kit.features.definitions import build

            self._defs = build(self.settings)
        return self._defs

    def service_name(self, version: int | None = None) -> str:
        return self.catalog.service_name(version or self.settings.features.service_version)

    def close(self) -> None:
        """Release the online reader's connection."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # ------------------------------------------------------------- schema
    def source_files(self) -> list[str]:
        """The Parquet files the feature views read (see
        :func:`mlops_kit.features.source.committed_files`).

        Raises:
            SourceNotCommittedError: an ETL commit is open, or the folder holds files no
                committed run wrote (or lacks some that one did).
        """
        from mlops_kit.features.source import committed_files

        return committed_files(self.settings, self.placement.source_uri)

    def _read_consistently(self, files: list[str], read: Any) -> Any:
        from mlops_kit.features.source import read_consistently

        return read_consistently(self.source_files, files, read)

    def check_schema(self, files: Sequence[str] | None = None) -> int:
        """Compare the processed data's columns with the feature views.

        Returns:
            The number of files checked.

        Raises:
            SchemaDriftError: naming the column, the expected and the found type, and the file.
        """
        storage.configure_from_settings(self.settings)
        files = list(self.source_files() if files is None else files)
        expected: dict[str, tuple[str, pa.DataType]] = {
            self.catalog.join_key: ("entity", pa.string()),
        }
        for spec in self.catalog.views.values():
            for name, typ in spec.features.items():
                expected[name] = (spec.name, _ARROW_TYPES[typ])
        for uri in files:
            fs, path = storage.resolve(uri)
            with fs.open_input_file(path) as f:
                schema = pq.read_schema(f)
            ts = schema.field(TIMESTAMP) if TIMESTAMP in schema.names else None
            if ts is None or not pa.types.is_timestamp(ts.type):
                found = "missing" if ts is None else str(ts.type)
                raise SchemaDriftError(
                    f"schema drift in {uri}: column '{TIMESTAMP}' must be a timestamp, "
                    f"found {found}",
                    column=TIMESTAMP,
                    file=uri,
                )
            for name, (view, typ) in expected.items():
                if name not in schema.names:
                    raise SchemaDriftError(
                        f"schema drift in {uri}: column '{name}' of feature view '{view}' "
                        f"(expected {typ}) is missing from the processed data",
                        column=name,
                        expected=str(typ),
                        found=None,
                        file=uri,
                    )
                found_type = schema.field(name).type
                if found_type != typ and not (
                    pa.types.is_string(typ) and pa.types.is_large_string(found_type)
                ):
                    raise SchemaDriftError(
                        f"schema drift in {uri}: column '{name}' of feature view '{view}' "
                        f"is {found_type} in the processed data but the feature view declares "
                        f"{typ}. Fix the ETL output or change the feature view (a new "
                        "feature service version)",
                        column=name,
                        expected=str(typ),
                        found=str(found_type),
                        file=uri,
                    )
        return len(files)

    # ------------------------------------------------------------- apply
    def apply(self) -> ApplyResult:
        """Register the entity, views, on-demand view and services; create online tables.

        Raises:
            SchemaDriftError: the processed data does not match the feature views.
        """
        n = self.check_schema()
        defs = self.definitions
        self.store.apply(defs.objects())
        return ApplyResult(
            project=self.placement.project,
            registry=self.placement.registry,
            entities=[defs.entity.name],
            feature_views=list(defs.views),
            on_demand_feature_views=[defs.derived.name] if defs.derived is not None else [],
            feature_services=[s.name for s in defs.services.values()],
            source_uri=self.placement.source_uri,
            source_files=n,
        )

    # ------------------------------------------------------------- materialize
    def _state_uri(self) -> str:
        return storage.join(self.placement.state_uri, f"materialize-{self.placement.project}.json")

    def materialization_state(self) -> dict[str, Any]:
        """The high-water marks: ``{"views": {view: {"end": iso}}, "etl_seq": n}``."""
        uri = self._state_uri()
        if storage.exists(uri):
            return dict(storage.read_json(uri))
        return {"views": {}, "etl_seq": 0, "history": []}

    def _etl_changes(self, since_seq: int) -> tuple[int, datetime | None]:
        """The newest committed ETL run and the earliest feature partition changed since."""
        from mlops_kit.etl import lake
        from mlops_kit.etl.run import features_table, layout_of

        table = features_table(self.settings)
        seq, earliest = since_seq, None
        for m in lake.manifests(layout_of(self.settings)):
            s = int(m.get("committed_seq", 0))
            seq = max(seq, s)
            if s <= since_seq:
                continue
            for uri in m.get("outputs", {}).get(table, {}).get("added", []):
                for part in uri.replace("\\", "/").split("/"):
                    if part.startswith("date="):
                        d = datetime.fromisoformat(part[5:]).replace(tzinfo=timezone.utc)
                        earliest = d if earliest is None or d < earliest else earliest
        return seq, earliest

    def _keys_in(self, files: list[str]) -> pa.Table:
        from mlops_kit.features.source import unique_keys

        return unique_keys(files, self.catalog.join_key, self.placement.source_uri)

    def materialize(
        self,
        end: datetime | None = None,
        *,
        full: bool = False,
        views: Sequence[str] | None = None,
    ) -> MaterializeResult:
        """Load feature rows newer than the high-water mark into the online store.

        The window of each view starts at its high-water mark (the previous ``end``), or
        earlier when an ETL run committed since then rewrote an older day (late data):
        then at the start of that day. The online row of an entity is the newest feature
        row at or before ``end``, as Feast's materialization writes it: with Feast's local
        engine in this process, or with ``features.engine: ray`` through Feast's Ray
        compute engine on the settings' Ray cluster (see
        :mod:`mlops_kit.features.ray_engine`). The result counts the same for both.

        Args:
            end: event time up to which to load (exclusive; default now).
            full: ignore the high-water marks and load everything up to ``end``.
            views: only these feature views (default all).

        Raises:
            SchemaDriftError: the processed data does not match the feature views.
            OnlineWriteThrottledError: DynamoDB throttled a write past its retries.
            OnlineWriteIncompleteError: after Feast's Ray engine, an entity of the window
                has no online row as new as its newest feature row.
        """
        import time

        import polars as pl

        t0 = time.perf_counter()
        end = _utc(end or datetime.now(timezone.utc))
        state: dict[str, Any] = (
            {"views": {}, "etl_seq": 0, "history": []} if full else self.materialization_state()
        )
        files = self.source_files()
        names = list(views or self.catalog.views)
        unknown = [v for v in names if v not in self.catalog.views]
        if unknown:
            raise FeatureStoreError(
                f"unknown feature view(s) {', '.join(unknown)}: use {', '.join(self.catalog.views)}"
            )
        etl_seq, rewritten = self._etl_changes(int(state.get("etl_seq", 0)))
        result = MaterializeResult(status="noop", end=end.isoformat(), etl_seq=etl_seq)
        if not files:
            result.seconds = time.perf_counter() - t0
            return result
        self.check_schema(files)
        keys = pl.from_arrow(self._keys_in(files))
        assert isinstance(keys, pl.DataFrame)
        self.store.refresh_registry()
        for name in names:
            prev = state["views"].get(name, {}).get("end")
            start = datetime.fromisoformat(prev) if prev else _EPOCH
            if rewritten is not None and prev and rewritten < start:
                start = rewritten
            if start >= end:
                result.views[name] = {
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "rows": 0,
                    "entities": 0,
                }
                continue
            window = keys.filter((pl.col(TIMESTAMP) >= start) & (pl.col(TIMESTAMP) < end))
            rows, entities = window.height, window[self.catalog.join_key].n_unique()
            if rows and self.settings.features.engine == "ray":
                from mlops_kit.features.ray_engine import materialize_view

                self._join_ray()
                materialize_view(self, name, start, end, files)
            elif rows:

                def load(start: datetime = start, name: str = name) -> None:
                    with contextlib.redirect_stdout(io.StringIO()):
                        self.store.materialize(start_date=start, end_date=end, feature_views=[name])

                self._read_consistently(files, load)
            result.views[name] = {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "rows": rows,
                "entities": entities,
            }
            result.rows += rows
            state["views"][name] = {"end": end.isoformat()}
        result.status = "materialized" if result.rows else "noop"
        result.seconds = round(time.perf_counter() - t0, 3)
        state["etl_seq"] = etl_seq
        history = list(state.get("history", []))[-19:]
        history.append({k: v for k, v in result.to_dict().items() if k != "views"})
        state["history"] = history
        storage.write_json(self._state_uri(), state)
        return result

    # ------------------------------------------------------------- training
    def training_set(
        self,
        labels: Any,
        *,
        features: Sequence[str] | None = None,
        missing: str | None = None,
        timestamp_column: str = TIMESTAMP,
    ) -> TrainingSet:
        """Join features to labelled entity rows as of each row's timestamp.

        A row gets, from each feature view, the newest feature row of its device with
        ``label time - ttl <= event_timestamp <= label time``: never a value observed
        after the label. Feast's file offline store silently drops (or fails on) rows
        with no such feature row; here they are counted and, with ``missing="keep"``,
        returned with null features, or with ``missing="drop"`` left out.

        Args:
            labels: a ``pyarrow.Table`` or pandas DataFrame with ``device_id``, the
                timestamp column and any label columns.
            features: ``view:feature`` references or bare names (default: the feature
                service of ``features.service_version``).
            missing: ``keep`` or ``drop`` (default ``features.missing``).
            timestamp_column: the label time column (renamed to ``event_timestamp``).

        Raises:
            UnknownFeatureError: a requested feature does not exist (lists the available ones).
            FeatureStoreError: the labels lack ``device_id`` or the timestamp column.
        """
        from mlops_kit.features.pit import training_set

        return training_set(self, labels, features, missing, timestamp_column)

    # ------------------------------------------------------------- online
    def _online_reader(self) -> Any:
        if self._reader is None:
            from mlops_kit.features.online import DynamoReader, SqliteReader

            p = self.placement
            if p.online_store == "sqlite":
                self._reader = SqliteReader(p.online_path or "", p.project, self.catalog.join_key)
            else:
                online = repo_config_dict(self.settings)["online_store"]
                template = online["table_name_template"]
                self._reader = DynamoReader(
                    template, p.project, p.region, p.dynamodb_endpoint, self.catalog.join_key
                )
        return self._reader

    def online(
        self,
        entities: Sequence[str],
        features: Sequence[str] | None = None,
        *,
        fast: bool | None = None,
    ) -> OnlineFeatures:
        """Online feature values for a batch of devices, in request order.

        Args:
            entities: device ids (duplicates allowed).
            features: ``view:feature`` references or bare names (default: the service).
            fast: read the online tables directly (default ``features.fast_online``);
                False goes through ``FeatureStore.get_online_features``.

        Raises:
            UnknownFeatureError: a requested feature does not exist (lists the available ones).
        """
        refs = self.catalog.resolve_features(
            list(features or []), self.settings.features.service_version
        )
        device_ids = [str(e) for e in entities]
        use_fast = self.settings.features.fast_online if fast is None else fast
        if use_fast:
            from mlops_kit.features.online import lookup

            columns, missing = lookup(self._online_reader(), device_ids, refs, self.catalog)
            return OnlineFeatures(columns, missing)
        return self._online_feast(device_ids, refs)

    def _online_feast(self, device_ids: list[str], refs: list[str]) -> OnlineFeatures:
        key = self.catalog.join_key
        if not device_ids:
            return OnlineFeatures({key: [], **{r.split(":", 1)[1]: [] for r in refs}}, [])
        response = self.store.get_online_features(
            features=list(refs),
            entity_rows=[{key: d} for d in device_ids],
        )
        data = response.to_dict()
        columns: dict[str, list[Any]] = {key: device_ids}
        for ref in refs:
            name = ref.split(":", 1)[1]
            columns[name] = data[name]
        derived = self.catalog.derived_view + ":"
        plain = {r.split(":", 1)[1] for r in refs if not r.startswith(derived)}
        proto = response.proto
        stamps = [
            vec.event_timestamps
            for name, vec in zip(proto.metadata.feature_names.val, proto.results, strict=True)
            if name in plain
        ]
        found = {d for i, d in enumerate(device_ids) if any(s[i].seconds for s in stamps)}
        missing = list(dict.fromkeys(d for d in device_ids if d not in found)) if stamps else []
        return OnlineFeatures(columns, missing)

    # ------------------------------------------------------------- freshness
    def freshness(self, now: datetime | None = None) -> dict[str, dict[str, Any]]:
        """How old the newest online row of each feature view is.

        Returns:
            ``{view: {"newest": iso or None, "age_s": float or None, "ttl_s": int,
            "stale": bool}}``; ``stale`` when the newest row is older than the view's TTL
            or the view has no online row.
        """
        now = _utc(now or datetime.now(timezone.utc))
        reader = self._online_reader()
        out: dict[str, dict[str, Any]] = {}
        for spec in self.catalog.views.values():
            newest = reader.newest(spec.name)
            ttl = self.catalog.ttl_s(spec.name, self.settings.features.ttl_s)
            age = (now - newest).total_seconds() if newest else None
            out[spec.name] = {
                "newest": newest.isoformat() if newest else None,
                "age_s": age,
                "ttl_s": ttl,
                "stale": age is None or age > ttl,
            }
        return out


_clients: dict[str, FeatureClient] = {}
_clients_lock = threading.Lock()


def feature_client_of(settings: Settings) -> FeatureClient:
    """The process-wide client for ``settings`` (one long-lived store per settings)."""
    key = settings.model_dump_json()
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = FeatureClient(settings)
        return client
