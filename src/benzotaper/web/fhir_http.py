"""FHIR and CDS Hooks over HTTP: `$everything` export, bundle import, CDS Hooks discovery and services.

Behind the JSON API's authentication (bearer token or session with CSRF) and the same permissions:
a clinician exports and imports only within their care teams. The FHIR logic is in benzotaper.fhir.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from ninja import NinjaAPI

from benzotaper.assess.instruments import score
from benzotaper.assess.mirror import analyse
from benzotaper.assess.risk import assess_risk
from benzotaper.errors import BenzotaperError
from benzotaper.fhir import PatientExport, discovery, export_patient_bundle, import_bundle, order_select, order_sign
from benzotaper.fhir.records import PatientRecord, ScaleResult
from benzotaper.web import clinic_clock, kb, level_records, mirror_records, plan_records, prescriptions, safety
from benzotaper.web import models as m
from benzotaper.web.api import SessionAuth, TokenAuth
from benzotaper.web.permissions import patient_for, require_clinician, role

FHIR_JSON = "application/fhir+json"
fhir_api = NinjaAPI(
    title="benzotaper FHIR and CDS Hooks",
    version="1",
    urls_namespace="fhir",
    docs_url=None,
    openapi_url=None,  # the FHIR and CDS Hooks routes are described in docs/fhir.md
    auth=[TokenAuth(), SessionAuth()],
)


def _fhir(payload: dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(payload, default=str), content_type=FHIR_JSON, status=status)


def _outcome(message: str, status: int, code: str = "invalid") -> HttpResponse:
    """A FHIR OperationOutcome naming what was wrong."""
    body = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": message}]}
    return _fhir(body, status)


def patient_export(patient: m.Patient) -> PatientExport:
    """The core objects of one patient's record, for the FHIR exporter."""
    k = kb.knowledge()
    record = plan_records.approved_plan(patient)
    scores = []
    for a in patient.assessments.all():
        result = score(kb.instruments()[a.instrument], a.answers)
        scores.append(ScaleResult(a.instrument, timezone.localtime(a.taken_at).replace(tzinfo=None), result))
    timeline = mirror_records.timeline(patient)
    mirror = None
    if timeline is not None:
        try:
            mirror = analyse(k, timeline, kb.mirror_knowledge())
        except BenzotaperError:
            mirror = None
    tl_patient = timeline.patient if timeline is not None else None
    return PatientExport(
        patient_id=str(patient.pk),
        patient=tl_patient,
        name=patient.name,
        plan=plan_records.stored_plan(record) if record else None,
        samples=level_records.samples(patient),
        scores=scores,
        mirror=mirror,
        risk=assess_risk(safety.risk_profile(patient), k, kb.safety_net()),
        assessed_on=clinic_clock.today(),
    )


@fhir_api.get("/fhir/Patient/{patient_id}/$everything", url_name="fhir_everything")
def everything(request: HttpRequest, patient_id: int) -> HttpResponse:
    """One Bundle with the patient, plan (CarePlan + MedicationRequests), levels, scores, risk and mirror."""
    patient = patient_for(request.auth, patient_id)
    try:
        bundle = export_patient_bundle(kb.knowledge(), patient_export(patient))
    except BenzotaperError as exc:
        return _outcome(str(exc), 422, "processing")
    return _fhir(bundle)


@fhir_api.post("/fhir", url_name="fhir_import")
def import_(request: HttpRequest, team: int | None = None) -> HttpResponse:
    """Import a Bundle: each Patient becomes a record in the caller's care team with its regimens, levels and
    scores; what could not be mapped is returned with the reason (nothing is dropped silently)."""
    user = request.auth
    require_clinician(user)
    try:
        raw = json.loads(request.body or b"null")
    except json.JSONDecodeError as exc:
        return _outcome(f"body: not JSON ({exc.msg} at line {exc.lineno})", 400, "structure")
    teams = m.CareTeam.objects.all() if role(user) == "admin" else m.CareTeam.objects.filter(members=user.profile)
    chosen = teams.filter(pk=team).first() if team is not None else teams.first()
    if chosen is None:
        return _outcome(f"team: {team!r} is not one of your care teams", 422)
    try:
        result = import_bundle(raw, kb.knowledge())
    except BenzotaperError as exc:
        return _outcome(str(exc), 422)
    with transaction.atomic():
        created = [_save(record, chosen) for record in result.patients]
    body = result.to_dict()
    body["created"] = created
    return JsonResponse(body, status=201 if created else 200)


