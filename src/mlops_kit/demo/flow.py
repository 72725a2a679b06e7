"""The demo flow: data in three ways -> ETL -> warehouse -> features -> training -> registry.

Each step is the library call a pipeline or a user makes; the flow only sequences them
and keeps what they returned in a :class:`DemoReport`. A step whose optional extra is
not installed is skipped, and the report says why and how to include it.

Example:
    >>> from mlops_kit import load_settings
    >>> from mlops_kit.demo import run
    >>> report = run(load_settings(home="/tmp/demo", dataset="machine_telemetry"))  # doctest: +SKIP
    >>> report.identity, report.registry["champion"]["accepted"]                     # doctest: +SKIP
    (True, True)
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_kit import storage

if TYPE_CHECKING:
    from mlops_kit.config import Settings
    from mlops_kit.etl import EtlResult

Progress = Callable[[str], AbstractContextManager[Any]]


@dataclass(frozen=True)
class DemoOptions:
    """How much data and which steps."""

    entities: int = 20
    days: int = 3
    bad_rate: float = 0.04
    fresh: bool = True
    with_features: bool = True
    with_training: bool = True
    with_rollout: bool = True
    epochs: int = 12


@dataclass
class DemoReport:
    """What each step did, for the CLI to print and the tests to check."""

    dataset: dict[str, Any]
    home: str
    generated: int = 0
    ingestion: list[dict[str, Any]] = field(default_factory=list)
    result: EtlResult | None = None
    injected: dict[str, int] = field(default_factory=dict)
    identity: bool = False
    rerun: str = ""
    api_records: int = 0
    stream_records: int = 0
    warehouse: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    registry: dict[str, Any] | None = None
    served: dict[str, Any] | None = None
    rollout: dict[str, Any] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The report as a dict (the keys the CLI's demo returns)."""
        return {
            "dataset": self.dataset,
            "result": self.result,
            "injected": self.injected,
            "identity": self.identity,
            "rerun": self.rerun,
            "api_records": self.api_records,
            "stream_records": self.stream_records,
            "features": self.features,
            "training": self.training,
            "registry": self.registry,
            "served": self.served,
            "rollout": self.rollout,
            "skipped": self.skipped,
        }


def _quiet(_: str) -> AbstractContextManager[Any]:
    return contextlib.nullcontext()


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Keep Feast's and MLflow's warnings, info logs and progress bars off the demo's
    output while a step runs (restored after)."""
    import importlib
    import logging
    import os
    import warnings

    from mlops_kit._lazy import is_installed

    # imported first: on import they set warning filters and log levels of their own
    for module in ("feast.feature_store", "mlflow", "torch"):
        if is_installed(module.split(".")[0]):
            importlib.import_module(module)
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic", "feast")]
    levels = [lg.level for lg in loggers]
    bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        for lg in loggers:
            lg.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar


def run(
    settings: Settings, options: DemoOptions | None = None, progress: Progress = _quiet
) -> DemoReport:
    """Run the demo on the settings' dataset spec; ``progress(text)`` wraps long steps."""
    from mlops_kit._lazy import is_installed
    from mlops_kit.data.spec import spec_of

    options = options or DemoOptions()
    spec = spec_of(settings)
    home = Path(settings.home)
    if options.fresh and home.exists():
        shutil.rmtree(home)
    storage.configure_from_settings(settings)
    t0 = time.perf_counter()
    report = DemoReport(dataset=spec.lineage(), home=str(home.resolve()))
    _ingest(settings, options, report, progress)
    _etl(settings, report, progress)
    report.warehouse = _warehouse(settings)
    if not options.with_features:
        report.skipped.append(("feature store", "turned off by the caller"))
    elif not is_installed("feast"):
        report.skipped.append(
            ("feature store", "feast is not installed: pip install 'mlops-kit[feast]'")
        )
    else:
        with (
            progress("features: feast apply + materialize (the first import takes ~10 s)"),
            _quiet_libraries(),
        ):
            report.features = features_step(settings)
    missing = [m for m in ("torch", "mlflow", "onnxruntime") if not is_installed(m)]
    if not options.with_training:
        report.skipped.append(("training", "turned off by the caller"))
    elif report.features is None:
        report.skipped.append(
            ("training", "it trains on the feature store's training set, skipped above")
        )
    elif missing:
        report.skipped.append(
            (
                "training",
                f"{', '.join(missing)} not installed: pip install 'mlops-kit[torch,onnx,mlflow]'",
            )
        )
    else:
        from mlops_kit.demo.model import promote, train_and_export

        with (
            progress("training: training set -> train -> ONNX export with parity -> MLflow"),
            _quiet_libraries(),
        ):
            report.training = train_and_export(settings, epochs=options.epochs)
        with progress("registry: register, evaluate the gates, promote"), _quiet_libraries():
            report.registry = promote(settings, report.training)
    if report.registry is None:
        report.skipped.append(("model registry", "it promotes the trained model, skipped above"))
    elif not (report.registry.get("champion") or {}).get("accepted"):
        report.skipped.append(("serving", "no version became champion, see the decisions above"))
    else:
        with progress("serving: the champion answers requests"), _quiet_libraries():
            report.served = serve_step(settings, report.features)
        _rollout(settings, options, report, progress)
    report.seconds = time.perf_counter() - t0
    return report


