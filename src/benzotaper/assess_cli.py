"""`benzotaper assess` and `benzotaper assess-trend`: score CIWA-B, BWSQ or SDS answers and follow scores over time.

Registered on the shared Typer app when cli.py imports this module. Bad input: one line on stderr, exit code 2.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from benzotaper.assess.instruments import Score, Trend, score, shown, trend
from benzotaper.clitools import JsonOpt, _emit, _guard, app, out
from benzotaper.errors import AssessmentError
from benzotaper.knowledge.instruments import Cutoff, Instrument, load_instruments

InstrumentArg = Annotated[str, typer.Argument(help="ciwa-b, bwsq or sds")]
SCORE_COLUMNS = ("date", "score")  # the header of a scores file, in any order and case
WHOLE = re.compile(r"[+-]?[0-9]{1,18}")  # ASCII digits only: int() would also read '1_0' or other scripts' digits


def find_instrument(name: str) -> Instrument:
    """An instrument by its command-line name: ciwa-b (or ciwa_b), bwsq, sds; any case."""
    instruments = load_instruments()
    key = name.strip().lower().replace("-", "_")
    if key not in instruments:
        names = ", ".join(sorted(i.replace("_", "-") for i in instruments))
        raise AssessmentError(f"unknown instrument {name!r}; use one of: {names}")
    return instruments[key]


def read_answers(path: Path) -> Any:
    """The answers file: JSON, a list of item scores in item order or an object keyed by item id."""
    return read_json_file(path, "answers")


def read_json_file(path: Path, what: str) -> Any:
    """A JSON file (UTF-8, a BOM allowed), or an AssessmentError naming the file, the place and the problem.

    Stricter than `json.loads`: a key given twice in one object, NaN or Infinity, a number too large for a float
    and nesting too deep to read are refused rather than read silently or left to crash.
    """
    text = _read_text(path, what)
    try:
        return json.loads(
            text,
            object_pairs_hook=lambda pairs: _unique_keys(path.name, pairs),
            parse_constant=lambda name: _refuse_constant(path.name, name),
            parse_float=lambda digits: _finite(path.name, digits),
            parse_int=lambda digits: _whole(path.name, digits),
        )
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise AssessmentError(f"{path.name}: not valid JSON ({exc.msg}, {where})") from None
    except RecursionError:
        raise AssessmentError(f"{path.name}: JSON nested too deeply to read; give a flat object or list") from None


def _read_text(path: Path, what: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AssessmentError(f"cannot read {what} file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AssessmentError(
            f"{path.name}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None


def _unique_keys(name: str, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise AssessmentError(f"{name}: key {shown(key)} is given twice in one object; give each key once")
        out[key] = value
    return out


def _refuse_constant(name: str, constant: str) -> None:
    raise AssessmentError(f"{name}: {constant} is not a JSON number; give a finite number")


def _finite(name: str, digits: str) -> float:
    value = float(digits)
    if not math.isfinite(value):
        raise AssessmentError(f"{name}: the number {shown(digits)} is too large; give a finite number")
    return value


def _whole(name: str, digits: str) -> int:
    limit = sys.get_int_max_str_digits()
    if limit and len(digits.lstrip("-")) > limit:
        raise AssessmentError(f"{name}: a whole number of {len(digits)} digits is too long (at most {limit} digits)")
    return int(digits)


def read_scores(path: Path, instrument: Instrument) -> list[tuple[datetime, int]]:
    """Scores CSV with a header `date,score`; date is YYYY-MM-DD or YYYY-MM-DDTHH:MM; score within the range."""
    text = _read_text(path, "scores")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise AssessmentError(f"{path.name}: not a readable CSV ({exc}); needs a header date,score") from None
    if not rows:
        raise AssessmentError(f"{path.name}: empty; needs a header date,score and one row per score")
    columns = _score_columns(path.name, rows[0])
    return [_score_row(path.name, line, row, columns, instrument) for line, row in enumerate(rows[1:], start=2) if row]


def _score_columns(name: str, header: list[str]) -> tuple[int, int]:
    cleaned = [h.strip().lower() for h in header]
    for col in SCORE_COLUMNS:
        if cleaned.count(col) != 1:
            problem = "is missing" if col not in cleaned else "appears more than once"
            raise AssessmentError(
                f"{name} line 1: column {col!r} {problem}; needs a header date,score (got {shown(header)})"
            )
    return cleaned.index(SCORE_COLUMNS[0]), cleaned.index(SCORE_COLUMNS[1])


def _score_row(
    name: str, line: int, row: list[str], columns: tuple[int, int], instrument: Instrument
) -> tuple[datetime, int]:
    cells = [row[c].strip() if c < len(row) else "" for c in columns]
    try:
        when = datetime.fromisoformat(cells[0])
    except ValueError:
        raise AssessmentError(
            f"{name} line {line}: needs date (YYYY-MM-DD or YYYY-MM-DDTHH:MM), got {shown(cells[0])}"
        ) from None
    if when.tzinfo is not None:
        raise AssessmentError(
            f"{name} line {line}: date {shown(cells[0])} has a time zone; give the local date and time"
        )
    if not WHOLE.fullmatch(cells[1]):
        raise AssessmentError(f"{name} line {line}: needs a whole-number score, got {shown(cells[1])}")
    value = int(cells[1])
    if not instrument.min_score <= value <= instrument.max_score:
        raise AssessmentError(
            f"{name} line {line}: score {shown(value)} is outside the {instrument.name} range "
            f"{instrument.min_score}-{instrument.max_score}"
        )
    return when, value


def parse_dates(text: str | None) -> list[date]:
    """Comma-separated YYYY-MM-DD dates (the --reductions option)."""
    dates = []
    for part in (text or "").split(","):
        if part.strip():
            try:
                dates.append(date.fromisoformat(part.strip()))
            except ValueError:
                raise AssessmentError(f"--reductions: {part.strip()!r} is not a date YYYY-MM-DD") from None
    return dates


def _sources(instrument: Instrument) -> list[dict[str, str | None]]:
    return [
        {"key": s.key, "citation": s.citation, "url": s.url, "reliability": s.reliability}
        for s in instrument.sources.values()
    ]


def _cutoff_payload(cutoff: Cutoff | None) -> dict[str, Any] | None:
    if cutoff is None:
        return None
    keys = ("id", "value", "published_as", "population", "sensitivity", "specificity", "auc", "source", "note")
    return {k: getattr(cutoff, k) for k in keys}


def score_payload(instrument: Instrument, result: Score) -> dict[str, Any]:
    """The JSON shape of `benzotaper assess --json`."""
    lic = instrument.licence
    return {
        "instrument": instrument.id,
        "name": instrument.name,
        "score": result.total,
        "min_score": result.min_score,
        "max_score": result.max_score,
        "band": result.band,
        "band_source": result.band_source,
        "dependent": result.dependent,
        "cutoff": _cutoff_payload(result.cutoff),
        "items": [{"id": i.id, "number": i.number, "value": i.value, "label": i.label} for i in result.items],
        "wording": instrument.wording,
        "time_frame": instrument.time_frame,
        "licence": {
            "status": lic.status,
            "permission_required": lic.permission_required,
            "note": lic.note,
            "source": lic.source,
        },
        "sources": _sources(instrument),
        "warnings": list(result.warnings),
    }


@app.command("assess")
def assess(
    instrument: InstrumentArg,
    answers_file: Annotated[Path, typer.Argument(help="JSON: a list of item scores in order, or {item id: score}")],
    cutoff: Annotated[
        str | None, typer.Option("--cutoff", help="SDS cut-off: de_las_cuevas (default, >= 7) or cheng (>= 6)")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Score a withdrawal (CIWA-B, BWSQ) or dependence (SDS) instrument: total, band, cut-off and sources."""
    inst = _guard(lambda: find_instrument(instrument))
    answers = _guard(lambda: read_answers(answers_file))
    result = _guard(lambda: score(inst, answers, cutoff))
    if json_out:
        _emit(score_payload(inst, result))
        return
    _print_score(inst, result)


