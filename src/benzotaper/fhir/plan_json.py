"""Read plan.json (the output of `benzotaper plan ... --json`, Plan.to_dict) back into a Plan.

Plan.to_dict rounds doses to 4 decimals and diazepam equivalents to 3; the Plan read back carries those values.
Every error names the field, the value and what is accepted: 'plan.json: steps[3].doses[0].mg: expected a number
more than 0 (got 'x')'. Besides the types, a plan is checked for what every plan the planners make holds: steps in
date order without overlap, each at least a day long; doses of more than 0 mg made of the products listed; fields
that to_dict derives (a step's end, the plan's end_date), when present, agree with the rest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import date, time
from itertools import pairwise
from typing import Any, TypeVar

from benzotaper.errors import PlanError
from benzotaper.taper.plan import Dose, Event, Phase, Plan, Portion, Step

T = TypeVar("T")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CLOCK = re.compile(r"^\d{2}:\d{2}(:\d{2})?$")
PORTION_SLACK_MG = 0.01  # to_dict rounds a dose to 4 decimals; its portions add up to it within this


class _Refused(ValueError):
    """A value of the wrong kind; the message says what is accepted."""


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Refused("expected text")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refused("expected a number")
    try:
        number = float(value)
    except OverflowError:
        raise _Refused("expected a number of at most 1e308") from None
    if not math.isfinite(number):
        raise _Refused("expected a finite number")
    return number


def _at_least_zero(value: Any) -> float:
    number = _number(value)
    if number < 0:
        raise _Refused("expected a number of 0 or more")
    return number


def _more_than_zero(value: Any) -> float:
    number = _number(value)
    if number <= 0:
        raise _Refused("expected a number more than 0")
    return number


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Refused("expected a whole number")
    return value


def _day_count(value: Any) -> int:
    days = _whole(value)
    if days < 1:
        raise _Refused("expected a whole number of days, 1 or more")
    return days


def _date(value: Any) -> date:
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _Refused("expected a date YYYY-MM-DD")


def _clock(value: Any) -> time:
    if isinstance(value, str) and _CLOCK.match(value):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise _Refused("expected a time of day HH:MM")


def _get(raw: Mapping[str, Any], key: str, where: str, kind: Callable[[Any], T]) -> T:
    if not isinstance(raw, Mapping):
        raise PlanError(f"plan.json: {where.rstrip('.') or '(top)'}: expected an object (got {_shown(raw)})")
    if key not in raw:
        raise PlanError(f"plan.json: {where}{key}: missing")
    return _as(raw[key], f"{where}{key}", kind)


def _optional(raw: Mapping[str, Any], key: str, where: str, kind: Callable[[Any], T], default: T) -> T:
    return _as(raw[key], f"{where}{key}", kind) if raw.get(key) is not None else default


def _as(value: Any, field: str, kind: Callable[[Any], T]) -> T:
    try:
        return kind(value)
    except _Refused as exc:
        raise PlanError(f"plan.json: {field}: {exc} (got {_shown(value)})") from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise PlanError(f"plan.json: {where}{key}: expected a list (got {type(value).__name__})")
    return value


def _texts(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    return tuple(_as(s, f"{where}{key}[{i}]", _text) for i, s in enumerate(_list(raw, key, where)))


def _portion(raw: Mapping[str, Any], drug: str, where: str) -> Portion:
    return Portion(
        drug=drug,
        form=_get(raw, "form", where, _text),
        strength=_get(raw, "strength", where, _more_than_zero),
        unit=_get(raw, "unit", where, _text),
        count=_get(raw, "count", where, _at_least_zero),
        ml=_get(raw, "ml", where, _at_least_zero),
    )


def _dose(raw: Mapping[str, Any], where: str) -> Dose:
    drug = _get(raw, "drug", where, _text)
    portions = tuple(_portion(p, drug, f"{where}portions[{i}].") for i, p in enumerate(_list(raw, "portions", where)))
    dose = Dose(drug, _get(raw, "time", where, _clock), _get(raw, "mg", where, _more_than_zero), portions)
    made = sum(p.mg for p in portions)
    if portions and abs(made - dose.mg) > PORTION_SLACK_MG:
        raise PlanError(f"plan.json: {where}mg: {dose.mg:g} mg, but its portions make {made:g} mg (they must agree)")
    return dose


def _step(raw: Mapping[str, Any], where: str) -> Step:
    doses = tuple(_dose(d, f"{where}doses[{i}].") for i, d in enumerate(_list(_object(raw, where), "doses", where)))
    override = raw.get("override")
    step = Step(
        index=_get(raw, "index", where, _whole),
        phase=_get(raw, "phase", where, _text),
        start=_get(raw, "start", where, _date),
        days=_get(raw, "days", where, _day_count),
        doses=doses,
        diazepam_equivalent_mg=_get(raw, "diazepam_equivalent_mg", where, _at_least_zero),
        rule=_get(raw, "rule", where, _text),
        sources=_texts(raw, "sources", where),
        warnings=_texts(raw, "warnings", where),
        override=None if override is None else _as(override, f"{where}override", _text),
    )
    try:
        last = step.end
    except OverflowError:
        raise PlanError(f"plan.json: {where}days: {step.days} days from {step.start} end after {date.max}") from None
    end = _optional(raw, "end", where, _date, last)
    if end != step.end:
        raise PlanError(f"plan.json: {where}end: {end} does not agree with start {step.start} and {step.days} days "
                        f"(expected {step.end})")  # fmt: skip
    return step


def _object(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise PlanError(f"plan.json: {where.rstrip('.')}: expected an object (got {_shown(raw)})")
    return raw


def _phase(raw: Mapping[str, Any], where: str) -> Phase:
    phase = Phase(
        _get(raw, "name", where, _text),
        _get(raw, "start", where, _date),
        _get(raw, "end", where, _date),
        _get(raw, "description", where, _text),
    )
    if phase.end < phase.start:
        raise PlanError(f"plan.json: {where}end: {phase.end} is before the phase's start {phase.start}")
    return phase


def _event(raw: Mapping[str, Any], where: str) -> Event:
    return Event(
        day=_get(raw, "date", where, _date),
        kind=_get(raw, "kind", where, _text),
        days=_optional(raw, "days", where, _whole, 0),
        instrument=_optional(raw, "instrument", where, _text, ""),
        score=_optional(raw, "score", where, _number, 0.0),
        note=_optional(raw, "note", where, _text, ""),
    )


def _in_order(steps: tuple[Step, ...]) -> None:
    """Each step starts after the one before it ends (no overlap, none out of order)."""
    for i, (before, step) in enumerate(pairwise(steps), start=1):
        if step.start <= before.end:
            raise PlanError(f"plan.json: steps[{i}].start: {step.start} is not after the step before it, which ends "
                            f"{before.end} (steps are in date order and do not overlap)")  # fmt: skip


def plan_from_json(raw: Any) -> Plan:
    """The Plan a plan.json describes; PlanError naming the field when it does not."""
    if not isinstance(raw, Mapping):
        raise PlanError(
            f"plan.json: expected the object printed by `benzotaper plan ... --json` (got {type(raw).__name__})"
        )
    steps = tuple(_step(s, f"steps[{i}].") for i, s in enumerate(_list(raw, "steps", "")))
    if not steps:
        raise PlanError("plan.json: steps: the plan has no steps")
    _in_order(steps)
    target = raw.get("target_drug")
    parameters = raw.get("parameters", {})
    if not isinstance(parameters, dict):
        raise PlanError(f"plan.json: parameters: expected an object (got {_shown(parameters)})")
    _finite_everywhere(parameters, "parameters")
    end_date = _optional(raw, "end_date", "", _date, steps[-1].start)
    if end_date != steps[-1].start:
        raise PlanError(f"plan.json: end_date: {end_date} is not the start of the last step ({steps[-1].start})")
    return Plan(
        regimen=_get(raw, "regimen", "", _text),
        strategy=_get(raw, "strategy", "", _text),
        strategy_name=_get(raw, "strategy_name", "", _text) or _get(raw, "strategy", "", _text),  # '' is no name
        table=_get(raw, "equivalence_table", "", _text),
        start=_get(raw, "start", "", _date),
        steps=steps,
        phases=tuple(
            _phase(_object(p, f"phases[{i}]"), f"phases[{i}].") for i, p in enumerate(_list(raw, "phases", ""))
        ),
        warnings=_texts(raw, "warnings", ""),
        target=None if target is None else _as(target, "target_drug", _text),
        tolerance=_get(raw, "substitution_tolerance", "", _at_least_zero),
        sources=_texts(raw, "sources", ""),
        overrides=_texts(raw, "overrides", ""),
        events=tuple(
            _event(_object(e, f"events[{i}]"), f"events[{i}].") for i, e in enumerate(_list(raw, "events", ""))
        ),
        parameters=dict(parameters),
    )


MAX_PARAMETER_DEPTH = 20  # the planner writes a flat object of numbers and text


def _finite_everywhere(value: Any, where: str, depth: int = 0) -> None:
    """Refuse NaN or infinity anywhere in `value` (the plan's parameters travel on to FHIR as strict JSON)."""
    if depth > MAX_PARAMETER_DEPTH:
        raise PlanError(f"plan.json: {where}: nested more than {MAX_PARAMETER_DEPTH} levels; expected plain values")
    if isinstance(value, float) and not math.isfinite(value):
        raise PlanError(f"plan.json: {where}: expected a finite number (got {value})")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _finite_everywhere(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _finite_everywhere(item, f"{where}[{i}]", depth + 1)
