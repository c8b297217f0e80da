"""Wording and groupings shared by the plan writers (CSV, calendar, PDF, charts), so they all say the same thing."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, time, timedelta

from benzotaper.taper.plan import Dose, Plan, Portion, Step, count_text

DRUG_FREE = "no more doses"


@dataclass(frozen=True, slots=True)
class Supply:
    """Quantity of one product for one dispensing period: `quantity` tablets/capsules or mL."""

    period: int
    start: date
    end: date
    product: str
    unit: str
    quantity: float

    @property
    def whole(self) -> int:
        """Whole tablets (or mL) to dispense: split tablets are kept for the next dose."""
        return math.ceil(round(self.quantity, 6))


def mg_text(mg: float) -> str:
    """5.0 -> '5 mg', 0.625 -> '0.625 mg'."""
    return f"{round(mg, 4):g} mg"


def take_text(dose: Dose) -> str:
    """All portions of a dose, e.g. '1½ x diazepam 2 mg tablet; 2.5 mL diazepam 0.4 mg/mL oral solution'."""
    return "; ".join(p.label() for p in dose.portions)


def short_portion(portion: Portion) -> str:
    """Compact product text for calendar cells: '1½ x 2 mg tab' or '2.5 mL of 0.4 mg/mL'."""
    if portion.unit == "mg/mL":
        return f"{portion.ml:g} mL of {portion.strength:g} mg/mL"
    form = {"tablet": "tab", "capsule": "cap"}.get(portion.form, portion.form.replace("_", " "))
    return f"{count_text(portion.count)} x {portion.strength:g} {portion.unit} {form}"


def drugs(plan: Plan) -> list[str]:
    """Every drug in the plan, in order of first appearance."""
    seen: dict[str, None] = {}
    for step in plan.steps:
        for dose in step.doses:
            seen.setdefault(dose.drug, None)
    return list(seen)


def by_time(step: Step) -> list[tuple[time, list[Dose]]]:
    """The step's doses grouped by clock time, earliest first."""
    groups: dict[time, list[Dose]] = defaultdict(list)
    for dose in step.doses:
        groups[dose.time].append(dose)
    return sorted(groups.items())


def daily_total(step: Step) -> str:
    """'diazepam 10 mg/day' or 'diazepam 5 mg + lorazepam 1 mg per day (15 mg diazepam-equivalent)'."""
    if not step.doses:
        return "drug-free"
    daily = step.daily_mg
    if len(daily) == 1:
        ((drug, mg),) = daily.items()
        return f"{drug} {mg_text(mg)}/day"
    parts = " + ".join(f"{drug} {mg_text(mg)}" for drug, mg in daily.items())
    return f"{parts} per day ({mg_text(step.diazepam_equivalent_mg)} diazepam-equivalent)"


def product_units(plan: Plan) -> dict[str, str]:
    """Unit each product is counted in: 'mL' for liquids, else the form ('tablet', 'capsule')."""
    return {
        p.product: "mL" if p.unit == "mg/mL" else p.form.replace("_", " ")
        for step in plan.steps
        for dose in step.doses
        for p in dose.portions
    }


def periods(plan: Plan, period_days: int = 28) -> list[tuple[int, date, date]]:
    """Consecutive periods (number from 1, first day, last day) covering every day with doses."""
    if period_days < 1:
        raise ValueError("period_days must be at least 1")
    last = plan.end_date - timedelta(days=1)
    out: list[tuple[int, date, date]] = []
    start = plan.start
    while start <= last:
        end = min(start + timedelta(days=period_days - 1), last)
        out.append((len(out) + 1, start, end))
        start = end + timedelta(days=1)
    return out


def supplies(plan: Plan, period_days: int = 28) -> list[Supply]:
    """Tablets or mL of each product per dispensing period, from `Plan.dispensing`."""
    units = product_units(plan)
    return [
        Supply(n, lo, hi, product, units.get(product, ""), qty)
        for n, lo, hi in periods(plan, period_days)
        for product, qty in plan.dispensing(lo, hi).items()
        if qty > 0
    ]
