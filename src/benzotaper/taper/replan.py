"""Holds, steps back and withdrawal scores: re-plan from the day they happened, using what was taken.

A hold keeps the dose in force for some days; a return goes back to the previous step's doses; a
score (e.g. CIWA-B) is turned into a hold or a return by the hold rules in taper.toml (with their
sources). The days before the event stay as they were; the rest of the plan is rebuilt by the
same rules as the original, more slowly if the rule says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from benzotaper.errors import PlanError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.taper_rules import HoldRule, days
from benzotaper.regimen import Regimen
from benzotaper.taper.plan import Event, Plan, Step
from benzotaper.taper.planner import PlanOptions, _assemble, _context, _reducer, _slots, build_plan, preset_of
from benzotaper.taper.state import Context, Slots, drugs_in
from benzotaper.taper.steps import History, append_step, final_step, reduce_to_stop
from benzotaper.taper.substitution import substitute

KINDS = ("hold", "return", "score")


def replan(
    knowledge: Knowledge, regimens: Sequence[Regimen], options: PlanOptions, events: Sequence[Event], sig: str = ""
) -> Plan:
    """The plan for `regimens` with every recorded event applied in date order."""
    plan = build_plan(knowledge, regimens, options, sig)
    slow = 1.0
    for event in sorted(events, key=lambda e: e.day):
        plan, slow = _apply(knowledge, regimens, options, plan, event, slow, sig)
    return plan


def _rule_for(knowledge: Knowledge, event: Event) -> HoldRule | None:
    """The strictest hold rule the score reaches (rules are sorted by descending threshold)."""
    for rule in knowledge.taper.hold_rules:
        if rule.instrument == event.instrument and event.score >= rule.min_score:
            return rule
    return None


def check_event(plan: Plan, event: Event) -> None:
    if event.kind not in KINDS:
        raise PlanError(f"event kind must be one of {list(KINDS)} (got {event.kind!r})")
    if not plan.start <= event.day < plan.end_date:
        raise PlanError(
            f"event date {event.day} is outside the plan's dosing days ({plan.start} to {plan.end_date - timedelta(1)})"
        )
    if event.kind == "hold" and not 1 <= event.days <= 365:
        raise PlanError(f"a hold needs days between 1 and 365 (got {event.days})")


@dataclass(frozen=True, slots=True)
class Action:
    """What an event does to the plan: hold or return, for how many days, why, and how much slower afterwards."""

    kind: str  # "hold" or "return"; "none" when a score reaches no rule
    days: int
    reason: str
    sources: tuple[str, ...]
    slow_factor: float = 1.0


def action_for(knowledge: Knowledge, event: Event) -> Action:
    """The hold rules of taper.toml applied to one event (a score becomes a hold or return, or nothing)."""
    kind, hold_days, reason = event.kind, event.days, f"{event.kind} recorded on {event.day}"
    if event.kind == "score":
        rule = _rule_for(knowledge, event)
        if rule is None:
            return Action("none", 0, f"{event.instrument} {event.score:g} reaches no hold rule", ())
        slow = rule.slow_factor.value if rule.slow_factor is not None else 1.0
        reason = f"{rule.reason} ({event.score:g} on {event.day})"
        return Action(rule.action, days(rule.days), reason, (*rule.days.sources, rule.score_source), slow)
    if kind == "return" and not hold_days:
        rule = next((r for r in knowledge.taper.hold_rules if r.action == "return"), None)
        if rule is None:
            raise PlanError("a return needs days (no 'return' hold rule in taper.toml gives a default)")
        hold_days = days(rule.days)
    return Action(kind, hold_days, reason, ())


def _apply(
    knowledge: Knowledge,
    regimens: Sequence[Regimen],
    options: PlanOptions,
    plan: Plan,
    event: Event,
    slow: float,
    sig: str,
) -> tuple[Plan, float]:
    check_event(plan, event)
    act = action_for(knowledge, event)
    if act.kind == "none":
        return replace(plan, events=(*plan.events, event)), slow
    kind, hold_days, reason, sources = act.kind, act.days, act.reason, act.sources
    slow *= act.slow_factor
    kept, in_force, previous = split_at(plan, event)
    doses = previous if kind == "return" and previous is not None else in_force
    preset = preset_of(knowledge, options.strategy)
    warnings: list[str] = []
    original = _slots(knowledge, regimens, warnings)
    ctx = _context(knowledge, options, preset, drugs_in(original), plan.target)
    history = History(list(kept), event.day)
    slots = _to_slots(doses)
    note = f"{reason}; {event.note}" if event.note else reason
    if kind == "hold":  # a pause: the rest of the step in force, then `hold_days` more at the same dose
        hold_days += (in_force.end - event.day).days + 1
    append_step(ctx, history, "hold", slots, max(hold_days, 1), note, tuple(sources))
    slots = _finish_substitution(ctx, history, options, slots, plan)
    reducer = _reducer(knowledge, preset, options, ctx, slots, plan.target)
    interval = options.interval_days or days(preset.interval)
    slots = reduce_to_stop(ctx, reducer, slots, history, interval, plan.target, slow)
    final_step(ctx, history, slots)
    new = _assemble(knowledge, preset, options, ctx, history, list(plan.phases), plan.target, plan.tolerance, sig)
    phases = [p for p in plan.phases if p.name != "reduction"]
    phases += [replace(p, end=new.end_date - timedelta(days=1)) for p in plan.phases if p.name == "reduction"]
    merged = tuple(dict.fromkeys((*plan.warnings, *new.warnings)))
    return replace(new, regimen=plan.regimen, events=(*plan.events, event), phases=tuple(phases), warnings=merged), slow


def split_at(plan: Plan, event: Event) -> tuple[list[Step], Step, Step | None]:
    """Steps kept before the event (the one in force cut short), the step in force, the one before it."""
    kept: list[Step] = []
    in_force = plan.step_on(event.day)
    previous = None
    for step in plan.steps:
        if step.start >= event.day:
            break
        if step is in_force:
            if (event.day - step.start).days > 0:
                kept.append(replace(step, days=(event.day - step.start).days))
            break
        kept.append(step)
        if step.doses:
            previous = step
    return kept, in_force, previous


def _to_slots(step: Step) -> Slots:
    slots: Slots = {}
    for d in step.doses:
        slots.setdefault(d.time, {})[d.drug] = slots.get(d.time, {}).get(d.drug, 0.0) + d.mg
    return slots


def _finish_substitution(ctx: Context, history: History, options: PlanOptions, slots: Slots, plan: Plan) -> Slots:
    """A hold during the switch: finish the switch first, then reduce."""
    target = plan.target
    if target is None or all(d == target for d in drugs_in(slots)):
        return slots
    rules = ctx.knowledge.taper.substitution
    moves = substitute(ctx, slots, target, rules.chunk.value, plan.tolerance, options.first_dose, False)
    for move in moves:
        append_step(
            ctx, history, "substitution", move.slots, options.substitution_days or days(rules.step), move.rule, ()
        )
        slots = move.slots
    return slots
