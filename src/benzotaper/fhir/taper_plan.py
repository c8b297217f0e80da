"""A taper plan as FHIR: one CarePlan (the plan, its phases and warnings) and one MedicationRequest per step and drug.

In the style of HL7's tapering example (medrx0303): each MedicationRequest has intent 'plan', a dosageInstruction
per time of day with `sequence` = the step number, timing.repeat.boundsPeriod = the step's first and last day,
frequency 1 per 1 d, timeOfDay, route oral and an 'ordered' doseQuantity in mg. The drug-free last step is a
MedicationRequest with doNotPerform = true from its first day. What FHIR has no element for (the phase and number
of a step, the products of a dose, the equivalence table, the plan's parameters) travels in benzotaper extensions,
so that import(export(plan)) == plan.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import date, time
from typing import Any

from benzotaper.errors import FhirError, UnknownDrugError
from benzotaper.fhir.context import ExportContext
from benzotaper.fhir.elements import (
    ACCEPTED,
    Json,
    code_in,
    coding,
    codings,
    complex_extension,
    concept,
    decimal,
    extensions,
    fhir_time,
    json_object,
    parse_date,
    part,
    reference,
    shown,
    sub_value,
    sub_values,
    text,
    whole,
)
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.fhir_codes import FhirCodes
from benzotaper.taper.plan import Dose, Event, Phase, Plan, Portion, Step

STEP_EXT, PLAN_EXT, PORTION_EXT, POSITION_EXT = "taper-step", "taper-plan", "dose-portion", "dose-position"

# ---------------------------------------------------------------- export


def plan_entries(plan: Plan, ctx: ExportContext, status: str, key: str) -> list[tuple[str, Json]]:
    """(full URL, resource) for the CarePlan and every step's MedicationRequest(s)."""
    _check_drugs(plan, ctx.coder.knowledge)
    careplan_url = ctx.url("CarePlan", key)
    requests: list[tuple[str, Json]] = []
    for step in plan.steps:
        drugs = _step_drugs(plan, step)
        for drug in drugs:
            url = ctx.url("MedicationRequest", key, str(step.index), drug)
            requests.append((url, _request(ctx, plan, step, drug, status, careplan_url, key)))
    return [(careplan_url, _careplan(ctx, plan, status, key, [u for u, _ in requests])), *requests]


def _check_drugs(plan: Plan, knowledge: Knowledge) -> None:
    """Every dose names a drug of the knowledge base by its id (what the local drug code holds)."""
    for step in plan.steps:
        for i, dose in enumerate(step.doses, start=1):
            if dose.drug in knowledge.drugs:
                continue
            try:
                hint = f"; did you mean {knowledge.drug(dose.drug).id!r}?"
            except UnknownDrugError as exc:
                hint = "".join(str(exc).partition(";")[1:])
            raise FhirError(f"plan step {step.index}, dose {i}: drug {shown(dose.drug)} is not a drug id of the "
                            f"knowledge base{hint}")  # fmt: skip


def _step_drugs(plan: Plan, step: Step) -> list[str]:
    if step.doses:
        return list(dict.fromkeys(d.drug for d in step.doses))
    dosed = [s for s in plan.steps if s.doses and s.start <= step.start] or [s for s in plan.steps if s.doses]
    if not dosed:
        raise FhirError(f"plan step {step.index}: a plan without any dose cannot be written as MedicationRequests")
    return list(dict.fromkeys(d.drug for d in dosed[-1].doses))


