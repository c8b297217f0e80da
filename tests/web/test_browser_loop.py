"""The ward loop end to end in headless Chromium: register -> levels -> fit -> guided plan -> CIWA-B -> re-plan.

A clinician registers a patient and the regimen (alprazolam 2 mg tds) through the forms and records three
trough levels through the level form. The troughs, 12.3 ng/mL, come from the hand calculation in
tests/web/test_loop.py (one-compartment model, twice the typical clearance), so the patient page must call
this patient a `fast` eliminator and draw the forecast band. The clinician builds the plan guided by these
levels (the side-by-side against a fast and a slow eliminator shown), approves it, records a CIWA-B of 40
(20 items x 2: the moderate band, a hold), finds the re-plan on the worklist, approves it after reading what
changes, and the patient's phone diary then lists the doses of the approved re-plan for today. Every page
is watched for console errors and CSP violations.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.core.cache import cache

from benzotaper.web import clinic_clock, plan_records, prescriptions
from benzotaper.web import models as m
from tests.web.conftest import make_user
from tests.web.test_browser import PHONE, _chart_traces, _login, _open, _submit, browser
from tests.web.test_loop import SIG, trough_ng_ml

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the module's Chromium fixture, shared with test_browser.py

TROUGH = round(trough_ng_ml(2.0), 1)  # 12.3 ng/mL: twice the typical clearance


@pytest.fixture
def ward(transactional_db: Any) -> dict[str, Any]:
    """A ward clinician of the detox ward and a phone login for the patient they will register."""
    cache.clear()
    team = m.CareTeam.objects.create(name="Detox ward")
    return {"doctor": make_user("ward-doctor", "clinician", team), "phone": make_user("ward-patient", "patient")}


def _register(page: Any, base: str) -> int:
    """A new patient through the form, then the regimen (read back before saving): alprazolam 2 mg tds."""
    page.click("header nav >> text=New patient")
    page.select_option("#id_team", label="Detox ward")
    page.fill("#id_name", "Fay Fast")
    page.fill("#id_birth_year", "1975")
    page.fill("#id_country", "GB")
    _submit(page, "main form button[type=submit]")
    page.wait_for_url(re.compile(r"/patients/\d+/regimen/$"))
    pid = int(re.search(r"/patients/(\d+)/", page.url).group(1))  # type: ignore[union-attr]
    page.fill("#id_sig", SIG)
    page.fill("#id_start", (clinic_clock.today() - timedelta(days=7)).isoformat())
    _submit(page, "button[name=action][value=preview]")
    assert "alprazolam" in page.inner_text("#preview").lower()
    _submit(page, "#preview button[name=action][value=save]")
    page.wait_for_url(f"{base}/patients/{pid}/")
    return pid


def _record_trough(page: Any, base: str, pid: int, days_ago: int) -> None:
    """One trough through the level form: 07:55, before the 08:00 dose."""
    at = datetime.combine(clinic_clock.today() - timedelta(days=days_ago), time(7, 55))
    page.goto(f"{base}/patients/{pid}/levels/new/")
    page.select_option("#id_analyte", "alprazolam")
    page.fill("#id_sampled_at", at.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_value", f"{TROUGH}")
    page.select_option("#id_unit", "ng/mL")
    page.fill("#id_lab", "Ward lab")
    _submit(page, "main form button[type=submit]")
    page.wait_for_url(f"{base}/patients/{pid}/")


def test_the_ward_runs_the_whole_loop_in_the_browser(browser: Any, live_server: Any, ward: dict[str, Any]) -> None:
    base = live_server.url
    doc = _open(browser, viewport={"width": 1280, "height": 900})
    page = doc.page
    _login(doc, base, "ward-doctor")
    assert page.url.endswith("/worklist/")
    pid = _register(page, base)
    patient = m.Patient.objects.get(pk=pid)
    assert prescriptions.current_sig(patient) == SIG

    # Three troughs, then this patient's model on the patient page.
    for days_ago in (3, 2, 1):
        _record_trough(page, base, pid, days_ago)
    assert m.Level.objects.filter(patient_id=pid).count() == 3
    assert page.inner_text("#eliminator").strip() == "fast"
    assert float(page.inner_text("#clearance-ratio")) > 1.38  # beyond the population's 80th centile
    traces = _chart_traces(page)
    assert "alprazolam measured" in traces
    assert any(name.startswith("alprazolam forecast") for name in traces), traces

    # The plan guided by these levels, beside the fixed schedule for a fast, this and a slow eliminator.
    page.click("#fit >> text=Plan guided by these levels")
    page.wait_for_url(f"{base}/patients/{pid}/plan/guided/")
    page.fill("#id_start", clinic_clock.today().isoformat())
    page.fill("#id_level_fall", "5")
    page.select_option("#id_trajectory", "occupancy")
    page.select_option("#id_switch", "later")
    _submit(page, "button[name=action][value=preview]")
    assert page.inner_text("#guided-eliminator").strip() == "fast"
    comparison = page.inner_text("#comparison").lower()
    assert "fast" in comparison and "slow" in comparison and "this patient" in comparison
    assert page.locator("#comparison tbody tr").count() >= 4  # the fixed schedule and the guided plan, each
    _submit(page, "#approve")
    page.wait_for_url(f"{base}/patients/{pid}/plans/1/")
    first = m.Plan.objects.get(patient_id=pid, version=1)
    assert first.status == "approved" and "guided" in first.options

    # A CIWA-B of 40 (each of the 20 items scored 2) drafts a re-plan; nothing changes until approved.
    page.goto(f"{base}/patients/{pid}/assess/ciwa_b/")
    radios = page.locator("form.scale input[type=radio][value='2']")
    assert radios.count() == 20
    for radio in radios.all():
        radio.check()
    _submit(page, "form.scale button[type=submit]")
    assert m.Assessment.objects.get(patient_id=pid).total == 40
    assert m.Plan.objects.filter(patient_id=pid).count() == 1
    draft = m.Replan.objects.get(patient_id=pid, status="waiting")
    assert "CIWA-B 40" in draft.reason

    # The worklist leads to the re-plan; its page says what changes from which day; approve it.
    page.goto(f"{base}/worklist/")
    row = page.locator("#worklist tr.work", has_text="Fay Fast").first
    assert "re-plan" in row.inner_text().lower()
    with page.expect_navigation():
        row.locator("td:nth-child(3) a").click()
    assert re.search(rf"/patients/{pid}/replans/{draft.pk}/$", page.url), page.url
    assert page.locator("#changes tbody tr").count() >= 1
    _submit(page, "#approve-replan")
    page.wait_for_url(f"{base}/patients/{pid}/plans/2/")
    second = plan_records.approved_plan(patient)
    assert second is not None and second.version == 2
    assert doc.problems() == [], "console errors or CSP violations on the clinician's pages"

    # The patient's phone diary lists today's doses of the approved re-plan.
    patient.user = ward["phone"]
    patient.save()
    today = plan_records.step_on(second.plan, clinic_clock.today())
    assert today is not None and today["doses"]
    me = _open(browser, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    _login(me, base, "ward-patient")
    assert me.page.url.endswith("/diary/")
    listed = me.page.inner_text("ul.doses")
    for dose in today["doses"]:
        assert f"{dose['mg']:g}" in listed, (dose, listed)
    # Today's doses are the same in both versions (the re-plan holds the dose); the next change is not.
    assert me.page.inner_text("#plan-version").strip() == "Following plan version 2"
    after = clinic_clock.today().isoformat()
    changes = {v: min(s["start"] for s in p.plan["steps"] if s["start"] > after) for v, p in ((1, first), (2, second))}
    assert changes[1] < changes[2]  # the hold moved the next change later
    assert me.page.get_attribute("#next-change time", "datetime") == changes[2]
    assert me.problems() == [], "console errors or CSP violations in the diary"
    me.page.context.close()
    doc.page.context.close()
