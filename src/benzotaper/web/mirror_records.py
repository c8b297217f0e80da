"""The mirror analysis fed from the records: the timeline built from them, and its cached verdicts."""

from __future__ import annotations

from typing import Any

from benzotaper.assess.mirror import analyse
from benzotaper.assess.timeline import Timeline
from benzotaper.errors import BenzotaperError
from benzotaper.web import models as m
from benzotaper.web.clinic_clock import local, today
from benzotaper.web.kb import knowledge, mirror_knowledge
from benzotaper.web.page_cache import cached


def timeline(patient: m.Patient) -> Timeline | None:
    """The mirror analysis' input from the records (None without a regimen or a symptom)."""
    regs, symptoms = list(patient.regimens.all()), list(patient.symptoms.all())
    if not regs or not symptoms:
        return None
    courses = []
    for r in regs:
        drug = (r.parsed.get("drugs") or [{"drug": r.sig.split()[0]}])[0]["drug"]
        courses.append({"drug": drug, "dose": r.sig, "start": r.start, "end": r.end})
    indication = None
    if patient.indication:
        indication = {
            "condition": patient.indication,
            "since": patient.indication_since,
            "symptoms": [s.strip() for s in patient.indication_symptoms.split(",") if s.strip()],
        }
    return Timeline.model_validate(
        {
            "patient": {
                "sex": patient.sex or None,
                "birth_year": patient.birth_year,
                "country": patient.country or None,
            },
            "indication": indication,
            "bzd_history": courses,
            "symptoms": [
                {
                    "symptom": s.symptom,
                    "onset": s.onset,
                    "at": local(s.at) if s.at else None,
                    "severity": s.severity,
                    "resolved": s.resolved,
                    "note": s.note or None,
                }
                for s in symptoms
            ],
            "treatments": [
                {"drug": t.drug, "for": t.target, "start": t.start, "end": t.end, "effect": t.effect or None}
                for t in patient.treatments.all()
            ],
            "assessed_on": today(),
        }
    )


def mirror(patient: m.Patient) -> dict[str, Any] | None:
    """Verdict per symptom (withdrawal, primary, undetermined) with evidence, or None without data."""

    def compute() -> dict[str, Any] | None:
        tl = timeline(patient)
        if tl is None:
            return None
        try:
            return analyse(knowledge(), tl, mirror_knowledge()).to_dict()
        except BenzotaperError as exc:
            return {"error": str(exc)}

    return cached("mirror", patient, compute)
