"""Re-planning as a proposal: new data while a plan is approved drafts a re-plan; a clinician approves or discards.

Triggers (saved records): a serum level (guided plans only: a fixed preset does not follow levels), a
CIWA-B score that reaches a hold rule of taper.toml, a hold or a return. The draft is the core's re-plan
(`tdm.replan_guided` for guided plans, `taper.replan` for presets), compared with the approved version day
by day. Nothing changes for the patient until a clinician approves it: approval freezes the next plan
version exactly as the plan builder does, and is refused once the patient's data changed after drafting.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.db.models.signals import post_save
from django.utils import timezone

from benzotaper.errors import BenzotaperError
from benzotaper.taper.plan import Event, Plan
from benzotaper.taper.replan import action_for
from benzotaper.tdm.replan_guided import original_patient, replan_guided
from benzotaper.web import clinic_clock, kb, plan_records
from benzotaper.web import guided as g
from benzotaper.web import models as m

log = logging.getLogger(__name__)
INPUTS = ("Patient", "Regimen", "Level", "Assessment", "Symptom", "Treatment", "Hold", "Plan")


class ReplanConflict(BenzotaperError):
    """A re-plan that can no longer be approved or discarded (decided already, or the data changed since)."""


# --- triggers ------------------------------------------------------------------------------------------


def trigger_of(instance: Any) -> tuple[dict[str, Any], Event | None] | None:
    """What a saved record asks of the plan: (description, planner event), or None if nothing."""
    if isinstance(instance, m.Level):
        at = clinic_clock.local(instance.sampled_at)
        value = f"{instance.value_ng_ml:g} ng/mL" if instance.value_ng_ml is not None else "below the LLOQ"
        text = f"new {instance.analyte} level {value} on {at:%Y-%m-%d %H:%M}"
        return {"model": "Level", "id": instance.pk, "kind": "level", "day": at.date().isoformat(), "text": text}, None
    if isinstance(instance, m.Assessment) and instance.instrument == "ciwa_b":
        day = clinic_clock.local(instance.taken_at).date()
        event = Event(day=day, kind="score", instrument="ciwa_b", score=float(instance.total))
        text = f"CIWA-B {instance.total} on {day}"
        return {"model": "Assessment", "id": instance.pk, "kind": "score", "day": day.isoformat(), "text": text}, event
    if isinstance(instance, m.Hold):
        event = Event(day=instance.day, kind=instance.kind, days=instance.days, note=instance.reason)
        text = f"{instance.kind} from {instance.day} ({instance.days} days): {instance.reason}"
        return {
            "model": "Hold",
            "id": instance.pk,
            "kind": instance.kind,
            "day": instance.day.isoformat(),
            "text": text,
        }, event
    return None


def _saved(sender: type[Any], instance: Any, created: bool, **_: Any) -> None:
    if not created:
        return
    try:
        draft_after(instance)
    except Exception:  # a draft is advice on top of the write: a fault here must never lose the record saved
        log.exception("re-planning failed after %s %s", sender.__name__, instance.pk)


def connect() -> None:
    """Draft a re-plan whenever a level, a score or a hold is recorded (pages, API and imports alike)."""
    for model in (m.Level, m.Assessment, m.Hold):
        post_save.connect(_saved, sender=model, dispatch_uid=f"replan-after-{model.__name__}")


def draft_after(instance: Any) -> m.Replan | None:
    """The re-plan a new record calls for, saved as a waiting draft (None when it changes nothing)."""
    found = trigger_of(instance)
    patient: m.Patient | None = getattr(instance, "patient", None)
    if found is None or patient is None:
        return None
    record = plan_records.approved_plan(patient)
    if record is None:
        return None
    trigger, event = found
    if event is not None and event.day < clinic_clock.today():
        # Recorded late: the hold starts today; the days already taken stay as they were.
        late = f"{event.kind} of {event.day}, applied from the day it was recorded"
        event = replace(event, day=clinic_clock.today(), note="; ".join(x for x in (event.note, late) if x))
    try:
        new, options = replanned(patient, record, trigger, event)
    except BenzotaperError as exc:
        log.info("no re-plan for patient %s after %s: %s", patient.pk, trigger["text"], exc)
        return None
    if new is None:
        return None
    payload = plan_records.plan_payload(new)
    changes = compare(record.plan, payload)
    if not changes:
        return None
    reason = f"{trigger['text']}: {changes[0]['rule']}"
    for older in m.Replan.objects.filter(patient=patient, status="waiting"):
        older.status = "superseded"
        older.save(update_fields=["status"])  # one by one, so each gets its audit entry (a queryset update gets none)
    return m.Replan.objects.create(
        patient=patient,
        based_on_version=record.version,
        reason=reason[:500],
        trigger=trigger,
        options=options,
        plan=payload,
        changes=changes,
        audit_mark=audit_mark(patient),
    )


def replanned(
    patient: m.Patient, record: m.Plan, trigger: dict[str, Any], event: Event | None
) -> tuple[Plan | None, dict[str, Any]]:
    """The core's re-plan of the approved version after the trigger, and the options to store with it."""
    options = dict(record.options)
    if event is not None and action_for(kb.knowledge(), event).kind == "none":
        return None, options  # e.g. a CIWA-B score below every hold rule's threshold
    if g.is_guided(options):
        return _guided(patient, record, trigger, event), options
    if event is None:
        return None, options  # a fixed preset does not follow levels: the fit shows them
    events = [*_stored_events(record), event]
    plan = plan_records.build_plan(record.sig, options, events)
    options["events"] = plan.to_dict()["events"]
    options["replanned"] = True  # read back from its JSON: the stored events carry scores the rebuild would drop
    return plan, options


