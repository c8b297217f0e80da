"""The step loop: reduction steps under the safety limits until the stop dose, then the stop step.

Shared by the planner and by re-planning after holds, so both apply the same rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from benzotaper.errors import PlanError
from benzotaper.knowledge.taper_rules import Preset, days
from benzotaper.taper.plan import Step
from benzotaper.taper.reduction import reduce_once
from benzotaper.taper.state import EPS, Context, Slots, deq, drugs_in, to_doses
from benzotaper.taper.strategies import Reducer
from benzotaper.taper.substitution import substitute

MAX_STEPS = 2000


@dataclass
class History:
    """Steps made so far (for the 2-week limit) and the next start date."""

    steps: list[Step]
    next_start: date

    def max_deq_since(self, day: date) -> float:
        """Highest daily diazepam-equivalent dose on any day from `day` up to the next start."""
        return max((s.diazepam_equivalent_mg for s in self.steps if s.end >= day), default=0.0)


def main_drug(ctx: Context, slots: Slots) -> str:
    """The drug reduced last: the substitute if any, else the largest by diazepam-equivalent."""
    if ctx.target is not None:
        return ctx.target
    return max(drugs_in(slots), key=lambda d: ctx.fx.of(d, sum(s.get(d, 0.0) for s in slots.values())))


def stop_deq(ctx: Context, main: str, preset_stop: float | None) -> float:
    """Daily diazepam-equivalent dose from which the last step goes to zero."""
    smallest = ctx.fx.of(main, ctx.stocks[main].smallest_mg)
    return max(preset_stop if preset_stop is not None else ctx.stop_from_deq, smallest)


def reduce_to_stop(
    ctx: Context, reducer: Reducer, slots: Slots, history: History, interval: int, target: str | None, slow: float = 1.0
) -> Slots:
    """Reduction steps until the day's dose is at the stop dose; returns the last day's doses."""
    main = main_drug(ctx, slots)
    stop = stop_deq(ctx, main, preset_stop(reducer.preset))
    first = deq(slots, ctx.fx)
    for _ in range(MAX_STEPS):
        current = deq(slots, ctx.fx)
        if current <= stop + EPS:
            return slots
        proposal = reducer.propose(current, first, slow)
        lim = apply_limits(ctx, history, current, proposal.deq, proposal.rule, stop)
        goal, rule, override = lim.goal, lim.rule, lim.override
        sources = (*proposal.sources, "jcpg2025") if lim.limited else proposal.sources
        cut = reduce_once(ctx, slots, goal, lim.floor, main)
        if cut is None and current <= stop * (1 + ctx.max_fraction):
            return slots  # no practicable dose between the stop dose and today's: stop from here
        if cut is None:
            slots, main, stop = _switch_when_stuck(ctx, reducer, slots, history, current)
            continue
        step_days = interval
        append_step(ctx, history, "reduction", cut.slots, step_days, "; ".join([rule, *cut.notes]), sources, override)
        slots = cut.slots
    raise PlanError(f"the plan did not reach zero within {MAX_STEPS} steps; choose a faster strategy")


@dataclass(frozen=True, slots=True)
class Limited:
    """A proposed daily dose after the safety limits: the goal, the floor no cut may pass, and why."""

    goal: float
    floor: float
    rule: str
    override: str | None
    limited: bool


def apply_limits(ctx: Context, history: History, current: float, goal: float, rule: str, stop: float) -> Limited:
    """The 25%-in-14-days limit (unless a clinician overrides it) and the stop dose, applied to a proposal."""
    window_start = history.next_start - timedelta(days=ctx.window_days - 1)
    floor = (1 - ctx.max_fraction) * max(history.max_deq_since(window_start), current)
    override, limited = None, False
    if goal < floor - EPS:
        if ctx.override:
            override = f"faster than {ctx.max_fraction:.0%} in {ctx.window_days} days: {ctx.override}"
            floor = 0.0
        else:
            goal, limited = floor, True
            rule += f"; limited to {ctx.max_fraction:.0%} in {ctx.window_days} days"
    if goal < stop - EPS:
        goal = stop
        rule += f"; last dose before stopping is {stop:g} mg diazepam-equivalent"
    return Limited(goal, max(floor, stop - EPS) if goal >= stop - EPS else floor, rule, override, limited)


def _switch_when_stuck(
    ctx: Context, reducer: Reducer, slots: Slots, history: History, current: float
) -> tuple[Slots, str, float]:
    """Products too coarse for a step within the limit: switch what is left to the default substitute."""
    fallback = ctx.knowledge.taper.substitution.default_target
    if not ctx.allow_switch or all(d == fallback for d in drugs_in(slots)):
        raise PlanError(_stuck_message(ctx, slots, current))
    moves = substitute(ctx, slots, fallback, math.inf, 1.0, "evening", direct=True)
    if not moves or any(d != fallback for d in drugs_in(moves[-1].slots)):
        raise PlanError(_stuck_message(ctx, slots, current))
    ctx.warn(
        f"at {current:g} mg diazepam-equivalent a day the products of {', '.join(drugs_in(slots))} cannot make a "
        f"step within {ctx.max_fraction:.0%} in {ctx.window_days} days, so the rest is switched to {fallback}"
    )
    rule = f"switch the remaining dose to {fallback}: the current products are too coarse for the next step"
    append_step(
        ctx,
        history,
        "substitution",
        moves[-1].slots,
        days(ctx.knowledge.taper.substitution.step),
        rule,
        ctx.knowledge.taper.substitution.step.sources,
    )
    ctx.target = fallback
    stop = stop_deq(ctx, fallback, preset_stop(reducer.preset))
    return moves[-1].slots, fallback, stop


def _stuck_message(ctx: Context, slots: Slots, current: float) -> str:
    products = "; ".join(f"{d}: smallest dose {ctx.stocks[d].smallest_mg:g} mg" for d in drugs_in(slots))
    return (
        f"at {current:g} mg diazepam-equivalent a day no product in the knowledge base allows a reduction within "
        f"{ctx.max_fraction:.0%} in {ctx.window_days} days ({products}). Switch to a drug with small tablets or a "
        "liquid (e.g. --to diazepam), allow quarter tablets, or record a clinician override with a reason"
    )


def append_step(
    ctx: Context,
    history: History,
    phase: str,
    slots: Slots,
    n_days: int,
    rule: str,
    sources: tuple[str, ...],
    override: str | None = None,
) -> None:
    step = Step(
        index=len(history.steps) + 1,
        phase=phase,
        start=history.next_start,
        days=n_days,
        doses=to_doses(slots, ctx.stocks),
        diazepam_equivalent_mg=round(deq(slots, ctx.fx), 6),
        rule=rule,
        sources=tuple(dict.fromkeys(sources)),
        override=override,
    )
    history.steps.append(step)
    history.next_start = step.start + timedelta(days=n_days)


def final_step(ctx: Context, history: History, slots: Slots) -> None:
    last = deq(slots, ctx.fx)
    if not history.steps:  # already at the stop dose: hold it one interval first, never stop at once
        rule = "hold the smallest practicable dose before stopping"
        append_step(ctx, history, "reduction", slots, ctx.window_days, rule, ("jcpg2025",))
    rule = f"stop: the last step goes from the smallest practicable dose ({last:g} mg diazepam-equivalent) to zero"
    append_step(ctx, history, "stop", {}, 1, rule, ("nice_cks_withdrawal",))


def preset_stop(preset: Preset) -> float | None:
    return preset.stop_from.value if preset.stop_from else None
