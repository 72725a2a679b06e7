"""The end-to-end demo on the embedded default: data in, accounted for, loaded."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from mlops_kit.cli._common import styled

if TYPE_CHECKING:
    from mlops_kit.config import Settings


def run_demo(
    settings: Settings,
    console: Console,
    *,
    devices: int = 20,
    days: int = 3,
    bad_rate: float = 0.04,
    fresh: bool = True,
    with_features: bool = True,
    with_training: bool = True,
) -> dict[str, Any]:
    """Generate a fleet's readings, ingest them three ways, run the ETL, show the result.

    Returns a summary dict (used by the tests).
    """
    import pyarrow.csv as pcsv

    from mlops_kit import storage
    from mlops_kit.data.demo_api import serve_records
    from mlops_kit.data.synthetic import (
        GeneratorConfig,
        device_registry,
        generate_readings,
        to_raw_records,
    )
    from mlops_kit.etl import run_etl, write_device_registry
    from mlops_kit.etl.run import warehouse_table
    from mlops_kit.etl.warehouse import open_warehouse
    from mlops_kit.ingest.api import ApiSourceConfig, ingest_api
    from mlops_kit.ingest.files import ingest_files
    from mlops_kit.ingest.streams import (
        consume_stream,
        producer_from_settings,
        source_from_settings,
    )

    home = Path(settings.home)
    if fresh and home.exists():
        shutil.rmtree(home)
    storage.configure_from_settings(settings)
    t0 = time.perf_counter()
    console.rule(
        styled(("mlops_kit demo", "bold"), ": ingestion -> ETL -> quality gate -> warehouse")
    )
    console.print(f"home: {home.resolve()}  (profile {settings.profile}, no cloud account needed)")

    # 1. data: a fleet of devices, a third of it for each way in
    cfg = GeneratorConfig(n_devices=devices, steps=days * 288, freq_s=300, seed=7)
    readings = generate_readings(cfg)
    write_device_registry(settings, device_registry(devices))
    n = readings.num_rows
    part_files, part_api = readings.slice(0, n // 3), readings.slice(n // 3, n // 3)
    part_stream = readings.slice(2 * (n // 3))
    console.print(f"generated {n:,} readings of {devices} devices over {days} days")

    injected: Counter[str] = Counter()
    inbox = home / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    half = part_files.num_rows // 2
    pcsv.write_csv(part_files.slice(0, half), inbox / "partner_export.csv")
    raw_files = to_raw_records(
        part_files.slice(half), bad_rate=bad_rate, seed=1, fahrenheit_share=0.2
    )
    (inbox / "gateway_dump.jsonl").write_bytes(raw_files.to_bytes())
    # a legacy export in Latin-1: the ETL quarantines it whole and goes on with the rest
    head = ",".join(part_files.column_names) + ",site\n"
    (inbox / "legacy_export.csv").write_bytes(
        (head + "dev-0000,2026-01-01T00:00:00Z,,,,,,,0,Köln\n").encode("latin-1")
    )
    injected.update(raw_files.injected)
    raw_api = to_raw_records(part_api, bad_rate=bad_rate, seed=2)
    injected.update(raw_api.injected)
    raw_stream = to_raw_records(part_stream, bad_rate=bad_rate, seed=3)
    injected.update(raw_stream.injected)

    raw_uri, state_uri = settings.storage.raw_uri or "", settings.storage.state_uri or ""
    steps = Table(title="ingestion into the raw zone", show_header=True)
    for col in ("way in", "records", "raw objects", "detail"):
        steps.add_column(col, justify="right" if col in ("records", "raw objects") else "left")

    with console.status("batch: landing files"):
        landed = ingest_files(
            [
                str(inbox / "partner_export.csv"),
                str(inbox / "gateway_dump.jsonl"),
                str(inbox / "legacy_export.csv"),
            ],
            raw_uri,
        )
    steps.add_row(
        "files (CSV + JSONL + a Latin-1 CSV)",
        f"{half + len(raw_files.lines):,} + 1",
        str(len(landed)),
        "content-addressed",
    )

    with (
        console.status("batch: paging through the partner API"),
        serve_records(raw_api.lines, page_size=1000) as url,
    ):
        api = ingest_api(
            ApiSourceConfig(url=url, page_size=1000), raw_uri, state_uri, "api-partner"
        )
    steps.add_row(
        "HTTP API (paginated)",
        f"{api.records:,}",
        str(len(api.landed)),
        f"{api.pages} pages, {api.retries} retries",
    )

    with console.status("stream: producing and consuming micro-batches"):
        producer = producer_from_settings(settings)
        producer.put_records(raw_stream.lines)
        # a producer retry re-sends a few records; the raw zone keeps them once
        producer.put_records(raw_stream.lines[:50])
        stream = consume_stream(
            source_from_settings(settings),
            raw_uri,
            state_uri,
            "stream-iot",
            batch_size=settings.stream.batch_size,
        )
    steps.add_row(
        f"stream ({settings.stream.backend})",
        f"{stream.records_landed:,}",
        str(stream.batches),
        f"{stream.duplicates_skipped} re-sent records skipped",
    )
    console.print(steps)

    # 2. ETL with the quality gate
    with console.status("ETL: extract -> transform -> quality check -> load"):
        result = run_etl(settings)
    table = Table(title=f"ETL run {result.run_id}: every record accounted for")
    table.add_column("")
    table.add_column("rows", justify="right")
    table.add_column("injected by the generator", justify="right")
    table.add_row("rows in", f"{result.rows_in:,}", "")
    table.add_row("loaded (processed Parquet)", f"{result.loaded:,}", "")
    table.add_row("quarantined", f"{result.quarantined:,}", f"{sum(injected.values()):,}")
    for reason, count in result.quarantined_by_reason.items():
        table.add_row(f"  {reason}", f"{count:,}", f"{injected.get(reason, 0):,}")
    table.add_row("duplicates dropped", f"{result.duplicates_dropped:,}", "")
    table.add_row("hourly feature rows", f"{result.feature_rows:,}", "")
    console.print(table)
    identity = result.rows_in == result.loaded + result.quarantined + result.duplicates_dropped
    console.print(
        styled(
            "rows in = loaded + quarantined + duplicates dropped: ",
            ("holds", "green") if identity else ("BROKEN", "red"),
        )
    )
    for obj in result.objects_quarantined:
        console.print(
            styled(
                ("object quarantined whole", "yellow"),
                f" ({obj['reason']}): {obj['uri'].rsplit('/', 1)[-1]}, the other objects were "
                f"loaded; see 'mlops-kit etl quarantined' and 'etl release --encoding'",
            )
        )
    console.print(f"quality report: {result.report_html_uri}")

    # 3. the warehouse
    wh_table = warehouse_table(settings)
    wh = open_warehouse(settings.warehouse.url or "")
    rows = wh.query(
        f"SELECT device_id, event_timestamp, round(temperature_mean_24h, 2), "
        f"round(vibration_max_1h, 2), readings_24h FROM {wh_table} "
        "ORDER BY vibration_max_1h DESC LIMIT 5"
    )
    wtable = Table(title=f"warehouse {wh_table}: {wh.count(wh_table):,} rows (top vibration)")
    for col in ("device", "hour ending", "temp mean 24h", "vib max 1h", "readings 24h"):
        wtable.add_column(col)
    for dev, hour, temp, vib, count in rows:
        wtable.add_row(dev, f"{hour:%Y-%m-%d %H:%M}", str(temp), str(vib), str(count))
    console.print(wtable)

    # 4. idempotence
    again = run_etl(settings)
    console.print(f"re-running the ETL on the same raw zone: {again.status} (nothing changes)")

    # 5. features: Feast definitions applied, materialized to the online store, looked up
    features = None
    skipped: list[tuple[str, str]] = []
    if not with_features:
        skipped.append(("feature store", "turned off by the caller"))
    else:
        from mlops_kit._lazy import is_installed

        if not is_installed("feast"):
            skipped.append(
                ("feature store", "feast is not installed: pip install 'mlops-kit[feast]'")
            )
        else:
            from mlops_kit.features import demo_step

            with console.status(
                "features: feast apply + materialize (the first import takes ~10 s)"
            ):
                features = demo_step(settings)
            views = features["materialize"].get("views", {})
            console.print(
                f"feature store: applied {', '.join(features['apply']['feature_views'])} "
                f"(service {', '.join(features['apply']['feature_services'])}); materialized "
                + ", ".join(f"{view} {info['rows']:,} rows" for view, info in views.items())
            )
            ftable = Table(title="online feature lookup (SQLite online store)")
            ftable.add_column("device")
            for name in features["features"]:
                ftable.add_column(
                    name.replace("temperature", "temp").replace("_", " "), justify="right"
                )
            for row in features["rows"]:
                values = [row.get(name) for name in features["features"]]
                ftable.add_row(
                    str(row.get("device_id")),
                    *[
                        "null" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
                        for v in values
                    ],
                )
            console.print(ftable)
            if features["missing"]:
                console.print(f"unknown devices come back as explicit nulls: {features['missing']}")
    # 6. training: point-in-time training set -> train -> ONNX behind the parity gate -> MLflow
    trained = None
    if not with_training:
        skipped.append(("training", "turned off by the caller"))
    elif features is None:
        skipped.append(("training", "it trains on the feature store's training set, skipped above"))
    else:
        from mlops_kit._lazy import is_installed

        missing = [m for m in ("torch", "mlflow", "onnxruntime") if not is_installed(m)]
        if missing:
            skipped.append(
                (
                    "training",
                    f"{', '.join(missing)} not installed: "
                    "pip install 'mlops-kit[torch,onnx,mlflow]'",
                )
            )
        else:
            trained = _train(settings, console)
    # 7. registry: register the run, evaluate the gates, challenger -> approval -> champion
    promoted = None
    if trained is not None:
        promoted = _promote(settings, console, trained)
    else:
        skipped.append(("model registry", "it promotes the trained model, skipped above"))
    if skipped:
        stable = Table(title="skipped steps", show_header=True)
        stable.add_column("step")
        stable.add_column("why and how to include it")
        for step, why in skipped:
            stable.add_row(step, why)
        console.print(stable)
    console.rule(f"done in {time.perf_counter() - t0:.1f}s")
    return {
        "result": result,
        "injected": dict(injected),
        "identity": identity,
        "rerun": again.status,
        "api_records": api.records,
        "stream_records": stream.records_landed,
        "features": features,
        "training": trained,
        "registry": promoted,
        "skipped": skipped,
    }


def _promote(settings: Settings, console: Console, trained: dict[str, Any]) -> dict[str, Any]:
    import os
    import warnings

    from mlops_kit.cli.model import print_decision
    from mlops_kit.registry import demo_policy, demo_step

    with (
        console.status("registry: register, evaluate the gates, promote"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        out = demo_step(
            settings,
            trained["export"]["mlflow_run_id"],
            evaluation_uri=os.path.join(str(settings.home), "training", "training_set"),
            policy=demo_policy(label_column="failure", split="validation"),
        )
    for key in ("challenger", "champion"):
        if out.get(key):
            print_decision(out[key], console)
    return out


def _train(settings: Settings, console: Console) -> dict[str, Any]:
    import logging
    import warnings

    import mlflow  # noqa: F401 - configures its loggers on import; quieten them after

    from mlops_kit.cli.demo_training import train_and_export

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with (
        console.status("training: training set -> train -> ONNX export with parity -> MLflow"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        out = train_and_export(settings)
    acc = out["training_set"]["accounting"]
    m, e = out["metrics"], out["export"]
    console.print(
        f"training set (point-in-time, {out['training_set'].get('service', 'feature service')}): "
        f"{acc['rows_out']:,} rows ({acc['complete']:,} complete, {acc['kept_with_nulls']:,} "
        f"kept with null features, {acc['dropped']:,} dropped)"
    )
    table = Table(title="model: failure MLP, validation on the latest 20% of time")
    for col in (
        "ROC-AUC",
        "PR-AUC",
        "F1",
        "best epoch",
        "ONNX parity (max abs diff)",
        "MLflow run",
    ):
        table.add_column(col)
    table.add_row(
        f"{m['val_roc_auc']:.3f}",
        f"{m['val_pr_auc']:.3f}",
        f"{m['val_f1']:.3f}",
        str(m["best_epoch"]),
        f"{'passed' if e['parity_passed'] else 'FAILED'} ({e['max_abs_diff']:.1e} <= {e['atol']:.0e})",
        str(m.get("mlflow_run_id", "-"))[:12],
    )
    console.print(table)
    return out
