"""Every source a page names is reachable: a link to its entry on the sources page (issue 18).

The fit, the next-sample advice and a re-plan's rules cite sources that only the TDM file defines
(`sheiner1979`, `hiemke2018`, ...); they were shown as plain text because the sources page listed only
the drug knowledge base's.
"""

from __future__ import annotations

import re

from benzotaper.web import models as m
from tests.web.conftest import Clinic
from tests.web.test_loop import _api, _approve_guided, _ciwa, _setup


def _linked(html: str) -> set[str]:
    return set(re.findall(r'href="/sources/#src-([\w.-]+)"', html))


def _plain_keys(html: str, keys: set[str]) -> set[str]:
    """Keys that appear in the page's text but never as a link."""
    return {k for k in keys if re.search(rf"[\s(,>]{re.escape(k)}[\s),<]", html) and k not in _linked(html)}


def test_the_fit_and_the_replan_link_every_source_they_name(clinic: Clinic) -> None:
    patient = _setup(clinic)
    client = _api(clinic.doctor)
    fit = client.get(f"/api/patients/{patient.pk}/fit").json()
    assert fit["eliminator"] == "fast"
    cited = set(fit["sources"]) | {fit["next_sample"]["source"]}
    assert {"sheiner1979", "hiemke2018"} <= cited  # the Bayesian fit and the trough-sampling advice
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert cited <= _linked(page), cited - _linked(page)

    _approve_guided(clinic, patient)
    assert _ciwa(client, patient.pk, 2).status_code == 201
    draft = m.Replan.objects.get(patient=patient, status="waiting")
    rules = {k for change in draft.changes for k in change.get("sources", [])}
    assert rules
    html = client.get(f"/patients/{patient.pk}/replans/{draft.pk}/").content.decode()
    assert rules <= _linked(html), rules - _linked(html)

    listed = client.get("/sources/").content.decode()
    anchors = set(re.findall(r'<dt id="src-([\w.-]+)">', listed))
    assert cited | rules <= anchors, (cited | rules) - anchors
    assert not _plain_keys(page, cited) and not _plain_keys(html, rules)
