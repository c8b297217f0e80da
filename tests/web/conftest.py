"""Fixtures for the web app: care teams, clinicians of two teams, a patient with a login, an admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from benzotaper.web import clinic_clock, plan_records
from benzotaper.web import models as m
from benzotaper.web.audit import acting_as

PASSWORD = "a-long-test-password-7"


@dataclass
class Clinic:
    team: m.CareTeam
    other_team: m.CareTeam
    doctor: User
    stranger: User
    admin: User
    patient_user: User
    other_patient_user: User
    patient: m.Patient
    other_patient: m.Patient

    def client(self, user: User | None) -> Client:
        c = Client()
        if user is not None:
            c.force_login(user)
        return c


def make_user(name: str, role: str, team: m.CareTeam | None = None) -> User:
    user = User.objects.create_user(name, password=PASSWORD, is_superuser=role == "admin")
    profile = m.Profile.objects.create(user=user, role=role)
    if team is not None:
        profile.teams.add(team)
    return user


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    """Page caches are keyed by ids that a rolled-back test reuses: start every test with an empty cache."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clinic(db: Any) -> Clinic:
    team = m.CareTeam.objects.create(name="Ward A")
    other = m.CareTeam.objects.create(name="Practice B")
    doctor = make_user("doctor", "clinician", team)
    stranger = make_user("stranger", "clinician", other)
    admin = make_user("admin", "admin")
    p_user = make_user("pat", "patient")
    o_user = make_user("otherpat", "patient")
    with acting_as(doctor):
        patient = m.Patient.objects.create(
            team=team, name="Ann Example", birth_year=1970, sex="F", country="GB", user=p_user
        )
        m.Regimen.objects.create(
            patient=patient,
            sig="alprazolam 1 mg tds",
            start=date(2025, 1, 1),
            parsed={"drugs": [{"drug": "alprazolam"}]},
            daily_de_mg=60.0,
        )
    other_patient = m.Patient.objects.create(team=other, name="Bob Other", user=o_user)
    return Clinic(team, other, doctor, stranger, admin, p_user, o_user, patient, other_patient)


def approve_running_plan(clinic: Clinic, days_ago: int = 2, sig: str = "alprazolam 1 mg tds") -> m.Plan:
    """Version 1 of an approved Ashton plan for clinic.patient that started `days_ago` days ago."""
    start = (clinic_clock.today() - timedelta(days=days_ago)).isoformat()
    with acting_as(clinic.doctor):
        plan = plan_records.build_plan(sig, {"strategy": "ashton", "start": start})
        return m.Plan.objects.create(
            patient=clinic.patient,
            version=1,
            status="approved",
            sig=sig,
            options={"strategy": "ashton", "start": start, "events": []},
            plan=plan_records.plan_payload(plan),
            approved_by=clinic.doctor,
        )
