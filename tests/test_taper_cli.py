"""`benzotaper plan`: the issue's done-when case end to end, with every file parsed back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from icalendar import Calendar
from pypdf import PdfReader
from typer.testing import CliRunner

from benzotaper.cli import app

runner = CliRunner()


def test_alprazolam_6mg_plan_with_all_outputs(tmp_path: Path) -> None:
    files = {k: tmp_path / f"plan.{k}" for k in ("pdf", "ics", "csv")}
    chart = tmp_path / "plan.png"
    args = [
        "plan",
        "alprazolam 6 mg/day in 3 doses",
        "--strategy",
        "ashton",
        "--start",
        "2026-12-01",
        "--to",
        "diazepam",
        "--pdf",
        str(files["pdf"]),
        "--ics",
        str(files["ics"]),
        "--csv",
        str(files["csv"]),
        "--chart",
        str(chart),
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"phases", "steps", "end_date", "warnings"} <= set(data)
    assert [p["name"] for p in data["phases"]] == ["substitution", "reduction"]
    step = data["steps"][0]
    assert {"start", "doses", "daily_mg", "diazepam_equivalent_mg"} <= set(step)
    assert {"drug", "time", "mg"} <= set(step["doses"][0])
    assert data["steps"][-1]["doses"] == [] and data["equivalence_table"] == "ashton"
    forms = {p["form"] for s in data["steps"] for d in s["doses"] for p in d["portions"]}
    assert "tablet" in forms and "oral_solution" in forms  # real tablets, then liquid for small steps
    assert len(data["levels"]) == len(data["steps"]) - 1
    with files["csv"].open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["drug"] for r in rows} >= {"alprazolam", "diazepam"}
    cal = Calendar.from_ical(files["ics"].read_bytes())
    assert len([e for e in cal.walk("VEVENT")]) > len(data["steps"])
    text = "".join(page.extract_text() for page in PdfReader(files["pdf"]).pages)
    assert "diazepam" in text and "December 2026" in text and "June 2028" in text and "drug-free" in text
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_exits_2() -> None:
    for args in (
        ["--strategy", "nope"],
        ["--start", "2026-13-01"],
        ["--fraction", "2"],
        ["--chart", "x.gif"],
        ["--first-dose", "noon"],
        ["--switch", "maybe"],
        ["--interval", "0"],
    ):
        result = runner.invoke(app, ["plan", "lorazepam 1 mg tds", *args])
        assert result.exit_code == 2, (args, result.output)


def test_events_file_replans(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text("date,kind,days,instrument,score,note\n2027-01-10,hold,28,,,holiday\n")
    base = json.loads(runner.invoke(app, ["plan", "diazepam 10 mg bd", "--start", "2026-12-01", "--json"]).stdout)
    res = runner.invoke(app, ["plan", "diazepam 10 mg bd", "--start", "2026-12-01", "--events", str(events), "--json"])
    assert res.exit_code == 0, res.output
    held = json.loads(res.stdout)
    assert held["events"][0]["kind"] == "hold" and held["end_date"] > base["end_date"]
    events.write_text("date,kind\nnot-a-date,hold\n")
    bad = runner.invoke(app, ["plan", "diazepam 10 mg bd", "--events", str(events)])
    assert bad.exit_code == 2 and "events.csv line 2" in bad.output


def test_the_pdf_carries_the_crisis_lines_of_the_chosen_country(tmp_path: Path) -> None:
    pdf = tmp_path / "plan.pdf"
    args = ["plan", "alprazolam 1 mg tds", "--start", "2026-12-01", "--pdf", str(pdf), "--country", "FR"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(PdfReader(str(pdf)).pages[0].extract_text().split())
    assert "3114" in text  # France's suicide prevention line, as domain.md section 4 lists it


def test_an_unknown_country_for_the_pdf_is_refused_naming_it(tmp_path: Path) -> None:
    args = ["plan", "alprazolam 1 mg tds", "--pdf", str(tmp_path / "p.pdf"), "--country", "JP"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "'JP'" in result.stderr
