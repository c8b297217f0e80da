"""The demo clinic: the two worked cases of domain.md as patients, with regimens, levels, scores and plans.

Histories, symptoms and treatments come from the case files in knowledge/data/cases. The serum levels,
scale answers and diary entries are SYNTHETIC (labelled so): levels are the core's typical-patient
prediction scaled by a stated factor, so the pages have something to read against the model.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

import benzotaper
from benzotaper.simulate import simulate_sig
from benzotaper.web import clinic_clock, kb, plan_records, prescriptions, scoring
from benzotaper.web import models as m
from benzotaper.web.audit import acting_as

CASES = Path(benzotaper.__file__).parent / "knowledge" / "data" / "cases"
DEMO_PASSWORD = "demo-clinic-2026"  # printed by `serve --demo`; demo accounts only
SYNTHETIC = "demo data (synthetic)"
# (case file, shown name, level factor vs the typical patient, country, risk factors)
PEOPLE: list[tuple[str, str, float, str, dict[str, Any]]] = [
    ("case1_anxiety_lorazepam.yaml", "Anna K. (worked case 1)", 1.0, "PL", {"seizure_history": True, "co_used": []}),
    ("case2_alprazolam_breathlessness.yaml", "Marek W. (worked case 2)", 1.8, "GB", {"co_used": ["alcohol"]}),
]


def _user(username: str, role: str, team: m.CareTeam | None, superuser: bool = False) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User.objects.create_user(username, password=DEMO_PASSWORD, is_superuser=superuser, is_staff=superuser)
    profile, _ = m.Profile.objects.get_or_create(user=user, defaults={"role": role})
    if team is not None:
        profile.teams.add(team)
    return user


def load_demo() -> dict[str, Any]:
    """Create the demo clinic once (idempotent): a care team, accounts, two patients with their records."""
    with transaction.atomic():
        team, _ = m.CareTeam.objects.get_or_create(name="Detox ward (demo)")
        m.CareTeam.objects.get_or_create(name="Other practice (demo)")
        clinician = _user("demo-clinician", "clinician", team)
        _user("demo-admin", "admin", None, superuser=True)
        created = []
        with acting_as(clinician):
            for i, (case, name, factor, country, risk) in enumerate(PEOPLE):
                if m.Patient.objects.filter(team=team, name=name).exists():
                    continue
                login = _user("demo-patient", "patient", None) if i == 1 else None
                _patient(team, case, name, factor, country, risk, login)
                created.append(name)
    return {
        "team": team.name,
        "created": created,
        "users": ["demo-clinician", "demo-patient", "demo-admin"],
        "password": DEMO_PASSWORD,
    }


def _patient(
    team: m.CareTeam, case: str, name: str, factor: float, country: str, risk: dict[str, Any], login: User | None
) -> m.Patient:
    """One worked case as a patient; `login` is set at creation, so the re-plan drafted last stays current."""
    raw = yaml.safe_load((CASES / case).read_text(encoding="utf-8"))
    person = raw.get("patient", {})
    ind = raw.get("indication") or {}
    patient = m.Patient.objects.create(
        team=team,
        name=name,
        identifier=f"DEMO-{case[:5].upper()}",
        birth_year=person.get("birth_year"),
        sex=person.get("sex", ""),
        country=country,
        indication=ind.get("condition", ""),
        indication_since=ind.get("since"),
        indication_symptoms=", ".join(ind.get("symptoms", [])),
        risk=risk,
        user=login,
    )
    for course in raw["bzd_history"]:
        sig = f"{course['drug']} {course['dose']}"
        preview = prescriptions.regimen_preview(sig, course["start"], course.get("end"))
        m.Regimen.objects.create(
            patient=patient,
            sig=sig,
            start=course["start"],
            end=course.get("end"),
            parsed=preview,
            daily_de_mg=preview["diazepam_mg"],
        )
    for s in raw["symptoms"]:
        m.Symptom.objects.create(patient=patient, symptom=s["symptom"], onset=s.get("onset"), note=s.get("note") or "")
    for t in raw.get("treatments", []):
        m.Treatment.objects.create(
            patient=patient,
            drug=t["drug"],
            target=t["for"],
            start=t.get("start"),
            end=t.get("end"),
            effect=t.get("effect") or "",
        )
    _levels(patient, factor)
    _scores(patient)
    plan = _plan(patient)
    _diary(patient, plan)
    if case.startswith("case2"):
        _recent_score(patient)
    return patient


def _recent_score(patient: m.Patient) -> None:
    """Yesterday's CIWA-B in the moderate band (synthetic): the app drafts a re-plan for the clinician to review."""
    ciwa = kb.instruments()["ciwa_b"]
    answers = {item.id: (2 if k < 4 else 1) for k, item in enumerate(ciwa.items)}  # 4 x 2 + 16 x 1 = 24
    _assessment(patient, "ciwa_b", answers, datetime.combine(clinic_clock.today() - timedelta(days=1), time(10)))


