"""Two clinicians approve the same drafted re-plan at the same moment: exactly one new plan version wins.

Real threads, each with its own database connection, released together by a barrier. CI runs tests/web again
on PostgreSQL (scripts/with-postgres.sh), where the row locks in `replans.approve` decide. (The clinic's SQLite
file database serialises writers with IMMEDIATE transactions; the in-memory test database cannot queue them.)
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from benzotaper.web import clinic_clock, plan_records, replans
from benzotaper.web import models as m
from benzotaper.web.audit import acting_as
from tests.web.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def _draft() -> tuple[m.Patient, m.Replan, User, User]:
    team = m.CareTeam.objects.create(name="Ward A")
    first, second = make_user("first", "clinician", team), make_user("second", "clinician", team)
    start = clinic_clock.today() - timedelta(days=2)
    with acting_as(first):
        patient = m.Patient.objects.create(team=team, name="Race Example")
        m.Regimen.objects.create(
            patient=patient, sig="diazepam 10 mg tds", start=start - timedelta(days=90), parsed={}, daily_de_mg=30
        )
        options = {"strategy": "ashton", "start": start.isoformat()}
        plan = plan_records.build_plan("diazepam 10 mg tds", options)
        m.Plan.objects.create(
            patient=patient,
            version=1,
            status="approved",
            sig="diazepam 10 mg tds",
            options={**options, "events": []},
            plan=plan_records.plan_payload(plan),
            approved_by=first,
        )
        m.Hold.objects.create(patient=patient, day=clinic_clock.today(), kind="hold", days=7, reason="family crisis")
    draft = m.Replan.objects.get(patient=patient, status="waiting")
    return patient, draft, first, second


def test_two_clinicians_approving_at_once_make_exactly_one_version() -> None:
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        # SQLite's shared-cache in-memory test database answers a second writer with "table is locked" at once
        # instead of queueing it as the clinic's file database does (WAL, IMMEDIATE transactions, busy timeout).
        pytest.skip("needs a database that queues writers: runs on PostgreSQL in CI (scripts/with-postgres.sh)")
    patient, draft, first, second = _draft()
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def approve(user: User) -> None:
        try:
            barrier.wait(timeout=10)
            with acting_as(user):
                outcomes.append(replans.approve(draft.pk, patient, user).version)
        except replans.ReplanConflict as exc:
            outcomes.append(str(exc))
        except Exception as exc:  # any other failure is reported by the assertion below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(u,)) for u in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    versions = [o for o in outcomes if isinstance(o, int)]
    refusals = [o for o in outcomes if isinstance(o, str)]
    assert len(outcomes) == 2 and not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert versions == [2] and len(refusals) == 1 and "already approved" in refusals[0]
    assert list(m.Plan.objects.filter(patient=patient).values_list("version", flat=True).order_by("version")) == [1, 2]
    assert m.Replan.objects.get(pk=draft.pk).status == "approved"
