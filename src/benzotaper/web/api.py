"""JSON API (django-ninja): the clinic's records and the core's answers, under the pages' permission rules.

Authentication is a bearer token (`Authorization: Bearer <token>`, only its SHA-256 is stored) or the
pages' own session (with Django's CSRF check on unsafe methods). Every patient route goes through
`permissions.patient_for`, so a clinician sees only their care teams' patients (another team's patient
is a 404, never a 403, so ids cannot be probed) and a patient reads only their own record and writes only
their diary. Input is checked by the same forms and core calls as the pages; the core's errors come back
as 422 with the field they concern, never as a 500, and nothing is saved when a check fails.
"""

import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, TypeVar, cast

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, NinjaAPI, Schema
from ninja.errors import ValidationError, ValidationErrorContext
from ninja.pagination import LimitOffsetPagination, paginate
from ninja.responses import Status
from ninja.security import HttpBearer
from ninja.security import SessionAuth as NinjaSessionAuth

from benzotaper.errors import BenzotaperError
from benzotaper.knowledge.safety_net import FLAGS, SUBSTANCES
from benzotaper.web import (
    clinic_clock,
    kb,
    level_records,
    mirror_records,
    patient_alerts,
    patient_summary,
    plan_records,
    prescriptions,
    safety,
    scoring,
)
from benzotaper.web import forms as f
from benzotaper.web import models as m
from benzotaper.web.api_fields import ClinicDate, ClinicTime
from benzotaper.web.audit import set_actor
from benzotaper.web.permissions import patient_for, require_clinician, role, visible_patients
from benzotaper.web.views import _approve, _plan_field

F = TypeVar("F", bound=Callable[..., Any])
Strategy = Literal["ashton", "nice_cks", "jcpg", "maudsley", "deprescribing_org", "slow", "standard", "fast"]
Instrument = Literal["ciwa_b", "ciwa-b", "bwsq", "sds"]  # "ciwa-b" is accepted and stored as "ciwa_b"
LevelUnit = Literal["ng/mL", "ug/L", "nmol/L", "umol/L", "mg/L"]


# --- authentication ---------------------------------------------------------------------------------


def token_digest(token: str) -> str:
    """What is stored for a token: its SHA-256 in hex (the token itself is shown once and never kept)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_expires(row: m.ApiToken) -> datetime:
    """When a token stops working: settings.API_TOKEN_DAYS after it was created."""
    from django.conf import settings

    return cast(datetime, row.created + timedelta(days=settings.API_TOKEN_DAYS))


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`: the token's owner becomes the request's user and the audit actor."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        if not token:
            return None
        row = m.ApiToken.objects.select_related("user").filter(digest=token_digest(token)).first()
        if row is None or not row.user.is_active or token_expires(row) <= timezone.now():
            return None
        m.ApiToken.objects.filter(pk=row.pk).update(last_used=timezone.now())
        request.user = row.user
        set_actor(row.user)
        return row.user


class SessionAuth(NinjaSessionAuth):
    """The pages' login session, CSRF-checked on unsafe methods; anonymous callers get 401, not a CSRF 403."""

    def _get_key(self, request: HttpRequest) -> str | None:
        if not request.user.is_authenticated:
            return None
        key: str | None = super()._get_key(request)
        return key

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if user is not None:
            set_actor(user)
        return user


class ClinicAPI(NinjaAPI):
    """ninja's API with its own 422s in the same shape as ours: ["body", "payload", "sig"] -> ["body", "sig"]."""

    def validation_error_from_error_contexts(self, contexts: list[ValidationErrorContext[Any]]) -> ValidationError:
        error = super().validation_error_from_error_contexts(contexts)
        for entry in error.errors:
            loc = list(entry.get("loc", ()))
            if len(loc) >= 2 and loc[0] == "body" and loc[1] == "payload":
                entry["loc"] = ["body", *loc[2:]]
        return error


api = ClinicAPI(
    title="benzotaper clinic API",
    version="1",
    docs_url="/docs",
    auth=[TokenAuth(), SessionAuth()],
    description=(
        "Clinical decision support for benzodiazepine tapering. Doses are in mg (daily_de_mg: oral diazepam "
        "equivalent mg/day), serum levels in ng/mL. Authenticate with `Authorization: Bearer <token>` "
        "(create one with POST /api/tokens while logged in) or with the site's session and CSRF token."
    ),
)


