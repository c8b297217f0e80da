"""Printable patient calendar of a taper plan (fpdf2): summary, one month per page, and pharmacy totals.

Only the built-in Helvetica font is used, so all text goes through `latin1` first.
"""

from __future__ import annotations

import calendar as cal
import re
from datetime import date, timedelta
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos

from benzotaper.report.plan_common import by_time, daily_total, mg_text, short_portion, supplies
from benzotaper.taper.plan import Plan, Step

CRISIS = (
    "If you have a seizure, confusion, thoughts of harming yourself or feel very unwell, "
    "call your local emergency number now."
)
FONT = "Helvetica"
NBSP = "\xa0"
CELL_PT = 9
LINE_H = 3.6
HEAD_H = 4.8
COMPACT_H = 11.0
LEGEND = "Yellow: a new step starts that day. Green: drug-free. Tablets for each dose (if not shown here): page 1."
MARGIN = 10.0
NEW_STEP_FILL = (255, 236, 160)
DRUG_FREE_FILL = (205, 240, 205)
OUTSIDE_FILL = (238, 238, 238)
_REPLACE = {
    "½": "1/2",
    "¼": "1/4",
    "¾": "3/4",
    "µ": "u",
    "—": "-",
    "–": "-",
    "→": "->",
    "≈": "~",
    "≥": ">=",
    "≤": "<=",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "•": "-",
    "…": "...",
}


def latin1(text: str) -> str:
    """Text the core fonts can draw: '1½' -> '1 1/2', '—' -> '-', anything else outside latin-1 -> '?'.

    >>> latin1("1½ x 2 mg — ok → 0.5 µg ✓")
    '1 1/2 x 2 mg - ok -> 0.5 ug ?'
    """
    text = re.sub(r"(\d)([½¼¾])", r"\1 \2", text)
    text = "".join(_REPLACE.get(c, c) for c in text)
    return text.encode("latin-1", errors="replace").decode("latin-1")


def _day(d: date) -> str:
    """'Tue 1 Dec 2026'."""
    return f"{d:%a} {d.day} {d:%b %Y}"


def _span(first: date, last: date) -> str:
    """'1 Dec 2026 - 14 Dec 2026' (no weekdays, to fit table columns)."""
    return f"{first.day} {first:%b %Y} - {last.day} {last:%b %Y}"


def _amount(quantity: float, unit: str) -> str:
    """'1 tablet', '10.5 tablets', '35 mL'."""
    plural = unit != "mL" and quantity != 1
    return f"{quantity:g} {unit}{'s' if plural else ''}"


