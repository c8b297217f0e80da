"""The patient's diary: today's planned doses to confirm or correct, a daily check-in, notes, crisis help.

Built for a phone screen. Entries are plain records, so they appear on the clinician's chart at once.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Max, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from benzotaper.web import clinic_clock, kb, page_cache, plan_records, safety
from benzotaper.web import forms as f
from benzotaper.web import models as m
from benzotaper.web.permissions import role
from benzotaper.web.views import _assessment


def own_patient(request: HttpRequest) -> m.Patient:
    """The logged-in patient's own record (nobody else has a diary page)."""
    if role(request.user) != "patient":
        raise PermissionDenied("the diary is for patients; clinicians see it on the patient page")
    patient = m.Patient.objects.filter(user=request.user).first()
    if patient is None:
        raise PermissionDenied("this account is not linked to a patient record")
    return patient


def todays_doses(patient: m.Patient, step: dict[str, Any] | None) -> list[dict[str, object]]:
    """Today's doses from the approved plan's `step`, each with the newest record of it (`taken_mg`).

    The database picks the newest entry per drug and time, so the cost does not grow with repeated taps.
    """
    newest = (
        patient.diary.filter(kind="dose", day=clinic_clock.today())
        .order_by()
        .values("drug", "at")
        .annotate(last=Max("id"))
        .values("last")
    )
    zone = timezone.get_current_timezone()
    taken = {
        (drug, at.astimezone(zone).strftime("%H:%M")): {"taken_mg": mg}
        for drug, at, mg in m.DiaryEntry.objects.filter(id__in=Subquery(newest)).values_list("drug", "at", "taken_mg")
    }
    return [
        {**dose, "entry": taken.get((dose["drug"], dose["time"]))}
        for dose in sorted((step or {}).get("doses", []), key=lambda d: (d["time"], d["drug"]))
    ]


@login_required
def diary(request: HttpRequest) -> HttpResponse:
    """Today's page of the diary."""
    patient = own_patient(request)
    plan = plan_records.todays_plan(patient, page_cache.page_keys(patient).data)
    context = {
        "patient": patient,
        "doses": todays_doses(patient, plan["step"] if plan else None),
        "plan": plan,
        "checkin": f.CheckinForm(),
        "entries": patient.diary.order_by("-at")[:10],  # a phone screen; the clinician sees all
        "help": safety.crisis_for(patient).to_dict(kb.safety_net()),
        "today": clinic_clock.today(),
    }
    return render(request, "web/diary.html", context)


def _report(request: HttpRequest, form: Any) -> None:
    """A refused diary form's errors as messages, each with the field's label."""
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        messages.error(request, f"{label or field}: {' '.join(errors)}")


@require_POST
@login_required
def diary_dose(request: HttpRequest) -> HttpResponse:
    """Confirm a planned dose (taken as planned) or record the amount actually taken."""
    patient = own_patient(request)
    form = f.DoseForm(request.POST)
    if not form.is_valid():
        _report(request, form)
        return redirect("diary")
    d = form.cleaned_data
    try:
        clock = time.fromisoformat(d["time"])
    except ValueError:
        messages.error(request, _("time must be HH:MM"))
        return redirect("diary")
    when = timezone.make_aware(datetime.combine(clinic_clock.today(), clock))
    m.DiaryEntry.objects.create(
        patient=patient,
        day=clinic_clock.today(),
        at=when,
        kind="dose",
        drug=d["drug"],
        planned_mg=d["planned_mg"],
        taken_mg=d["taken_mg"],
        created_by=request.user,
    )
    messages.success(request, _("Dose recorded."))
    return redirect("diary")


@require_POST
@login_required
def diary_checkin(request: HttpRequest) -> HttpResponse:
    """How the patient feels today, with a note."""
    patient = own_patient(request)
    form = f.CheckinForm(request.POST)
    if not form.is_valid():
        _report(request, form)
        return redirect("diary")
    m.DiaryEntry.objects.create(
        patient=patient,
        day=clinic_clock.today(),
        at=timezone.now(),
        kind="checkin",
        feeling=form.cleaned_data["feeling"],
        note=form.cleaned_data["note"],
        created_by=request.user,
    )
    messages.success(request, _("Thank you. Your check-in is saved."))
    return redirect("diary")


@login_required
def diary_bwsq(request: HttpRequest) -> HttpResponse:
    """The BWSQ questionnaire from the diary (scored by the core; shown on the clinician's chart)."""
    patient = own_patient(request)
    return _assessment(request, patient, "bwsq", "diary", "diary")
