"""Clinician pages: patient list, patient page, record forms, plan builder and audit trail."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.defaults import page_not_found

from benzotaper.errors import BenzotaperError
from benzotaper.web import (
    charts,
    clinic_clock,
    kb,
    page_cache,
    patient_alerts,
    patient_summary,
    plan_records,
    prescriptions,
    safety,
)
from benzotaper.web import forms as f
from benzotaper.web import models as m
from benzotaper.web.permissions import patient_for, require_clinician, role, visible_patients

View = Callable[..., HttpResponse]


def clinician(view: View) -> View:
    """Login required, clinicians and admins only."""

    @login_required
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        require_clinician(request.user)
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database check for load balancers and the serve command."""
    m.CareTeam.objects.exists()
    return JsonResponse({"status": "ok"})


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404: under /api/ in the API's JSON shape (a path no route matches, e.g. a non-numeric id), else Django's."""
    if request.path.startswith("/api/"):
        detail = f"no API route for {request.method} {request.path}; ids are numbers, routes are listed at /api/docs"
        return JsonResponse({"detail": detail}, status=404)
    return page_not_found(request, exception or Http404())


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Patients go to their diary, clinicians to their worklist, admins to the patient list."""
    if role(request.user) == "patient":
        return redirect("diary")
    if role(request.user) == "clinician":
        return redirect("worklist")
    return redirect("patients")


def crisis(request: HttpRequest) -> HttpResponse:
    """Crisis and support information (open to everyone, logged in or not)."""
    code = request.GET.get("country", "").upper()
    help_ = safety.crisis_for(None)
    if code:
        with suppress(BenzotaperError):
            help_ = safety.crisis_help_code(code)
    return render(request, "web/crisis.html", {"help": help_.to_dict(kb.safety_net())})


@require_POST
@login_required
def set_language(request: HttpRequest) -> HttpResponse:
    """Save the chosen interface language in the user's profile."""
    code = request.POST.get("language", "en")
    if code in dict(interface_languages()):
        profile, _created = m.Profile.objects.get_or_create(user=request.user)
        profile.language = code
        profile.save(update_fields=["language"])
    nxt = request.POST.get("next") or "/"
    return redirect(nxt if nxt.startswith("/") and not nxt.startswith("//") else "/")


def interface_languages() -> list[tuple[str, str]]:
    from django.conf import settings

    return list(settings.LANGUAGES)


@clinician
def patient_list(request: HttpRequest) -> HttpResponse:
    """The care team's patients, searchable, each with its alerts."""
    query = request.GET.get("q", "").strip()
    patients = visible_patients(request.user).select_related("team")
    if query:
        patients = patients.filter(Q(name__icontains=query) | Q(identifier__icontains=query))
    rows = [{"patient": p, "alerts": patient_alerts.alerts(p)} for p in patients[:200]]
    rows.sort(key=lambda r: (-len([a for a in r["alerts"] if a["severity"] == "critical"]), -len(r["alerts"])))
    return render(request, "web/patient_list.html", {"rows": rows, "q": query})


def _teams(request: HttpRequest) -> Any:
    if role(request.user) == "admin":
        return m.CareTeam.objects.all()
    return m.CareTeam.objects.filter(members=request.user.profile)


@clinician
def patient_new(request: HttpRequest) -> HttpResponse:
    """Create a patient in one of the clinician's care teams."""
    form = f.PatientForm(request.POST or None, teams=_teams(request))
    if request.method == "POST" and form.is_valid():
        patient = form.save()
        messages.success(request, _("Patient created. Now record the current regimen."))
        return redirect("regimen_new", patient.pk)
    return render(request, "web/form.html", {"form": form, "title": _("New patient")})


@clinician
def patient_edit(request: HttpRequest, pid: int) -> HttpResponse:
    """Edit identity, indication and risk factors."""
    patient = patient_for(request.user, pid, write="record")
    form = f.PatientForm(request.POST or None, instance=patient, teams=_teams(request))
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect("patient", pid)
    return render(request, "web/form.html", {"form": form, "patient": patient, "title": _("Edit patient")})


@clinician
def patient_page(request: HttpRequest, pid: int) -> HttpResponse:
    """Everything about one patient on one page."""
    patient = patient_for(request.user, pid)
    keys = page_cache.page_keys(patient)
    # Lazy: a warm page renders from cached fragments and never touches these.
    context = {
        "patient": patient,
        "page": SimpleLazyObject(lambda: patient_summary.page_data(patient, keys.data)),
        "data_key": keys.data,
        "diary_key": keys.diary,
        "diary_json": lambda: charts.diary_json(patient),
        "regimens": patient.regimens.all(),
        "assessments": patient.assessments.order_by("-taken_at")[:20],
        "symptoms": patient.symptoms.all(),
        "holds": patient.holds.all(),
        "plans": patient.plans.only("version", "status", "approved_at"),
        "diary": patient.diary.order_by("-at")[:15],
        "instruments": [("ciwa_b", "CIWA-B"), ("bwsq", "BWSQ"), ("sds", "SDS")],
    }
    return render(request, "web/patient.html", context)


