"""Plan writers (CSV, iCalendar, PDF, charts) on a small hand-made plan: read each file back and compare."""

from __future__ import annotations

import csv
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pytest
from icalendar import Alarm, Calendar, Event
from pypdf import PdfReader

from benzotaper.pk import Curves
from benzotaper.report.plan_chart import plot_plan_html, plot_plan_png
from benzotaper.report.plan_csv import dispensing_csv, write_csv
from benzotaper.report.plan_ics import write_ics
from benzotaper.report.plan_pdf import latin1, write_pdf
from benzotaper.taper.plan import Dose, Phase, Plan, Portion, Step

START = date(2026, 12, 14)  # a Monday; the plan runs into January 2027
MORNING, NIGHT = time(8, 0), time(22, 0)
DZ5 = Portion("diazepam", "tablet", 5.0, "mg", count=1)
LZ05 = Portion("lorazepam", "tablet", 0.5, "mg", count=1)
DZ2 = Portion("diazepam", "tablet", 2.0, "mg", count=1.5)
DZ_LIQ = Portion("diazepam", "oral_solution", 0.4, "mg/mL", ml=2.5)


@pytest.fixture(scope="module")
def plan() -> Plan:
    """Two weeks of diazepam + lorazepam, two weeks of diazepam (tablets + liquid), then drug-free."""
    step1 = Step(
        1,
        "substitution",
        START,
        14,
        (Dose("diazepam", MORNING, 5.0, (DZ5,)), Dose("lorazepam", NIGHT, 0.5, (LZ05,))),
        10.0,
        "replace lorazepam",
        warnings=("watch for sedation",),
    )
    step2 = Step(
        2,
        "reduction",
        date(2026, 12, 28),
        14,
        (Dose("diazepam", MORNING, 3.0, (DZ2,)), Dose("diazepam", NIGHT, 1.0, (DZ_LIQ,))),
        4.0,
        "cut 10%",
    )
    step3 = Step(3, "stop", date(2027, 1, 11), 1, (), 0.0, "stop")
    phases = (
        Phase("substitution", START, date(2026, 12, 27), "switch"),
        Phase("reduction", date(2026, 12, 28), date(2027, 1, 10), "reduce"),
    )
    return Plan(
        "diazepam 5 mg + lorazepam 0.5 mg",
        "fixed",
        "Fixed-step taper",
        "ashton",
        START,
        (step1, step2, step3),
        phases,
        ("plan warning: go slower if needed",),
        "diazepam",
        0.1,
        (),
    )


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_csv_rows_match_plan(plan: Plan, tmp_path: Path) -> None:
    rows = _read_csv(write_csv(plan, tmp_path / "plan.csv"))
    got = [(r["step"], r["time"], r["drug"], float(r["mg"])) for r in rows]
    assert got == [
        ("1", "08:00", "diazepam", 5.0),
        ("1", "22:00", "lorazepam", 0.5),
        ("2", "08:00", "diazepam", 3.0),
        ("2", "22:00", "diazepam", 1.0),
        ("3", "", "", 0.0),
    ]
    assert rows[2]["take"] == "1½ x diazepam 2 mg tablet"
    assert rows[3]["take"] == "2.5 mL diazepam 0.4 mg/mL oral solution"
    assert rows[4]["take"] == "no more doses"
    assert (rows[0]["start"], rows[0]["end"], rows[0]["days"]) == ("2026-12-14", "2026-12-27", "14")
    assert float(rows[0]["daily_diazepam_equivalent_mg"]) == 10.0
    assert rows[0]["warnings"] == "watch for sedation"


def test_dispensing_csv_totals(plan: Plan, tmp_path: Path) -> None:
    rows = _read_csv(dispensing_csv(plan, tmp_path / "d.csv", period_days=14))
    got = {(r["period"], r["product"]): (float(r["quantity"]), r["unit"]) for r in rows}
    assert got == {
        ("1", "diazepam 5 mg tablet"): (14.0, "tablet"),
        ("1", "lorazepam 0.5 mg tablet"): (14.0, "tablet"),
        ("2", "diazepam 2 mg tablet"): (21.0, "tablet"),
        ("2", "diazepam 0.4 mg/mL oral solution"): (35.0, "mL"),
    }
    assert {(r["period"], r["start"], r["end"]) for r in rows} == {
        ("1", "2026-12-14", "2026-12-27"),
        ("2", "2026-12-28", "2027-01-10"),
    }


