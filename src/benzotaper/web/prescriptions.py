"""A patient's regimen records read through the core's parser: today's sig, since when, and a preview."""

from __future__ import annotations

from datetime import date
from typing import Any

from benzotaper.equivalence import diazepam_equivalent_mg
from benzotaper.regimen import Regimen, parse_regimens
from benzotaper.web import models as m
from benzotaper.web.clinic_clock import today
from benzotaper.web.kb import knowledge


def parse_sig(sig: str, start: date, end: date | None = None) -> list[Regimen]:
    """The core's parse of a free-text regimen (raises BenzotaperError with a clear message)."""
    return parse_regimens(sig, knowledge(), start=start, end=end)


def regimen_preview(sig: str, start: date, end: date | None = None) -> dict[str, Any]:
    """What the parser understood, to show back before saving: per drug the doses, mg/day and diazepam-eq."""
    k = knowledge()
    drugs: list[dict[str, Any]] = []
    for r in parse_sig(sig, start, end):
        drugs.append(
            {
                "drug": r.drug,
                "name": k.drug(r.drug).name,
                "doses": [{"time": d.at.strftime("%H:%M"), "mg": d.mg} for d in r.doses],
                "daily_mg": round(r.daily_mg, 4),
                "prn_mg": r.prn_mg,
                "prn_max_per_day": r.prn_max_per_day,
                "diazepam_mg": round(diazepam_equivalent_mg(k, r.drug, r.daily_mg), 2),
            }
        )
    return {"sig": sig, "drugs": drugs, "diazepam_mg": round(sum(d["diazepam_mg"] for d in drugs), 2)}


def active_regimens(patient: m.Patient, day: date | None = None) -> list[m.Regimen]:
    """The regimen records running on `day` (default today)."""
    day = day or today()
    return [r for r in patient.regimens.all() if r.start <= day and (r.end is None or r.end >= day)]


def current_sig(patient: m.Patient) -> str:
    """Today's regimen as one sig ('a + b'), or '' when none is recorded."""
    return " + ".join(r.sig for r in active_regimens(patient))


def current_since(patient: m.Patient) -> date | None:
    """When the current regimen began (the latest start among the active records)."""
    active = active_regimens(patient)
    return max(r.start for r in active) if active else None