def _levels(patient: m.Patient, factor: float) -> None:
    """Two trough levels a week apart, 28 and 21 days ago: the typical prediction times `factor`."""
    sig = prescriptions.current_sig(patient)
    today = clinic_clock.today()
    start = today - timedelta(days=60)
    report = simulate_sig(kb.knowledge(), sig, days=60, start=start, step_h=0.25)
    parent = report.regimens[0].drug
    analyte = kb.knowledge().drug(parent).analyte
    curve = report.curves.analyte(analyte)[0]
    first_dose = min(d.at for d in report.regimens[0].doses)
    tz = timezone.get_current_timezone()
    for days_ago in (28, 21):
        when = datetime.combine(today - timedelta(days=days_ago), first_dose) - timedelta(minutes=30)
        hours = (when - datetime.combine(start, time())).total_seconds() / 3600
        value = float(np.interp(hours, report.curves.times_h, curve)) * factor
        m.Level.objects.create(
            patient=patient,
            analyte=analyte,
            sampled_at=timezone.make_aware(when, tz),
            value_ng_ml=round(value, 1),
            lab=SYNTHETIC,
            method="LC-MS/MS",
        )


def _plan(patient: m.Patient) -> m.Plan:
    """An approved plan guided by the two levels, started three weeks ago (on the day of the second level)."""
    from benzotaper.web.guided import build_guided

    start = (clinic_clock.today() - timedelta(days=21)).isoformat()
    built, _, options = build_guided(patient, {"start": start, "trajectory": "occupancy"})
    payload = plan_records.plan_payload(built)
    clinician = User.objects.get(username="demo-clinician")
    return m.Plan.objects.create(
        patient=patient,
        version=1,
        status="approved",
        sig=prescriptions.current_sig(patient),
        options=options,
        plan=payload,
        approved_by=clinician,
        approved_at=timezone.now() - timedelta(days=22),
    )


def _scores(patient: m.Patient) -> None:
    """Weekly CIWA-B (synthetic answers) and a baseline SDS, recorded before the plan (so they draft no re-plan)."""
    instruments = kb.instruments()
    ciwa = instruments["ciwa_b"]
    today = clinic_clock.today()
    for week, level in enumerate((2, 2, 1, 1)):
        answers = {item.id: min(level, max(o.value for o in item.options)) for item in ciwa.items}
        _assessment(patient, "ciwa_b", answers, datetime.combine(today - timedelta(days=28 - 7 * week), time(10)))
    sds = instruments["sds"]
    answers = {item.id: max(o.value for o in item.options) - 1 for item in sds.items}
    _assessment(patient, "sds", answers, datetime.combine(today - timedelta(days=30), time(9)))


def _assessment(patient: m.Patient, code: str, answers: dict[str, int], taken: datetime) -> m.Assessment:
    """A scale result scored by the core, marked synthetic."""
    result = scoring.score_answers(code, answers)
    return m.Assessment.objects.create(
        patient=patient,
        instrument=code,
        taken_at=timezone.make_aware(taken),
        answers=answers,
        total=result["total"],
        band=result["band"],
        source="synthetic",  # Assessment.source holds 12 characters (PostgreSQL enforces it)
    )


def _diary(patient: m.Patient, plan: m.Plan) -> None:
    """A few diary days of the plan's doses and check-ins."""
    today = clinic_clock.today()
    for days_ago in (3, 2, 1):
        day = today - timedelta(days=days_ago)
        step = plan_records.step_on(plan.plan, day) or {"doses": []}
        for dose in step["doses"]:
            at = timezone.make_aware(datetime.combine(day, time.fromisoformat(dose["time"])))
            m.DiaryEntry.objects.create(
                patient=patient,
                day=day,
                at=at,
                kind="dose",
                drug=dose["drug"],
                planned_mg=dose["mg"],
                taken_mg=dose["mg"],
                note=SYNTHETIC,
            )
        m.DiaryEntry.objects.create(
            patient=patient,
            day=day,
            at=timezone.make_aware(datetime.combine(day, time(21))),
            kind="checkin",
            feeling=5 + days_ago % 2,
            note=SYNTHETIC,
        )


def demo_day() -> date:
    """The date the demo is built around (today)."""
    return clinic_clock.today()
