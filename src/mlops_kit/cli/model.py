"""``mlops-kit model``: list, show, register, promote, approve, rollback and audit models.

MLflow is imported only inside the commands, so ``mlops-kit --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from mlops_kit.cli._common import (
    HomeOpt,
    console,
    err_console,
    error_text,
    load_cli_settings,
    styled,
)

model_app = typer.Typer(
    help="Model registry: versions, aliases (challenger, champion), gates, approvals, audit.",
    no_args_is_help=True,
)

JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")
UriOpt = typer.Option(
    None, "--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, settings)."
)


def _registry(home: Path | None, tracking_uri: str | None) -> Any:
    from mlops_kit.registry.registry import ModelRegistry

    settings = load_cli_settings(home)
    return ModelRegistry(settings, tracking_uri=tracking_uri)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _fail(exc: Exception) -> None:
    err_console.print(error_text(exc))
    raise typer.Exit(2)


def decision_table(decision: dict[str, Any]) -> Table:
    """A decision (``Decision.to_dict()``) as a table: one row per check and its figure."""
    colour = "green" if decision["accepted"] else "red"
    table = Table(
        title=styled(
            f"{decision['model']} v{decision['version']} -> {decision['target']}: ",
            (str(decision["decision"]), colour),
        )
    )
    for col in ("check", "result", "figure", "limit", "detail"):
        table.add_column(col, overflow="fold")
    for check in decision["checks"]:
        value, limit = check["value"], check["limit"]
        table.add_row(
            check["name"],
            styled(("pass", "green")) if check["passed"] else styled(("FAIL", "red")),
            f"{value:.4f}" if isinstance(value, float) else str(value if value is not None else ""),
            f"{limit:.4f}" if isinstance(limit, float) else str(limit if limit is not None else ""),
            check["detail"],
        )
    return table


def print_decision(decision: dict[str, Any], out: Console | None = None) -> None:
    """Print a decision with its checks, figures and the aliases after it."""
    out = out or console
    out.print(decision_table(decision))
    aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(decision.get("aliases", {}).items()))
    out.print(f"aliases: {aliases or 'none'}   audit entry {decision.get('audit_id', '')}")


@model_app.command("list")
def list_cmd(
    home: Path | None = HomeOpt, tracking_uri: str | None = UriOpt, as_json: bool = JsonOpt
) -> None:
    """List registered models with their aliases."""
    try:
        rows = _registry(home, tracking_uri).list_models()
    except Exception as exc:
        _fail(exc)
    if as_json:
        _print_json(rows)
        return
    table = Table(title="registered models")
    for col in ("name", "versions", "latest", "aliases"):
        table.add_column(col)
    for row in rows:
        aliases = ", ".join(f"{a}=v{v}" for a, v in row["aliases"].items())
        table.add_row(row["name"], str(row["versions"]), str(row["latest"]), aliases)
    console.print(table)


@model_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="Registered model."),
    home: Path | None = HomeOpt,
    tracking_uri: str | None = UriOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show a model's aliases, champion history and versions with their lineage and decisions."""
    try:
        data = _registry(home, tracking_uri).show(name)
    except Exception as exc:
        _fail(exc)
    if as_json:
        _print_json(data)
        return
    table = Table(title=f"{name}: champion history {data['champion_history'] or '-'}")
    for col in ("version", "aliases", "run", "parity", "data quality", "champion decision"):
        table.add_column(col)
    for v in data["versions"]:
        tags = v["tags"]
        table.add_row(
            v["version"],
            ", ".join(v["aliases"]),
            str(v["run_id"]),
            tags.get("mlops_kit.parity_passed", ""),
            tags.get("mlops_kit.data_quality_passed", ""),
            tags.get("mlops_kit.decision.champion", ""),
        )
    console.print(table)