@clinician
def regimen_new(request: HttpRequest, pid: int) -> HttpResponse:
    """Record a regimen: first the parse is shown back, then it is saved on confirmation."""
    patient = patient_for(request.user, pid, write="record")
    initial = {"start": clinic_clock.today()}
    form = f.RegimenForm(request.POST or None, initial=initial)
    preview = None
    if request.method == "POST" and form.is_valid():
        preview = form.cleaned_data["preview"]
        if request.POST.get("action") == "save":
            with transaction.atomic():
                m.Regimen.objects.create(
                    patient=patient,
                    sig=form.cleaned_data["sig"],
                    start=form.cleaned_data["start"],
                    end=form.cleaned_data.get("end"),
                    parsed=preview,
                    daily_de_mg=preview["diazepam_mg"],
                )
            messages.success(request, _("Regimen saved."))
            return redirect("patient", pid)
    return render(request, "web/regimen_form.html", {"form": form, "patient": patient, "preview": preview})


@clinician
def level_new(request: HttpRequest, pid: int) -> HttpResponse:
    """Record a serum level (converted to ng/mL by the core, implausible values refused)."""
    patient = patient_for(request.user, pid, write="record")
    form = f.LevelForm(
        request.POST or None, initial={"sampled_at": timezone.localtime().replace(second=0, microsecond=0)}
    )
    if request.method == "POST" and form.is_valid():
        s = form.cleaned_data["sample"]
        tz = timezone.get_current_timezone()
        m.Level.objects.create(
            patient=patient,
            analyte=s.analyte,
            sampled_at=timezone.make_aware(s.sampled_at, tz),
            value_ng_ml=s.value,
            lloq_ng_ml=s.lloq,
            last_dose_at=timezone.make_aware(s.last_dose_at, tz) if s.last_dose_at else None,
            lab=s.lab,
            method=s.method,
        )
        messages.success(request, _("Level saved."))
        return redirect("patient", pid)
    return render(request, "web/form.html", {"form": form, "patient": patient, "title": _("Record a serum level")})


def _assessment(request: HttpRequest, patient: m.Patient, instrument: str, source: str, done: str) -> HttpResponse:
    if instrument not in kb.instruments():
        raise PermissionDenied("unknown instrument")
    form = f.AssessmentForm(instrument, request.POST or None, initial={"taken_at": timezone.localtime()})
    if request.method == "POST" and form.is_valid():
        result = form.cleaned_data["result"]
        m.Assessment.objects.create(
            patient=patient,
            instrument=instrument,
            taken_at=form.cleaned_data["taken_at"],
            answers=form.cleaned_data["answers"],
            total=result["total"],
            band=result["band"],
            source=source,
        )
        messages.success(
            request,
            _("%(name)s saved: score %(total)d %(band)s")
            % {"name": instrument.upper(), "total": result["total"], "band": result["band"]},
        )
        return redirect(done, patient.pk) if done == "patient" else redirect(done)
    meta = kb.instruments()[instrument]
    return render(request, "web/assessment_form.html", {"form": form, "patient": patient, "instrument": meta})


@clinician
def assessment_new(request: HttpRequest, pid: int, instrument: str) -> HttpResponse:
    """Score a CIWA-B, BWSQ or SDS with the core."""
    patient = patient_for(request.user, pid, write="record")
    return _assessment(request, patient, instrument, "clinic", "patient")


@clinician
def symptom_new(request: HttpRequest, pid: int) -> HttpResponse:
    """Record a symptom for the mirror analysis."""
    patient = patient_for(request.user, pid, write="record")
    form = f.SymptomForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        symptom = form.save(commit=False)
        symptom.patient = patient
        symptom.save()
        return redirect("patient", pid)
    return render(request, "web/form.html", {"form": form, "patient": patient, "title": _("Record a symptom")})


@clinician
def hold_new(request: HttpRequest, pid: int) -> HttpResponse:
    """Record a hold or a return to the previous step (the next plan version applies it)."""
    patient = patient_for(request.user, pid, write="record")
    form = f.HoldForm(request.POST or None, initial={"day": clinic_clock.today(), "kind": "hold"})
    if request.method == "POST" and form.is_valid():
        hold = form.save(commit=False)
        hold.patient = patient
        hold.save()
        messages.info(request, _("Hold recorded. Build a new plan version to apply it."))
        return redirect("plan_builder", pid)
    return render(request, "web/form.html", {"form": form, "patient": patient, "title": _("Hold or step back")})


