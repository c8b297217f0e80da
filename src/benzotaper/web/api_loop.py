"""The ward loop through the JSON API: this patient's fit, a guided plan preview, re-plan drafts, the worklist.

Same permissions as the pages (`permissions.patient_for`, clinicians only for writes). Numbers come from
the core through `patient_model`, `guided` and `replans`; nothing clinical is computed here.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.responses import Status

from benzotaper.errors import BenzotaperError
from benzotaper.web import clinic_clock, guided, plan_records, prescriptions, replans, worklist
from benzotaper.web import models as m
from benzotaper.web.api_fields import ClinicDate
from benzotaper.web.permissions import patient_for, require_clinician

router = Router()


class GuidedIn(Schema):
    start: ClinicDate | None = Field(None, description="first day of the plan (default today)")
    level_fall: float = Field(
        round(100 * guided.FALL.default, 2),
        ge=round(100 * guided.FALL.lowest, 2),
        le=round(100 * guided.FALL.highest, 2),
        description="target fall of the trough per week, percent (default and bounds from tdm.toml)",
    )
    trajectory: Literal["occupancy", "level"] = Field("occupancy", description="guide the occupancy or the level")
    switch: Literal["later", "none", "auto"] = Field(
        "later", description="later: keep the drug, switch to diazepam only when its tablets get too coarse"
    )
    strategy: Literal["ashton", "nice_cks", "jcpg", "maudsley", "deprescribing_org", "slow", "standard", "fast"] = (
        Field("ashton", description="preset used after a switch")
    )
    market: Literal["UK", "US", "PL"] | None = Field(None, description="products of")
    override_reason: str | None = Field(None, max_length=300, description="clinician's reason to lift the rate limit")
    approve: bool = Field(False, description="true: store as a new approved version; false: the draft only")


class ReplanOut(Schema):
    id: int
    patient_id: int
    status: str
    reason: str
    trigger: dict[str, Any]
    based_on_version: int
    changes: list[dict[str, Any]] = Field(description="{from_date, to_date, drug, before_mg, after_mg, ...}")
    created: str
    stale: str | None = Field(description="why it can no longer be approved (null while current)")
    version: int | None = Field(description="the plan version it became, once approved")
    plan: dict[str, Any] = Field(description="the proposed plan (same shape as the plans the API returns)")


class WorkItem(Schema):
    patient_id: int
    patient: str
    kind: str = Field(description="sample_due, sample_overdue, replan_waiting, red_flag, missed_doses, step_starts")
    label: str = Field(description="the kind in the user's language")
    urgency: int = Field(description="higher is more urgent; the list is sorted by it")
    text: str
    url: str


class Conflict(Schema):
    detail: str


def _user(request: HttpRequest) -> Any:
    return request.auth


def _problem(field: str | None, message: str, value: Any = None) -> Exception:
    from benzotaper.web.api import _problem as problem

    return problem(field, message, value)


@router.get("/patients/{patient_id}/fit", tags=["levels"])
def get_fit(request: HttpRequest, patient_id: int) -> dict[str, Any]:
    """This patient's model from their levels: eliminator, clearance_ratio, samples used and left out, forecast."""
    from benzotaper.web.patient_model import patient_fit

    patient = patient_for(_user(request), patient_id)
    require_clinician(_user(request))
    return patient_fit(patient)


@router.post("/patients/{patient_id}/plans/guided", response={200: dict[str, Any], 201: dict[str, Any]}, tags=["plans"])
def guided_plan(request: HttpRequest, patient_id: int, payload: GuidedIn) -> Status[dict[str, Any]]:
    """A plan guided by this patient's levels, with the fast / this patient / slow comparison and sample dates."""
    from benzotaper.web.api import _json_safe, no_regimen_problem, plan_problem
    from benzotaper.web.loop_views import approve_guided

    user = _user(request)
    patient = patient_for(user, patient_id, write="plan")
    require_clinician(user)
    if not prescriptions.current_sig(patient):
        raise no_regimen_problem(patient)
    raw = payload.model_dump()
    options = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in raw.items() if k != "approve"}
    options["start"] = options["start"] or clinic_clock.today().isoformat()
    try:
        plan, extra, stored = guided.build_guided(patient, options)
    except BenzotaperError as exc:
        raise plan_problem(exc, patient, prescriptions.current_sig(patient), raw) from None
    payload_json = plan_records.plan_payload(plan)
    base = {
        "comparison": _json_safe(extra["comparison"]),
        "sample_dates": guided.sample_dates(extra),
        "fit": _json_safe(extra["fit"]),
        "trajectory": extra["trajectory"],
    }
    if payload.approve:
        request.user = user
        record = approve_guided(request, patient, stored, payload_json)
        return Status(201, {**version_json(record, user), **base})
    draft = {
        "version": None,
        "status": "draft",
        "sig": prescriptions.current_sig(patient),
        "options": stored,
        "approved_by": None,
        "approved_at": None,
        "plan": _json_safe(payload_json),
        **base,
    }
    return Status(200, draft)


def version_json(record: m.Plan, user: Any) -> dict[str, Any]:
    """An approved plan version in the shape `GET .../plans/{version}` answers."""
    from benzotaper.web.api import _json_safe

    return {
        "version": record.version,
        "status": record.status,
        "sig": record.sig,
        "options": _json_safe(record.options),
        "plan": _json_safe(record.plan),
        "approved_by": user.get_username(),
        "approved_at": record.approved_at.isoformat() if record.approved_at else None,
    }


@router.get("/patients/{patient_id}/replans", response=list[ReplanOut], tags=["plans"])
def list_replans(request: HttpRequest, patient_id: int, status: str = "waiting") -> list[dict[str, Any]]:
    """The drafted re-plans (default: those waiting for a decision; `status=all` for every one)."""
    patient = patient_for(_user(request), patient_id)
    require_clinician(_user(request))
    rows = patient.replans.all() if status == "all" else patient.replans.filter(status=status)
    return [replans.as_json(r) for r in rows]


def _draft(request: HttpRequest, replan_id: int) -> tuple[m.Replan, m.Patient]:
    draft = m.Replan.objects.filter(pk=replan_id).first()
    patient = patient_for(_user(request), draft.patient_id if draft else -1, write="plan")
    require_clinician(_user(request))
    assert draft is not None
    return draft, patient


@router.post("/replans/{replan_id}/approve", response={201: dict[str, Any], 409: Conflict}, tags=["plans"])
def approve_replan(request: HttpRequest, replan_id: int) -> Status[Any]:
    """Freeze the draft as the next plan version; 409 when it is no longer current (nothing is changed)."""
    draft, patient = _draft(request, replan_id)
    try:
        record = replans.approve(draft.pk, patient, _user(request))
    except replans.ReplanConflict as exc:
        return Status(409, {"detail": str(exc)})
    return Status(201, version_json(record, _user(request)))


@router.post("/replans/{replan_id}/discard", response={200: ReplanOut, 409: Conflict}, tags=["plans"])
def discard_replan(request: HttpRequest, replan_id: int) -> Status[Any]:
    """Set the draft aside; the approved plan stays in force."""
    draft, patient = _draft(request, replan_id)
    try:
        done = replans.discard(draft.pk, patient, _user(request))
    except replans.ReplanConflict as exc:
        return Status(409, {"detail": str(exc)})
    return Status(200, replans.as_json(done))


@router.get("/worklist", response=list[WorkItem], tags=["worklist"])
def get_worklist(request: HttpRequest) -> list[dict[str, Any]]:
    """Today's items over the signed-in clinician's care teams, most urgent first."""
    require_clinician(_user(request))
    return worklist.items(_user(request))