class BoundedPaging(LimitOffsetPagination):
    """ninja's limit/offset with bounds a database can take: a huge `offset` is a 422 naming it, not a 500."""

    class Input(Schema):
        limit: int = Field(100, ge=1, le=1000, description="items per page")
        offset: int = Field(0, ge=0, le=1_000_000_000, description="items to skip")


def _paged(func: F) -> F:
    """Limit/offset pagination (`?limit=&offset=`, answer `{items, count}`), typed for mypy."""
    return cast(F, paginate(BoundedPaging)(func))


def _user(request: HttpRequest) -> Any:
    """The authenticated user (token or session)."""
    return request.auth  # set by ninja after authentication


# --- errors -------------------------------------------------------------------------------------------


def _problem(field: str | None, message: str, value: Any = None, where: str = "body") -> ValidationError:
    """A 422 in ninja's shape: `{"detail": [{"loc": [where, field], "msg": ..., "input": ...}]}`."""
    entry: dict[str, Any] = {"type": "value_error", "loc": [where, field] if field else [where], "msg": message}
    if field is not None:
        entry["input"] = _json_safe(value)
    return ValidationError([entry])


def no_regimen_problem(patient: m.Patient) -> ValidationError:
    """A plan asked for a patient without a current regimen: names `patient_id`, the id and what to do."""
    message = f"patient {patient.pk} has no current regimen: record one with POST /api/patients/{patient.pk}/regimens"
    return _problem("patient_id", message, patient.pk, where="path")


def plan_problem(exc: BenzotaperError, patient: m.Patient, sig: str, given: dict[str, Any]) -> ValidationError:
    """The core's refusal of a plan: on the option it names, else on the patient whose regimen it concerns."""
    field = _plan_field(str(exc), given)
    if field is not None:
        return _problem(field, str(exc), given.get(field))
    message = f"no plan can be made from patient {patient.pk}'s current regimen {sig!r}: {exc}"
    return _problem("patient_id", message, patient.pk, where="path")


def _form_problem(form: Any, data: dict[str, Any]) -> ValidationError:
    """A form's errors (the pages' validation, including the core's messages) as one 422."""
    errors: list[dict[str, Any]] = []
    for field, items in form.errors.get_json_data().items():
        for item in items:
            entry: dict[str, Any] = {
                "type": item.get("code") or "value_error",
                "loc": ["body"] if field == "__all__" else ["body", field],
                "msg": str(item["message"]),
            }
            if field in data:
                entry["input"] = _json_safe(data[field])
            errors.append(entry)
    return ValidationError(errors)


def _forbidden(request: HttpRequest, exc: Any) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc) or "forbidden"}, status=403)


def _core_error(request: HttpRequest, exc: Any) -> HttpResponse:
    detail = [{"type": "value_error", "loc": ["body"], "msg": str(exc)}]
    return api.create_response(request, {"detail": detail}, status=422)


api.add_exception_handler(PermissionDenied, _forbidden)
api.add_exception_handler(BenzotaperError, _core_error)


# --- helpers ------------------------------------------------------------------------------------------


def _plain(o: Any) -> Any:
    if isinstance(o, date | datetime | time):
        return o.isoformat()
    if hasattr(o, "tolist"):  # numpy scalars and arrays
        return o.tolist()
    return str(o)


def _json_safe(value: Any) -> Any:
    """Plain JSON types only (dates as ISO text, numpy numbers as floats)."""
    return json.loads(json.dumps(value, default=_plain))


def _aware(value: datetime | None) -> datetime | None:
    """A datetime with a zone: naive input is read as the clinic's local time."""
    if value is None or timezone.is_aware(value):
        return value
    return cast(datetime, timezone.make_aware(value, timezone.get_current_timezone()))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


# --- schemas ------------------------------------------------------------------------------------------


class PatientIn(Schema):
    team: int = Field(description="care team id (one of your own teams)")
    name: str = Field(min_length=1, max_length=120)
    identifier: str = Field("", max_length=40, description="record number")
    birth_year: int | None = Field(None, ge=1900, le=2100)
    sex: Literal["", "F", "M", "X"] = ""
    country: str = Field("", max_length=2, description="ISO 3166 code, used for crisis lines")
    indication: str = Field("", max_length=200, description="original indication")
    indication_since: ClinicDate | None = None
    indication_symptoms: str = Field("", max_length=300, description="symptoms of the indication, comma separated")
    risk_factors: list[str] = Field(default_factory=list, description=f"any of: {', '.join(FLAGS)}")
    co_used: list[str] = Field(default_factory=list, description=f"any of: {', '.join(SUBSTANCES)}")