def _print_score(instrument: Instrument, result: Score) -> None:
    table = Table(title=f"{instrument.name}: {instrument.full_name}")
    for col in ("#", "item", "answer"):
        table.add_column(col, no_wrap=col == "#")
    for row in result.items:
        table.add_row(
            str(row.number), escape(instrument.items[row.number - 1].text), escape(f"{row.value} ({row.label})")
        )
    out.print(table)
    out.print(f"[bold]Total: {result.total}[/] (range {result.min_score}-{result.max_score})", highlight=False)
    if result.band is not None and result.band_source is not None:
        rel = instrument.sources[result.band_source].reliability
        out.print(f"Band: [bold]{escape(result.band)}[/] (source {result.band_source}, {rel})", highlight=False)
    else:
        out.print("Band: none", highlight=False)
    if result.cutoff is not None:
        verdict = "yes" if result.dependent else "no"
        out.print(
            f"Dependent: [bold]{verdict}[/] ({result.cutoff.id} cut-off: total >= {result.cutoff.value}, "
            f"source {result.cutoff.source})",
            highlight=False,
        )
    for w in result.warnings:
        out.print(f"[yellow]note:[/] {escape(w)}", highlight=False)
    out.print("Item texts, licence and full citations: --json.")


def trend_payload(instrument: Instrument, result: Trend) -> dict[str, Any]:
    """The JSON shape of `benzotaper assess-trend --json`."""
    band = instrument.band_for(result.last[1])
    return {
        "instrument": instrument.id,
        "name": instrument.name,
        "count": result.count,
        "first": {"at": result.first[0], "score": result.first[1]},
        "last": {"at": result.last[0], "score": result.last[1]},
        "last_band": band.label if band else None,
        "min_score": result.min_score,
        "max_score": result.max_score,
        "slope_per_week": None if result.slope_per_week is None else round(result.slope_per_week, 3),
        "last_reduction": result.last_reduction,
        "reference": None if result.reference is None else {"at": result.reference[0], "score": result.reference[1]},
        "change_since_reduction": result.change_since_reduction,
        "change": result.change,
        "direction": result.direction,
        "stable_within": result.stable_within,
        "stable_within_source": instrument.stable_within.source,
        "stable_within_note": instrument.stable_within.note,
    }


