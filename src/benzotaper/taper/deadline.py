"""Fit a plan to a target end date: the gentlest pace within the guideline limits that ends by it.

Two knobs, searched in order of gentleness: longer intervals between steps (up to the preset's
published range, at most 4 weeks), then the size of each cut (a pace factor, smaller = gentler).
If even the fastest pace the safety limits allow ends too late, say so with that earliest date.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date

from benzotaper.errors import PlanError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.taper_rules import days
from benzotaper.regimen import Regimen
from benzotaper.taper.plan import Plan

MAX_INTERVAL_DAYS = 28
MIN_PACE, MAX_PACE = 0.1, 10.0
BISECTIONS = 14


def fit_end_date(knowledge: Knowledge, regimens: Sequence[Regimen], options: object, sig: str) -> Plan:
    """The gentlest plan that ends on or before `options.end_by`."""
    from benzotaper.taper.planner import PlanOptions, _build, preset_of

    assert isinstance(options, PlanOptions) and options.end_by is not None
    deadline = options.end_by
    preset = preset_of(knowledge, options.strategy)
    base = replace(options, end_by=None)

    def build(interval: int, pace: float) -> Plan:
        return _build(knowledge, regimens, replace(base, interval_days=interval, pace=pace), sig)

    interval0 = options.interval_days or days(preset.interval)
    hi_interval = max(
        interval0,
        min(
            MAX_INTERVAL_DAYS,
            days(preset.interval) if preset.interval.range is None else round(preset.interval.range[1] / 24),
        ),
    )
    plan = build(interval0, options.pace)
    if plan.end_date <= deadline:
        lo, hi = interval0, hi_interval  # stretch the interval while it still fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if build(mid, options.pace).end_date <= deadline:
                lo = mid
            else:
                hi = mid - 1
        return _note(_slowest_pace(build, lo, MIN_PACE, options.pace, deadline), deadline)
    fastest = build(interval0, MAX_PACE)
    if fastest.end_date > deadline:
        raise PlanError(
            f"no {preset.name} schedule within the guideline limits ends by {deadline.isoformat()}: the fastest "
            f"allowed ({knowledge.taper.limits.max_reduction_fraction.value:.0%} in 2 weeks) ends on "
            f"{fastest.end_date.isoformat()}. Choose a later date, or record a clinician override with a reason"
        )
    return _note(_slowest_pace(build, interval0, options.pace, MAX_PACE, deadline), deadline)


def _slowest_pace(build: Callable[[int, float], Plan], interval: int, lo: float, hi: float, deadline: date) -> Plan:
    """Bisect the pace factor for the smallest one (gentlest) whose plan ends by the deadline."""
    best = build(interval, hi)
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        plan = build(interval, mid)
        if plan.end_date <= deadline:
            hi, best = mid, plan
        else:
            lo = mid
    return best


def _note(plan: Plan, deadline: date) -> Plan:
    p = plan.parameters
    message = f"fitted to end by {deadline}: a step every {p['interval_days']} days, pace x{float(str(p['pace'])):.2f}"
    return replace(plan, warnings=(*plan.warnings, message))