class PatientOut(Schema):
    id: int
    team: int
    name: str
    identifier: str
    birth_year: int | None
    sex: str
    country: str
    indication: str
    indication_since: date | None
    indication_symptoms: str
    risk_factors: list[str]
    co_used: list[str]
    created: datetime

    @staticmethod
    def resolve_team(obj: m.Patient) -> int:
        return int(obj.team_id)

    @staticmethod
    def resolve_risk_factors(obj: m.Patient) -> list[str]:
        return [flag for flag in FLAGS if (obj.risk or {}).get(flag)]

    @staticmethod
    def resolve_co_used(obj: m.Patient) -> list[str]:
        return list((obj.risk or {}).get("co_used", []))


class RegimenIn(Schema):
    sig: str = Field(min_length=1, max_length=300, description="free text, e.g. 'alprazolam 2 mg tds'")
    start: ClinicDate = Field(description="taken since")
    end: ClinicDate | None = Field(None, description="until (empty: ongoing)")
    preview_only: bool = Field(False, description="true: return the parse without saving")


class RegimenOut(Schema):
    id: int | None = Field(description="null when only previewed")
    sig: str
    start: date
    end: date | None
    daily_de_mg: float = Field(description="oral diazepam-equivalent mg/day of the whole regimen")
    parsed: dict[str, Any] = Field(description="per drug: doses (mg), daily_mg, diazepam_mg")


class LevelIn(Schema):
    analyte: str = Field(description="an analyte id, or 'diazepam_equivalents' (immunoassay)")
    sampled_at: ClinicTime = Field(description="naive times are the clinic's local time")
    value: str | float = Field(description="a number, or '<5' when below the limit of quantification")
    unit: LevelUnit = "ng/mL"
    lloq: str | float | None = Field(None, description="lower limit of quantification, in `unit`")
    last_dose_at: ClinicTime | None = None
    lab: str = Field("", max_length=80)
    method: str = Field("", max_length=40)


class LevelOut(Schema):
    id: int
    analyte: str
    sampled_at: datetime
    value_ng_ml: float | None = Field(description="null when censored (below lloq_ng_ml)")
    lloq_ng_ml: float | None
    last_dose_at: datetime | None
    lab: str
    method: str


class AssessmentIn(Schema):
    instrument: Instrument
    answers: list[int] | dict[str, int] = Field(description="in item order, or keyed by item id")
    taken_at: ClinicTime | None = Field(None, description="default: now")


class AssessmentOut(Schema):
    id: int
    instrument: str
    taken_at: datetime
    answers: list[int] | dict[str, int]
    total: int
    band: str
    source: str


class AssessmentCreated(AssessmentOut):
    dependent: bool | None = Field(None, description="at or above the published dependence cut-off (SDS)")
    warnings: list[str] = Field(default_factory=list)


class PlanIn(Schema):
    strategy: Strategy = "ashton"
    start: ClinicDate | None = Field(None, description="first day (default today)")
    to: Literal["diazepam", "clonazepam", "chlordiazepoxide"] | None = Field(None, description="switch to")
    switch: Literal["auto", "stepwise", "direct", "none"] = "auto"
    interval_days: int | None = Field(None, ge=1, le=90, description="days between reductions")
    fraction: float | None = Field(None, ge=0.01, le=0.5, description="reduction fraction, e.g. 0.1")
    end_by: ClinicDate | None = Field(None, description="finish by")
    market: Literal["UK", "US", "PL"] | None = Field(None, description="products of")
    override_reason: str | None = Field(None, max_length=300, description="clinician's reason to lift the rate limit")
    approve: bool = Field(False, description="true: store as a new approved version; false: return the draft only")


class PlanBrief(Schema):
    version: int | None = Field(description="null for an unsaved draft")
    status: str
    sig: str
    options: dict[str, Any]
    approved_by: str | None
    approved_at: datetime | None

    @staticmethod
    def resolve_approved_by(obj: Any) -> str | None:
        if isinstance(obj, dict):
            return cast(str | None, obj.get("approved_by"))
        return obj.approved_by.get_username() if obj.approved_by_id else None


