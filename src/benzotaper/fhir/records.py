"""What a FHIR import gives back: core objects per patient, and every record that could not be mapped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from benzotaper.assess.instruments import Score
from benzotaper.assess.timeline import Patient
from benzotaper.regimen import Regimen
from benzotaper.taper.plan import Plan
from benzotaper.tdm.samples import Sample


@dataclass(frozen=True, slots=True)
class Unmapped:
    """A record that was read but could not be mapped, and why (never dropped silently)."""

    entry: int
    resource: str
    reason: str


@dataclass(frozen=True, slots=True)
class PatientInfo:
    """A FHIR Patient as the core knows patients (assess.timeline.Patient: sex, birth year, country)."""

    id: str
    patient: Patient
    birth_date: date | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class MedicationRecord:
    """A benzodiazepine or Z-drug MedicationRequest/MedicationStatement read into regimens."""

    source: str
    resource_type: str
    status: str
    intent: str | None
    drug: str
    product: str | None
    sig: str
    regimens: tuple[Regimen, ...]
    notes: tuple[str, ...] = ()

    @property
    def start(self) -> date:
        """First day of the earliest regimen."""
        return min(r.start for r in self.regimens)


@dataclass(frozen=True, slots=True)
class CoMedication:
    """A co-prescribed drug that matters for benzodiazepine safety (an opioid), with its dates when known."""

    source: str
    ingredient: str
    kind: str
    status: str
    start: date | None
    end: date | None


@dataclass(frozen=True, slots=True)
class ScaleResult:
    """A scored CIWA-B, BWSQ or SDS at a time (one QuestionnaireResponse)."""

    instrument: str
    authored: datetime
    score: Score
    source: str = field(default="", compare=False)


@dataclass(frozen=True)
class PatientRecord:
    """Everything read for one patient."""

    patient: PatientInfo
    medications: tuple[MedicationRecord, ...] = ()
    co_medications: tuple[CoMedication, ...] = ()
    samples: tuple[Sample, ...] = ()
    scores: tuple[ScaleResult, ...] = ()
    plans: tuple[Plan, ...] = ()

    @property
    def regimens(self) -> tuple[Regimen, ...]:
        """Every regimen of every medication record, in bundle order."""
        return tuple(r for m in self.medications for r in m.regimens)


@dataclass(frozen=True)
class ImportResult:
    """The patients found, the records not mapped (with reasons), and counts of resource types not read."""

    patients: tuple[PatientRecord, ...]
    unmapped: tuple[Unmapped, ...]
    ignored: Mapping[str, int]

    def patient(self, patient_id: str) -> PatientRecord:
        """One patient's record; KeyError if the bundle has no such patient."""
        for record in self.patients:
            if record.patient.id == patient_id:
                return record
        raise KeyError(patient_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape of `benzotaper fhir import --json`."""
        return {
            "patients": [_patient_dict(p) for p in self.patients],
            "unmapped": [{"entry": u.entry, "resource": u.resource, "reason": u.reason} for u in self.unmapped],
            "not_read": dict(self.ignored),
        }


def _patient_dict(p: PatientRecord) -> dict[str, Any]:
    info = p.patient
    return {
        "id": info.id,
        "name": info.name,
        "sex": info.patient.sex,
        "birth_date": info.birth_date.isoformat() if info.birth_date else None,
        "country": info.patient.country,
        "medications": [_medication_dict(m) for m in p.medications],
        "co_medications": [
            {
                "source": c.source,
                "ingredient": c.ingredient,
                "kind": c.kind,
                "status": c.status,
                "start": c.start.isoformat() if c.start else None,
                "end": c.end.isoformat() if c.end else None,
            }
            for c in p.co_medications
        ],
        "levels": [
            {
                "source_entry": s.row,
                "sampled_at": s.sampled_at.isoformat(timespec="minutes"),
                "analyte": s.analyte,
                "value_ng_ml": s.value,
                "censored": s.censored,
                "lloq_ng_ml": s.lloq,
                "reported": s.reported,
            }
            for s in p.samples
        ],
        "scores": [
            {
                "source": r.source,
                "instrument": r.instrument,
                "authored": r.authored.isoformat(timespec="minutes"),
                "total": r.score.total,
                "band": r.score.band,
                "dependent": r.score.dependent,
                "items": {i.id: i.value for i in r.score.items},
            }
            for r in p.scores
        ],
        "plans": [
            {"regimen": plan.regimen, "strategy": plan.strategy, "start": plan.start.isoformat(),
             "end_date": plan.end_date.isoformat(), "steps": len(plan.steps)}
            for plan in p.plans
        ],
    }  # fmt: skip


def _medication_dict(m: MedicationRecord) -> dict[str, Any]:
    return {
        "source": m.source,
        "resource_type": m.resource_type,
        "status": m.status,
        "intent": m.intent,
        "drug": m.drug,
        "product": m.product,
        "sig": m.sig,
        "regimens": [
            {
                "drug": r.drug,
                "start": r.start.isoformat(),
                "end": r.end.isoformat() if r.end else None,
                "doses": [{"time": d.at.strftime("%H:%M"), "mg": d.mg} for d in r.doses],
                "daily_mg": r.daily_mg,
                "prn_mg": r.prn_mg,
                "prn_max_per_day": r.prn_max_per_day,
            }
            for r in m.regimens
        ],
        "notes": list(m.notes),
    }
