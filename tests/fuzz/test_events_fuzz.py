"""Fuzz: the events CSV (issue 19 §1, surface "events CSV"): `taper.event_file.parse_events` / `read_events`.

Inputs start from valid files (the two required columns and any of the optional ones, in any order, one to
six holds, returns and scores of the instruments the knowledge base holds) and are then mutated: cells
replaced by odd text (empty, impossible dates, other date formats, negative, fractional, huge or non-ASCII
day counts, unknown kinds and instruments, scores out of range, NaN, infinity, exponents, long notes),
columns dropped, duplicated or added, short and long rows, a BOM, CRLF or CR line endings, semicolons,
stray quotes, NUL bytes, truncation; plus raw text, and bytes in other encodings read from a file. The
property (tests/fuzz/contract.py): each file is read into checked events, or refused with a PlanError naming
the line (and column), the value and what is accepted.

`test_events_cli_fuzz` runs `benzotaper plan SIG --events FILE` on a smaller sample of the same files (each
call builds and re-plans a taper), under the surface "events CSV (CLI)".
"""

from __future__ import annotations

import math
import random
import re
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benzotaper.errors import PlanError
from benzotaper.knowledge.instruments import load_instruments
from benzotaper.taper.event_file import MAX_DAYS, MAX_NOTE, OPTIONAL, REQUIRED, parse_events, read_events
from benzotaper.taper.plan import Event
from benzotaper.taper.replan import KINDS
from tests.fuzz.contract import EXAMPLES, FUZZ, accepted_or_refused, cli
from tests.fuzz.csv_text import MUTATIONS, NEWLINES, WHOLE_FILE, render, reshape, table_from_seed, whole_file

SURFACE = "events CSV"
CLI_SURFACE = "events CSV (CLI)"
CLI_EXAMPLES = min(EXAMPLES, 150)  # one plan and re-plan per call: a sample of the library's inputs
INSTRUMENTS = load_instruments()
WORKDIR = Path(tempfile.mkdtemp(prefix="events-fuzz-"))
WHERE = re.compile(r"events(\.csv)?( line \d+|: )")
ACCEPTED = ("expected", "save the events file")
PLAN_START = date(2026, 12, 1)

# ---------------------------------------------------------------- valid files


def valid_row(rng: random.Random, columns: list[str]) -> dict[str, str]:
    """One valid event: a hold (days 1-365), a return, or a score within its instrument's range."""
    kind = rng.choice(KINDS)
    day = PLAN_START + timedelta(days=rng.randrange(120))
    instrument = rng.choice(list(INSTRUMENTS)) if kind == "score" else ""
    scale = INSTRUMENTS.get(instrument)
    score = ""
    if scale:
        x = rng.uniform(scale.min_score, scale.max_score)
        score = rng.choice([str(round(x)), f"{x:.1f}", f"{x:g}"])
    row = {
        "date": day.isoformat(),
        "kind": rng.choice([kind, kind.upper(), f" {kind} "]),
        "days": str(rng.randint(1, 60)) if kind == "hold" else rng.choice(["", "", "7"]),
        "instrument": rng.choice([instrument, instrument.upper(), instrument.replace("_", "-")]),
        "score": score,
        "note": rng.choice(["", "holiday", "restless, poor sleep", "Urlaub in Köln", "不眠", "ok"]),
    }
    if "days" not in columns and kind == "hold":
        row["kind"] = "return"  # a hold needs its days
    if kind == "score" and not {"instrument", "score"} <= set(columns):
        row["kind"] = "return"
    return {c: row[c] for c in columns}


def valid_table(seed: int) -> tuple[list[str], list[list[str]]]:
    """A valid file's header and rows from a seed (each optional column kept with probability 0.6)."""
    return table_from_seed(seed, REQUIRED, OPTIONAL, 0.6, valid_row)


seeds = st.integers(0, 2**32 - 1)




# ---------------------------------------------------------------- mutations

ODD_CELLS = ["", " ", "nan", "NaN", "inf", "-inf", "-5", "-0", "0", "00", "1e3", "1e400", "14.0", "14.5", "½",
             "١٤", "１４", "9" * 30, "9" * 5000, "0x10", "1_000", "+14", " 14 ", "2027-02-30", "2027-13-01",
             "27-01-10", "10/01/2027", "2027-1-10", "20270110", "2027-01-10T08:00", "0001-01-01", "9999-12-31",
             "2027-W02-1", "tomorrow", "hold", "return", "score", "pause", "HOLD", "stop", "ciwa_b", "ciwa-b",
             "CIWA-B", "bwsq", "sds", "phq9", "ciwa", "ciwa_b\x00", "\x00", "\ufeff", "\u200b", "'", '"', '""',
             "\t", "a\nb", "\r", "🧪", "x" * (MAX_NOTE + 1), "x" * 5000, "81", "80", "80.0001", "-0.0", "1e-400",
             "15", "16", "40", "41", "20", "21"]  # fmt: skip
odd_cells = st.one_of(st.sampled_from(ODD_CELLS), st.text(max_size=12), st.floats().map(str))
EXTRA_COLUMNS = ["", "comment", "date", "kind", " days", "Score", "\ufeffdate", "dose"]


