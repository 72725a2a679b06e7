"""``mlops-kit features``: apply, materialize, training sets, online lookups, freshness.

Feast is imported only inside the commands, so ``mlops-kit --help`` stays fast.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from mlops_kit.cli._common import HomeOpt, console, load_cli_settings

features_app = typer.Typer(
    help="Feature store (Feast): apply, materialize, training sets, online lookups.",
    no_args_is_help=True,
)

JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _settings(home: Path | None) -> Any:
    return load_cli_settings(home)


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    when = datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@features_app.command("config")
def config_cmd(home: Path | None = HomeOpt) -> None:
    """Print the Feast repo configuration generated from the settings."""
    from mlops_kit.features.config import repo_config_dict

    _print_json(repo_config_dict(_settings(home)))


@features_app.command("apply")
def apply_cmd(home: Path | None = HomeOpt) -> None:
    """Check the processed data's schema and register the feature definitions."""
    from mlops_kit.features.ops import apply

    _print_json(apply(_settings(home)))


@features_app.command("materialize")
def materialize_cmd(
    end: str | None = typer.Option(None, help="Event time to load up to (ISO 8601; default now)."),
    full: bool = typer.Option(False, help="Ignore the high-water marks and load everything."),
    home: Path | None = HomeOpt,
) -> None:
    """Load feature rows newer than the high-water mark into the online store."""
    from mlops_kit.features.ops import materialize

    _print_json(materialize(_settings(home), _parse_time(end), full=full))


@features_app.command("training-set")
def training_set_cmd(
    out: str = typer.Argument(
        ..., help="Folder (or s3:// prefix) for data.parquet + manifest.json."
    ),
    labels: str | None = typer.Option(
        None, help="Parquet of label rows (join key, timestamp, labels); default: the records."
    ),
    feature: list[str] = typer.Option(
        [], "--feature", "-f", help="Feature to include (repeat); default: the feature service."
    ),
    missing: str | None = typer.Option(
        None, help="Rows with no earlier feature row: keep (null features) or drop."
    ),
    timestamp_column: str = typer.Option("event_timestamp", help="Label time column."),
    home: Path | None = HomeOpt,
) -> None:
    """Build a point-in-time-correct training set; prints its row accounting."""
    from mlops_kit.features.ops import build_training_set

    manifest = build_training_set(
        _settings(home),
        out,
        labels_uri=labels,
        features=feature or None,
        missing=missing,
        timestamp_column=timestamp_column,
    )
    _print_json({k: v for k, v in manifest.items() if k != "columns"})


@features_app.command("get")
def get_cmd(
    entities: list[str] = typer.Argument(..., help="Entity ids (the dataset's join key)."),
    feature: list[str] = typer.Option(
        [], "--feature", "-f", help="Feature to read (repeat); default: the feature service."
    ),
    as_json: bool = JsonOpt,
    home: Path | None = HomeOpt,
) -> None:
    """Read online features for entities (unknown ids come back as nulls)."""
    from mlops_kit.features.ops import get_online

    res = get_online(_settings(home), entities, feature or None)
    if as_json:
        _print_json(res)
        return
    rows = res["rows"]
    table = Table(title=f"online features ({res['missing_count']} unknown)")
    names = list(rows[0]) if rows else []
    table.add_column("feature")
    for row in rows:
        table.add_column(str(row[names[0]]), justify="right")
    for name in names[1:]:
        table.add_row(name, *["null" if r[name] is None else f"{r[name]:.4g}" for r in rows])
    console.print(table)


@features_app.command("freshness")
def freshness_cmd(
    as_json: bool = JsonOpt,
    fail_stale: bool = typer.Option(False, help="Exit 1 when a view is older than its TTL."),
    home: Path | None = HomeOpt,
) -> None:
    """How old the newest online row of each feature view is."""
    from mlops_kit.features.ops import freshness

    res = freshness(_settings(home))
    if as_json:
        _print_json(res)
    else:
        table = Table(title="online freshness")
        for col in ("view", "newest row", "age", "ttl", "stale"):
            table.add_column(col)
        for view, info in res.items():
            age = "-" if info["age_s"] is None else f"{info['age_s'] / 3600:.1f} h"
            table.add_row(
                view, str(info["newest"]), age, f"{info['ttl_s'] / 3600:.1f} h", str(info["stale"])
            )
        console.print(table)
    if fail_stale and any(v["stale"] for v in res.values()):
        raise typer.Exit(1)
