"""Everything benzotaper knows about one patient as one FHIR R4 Bundle (type collection).

Patient; the taper plan (CarePlan + one MedicationRequest per step and drug); levels (Observation); scale results
(QuestionnaireResponse) and the Questionnaires of CIWA-B, BWSQ and SDS; the mirror analysis and the risk
assessment (RiskAssessment) with red flags and co-use warnings (DetectedIssue). Every resource is validated with
the R4 models of fhir.resources before the bundle is returned. Full URLs are deterministic urn:uuids.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from benzotaper.assess.mirror import MirrorAnalysis
from benzotaper.assess.risk import RiskAssessment
from benzotaper.assess.timeline import Patient
from benzotaper.errors import FhirError
from benzotaper.fhir import findings
from benzotaper.fhir.codes import Coder
from benzotaper.fhir.context import ExportContext
from benzotaper.fhir.elements import Json, uid
from benzotaper.fhir.levels import observation
from benzotaper.fhir.questionnaires import questionnaire, response
from benzotaper.fhir.records import ScaleResult
from benzotaper.fhir.taper_plan import plan_entries
from benzotaper.fhir.validation import describe, validate
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.instruments import load_instruments
from benzotaper.taper.plan import Plan
from benzotaper.tdm.samples import Sample

PLAN_STATUSES = ("draft", "active")
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_GENDER = {"F": "female", "female": "female", "M": "male", "male": "male", "X": "other", "other": "other"}


@dataclass(frozen=True)
class PatientExport:
    """What to export for one patient; everything but the id is optional."""

    patient_id: str
    patient: Patient | None = None
    birth_date: date | None = None
    name: str | None = None
    plan: Plan | None = None
    plan_key: str = "taper"
    samples: Sequence[Sample] = ()
    scores: Sequence[ScaleResult] = ()
    mirror: MirrorAnalysis | None = None
    risk: RiskAssessment | None = None
    assessed_on: date | None = None


def export_patient_bundle(
    knowledge: Knowledge,
    record: PatientExport,
    *,
    status: str = "draft",
    offset: str = "+00:00",
    include_questionnaires: bool = True,
    coder: Coder | None = None,
) -> Json:
    """One Bundle (type collection) with every resource for the patient; FhirError names a field that fails."""
    if status not in PLAN_STATUSES:
        raise FhirError(f"status must be one of {list(PLAN_STATUSES)} (got {status!r})")
    if not _FHIR_ID.match(record.patient_id):
        raise FhirError(f"patient id must be 1-64 letters, digits, '-' or '.' (a FHIR id; got {record.patient_id!r})")
    ctx = ExportContext(coder or Coder(knowledge), record.patient_id, offset)
    entries: list[tuple[str, Json]] = [(ctx.patient_url, _patient(record))]
    if record.plan is not None:
        entries += plan_entries(record.plan, ctx, status, record.plan_key)
    entries += [
        (ctx.url("Observation", f"{s.analyte}/{s.sampled_at.isoformat()}"), observation(s, ctx)) for s in record.samples
    ]
    if include_questionnaires:
        entries += [(q["url"], q) for q in (questionnaire(ctx.codes, i) for i in load_instruments().values())]
    for result in record.scores:
        qr = response(result, ctx)
        entries.append((f"urn:uuid:{qr['id']}", qr))
    entries += _findings(record, ctx)
    for i, (_, resource) in enumerate(entries):
        validate(resource, describe(resource, i))
    return {
        "resourceType": "Bundle",
        "id": uid(ctx.codes.local_base, record.patient_id, "Bundle"),
        "type": "collection",
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries],
    }


def _findings(record: PatientExport, ctx: ExportContext) -> list[tuple[str, Json]]:
    resources: list[Json] = []
    if record.mirror is not None:
        resources.append(findings.mirror_assessment(record.mirror, ctx, record.assessed_on))
        resources += findings.mirror_issues(record.mirror, ctx, record.assessed_on)
    if record.risk is not None:
        resources.append(findings.risk_assessment(record.risk, ctx, record.assessed_on))
        resources += findings.risk_issues(record.risk, ctx, record.assessed_on)
    return [(f"urn:uuid:{r['id']}", r) for r in resources]


def _patient(record: PatientExport) -> Json:
    patient = record.patient or Patient()
    out: Json = {"resourceType": "Patient", "id": record.patient_id}
    if record.name:
        out["name"] = [{"text": record.name}]
    if patient.sex is not None:
        out["gender"] = _GENDER[patient.sex]
    if record.birth_date is not None:
        out["birthDate"] = record.birth_date.isoformat()
    elif patient.birth_year is not None:
        out["birthDate"] = f"{patient.birth_year:04d}"
    if patient.country:
        out["address"] = [{"country": patient.country}]
    return out
