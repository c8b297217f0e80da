"""Shared pieces of the command line: the Typer app, consoles, error handling and JSON output."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from benzotaper.errors import BenzotaperError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="benzotaper: safe benzodiazepine and Z-drug tapering (clinical decision support).",
)
out = Console()
err = Console(stderr=True, soft_wrap=True)  # one error, one line: scripts grep stderr
T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=2)


def _guard(action: Callable[[], T]) -> T:
    """Run an action; turn our errors and bad values into a message and exit code 2."""
    try:
        return action()
    except (BenzotaperError, ValueError) as exc:
        _fail(str(exc))
        raise  # pragma: no cover - _fail always exits


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(type(value).__name__)