def _save(record: PatientRecord, team: m.CareTeam) -> dict[str, Any]:
    """Store one imported patient with their regimens, levels and scores."""
    info = record.patient
    patient = m.Patient.objects.create(
        team=team,
        name=info.name or f"FHIR Patient/{info.id}",
        identifier=info.id[:40],
        birth_year=info.patient.birth_year,
        sex=(info.patient.sex or "")[:1].upper(),
        country=(info.patient.country or "")[:2].upper(),
    )
    for med in record.medications:
        for reg in med.regimens:
            sig = med.sig if len(med.regimens) == 1 else reg.sig or med.sig
            try:
                preview = prescriptions.regimen_preview(sig, reg.start, reg.end)
            except BenzotaperError:
                preview = {"sig": sig, "drugs": [{"drug": reg.drug}], "diazepam_mg": 0.0}
            m.Regimen.objects.create(
                patient=patient,
                sig=sig[:300],
                start=reg.start,
                end=reg.end,
                parsed=preview,
                daily_de_mg=preview["diazepam_mg"],
            )
    tz = timezone.get_current_timezone()
    for s in record.samples:
        m.Level.objects.create(
            patient=patient,
            analyte=s.analyte,
            sampled_at=timezone.make_aware(s.sampled_at, tz),
            value_ng_ml=s.value,
            lloq_ng_ml=s.lloq,
            last_dose_at=timezone.make_aware(s.last_dose_at, tz) if s.last_dose_at else None,
            lab=s.lab[:80],
            method=s.method[:40],
        )
    for sc in record.scores:
        answers = {item.id: item.value for item in sc.score.items}
        m.Assessment.objects.create(
            patient=patient,
            instrument=sc.instrument,
            taken_at=timezone.make_aware(sc.authored, tz),
            answers=answers,
            total=sc.score.total,
            band=sc.score.band or "",
            source="fhir",
        )
    return {
        "fhir_id": info.id,
        "patient_id": patient.pk,
        "regimens": patient.regimens.count(),
        "levels": patient.levels.count(),
        "assessments": patient.assessments.count(),
    }


@fhir_api.get("/cds-services", url_name="cds_discovery")
def cds_discovery(request: HttpRequest) -> dict[str, Any]:
    """CDS Hooks discovery: the services this server offers."""
    return discovery()


@fhir_api.post("/cds-services/{service_id}", url_name="cds_service")
def cds_service(request: HttpRequest, service_id: str) -> HttpResponse:
    """CDS Hooks service call: cards for a draft benzodiazepine or Z-drug order (order-sign, order-select)."""
    services_by_id = {s["id"]: s["hook"] for s in discovery()["services"]}
    hook = services_by_id.get(service_id)
    if hook is None:
        return JsonResponse({"error": f"no CDS service {service_id!r}; known: {sorted(services_by_id)}"}, status=404)
    try:
        raw = json.loads(request.body or b"null")
    except json.JSONDecodeError as exc:
        return JsonResponse({"error": f"body: not JSON ({exc.msg})"}, status=400)
    call = order_sign if hook == "order-sign" else order_select
    try:
        cards = call(
            raw,
            knowledge=kb.knowledge(),
            today=clinic_clock.today(),
            base_url=request.build_absolute_uri("/").rstrip("/"),
        )
    except BenzotaperError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(cards)
