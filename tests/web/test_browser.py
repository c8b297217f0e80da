"""End to end in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against the live server.

A clinician logs in through the form, creates a patient, records a regimen (shown back before saving),
builds and approves a plan (the chart drawn), records a serum level (seen on the patient's chart); the
patient logs in on a phone, confirms a dose and saves a check-in; the clinician sees both. Every page is
watched for console errors and Content-Security-Policy violations.

Install the browser with `bash scripts/install-chromium.sh` (never `playwright install`). Without it
these tests are skipped, except in CI (CI set), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache

from benzotaper.web import clinic_clock
from benzotaper.web import models as m
from tests.web.conftest import PASSWORD, make_user

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("BENZOTAPER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000
# Records CSP violations in the page (init scripts are injected by the browser, so the CSP does not block them).
CSP_PROBE = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile + ":" + e.lineNumber);
});
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the browser tests must run; see scripts/install-chromium.sh)")
    pytest.skip(f"{reason}; run `bash scripts/install-chromium.sh`")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    # Playwright's sync API keeps an event loop on this thread; Django would then refuse ORM calls
    # from the test (SynchronousOnlyOperation). The live server runs in its own thread either way.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class Watched:
    """A page with everything it logged as an error."""

    page: Any
    errors: list[str] = field(default_factory=list)

    def console(self, msg: Any) -> None:
        url = msg.location.get("url", "")
        # Chromium asks for /favicon.ico on its own; the site has none yet (a 404 that is not the page's).
        if msg.type == "error" and not url.endswith("/favicon.ico"):
            self.errors.append(f"console: {msg.text} {url}".strip())

    def problems(self) -> list[str]:
        return self.errors + [f"CSP: {v}" for v in self.page.evaluate("window.__csp || []")]


def _open(browser: Any, **context: Any) -> Watched:
    ctx = browser.new_context(locale="en-GB", timezone_id="Europe/Warsaw", **context)
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.add_init_script(CSP_PROBE)
    page = ctx.new_page()
    watched = Watched(page)
    page.on("console", lambda msg: watched.console(msg))
    page.on("pageerror", lambda exc: watched.errors.append(f"page error: {exc}"))
    return watched


def _submit(page: Any, target: Any, tap: bool = False) -> None:
    """Click (or tap) a submit button and wait for the page it leads to."""
    button = page.locator(target) if isinstance(target, str) else target
    with page.expect_navigation():
        button.tap() if tap else button.click()


def _login(w: Watched, base: str, username: str) -> None:
    page = w.page
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    _submit(page, "form button[type=submit].primary")
    assert "/login/" not in page.url, page.inner_text("main")


def _chart_traces(page: Any) -> list[str]:
    """Names of the traces Plotly drew in #chart (after chart.js marked it ready)."""
    page.wait_for_selector("#chart[data-ready='1']")
    names: list[str] = page.evaluate("Array.from(document.getElementById('chart').data, t => t.name || '')")
    return names


@pytest.fixture
def team_and_users(transactional_db: Any) -> dict[str, Any]:
    # The page cache is keyed by patient id and audit id, both reused once earlier tests' rows are gone.
    cache.clear()
    team = m.CareTeam.objects.create(name="Ward E2E")
    doctor = make_user("e2e-doctor", "clinician", team)
    patient_user = make_user("e2e-patient", "patient")
    return {"team": team, "doctor": doctor, "patient_user": patient_user}


def test_login_form_refuses_a_wrong_password(browser: Any, live_server: Any, team_and_users: dict[str, Any]) -> None:
    w = _open(browser)
    w.page.goto(f"{live_server.url}/login/")
    w.page.fill("#id_username", "e2e-doctor")
    w.page.fill("#id_password", "not-the-password")
    _submit(w.page, "form button[type=submit].primary")
    assert "/login/" in w.page.url
    assert w.page.locator("main form .errorlist, main form .errors").count() >= 1
    assert w.problems() == []
    w.page.context.close()