def _careplan(ctx: ExportContext, plan: Plan, status: str, key: str, requests: list[str]) -> Json:
    parts: list[tuple[str, str, Any]] = [
        ("table", "valueString", plan.table or None),
        ("target", "valueCode", plan.target),
        ("tolerance", "valueDecimal", plan.tolerance),
        ("parameters", "valueString", json.dumps(plan.parameters, sort_keys=True)),
    ]
    parts += [("source", "valueString", s) for s in plan.sources]
    parts += [("override", "valueString", o) for o in plan.overrides]
    parts += [("event", "valueString", json.dumps(_event_dict(e), sort_keys=True)) for e in plan.events]
    activity: list[Json] = [
        {"detail": _nonempty({"code": {"text": p.name}, "status": "scheduled", "description": p.description,
                              "scheduledPeriod": {"start": p.start.isoformat(), "end": p.end.isoformat()}})}
        for p in plan.phases
    ]  # fmt: skip
    activity += [{"reference": reference(url)} for url in requests]
    careplan: Json = {
        "resourceType": "CarePlan",
        "id": ctx.resource_id(ctx.url("CarePlan", key)),
        "extension": [complex_extension(ctx.ext(PLAN_EXT), parts)],
        "identifier": [{"system": ctx.codes.local("NamingSystem", "taper-plan"), "value": key}],
        "status": status,
        "intent": "plan",
        "category": [
            concept([coding(ctx.codes.local("CodeSystem", "taper-strategy"), plan.strategy, plan.strategy_name)])
        ],
        "title": f"{plan.strategy_name} taper",
        "description": plan.regimen,
        "subject": ctx.subject(),
        "period": {"start": plan.start.isoformat(), "end": plan.end_date.isoformat()},
        "activity": activity,
        "note": [{"text": w} for w in plan.warnings],
    }
    return _nonempty(careplan)


def _request(ctx: ExportContext, plan: Plan, step: Step, drug: str, status: str, careplan: str, key: str) -> Json:
    parts: list[tuple[str, str, Any]] = [
        ("index", "valueInteger", step.index),
        ("phase", "valueCode", step.phase),
        ("days", "valueInteger", step.days),
        ("diazepamEquivalentMg", "valueDecimal", step.diazepam_equivalent_mg),
        ("override", "valueString", step.override),
    ]
    parts += [("source", "valueString", s) for s in step.sources]
    parts += [("warning", "valueString", w) for w in step.warnings]
    doses = [(i, d) for i, d in enumerate(step.doses, start=1) if d.drug == drug]
    dosage = [_dosage(ctx, step, i, d) for i, d in doses] or [_stop_dosage(step)]
    request: Json = {
        "resourceType": "MedicationRequest",
        "id": ctx.resource_id(ctx.url("MedicationRequest", key, str(step.index), drug)),
        "extension": [complex_extension(ctx.ext(STEP_EXT), parts)],
        "status": status,
        "intent": "plan",
        "doNotPerform": True if not step.doses else None,
        "medicationCodeableConcept": ctx.coder.drug_concept(drug),
        "subject": ctx.subject(),
        "basedOn": [reference(careplan)],
        "groupIdentifier": {"system": ctx.codes.local("NamingSystem", "taper-plan"), "value": key},
        "note": [{"text": step.rule}] if step.rule else None,
        "dosageInstruction": dosage,
    }
    return _nonempty(request)


def _dosage(ctx: ExportContext, step: Step, position: int, dose: Dose) -> Json:
    codes = ctx.codes
    labels = "; ".join(p.label() for p in dose.portions) or f"{dose.mg:g} mg"
    portions = [
        complex_extension(
            ctx.ext(PORTION_EXT),
            [("drug", "valueCode", p.drug), ("form", "valueCode", p.form), ("strength", "valueDecimal", p.strength),
             ("unit", "valueCode", p.unit), ("count", "valueDecimal", p.count), ("ml", "valueDecimal", p.ml)],
        )
        for p in dose.portions
    ]  # fmt: skip
    return {
        "extension": [{"url": ctx.ext(POSITION_EXT), "valueInteger": position}, *portions],
        "sequence": step.index,
        "text": f"{dose.time:%H:%M}: {labels} ({dose.mg:g} mg {dose.drug}) daily from {step.start} to {step.end}",
        "timing": {
            "repeat": {
                "boundsPeriod": {"start": step.start.isoformat(), "end": step.end.isoformat()},
                "frequency": 1,
                "period": 1,
                "periodUnit": "d",
                "timeOfDay": [fhir_time(dose.time)],
            }
        },
        "route": concept([coding(codes.system("snomed"), codes.route_code("oral"), "Oral route")]),
        "doseAndRate": [
            {
                "type": concept([coding(codes.system("dose_rate_type"), "ordered", "Ordered")]),
                "doseQuantity": {"value": dose.mg, "unit": "mg", "system": codes.system("ucum"), "code": "mg"},
            }
        ],
    }