@app.command("assess-trend")
def assess_trend(
    instrument: InstrumentArg,
    scores_file: Annotated[Path, typer.Argument(help="CSV with a header date,score (date YYYY-MM-DD)")],
    reductions: Annotated[
        str | None, typer.Option("--reductions", help="Dose-reduction dates, comma-separated: 2026-01-01,2026-01-15")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Follow an instrument's scores over time: range, slope per week and the change since the last reduction."""
    inst = _guard(lambda: find_instrument(instrument))
    records = _guard(lambda: read_scores(scores_file, inst))
    cuts = _guard(lambda: parse_dates(reductions))
    result = _guard(lambda: trend(records, cuts, inst.stable_within.value))
    if json_out:
        _emit(trend_payload(inst, result))
        return
    _print_trend(inst, records, result)


def _print_trend(instrument: Instrument, records: list[tuple[datetime, int]], result: Trend) -> None:
    table = Table(title=f"{instrument.name} scores")
    for col in ("date", "score", "band"):
        table.add_column(col)
    for when, value in sorted(records):
        band = instrument.band_for(value)
        table.add_row(when.strftime("%Y-%m-%d %H:%M").removesuffix(" 00:00"), str(value), band.label if band else "")
    out.print(table)
    slope = "n/a" if result.slope_per_week is None else f"{result.slope_per_week:+.2f} points/week"
    out.print(f"Range {result.min_score}-{result.max_score}; slope {slope}.", highlight=False)
    if result.reference is not None:
        (ref_at, ref), (last_at, last) = result.reference, result.last
        out.print(
            f"Since the reduction on {result.last_reduction}: {result.change_since_reduction:+d} "
            f"({ref} on {ref_at:%Y-%m-%d} -> {last} on {last_at:%Y-%m-%d})",
            highlight=False,
        )
    margin = result.stable_within or 0
    out.print(
        f"Direction: [bold]{result.direction}[/] (a change under {margin:g} points counts as stable; "
        f"{instrument.stable_within.source})",
        highlight=False,
    )
