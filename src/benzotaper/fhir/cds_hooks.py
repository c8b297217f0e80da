"""CDS Hooks 2.0 service logic as pure functions: discovery, order-sign and order-select (the web app adds HTTP).

A request {hook, hookInstance, context: {userId, patientId, draftOrders (Bundle), selections?}, prefetch} gives
{"cards": [...]}: one card per finding for the draft benzodiazepine or Z-drug orders (long-term use, escalating
dose, high diazepam-equivalent dose, opioid co-prescription, interdose-withdrawal risk; an order benzotaper could
not read gets an 'info' card). Draft orders of other drugs give {"cards": []}. Each card links to the taper planner
for the patient. A malformed request raises FhirError naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from benzotaper.errors import FhirError
from benzotaper.fhir.cds_rules import Finding, Situation, findings
from benzotaper.fhir.codes import Coder
from benzotaper.fhir.elements import Json, parse_date, uid
from benzotaper.fhir.importer import import_bundle
from benzotaper.fhir.records import CoMedication, ImportResult, MedicationRecord
from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.knowledge.fhir_codes import load_fhir_codes
from benzotaper.knowledge.safety_net import load_safety_net

ORDER_SIGN, ORDER_SELECT = "order-sign", "order-select"
PLANNER_PATH = "/patients/{patient_id}/plan/"
SUMMARY_MAX = 140
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}&status=active",
    "history": "MedicationRequest?patient={{context.patientId}}&intent=order",
    "statements": "MedicationStatement?patient={{context.patientId}}",
}
NOT_A_BZD = "no benzodiazepine or Z-drug"


def discovery() -> dict[str, Any]:
    """The CDS Hooks discovery document: one service per hook, with prefetch templates."""
    codes = load_fhir_codes()
    description = (
        "Checks a draft benzodiazepine or Z-drug order against the medication history: long-term use, escalating "
        "dose, high diazepam-equivalent dose, opioid co-prescription and interdose-withdrawal risk; links to the "
        "taper planner. Other orders get no card."
    )
    return {
        "services": [
            {"hook": hook, "id": f"benzotaper-{hook}", "title": codes.cds_title, "description": description,
             "prefetch": dict(PREFETCH)}
            for hook in (ORDER_SIGN, ORDER_SELECT)
        ]
    }  # fmt: skip


def order_sign(
    request: Any,
    *,
    knowledge: Knowledge | None = None,
    today: date | None = None,
    base_url: str = "http://localhost:8000",
    link_type: str = "absolute",
) -> dict[str, Any]:
    """Cards for the draft orders of an order-sign request."""
    return _respond(request, ORDER_SIGN, knowledge, today, base_url, link_type)


def order_select(
    request: Any,
    *,
    knowledge: Knowledge | None = None,
    today: date | None = None,
    base_url: str = "http://localhost:8000",
    link_type: str = "absolute",
) -> dict[str, Any]:
    """Cards for the selected draft orders (context.selections) of an order-select request."""
    return _respond(request, ORDER_SELECT, knowledge, today, base_url, link_type)


def _text(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FhirError(f"{where}{key}: expected a non-empty string (got {value!r})")
    return value


def _respond(
    request: Any, hook: str, knowledge: Knowledge | None, today: date | None, base_url: str, link_type: str
) -> dict[str, Any]:
    if link_type not in ("absolute", "smart"):
        raise FhirError(f"link_type must be 'absolute' or 'smart' (got {link_type!r})")
    if not isinstance(request, Mapping):
        raise FhirError(f"request: expected a JSON object (got {type(request).__name__})")
    if request.get("hook") != hook:
        raise FhirError(f"hook: expected {hook!r} (got {request.get('hook')!r})")
    instance = _text(request, "hookInstance", "")
    context = request.get("context")
    if not isinstance(context, Mapping):
        raise FhirError(f"context: expected an object with userId, patientId and draftOrders (got {context!r})")
    _text(context, "userId", "context.")
    patient_id = _text(context, "patientId", "context.")
    drafts = context.get("draftOrders")
    if not isinstance(drafts, Mapping) or drafts.get("resourceType") != "Bundle":
        raise FhirError("context.draftOrders: expected a FHIR Bundle of draft orders")
    drafts = _selected(drafts, context.get("selections")) if hook == ORDER_SELECT else dict(drafts)
    drafts = _with_subject(drafts, patient_id)
    prefetch = request.get("prefetch")
    prefetch = {} if prefetch is None else prefetch
    if not isinstance(prefetch, Mapping):
        raise FhirError(f"prefetch: expected an object (got {type(prefetch).__name__})")
    knowledge = knowledge or load_knowledge()
    coder = Coder(knowledge)
    situation, unread = _situation(knowledge, coder, patient_id, drafts, prefetch, today)
    if situation is None:
        return {"cards": []}
    cards = [_card(f, instance, patient_id, base_url, link_type) for f in findings(situation, unread)]
    return {"cards": cards}


def _selected(drafts: Mapping[str, Any], selections: Any) -> Json:
    if not isinstance(selections, list) or not all(isinstance(s, str) and "/" in s for s in selections):
        raise FhirError(f"context.selections: expected a list such as ['MedicationRequest/123'] (got {selections!r})")
    wanted = set(selections)
    entries = [e for e in drafts.get("entry", []) if isinstance(e, Mapping) and _key(e.get("resource")) in wanted]
    return {**drafts, "entry": entries}


def _with_subject(drafts: Json, patient_id: str) -> Json:
    """Draft orders without a subject belong to the patient in context (context.patientId)."""
    entries = []
    for e in drafts.get("entry", []):
        resource = e.get("resource") if isinstance(e, Mapping) else None
        if isinstance(resource, Mapping) and "subject" not in resource:
            e = {**e, "resource": {**resource, "subject": {"reference": f"Patient/{patient_id}"}}}
        entries.append(e)
    return {**drafts, "entry": entries}


def _key(resource: Any) -> str:
    """'MedicationRequest/123' for a resource."""
    return f"{resource.get('resourceType')}/{resource.get('id')}" if isinstance(resource, Mapping) else ""


def _read(bundle: Any, knowledge: Knowledge, coder: Coder, where: str) -> ImportResult:
    try:
        return import_bundle(bundle, knowledge, coder=coder)
    except FhirError as exc:
        raise FhirError(f"{where}: {exc}") from None


def _situation(
    knowledge: Knowledge, coder: Coder, patient_id: str, drafts: Json, prefetch: Mapping[str, Any], today: date | None
) -> tuple[Situation | None, list[str]]:
    draft = _read(drafts, knowledge, coder, "context.draftOrders")
    records = [m for p in draft.patients if p.patient.id == patient_id for m in p.medications]
    unread = [
        f"{u.resource}: {u.reason}" for u in draft.unmapped
        if u.resource.startswith("MedicationRequest") and not u.reason.startswith(NOT_A_BZD)
    ]  # fmt: skip
    if not records and not unread:
        return None, []
    history: list[MedicationRecord] = []
    co: list[CoMedication] = [c for p in draft.patients if p.patient.id == patient_id for c in p.co_medications]
    drafted = {m.source for m in records}
    for key, value in prefetch.items():
        if isinstance(value, Mapping) and value.get("resourceType") == "Bundle":
            read = _read(value, knowledge, coder, f"prefetch.{key}")
            for p in read.patients:
                if p.patient.id == patient_id:
                    history += [m for m in p.medications if m.source not in drafted and m not in history]
                    co += [c for c in p.co_medications if c not in co]
    when = _today(today, drafts, records)
    return Situation(
        knowledge, coder.cohort, load_safety_net(), tuple(records), tuple(history), tuple(co), when
    ), unread


def _today(today: date | None, drafts: Json, records: list[MedicationRecord]) -> date:
    """The order date: the argument, else the first draft's authoredOn, else today; never before a draft starts."""
    if today is None:
        authored = [
            e["resource"]["authoredOn"] for e in drafts.get("entry", []) if e.get("resource", {}).get("authoredOn")
        ]
        today = parse_date(authored[0], "context.draftOrders.entry.resource.authoredOn") if authored else date.today()
    starts = [r.start for m in records for r in m.regimens]
    return max([today, min(starts)]) if starts else today


def _card(finding: Finding, instance: str, patient_id: str, base_url: str, link_type: str) -> Json:
    codes = load_fhir_codes()
    summary = finding.summary if len(finding.summary) < SUMMARY_MAX else finding.summary[: SUMMARY_MAX - 2] + "…"
    url = base_url.rstrip("/") + PLANNER_PATH.format(patient_id=patient_id)
    return {
        "uuid": uid(instance, finding.rule, finding.summary),
        "summary": summary,
        "indicator": codes.cds_indicator[finding.rule],
        "detail": finding.detail,
        "source": {
            "label": "benzotaper",
            "topic": {"code": finding.rule, "system": codes.local("CodeSystem", "cds-rule")},
        },
        "links": [{"label": "Plan a gradual taper in benzotaper", "url": url, "type": link_type}],
    }
