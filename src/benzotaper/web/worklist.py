"""The ward worklist: what needs doing today for the patients of the clinician's care teams, most urgent first.

Kinds: `red_flag` (seizure history, suicidality, opioid or alcohol co-use, a level above the alert),
`sample_overdue` and `sample_due` (the approved plan's trough samples), `replan_waiting` (a drafted re-plan),
`missed_doses` (yesterday's planned doses not confirmed in the diary), `step_starts` (a plan step starting in
the next 7 days). Every item links to the page where it is acted on. The facts come from the same modules
as the patient page (cached per data version).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from benzotaper.web import clinic_clock, patient_alerts, plan_records
from benzotaper.web import models as m
from benzotaper.web.permissions import visible_patients

URGENCY = {
    "red_flag": 90,
    "sample_overdue": 80,
    "replan_waiting": 70,
    "missed_doses": 60,
    "sample_due": 40,
    "step_starts": 30,
}
DUE_AHEAD_DAYS = 7
LABELS = {
    "red_flag": gettext_lazy("red flag"),
    "sample_overdue": gettext_lazy("sample overdue"),
    "replan_waiting": gettext_lazy("re-plan waiting"),
    "missed_doses": gettext_lazy("missed doses"),
    "sample_due": gettext_lazy("sample due"),
    "step_starts": gettext_lazy("step starts"),
}


def _item(patient: m.Patient, kind: str, text: str, url: str, urgency: int | None = None) -> dict[str, Any]:
    return {
        "patient_id": patient.pk,
        "patient": patient.name,
        "kind": kind,
        "label": str(LABELS[kind]),
        "urgency": URGENCY[kind] if urgency is None else urgency,
        "text": text,
        "url": url,
    }


def _flags(patient: m.Patient) -> list[dict[str, Any]]:
    page = reverse("patient", args=[patient.pk])
    out = []
    for alert in patient_alerts.alerts(patient):
        if alert["kind"] in ("red_flag", "co_use") or (alert["kind"] == "level" and alert["severity"] == "critical"):
            bump = 10 if alert["severity"] == "critical" else 0
            out.append(_item(patient, "red_flag", alert["text"], page, URGENCY["red_flag"] + bump))
    return out


def _samples(patient: m.Patient, record: m.Plan | None, now: datetime) -> list[dict[str, Any]]:
    if record is None:
        return []
    last = patient.levels.order_by("-sampled_at").first()
    last_at = clinic_clock.local(last.sampled_at) if last else datetime.min
    url = reverse("level_new", args=[patient.pk])
    out = []
    for advice in record.plan.get("sampling", []):
        due = datetime.fromisoformat(advice["at"])
        if last_at >= due - timedelta(days=1):
            continue
        if due < now:
            out.append(
                _item(patient, "sample_overdue", _("trough level overdue since %(at)s") % {"at": advice["at"]}, url)
            )
        elif due.date() <= now.date() + timedelta(days=DUE_AHEAD_DAYS):
            out.append(_item(patient, "sample_due", _("trough level due %(at)s") % {"at": advice["at"]}, url))
    return out[:1]  # the earliest one: the next sample is what to act on


def _missed(patient: m.Patient, record: m.Plan | None, today: date) -> list[dict[str, Any]]:
    if record is None or patient.user_id is None:
        return []
    yesterday = today - timedelta(days=1)
    step = plan_records.step_on(record.plan, yesterday)
    planned = len(step["doses"]) if step else 0
    if planned == 0:
        return []
    taken = patient.diary.filter(kind="dose", day=yesterday).values("drug", "at").distinct().count()
    if taken >= planned:
        return []
    text = _("%(n)d of %(p)d planned doses not confirmed on %(d)s") % {
        "n": planned - taken,
        "p": planned,
        "d": yesterday.isoformat(),
    }
    return [_item(patient, "missed_doses", text, reverse("patient", args=[patient.pk]))]


def _step(patient: m.Patient, record: m.Plan | None, today: date) -> list[dict[str, Any]]:
    if record is None:
        return []
    end = (today + timedelta(days=DUE_AHEAD_DAYS - 1)).isoformat()
    for step in record.plan.get("steps", []):
        if today.isoformat() <= step["start"] <= end:
            doses = ", ".join(f"{d['time']} {d['drug']} {d['mg']:g} mg" for d in step["doses"]) or _("drug-free")
            text = _("step %(i)s starts %(d)s: %(doses)s") % {"i": step["index"], "d": step["start"], "doses": doses}
            return [_item(patient, "step_starts", text, reverse("plan_detail", args=[patient.pk, record.version]))]
    return []


def patient_items(patient: m.Patient, today: date, now: datetime) -> list[dict[str, Any]]:
    """One patient's worklist items."""
    record = plan_records.approved_plan(patient)
    items = _flags(patient) + _samples(patient, record, now)
    for draft in patient.replans.filter(status="waiting"):
        url = reverse("replan", args=[patient.pk, draft.pk])
        items.append(_item(patient, "replan_waiting", _("re-plan waiting: %(r)s") % {"r": draft.reason}, url))
    return items + _missed(patient, record, today) + _step(patient, record, today)


def items(user: Any) -> list[dict[str, Any]]:
    """The signed-in clinician's items over their care teams' patients, most urgent first."""
    today, now = clinic_clock.today(), timezone.localtime().replace(tzinfo=None)
    out: list[dict[str, Any]] = []
    for patient in visible_patients(user).order_by("name"):
        out += patient_items(patient, today, now)
    return sorted(out, key=lambda i: (-i["urgency"], i["patient"], i["kind"]))
