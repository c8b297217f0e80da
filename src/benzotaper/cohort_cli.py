"""`benzotaper cohort generate | run`: synthetic OMOP data and population drug-utilisation indicators.

Registered on the shared Typer app when cli.py imports this module. Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from benzotaper.clitools import JsonOpt, _emit, _fail, app, err, out
from benzotaper.errors import BenzotaperError

Opt = typer.Option
cohort_app = typer.Typer(no_args_is_help=True, help="Population use over OMOP CDM: long-term, high-dose, escalating.")
app.add_typer(cohort_app, name="cohort")

STEPS = ("load", "map products", "daily doses and episodes", "indicators", "write")
T = TypeVar("T")


def _guard(action: Callable[[], T]) -> T:
    """clitools._guard for the cohort commands (clitools._fail prints the message as text, never as markup)."""
    try:
        return action()
    except (BenzotaperError, ValueError) as exc:
        _fail(str(exc))
        raise  # pragma: no cover - _fail always exits


def _rows(value: str) -> int:
    """'10_000_000', '10,000,000' or '1e7' as a whole number of rows."""
    text = value.replace("_", "").replace(",", "")
    try:
        number = float(text)
    except ValueError:
        raise typer.BadParameter(f"--rows must be a whole number such as 10_000_000 (got {value!r})") from None
    if not number.is_integer() or number < 1:
        raise typer.BadParameter(f"--rows must be a whole number of at least 1 (got {value!r})")
    return int(number)


@cohort_app.command("generate")
def generate_command(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write OMOP Parquet tables and truth/ into")],
    rows: Annotated[str, Opt("--rows", help="drug_exposure rows to write, e.g. 10_000_000")] = "100_000",
    seed: Annotated[int, Opt("--seed", help="Random seed (same seed, same data)")] = 7,
    chunk_rows: Annotated[int, Opt("--chunk-rows", help="Rows per Parquet part (memory bound)")] = 5_000_000,
    json_out: JsonOpt = False,
) -> None:
    """Write synthetic OMOP CDM data with realistic prescribing patterns and its ground truth."""
    from benzotaper.cohort.generate import generate

    n = _rows(rows)
    with _bar(json_out, "rows", n) as (progress, task):
        made = _guard(
            lambda: generate(out_dir, n, seed=seed, chunk_rows=chunk_rows, progress=lambda k: progress.advance(task, k))
        )
    payload = {
        "rows": made.rows,
        "persons": made.persons,
        "users": made.users,
        "files": made.files,
        "out_dir": str(made.out_dir),
    }
    if json_out:
        _emit(payload)
        return
    out.print(
        f"wrote {made.rows:,} drug_exposure rows for {made.users:,} users among {made.persons:,} persons "
        f"to {made.out_dir} (truth in {made.out_dir / 'truth'})"
    )


@cohort_app.command("run")
def run_command(
    source: Annotated[Path, typer.Argument(help="Folder of OMOP tables (Parquet or CSV) or a DuckDB database file")],
    engine: Annotated[str, Opt("--engine", help="duckdb (default, embedded) or spark")] = "duckdb",
    out_dir: Annotated[Path | None, Opt("--out", help="Folder for the result tables (default SOURCE/results)")] = None,
    report: Annotated[Path | None, Opt("--report", help="Write an HTML summary with charts here")] = None,
    fmt: Annotated[str, Opt("--format", help="Result tables as parquet or csv")] = "parquet",
    gap_days: Annotated[int | None, Opt("--gap-days", help="Days without supply that end an episode")] = None,
    high_dose: Annotated[
        float | None, Opt("--high-dose", help="High dose above this diazepam-equivalent mg/day")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Find long-term, high-dose and escalating use; write tables, summary.json and an HTML report."""
    from benzotaper.cohort.pipeline import default_settings, run_cohort

    target = out_dir or (source / "results" if source.is_dir() else source.parent / "results")
    settings = _guard(lambda: default_settings().with_overrides(gap_days=gap_days, high_dose=high_dose))
    if engine not in ("duckdb", "spark"):
        _guard(lambda: _bad_engine(engine))
    with _bar(json_out, "steps", len(STEPS)) as (progress, task):
        result = _guard(
            lambda: run_cohort(
                source, target, engine, settings=settings, fmt=fmt, progress=lambda _s: progress.advance(task, 1)
            )
        )
    if report is not None:
        from benzotaper.report.cohort_report import write_cohort_report

        _guard(lambda: write_cohort_report(target, report))
        result.summary["report"] = str(report)
    if json_out:
        _emit(result.summary)
        return
    _print_summary(result.summary)


def _bad_engine(engine: str) -> None:
    from benzotaper.errors import CohortError

    raise CohortError(f"--engine must be duckdb or spark (got {engine!r})")


class _bar:
    """A Rich progress bar on stderr, silent with --json (stdout stays machine-readable)."""

    def __init__(self, quiet: bool, unit: str, total: int):
        self.progress = Progress(
            TextColumn(f"[bold]{unit}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=quiet,
            transient=True,
        )
        self.total = total

    def __enter__(self) -> tuple[Progress, Any]:
        self.progress.start()
        return self.progress, self.progress.add_task("", total=self.total)

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def _print_summary(summary: dict[str, Any]) -> None:
    out.print(
        f"{summary['drug_exposure_rows']:,} drug_exposure rows, {summary['persons']:,} persons: "
        f"{summary['users']:,} users in {summary['episodes']:,} episodes ({summary['engine']})"
    )
    table = Table(title="Persons with each indicator (any episode)")
    table.add_column("indicator")
    table.add_column("persons", justify="right")
    table.add_column("% of users", justify="right")
    users = max(summary["users"], 1)
    for name, count in summary["persons_with"].items():
        table.add_row(name.replace("_", " "), f"{count:,}", f"{100 * count / users:.1f}")
    out.print(table)
    mapped = sum(m["rows"] for m in summary["mapping"] if m["status"] == "mapped")
    other = {m["status"]: 0 for m in summary["mapping"]}
    for m in summary["mapping"]:
        other[m["status"]] += m["rows"]
    out.print(
        "rows by mapping status: " + ", ".join(f"{k} {v:,}" for k, v in sorted(other.items())) + f" (mapped {mapped:,})"
    )
    out.print(
        f"review candidates: {summary['review_candidates']:,}; tables in {Path(summary['outputs']['episodes']).parent}"
    )
    if "report" in summary:
        out.print(f"report: {summary['report']}")