class PlanOut(PlanBrief):
    plan: dict[str, Any] = Field(description="steps (mg per dose), levels (ng/mL), sampling advice, sources")


class DiaryIn(Schema):
    kind: Literal["dose", "checkin", "note"]
    day: ClinicDate | None = Field(None, description="default: the day of `at`, else today")
    at: ClinicTime | None = Field(None, description="default: now (or noon of `day`)")
    drug: str = Field("", max_length=40, description="dose: the drug taken")
    planned_mg: float | None = Field(None, ge=0, le=1000)
    taken_mg: float | None = Field(None, ge=0, le=1000, description="dose: mg actually taken")
    feeling: int | None = Field(None, ge=0, le=10, description="checkin: 0 very bad .. 10 very well")
    note: str = Field("", max_length=2000)
    bwsq: list[int] | dict[str, int] | None = Field(None, description="checkin: optional BWSQ answers")


class DiaryOut(Schema):
    id: int
    kind: str
    day: date
    at: datetime
    drug: str
    planned_mg: float | None
    taken_mg: float | None
    feeling: int | None
    note: str
    bwsq_total: int | None
    created_by: str | None

    @staticmethod
    def resolve_created_by(obj: m.DiaryEntry) -> str | None:
        return obj.created_by.get_username() if obj.created_by_id else None


class SummaryOut(Schema):
    sig: str = Field(description="today's regimen ('' when none)")
    preview: dict[str, Any] | None = Field(description="its parse: mg/day and diazepam-eq mg/day per drug")
    error: str | None
    plan: dict[str, Any] | None = Field(description="the newest approved plan: version, approved_at")
    step: dict[str, Any] | None = Field(description="today's plan step (doses in mg)")
    alerts: list[dict[str, str]]
    risk: dict[str, Any]
    mirror: dict[str, Any] | None
    levels: dict[str, Any] | None = Field(description="measured levels (ng/mL) read against the model")


class TokenIn(Schema):
    name: str = Field("", max_length=80, description="what the token is for")


class TokenOut(Schema):
    id: int
    name: str
    created: datetime
    last_used: datetime | None
    expires: datetime = Field(description="the token is refused from then on (API_TOKEN_DAYS after creation)")

    @staticmethod
    def resolve_expires(obj: Any) -> datetime:
        return obj["expires"] if isinstance(obj, dict) else token_expires(obj)


class TokenCreated(TokenOut):
    token: str = Field(description="shown once; only its SHA-256 is stored")


# --- patients -------------------------------------------------------------------------------------------


@api.get("/patients", response=list[PatientOut], tags=["patients"])
@_paged
def list_patients(request: HttpRequest, q: str = "") -> Any:
    """The patients you may see (a patient: their own record), optionally searched by name or record number."""
    rows = visible_patients(_user(request))
    if q:
        rows = rows.filter(Q(name__icontains=q) | Q(identifier__icontains=q))
    return rows


@api.post("/patients", response={201: PatientOut}, tags=["patients"])
def create_patient(request: HttpRequest, payload: PatientIn) -> Status[m.Patient]:
    """Create a patient in one of your care teams (clinicians and admins)."""
    user = _user(request)
    require_clinician(user)
    for name, given, accepted in (
        ("risk_factors", payload.risk_factors, FLAGS),
        ("co_used", payload.co_used, SUBSTANCES),
    ):
        unknown = [v for v in given if v not in accepted]
        if unknown:
            raise _problem(name, f"unknown value(s) {unknown}; accepted: {', '.join(accepted)}", given)
    teams = m.CareTeam.objects.all() if role(user) == "admin" else m.CareTeam.objects.filter(members=user.profile)
    if not teams.filter(pk=payload.team).exists():
        yours = ", ".join(f"{t.pk} ({t.name})" for t in teams) or "none"
        raise _problem("team", f"care team {payload.team} is not one of yours; accepted: {yours}", payload.team)
    fields = payload.model_dump()
    data: dict[str, Any] = {k: _text(v) for k, v in fields.items() if k not in ("risk_factors", "co_used")}
    data.update({flag: True for flag in payload.risk_factors})
    data["co_used"] = payload.co_used
    form = f.PatientForm(data, teams=teams)
    if not form.is_valid():
        raise _form_problem(form, fields)
    return Status(201, form.save())


