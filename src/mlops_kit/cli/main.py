"""The ``mlops-kit`` command line.

Sub-commands import what they need when they run, so ``mlops-kit --help`` stays fast
and works without any optional extra installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from mlops_kit._version import __version__
from mlops_kit.cli._common import (
    HomeOpt,
    console,
    err_console,
    error_text,
    load_cli_settings,
)
from mlops_kit.cli.dataset import dataset_app
from mlops_kit.cli.etl import etl_app
from mlops_kit.cli.features import features_app
from mlops_kit.cli.model import model_app
from mlops_kit.cli.rayjob import rayjob_app
from mlops_kit.cli.serve import serve_app
from mlops_kit.errors import ConfigError, MlopsKitError

app = typer.Typer(
    name="mlops-kit",
    help=(
        "Typed MLOps building blocks for AWS: ingestion, ETL with quality gates, features, "
        "training, registry and serving.\n\nSettings come from MLOPS_KIT_* environment "
        "variables and ./mlops_kit.yaml (or $MLOPS_KIT_CONFIG); see 'mlops-kit config show'."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Show or generate settings.", no_args_is_help=True)
data_app = typer.Typer(
    help="Synthetic data for the dataset spec, and the registry of known entity ids.",
    no_args_is_help=True,
)
ingest_app = typer.Typer(
    help="Land files, API pages and stream records in the raw zone.", no_args_is_help=True
)
app.add_typer(config_app, name="config")
app.add_typer(dataset_app, name="dataset")
app.add_typer(data_app, name="data")
app.add_typer(ingest_app, name="ingest")
app.add_typer(etl_app, name="etl")
app.add_typer(features_app, name="features")
app.add_typer(model_app, name="model")
app.add_typer(serve_app, name="serve")
app.add_typer(rayjob_app, name="rayjob")
pipelines_app = typer.Typer(help="Compile and submit Kubeflow pipelines.", no_args_is_help=True)
app.add_typer(pipelines_app, name="pipelines")

_settings = load_cli_settings


def _version(value: bool) -> None:
    if value:
        console.print(f"mlops-kit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """mlops_kit command line."""


# ---------------------------------------------------------------- config
@config_app.command("show")
def config_show(
    home: Path | None = HomeOpt,
    fmt: str = typer.Option("yaml", "--format", help="yaml or json."),
) -> None:
    """Print the effective settings (after env, file and defaults)."""
    import yaml

    data = _settings(home).model_dump(mode="json")
    if fmt == "json":
        console.print_json(json.dumps(data))
    else:
        console.print(yaml.safe_dump(data, sort_keys=False), end="", highlight=False)


@config_app.command("from-terraform")
def config_from_terraform(
    source: Path = typer.Argument(
        ..., help="An env folder (infra/terraform/envs/dev) or a 'terraform output -json' file."
    ),
    out: Path = typer.Option(Path("mlops_kit.yaml"), "--out", "-o", help="Config file to write."),
) -> None:
    """Write an aws-profile config from the outputs of an applied Terraform env."""
    import subprocess

    from mlops_kit.platform.terraform import write_config

    if source.is_dir():
        proc = subprocess.run(
            ["terraform", f"-chdir={source}", "output", "-json"], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise ConfigError(
                f"'terraform output -json' failed in {source}: {proc.stderr.strip()}. "
                "Run 'terraform init' and 'terraform apply' there first."
            )
        outputs = json.loads(proc.stdout)
    else:
        outputs = json.loads(source.read_text())
    write_config(outputs, out)
    console.print(f"wrote {out}")


# ---------------------------------------------------------------- doctor
@app.command()
def doctor(home: Path | None = HomeOpt) -> None:
    """Check which extras are installed and which backends answer, with a fix for each gap."""
    from mlops_kit.cli.doctor import run_doctor

    ok = run_doctor(_settings(home), console)
    raise typer.Exit(0 if ok else 1)


# ---------------------------------------------------------------- data
@data_app.command("generate")
def data_generate(
    out: Path = typer.Argument(..., help="File to write: .jsonl, .csv or .parquet."),
    devices: int = typer.Option(20, "--entities", "--devices", help="How many entities."),
    days: float = typer.Option(3.0, help="Days of records per entity, ending now."),
    freq_s: int = typer.Option(300, help="Seconds between two records of an entity."),
    bad_rate: float = typer.Option(
        0.0,
        help="Share of bad records to inject (JSON lines and CSV; every kind the ETL tells apart).",
    ),
    seed: int = typer.Option(7, help="Random seed: same seed, same data."),
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        help="Dataset spec: a bundled name or a YAML path (default: the settings').",
    ),
    home: Path | None = HomeOpt,
    registry: bool = typer.Option(
        True, help="Also register the entity ids (specs with a registry)."
    ),
) -> None:
    """Generate synthetic records for the dataset spec, with bad records if asked."""
    from datetime import datetime, timedelta, timezone

    import pyarrow.parquet as pq

    from mlops_kit.data.generate import SpecGeneratorConfig, generate, known_ids, to_raw
    from mlops_kit.data.spec import spec_of

    settings = load_cli_settings(home, **({"dataset": dataset} if dataset else {}))
    spec = spec_of(settings)
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    steps = max(1, int(days * 86400 / freq_s))
    cfg = SpecGeneratorConfig(
        n_entities=devices,
        start=now - timedelta(seconds=steps * freq_s),
        freq_s=freq_s,
        steps=steps,
        seed=seed,
    )
    table = generate(spec, cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    injected: dict[str, int] = {}
    if suffix in (".jsonl", ".json", ".ndjson", ".csv"):
        raw = to_raw(spec, table, bad_rate=bad_rate, seed=seed)
        out.write_bytes(raw.to_csv_bytes() if suffix == ".csv" else raw.to_bytes())
        injected = {k: v for k, v in raw.injected.items() if v}
    elif bad_rate:
        raise ConfigError("--bad-rate applies to JSON lines and CSV output (not Parquet)")
    elif suffix == ".parquet":
        pq.write_table(table, out)
    else:
        raise ConfigError(f"unsupported output '{out.suffix}': use .jsonl, .csv or .parquet")
    console.print(
        f"wrote {table.num_rows:,} {spec.name} records of {devices} {spec.entity.name}s to {out}"
    )
    if injected:
        console.print(f"injected bad records: {injected}")
    if registry and spec.entity.known_ids.source == "registry":
        from mlops_kit.etl import write_device_registry

        uri = write_device_registry(settings, known_ids(spec, devices))
        console.print(f"registry of known {spec.entity.name}s: {uri}")


@data_app.command("register-devices")
def data_register_devices(
    source: Path | None = typer.Argument(
        None, help="CSV, JSON lines or Parquet file with the spec's join key column."
    ),
    device: list[str] = typer.Option([], "--id", help="A device id (repeat)."),
    replace: bool = typer.Option(False, help="Replace the registry instead of adding to it."),
    home: Path | None = HomeOpt,
) -> None:
    """Register your real devices (the referential quality rule accepts only these)."""
    from mlops_kit.etl.devices import register_devices

    if source is None and not device:
        raise ConfigError("give a file with the spec's join key column, or --id ID (repeatable)")
    out = register_devices(_settings(home), source, device, replace=replace)
    console.print(
        f"registry of known ids: {out['uri']} ({out['devices']:,} ids, {out['added']:,} new)"
    )


# ---------------------------------------------------------------- ingest
@ingest_app.command("files")
def ingest_files_cmd(
    paths: list[str] = typer.Argument(..., help="Files (.csv, .jsonl, .parquet; local or s3://)."),
    source: str = typer.Option("files", help="Source name in the raw zone."),
    home: Path | None = HomeOpt,
) -> None:
    """Land files in the raw zone as they are (content-addressed, idempotent)."""
    from mlops_kit import storage
    from mlops_kit.ingest.files import ingest_files

    s = _settings(home)
    storage.configure_from_settings(s)

    def show(obj: Any) -> None:
        state = "landed" if obj.created else "already landed"
        console.print(f"{state}: {obj.uri} ({obj.size:,} bytes)")

    ingest_files(paths, s.storage.raw_uri or "", source, on_landed=show)


@ingest_app.command("api")
def ingest_api_cmd(
    url: str = typer.Argument(..., help="First page of the HTTP JSON API."),
    source: str = typer.Option("api", help="Source name in the raw zone."),
    items_field: str = typer.Option("items", help="Dotted path of the items in a page."),
    next_field: str = typer.Option("next", help="Dotted path of the next page's cursor."),
    page_size: int = typer.Option(100, help="Items per page (sent as 'limit')."),
    bearer_token_env: str | None = typer.Option(
        None, help="Environment variable holding a bearer token."
    ),
    restart: bool = typer.Option(False, help="Ignore the saved cursor and start over."),
    home: Path | None = HomeOpt,
) -> None:
    """Page through an HTTP JSON API into the raw zone, resuming from the saved cursor."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from mlops_kit import storage
    from mlops_kit.ingest.api import ApiSourceConfig, ingest_api

    s = _settings(home)
    storage.configure_from_settings(s)
    cfg = ApiSourceConfig(
        url=url,
        items_field=items_field,
        next_cursor_field=next_field,
        page_size=page_size,
        bearer_token_env=bearer_token_env,
    )
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console) as bar:
        task = bar.add_task("fetching pages", total=None)
        records = 0

        def on_page(page: Any) -> None:
            nonlocal records
            records += page.records
            bar.update(task, description=f"page {page.number}: {records:,} records landed")

        result = ingest_api(
            cfg,
            s.storage.raw_uri or "",
            s.storage.state_uri or "",
            source,
            restart=restart,
            progress=on_page,
        )
    console.print(
        f"{result.pages} pages, {result.records:,} records, {len(result.landed)} raw objects, "
        f"{result.retries} retries; {'complete' if result.complete else 'cursor saved'}"
    )