@st.composite
def events_files(draw: st.DrawFn) -> tuple[str, int]:
    """CSV text, and the line of the single cell mutated when only one was (0: check the general form only)."""
    seed = draw(seeds)
    columns, body = valid_table(seed)
    rng = random.Random(~seed)
    kinds = draw(st.lists(st.sampled_from(MUTATIONS), max_size=3))
    single = 0
    for kind in kinds:
        i = rng.randrange(len(body))
        if kind == "cell" and body[i]:
            body[i][rng.randrange(len(body[i]))] = draw(odd_cells)
            single = i + 2 if len(kinds) == 1 else 0
            continue
        single = 0
        columns, body = reshape(kind, rng, (columns, body), i, EXTRA_COLUMNS, ["", "x", "5", "hold"])
    text = render(columns, body, draw(NEWLINES))
    text, changed = whole_file(draw(WHOLE_FILE), rng, text)
    if changed or any("\n" in c or "\r" in c or '"' in c for r in body for c in r):
        single = 0
    return text, single




raw_texts = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=",\n\r\"'-0123456789.:holdretunscwab_ ", max_size=300),
    st.text(max_size=200).map(lambda t: "date,kind,days,instrument,score,note\n" + t),
)

# ---------------------------------------------------------------- the property


def _check_events(events: list[Event]) -> None:
    """What an accepted file promises: known kinds, day counts in range, scores within their instrument's range."""
    for e in events:
        assert isinstance(e.day, date) and e.kind in KINDS, e
        assert 0 <= e.days <= MAX_DAYS, e
        assert len(e.note) <= MAX_NOTE and e.note == e.note.strip(), e
        if e.kind == "score":
            scale = INSTRUMENTS[e.instrument]
            assert math.isfinite(e.score) and scale.min_score <= e.score <= scale.max_score, e


def _check_refusal(exc: PlanError, single: int) -> None:
    message = str(exc)
    assert "\n" not in message and "\r" not in message, repr(message)
    assert WHERE.search(message), f"{message!r} names no line or file"
    assert any(word in message for word in ACCEPTED), f"{message!r} says nothing of what is accepted"
    if single:
        assert f"line {single}" in message, f"{message!r} does not name line {single}"


def read_checked(text: str, single: int = 0) -> Any:
    result = accepted_or_refused(SURFACE, lambda: parse_events(text), ["events"])
    if isinstance(result, PlanError):
        _check_refusal(result, single)
    else:
        _check_events(result)
    return result


@settings(FUZZ, max_examples=min(EXAMPLES, 300))
@given(seeds)
def test_the_valid_files_are_accepted(seed: int) -> None:
    """The generator's starting point is valid: so a refusal after one mutation is that mutation's."""
    columns, body = valid_table(seed)
    events = parse_events(render(columns, body))
    assert len(events) == len(body)
    _check_events(events)


@pytest.mark.slow
@FUZZ
@given(st.one_of(events_files(), events_files(), events_files(), raw_texts.map(lambda t: (t, 0))))
def test_events_csv_fuzz(case: tuple[str, int]) -> None:
    read_checked(*case)


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]


@pytest.mark.slow
@settings(FUZZ, max_examples=max(EXAMPLES // 10, 100))
@given(events_files(), st.sampled_from(ENCODINGS), st.binary(max_size=8))
def test_events_file_fuzz(case: tuple[str, int], encoding: str, junk: bytes) -> None:
    """read_events: the same files as bytes in other encodings, with junk bytes appended."""
    path = WORKDIR / "events.csv"
    path.write_bytes(case[0].encode(encoding, errors="replace") + junk)
    result = accepted_or_refused(SURFACE, lambda: read_events(path), ["events.csv"])
    if isinstance(result, PlanError):
        _check_refusal(result, 0)
    else:
        _check_events(result)


# ---------------------------------------------------------------- the command line

VALID_FILES = seeds.map(lambda seed: render(*valid_table(seed)))
SIGS = st.sampled_from(["diazepam 10 mg bd", "alprazolam 1 mg tds", "lorazepam 1 mg bd"])


@st.composite
def cli_cases(draw: st.DrawFn) -> list[str]:
    """`plan SIG --start 2026-12-01 --events FILE`: a valid file two times in three, else a mutated one."""
    text = draw(events_files())[0] if draw(st.integers(0, 2)) == 1 else draw(VALID_FILES)
    path = WORKDIR / "cli.csv"
    path.write_text(text, encoding="utf-8")
    args = ["plan", draw(SIGS), "--start", PLAN_START.isoformat(), "--events", str(path)]
    return args + draw(st.sampled_from([[], ["--json"]]))


@pytest.mark.slow
@settings(FUZZ, max_examples=CLI_EXAMPLES)
@given(cli_cases())
def test_events_cli_fuzz(args: list[str]) -> None:
    cli(CLI_SURFACE, args)


# ---------------------------------------------------------------- failures the fuzz found (regressions)


def test_a_day_count_past_the_digit_limit_is_refused() -> None:
    # found fuzzing this surface: int() of a 5,000-digit day count raised a bare ValueError (Python's digit limit)
    with pytest.raises(PlanError, match=r"line 2, days: '9{40}\.\.\.' is not a number of days"):
        parse_events("date,kind,days\n2027-01-10,hold," + "9" * 5000 + "\n")