@api.get("/patients/{patient_id}", response=PatientOut, tags=["patients"])
def get_patient(request: HttpRequest, patient_id: int) -> m.Patient:
    """One patient's identity, indication and risk factors."""
    return patient_for(_user(request), patient_id)


# --- regimens -------------------------------------------------------------------------------------------


@api.get("/patients/{patient_id}/regimens", response=list[RegimenOut], tags=["regimens"])
@_paged
def list_regimens(request: HttpRequest, patient_id: int) -> Any:
    """Regimen periods, oldest first, each with the core's parse and its diazepam-equivalent mg/day."""
    return patient_for(_user(request), patient_id).regimens.all()


@api.post("/patients/{patient_id}/regimens", response={200: RegimenOut, 201: RegimenOut}, tags=["regimens"])
def create_regimen(request: HttpRequest, patient_id: int, payload: RegimenIn) -> Status[Any]:
    """Record a regimen (parsed by the core; a sig it cannot read is a 422 naming `sig`)."""
    patient = patient_for(_user(request), patient_id, write="record")
    data = {"sig": payload.sig, "start": _text(payload.start), "end": _text(payload.end)}
    form = f.RegimenForm(data)
    if not form.is_valid():
        raise _form_problem(form, payload.model_dump())
    clean = form.cleaned_data
    preview = clean["preview"]
    if payload.preview_only:
        return Status(
            200,
            {
                "id": None,
                "sig": clean["sig"],
                "start": clean["start"],
                "end": clean.get("end"),
                "daily_de_mg": preview["diazepam_mg"],
                "parsed": preview,
            },
        )
    with transaction.atomic():
        record = m.Regimen.objects.create(
            patient=patient,
            sig=clean["sig"],
            start=clean["start"],
            end=clean.get("end"),
            parsed=preview,
            daily_de_mg=preview["diazepam_mg"],
        )
    return Status(201, record)


# --- levels ---------------------------------------------------------------------------------------------


@api.get("/patients/{patient_id}/levels", response=list[LevelOut], tags=["levels"])
@_paged
def list_levels(request: HttpRequest, patient_id: int) -> Any:
    """Measured serum levels in ng/mL, oldest first."""
    return patient_for(_user(request), patient_id).levels.all()


@api.post("/patients/{patient_id}/levels", response={201: LevelOut}, tags=["levels"])
def create_level(request: HttpRequest, patient_id: int, payload: LevelIn) -> Status[m.Level]:
    """Record a level: read by the core's levels reader (unit converted to ng/mL, implausible values refused)."""
    patient = patient_for(_user(request), patient_id, write="record")
    analytes = [code for code, _name in level_records.analyte_choices()]
    if payload.analyte not in analytes:
        raise _problem(
            "analyte", f"unknown analyte {payload.analyte!r}; accepted: {', '.join(analytes)}", payload.analyte
        )
    data = {
        "analyte": payload.analyte,
        "sampled_at": _aware(payload.sampled_at),
        "value": _text(payload.value),
        "unit": payload.unit,
        "lloq": _text(payload.lloq),
        "last_dose_at": _aware(payload.last_dose_at),
        "lab": payload.lab,
        "method": payload.method,
    }
    form = f.LevelForm(data)
    if not form.is_valid():
        raise _form_problem(form, payload.model_dump())
    s = form.cleaned_data["sample"]
    tz = timezone.get_current_timezone()
    record = m.Level.objects.create(
        patient=patient,
        analyte=s.analyte,
        sampled_at=timezone.make_aware(s.sampled_at, tz),
        value_ng_ml=s.value,
        lloq_ng_ml=s.lloq,
        last_dose_at=timezone.make_aware(s.last_dose_at, tz) if s.last_dose_at else None,
        lab=s.lab,
        method=s.method,
    )
    return Status(201, record)


# --- assessments ----------------------------------------------------------------------------------------


def _instrument_code(code: str) -> str:
    """The stored and core id of a scale ('ciwa-b' is written 'ciwa_b' in models and knowledge files)."""
    return code.replace("-", "_")


@api.get("/patients/{patient_id}/assessments", response=list[AssessmentOut], tags=["assessments"])
@_paged
def list_assessments(request: HttpRequest, patient_id: int, instrument: Instrument | None = None) -> Any:
    """CIWA-B, BWSQ and SDS results, oldest first: the answers as given and the core's total and band."""
    rows = patient_for(_user(request), patient_id).assessments.all()
    return rows.filter(instrument=_instrument_code(instrument)) if instrument else rows


