"""Serum-guided taper: doses chosen so this patient's predicted trough level follows a target trajectory.

The clinician sets the trajectory: a fall of X% of the trough diazepam-equivalent level (or of the
predicted receptor occupancy) per week, slower below a quarter of the starting value (tdm.toml). At
each step the planner solves, by linearity, for the daily dose that puts the individual's trough
on the trajectory at the step's end; it prefers long steps (up to 4 weeks) only while the level
falls at most 1.25x the target in any week, so a fast eliminator (whose level follows each cut
within days) gets small weekly steps and a slow eliminator larger, rarer ones. Doses are then made
of real products by the planner's rounding, under its safety limits (25% in 14 days, no abrupt
stop), and the plan passes the same final safety check as every other plan.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

import numpy as np
from numpy.typing import NDArray

from benzotaper.errors import PlanError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.taper_rules import HOURS_PER_DAY, days
from benzotaper.knowledge.tdm_rules import load_tdm_knowledge
from benzotaper.pk import ParameterSet, level_for_occupancy, occupancy
from benzotaper.regimen import DoseEvents, Regimen
from benzotaper.taper.plan import Plan, Step
from benzotaper.taper.planner import Draft, PlanOptions, _reducer, finish_draft, start_draft
from benzotaper.taper.reduction import reduce_once
from benzotaper.taper.state import EPS, Context, Slots, deq
from benzotaper.taper.steps import (
    MAX_STEPS,
    History,
    append_step,
    apply_limits,
    main_drug,
    preset_stop,
    reduce_to_stop,
    stop_deq,
)
from benzotaper.tdm.patient import Patient, with_events

FloatArray = NDArray[np.float64]
TRAJECTORIES = ("level", "occupancy")
_HOUR = timedelta(hours=1)
_WEEK = 7


@dataclass(frozen=True)
class Trajectory:
    """Target: trough level (or occupancy) falls `fall_per_week` a week, times `slow_factor` below `slow_below`."""

    kind: str
    fall_per_week: float
    slow_below: float
    slow_factor: float
    tolerance: float

    def __post_init__(self) -> None:
        if self.kind not in TRAJECTORIES:
            raise PlanError(f"trajectory must be one of {list(TRAJECTORIES)} (got {self.kind!r})")
        limit = fall_bounds().highest
        if not 0 < self.fall_per_week <= limit:
            raise PlanError(
                f"level fall per week must be more than 0 and at most {limit:.0%} (got {self.fall_per_week:.1%}); "
                "faster tapers are not level-guided"
            )

    def weekly(self, value: float, start: float) -> float:
        """Allowed fraction of fall per week at this value of the guided quantity."""
        return self.fall_per_week * (self.slow_factor if value < self.slow_below * start else 1.0)

    def at(self, start: float, weeks: float) -> float:
        """Target value `weeks` after the start."""
        f, fs = self.fall_per_week, self.fall_per_week * self.slow_factor
        w1 = math.log(self.slow_below) / math.log(1 - f)
        if weeks <= w1:
            return float(start * (1 - f) ** weeks)
        return float(start * self.slow_below * (1 - fs) ** (weeks - w1))


@dataclass(frozen=True)
class FallBounds:
    """The weekly fall a guided plan may target (fractions): the app's slowest offer, the default, the limit."""

    lowest: float
    default: float
    highest: float


def fall_bounds() -> FallBounds:
    """From tdm.toml: the lower end of fall_per_week's sourced range, its value, and fall_per_week_limit."""
    g = load_tdm_knowledge().settings["guided"]
    fall = g["fall_per_week"]
    return FallBounds(fall.range[0] if fall.range else fall.value, fall.value, g["fall_per_week_limit"].value)


def default_trajectory(kind: str = "level", fall_per_week: float | None = None) -> Trajectory:
    """The trajectory from tdm.toml, with the clinician's weekly fall if given."""
    g = load_tdm_knowledge().settings["guided"]
    return Trajectory(
        kind,
        fall_per_week if fall_per_week is not None else g["fall_per_week"].value,
        g["slow_below_fraction"].value,
        g["slow_factor"].value,
        g["weekly_tolerance"].value,
    )


