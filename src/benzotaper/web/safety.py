"""Crisis help, the risk profile and red flags for a patient, from the core's safety net."""

from __future__ import annotations

from typing import Any

from benzotaper.assess.crisis import CrisisHelp, crisis_help, generic_help
from benzotaper.assess.redflags import red_flags
from benzotaper.assess.risk import RiskProfile, assess_risk
from benzotaper.errors import BenzotaperError
from benzotaper.knowledge.safety_net import FLAGS, SUBSTANCES
from benzotaper.web import models as m
from benzotaper.web.clinic_clock import today
from benzotaper.web.kb import knowledge, safety_net
from benzotaper.web.page_cache import cached
from benzotaper.web.prescriptions import current_sig


def crisis_for(patient: m.Patient | None) -> CrisisHelp:
    """Crisis lines of the patient's country, else generic emergency advice (help is never withheld)."""
    country = patient.country if patient is not None else ""
    if country:
        try:
            return crisis_help(country, safety_net())
        except BenzotaperError:
            pass
    return generic_help(safety_net())


def crisis_help_code(code: str) -> CrisisHelp:
    """Crisis help for a country code; an unknown code is refused with the list of known ones."""
    return crisis_help(code, safety_net())


def crisis_text(patient: m.Patient) -> str:
    """One line of help for a printed plan."""
    return crisis_for(patient).help_line()


def risk_profile(patient: m.Patient) -> RiskProfile:
    """The patient's risk profile from the stored factors, today's regimen and age."""
    raw = patient.risk or {}
    flags = {f: raw[f] for f in FLAGS if f in raw}
    co_used = frozenset(s for s in raw.get("co_used", []) if s in SUBSTANCES)
    findings = tuple(raw.get("findings", [])) + tuple(s.symptom for s in patient.symptoms.all() if not s.resolved)
    sig = current_sig(patient)
    age = today().year - patient.birth_year if patient.birth_year else None
    first = patient.regimens.order_by("start").first()
    years = round((today() - first.start).days / 365.25, 1) if first else None
    return RiskProfile(
        age=age,
        regimen=sig or None,
        years_of_use=years,
        co_used=co_used,
        findings=findings,
        country=patient.country or None,
        **flags,
    )


def risk(patient: m.Patient) -> dict[str, Any]:
    """Risk factors, setting with reasons, co-use warnings and red-flag alerts (cached per data version)."""

    def compute() -> dict[str, Any]:
        return assess_risk(risk_profile(patient), knowledge(), safety_net()).to_dict(safety_net())

    return cached("risk", patient, compute)


def symptom_alerts(patient: m.Patient) -> list[dict[str, Any]]:
    """Red flags among the recorded symptoms, with the crisis help of the patient's country."""
    names = [s.symptom for s in patient.symptoms.all() if not s.resolved]
    return [a.to_dict(safety_net()) for a in red_flags(names, safety_net(), patient.country or None)]
