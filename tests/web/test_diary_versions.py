"""The patient's diary follows the approved plan version only: nothing of a draft, the new version once approved.

A CIWA-B of 40 drafts a re-plan that holds the current dose for three weeks (taper.toml hold rule), so
today's doses are the same in both versions; what differs is when the next change comes. The diary says
which version it follows and when the next change is, so both are checked against the versions' own steps.
"""

from __future__ import annotations

import re
from typing import Any

from benzotaper.web import clinic_clock, replans
from benzotaper.web import models as m
from tests.web.conftest import Clinic
from tests.web.test_loop import _api, _approve_guided, _ciwa, _setup


def _diary(clinic: Clinic) -> tuple[str, str | None, str]:
    """The diary page, its next-change date and the plan version it says it follows."""
    html = _api(clinic.other_patient_user).get("/diary/").content.decode()
    found = re.search(r'id="next-change">.*?<time datetime="([\d-]+)">', html, re.S)
    version = re.search(r'id="plan-version"[^>]*>\s*Following plan version (\d+)', html)
    assert version, "the diary names the plan version it follows"
    return html, found.group(1) if found else None, version.group(1)


def _next_start(plan_json: dict[str, Any]) -> str:
    """Read off the version's own steps: the first one starting after today (ISO dates sort as dates)."""
    today = clinic_clock.today().isoformat()
    return min(step["start"] for step in plan_json["steps"] if step["start"] > today)


def test_the_diary_follows_the_approved_version_and_shows_nothing_of_a_draft(clinic: Clinic) -> None:
    patient = _setup(clinic)  # the clinic's second patient login becomes this patient's
    _approve_guided(clinic, patient)
    first = m.Plan.objects.get(patient=patient, version=1)
    html, next_change, version = _diary(clinic)
    assert version == "1" and next_change == _next_start(first.plan)
    assert "/plans/1/pdf" in html

    assert _ciwa(_api(clinic.doctor), patient.pk, 2).status_code == 201
    draft = m.Replan.objects.get(patient=patient, status="waiting")
    drafted = _next_start(draft.plan)
    assert drafted > next_change, "the hold must move the next change later, or this test proves nothing"
    html, during, version = _diary(clinic)
    assert version == "1" and during == next_change and drafted not in html

    replans.approve(draft.pk, patient, clinic.doctor)
    second = m.Plan.objects.get(patient=patient, version=2)
    html, after, version = _diary(clinic)
    assert version == "2" and after == drafted == _next_start(second.plan)
    assert "/plans/2/pdf" in html and "/plans/1/pdf" not in html
    iso = clinic_clock.today().isoformat()
    today = next(step for step in second.plan["steps"] if step["start"] <= iso <= step["end"])
    assert today["doses"]
    listed = html[html.index('class="doses"') : html.index("</ul>", html.index('class="doses"'))]
    for dose in today["doses"]:
        assert f"{dose['mg']:g}" in listed and dose["time"] in listed