@dataclass(frozen=True)
class Guide:
    """The individual model and the trajectory; reads the plan so far to predict the next step."""

    knowledge: Knowledge
    patient: Patient
    params: ParameterSet
    past: DoseEvents
    trajectory: Trajectory
    intervals: tuple[int, ...]
    clock: time

    @property
    def hold_below(self) -> float:
        """A cut smaller than this fraction of the dose is held instead (tdm.toml)."""
        return load_tdm_knowledge().value("guided", "hold_below")

    def quantity(self, deq_level: FloatArray) -> FloatArray:
        """The guided quantity: the level itself, or the predicted occupancy."""
        if self.trajectory.kind == "occupancy":
            return np.asarray(occupancy(self.knowledge.occupancy, deq_level), dtype=np.float64)
        return deq_level

    def level_of(self, value: float) -> float:
        """Level (ng/mL) for a value of the guided quantity."""
        if self.trajectory.kind == "occupancy":
            return float(level_for_occupancy(self.knowledge.occupancy, value))
        return value

    def events(self, steps: Sequence[Step], extra: tuple[Slots, date, int] | None = None) -> DoseEvents:
        """Doses before the plan, the plan's steps, and optionally `extra` slots for n days from a date."""
        origin = self.past.origin
        t, a, d = [self.past.time], [self.past.amt], list(self.past.drug)
        blocks = [(_slots_of(s), s.start, s.days) for s in steps if s.doses]
        if extra is not None:
            blocks.append(extra)
        for slots, start, n in blocks:
            times, amts, drugs = _expand(slots, start, n, origin)
            t.append(times)
            a.append(amts)
            d += drugs
        times = np.concatenate(t)
        order = np.argsort(times, kind="stable")
        return DoseEvents(origin, times[order], np.concatenate(a)[order], tuple(d[i] for i in order))

    def troughs(self, events: DoseEvents, first: date, n_days: int, clock: time) -> FloatArray:
        """Individual trough diazepam-equivalent level each day at `clock` for n days from `first`."""
        times = [datetime.combine(first + timedelta(days=k), clock) for k in range(n_days)]
        return self.levels_at(events, times)

    def levels_at(self, events: DoseEvents, times: Sequence[datetime]) -> FloatArray:
        """Individual diazepam-equivalent level at the times (pre-dose at a dose instant)."""
        origin = self.past.origin
        t_h = np.array([(t - origin) / _HOUR for t in times])
        patient = with_events(self.patient, events)
        return np.asarray(patient.deq_weights @ patient.levels(self.params, t_h)[0], dtype=np.float64)


def _slots_of(step: Step) -> Slots:
    out: Slots = {}
    for dose in step.doses:
        out.setdefault(dose.time, {})
        out[dose.time][dose.drug] = out[dose.time].get(dose.drug, 0.0) + dose.mg
    return out


def _expand(slots: Slots, start: date, n_days: int, origin: datetime) -> tuple[FloatArray, FloatArray, list[str]]:
    base = (datetime.combine(start, time()) - origin) / _HOUR
    times, amts, drugs = [], [], []
    for k in range(n_days):
        for t, per_drug in slots.items():
            for drug, mg in per_drug.items():
                times.append(base + k * HOURS_PER_DAY + t.hour + t.minute / 60)
                amts.append(mg)
                drugs.append(drug)
    return np.asarray(times, dtype=float), np.asarray(amts, dtype=float), drugs


@dataclass(frozen=True)
class StepChoice:
    """The daily dose the trajectory asks for, the least dose the weekly tolerance allows, the step length."""

    goal: float
    minimum: float
    n_days: int
    rule: str