class _Doc(FPDF):
    """A4 landscape document with a page footer."""

    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.footer_text = footer_text
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=MARGIN + 4)

    def footer(self) -> None:
        """Plan name and page number on every page."""
        self.set_y(-MARGIN - 2)
        self.set_font(FONT, "", 9)
        self.cell(0, 5, latin1(f"{self.footer_text} - page {self.page_no()}"), align="C")

    def write_line(self, text: str, size: float = 11, style: str = "", h: float = 6) -> None:
        """A full-width paragraph, wrapped."""
        self.set_font(FONT, style, size)
        self.multi_cell(0, h, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def wrap(self, width: float, text: str) -> list[str]:
        """The lines `text` wraps to in `width` with the current font."""
        lines = self.multi_cell(width, LINE_H, latin1(text), dry_run=True, output=MethodReturnValue.LINES)
        return list(lines) if isinstance(lines, list) else [latin1(text)]


def _keep(text: str) -> str:
    """Latin-1 text whose words never wrap apart ('1 1/2 x 2 mg tab' must not become '1' + '1/2 x ...')."""
    return latin1(text).replace(" ", NBSP)


def _dose_lines(step: Step, verbose: bool) -> list[str]:
    """'08:00 diazepam 5 mg: 1 x 5 mg tab' per dose (or without the tablets when not `verbose`)."""
    out = []
    for at, doses in by_time(step):
        for d in doses:
            head = f"{at:%H:%M} {d.drug} {_keep(mg_text(d.mg))}"
            take = " + ".join(_keep(short_portion(p)) for p in d.portions)
            out.append(f"{head}: {take}" if verbose and take else head)
    return out


def _summary(pdf: _Doc, plan: Plan, patient_name: str | None, crisis_text: str | None) -> None:
    """First page: who, what, when, the crisis line, the table of steps and the warnings."""
    pdf.add_page()
    title = "Benzodiazepine taper plan" + (f" for {patient_name}" if patient_name else "")
    pdf.write_line(title, 18, "B", 9)
    last = plan.end_date - timedelta(days=1)
    for label, value in (
        ("Current medicine", plan.regimen),
        ("Plan", plan.strategy_name),
        ("Dose equivalence table", plan.table),
        ("Start", _day(plan.start)),
        ("Last dose", _day(last) if last >= plan.start else "-"),
        ("Drug-free from", f"{_day(plan.end_date)} ({(plan.end_date - plan.start).days / 7:.1f} weeks)"),
    ):
        pdf.write_line(f"{label}: {value}", 11, "", 5.5)
    pdf.ln(2)
    pdf.set_draw_color(200, 0, 0)
    pdf.set_font(FONT, "B", 12)
    pdf.multi_cell(0, 6.5, latin1(crisis_text or CRISIS), border=1, padding=2, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_draw_color(0, 0, 0)
    pdf.ln(3)
    _steps_table(pdf, plan)
    if plan.warnings:
        pdf.ln(3)
        pdf.write_line("Warnings", 12, "B")
        for w in plan.warnings:
            pdf.write_line(f"- {w}", 10, "", 5)


def _steps_table(pdf: _Doc, plan: Plan) -> None:
    """One row per step: dates, doses per time with tablets, and the daily total."""
    pdf.set_font(FONT, "", 10)
    with pdf.table(col_widths=(12, 26, 50, 12, 107, 70), line_height=5, text_align="LEFT") as table:
        header = table.row()
        for text in ("Step", "Phase", "Dates", "Days", "Doses each day", "Daily total"):
            header.cell(text)
        for step in plan.steps:
            dates = _span(step.start, step.end) if step.doses else f"from {_day(step.start)}"
            row = table.row()
            for text in (
                str(step.index),
                step.phase,
                dates,
                str(step.days) if step.doses else "-",
                "\n".join(_dose_lines(step, True)) or "no more doses",
                daily_total(step),
            ):
                row.cell(latin1(text))


def _cell_content(plan: Plan, day: date) -> tuple[str, tuple[int, int, int] | None, list[list[str]]]:
    """Marker, fill colour and wording options (most to least detailed) for one calendar day."""
    if day < plan.start:
        return "", None, [[]]
    if day >= plan.end_date:
        return ("FINISHED" if day == plan.end_date else ""), DRUG_FREE_FILL, [["drug-free"]]
    step = plan.step_on(day)
    new = day == step.start
    return (
        (f"NEW STEP {step.index}" if new else ""),
        (NEW_STEP_FILL if new else None),
        [_dose_lines(step, True), _dose_lines(step, False), _time_lines(step)],
    )


def _time_lines(step: Step) -> list[str]:
    """Most compact wording: one entry per clock time, '08:00 diazepam 5 mg, alprazolam 0.25 mg'."""
    return [
        f"{at:%H:%M} " + ", ".join(f"{d.drug} {_keep(mg_text(d.mg))}" for d in doses) for at, doses in by_time(step)
    ]


def _fit(pdf: _Doc, width: float, options: list[list[str]], room: int) -> list[str]:
    """Wrapped lines of the first wording that fits in `room` lines, else the shortest one cut off."""
    fits = [[line for text in option for line in pdf.wrap(width, text)] for option in options]
    for wrapped in fits:
        if len(wrapped) <= room:
            return wrapped
    shortest = min(fits, key=len)
    return [*shortest[: room - 1], "... see page 1"]


def _day_cell(pdf: _Doc, plan: Plan, day: date, month: int, box: tuple[float, float, float, float]) -> None:
    """Draw one day: number, marker, shading and the doses."""
    x, y, w, h = box
    if day.month != month:
        pdf.set_fill_color(*OUTSIDE_FILL)
        pdf.rect(x, y, w, h, style="DF")
        return
    mark, fill, options = _cell_content(plan, day)
    if fill:
        pdf.set_fill_color(*fill)
    pdf.rect(x, y, w, h, style="DF" if fill else "D")
    pdf.set_xy(x, y + 0.3)
    pdf.set_font(FONT, "B", 11)
    pdf.cell(w, HEAD_H, str(day.day))
    if mark:
        pdf.set_xy(x, y + 0.3)
        pdf.set_font(FONT, "B", 10)
        pdf.cell(w, HEAD_H, mark, align="R")
    pdf.set_font(FONT, "", CELL_PT)
    room = int((h - HEAD_H - 0.6) // LINE_H)
    for i, line in enumerate(_fit(pdf, w, options, room)):
        pdf.set_xy(x, y + 0.3 + HEAD_H + i * LINE_H)
        pdf.cell(w, LINE_H, line.replace(NBSP, " "))


def _row_heights(plan: Plan, weeks: list[list[date]], month: int, total: float) -> list[float]:
    """Short rows for weeks without doses (before the start, drug-free, other months); the rest share the page."""
    busy = [any(d.month == month and plan.start <= d < plan.end_date for d in week) for week in weeks]
    if not any(busy) or all(busy):
        return [total / len(weeks)] * len(weeks)
    share = (total - COMPACT_H * busy.count(False)) / busy.count(True)
    return [share if b else COMPACT_H for b in busy]


def _month_page(pdf: _Doc, plan: Plan, year: int, month: int) -> None:
    """One month as a Mon-Sun grid filling a landscape page."""
    pdf.add_page()
    pdf.set_auto_page_break(False)
    saved, pdf.c_margin = pdf.c_margin, 0.6
    pdf.set_font(FONT, "", 9)
    pdf.cell(0, 10, LEGEND, align="R")
    pdf.set_x(MARGIN)
    pdf.set_font(FONT, "B", 18)
    pdf.cell(0, 10, f"{cal.month_name[month]} {year}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    weeks = cal.Calendar(firstweekday=0).monthdatescalendar(year, month)
    w = (pdf.w - 2 * MARGIN) / 7
    pdf.set_font(FONT, "B", 11)
    for i, name in enumerate(cal.day_name):
        pdf.set_xy(MARGIN + i * w, pdf.t_margin + 10)
        pdf.cell(w, 6, name, align="C")
    y = pdf.t_margin + 16
    for week, h in zip(weeks, _row_heights(plan, weeks, month, pdf.h - y - MARGIN - 4), strict=True):
        for c, day in enumerate(week):
            _day_cell(pdf, plan, day, month, (MARGIN + c * w, y, w, h))
        y += h
    pdf.c_margin = saved
    pdf.set_auto_page_break(True, margin=MARGIN + 4)


def _months(plan: Plan) -> list[tuple[int, int]]:
    """(year, month) from the start's month to the end date's month inclusive."""
    out = []
    y, m = plan.start.year, plan.start.month
    while (y, m) <= (plan.end_date.year, plan.end_date.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _dispensing_page(pdf: _Doc, plan: Plan, period_days: int = 28) -> None:
    """Last page: tablets or mL of each product per 4-week period."""
    pdf.add_page()
    pdf.write_line("Dispensing totals for the pharmacy (4-week periods)", 16, "B", 9)
    pdf.write_line(f"Medicine: {plan.regimen}. Plan: {plan.strategy_name}.", 11)
    pdf.ln(2)
    pdf.set_font(FONT, "", 10)
    with pdf.table(col_widths=(16, 60, 111, 45, 45), line_height=5.5, text_align="LEFT") as table:
        header = table.row()
        for text in ("Period", "Dates", "Product", "Total needed", "Dispense"):
            header.cell(text)
        for s in supplies(plan, period_days):
            row = table.row()
            for text in (
                str(s.period),
                _span(s.start, s.end),
                s.product,
                _amount(s.quantity, s.unit),
                _amount(s.whole, s.unit),
            ):
                row.cell(latin1(text))


def write_pdf(plan: Plan, path: Path, patient_name: str | None = None, crisis_text: str | None = None) -> Path:
    """Write the patient calendar PDF (summary, one page per month, dispensing totals) and return the path."""
    pdf = _Doc(f"Taper plan: {plan.regimen}" + (f" - {patient_name}" if patient_name else ""))
    pdf.set_title(latin1("Taper plan"))
    _summary(pdf, plan, patient_name, crisis_text)
    for year, month in _months(plan):
        _month_page(pdf, plan, year, month)
    _dispensing_page(pdf, plan)
    pdf.output(str(path))
    return path
