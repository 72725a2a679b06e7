"""``mlops-kit etl``: run the ETL (locally or on Ray), inspect runs and quarantined objects.

* ``etl run [--backend local|ray]``: process every raw object not yet committed; print
  the accounting (progress per stage while it runs).
* ``etl quarantined`` / ``etl release URI``: objects quarantined whole, and letting the
  next run read one again.
* ``etl runs``: the committed runs, from their manifests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from mlops_kit.cli._common import HomeOpt, console, load_cli_settings, styled
from mlops_kit.errors import MlopsKitError

etl_app = typer.Typer(help="Extract, transform, quality check and load.", no_args_is_help=True)
_settings = load_cli_settings


@contextmanager
def stage_progress(out: Any) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per stage, fed as ``progress(stage, done, total)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = (
        "{task.description:<10}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield progress


def accounting_table(result: Any) -> Table:
    table = Table(title=f"ETL run {result.run_id}", show_header=True)
    table.add_column("")
    table.add_column("rows", justify="right")
    table.add_row("rows in", f"{result.rows_in:,}")
    table.add_row("loaded", f"{result.loaded:,}")
    table.add_row("quarantined", f"{result.quarantined:,}")
    for reason, n in result.quarantined_by_reason.items():
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row("duplicates dropped", f"{result.duplicates_dropped:,}")
    table.add_row("feature rows (hourly)", f"{result.feature_rows:,}")
    return table


@etl_app.command("run")
def etl_run(
    home: Path | None = HomeOpt,
    source: str | None = typer.Option(None, help="Only consume raw objects of this source."),
    backend: str | None = typer.Option(
        None,
        help=(
            "Where the run's work goes: 'local' (this process) or 'ray' (Ray tasks over "
            "entity partitions; same rows committed). Default: the etl.backend setting."
        ),
    ),
    workers: int | None = typer.Option(
        None, min=1, help="Ray backend: parallel tasks per stage (ray.workers)."
    ),
    ray_address: str | None = typer.Option(
        None, help="Ray backend: an existing cluster ('auto', 'ray://head:10001'); default local."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the result (or the error) as JSON on stdout."
    ),
) -> None:
    """Process every raw object not yet committed; print the accounting.

    An object that cannot be read at all (empty, truncated, binary, not UTF-8...) is
    quarantined whole with its reason and skipped by later runs; see 'etl quarantined'
    and 'etl release'. Exit status 2 when the quality gate fails.

    With --backend ray the stages run as Ray tasks on a local Ray cluster (this machine's
    cores) or the cluster --ray-address names; progress is shown per stage and the run's
    manifest ('etl runs') records wall and CPU time per stage. Example:

        mlops-kit etl run --backend ray --workers 4
    """
    from mlops_kit.etl import run_etl

    overrides: dict[str, Any] = {}
    if backend:
        if backend not in ("local", "ray"):
            raise typer.BadParameter("expected 'local' or 'ray'", param_hint="--backend")
        overrides["etl"] = {"backend": backend}
    ray_opts = {k: v for k, v in (("workers", workers), ("address", ray_address)) if v}
    if ray_opts:
        overrides["ray"] = ray_opts
    settings = load_cli_settings(home, **overrides)
    try:
        if as_json:
            result = run_etl(settings, source=source)
        else:
            with stage_progress(console) as progress:
                result = run_etl(settings, source=source, progress=progress)
    except MlopsKitError as exc:
        if not as_json:
            raise
        typer.echo(json.dumps(_error_json(exc), default=str, indent=2))
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), default=str, indent=2))
        return
    if result.status == "noop":
        console.print("nothing new in the raw zone: no change")
        return
    console.print(accounting_table(result))
    for obj in result.objects_quarantined:
        console.print(
            styled(
                ("object quarantined", "yellow"),
                f" ({obj['reason']}): {obj['uri']}\n  {obj['detail']}",
            )
        )
    for note in result.notes:
        console.print(
            styled(("note", "cyan"), f" {note['uri'].rsplit('/', 1)[-1]}: {note['detail']}")
        )
    console.print(f"quality report: {result.report_html_uri}")


def _error_json(exc: MlopsKitError) -> dict[str, Any]:
    return {"status": "error", "code": exc.code, "message": str(exc), "details": exc.details}


@etl_app.command("quarantined")
def etl_quarantined(
    home: Path | None = HomeOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the raw objects quarantined whole, with their reason."""
    from mlops_kit.etl import quarantined_objects

    s = _settings(home)
    objs = quarantined_objects(s)
    if as_json:
        typer.echo(json.dumps(objs, default=str, indent=2))
        return
    if not objs:
        console.print("no object is quarantined")
        return
    table = Table(title="objects quarantined whole")
    for col in ("object", "reason", "detail", "run", "released"):
        table.add_column(col, overflow="fold")
    for o in objs:
        table.add_row(
            o["uri"], o["reason"], o["detail"], o["run_id"], "yes" if o["released"] else ""
        )
    console.print(table)
    console.print("fix the source and land it again, or: mlops-kit etl release URI [--encoding E]")


@etl_app.command("release")
def etl_release(
    uris: list[str] = typer.Argument(..., help="Objects to release (see 'etl quarantined')."),
    encoding: str | None = typer.Option(
        None, help="Read the objects with this text encoding (e.g. latin-1, cp1252)."
    ),
    home: Path | None = HomeOpt,
) -> None:
    """Let the next 'etl run' read quarantined objects again (optionally declaring their
    encoding)."""
    from mlops_kit.etl import release_object

    s = _settings(home)
    for uri in uris:
        release_object(s, uri, encoding=encoding)
        how = f" as {encoding}" if encoding else ""
        console.print(f"released {uri}: the next 'etl run' reads it{how}")


@etl_app.command("runs")
def etl_runs(
    home: Path | None = HomeOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the run manifests as JSON."),
) -> None:
    """List committed runs with their accounting, backend and time per stage."""
    from mlops_kit.etl.lake import manifests
    from mlops_kit.etl.run import layout_of

    runs = manifests(layout_of(_settings(home)))
    if as_json:
        typer.echo(json.dumps(runs, default=str, indent=2))
        return
    table = Table(show_header=True)
    columns = ("#", "run", "inputs", "rows in", "loaded", "quarantined", "duplicates", "ran on")
    for col in (*columns, "wall s per stage (CPU s)"):
        table.add_column(col, justify="left" if col in ("run", "ran on") else "right")
    for m in runs:
        a = m["accounting"]
        ex = m.get("execution", {})
        stages = ", ".join(
            f"{name} {t['wall_s']:.1f} ({t['cpu_s']:.1f})"
            for name, t in ex.get("stages", {}).items()
            if "wall_s" in t
        )
        table.add_row(
            str(m["committed_seq"]),
            m["run_id"],
            str(len(m["inputs"])),
            f"{a['rows_in']:,}",
            f"{a['loaded']:,}",
            f"{a['quarantined']:,}",
            f"{a['duplicates_dropped']:,}",
            f"{ex.get('backend', 'local')} x{ex.get('workers', 1)}",
            stages,
        )
    console.print(table)