def _events(path: Path) -> list[Event]:
    cal = Calendar.from_ical(path.read_bytes())
    assert str(cal["PRODID"]) == "-//benzotaper//taper plan//EN"
    return [e for e in cal.walk("VEVENT") if isinstance(e, Event)]


def test_ics_events(plan: Plan, tmp_path: Path) -> None:
    events = _events(write_ics(plan, tmp_path / "plan.ics", reminder_minutes=10))
    assert len(events) == 4 + 2 + 1  # 2 dose times x 2 steps, 2 step starts, the end
    doses = {(e.start.date(), e.start.time()): e for e in events if isinstance(e.start, datetime)}
    assert set(doses) == {(START, MORNING), (START, NIGHT), (date(2026, 12, 28), MORNING), (date(2026, 12, 28), NIGHT)}
    assert all(isinstance(e.start, datetime) and e.start.tzinfo is None for e in doses.values())
    assert [r["COUNT"] for e in doses.values() for r in e.rrules] == [[14]] * 4
    assert [r["FREQ"] for e in doses.values() for r in e.rrules] == [["DAILY"]] * 4
    first = doses[(START, MORNING)]
    assert first.summary == "Take diazepam 5 mg"
    assert "1 x diazepam 5 mg tablet" in (first.description or "")
    assert "replace lorazepam" in (first.description or "")
    alarms = [a for a in first.subcomponents if isinstance(a, Alarm)]
    assert [(a.TRIGGER, a["ACTION"]) for a in alarms] == [(timedelta(minutes=-10), "DISPLAY")]
    all_day = {e.start: e.summary or "" for e in events if not isinstance(e.start, datetime)}
    assert set(all_day) == {START, date(2026, 12, 28), date(2027, 1, 11)}
    assert all_day[date(2026, 12, 28)] == "Step 2 starts: diazepam 4 mg/day"
    assert all_day[date(2027, 1, 11)].startswith("Last dose taken")
    assert len({e.uid for e in events}) == len(events)


def test_ics_uids_stable(plan: Plan, tmp_path: Path) -> None:
    uids = [sorted(e.uid for e in _events(write_ics(plan, tmp_path / f"{i}.ics"))) for i in range(2)]
    assert uids[0] == uids[1]


def test_pdf_pages_and_text(plan: Plan, tmp_path: Path) -> None:
    reader = PdfReader(write_pdf(plan, tmp_path / "plan.pdf", patient_name="Ann Example"))
    assert len(reader.pages) == 1 + 2 + 1  # summary, December + January, dispensing
    pages = [p.extract_text() for p in reader.pages]
    text = "\n".join(pages)
    for expected in (
        "diazepam",
        "lorazepam",
        "Ann Example",
        "Fixed-step taper",
        "emergency number",
        "plan warning: go slower if needed",
    ):
        assert expected in pages[0]
    assert "December 2026" in pages[1] and "January 2027" in pages[2]
    assert "08:00 diazepam 5 mg" in pages[1]
    assert "1 1/2 x 2 mg tab" in text
    assert "NEW STEP 2" in pages[1]
    assert "drug-free" in pages[2]
    assert "35 mL" in pages[3]


def test_pdf_crisis_text_not_latin1(plan: Plan, tmp_path: Path) -> None:
    reader = PdfReader(write_pdf(plan, tmp_path / "p.pdf", crisis_text="Call 112 — now → ✓"))
    assert "Call 112 - now -> ?" in reader.pages[0].extract_text()


def test_latin1() -> None:
    assert latin1("½ and 2¾ µg") == "1/2 and 2 3/4 ug"


def _curves() -> Curves:
    times = np.arange(0.0, 28 * 24 + 1, 6.0)
    deq = 200.0 * np.exp(-times / 500.0)[None, :]
    return Curves(times, ("diazepam",), deq[:, None, :], deq, deq / (deq + 300.0), ())


def test_png(plan: Plan, tmp_path: Path) -> None:
    assert plot_plan_png(plan, _curves(), tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_plan_png(plan, None, tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_offline(plan: Plan, tmp_path: Path) -> None:
    html = plot_plan_html(plan, _curves(), tmp_path / "a.html").read_text(encoding="utf-8")
    assert "plotly" in html
    assert 'src="https://cdn.plot.ly' not in html
    assert "lorazepam" in html
