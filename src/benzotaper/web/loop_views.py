"""The ward's loop in the pages: a plan guided by this patient's levels, re-plan drafts, the worklist."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from benzotaper.errors import BenzotaperError
from benzotaper.web import charts, clinic_clock, guided, kb, plan_records, prescriptions, replans, worklist
from benzotaper.web import forms as f
from benzotaper.web import models as m
from benzotaper.web.permissions import patient_for
from benzotaper.web.views import _plan_field, clinician


def approve_guided(
    request: HttpRequest, patient: m.Patient, options: dict[str, Any], payload: dict[str, Any]
) -> m.Plan:
    """Freeze a guided plan as the next version, exactly as the plan builder approves a preset."""
    from benzotaper.web.views import _approve

    stored = {k: v for k, v in options.items() if k != "events"}
    return _approve(request, patient, prescriptions.current_sig(patient), stored, [], payload)


@clinician
def guided_builder(request: HttpRequest, pid: int) -> HttpResponse:
    """Build, compare and approve a plan paced by this patient's measured levels."""
    patient = patient_for(request.user, pid, write="record")
    initial = {
        "start": clinic_clock.today(),
        "level_fall": guided.GUIDED_DEFAULTS["level_fall"],
        "trajectory": "occupancy",
        "switch": "later",
        "strategy": "ashton",
    }
    form = f.GuidedPlanForm(request.POST or None, initial=initial)
    context: dict[str, Any] = {"patient": patient, "form": form, "sig": prescriptions.current_sig(patient)}
    if not context["sig"]:
        messages.warning(request, _("Record the current regimen first."))
        return redirect("regimen_new", pid)
    if request.method == "POST" and form.is_valid():
        try:
            plan, extra, options = guided.build_guided(patient, form.options())
        except BenzotaperError as exc:
            form.add_error(_plan_field(str(exc), form.fields), str(exc))
            return render(request, "web/guided_builder.html", context)
        payload = plan_records.plan_payload(plan)
        if request.POST.get("action") == "approve":
            record = approve_guided(request, patient, options, payload)
            messages.success(request, _("Plan version %(v)d approved.") % {"v": record.version})
            return redirect("plan_detail", pid, record.version)
        context.update(
            plan=payload,
            extra=extra,
            figure=charts.plan_figure(plan, "guided"),
            comparison_figure=charts.comparison_figure(extra["comparison"]),
        )
    return render(request, "web/guided_builder.html", context)


@clinician
def replan_detail(request: HttpRequest, pid: int, rid: int) -> HttpResponse:
    """A drafted re-plan beside the approved version: what changes from which day, and why; approve or discard."""
    patient = patient_for(request.user, pid, write="record" if request.method == "POST" else "")
    draft = patient.replans.filter(pk=rid).first()
    if draft is None:
        return render(request, "web/404.html", status=404)
    if request.method == "POST":
        try:
            if request.POST.get("action") == "approve":
                record = replans.approve(draft.pk, patient, request.user)
                messages.success(request, _("Re-plan approved as plan version %(v)d.") % {"v": record.version})
                return redirect("plan_detail", pid, record.version)
            replans.discard(draft.pk, patient, request.user)
            messages.info(request, _("Re-plan discarded; the approved plan stays in force."))
            return redirect("patient", pid)
        except replans.ReplanConflict as exc:
            messages.error(request, str(exc))
            return redirect("replan", pid, rid)
    base = patient.plans.filter(version=draft.based_on_version).first()
    context = {
        "patient": patient,
        "draft": draft,
        "base": base,
        "stale": replans.stale_reason(draft),
        "plan": draft.plan,
    }
    return render(request, "web/replan.html", context)


@login_required
def sources_page(request: HttpRequest) -> HttpResponse:
    """The knowledge base's bibliography: what each source key on a page stands for."""
    rows = list(kb.sources().items())
    return render(request, "web/sources.html", {"sources": rows})


@clinician
def worklist_page(request: HttpRequest) -> HttpResponse:
    """Today's work over the clinician's care teams, most urgent first."""
    return render(request, "web/worklist.html", {"items": worklist.items(request.user)})
