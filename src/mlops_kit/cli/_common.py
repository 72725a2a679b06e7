"""Pieces shared by the CLI's sub-apps (no heavy imports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mlops_kit.config import Settings

HomeOpt = typer.Option(None, "--home", help="Home of the local profile (default ./.mlops_kit).")


def load_cli_settings(home: Path | None = None, **overrides: Any) -> Settings:
    """Settings from env and file, with ``--home`` and other overrides applied."""
    from mlops_kit.config import load_settings

    if home is not None:
        overrides["home"] = home
    return load_settings(**overrides)