def _stop_dosage(step: Step) -> Json:
    return {
        "sequence": step.index,
        "text": f"stop: no more doses from {step.start}",
        "timing": {"repeat": {"boundsPeriod": {"start": step.start.isoformat()}}},
    }


def _nonempty(resource: Json) -> Json:
    """Drop None, empty strings and empty lists (FHIR forbids empty values)."""
    return {k: v for k, v in resource.items() if v is not None and v != "" and v != []}


def _event_dict(e: Event) -> dict[str, Any]:
    return {"date": e.day.isoformat(), "kind": e.kind, "days": e.days, "instrument": e.instrument,
            "score": e.score, "note": e.note}  # fmt: skip


# ---------------------------------------------------------------- import


def is_plan(careplan: Json, codes: FhirCodes) -> bool:
    """Whether a CarePlan is a benzotaper taper plan."""
    return bool(extensions(careplan, codes.local("StructureDefinition", PLAN_EXT)))


def is_step(request: Json, codes: FhirCodes) -> bool:
    """Whether a MedicationRequest is a step of a benzotaper taper plan."""
    return bool(extensions(request, codes.local("StructureDefinition", STEP_EXT)))


def plan_from_resources(careplan: Json, requests: Sequence[tuple[str, Json]], codes: FhirCodes, where: str) -> Plan:
    """Rebuild a Plan from its CarePlan and step MedicationRequests ((where, resource) pairs, bundle order)."""
    ext = extensions(careplan, codes.local("StructureDefinition", PLAN_EXT))[0]
    strategy = next((c for c in codings((careplan.get("category") or [{}])[0]) if c.get("code")), None)
    if strategy is None:
        raise FhirError(f"{where}.category: the taper strategy code is missing")
    period = careplan.get("period") or {}
    steps = _steps(requests, codes)
    target = sub_value(ext, "target", where, required=False)
    events = sub_values(ext, "event")
    return Plan(
        regimen=str(careplan.get("description", "")),
        strategy=str(strategy["code"]),
        strategy_name=str(strategy.get("display", strategy["code"])),
        table=str(sub_value(ext, "table", where, required=False) or ""),
        start=parse_date(period.get("start"), f"{where}.period.start"),
        steps=steps,
        phases=tuple(_phase(a["detail"], f"{where}.activity") for a in careplan.get("activity", []) if "detail" in a),
        warnings=tuple(str(n.get("text", "")) for n in careplan.get("note", [])),
        target=None if target is None else str(target),
        tolerance=part(ext, "tolerance", where, decimal),
        sources=tuple(str(s) for s in sub_values(ext, "source")),
        overrides=tuple(str(s) for s in sub_values(ext, "override")),
        events=tuple(_event(e, f"{where}: extension {ext.get('url')!r} part 'event'") for e in events),
        parameters=part(ext, "parameters", where, json_object),
    )


def _phase(detail: Json, where: str) -> Phase:
    period = detail.get("scheduledPeriod") or {}
    return Phase(
        name=str((detail.get("code") or {}).get("text", "")),
        start=parse_date(period.get("start"), f"{where}.detail.scheduledPeriod.start"),
        end=parse_date(period.get("end"), f"{where}.detail.scheduledPeriod.end"),
        description=str(detail.get("description", "")),
    )


EVENT_FIELDS: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "kind": (text, None), "days": (whole, 0), "instrument": (text, ""), "score": (decimal, 0.0), "note": (text, ""),
}  # fmt: skip


def _event(raw: Any, where: str) -> Event:
    """An event written as JSON text {"date", "kind", "days", "instrument", "score", "note"}; FhirError otherwise."""
    try:
        event = json_object(raw)
    except ValueError:
        raise FhirError(f"{where}: expected a JSON object as text (got {shown(raw)})") from None
    values: dict[str, Any] = {"day": parse_date(event.get("date"), f"{where}.date")}
    for name, (kind, default) in EVENT_FIELDS.items():
        value = event.get(name, default)
        try:
            values[name] = kind(value)
        except ValueError:
            raise FhirError(f"{where}.{name}: expected {ACCEPTED[kind]} (got {shown(value)})") from None
    return Event(**values)