@api.post("/patients/{patient_id}/assessments", response={201: AssessmentCreated}, tags=["assessments"])
def create_assessment(request: HttpRequest, patient_id: int, payload: AssessmentIn) -> Status[dict[str, Any]]:
    """Score and store a scale (clinicians; patients record a BWSQ through their diary check-in)."""
    patient = patient_for(_user(request), patient_id, write="assessment")
    code = _instrument_code(payload.instrument)
    try:
        result = scoring.score_answers(code, payload.answers)
    except BenzotaperError as exc:
        raise _problem("answers", str(exc), payload.answers) from None
    record = m.Assessment.objects.create(
        patient=patient,
        instrument=code,
        taken_at=_aware(payload.taken_at) or timezone.now(),
        answers=payload.answers,
        total=result["total"],
        band=result["band"],
        source="api",
    )
    out = AssessmentOut.model_validate(record).model_dump()
    return Status(201, {**out, "dependent": result["dependent"], "warnings": result["warnings"]})


# --- plans ----------------------------------------------------------------------------------------------


@api.get("/patients/{patient_id}/plans", response=list[PlanBrief], tags=["plans"])
@_paged
def list_plans(request: HttpRequest, patient_id: int) -> Any:
    """Plan versions, newest first (without the steps; GET one version for those)."""
    return patient_for(_user(request), patient_id).plans.select_related("approved_by").all()


@api.get("/patients/{patient_id}/plans/{int:version}", response=PlanOut, tags=["plans"])
def get_plan(request: HttpRequest, patient_id: int, version: int) -> m.Plan:
    """One plan version with its steps (mg per dose), predicted levels (ng/mL) and sampling advice."""
    patient = patient_for(_user(request), patient_id)
    record = patient.plans.select_related("approved_by").filter(version=version).first()
    if record is None:
        raise Http404("no such plan version")
    return cast(m.Plan, record)


@api.post("/patients/{patient_id}/plans", response={200: PlanOut, 201: PlanOut}, tags=["plans"])
def create_plan(request: HttpRequest, patient_id: int, payload: PlanIn) -> Status[Any]:
    """Build a taper plan from today's regimen and the holds; with `approve` store it as a new frozen version."""
    user = _user(request)
    patient = patient_for(user, patient_id, write="plan")
    sig = prescriptions.current_sig(patient)
    if not sig:
        raise no_regimen_problem(patient)
    data = {k: _text(v) for k, v in payload.model_dump().items() if k != "approve"}
    data["start"] = data["start"] or clinic_clock.today().isoformat()
    form = f.PlanForm(data)
    if not form.is_valid():
        raise _form_problem(form, payload.model_dump())
    options = form.options()
    events = plan_records.hold_events(patient)
    try:
        plan = plan_records.build_plan(sig, options, events)
    except BenzotaperError as exc:
        raise plan_problem(exc, patient, sig, payload.model_dump()) from None
    plan_json = plan_records.plan_payload(plan)
    if payload.approve:
        request.user = user  # views._approve records request.user as the approver
        return Status(201, _approve(request, patient, sig, options, events, plan_json))
    draft = {
        "version": None,
        "status": "draft",
        "sig": sig,
        "options": dict(options, events=plan_json["events"]),
        "approved_by": None,
        "approved_at": None,
        "plan": _json_safe(plan_json),
    }
    return Status(200, draft)


# --- diary ----------------------------------------------------------------------------------------------


@api.get("/patients/{patient_id}/diary", response=list[DiaryOut], tags=["diary"])
@_paged
def list_diary(request: HttpRequest, patient_id: int, kind: Literal["dose", "checkin", "note"] | None = None) -> Any:
    """Diary entries (doses taken, check-ins, notes), oldest first."""
    rows = patient_for(_user(request), patient_id).diary.select_related("created_by").all()
    return rows.filter(kind=kind) if kind else rows