@model_app.command("register")
def register_cmd(
    run_id: str = typer.Argument(..., help="MLflow run holding the ONNX model."),
    name: str | None = typer.Option(None, "--name", help="Registered model (default setting)."),
    quality_report: str | None = typer.Option(
        None, "--quality-report", help="The ETL's quality.json of the training data."
    ),
    who: str = typer.Option("", "--who", help="Recorded in the audit log."),
    home: Path | None = HomeOpt,
    tracking_uri: str | None = UriOpt,
) -> None:
    """Register a run's ONNX model as a new version (with its lineage tags)."""
    try:
        out = _registry(home, tracking_uri).register(
            run_id, name, quality_report=quality_report, who=who
        )
    except Exception as exc:
        _fail(exc)
    console.print(f"registered {out['name']} version {out['version']} from run {run_id}")


@model_app.command("promote")
def promote_cmd(
    name: str = typer.Argument(..., help="Registered model."),
    version: str = typer.Argument(..., help="Version number or alias (e.g. challenger)."),
    target: str = typer.Option("champion", "--target", help="champion or challenger."),
    policy: str | None = typer.Option(None, "--policy", help="Promotion policy YAML."),
    evaluation: str | None = typer.Option(
        None, "--eval", help="Evaluation table (Parquet; default: the policy's evaluation.uri)."
    ),
    who: str = typer.Option("", "--who", help="Who promotes (recorded)."),
    why: str = typer.Option("", "--why", help="Why (recorded)."),
    home: Path | None = HomeOpt,
    tracking_uri: str | None = UriOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Evaluate the promotion policy and move the alias, or refuse with every failed check.

    Exit status: 0 accepted, 1 refused, 2 bad input (nothing changed).
    """
    try:
        decision = _registry(home, tracking_uri).promote(
            name, version, policy, target=target, evaluation=evaluation, who=who, why=why
        )
    except Exception as exc:
        _fail(exc)
    data = decision.to_dict()
    if as_json:
        _print_json(data)
    else:
        print_decision(data)
    if not decision.accepted:
        raise typer.Exit(1)


@model_app.command("approve")
def approve_cmd(
    name: str = typer.Argument(..., help="Registered model."),
    version: str = typer.Argument(..., help="Version number or alias."),
    who: str = typer.Option(..., "--who", help="Who approves."),
    why: str = typer.Option(..., "--why", help="Why."),
    home: Path | None = HomeOpt,
    tracking_uri: str | None = UriOpt,
) -> None:
    """Record a manual approval of a version for production."""
    try:
        out = _registry(home, tracking_uri).approve(name, version, who, why)
    except Exception as exc:
        _fail(exc)
    console.print(f"approved {name} v{out['version']} by {out['who']} at {out['at']}: {out['why']}")


@model_app.command("rollback")
def rollback_cmd(
    name: str = typer.Argument(..., help="Registered model."),
    why: str = typer.Option(..., "--why", help="Why the champion is rolled back."),
    who: str = typer.Option("", "--who", help="Who rolls back."),
    home: Path | None = HomeOpt,
    tracking_uri: str | None = UriOpt,
) -> None:
    """Point champion back to the previous champion."""
    try:
        out = _registry(home, tracking_uri).rollback(name, why, who)
    except Exception as exc:
        _fail(exc)
    console.print(
        f"{name}: champion v{out['from_version']} -> v{out['champion']} "
        f"(previous_champion now {out['previous_champion'] or 'none'}): {why}"
    )


@model_app.command("audit")
def audit_cmd(
    name: str = typer.Argument(..., help="Registered model."),
    home: Path | None = HomeOpt,
    tracking_uri: str | None = UriOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Print the append-only audit log of a model, oldest first."""
    try:
        registry = _registry(home, tracking_uri)
        rows = registry.audit(name)
    except Exception as exc:
        _fail(exc)
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"audit log of {name} ({registry.audit_log.location(name)})")
    for col in ("at", "action", "version", "target", "decision", "who", "why / reasons"):
        table.add_column(col, overflow="fold")
    for row in rows:
        reasons = "; ".join(row.get("reasons") or []) or row.get("why", "")
        table.add_row(
            row.get("at", ""),
            row.get("action", ""),
            str(row.get("version", "")),
            row.get("target", ""),
            row.get("decision", ""),
            row.get("who", ""),
            reasons,
        )
    console.print(table)


__all__ = ["decision_table", "model_app", "print_decision"]