def _steps(requests: Sequence[tuple[str, Json]], codes: FhirCodes) -> tuple[Step, ...]:
    by_index: dict[int, list[tuple[str, Json, Json]]] = {}
    for where, request in requests:
        ext = extensions(request, codes.local("StructureDefinition", STEP_EXT))[0]
        by_index.setdefault(part(ext, "index", where, whole), []).append((where, request, ext))
    return tuple(_step(index, parts, codes) for index, parts in sorted(by_index.items()))


def _step(index: int, parts: list[tuple[str, Json, Json]], codes: FhirCodes) -> Step:
    where, first, ext = parts[0]
    doses: list[tuple[tuple[int, time, int], Dose]] = []
    start: date | None = None
    for order, (w, request, _) in enumerate(parts):
        drug = code_in(request.get("medicationCodeableConcept"), codes.local("CodeSystem", "drug"))
        if drug is None:
            raise FhirError(f"{w}.medicationCodeableConcept: the local drug code of a taper step is missing")
        for i, d in enumerate(request.get("dosageInstruction", [])):
            bounds = d.get("timing", {}).get("repeat", {}).get("boundsPeriod", {})
            start = start or parse_date(
                bounds.get("start"), f"{w}.dosageInstruction[{i}].timing.repeat.boundsPeriod.start"
            )
            if not request.get("doNotPerform"):
                doses.append(_dose(d, drug, codes, f"{w}.dosageInstruction[{i}]", order))
    if start is None:
        raise FhirError(f"{where}.dosageInstruction: a taper step needs boundsPeriod.start")
    days = part(ext, "days", where, whole)
    if days < 1:
        raise FhirError(f"{where}: extension {STEP_EXT!r} part 'days': a step lasts at least 1 day (got {days})")
    note = first.get("note") or [{}]
    override = sub_value(ext, "override", where, required=False)
    return Step(
        index=index,
        phase=str(sub_value(ext, "phase", where)),
        start=start,
        days=days,
        doses=tuple(d for _, d in sorted(doses, key=lambda x: x[0])),
        diazepam_equivalent_mg=part(ext, "diazepamEquivalentMg", where, decimal),
        rule=str(note[0].get("text", "")),
        sources=tuple(str(s) for s in sub_values(ext, "source")),
        warnings=tuple(str(s) for s in sub_values(ext, "warning")),
        override=None if override is None else str(override),
    )


def _dose(d: Json, drug: str, codes: FhirCodes, where: str, order: int) -> tuple[tuple[int, time, int], Dose]:
    times = d.get("timing", {}).get("repeat", {}).get("timeOfDay") or []
    if len(times) != 1:
        raise FhirError(f"{where}.timing.repeat.timeOfDay: a taper step dose needs exactly one time of day")
    quantity = (d.get("doseAndRate") or [{}])[0].get("doseQuantity") or {}
    if quantity.get("code", quantity.get("unit")) != "mg" or quantity.get("value") is None:
        raise FhirError(f"{where}.doseAndRate[0].doseQuantity: a taper step dose is written in mg (got {quantity!r})")
    mg = float(quantity["value"])
    if not 0 < mg < math.inf:
        raise FhirError(f"{where}.doseAndRate[0].doseQuantity.value: a taper step dose is more than 0 mg (got {mg:g})")
    portions = tuple(_portion(p, where) for p in extensions(d, codes.local("StructureDefinition", PORTION_EXT)))
    positions = [e.get("valueInteger") for e in extensions(d, codes.local("StructureDefinition", POSITION_EXT))]
    position = positions[0] if positions and isinstance(positions[0], int) else 0
    try:
        at = time.fromisoformat(str(times[0]))
    except ValueError:
        raise FhirError(f"{where}.timing.repeat.timeOfDay: expected a time HH:MM:SS (got {shown(times[0])})") from None
    return (position, at, order), Dose(drug, at, mg, portions)


def _portion(ext: Json, where: str) -> Portion:
    amounts = {name: part(ext, name, where, decimal) for name in ("strength", "count", "ml")}
    if any(v < 0 for v in amounts.values()):
        raise FhirError(f"{where}: extension {PORTION_EXT!r}: strength, count and ml are 0 or more (got {amounts})")
    return Portion(drug=str(sub_value(ext, "drug", where)), form=str(sub_value(ext, "form", where)),
                   unit=str(sub_value(ext, "unit", where)), **amounts)  # fmt: skip