def _min_dose(guide: Guide, free: FloatArray, unit: FloatArray, end: int, current: float, s0: float) -> float:
    """Smallest daily dose whose predicted weekly falls stay within tolerance up to `end` (bisection)."""
    traj = guide.trajectory

    def ok(dose: float) -> bool:
        path = guide.quantity(free[: end + 1] + dose * unit[: end + 1])
        fall = 1 - path[_WEEK:] / np.maximum(path[:-_WEEK], 1e-12)
        allowed = np.array([traj.weekly(v, s0) for v in path[:-_WEEK]]) * traj.tolerance
        return bool(np.all(fall <= allowed + 1e-9))

    if ok(0.0):
        return 0.0
    if not ok(current):
        return current  # the level already falls faster than allowed: hold
    lo, hi = 0.0, current
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def _choose(guide: Guide, history: History, slots: Slots, current: float, anchor: tuple[date, float]) -> StepChoice:
    """Longest step whose trajectory dose keeps weekly falls within tolerance; else a week at the least dose allowed."""
    traj = guide.trajectory
    start, s0 = anchor
    day0 = history.next_start
    longest = max(guide.intervals)
    base_events = guide.events(history.steps)
    first = day0 - timedelta(days=_WEEK)
    free = guide.troughs(base_events, first, longest + _WEEK + 1, guide.clock)
    unit_events = DoseEvents(
        base_events.origin, *(_scaled(_expand(slots, day0, longest, base_events.origin), 1 / current))
    )
    unit = guide.troughs(unit_events, first, longest + _WEEK + 1, guide.clock)
    choice: StepChoice | None = None
    for n in sorted(guide.intervals, reverse=True):
        end = _WEEK + n
        target_q = traj.at(s0, ((day0 - start).days + n) / _WEEK)
        target = guide.level_of(target_q)
        dose = float(np.clip((target - free[end]) / max(unit[end], 1e-12), 0.0, current))
        least = _min_dose(guide, free, unit, end, current, s0)
        rule = (
            f"serum-guided ({traj.kind}): predicted diazepam-equivalent trough {free[_WEEK]:.0f} ng/mL now, target "
            f"{target:.0f} ng/mL on "
            f"{day0 + timedelta(days=n)} (fall {traj.weekly(target_q, s0):.1%}/week of the "
            f"{'trough level' if traj.kind == 'level' else 'predicted occupancy'})"
        )
        choice = StepChoice(max(dose, least), least, n, rule)
        if dose >= least - 1e-9:
            return choice
    assert choice is not None
    return replace(choice, rule=choice.rule + "; the target pace would exceed the weekly limit, so the cut is smaller")


def _scaled(
    arrays: tuple[FloatArray, FloatArray, list[str]], factor: float
) -> tuple[FloatArray, FloatArray, tuple[str, ...]]:
    times, amts, drugs = arrays
    return times, amts * factor, tuple(drugs)


def _hold(ctx: Context, history: History, slots: Slots, choice: StepChoice) -> None:
    rule = choice.rule + "; the level is still falling from the last cut, so the dose is held"
    append_step(ctx, history, "hold", slots, _WEEK, rule, ("sheiner1979", "jcpg2025"))


def _window_high(ctx: Context, history: History) -> float:
    """The highest diazepam-equivalent dose inside the rate limit's window ending at the next step."""
    return history.max_deq_since(history.next_start - timedelta(days=ctx.window_days - 1))


def guided_reduce(
    guide: Guide,
    ctx: Context,
    history: History,
    slots: Slots,
    preset_stop_deq: float | None,
    fallback: Callable[[Slots], Slots] | None = None,
) -> Slots:
    """Reduction steps that follow the trajectory, under the planner's safety limits, down to the stop dose.

    When the drug's products allow no further step within the limits, `fallback` (the preset's own
    reduction, which switches the rest to the default long-acting drug) finishes the plan, with a warning.
    """
    main = main_drug(ctx, slots)
    stop = stop_deq(ctx, main, preset_stop_deq)
    day0 = history.next_start
    s0 = float(guide.quantity(guide.troughs(guide.events(history.steps), day0, 1, guide.clock))[0])
    for _ in range(MAX_STEPS):
        current = deq(slots, ctx.fx)
        if current <= stop + EPS:
            return slots
        choice = _choose(guide, history, slots, current, (day0, s0))
        if choice.goal >= current * (1 - guide.hold_below):
            _hold(ctx, history, slots, choice)
            continue
        lim = apply_limits(ctx, history, current, choice.goal, choice.rule, stop)
        goal, rule, override, safe = lim.goal, lim.rule, lim.override, lim.floor
        cut = reduce_once(ctx, slots, goal, max(safe, min(choice.minimum, goal)), main)
        if cut is None:
            cut = reduce_once(ctx, slots, goal, safe, main)
            if cut is not None:
                rule += "; the products allow only a larger step, so this week's fall exceeds the target"
        if cut is None and current <= stop * (1 + ctx.max_fraction):
            return slots
        if cut is None and _window_high(ctx, history) > current + EPS:
            # The products' next dose is a larger cut than the limit allows while an earlier, higher dose is still
            # inside its window: wait at this dose until the window has passed, then take that cut.
            rule = choice.rule + "; the products' next dose is a larger cut than the rate limit allows yet"
            append_step(ctx, history, "hold", slots, _WEEK, rule, ("jcpg2025",))
            continue
        if cut is None and fallback is not None:
            ctx.warn(
                f"at {current:g} mg diazepam-equivalent a day the products allow no further guided step: the rest "
                "follows the preset's schedule (the levels measured the drug before the switch, so they stop guiding)"
            )
            return fallback(slots)
        if cut is None:
            raise PlanError(
                f"at {current:g} mg diazepam-equivalent a day no product allows the next guided step; allow quarter "
                "tablets, choose a drug with a liquid, or record a clinician override"
            )
        notes = "; ".join([rule, *cut.notes])
        append_step(ctx, history, "reduction", cut.slots, choice.n_days, notes, ("sheiner1979", "jcpg2025"), override)
        slots = cut.slots
    raise PlanError(f"the guided plan did not reach the stop dose within {MAX_STEPS} steps; choose a faster fall")