def _ingest(
    settings: Settings, options: DemoOptions, report: DemoReport, progress: Progress
) -> None:
    from mlops_kit.data.spec import spec_of
    from mlops_kit.demo.api import serve_records
    from mlops_kit.demo.data import make
    from mlops_kit.etl import write_device_registry
    from mlops_kit.ingest.api import ApiSourceConfig, ingest_api
    from mlops_kit.ingest.files import ingest_files
    from mlops_kit.ingest.streams import (
        consume_stream,
        stream_producer_of,
        stream_source_of,
    )

    home = Path(settings.home)
    data = make(
        spec_of(settings),
        home / "inbox",
        entities=options.entities,
        days=options.days,
        bad_rate=options.bad_rate,
    )
    report.generated = data.records
    report.injected = dict(data.expected)
    if data.known is not None:
        write_device_registry(settings, data.known)
    raw_uri, state_uri = settings.storage.raw_uri or "", settings.storage.state_uri or ""
    with progress("batch: landing files"):
        landed = ingest_files([str(p) for p in data.files], raw_uri)
    report.ingestion.append(
        {
            "way": "files (JSONL + CSV + a Latin-1 CSV)",
            "records": f"{data.file_records:,} + 1",
            "objects": len(landed),
            "detail": "content-addressed",
        }
    )
    with (
        progress("batch: paging through the partner API"),
        serve_records(data.api_lines, page_size=1000) as url,
    ):
        api = ingest_api(
            ApiSourceConfig(url=url, page_size=1000), raw_uri, state_uri, "api-partner"
        )
    report.api_records = api.records
    report.ingestion.append(
        {
            "way": "HTTP API (paginated)",
            "records": f"{api.records:,}",
            "objects": len(api.landed),
            "detail": f"{api.pages} pages, {api.retries} retries",
        }
    )
    with progress("stream: producing and consuming micro-batches"):
        producer = stream_producer_of(settings)
        producer.put_records(data.stream_lines)
        # a producer retry re-sends a few records; the raw zone keeps them once
        producer.put_records(data.stream_lines[:50])
        stream = consume_stream(
            stream_source_of(settings),
            raw_uri,
            state_uri,
            "stream",
            batch_size=settings.stream.batch_size,
        )
    report.stream_records = stream.records_landed
    report.ingestion.append(
        {
            "way": f"stream ({settings.stream.backend})",
            "records": f"{stream.records_landed:,}",
            "objects": stream.batches,
            "detail": f"{stream.duplicates_skipped} re-sent records skipped",
        }
    )


def _etl(settings: Settings, report: DemoReport, progress: Progress) -> None:
    from mlops_kit.etl import run_etl

    with progress("ETL: extract -> transform -> quality check -> load"):
        result = run_etl(settings)
    report.result = result
    report.identity = (
        result.rows_in == result.loaded + result.quarantined + result.duplicates_dropped
    )
    report.rerun = run_etl(settings).status


