"""Taper plan as CSV: one row per step and dose (for spreadsheets), and dispensing totals (for the pharmacy)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from benzotaper.report.plan_common import DRUG_FREE, supplies, take_text
from benzotaper.taper.plan import Plan, Step

COLUMNS = (
    "step",
    "phase",
    "start",
    "end",
    "days",
    "time",
    "drug",
    "mg",
    "take",
    "daily_diazepam_equivalent_mg",
    "rule",
    "warnings",
)
DISPENSING_COLUMNS = ("period", "start", "end", "product", "quantity", "unit", "dispense")


def _step_rows(step: Step) -> Iterator[dict[str, object]]:
    """Rows of one step: one per dose, or a single 'no more doses' row for the drug-free step."""
    common: dict[str, object] = {
        "step": step.index,
        "phase": step.phase,
        "start": step.start.isoformat(),
        "end": step.end.isoformat(),
        "days": step.days,
        "daily_diazepam_equivalent_mg": round(step.diazepam_equivalent_mg, 4),
        "rule": step.rule,
        "warnings": "; ".join(step.warnings),
    }
    if not step.doses:
        yield {**common, "time": "", "drug": "", "mg": 0, "take": DRUG_FREE}
    for dose in sorted(step.doses, key=lambda d: (d.time, d.drug)):
        yield {
            **common,
            "time": dose.time.strftime("%H:%M"),
            "drug": dose.drug,
            "mg": round(dose.mg, 4),
            "take": take_text(dose),
        }


def write_csv(plan: Plan, path: Path) -> Path:
    """Write one row per step x dose (columns `COLUMNS`) and return the path."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for step in plan.steps:
            writer.writerows(_step_rows(step))
    return path


def dispensing_csv(plan: Plan, path: Path, period_days: int = 28) -> Path:
    """Write one row per period x product with the tablets or mL needed (and whole units to dispense)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(DISPENSING_COLUMNS)
        for s in supplies(plan, period_days):
            writer.writerow(
                [s.period, s.start.isoformat(), s.end.isoformat(), s.product, f"{s.quantity:g}", s.unit, s.whole]
            )
    return path