def guided_plan(
    knowledge: Knowledge,
    patient: Patient,
    params: ParameterSet,
    regimens: Sequence[Regimen],
    options: PlanOptions,
    trajectory: Trajectory,
    sig: str = "",
) -> Plan:
    """A plan whose reduction follows the trajectory for this individual (params from the fit, or any)."""
    draft = start_draft(knowledge, regimens, options, sig)
    fitted = {a.id for a in patient.model.analytes}
    main = main_drug(draft.ctx, draft.slots)
    if knowledge.drug(main).analyte not in fitted:
        raise PlanError(
            f"the levels describe {', '.join(sorted(fitted))}, but the reduction is of {main}; plan the switch first "
            f"and guide the {main} reduction with {main} levels taken after it"
        )
    last = max(s.sampled_at for s in patient.samples)
    if options.start < last.date():
        raise PlanError(
            f"the plan starts {options.start}, before the last level ({last:%Y-%m-%d}); start on or after it"
        )
    before = events_before(patient, options.start)
    g = load_tdm_knowledge().q("guided", "step")
    lo, hi = (days_of(x) for x in (g.range or (g.value, g.value)))
    intervals = tuple(range(lo, hi + 1, _WEEK))
    guide = Guide(knowledge, patient, params, before, trajectory, intervals, min(draft.slots))
    red_start = draft.history.next_start
    draft.slots = guided_reduce(
        guide, draft.ctx, draft.history, draft.slots, preset_stop(draft.preset), _fallback(knowledge, draft)
    )
    what = "trough level" if trajectory.kind == "level" else "predicted receptor occupancy"
    return finish_draft(
        knowledge,
        draft,
        red_start,
        f"serum-guided: the {what} falls {trajectory.fall_per_week:.1%} a week for this patient "
        f"({trajectory.fall_per_week * trajectory.slow_factor:.1%} below {trajectory.slow_below:.0%} of the start)",
    )


def _fallback(knowledge: Knowledge, draft: Draft) -> Callable[[Slots], Slots] | None:
    """The preset's reduction from given doses (None when the clinician chose never to switch drugs)."""
    if not draft.ctx.allow_switch:
        return None

    def finish(slots: Slots) -> Slots:
        reducer = _reducer(knowledge, draft.preset, draft.options, draft.ctx, slots, draft.target)
        interval = draft.options.interval_days or days(draft.preset.interval)
        return reduce_to_stop(draft.ctx, reducer, slots, draft.history, interval, draft.target)

    return finish


def events_before(patient: Patient, start: date) -> DoseEvents:
    """The patient's doses before midnight of `start` (the history a plan continues from)."""
    cut = (datetime.combine(start, time()) - patient.origin) / _HOUR
    keep = patient.events.time < cut
    drugs = tuple(d for d, k in zip(patient.events.drug, keep, strict=True) if k)
    return DoseEvents(patient.origin, patient.events.time[keep], patient.events.amt[keep], drugs)


def days_of(hours: float) -> int:
    """Whole days in a duration stored in hours."""
    return round(hours / HOURS_PER_DAY)
