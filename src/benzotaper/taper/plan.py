"""The plan a clinician approves: dated steps of doses made of real products, each with its reason.

Values, not mutation: planners return new Plan objects. `Plan.to_dict()` is the JSON shape the CLI
prints and other programs read (`phases`, `steps`, `end_date`, `warnings`, ...).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any

PHASES = ("substitution", "reduction", "hold", "stop")


@dataclass(frozen=True, slots=True)
class Portion:
    """Part of one dose: `count` tablets/capsules of a solid, or `ml` of a liquid."""

    drug: str
    form: str
    strength: float
    unit: str  # "mg" for solids, "mg/mL" for liquids
    count: float = 0.0
    ml: float = 0.0

    @property
    def mg(self) -> float:
        """mg of drug this portion delivers."""
        return self.strength * (self.ml if self.unit == "mg/mL" else self.count)

    @property
    def product(self) -> str:
        """Human name of the product, e.g. 'diazepam 2 mg tablet'."""
        form = self.form.replace("_", " ")
        return f"{self.drug} {self.strength:g} {self.unit} {form}"

    def label(self) -> str:
        """What the patient takes: '1½ x diazepam 2 mg tablet' or '2.5 mL diazepam 0.4 mg/mL oral solution'."""
        if self.unit == "mg/mL":
            return f"{self.ml:g} mL {self.product}"
        return f"{count_text(self.count)} x {self.product}"


def count_text(count: float) -> str:
    """0.5 -> '½', 1.5 -> '1½', 0.25 -> '¼', 2 -> '2'."""
    whole = int(count)
    frac = {0.0: "", 0.25: "¼", 0.5: "½", 0.75: "¾"}.get(round(count - whole, 2), f"{count - whole:g}")
    return f"{whole if whole or not frac else ''}{frac}" or "0"


@dataclass(frozen=True, slots=True)
class Dose:
    """One drug at one clock time, with the products that make it."""

    drug: str
    time: time
    mg: float
    portions: tuple[Portion, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """Doses taken every day from `start` for `days` days, and why."""

    index: int
    phase: str
    start: date
    days: int
    doses: tuple[Dose, ...]
    diazepam_equivalent_mg: float
    rule: str
    sources: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    override: str | None = None

    @property
    def end(self) -> date:
        """Last day of the step (inclusive)."""
        return self.start + timedelta(days=self.days - 1)

    @property
    def daily_mg(self) -> dict[str, float]:
        """mg per day of each drug."""
        out: dict[str, float] = defaultdict(float)
        for d in self.doses:
            out[d.drug] += d.mg
        return {k: round(v, 6) for k, v in out.items()}

    def units_per_day(self) -> dict[str, float]:
        """Tablets (count) or mL of each product per day."""
        out: dict[str, float] = defaultdict(float)
        for d in self.doses:
            for p in d.portions:
                out[p.product] += p.ml if p.unit == "mg/mL" else p.count
        return dict(out)


@dataclass(frozen=True, slots=True)
class Phase:
    """A named stretch of the plan (substitution, reduction)."""

    name: str
    start: date
    end: date
    description: str


@dataclass(frozen=True, slots=True)
class Event:
    """What happened during a taper: a hold, a step back, or a withdrawal score."""

    day: date
    kind: str  # "hold", "return", "score"
    days: int = 0
    instrument: str = ""
    score: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class Plan:
    """A complete taper plan; the last step has no doses (drug-free from its start)."""

    regimen: str
    strategy: str
    strategy_name: str
    table: str
    start: date
    steps: tuple[Step, ...]
    phases: tuple[Phase, ...]
    warnings: tuple[str, ...]
    target: str | None
    tolerance: float
    sources: tuple[str, ...]
    overrides: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def end_date(self) -> date:
        """First drug-free day."""
        return self.steps[-1].start

    def step_on(self, day: date) -> Step:
        """The step in force on `day` (the final drug-free step after the end)."""
        current = self.steps[0]
        for step in self.steps:
            if step.start > day:
                break
            current = step
        return current

    def dispensing(self, start: date, end: date) -> dict[str, float]:
        """Tablets or mL of each product needed from `start` to `end` inclusive (for the pharmacy)."""
        totals: dict[str, float] = defaultdict(float)
        for step in self.steps:
            lo, hi = max(step.start, start), min(step.end, end)
            n = (hi - lo).days + 1
            if n <= 0:
                continue
            for product, per_day in step.units_per_day().items():
                totals[product] += per_day * n
        return {k: round(v, 4) for k, v in sorted(totals.items())}

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the CLI and API."""
        return {
            "regimen": self.regimen,
            "strategy": self.strategy,
            "strategy_name": self.strategy_name,
            "equivalence_table": self.table,
            "target_drug": self.target,
            "start": self.start.isoformat(),
            "end_date": self.end_date.isoformat(),
            "weeks": round((self.end_date - self.start).days / 7, 1),
            "substitution_tolerance": self.tolerance,
            "parameters": self.parameters,
            "phases": [
                {"name": p.name, "start": p.start.isoformat(), "end": p.end.isoformat(), "description": p.description}
                for p in self.phases
            ],
            "steps": [_step_dict(s) for s in self.steps],
            "warnings": list(self.warnings),
            "overrides": list(self.overrides),
            "events": [
                {
                    "date": e.day.isoformat(),
                    "kind": e.kind,
                    "days": e.days,
                    "instrument": e.instrument,
                    "score": e.score,
                    "note": e.note,
                }
                for e in self.events
            ],
            "sources": list(self.sources),
        }


def _step_dict(s: Step) -> dict[str, Any]:
    return {
        "index": s.index,
        "phase": s.phase,
        "start": s.start.isoformat(),
        "end": s.end.isoformat(),
        "days": s.days,
        "doses": [
            {
                "drug": d.drug,
                "time": d.time.strftime("%H:%M"),
                "mg": round(d.mg, 4),
                "take": [p.label() for p in d.portions],
                "portions": [
                    {
                        "product": p.product,
                        "form": p.form,
                        "strength": p.strength,
                        "unit": p.unit,
                        "count": p.count,
                        "ml": p.ml,
                    }
                    for p in d.portions
                ],
            }
            for d in s.doses
        ],
        "daily_mg": s.daily_mg,
        "diazepam_equivalent_mg": round(s.diazepam_equivalent_mg, 3),
        "rule": s.rule,
        "sources": list(s.sources),
        "warnings": list(s.warnings),
        "override": s.override,
    }
