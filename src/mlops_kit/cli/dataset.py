"""``mlops-kit dataset``: list, validate, show and propose dataset specs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from mlops_kit.cli._common import HomeOpt, console, load_cli_settings, styled

dataset_app = typer.Typer(
    help=(
        "Dataset specs: the one declaration (entity, event time, columns, label, "
        "aggregations, views, service) that ingestion, quality, features and training "
        "derive from. REF is a bundled name (see 'dataset list') or a YAML path."
    ),
    no_args_is_help=True,
)


def _spec(ref: str | None, home: Path | None) -> Any:
    from mlops_kit.data.spec import load_spec

    return load_spec(ref or load_cli_settings(home).dataset)


@dataset_app.command("list")
def list_cmd() -> None:
    """The specs bundled with mlops_kit."""
    from mlops_kit.data.spec import bundled_specs, load_spec

    for name in bundled_specs():
        spec = load_spec(name)
        console.print(styled((name, "bold"), f"  v{spec.version}  {spec.description}"))


@dataset_app.command("validate")
def validate_cmd(
    ref: str = typer.Argument(..., help="A bundled spec name or the path of a YAML spec."),
) -> None:
    """Check a spec; every problem is printed with its field and the fix (exit 2)."""
    spec = _spec(ref, None)
    n = len(spec.all_features())
    console.print(
        styled(
            ("ok", "bold green"),
            f": {spec.name} v{spec.version} ({spec.digest()[:12]}), {len(spec.columns)} "
            f"columns, {len(spec.views)} views, {n} features",
        )
    )


@dataset_app.command("show")
def show_cmd(
    ref: str | None = typer.Argument(None, help="Spec name or path (default: the settings')."),
    home: Path | None = HomeOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the spec and what derives as JSON."),
) -> None:
    """What the pipeline derives from a spec: typed columns, quality facts, features."""
    spec = _spec(ref, home)
    if as_json:
        data = {
            "spec": spec.model_dump(mode="json"),
            "lineage": spec.lineage(),
            "features": spec.all_features(),
            "services": {v: spec.service_members(v) for v in spec.service.versions},
        }
        console.print_json(json.dumps(data))
        return
    console.print(
        styled(
            (f"{spec.name} v{spec.version}", "bold"),
            f"  digest {spec.digest()[:12]}  entity {spec.entity.name} "
            f"({spec.entity.join_key})  event time {spec.event_time.column}",
        )
    )
    table = Table(title="columns")
    for head in ("column", "type", "unit", "nullable", "range / values", "role"):
        table.add_column(head)
    for name, col in spec.columns.items():
        facts = (
            f"[{col.min:g}, {col.max:g}]"
            if col.min is not None and col.max is not None
            else ", ".join(map(str, col.values or []))
        )
        if col.units:
            facts += f"  (from {', '.join(col.units.conversions)} via {col.units.column})"
        role = (
            "label"
            if name in spec.label_columns
            else "aggregated"
            if name in spec.aggregations.stats
            else ""
        )
        table.add_row(name, col.type, col.unit or "", "yes" if col.nullable else "no", facts, role)
    console.print(table)
    views = Table(title=f"feature views (grain {spec.aggregations.grain})")
    for head in ("view", "window", "ttl", "features"):
        views.add_column(head)
    for v in spec.views:
        views.add_row(v.name, v.window, v.ttl, str(len(spec.view_features(v.name))))
    if spec.derived:
        views.add_row(spec.derived_view_name, "on demand", "", str(len(spec.derived)))
    console.print(views)
    for name, text in spec.derived.items():
        console.print(f"  {name} = {text}")
    for version in spec.service.versions:
        n = sum(len(f) for f in spec.service_members(version).values())
        console.print(f"service {spec.service.name}_v{version}: {n} features")


@dataset_app.command("init")
def init_cmd(
    sample: Path = typer.Argument(..., help="A sample of the data: .csv, .parquet or .jsonl."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the spec here."),
    name: str | None = typer.Option(None, help="Spec name (default: from the file name)."),
    force: bool = typer.Option(False, help="Overwrite --out if it exists."),
) -> None:
    """Propose a spec from a sample: types, nulls, observed ranges, key, time and label.

    Units are left for you; review the proposal, then 'mlops-kit dataset validate' it.
    """
    from mlops_kit.data.spec_init import propose, to_yaml
    from mlops_kit.errors import ConfigError

    data, notes = propose(sample, name)
    text = to_yaml(data, notes)
    if out is None:
        console.print(text, end="")
        return
    if out.exists() and not force:
        raise ConfigError(f"{out} exists; pass --force to overwrite it or choose another --out")
    out.write_text(text, encoding="utf-8")
    console.print(styled(("wrote", "bold green"), f" {out}"))
    for note in notes:
        console.print(f"  {note}")
