"""The events CSV reader: what it accepts, and refusals that name the line, the column, the value and what is accepted.

Expected values are written out by hand from the file text; the instrument ranges (CIWA-B 0-80: 20 items scored
0-4, SDS 0-15: 5 items scored 0-3) are the published scoring, not read from the code under test.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from benzotaper.errors import PlanError
from benzotaper.taper.event_file import parse_events, read_events
from benzotaper.taper.plan import Event

HEAD = "date,kind,days,instrument,score,note\n"


def test_a_hold_a_return_and_a_score_are_read() -> None:
    text = HEAD + "2027-01-10,hold,28,,,holiday\n2027-02-01,Return,,,,\n\n2027-03-01,score,,CIWA-B,30, restless \n"
    assert parse_events(text) == [
        Event(day=date(2027, 1, 10), kind="hold", days=28, note="holiday"),
        Event(day=date(2027, 2, 1), kind="return"),
        Event(day=date(2027, 3, 1), kind="score", instrument="ciwa_b", score=30.0, note="restless"),
    ]


def test_columns_in_any_order_with_a_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes("\ufeffkind,date\r\nhold,2027-01-10\r\n".encode())
    (event,) = read_events(path)
    assert event.day == date(2027, 1, 10) and event.kind == "hold" and event.days == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HEAD + "10/01/2027,hold,28,,,\n", "events line 2, date: '10/01/2027' is not a date; expected YYYY-MM-DD"),
        (HEAD + "2027-02-30,hold,28,,,\n", "line 2, date: '2027-02-30'"),
        (HEAD + "20270110,hold,28,,,\n", "line 2, date: '20270110'"),
        (HEAD + "2027-01-10,pause,28,,,\n", "line 2, kind: 'pause' is not a kind; expected one of hold, return, score"),
        (HEAD + "2027-01-10,hold,-3,,,\n", "line 2, days: '-3' is not a number of days; expected a whole number 0-365"),
        (HEAD + "2027-01-10,hold,1e3,,,\n", "line 2, days: '1e3'"),
        (HEAD + "2027-01-10,hold,366,,,\n", "days: '366'"),
        (HEAD + "2027-01-10,score,,phq9,5,\n", "line 2, instrument: 'phq9' is not an instrument; expected one of"),
        (HEAD + "2027-01-10,score,,ciwa_b,81,\n", "line 2, score: '81' is not a CIWA-B score; expected a number 0-80"),
        (HEAD + "2027-01-10,score,,ciwa_b,nan,\n", "score: 'nan'"),
        (HEAD + "2027-01-10,score,,ciwa_b,inf,\n", "score: 'inf'"),
        (HEAD + "2027-01-10,score,,sds,16,\n", "expected a number 0-15"),
        (HEAD + "2027-01-10,score,,ciwa_b,,\n", "score: '' is not a CIWA-B score"),
        (HEAD + "2027-01-10,hold,5,,,x,extra\n", "line 2: 7 cells for 6 columns"),
        ("date,days\n2027-01-10,5\n", "line 1 (header): missing ['kind']; expected columns date,kind"),
        ("date,kind,dose\n", "unknown ['dose']"),
        ("date,kind,date\n", "repeated ['date']"),
        ("", "events: empty; expected a header date,kind"),
        (HEAD + "2027-01-10,hold,5,,," + "x" * 501 + "\n", "note: 501 characters; expected at most 500"),
        (HEAD + '"' + "x" * 200_000 + '"\n', "events line 2: not CSV"),
    ],
)
def test_refusals_name_line_column_value_and_what_is_accepted(text: str, expected: str) -> None:
    with pytest.raises(PlanError) as caught:
        parse_events(text)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes((HEAD + "2027-01-10,hold,28,,,Urlaub in Köln\n").encode("latin-1"))
    with pytest.raises(PlanError, match=r"events.csv: byte \d+ is not UTF-8; save the events file as UTF-8"):
        read_events(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="events.csv: cannot be read"):
        read_events(tmp_path / "events.csv")
