"""The events CSV of `plan --events` and `levels guided --events`: holds, steps back and withdrawal scores.

Columns `date,kind[,days,instrument,score,note]` (any order, header first). Each cell is checked here, so a
refusal names the file, the line, the column, the value and what is accepted; the plan-dependent checks
(the date within the plan's dosing days, a hold's length) stay in `taper.replan.check_event`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from benzotaper.errors import PlanError
from benzotaper.knowledge.instruments import load_instruments
from benzotaper.taper.plan import Event
from benzotaper.taper.replan import KINDS

REQUIRED = ("date", "kind")
OPTIONAL = ("days", "instrument", "score", "note")
MAX_DAYS = 365  # the longest hold replan accepts
MAX_NOTE = 500  # characters of a note kept in the plan
INSTRUMENT_ALIASES = {"ciwa-b": "ciwa_b"}


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def read_events(path: Path) -> list[Event]:
    """The events of the CSV file at `path` (UTF-8, with or without a byte-order mark)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanError(f"{path.name}: byte {exc.start} is not UTF-8; save the events file as UTF-8 CSV") from None
    except OSError as exc:
        raise PlanError(f"{path.name}: cannot be read ({exc.strerror})") from None
    return parse_events(text, path.name)


def parse_events(text: str, name: str = "events") -> list[Event]:
    """The events of CSV `text`; `name` is how refusals call the file."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise PlanError(f"{name} line {reader.line_num}: not CSV ({exc}); expected comma-separated cells") from None
    if not rows:
        raise PlanError(f"{name}: empty; expected a header {','.join(REQUIRED + OPTIONAL)}")
    header = [cell.strip().lower() for cell in rows[0]]
    _check_header(name, header)
    events = []
    for line, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        if len(cells) > len(header):
            raise PlanError(
                f"{name} line {line}: {len(cells)} cells for {len(header)} columns ({','.join(header)}); "
                "expected at most one cell per column of the header"
            )
        events.append(_event(name, line, dict(zip(header, cells, strict=False))))
    return events


def _check_header(name: str, header: list[str]) -> None:
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    doubled = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or doubled:
        problems = [f"missing {missing}" if missing else "", f"unknown {unknown}" if unknown else ""]
        problems.append(f"repeated {doubled}" if doubled else "")
        raise PlanError(
            f"{name} line 1 (header): {'; '.join(p for p in problems if p)}; expected columns "
            f"{','.join(REQUIRED)} and any of {','.join(OPTIONAL)}"
        )


def _event(name: str, line: int, row: Mapping[str, str]) -> Event:
    where = f"{name} line {line}"
    day = _day(where, row.get("date", ""))
    kind = row.get("kind", "").strip().lower()
    if kind not in KINDS:
        raise PlanError(f"{where}, kind: {_shown(kind)} is not a kind; expected one of {', '.join(KINDS)}")
    days = _days(where, row.get("days", ""))
    instrument, score = _score(where, kind, row.get("instrument", ""), row.get("score", ""))
    note = row.get("note", "").strip()
    if len(note) > MAX_NOTE:
        raise PlanError(f"{where}, note: {len(note)} characters; expected at most {MAX_NOTE}")
    return Event(day=day, kind=kind, days=days, instrument=instrument, score=score, note=note)


def _day(where: str, text: str) -> date:
    value = text.strip()
    try:
        if len(value) != len("YYYY-MM-DD"):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise PlanError(f"{where}, date: {_shown(value)} is not a date; expected YYYY-MM-DD") from None


def _days(where: str, text: str) -> int:
    value = text.strip()
    if not value:
        return 0
    if not (value.isascii() and value.isdigit() and len(value) <= len(str(MAX_DAYS))) or int(value) > MAX_DAYS:
        raise PlanError(f"{where}, days: {_shown(value)} is not a number of days; expected a whole number 0-{MAX_DAYS}")
    return int(value)


def _score(where: str, kind: str, instrument_text: str, score_text: str) -> tuple[str, float]:
    """The instrument id and score of a `score` event (checked against the instrument's range); else ('', 0)."""
    instrument = instrument_text.strip().lower()
    instrument = INSTRUMENT_ALIASES.get(instrument, instrument)
    value = score_text.strip()
    if kind != "score":
        return instrument, 0.0
    known = load_instruments()
    if instrument not in known:
        raise PlanError(
            f"{where}, instrument: {_shown(instrument)} is not an instrument; expected one of {', '.join(known)}"
        )
    scale = known[instrument]
    try:
        score = float(value) if value.isascii() and len(value) <= 20 else math.nan
    except ValueError:
        score = math.nan
    if not scale.min_score <= score <= scale.max_score:  # NaN and inf fail too
        raise PlanError(
            f"{where}, score: {_shown(value)} is not a {scale.name} score; "
            f"expected a number {scale.min_score}-{scale.max_score}"
        )
    return instrument, score
