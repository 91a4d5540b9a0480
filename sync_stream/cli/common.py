"""Pieces shared by the command groups: the console, settings loading, error exits."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from sync_stream.errors import SyncStreamError
from sync_stream.observability.logs import configure_logging
from sync_stream.settings import Settings, load_settings

# Results go to standard output; errors, progress and logs to standard error. Piped output
# gets 120 columns instead of rich's 80 so that the tables stay readable in files and CI logs.
output = Console(width=None if sys.stdout.isatty() else 120)
console = Console(stderr=True)

EnvFile = Annotated[
    Path | None,
    typer.Option(
        "--env-file",
        help="Read settings from this file as well as SYNC_* variables.",
        exists=True,
        dir_okay=False,
    ),
]


def load_cli_settings(env_file: Path | None, **overrides: Any) -> Settings:
    """Load settings and configure logging; exit 2 with the reason when they are invalid."""
    try:
        settings = load_settings(env_file, **overrides)
    except SyncStreamError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    configure_logging(settings.log_format, settings.log_level)
    return settings


def run_or_exit(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine; exit 1 with the message of a service error."""
    try:
        return asyncio.run(coroutine)
    except SyncStreamError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
