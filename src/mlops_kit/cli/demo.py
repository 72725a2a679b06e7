"""``mlops-kit demo``: runs :func:`mlops_kit.demo.run` and prints its report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from mlops_kit.cli._common import styled

if TYPE_CHECKING:
    from mlops_kit.config import Settings
    from mlops_kit.demo.flow import DemoReport


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
    with_rollout: bool = True,
) -> dict[str, Any]:
    """Run the demo on the settings' dataset and print each step; returns the summary."""
    from mlops_kit.data.spec import spec_of
    from mlops_kit.demo.flow import DemoOptions, run

    spec = spec_of(settings)
    console.rule(
        styled(
            ("mlops_kit demo", "bold"),
            f" on {spec.name} v{spec.version}: ingestion -> ETL -> features -> model",
        )
    )
    console.print(
        f"home: {settings.home}  (profile {settings.profile}, no cloud account needed); "
        f"{devices} {spec.entity.name}s over {days} days"
    )
    options = DemoOptions(
        entities=devices,
        days=days,
        bad_rate=bad_rate,
        fresh=fresh,
        with_features=with_features,
        with_training=with_training,
        with_rollout=with_rollout,
    )
    report = run(settings, options, progress=lambda text: console.status(text))
    _print(report, console)
    return report.summary()


def _print(report: DemoReport, console: Console) -> None:
    console.print(f"generated {report.generated:,} records")
    steps = Table(title="ingestion into the raw zone")
    for col in ("way in", "records", "raw objects", "detail"):
        steps.add_column(col, justify="right" if col in ("records", "raw objects") else "left")
    for row in report.ingestion:
        steps.add_row(row["way"], row["records"], str(row["objects"]), row["detail"])
    console.print(steps)
    result = report.result
    assert result is not None
    table = Table(title=f"ETL run {result.run_id}: every record accounted for")
    table.add_column("")
    table.add_column("rows", justify="right")
    table.add_column("injected by the generator", justify="right")
    table.add_row("rows in", f"{result.rows_in:,}", "")
    table.add_row("loaded (processed Parquet)", f"{result.loaded:,}", "")
    table.add_row("quarantined", f"{result.quarantined:,}", f"{sum(report.injected.values()):,}")
    for reason, count in result.quarantined_by_reason.items():
        table.add_row(f"  {reason}", f"{count:,}", f"{report.injected.get(reason, 0):,}")
    table.add_row("duplicates dropped", f"{result.duplicates_dropped:,}", "")
    table.add_row("feature rows", f"{result.feature_rows:,}", "")
    console.print(table)
    console.print(
        styled(
            "rows in = loaded + quarantined + duplicates dropped: ",
            ("holds", "green") if report.identity else ("BROKEN", "red"),
        )
    )
    for obj in result.objects_quarantined:
        console.print(
            styled(
                ("object quarantined whole", "yellow"),
                f" ({obj['reason']}): {obj['uri'].rsplit('/', 1)[-1]}, the other objects were "
                "loaded; see 'mlops-kit etl quarantined' and 'etl release --encoding'",
            )
        )
    console.print(f"quality report: {result.report_html_uri}")
    wh = report.warehouse
    wtable = Table(title=f"warehouse {wh['table']}: {wh['count']:,} rows (newest)")
    for col in wh["columns"]:
        wtable.add_column(col.replace("_", " "))
    for row in wh["rows"]:
        wtable.add_row(*[_cell(v) for v in row])
    console.print(wtable)
    console.print(f"re-running the ETL on the same raw zone: {report.rerun} (nothing changes)")
    if report.features is not None:
        _print_features(report.features, console)
    if report.training is not None:
        _print_training(report.training, console)
    if report.registry is not None:
        from mlops_kit.cli.model import print_decision

        for key in ("challenger", "champion"):
            if report.registry.get(key):
                print_decision(report.registry[key], console)
    if report.served is not None:
        served = report.served
        table = Table(title=f"served by {served['model']} v{served['version']} (the champion)")
        key = report.features["key"] if report.features else "id"
        for col in (key, "score", "features from"):
            table.add_column(col)
        for row in served["answers"]:
            table.add_row(str(row[key]), f"{row['score']:.4f}", row["features_from"])
        console.print(table)
        if served["refused"]:
            console.print(f"an unknown id is refused: {served['refused']}")
    if report.rollout is not None:
        _print_rollout(report.rollout, report.features["key"] if report.features else "id", console)
    if report.skipped:
        skipped = Table(title="skipped steps")
        skipped.add_column("step")
        skipped.add_column("why and how to include it")
        for step, why in report.skipped:
            skipped.add_row(step, why)
        console.print(skipped)
    console.rule(f"done in {report.seconds:.1f}s")


def _steps(state: dict[str, Any]) -> str:
    return ", ".join(f"{h['step']}% {h['outcome']}" for h in state["history"])


def _print_rollout(rollout: dict[str, Any], key: str, console: Console) -> None:
    state, traffic = rollout["rollout"], rollout["traffic"]
    by_version = ", ".join(f"v{v}: {n:,}" for v, n in sorted(traffic["by_version"].items()))
    console.print(
        f"Ray Serve at {rollout['url']}: canary v{state['canary']} against v{state['stable']} "
        f"({_steps(state)}) -> {state['status']}: {state['reason']}; clients sent "
        f"{traffic['requests']:,} requests, {traffic['failed']} failed ({by_version})"
    )
    if rollout["samples"]:
        table = Table(title="served after the rollout")
        for col in (key, "score", "version"):
            table.add_column(col)
        for row in rollout["samples"]:
            table.add_row(str(row[key]), f"{row['score']:.4f}", str(row["model_version"]))
        console.print(table)
    bad, seen = rollout["faulty"], rollout["faulty_traffic"]
    console.print(
        f"a faulty canary (v{bad['canary']} failing 20% of its requests on purpose): "
        f"{bad['status']} after {_steps(bad)}: {bad['reason']}; clients saw "
        f"{seen['failed']} failed of {seen['requests']:,} requests"
    )


def _cell(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.3f}"
    if hasattr(value, "strftime"):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value)


def _print_features(features: dict[str, Any], console: Console) -> None:
    views = features["materialize"].get("views", {})
    console.print(
        f"feature store: applied {', '.join(features['apply']['feature_views'])} "
        f"(services {', '.join(features['apply']['feature_services'])}); materialized "
        + ", ".join(f"{view} {info['rows']:,} rows" for view, info in views.items())
    )
    table = Table(title="online feature lookup (SQLite online store)")
    table.add_column(features["key"])
    for name in features["features"]:
        table.add_column(name.replace("_", " "), justify="right")
    for row in features["rows"]:
        table.add_row(
            str(row.get(features["key"])), *[_cell(row.get(n)) for n in features["features"]]
        )
    console.print(table)
    if features["missing"]:
        console.print(f"unknown ids come back as explicit nulls: {features['missing']}")


def _print_training(out: dict[str, Any], console: Console) -> None:
    acc = out["training_set"]["accounting"]
    m, e = out["metrics"], out["export"]
    console.print(
        f"training set (point-in-time, {out['training_set'].get('service', 'feature service')}): "
        f"{acc['rows_out']:,} rows ({acc['complete']:,} complete, {acc['kept_with_nulls']:,} "
        f"kept with null features, {acc['dropped']:,} dropped)"
    )
    table = Table(title="model: MLP, validation on the latest 20% of time")
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
