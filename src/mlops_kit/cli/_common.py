"""Pieces shared by the CLI's sub-apps (no heavy imports).

Every console prints text literally (``markup=False``): messages carry brackets, as in
``pip install 'mlops-kit[feast]'``, that a markup renderer would eat. Colour is added
with :func:`styled` pieces, never by markup inside a message.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from mlops_kit.config import Settings

HomeOpt = typer.Option(None, "--home", help="Home of the local profile (default ./.mlops_kit).")


def make_console(stderr: bool = False) -> Console:
    """A console that prints messages literally (no markup, no highlighting)."""
    return Console(stderr=stderr, markup=False, highlight=False)


console = make_console()
err_console = make_console(stderr=True)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Text from plain strings and (text, style) pairs; nothing in them is markup."""
    return Text.assemble(*parts)


def error_text(exc: Exception) -> Text:
    """``error (CODE): message`` with the message shown literally."""
    code = getattr(exc, "code", type(exc).__name__)
    return styled(("error", "bold red"), (f" ({code})", "dim"), f": {exc}")


def load_cli_settings(home: Path | None = None, **overrides: Any) -> Settings:
    """Settings from env and file, with ``--home`` and other overrides applied."""
    from mlops_kit.config import load_settings

    if home is not None:
        overrides["home"] = home
    return load_settings(**overrides)
