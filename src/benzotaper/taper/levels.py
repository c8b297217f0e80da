"""Predicted levels across a plan: dose events from the steps, run through the PK engine.

The chart shows the diazepam-equivalent level and receptor occupancy over the whole plan, so a
dip at the crossover of a substitution is visible before the patient lives through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

import numpy as np

from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.taper_rules import HOURS_PER_DAY
from benzotaper.pk import Curves, Simulator, TimeGrid
from benzotaper.regimen import DoseEvents
from benzotaper.taper.plan import Plan

TAIL_DAYS = 14  # keep simulating two weeks after the last dose to show the fall to zero


@dataclass(frozen=True)
class StepLevels:
    """Per step: lowest diazepam-equivalent level and occupancy in its last day (the settled state)."""

    index: int
    trough_ng_ml: float
    mean_ng_ml: float
    occupancy: float


def plan_events(plan: Plan) -> DoseEvents:
    """Every dose of the plan as NONMEM-style events, hours from midnight of the start date."""
    origin = datetime.combine(plan.start, time())
    times: list[float] = []
    amts: list[float] = []
    drugs: list[str] = []
    for step in plan.steps:
        offset = (step.start - plan.start).days * HOURS_PER_DAY
        for day in range(step.days if step.doses else 0):
            for dose in step.doses:
                times.append(offset + day * HOURS_PER_DAY + dose.time.hour + dose.time.minute / 60)
                amts.append(dose.mg)
                drugs.append(dose.drug)
    order = np.argsort(times, kind="stable")
    return DoseEvents(origin, np.asarray(times)[order], np.asarray(amts)[order], tuple(drugs[i] for i in order))


def plan_curves(knowledge: Knowledge, plan: Plan, step_h: float = 1.0) -> Curves:
    """Typical-patient curves over the plan and two weeks beyond (hourly by default)."""
    events = plan_events(plan)
    days_total = (plan.end_date - plan.start).days + TAIL_DAYS
    sim = Simulator.for_drugs(knowledge, events.drugs)
    return sim.run(events, TimeGrid(0.0, step_h, int(days_total * HOURS_PER_DAY / step_h) + 1))


def step_level_rows(plan: Plan, curves: Curves) -> list[dict[str, float | int]]:
    """`step_levels` as the JSON rows the CLI and the app print: trough and mean in ng/mL, occupancy."""
    return [
        {
            "step": s.index,
            "trough_ng_ml": round(s.trough_ng_ml, 1),
            "mean_ng_ml": round(s.mean_ng_ml, 1),
            "occupancy": round(s.occupancy, 4),
        }
        for s in step_levels(plan, curves)
    ]


def step_levels(plan: Plan, curves: Curves) -> list[StepLevels]:
    """Settled level and occupancy at the end of each dosed step (its last 24 h)."""
    out = []
    t = curves.times_h
    for step in plan.steps:
        if not step.doses:
            continue
        end_h = ((step.end - plan.start).days + 1) * HOURS_PER_DAY
        mask = (t >= end_h - HOURS_PER_DAY) & (t < end_h)
        if not mask.any():
            continue
        deq = curves.deq[0, mask]
        out.append(StepLevels(step.index, float(deq.min()), float(deq.mean()), float(curves.occupancy[0, mask].mean())))
    return out