def _warehouse(settings: Settings) -> dict[str, Any]:
    """The newest rows of the warehouse table: the key, the time and three features."""
    from mlops_kit.etl import warehouse_table
    from mlops_kit.etl.layout import TIMESTAMP
    from mlops_kit.etl.run import record_layout_of, warehouse_of

    layout = record_layout_of(settings)
    shown = [
        n for n in layout.feature_names if not n.startswith(layout.spec.aggregations.row_count)
    ]
    columns = [layout.key, TIMESTAMP, *shown[:3]]
    table = warehouse_table(settings)
    wh = warehouse_of(settings)
    rows = wh.query(
        f"SELECT {', '.join(columns)} FROM {table} ORDER BY {TIMESTAMP} DESC, {layout.key} LIMIT 5"
    )
    return {"table": table, "count": wh.count(table), "columns": columns, "rows": rows}


def features_step(settings: Settings, entities: list[str] | None = None) -> dict[str, Any]:
    """Apply, materialize and look up three entities online, and one unknown one."""
    import warnings

    from mlops_kit.etl import features_table, read_table
    from mlops_kit.features.store import FeatureClient

    client = FeatureClient(settings)
    cat = client.catalog
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="On demand feature view is an experimental")
        applied = client.apply()
        mat = client.materialize()
    if entities is None:
        ids = read_table(settings, features_table(settings)).column(cat.join_key).unique()
        entities = [*sorted(ids.to_pylist())[:3], f"{cat.entity}-unknown"]
    first = next(iter(cat.views.values()))
    shown = [f"{first.name}:{n}" for n in list(first.features)[:3]]
    shown += [f"{cat.derived_view}:{n}" for n in list(cat.derived)[:1]]
    res = client.online(list(entities), shown)
    fresh = client.freshness()
    client.close()
    return {
        "apply": applied.to_dict(),
        "materialize": mat.to_dict(),
        "key": cat.join_key,
        "features": [s.split(":", 1)[1] for s in shown],
        "rows": res.to_rows(),
        "missing": res.missing,
        "freshness": fresh,
    }


def _rollout(
    settings: Settings, options: DemoOptions, report: DemoReport, progress: Progress
) -> None:
    """Retrain, make the new version challenger, roll it out on Ray Serve."""
    from mlops_kit._lazy import is_installed

    if not options.with_rollout:
        report.skipped.append(("canary rollout", "turned off by the caller"))
        return
    if not is_installed("ray"):
        report.skipped.append(
            ("canary rollout", "ray is not installed: pip install 'mlops-kit[serve]'")
        )
        return
    from mlops_kit.demo.model import challenger_of, demo_policy, train_and_export
    from mlops_kit.demo.rollout import rollout_step

    assert report.served is not None
    with progress("training: a second version for the canary"), _quiet_libraries():
        retrained = train_and_export(settings, epochs=options.epochs + 4)
        canary = challenger_of(settings, retrained)
    key = report.features["key"] if report.features else "id"
    ids = [a[key] for a in report.served["answers"]]
    with (
        progress("serving: Ray Serve, canary 10% -> 50% -> 100%, then a faulty canary"),
        _quiet_libraries(),
    ):
        labels = retrained["training_set"].get("label_columns") or ["label"]
        report.rollout = rollout_step(
            settings,
            report.served["version"],
            canary,
            ids,
            policy=demo_policy(label_column=labels[0], split="validation"),
            evaluation=retrained["training_set_path"],
        )


def serve_step(settings: Settings, features: dict[str, Any] | None) -> dict[str, Any]:
    """Score the entities the feature step looked up through the inference service:
    features from the online store, the champion's version named in every answer."""
    from mlops_kit.serving import BadRequestError, InferenceService

    service = InferenceService(settings)
    key = service.spec.entity.join_key
    ids = [r[key] for r in (features or {}).get("rows", []) if r.get(key)]
    known = [i for i in ids if i not in set((features or {}).get("missing", []))]
    answers = service.predict([{key: i} for i in known])
    refused = None
    unknown = [i for i in ids if i not in known]
    if unknown:
        try:
            service.predict([{key: unknown[0]}])
        except BadRequestError as exc:
            refused = exc.message
    return {
        "model": service.name,
        "version": service.model.version,
        "answers": answers,
        "refused": refused,
    }