def _stored_events(record: m.Plan) -> list[Event]:
    return [
        Event(
            day=date.fromisoformat(e["date"]),
            kind=e["kind"],
            days=e.get("days", 0),
            instrument=e.get("instrument", ""),
            score=float(e.get("score", 0.0)),
            note=e.get("note", ""),
        )
        for e in record.options.get("events", [])
    ]


def _guided(patient: m.Patient, record: m.Plan, trigger: dict[str, Any], event: Event | None) -> Plan:
    guided = record.options["guided"]
    since = date.fromisoformat(guided["since"])
    options = plan_records.plan_options(record.options)
    plan = g.stored_guided_plan(record)
    k = kb.knowledge()
    first = original_patient(k, g.samples_from(guided["levels"]), record.sig, since, plan, options)
    on = max(clinic_clock.today(), date.fromisoformat(trigger["day"]))
    samples = g.current_samples(patient, since)
    new, _ = replan_guided(k, first, plan, samples, on, options, g.trajectory_of(guided), event)
    return new


# --- comparison ----------------------------------------------------------------------------------------


def _daily(plan_json: dict[str, Any]) -> dict[str, dict[str, tuple[float, str]]]:
    """Per day (ISO) and drug: the day's mg and its doses as text."""
    out: dict[str, dict[str, tuple[float, str]]] = defaultdict(dict)
    for step in plan_json.get("steps", []):
        start, n = date.fromisoformat(step["start"]), int(step["days"])
        per: dict[str, list[str]] = defaultdict(list)
        for d in step["doses"]:
            per[d["drug"]].append(f"{d['time']} {d['mg']:g} mg")
        for k in range(n if step["doses"] else 0):
            day = (start + timedelta(days=k)).isoformat()
            for drug, mg in step["daily_mg"].items():
                out[day][drug] = (round(float(mg), 4), ", ".join(per[drug]))
    return out


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """What changes from which day, dose by dose: runs of days where a drug's doses differ between versions."""
    old, new = _daily(before), _daily(after)
    first = min(date.fromisoformat(after["start"]), date.fromisoformat(before["start"]))
    last = max(date.fromisoformat(after["end_date"]), date.fromisoformat(before["end_date"]))
    rules = {s["start"]: (s["rule"], s["sources"]) for s in after.get("steps", [])}
    changes: list[dict[str, Any]] = []
    open_runs: dict[str, dict[str, Any]] = {}
    rule: tuple[str, list[str]] = ("", [])
    for k in range((last - first).days + 1):
        day = (first + timedelta(days=k)).isoformat()
        rule = rules.get(day, rule)
        for drug in sorted({*old.get(day, {}), *new.get(day, {}), *open_runs}):
            b, a = old.get(day, {}).get(drug, (0.0, "")), new.get(day, {}).get(drug, (0.0, ""))
            run = open_runs.get(drug)
            if run is not None and (run["before_mg"], run["after_mg"], run["before_doses"], run["after_doses"]) == (
                b[0],
                a[0],
                b[1],
                a[1],
            ):
                run["to_date"] = day
                continue
            if run is not None:
                del open_runs[drug]
            if b != a:
                run = {
                    "from_date": day,
                    "to_date": day,
                    "drug": drug,
                    "before_mg": b[0],
                    "after_mg": a[0],
                    "before_doses": b[1],
                    "after_doses": a[1],
                    "rule": rule[0],
                    "sources": list(rule[1]),
                }
                open_runs[drug] = run
                changes.append(run)
    return changes


