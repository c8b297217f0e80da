"""Risk and setting: risk factors for complicated withdrawal, inpatient or outpatient with reasons, co-use warnings.

The rules are data (knowledge/data/assess/risk.toml): the setting is inpatient when any present factor calls for
it, so adding a factor can never lower the setting. Whatever the setting, the advice is a gradual, supervised
taper: the assessment never recommends stopping abruptly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from benzotaper.assess.crisis import country_code, source_list
from benzotaper.assess.instruments import shown
from benzotaper.assess.redflags import Alert, red_flags
from benzotaper.equivalence import diazepam_equivalent_mg
from benzotaper.errors import AssessmentError, BenzotaperError, ImplausibleValueError, ModelError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.safety_net import (
    FLAGS,
    SUBSTANCES,
    CoUseWarning,
    RiskFactor,
    SafetyNet,
    in_canonical,
    load_safety_net,
)
from benzotaper.regimen import Regimen, parse_regimens

SETTING_RANK = {"outpatient": 0, "inpatient": 1}
LABELS = {
    "diazepam_mg": "diazepam-equivalent mg/day",
    "age": "age (years)",
    "years_of_use": "years of use",
    "drug_count": "benzodiazepines or Z-drugs taken",
}


@dataclass(frozen=True)
class RiskProfile:
    """What is known about the patient; None means 'not asked' and is listed as not assessed."""

    age: float | None = None
    regimen: str | None = None
    diazepam_mg: float | None = None
    years_of_use: float | None = None
    seizure_history: bool | None = None
    previous_complicated_withdrawal: bool | None = None
    alcohol_dependence: bool | None = None
    polysubstance_dependence: bool | None = None
    unstable_medical_illness: bool | None = None
    unstable_psychiatric_illness: bool | None = None
    no_support: bool | None = None
    pregnant: bool | None = None
    co_used: frozenset[str] = field(default_factory=frozenset)
    findings: tuple[str, ...] = ()
    country: str | None = None

    def __post_init__(self) -> None:
        for name in ("age", "diazepam_mg", "years_of_use"):
            value = getattr(self, name)
            if value is not None and not _non_negative(value):
                raise AssessmentError(f"{name} must be a finite number of 0 or more (got {shown(value)})")
        for name in FLAGS:
            if not isinstance(getattr(self, name), bool | None):
                raise AssessmentError(f"{name} must be true or false (got {shown(getattr(self, name))})")
        unknown = sorted(shown(s) for s in set(self.co_used) - set(SUBSTANCES))
        if unknown:
            raise AssessmentError(f"co_used {', '.join(unknown)} unknown; use any of: {', '.join(SUBSTANCES)}")
        if self.regimen is not None and self.diazepam_mg is not None:
            raise AssessmentError("give regimen or diazepam_mg, not both")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> RiskProfile:
        """Build from a JSON object; unknown keys and wrong types are refused naming the field."""
        names = {f.name for f in fields(cls)}
        if not isinstance(raw, Mapping):
            raise AssessmentError(f"a risk profile must be an object of fields (got {type(raw).__name__})")
        unknown = sorted(shown(k) for k in set(raw) - names)
        if unknown:
            raise AssessmentError(f"unknown profile field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
        data = dict(raw)
        for key in ("co_used", "findings"):
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise AssessmentError(f"{key} must be a list of texts (got {shown(value)})")
            data[key] = frozenset(value) if key == "co_used" else tuple(value)
        for key in ("regimen", "country"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise AssessmentError(f"{key} must be a text (got {shown(data[key])})")
        return cls(**data)


def _non_negative(value: object) -> bool:
    """A finite number of 0 or more that fits a float (true/false are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        number = float(value)
    except OverflowError:  # a whole number beyond 1.8e308
        return False
    return number >= 0 and math.isfinite(number)


@dataclass(frozen=True, slots=True)
class FactorHit:
    """A risk factor present in the profile and what showed it."""

    factor: RiskFactor
    detail: str


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """Factors present, the setting with reasons, specialist referral, co-use warnings and red-flag alerts."""

    setting: str
    reasons: tuple[str, ...]
    referral: tuple[str, ...]
    factors: tuple[FactorHit, ...]
    co_use: tuple[CoUseWarning, ...]
    alerts: tuple[Alert, ...]
    diazepam_mg: float | None
    notes: tuple[str, ...]
    not_assessed: tuple[str, ...]
    advice: str
    sources: tuple[str, ...]

    def to_dict(self, net: SafetyNet) -> dict[str, Any]:
        """JSON-ready form with every source expanded."""
        return {
            "setting": self.setting,
            "reasons": list(self.reasons),
            "specialist_referral": list(self.referral),
            "factors": [
                {
                    "id": h.factor.id,
                    "name": h.factor.name,
                    "effect": h.factor.setting,
                    "detail": h.detail,
                    "reliability": h.factor.reliability,
                    "sources": list(h.factor.sources),
                    "note": h.factor.note or None,
                }
                for h in self.factors
            ],
            "co_use_warnings": [
                {
                    "substance": w.substance,
                    "title": w.title,
                    "message": w.message,
                    "advice": w.advice,
                    "sources": list(w.sources),
                }
                for w in self.co_use
            ],
            "alerts": [a.to_dict(net) for a in self.alerts],
            "diazepam_equivalent_mg_per_day": None if self.diazepam_mg is None else round(self.diazepam_mg, 2),
            "notes": list(self.notes),
            "not_assessed": list(self.not_assessed),
            "advice": self.advice,
            "sources": source_list(net, self.sources),
        }


def _dose(profile: RiskProfile, knowledge: Knowledge) -> tuple[float | None, tuple[str, ...], list[str]]:
    """Daily diazepam-equivalent mg (scheduled plus the most the as-needed part allows), drugs, notes."""
    if profile.regimen is None:
        return _plausible_dose(profile.diazepam_mg, knowledge), (), []
    regimens = _regimens(profile.regimen, knowledge)
    total, notes = 0.0, []
    for r in regimens:
        try:
            total += diazepam_equivalent_mg(knowledge, r.drug, r.max_daily_mg)
        except ModelError as exc:
            notes.append(f"{exc}; the dose factors leave it out")
    drugs = tuple(dict.fromkeys(r.drug for r in regimens))
    return total, drugs, notes


def _regimens(text: str, knowledge: Knowledge) -> list[Regimen]:
    """The profile's regimen text parsed; any refusal names the field, and a library error the parser lets
    through becomes one."""
    try:
        return parse_regimens(text, knowledge, start=date.today())
    except BenzotaperError as exc:
        raise AssessmentError(f"regimen: {exc}") from exc
    except (ValueError, LookupError, TypeError, ArithmeticError) as exc:
        raise AssessmentError(
            f"regimen {shown(text)} cannot be read ({exc}); write drug, dose and schedule, e.g. 'diazepam 5 mg tds'"
        ) from None


def _plausible_dose(mg: float | None, knowledge: Knowledge) -> float | None:
    """A diazepam-equivalent daily dose given directly, refused above the plausible maximum (policy.toml)."""
    limit = knowledge.policy.plausible_max_daily_diazepam_equivalent
    if mg is not None and mg > limit.value:
        raise ImplausibleValueError(
            f"diazepam_mg {mg:g} mg/day is implausible: at most {limit.value:g} mg/day ({limit.source}); "
            "check the unit and the decimal point"
        )
    return mg


def _numbers(profile: RiskProfile, dose: float | None, drugs: tuple[str, ...]) -> dict[str, float | None]:
    return {
        "diazepam_mg": dose,
        "age": profile.age,
        "years_of_use": profile.years_of_use,
        "drug_count": float(len(drugs)) if drugs else None,
    }


def _present(
    factor: RiskFactor,
    profile: RiskProfile,
    numbers: Mapping[str, float | None],
    drugs: tuple[str, ...],
    flags: set[str],
    net: SafetyNet,
) -> str | None:
    """What shows the factor is present, '' when absent, None when it could not be assessed."""
    t = factor.trigger
    if t.kind == "flag":
        value = getattr(profile, t.values[0])
        return None if value is None else (t.values[0].replace("_", " ") if value else "")
    if t.kind in ("above", "at_least"):
        value = numbers[t.field]
        if value is None:
            return None
        limit = net.thresholds[t.values[0]]
        canonical = in_canonical(t.field, value)
        hit = canonical > limit.value if t.kind == "above" else canonical >= limit.value
        sign = ">" if t.kind == "above" else ">="
        shown = limit.value / in_canonical(t.field, 1.0)
        return f"{LABELS[t.field]} {value:g} {sign} {shown:g} ({limit.source})" if hit else ""
    pool = {"co_use": profile.co_used, "finding": flags, "drug": set(drugs)}[t.kind]
    present = [v for v in t.values if v in pool]
    return ", ".join(present)


def assess_risk(profile: RiskProfile, knowledge: Knowledge, net: SafetyNet | None = None) -> RiskAssessment:
    """Risk factors present, inpatient or outpatient with reasons, co-use warnings and red-flag alerts."""
    net = net or load_safety_net()
    country = country_code(profile.country, net) if profile.country else None
    dose, drugs, notes = _dose(profile, knowledge)
    alerts = tuple(red_flags(profile.findings, net, country))
    flags = {a.flag for a in alerts}
    numbers = _numbers(profile, dose, drugs)
    hits, unassessed = [], []
    for factor in net.factors:
        detail = _present(factor, profile, numbers, drugs, flags, net)
        if detail is None:
            unassessed.append(factor.id)
        elif detail:
            hits.append(FactorHit(factor, detail))
    return _assessment(net, hits, alerts, dose, notes, unassessed, profile)


def _assessment(
    net: SafetyNet,
    hits: list[FactorHit],
    alerts: tuple[Alert, ...],
    dose: float | None,
    notes: list[str],
    unassessed: list[str],
    profile: RiskProfile,
) -> RiskAssessment:
    rule = net.setting
    inpatient = [h.factor.reason for h in hits if h.factor.setting == "inpatient"]
    setting = "inpatient" if inpatient else "outpatient"
    reasons = (rule.inpatient_reason, *inpatient) if inpatient else (rule.default_reason,)
    referral = tuple(h.factor.reason for h in hits if h.factor.setting == "specialist")
    if referral:
        referral = (rule.specialist_reason, *referral)
    warnings = tuple(net.co_use[s] for s in sorted(profile.co_used) if s in net.co_use)
    keys = [k for h in hits for k in h.factor.sources] + [k for w in warnings for k in w.sources]
    keys += [k for a in alerts for k in a.sources] + [*rule.sources, *rule.never_abrupt_sources]
    return RiskAssessment(
        setting=setting,
        reasons=reasons,
        referral=referral,
        factors=tuple(hits),
        co_use=warnings,
        alerts=alerts,
        diazepam_mg=dose,
        notes=tuple(notes),
        not_assessed=tuple(unassessed),
        advice=rule.never_abrupt,
        sources=tuple(dict.fromkeys(keys)),
    )