@clinician
def plan_builder(request: HttpRequest, pid: int) -> HttpResponse:
    """Choose a strategy, see the plan and its chart, adjust, approve (a new frozen version)."""
    patient = patient_for(request.user, pid, write="record")
    sig = prescriptions.current_sig(patient)
    form = f.PlanForm(
        request.POST or None, initial={"strategy": "ashton", "start": clinic_clock.today(), "switch": "auto"}
    )
    context: dict[str, Any] = {"patient": patient, "form": form, "sig": sig}
    if not sig:
        messages.warning(request, _("Record the current regimen first."))
        return redirect("regimen_new", pid)
    if request.method == "POST" and form.is_valid():
        options = form.options()
        events = plan_records.hold_events(patient)
        try:
            plan = plan_records.build_plan(sig, options, events)
        except BenzotaperError as exc:
            form.add_error(_plan_field(str(exc), form.fields), str(exc))
            return render(request, "web/plan_builder.html", context)
        payload = plan_records.plan_payload(plan)
        if request.POST.get("action") == "approve":
            record = _approve(request, patient, sig, options, events, payload)
            messages.success(request, _("Plan version %(v)d approved.") % {"v": record.version})
            return redirect("plan_detail", pid, record.version)
        context.update(plan=payload, figure=charts.plan_figure(plan))
    return render(request, "web/plan_builder.html", context)


# Core plan messages that name an option in words of their own (or by the CLI flag it maps to), by field.
_PLAN_FIELD_WORDS = {
    "override_reason": ("override of the safety limits",),
    "end_by": ("ends by",),
    "level_fall": ("faster fall",),
    "start": ("the plan starts", "--since", "before the samples"),
    "switch": ("no product allows the next guided step",),
}
_PLAN_FIELDS = (
    "override_reason",
    "end_by",
    "fraction",
    "interval_days",
    "level_fall",
    "strategy",
    "to",
    "switch",
    "market",
    "start",
)


def _plan_field(message: str, fields: Any = None) -> str | None:
    """The plan option (of `fields`, default all) a core message names as a word, in its words or by flag."""
    for field in _PLAN_FIELDS:
        if fields is not None and field not in fields:
            continue
        names = {field, field.replace("_", " "), f"--{field.replace('_', '-')}"} - {"to", "start"}  # common words
        names.update(_PLAN_FIELD_WORDS.get(field, ()))
        if any(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", message) for name in names):
            return field
    return None


def _approve(
    request: HttpRequest,
    patient: m.Patient,
    sig: str,
    options: dict[str, Any],
    events: list[Any],
    payload: dict[str, Any],
) -> m.Plan:
    stored = dict(options, events=payload["events"])
    with transaction.atomic():
        # Lock the patient row so two approvals at once get consecutive versions (FOR UPDATE cannot
        # be combined with an aggregate on PostgreSQL).
        m.Patient.objects.select_for_update().filter(pk=patient.pk).first()
        latest = m.Plan.objects.filter(patient=patient).aggregate(v=Max("version"))["v"] or 0
        return m.Plan.objects.create(
            patient=patient,
            version=latest + 1,
            status="approved",
            sig=sig,
            options=stored,
            plan=payload,
            approved_by=request.user,
            approved_at=timezone.now(),
        )


@clinician
def plan_detail(request: HttpRequest, pid: int, version: int) -> HttpResponse:
    """One approved plan version with its steps, sources and downloads."""
    patient = patient_for(request.user, pid)
    record = patient.plans.filter(version=version).first()
    if record is None:
        return render(request, "web/404.html", status=404)
    figure = charts.plan_figure(plan_records.stored_plan(record), f"v{record.version}")
    return render(
        request, "web/plan_detail.html", {"patient": patient, "record": record, "plan": record.plan, "figure": figure}
    )


@login_required
def plan_file(request: HttpRequest, pid: int, version: int, kind: str) -> HttpResponse:
    """The approved plan as PDF calendar (with crisis lines), iCalendar or CSV (patients: their own plan)."""
    patient = patient_for(request.user, pid)
    record = patient.plans.filter(version=version, status="approved").first()
    if record is None or kind not in ("pdf", "ics", "csv"):
        return render(request, "web/404.html", status=404)
    body, content_type = plan_records.plan_files(record, kind, safety.crisis_text(patient))
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="taper-plan-v{version}.{kind}"'
    return response


@clinician
def audit_trail(request: HttpRequest, pid: int) -> HttpResponse:
    """Every change to this patient's records: who, when, before and after."""
    patient = patient_for(request.user, pid)
    entries = m.AuditEntry.objects.filter(patient_id=patient.pk).select_related("user")[:300]
    return render(request, "web/audit.html", {"patient": patient, "entries": entries})


def now_local() -> datetime:
    """The clinic's local time, naive (for the core)."""
    return timezone.localtime().replace(tzinfo=None)
