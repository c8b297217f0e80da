"""Shared pieces of the command line: the Typer app, consoles, error handling and JSON output."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer._click.core import Context  # typer's own click: its errors are not the `click` package's
from typer._click.exceptions import NoArgsIsHelpError, NoSuchOption, UsageError
from typer.core import TyperGroup

from benzotaper.errors import BenzotaperError


@contextmanager
def _usage_errors_on_one_line() -> Iterator[None]:
    """A bad option value or an unknown option ends like any refusal: one `error:` line, exit code 2."""
    try:
        yield
    except NoArgsIsHelpError:  # `benzotaper` alone prints the help
        raise
    except UsageError as exc:
        dash = "; put -- before a value that starts with '-'" if isinstance(exc, NoSuchOption) else ""
        hint = f" (see '{exc.ctx.command_path} --help'{dash})" if exc.ctx is not None else ""
        _fail(f"{exc.format_message()}{hint}")


class Commands(TyperGroup):
    """The command group: usage errors are one line on stderr too (typer draws a box of several)."""

    def make_context(self, info_name: str | None, args: list[str], parent: Context | None = None, **extra: Any) -> Any:
        with _usage_errors_on_one_line():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Context) -> Any:
        with _usage_errors_on_one_line():
            return super().invoke(ctx)


app = typer.Typer(
    cls=Commands,
    add_completion=False,
    no_args_is_help=True,
    help="benzotaper: safe benzodiazepine and Z-drug tapering (clinical decision support).",
)
out = Console()
err = Console(stderr=True, soft_wrap=True)  # one error, one line: scripts grep stderr
T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def _fail(message: str) -> None:
    """Print `error: MESSAGE` (one line, the message never read as markup) and exit with code 2."""
    text = escape(" ".join(message.split()))
    err.print(f"[bold red]error:[/] {text}", highlight=False, emoji=False)
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
