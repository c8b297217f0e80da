"""`benzotaper levels interpret | fit`: read measured serum levels against the regimen and the patient.

Registered on the shared Typer app when cli.py imports this module. Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from benzotaper.clitools import JsonOpt, _emit, _guard, app, out
from benzotaper.errors import LevelsError
from benzotaper.knowledge import load_knowledge
from benzotaper.tdm.interpret import ng
from benzotaper.tdm.samples import Sample, load_samples

Opt = typer.Option
levels_app = typer.Typer(no_args_is_help=True, help="Serum levels: interpret against the model, fit the patient.")
app.add_typer(levels_app, name="levels")

LevelsArg = Annotated[Path, typer.Argument(help="Levels CSV: sampled_at, analyte, value, unit[, lloq, last_dose_at]")]
RegimenOpt = Annotated[str, Opt("--regimen", help="Regimen taken every day since --since, e.g. 'diazepam 10 mg tds'")]
SinceOpt = Annotated[str, Opt("--since", help="First day of that regimen, YYYY-MM-DD")]


HISTORY_YEARS = 10  # a compute bound, not a clinical one: the regimen is expanded dose by dose from --since


def since_date(value: str, option: str = "--since") -> date:
    """--since (or another date option) as a date, or a clear error."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise LevelsError(f"{option} must be a date YYYY-MM-DD (got {value!r})") from None


def checked_since(samples: list[Sample], value: str) -> date:
    """--since as a date at most HISTORY_YEARS before the last sample (a longer history would take minutes)."""
    since = since_date(value)
    last = max(s.sampled_at for s in samples).date()
    earliest = last - timedelta(days=round(HISTORY_YEARS * 365.25))
    if since < earliest:
        raise LevelsError(
            f"--since {since} is more than {HISTORY_YEARS} years before the last sample ({last}); expected a date "
            f"from {earliest} on: the regimen is simulated dose by dose from --since, and doses taken years "
            "before a sample no longer change its level"
        )
    return since


def propose_start(samples: list[Sample], value: str | None, days: int) -> date | None:
    """--propose-from as a date within the forecast: from the last sample's day to the end of --days."""
    if value is None:
        return None
    start = since_date(value, "--propose-from")
    last = max(s.sampled_at for s in samples).date()
    if not last <= start <= last + timedelta(days=days):
        raise LevelsError(
            f"--propose-from {start} is outside the forecast; expected a date from the last sample ({last}) "
            f"to {last + timedelta(days=days)} (--days {days} after it)"
        )
    return start


@levels_app.command("interpret")
def interpret_command(levels: LevelsArg, regimen: RegimenOpt, since: SinceOpt, json_out: JsonOpt = False) -> None:
    """Each level against the population model: expected value, 90% interval, verdict and reasons."""
    from benzotaper.tdm.service import interpret_levels

    knowledge = _guard(load_knowledge)
    samples = _guard(lambda: load_samples(knowledge, levels))
    result = _guard(lambda: interpret_levels(knowledge, samples, regimen, checked_since(samples, since)))
    if json_out:
        _emit(result)
        return
    _print_interpretation(result)


@levels_app.command("fit")
def fit_command(
    levels: LevelsArg,
    regimen: RegimenOpt,
    since: SinceOpt,
    days: Annotated[int, Opt("--days", help="Forecast this many days after the last sample")] = 28,
    target: Annotated[float | None, Opt("--target", help="Report when the trough falls to this level (ng/mL)")] = None,
    propose: Annotated[
        str | None, Opt("--propose", help="Forecast a changed regimen, e.g. 'diazepam 5 mg tds'")
    ] = None,
    propose_from: Annotated[str | None, Opt("--propose-from", help="Day the change starts (default: next day)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Individualise the model (MAP): fast, typical or slow eliminator, parameters and forecast."""
    from benzotaper.tdm.service import fit_levels

    if not 1 <= days <= 730:
        _guard(lambda: _raise(f"--days must be 1-730 (got {days})"))
    if target is not None and not target > 0:
        _guard(lambda: _raise(f"--target must be a level above 0 ng/mL (got {target})"))
    knowledge = _guard(load_knowledge)
    samples = _guard(lambda: load_samples(knowledge, levels))
    first = _guard(lambda: checked_since(samples, since))
    start = _guard(lambda: propose_start(samples, propose_from, days))
    result = _guard(lambda: fit_levels(knowledge, samples, regimen, first, days, target, propose, start))
    if json_out:
        _emit(result)
        return
    _print_fit(result)


def _raise(message: str) -> None:
    raise LevelsError(message)


def _print_interpretation(result: dict[str, Any]) -> None:
    table = Table(title=f"Levels on {escape(result['regimen'])} (since {result['since']})", pad_edge=False)
    for col in ("sampled", "analyte", "measured", "expected (90%)", "verdict"):
        table.add_column(col)
    for row in result["samples"]:
        m, e = row["measured"], row["expected"]
        measured = f"<{ng(m['lloq'])}" if m["below_lloq"] else ng(m["value"])
        expected = "-" if e is None else f"{ng(e['value'])} ({ng(e['low'])}-{ng(e['high'])})"
        table.add_row(row["sampled_at"], row["analyte"], measured, expected, row["verdict"])
    out.print(table)
    for row in result["samples"]:
        out.print(f"[bold]{row['sampled_at']} {row['analyte']}[/]: " + escape("; ".join(row["reasons"])))
    for note in result["notes"]:
        out.print(f"[yellow]note:[/] {escape(note)}")


def _print_fit(result: dict[str, Any]) -> None:
    c = result["classification"]
    lo, hi = c["clearance_ratio_interval"]
    out.rule(f"[bold]{result['eliminator']} eliminator[/] ({escape(result['regimen'])})")
    out.print(
        f"Clearance of the active moiety {result['clearance_ratio']:.2f} x the population typical "
        f"(90% interval {lo:.2f}-{hi:.2f}); population centile {c['population_centile']:.0%}"
    )
    table = Table(pad_edge=False)
    for col in ("analyte", "parameter", "typical", "individual", "90% interval"):
        table.add_column(col)
    for analyte, entries in result["parameters"].items():
        for name, p in entries.items():
            if not isinstance(p, dict):
                continue
            interval = f"{p['low']:.3g}-{p['high']:.3g}" if "low" in p else p.get("fixed", "")
            table.add_row(analyte, name, f"{p['typical']:.3g}", f"{p['individual']:.3g}", interval)
    out.print(table)
    points = result["forecast"]
    if points:
        first, last = points[0], points[-1]
        out.print(
            f"Forecast trough (diazepam-equivalent): {ng(first['deq']['value'])} ng/mL on {first['at'][:10]} -> "
            f"{ng(last['deq']['value'])} ng/mL ({ng(last['deq']['low'])}-{ng(last['deq']['high'])}) "
            f"on {last['at'][:10]}"
        )
    if "time_to_target" in result:
        t = result["time_to_target"]
        out.print(f"Target {t['target_ng_ml']:g} ng/mL reached: {t['reached'] or 'not within the forecast'}")
    for note in result["notes"]:
        out.print(f"[yellow]note:[/] {escape(note)}")