def test_clinician_builds_a_plan_and_patient_keeps_the_diary(
    browser: Any, live_server: Any, team_and_users: dict[str, Any]
) -> None:
    base = live_server.url
    doc = _open(browser, viewport={"width": 1280, "height": 900})
    page = doc.page

    # Log in through the form: the clinician lands on the worklist.
    _login(doc, base, "e2e-doctor")
    assert page.url.endswith("/worklist/")

    # A new patient, then straight to the regimen form.
    page.click("header nav >> text=New patient")
    page.select_option("#id_team", label="Ward E2E")
    page.fill("#id_name", "Eve Browser")
    page.fill("#id_birth_year", "1968")
    page.fill("#id_country", "GB")
    _submit(page, "main form button[type=submit]")
    page.wait_for_url(re.compile(r"/patients/\d+/regimen/$"))
    pid = int(re.search(r"/patients/(\d+)/", page.url).group(1))  # type: ignore[union-attr]

    # The regimen is read back before it is saved.
    start = clinic_clock.today() - timedelta(days=90)
    page.fill("#id_sig", "lorazepam 1 mg tds")
    page.fill("#id_start", start.isoformat())
    _submit(page, "button[name=action][value=preview]")
    preview = page.locator("#preview")
    preview.wait_for()
    assert "lorazepam" in preview.inner_text().lower()
    assert "3.0 mg/" in preview.inner_text() or "3 mg/" in preview.inner_text()
    assert not m.Regimen.objects.filter(patient_id=pid).exists()
    _submit(page, "#preview button[name=action][value=save]")
    page.wait_for_url(f"{base}/patients/{pid}/")
    assert m.Regimen.objects.get(patient_id=pid).sig == "lorazepam 1 mg tds"
    assert "lorazepam 1 mg tds" in page.inner_text("#regimen")

    # Plan builder: show the plan (its chart is drawn), then approve it as version 1.
    page.click("main .actions >> text=Plan builder")
    page.wait_for_url(f"{base}/patients/{pid}/plan/")
    page.fill("#id_start", clinic_clock.today().isoformat())
    _submit(page, "button[name=action][value=preview]")
    page.locator("#draft").wait_for()
    assert any("diazepam-eq" in name for name in _chart_traces(page))
    assert page.locator("table.steps tbody tr").count() >= 3
    _submit(page, "#approve")
    page.wait_for_url(f"{base}/patients/{pid}/plans/1/")
    assert "approved" in page.inner_text("h1").lower()
    _chart_traces(page)
    assert m.Plan.objects.get(patient_id=pid, version=1).approved_by == team_and_users["doctor"]

    # A serum level, seen on the patient's chart.
    page.goto(f"{base}/patients/{pid}/levels/new/")
    page.select_option("#id_analyte", "lorazepam")
    page.fill("#id_value", "21.5")
    page.select_option("#id_unit", "ng/mL")
    page.fill("#id_lab", "E2E lab")
    _submit(page, "main form button[type=submit]")
    page.wait_for_url(f"{base}/patients/{pid}/")
    assert "lorazepam measured" in _chart_traces(page)
    measured = page.evaluate(
        "Array.from(document.getElementById('chart').data).find(t => t.name === 'lorazepam measured').y"
    )
    assert measured == [21.5]
    assert "21.5" in page.inner_text("#levels")
    assert doc.problems() == [], "console errors or CSP violations on the clinician's pages"

    # The patient, on a phone, confirms today's first dose and saves a check-in.
    patient = m.Patient.objects.get(pk=pid)
    patient.user = team_and_users["patient_user"]
    patient.save()
    me = _open(browser, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    phone = me.page
    _login(me, base, "e2e-patient")
    assert phone.url.endswith("/diary/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "the diary scrolls sideways"
    first = phone.locator("ul.doses li.dose").first
    what = first.locator(".what").inner_text()
    assert "lorazepam" in what.lower() or "diazepam" in what.lower(), what
    _submit(phone, first.locator("button[type=submit]"), tap=True)
    assert "Dose recorded" in phone.inner_text(".messages")
    assert phone.locator("ul.doses li.dose.done").count() == 1
    phone.fill("#id_feeling", "7")
    phone.fill("#id_note", "slept badly, calmer by noon")
    _submit(phone, "form.checkin button[type=submit]", tap=True)
    assert "check-in is saved" in phone.inner_text(".messages")
    assert "7/10" in phone.inner_text("ul.entries")
    assert me.problems() == [], "console errors or CSP violations in the diary"
    assert m.DiaryEntry.objects.filter(patient_id=pid).count() == 2
    me.page.context.close()

    # The clinician sees both diary entries on the patient page, in the table and on the chart.
    page.goto(f"{base}/patients/{pid}/")
    traces = _chart_traces(page)
    assert "feeling (diary, 0-10)" in traces and "taken (diary, diazepam-eq mg/day)" in traces
    diary = page.locator("section.card", has=page.locator("h2", has_text="Patient diary")).inner_text()
    assert "7/10" in diary and "slept badly, calmer by noon" in diary
    assert doc.problems() == [], "console errors or CSP violations on the patient page"
    doc.page.context.close()
