"""A day's doses while planning (clock time -> drug -> mg) and the settings every planning step shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time

from benzotaper.errors import PlanError
from benzotaper.knowledge import Knowledge
from benzotaper.taper.factors import Factors
from benzotaper.taper.plan import Dose
from benzotaper.taper.products import Stock

Slots = dict[time, dict[str, float]]
EPS = 1e-6


@dataclass
class Context:
    """Shared planning inputs: knowledge, conversion factors, products, limits and options."""

    knowledge: Knowledge
    fx: Factors
    stocks: dict[str, Stock]
    target: str | None
    max_fraction: float
    window_days: int
    stop_from_deq: float
    rounding_tolerance: float
    consolidate_below: float = 0.0
    allow_switch: bool = True
    override: str | None = None
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        """Add a plan-level warning once."""
        if message not in self.warnings:
            self.warnings.append(message)


def copy(slots: Slots) -> Slots:
    """A deep copy (plans are built from values, never edited in place)."""
    return {t: dict(d) for t, d in slots.items()}


def clean(slots: Slots) -> Slots:
    """Drop zero doses and empty times."""
    out = {t: {k: v for k, v in d.items() if v > EPS} for t, d in slots.items()}
    return {t: d for t, d in sorted(out.items()) if d}


def deq(slots: Slots, fx: Factors) -> float:
    """Daily diazepam-equivalent mg."""
    return sum(fx.of(drug, mg) for d in slots.values() for drug, mg in d.items())


def drug_mg(slots: Slots, drug: str) -> float:
    """Daily mg of one drug."""
    return sum(d.get(drug, 0.0) for d in slots.values())


def drugs_in(slots: Slots) -> list[str]:
    """Drugs present, in order of first appearance."""
    return list(dict.fromkeys(drug for d in slots.values() for drug in d))


def to_doses(slots: Slots, stocks: dict[str, Stock]) -> tuple[Dose, ...]:
    """Doses with the products that make them; a dose no product can make is a planning bug."""
    out = []
    for t, d in sorted(clean(slots).items()):
        for drug, mg in d.items():
            portions = stocks[drug].make(mg)
            if portions is None:
                raise PlanError(f"{drug} {mg:g} mg at {t:%H:%M} cannot be made from the available products")
            out.append(Dose(drug, t, round(mg, 6), portions))
    return tuple(out)