@ingest_app.command("stream")
def ingest_stream_cmd(
    source: str = typer.Option("stream-iot", help="Source name in the raw zone."),
    max_batches: int | None = typer.Option(None, help="Stop after this many micro-batches."),
    home: Path | None = HomeOpt,
) -> None:
    """Consume the configured stream (local file or Kinesis) into the raw zone."""
    from mlops_kit import storage
    from mlops_kit.ingest.streams import consume_stream, stream_source_of

    s = _settings(home)
    storage.configure_from_settings(s)
    with console.status(f"consuming {s.stream.backend} stream {s.stream.stream_name}"):
        result = consume_stream(
            stream_source_of(s),
            s.storage.raw_uri or "",
            s.storage.state_uri or "",
            source,
            batch_size=s.stream.batch_size,
            max_batches=max_batches,
        )
    console.print(
        f"{result.batches} batches, {result.records_read:,} records read, "
        f"{result.records_landed:,} landed, {result.duplicates_skipped:,} duplicates skipped"
    )


# ---------------------------------------------------------------- pipelines
@pipelines_app.command("compile")
def pipelines_compile(
    check: bool = typer.Option(False, help="Write nothing; exit 1 when a committed file is stale."),
    out_dir: Path | None = typer.Option(None, help="Repository root (default: this checkout)."),
) -> None:
    """Compile every component to components/<name>/component.yaml and pipeline to pipelines/."""
    from mlops_kit.pipelines.compile import main as compile_main

    argv = ["--check"] if check else []
    if out_dir is not None:
        argv += ["--out-dir", str(out_dir)]
    raise typer.Exit(compile_main(argv))


