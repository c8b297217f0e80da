"""One call from a sig to a sourced, explained simulation summary (used by the CLI and later the web)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from benzotaper.knowledge import Knowledge
from benzotaper.pk import (
    AnalyteSummary,
    Curves,
    DaySummary,
    Simulator,
    TimeGrid,
    analyte_summaries,
    day_summaries,
    time_to_steady_state,
)
from benzotaper.regimen import DoseEvents, Regimen, expand, parse_regimens


@dataclass(frozen=True)
class SimulationReport:
    """What `benzotaper simulate` shows: curves, per-analyte and per-day metrics, caveats."""

    regimens: tuple[Regimen, ...]
    events: DoseEvents
    curves: Curves
    analytes: dict[str, AnalyteSummary]
    days: tuple[DaySummary, ...]
    interdose_withdrawal: bool
    threshold: float
    time_to_steady_state_h: float | None
    assumptions: tuple[str, ...]
    simulator: Simulator


def simulate_sig(
    knowledge: Knowledge, sig: str, days: int, start: date, step_h: float = 0.25, threshold: float | None = None
) -> SimulationReport:
    """Parse, expand and simulate a regimen for `days` days from `start` (typical patient)."""
    if not 1 <= days <= 3660:
        raise ValueError(f"days must be between 1 and 3660 (got {days})")
    if threshold is not None and not 0 < threshold < 1:
        raise ValueError(f"threshold must be a fraction between 0 and 1 (got {threshold})")
    regimens = tuple(parse_regimens(sig, knowledge, start=start))
    origin = datetime.combine(start, datetime.min.time())
    events = expand(regimens, origin, origin + timedelta(days=days))
    sim = Simulator.for_drugs(knowledge, events.drugs)
    grid = TimeGrid(0.0, step_h, round(days * 24 / step_h))
    curves = sim.run(events, grid)
    limit = threshold if threshold is not None else knowledge.policy.interdose_trough_fraction.value
    day_rows = tuple(day_summaries(sim, events, curves, limit))
    fraction = knowledge.policy.steady_state_fraction.value
    notes = [
        *sim.model.assumptions,
        *(
            f"{a}: diazepam-equivalent weight {p.value:.3g} ({p.basis})"
            for a, p in zip(curves.analytes, curves.potencies, strict=True)
        ),
    ]
    return SimulationReport(
        regimens,
        events,
        curves,
        analyte_summaries(sim, curves, events),
        day_rows,
        any(d.interdose_withdrawal for d in day_rows),
        limit,
        time_to_steady_state(sim, events, fraction),
        tuple(notes),
        sim,
    )