# --- decisions -----------------------------------------------------------------------------------------


def audit_mark(patient: m.Patient) -> int:
    """The newest audit entry of the patient's clinical inputs (a later one makes a draft stale)."""
    found = m.AuditEntry.objects.filter(patient_id=patient.pk, model__in=INPUTS).aggregate(v=Max("id"))["v"]
    return int(found or 0)


def stale_reason(draft: m.Replan) -> str | None:
    """Why the draft may no longer be approved, or None while it is current."""
    if draft.status != "waiting":
        return f"this re-plan was already {draft.status}"
    newest = plan_records.approved_plan(draft.patient)
    if newest is None or newest.version != draft.based_on_version:
        return (
            f"the approved plan is now version {newest.version if newest else '-'}, not version "
            f"{draft.based_on_version} this re-plan was drafted from"
        )
    if audit_mark(draft.patient) > draft.audit_mark:
        return "the patient's records changed after this re-plan was drafted; review the new data and re-plan"
    return None


def approve(draft_id: int, patient: m.Patient, user: Any) -> m.Plan:
    """Freeze the draft as the next plan version (refused with ReplanConflict once stale); audited."""
    with transaction.atomic():
        m.Patient.objects.select_for_update().filter(pk=patient.pk).first()
        draft = m.Replan.objects.select_for_update().filter(pk=draft_id, patient=patient).first()
        if draft is None:
            raise ReplanConflict(f"re-plan {draft_id} does not exist for this patient")
        why = stale_reason(draft)
        if why is not None:
            raise ReplanConflict(f"re-plan {draft_id} cannot be approved: {why}")
        latest = m.Plan.objects.filter(patient=patient).aggregate(v=Max("version"))["v"] or 0
        base = m.Plan.objects.get(patient=patient, version=draft.based_on_version)
        record = m.Plan.objects.create(
            patient=patient,
            version=latest + 1,
            status="approved",
            sig=base.sig,
            options=draft.options,
            plan=draft.plan,
            approved_by=user,
            approved_at=timezone.now(),
        )
        draft.status, draft.version, draft.decided_by, draft.decided_at = (
            "approved",
            record.version,
            user,
            timezone.now(),
        )
        draft.save()
        return record


def discard(draft_id: int, patient: m.Patient, user: Any) -> m.Replan:
    """Set the draft aside (the approved plan stays in force); audited."""
    with transaction.atomic():
        draft = m.Replan.objects.select_for_update().filter(pk=draft_id, patient=patient).first()
        if draft is None:
            raise ReplanConflict(f"re-plan {draft_id} does not exist for this patient")
        if draft.status != "waiting":
            raise ReplanConflict(f"re-plan {draft_id} cannot be discarded: it was already {draft.status}")
        draft.status, draft.decided_by, draft.decided_at = "discarded", user, timezone.now()
        draft.save()
        return draft


def waiting(patient: m.Patient) -> list[m.Replan]:
    """The patient's drafts waiting for a decision (newest first)."""
    return list(patient.replans.filter(status="waiting"))


def as_json(draft: m.Replan) -> dict[str, Any]:
    """The API's shape of a draft."""
    return {
        "id": draft.pk,
        "patient_id": draft.patient_id,
        "status": draft.status,
        "reason": draft.reason,
        "trigger": draft.trigger,
        "based_on_version": draft.based_on_version,
        "changes": draft.changes,
        "created": draft.created.isoformat() if isinstance(draft.created, datetime) else str(draft.created),
        "stale": stale_reason(draft) if draft.status == "waiting" else None,
        "version": draft.version,
        "plan": draft.plan,
    }
