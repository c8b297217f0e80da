"""Read plan.json (the output of `benzotaper plan ... --json`, Plan.to_dict) back into a Plan.

Plan.to_dict rounds doses to 4 decimals and diazepam equivalents to 3; the Plan read back carries those values.
Every error names the field: 'plan.json: steps[3].doses[0].mg: expected a number (got 'x')'.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, time
from typing import Any, TypeVar

from benzotaper.errors import PlanError
from benzotaper.taper.plan import Dose, Event, Phase, Plan, Portion, Step

T = TypeVar("T")


def _get(raw: Mapping[str, Any], key: str, where: str, kind: Callable[[Any], T]) -> T:
    if not isinstance(raw, Mapping) or key not in raw:
        raise PlanError(f"plan.json: {where}{key}: missing")
    try:
        return kind(raw[key])
    except (TypeError, ValueError) as exc:
        raise PlanError(f"plan.json: {where}{key}: {exc} (got {raw[key]!r})") from None


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise PlanError(f"plan.json: {where}{key}: expected a list (got {type(value).__name__})")
    return value


def _portion(raw: Mapping[str, Any], drug: str, where: str) -> Portion:
    return Portion(
        drug=drug,
        form=_get(raw, "form", where, str),
        strength=_get(raw, "strength", where, float),
        unit=_get(raw, "unit", where, str),
        count=_get(raw, "count", where, float),
        ml=_get(raw, "ml", where, float),
    )


def _dose(raw: Mapping[str, Any], where: str) -> Dose:
    drug = _get(raw, "drug", where, str)
    portions = tuple(_portion(p, drug, f"{where}portions[{i}].") for i, p in enumerate(_list(raw, "portions", where)))
    return Dose(drug, _get(raw, "time", where, time.fromisoformat), _get(raw, "mg", where, float), portions)


def _step(raw: Mapping[str, Any], where: str) -> Step:
    doses = tuple(_dose(d, f"{where}doses[{i}].") for i, d in enumerate(_list(raw, "doses", where)))
    override = raw.get("override")
    return Step(
        index=_get(raw, "index", where, int),
        phase=_get(raw, "phase", where, str),
        start=_get(raw, "start", where, date.fromisoformat),
        days=_get(raw, "days", where, int),
        doses=doses,
        diazepam_equivalent_mg=_get(raw, "diazepam_equivalent_mg", where, float),
        rule=_get(raw, "rule", where, str),
        sources=tuple(str(s) for s in _list(raw, "sources", where)),
        warnings=tuple(str(s) for s in _list(raw, "warnings", where)),
        override=None if override is None else str(override),
    )


def _phase(raw: Mapping[str, Any], where: str) -> Phase:
    return Phase(
        _get(raw, "name", where, str),
        _get(raw, "start", where, date.fromisoformat),
        _get(raw, "end", where, date.fromisoformat),
        _get(raw, "description", where, str),
    )


def _event(raw: Mapping[str, Any], where: str) -> Event:
    return Event(
        day=_get(raw, "date", where, date.fromisoformat),
        kind=_get(raw, "kind", where, str),
        days=int(raw.get("days", 0)),
        instrument=str(raw.get("instrument", "")),
        score=float(raw.get("score", 0.0)),
        note=str(raw.get("note", "")),
    )


def plan_from_json(raw: Any) -> Plan:
    """The Plan a plan.json describes; PlanError naming the field when it does not."""
    if not isinstance(raw, Mapping):
        raise PlanError(
            f"plan.json: expected the object printed by `benzotaper plan ... --json` (got {type(raw).__name__})"
        )
    steps = tuple(_step(s, f"steps[{i}].") for i, s in enumerate(_list(raw, "steps", "")))
    if not steps:
        raise PlanError("plan.json: steps: the plan has no steps")
    target = raw.get("target_drug")
    parameters = raw.get("parameters", {})
    if not isinstance(parameters, dict):
        raise PlanError(f"plan.json: parameters: expected an object (got {parameters!r})")
    return Plan(
        regimen=_get(raw, "regimen", "", str),
        strategy=_get(raw, "strategy", "", str),
        strategy_name=_get(raw, "strategy_name", "", str),
        table=_get(raw, "equivalence_table", "", str),
        start=_get(raw, "start", "", date.fromisoformat),
        steps=steps,
        phases=tuple(_phase(p, f"phases[{i}].") for i, p in enumerate(_list(raw, "phases", ""))),
        warnings=tuple(str(w) for w in _list(raw, "warnings", "")),
        target=None if target is None else str(target),
        tolerance=_get(raw, "substitution_tolerance", "", float),
        sources=tuple(str(s) for s in _list(raw, "sources", "")),
        overrides=tuple(str(s) for s in _list(raw, "overrides", "")),
        events=tuple(_event(e, f"events[{i}].") for i, e in enumerate(_list(raw, "events", ""))),
        parameters=dict(parameters),
    )