@api.post("/patients/{patient_id}/diary", response={201: DiaryOut}, tags=["diary"])
def create_diary(request: HttpRequest, patient_id: int, payload: DiaryIn) -> Status[m.DiaryEntry]:
    """Add a diary entry: a dose (drug, taken_mg), a check-in (feeling 0-10, optional BWSQ) or a note."""
    user = _user(request)
    patient = patient_for(user, patient_id, write="diary")
    today = clinic_clock.today()
    at = _aware(payload.at)
    day = payload.day or (timezone.localtime(at).date() if at else today)
    if day > today:
        raise _problem("day", f"{day.isoformat()} is in the future; a diary records what happened", payload.day)
    if at is None:
        at = timezone.now() if day == today else _aware(datetime.combine(day, time(12)))
    drug = payload.drug.strip()
    if payload.kind == "dose":
        if not drug:
            raise _problem("drug", "a dose needs the drug taken", payload.drug)
        if payload.taken_mg is None:
            raise _problem("taken_mg", "a dose needs the mg taken (0 when skipped)", None)
        try:
            drug = kb.knowledge().drug(drug).id
        except BenzotaperError as exc:
            raise _problem("drug", str(exc), payload.drug) from None
    if payload.kind == "checkin" and payload.feeling is None:
        raise _problem("feeling", "a check-in needs how you feel, 0 (very bad) to 10 (very well)", None)
    if payload.kind == "note" and not payload.note.strip():
        raise _problem("note", "a note needs text", payload.note)
    bwsq_total = None
    if payload.bwsq is not None:
        if payload.kind != "checkin":
            raise _problem("bwsq", "BWSQ answers belong to a check-in (kind 'checkin')", payload.bwsq)
        try:
            bwsq_total = scoring.score_answers("bwsq", payload.bwsq)["total"]
        except BenzotaperError as exc:
            raise _problem("bwsq", str(exc), payload.bwsq) from None
    entry = m.DiaryEntry.objects.create(
        patient=patient,
        day=day,
        at=at,
        kind=payload.kind,
        drug=drug,
        planned_mg=payload.planned_mg,
        taken_mg=payload.taken_mg,
        feeling=payload.feeling,
        note=payload.note,
        bwsq=payload.bwsq,
        bwsq_total=bwsq_total,
        created_by=user,
    )
    return Status(201, entry)


# --- summary --------------------------------------------------------------------------------------------


@api.get("/patients/{patient_id}/summary", response=SummaryOut, tags=["patients"])
def get_summary(request: HttpRequest, patient_id: int) -> dict[str, Any]:
    """Today's regimen (diazepam-eq mg/day), plan step, alerts, risk, mirror analysis and level reading."""
    patient = patient_for(_user(request), patient_id)
    summary = patient_summary.summary(patient)
    record = summary.pop("plan")
    summary["plan"] = None if record is None else {"version": record.version, "approved_at": record.approved_at}
    summary.update(
        alerts=patient_alerts.alerts(patient),
        risk=safety.risk(patient),
        mirror=mirror_records.mirror(patient),
        levels=level_records.level_reading(patient),
    )
    return cast(dict[str, Any], _json_safe(summary))


# --- tokens ---------------------------------------------------------------------------------------------


@api.post("/tokens", response={201: TokenCreated}, auth=[SessionAuth()], tags=["tokens"])
def create_token(request: HttpRequest, payload: TokenIn) -> Status[dict[str, Any]]:
    """Create a bearer token for yourself (logged-in session only); the token is shown once, in this answer."""
    token = secrets.token_urlsafe(32)
    row = m.ApiToken.objects.create(user=_user(request), digest=token_digest(token), name=payload.name)
    out = {"id": row.pk, "name": row.name, "created": row.created, "last_used": None, "expires": token_expires(row)}
    return Status(201, {**out, "token": token})


@api.get("/tokens", response=list[TokenOut], tags=["tokens"])
def list_tokens(request: HttpRequest) -> Any:
    """Your tokens (names and last use; the tokens themselves are not stored)."""
    return m.ApiToken.objects.filter(user=_user(request)).order_by("-created", "-id")


@api.delete("/tokens/{token_id}", response={204: None}, tags=["tokens"])
def delete_token(request: HttpRequest, token_id: int) -> Status[None]:
    """Revoke one of your tokens (another user's token id is a 404)."""
    deleted, _ = m.ApiToken.objects.filter(user=_user(request), pk=token_id).delete()
    if not deleted:
        raise Http404("no such token")
    return Status(204, None)


# --- the ward loop (fit, guided plans, re-plan drafts, worklist): its own module, same API and auth ----------

from benzotaper.web.api_loop import router as loop_router  # noqa: E402

api.add_router("", loop_router)
