"""Side by side: what a fixed schedule and the guided plan give a fast, this, and a slow eliminator.

Each scenario is a plan run through one individual's model: its daily trough levels (from the plan's
start to four weeks after its end), the largest fall in any 7 days, how many weeks fall faster than
the target allows, and when the plan ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from benzotaper.pk import ParameterSet
from benzotaper.taper.plan import Plan
from benzotaper.tdm.fit import FreeParameter, parameters_for
from benzotaper.tdm.guided import Guide, Trajectory

FloatArray = NDArray[np.float64]
CENTILE_Z = 1.2816  # standard normal 90th centile: the fast/slow representatives
TAIL_DAYS = 28


@dataclass(frozen=True)
class Scenario:
    """One plan in one patient."""

    plan: str
    patient: str
    end_date: str
    steps: int
    start_level: float
    max_weekly_fall: float
    weeks_over_target: int
    level_at_stop: float
    start_date: str = ""  # ISO date of the plan's first day: day 0 of daily_troughs
    daily_troughs: tuple[float, ...] = field(default=(), repr=False)  # trough_series, one a day

    def to_dict(self) -> dict[str, object]:
        """JSON form."""
        return {
            "plan": self.plan,
            "patient": self.patient,
            "end_date": self.end_date,
            "steps": self.steps,
            "start_trough_ng_ml": self.start_level,
            "max_weekly_fall": self.max_weekly_fall,
            "weeks_over_target": self.weeks_over_target,
            "trough_at_stop_ng_ml": self.level_at_stop,
            "start_date": self.start_date,
            "daily_trough_ng_ml": [round(v, 2) for v in self.daily_troughs],
        }


def representatives(guide: Guide, free: tuple[FreeParameter, ...]) -> dict[str, ParameterSet]:
    """A fast (every clearance at the population's 90th centile) and a slow (10th) eliminator."""
    up = np.array([CENTILE_Z * f.omega if f.kind == "cl" else 0.0 for f in free])
    return {
        name: parameters_for(guide.patient.model, free, eta[None, :]) for name, eta in (("fast", up), ("slow", -up))
    }


def trough_series(guide: Guide, plan: Plan) -> FloatArray:
    """Daily diazepam-equivalent level at the sampling clock time, to four weeks after the plan ends."""
    n = (plan.end_date - plan.start).days + TAIL_DAYS
    return guide.troughs(guide.events(plan.steps), plan.start, n, guide.clock)


def scenario(guide: Guide, plan: Plan, label: str, who: str, traj: Trajectory) -> Scenario:
    """Metrics of one plan in one patient (guide.params)."""
    levels = trough_series(guide, plan)
    start = float(levels[0]) if len(levels) else 0.0
    dosed = (plan.end_date - plan.start).days
    weekly = 1 - levels[7 : dosed + 1] / np.maximum(levels[: dosed + 1 - 7], 1e-12)
    limit = np.array([traj.weekly(v, start) for v in levels[: dosed + 1 - 7]]) * traj.tolerance
    over = weekly > limit + 1e-9
    weeks_over = len({d // 7 for d in np.flatnonzero(over)})
    stop = float(levels[min(dosed, len(levels) - 1)]) if len(levels) else 0.0
    return Scenario(
        label,
        who,
        str(plan.end_date),
        len(plan.steps),
        start,
        float(weekly.max()) if len(weekly) else 0.0,
        weeks_over,
        stop,
        plan.start.isoformat(),
        tuple(float(v) for v in levels),
    )