@pipelines_app.command("submit")
def pipelines_submit(
    pipeline_yaml: Path = typer.Argument(..., help="A compiled pipeline, e.g. pipelines/etl.yaml."),
    host: str = typer.Option(..., help="Kubeflow Pipelines API endpoint (http[s]://...)."),
    arg: list[str] = typer.Option([], "--arg", help="Pipeline argument NAME=VALUE (repeat)."),
    experiment: str | None = typer.Option(None, help="Experiment to file the run under."),
) -> None:
    """Submit a compiled pipeline to Kubeflow Pipelines and print the run id."""
    from mlops_kit.pipelines import submit

    arguments = {}
    for item in arg:
        if "=" not in item:
            raise ConfigError(f"--arg '{item}' must look like NAME=VALUE")
        name, value = item.split("=", 1)
        arguments[name] = value
    console.print(submit(pipeline_yaml, host, arguments, experiment))


# ---------------------------------------------------------------- training
@app.command(
    "train",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def train_cmd(ctx: typer.Context) -> None:
    """Train, export to ONNX with the parity gate, or build a training table.

    The same as 'python -m mlops_kit.training': run 'mlops-kit train --help' for the
    sub-commands (train, export, build-table) and their options.
    """
    from mlops_kit.training.__main__ import main as training_main

    raise typer.Exit(training_main(list(ctx.args)))


@app.command("launch")
def launch_cmd(
    spec_file: Path = typer.Argument(..., help="Job spec (YAML): name, data_uri, output_uri, ..."),
    backend: str = typer.Option("local", help="local, eks or sagemaker."),
    kind: str = typer.Option("PyTorchJob", help="EKS object kind: PyTorchJob or TrainJob."),
    dry_run: bool = typer.Option(False, help="Validate and print the object; submit nothing."),
    wait: bool = typer.Option(True, help="Wait for the job to finish."),
    timeout: float = typer.Option(24 * 3600, help="Seconds to wait at most."),
    home: Path | None = HomeOpt,
) -> None:
    """Launch a training job locally, on EKS (PyTorchJob / TrainJob) or on SageMaker."""
    import yaml

    from mlops_kit.training.launchers import launcher_for, parse_job_spec

    settings = _settings(home)
    spec = parse_job_spec(yaml.safe_load(spec_file.read_text()) or {})
    if dry_run:
        if backend != "eks":
            raise ConfigError("--dry-run prints the Kubernetes object: use it with --backend eks")
        from mlops_kit.training.launchers.eks import build_pytorchjob, build_trainjob

        build = build_trainjob if kind == "TrainJob" else build_pytorchjob
        launcher = launcher_for("eks", settings, kind=kind)
        typer.echo(yaml.safe_dump(build(launcher.validate(spec), settings), sort_keys=False))
        return
    launcher = launcher_for(backend, settings, **({"kind": kind} if backend == "eks" else {}))  # type: ignore[arg-type]
    handle = launcher.submit(spec)
    console.print(f"submitted {handle.kind} {handle.name} ({backend})")
    if wait:
        status = launcher.wait(handle, timeout=timeout)
        console.print(f"{handle.name}: {status.phase} {status.reason or ''}".rstrip())


# ---------------------------------------------------------------- demo
@app.command()
def demo(
    home: Path | None = HomeOpt,
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        help="Dataset spec: a bundled name or a YAML path (default: the settings', iot_readings).",
    ),
    devices: int = typer.Option(20, "--entities", "--devices", help="How many entities."),
    days: int = typer.Option(3, help="Days of records."),
    bad_rate: float = typer.Option(0.04, help="Share of bad records injected."),
    fresh: bool = typer.Option(True, help="Start from an empty home."),
    rollout: bool = typer.Option(
        True, help="End with a canary rollout on Ray Serve (a local Ray cluster, ~40 s)."
    ),
) -> None:
    """Run the loop end to end on the embedded default (no cloud account needed).

    Generates data for the dataset spec, lands it as files, through a paginated API and
    on a stream, runs the ETL with its quality gate, the feature store, training with the
    ONNX parity gate and the registry's promotion to champion.
    """
    from mlops_kit.cli.demo import run_demo

    overrides = {"dataset": dataset} if dataset else {}
    settings = load_cli_settings(home, **overrides)
    run_demo(
        settings,
        console,
        devices=devices,
        days=days,
        bad_rate=bad_rate,
        fresh=fresh,
        with_rollout=rollout,
    )


def main() -> None:
    """Entry point: run the app; print mlops_kit errors without a traceback."""
    try:
        app()
    except MlopsKitError as exc:
        err_console.print(error_text(exc))
        sys.exit(2)


if __name__ == "__main__":
    main()
