"""Security: CSRF on every state-changing request, login throttling, cookie flags, token revocation and expiry,
and the security headers on every page the matrix knows.

The routes and their expected outcomes come from tests/web/test_permission_matrix.py (one table).
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client, override_settings
from django.utils import timezone

from benzotaper.web import models as m
from benzotaper.web.api import token_digest
from tests.web.conftest import PASSWORD, Clinic
from tests.web.test_permission_matrix import (
    MATRIX,
    PERSONAS,
    World,
    all_routes,
    allowed_persona,
    build_world,
    cells,
    is_write,
    outcome,
    request,
    rolled_back,
)

ONE_YEAR = 365 * 24 * 3600


@pytest.fixture
def world(clinic: Clinic) -> World:
    return build_world(clinic)


def _writes() -> list[tuple[str, str, str]]:
    """(template, method, persona allowed to make it) of every state-changing request."""
    out = []
    for route in all_routes():
        for method in route.methods:
            persona = allowed_persona(route.template, method)
            if is_write(route, method) and persona is not None:
                out.append((route.template, method, persona))
    return out


# --- CSRF -----------------------------------------------------------------------------------------------


def _session_write(world: World, template: str, method: str, persona: str, with_token: bool) -> tuple[Any, int]:
    """The request with the login session only (no bearer token), CSRF enforced; and the audit entries it left."""
    client = world.client(persona, enforce_csrf_checks=True)
    headers = {}
    if with_token:
        secret = _get_new_csrf_string()
        client.cookies[settings.CSRF_COOKIE_NAME] = secret
        headers["X-CSRFToken"] = secret
    before = m.AuditEntry.objects.count()
    response = request(world, persona, template, method, client=client, bearer=False, headers=headers)
    return response, m.AuditEntry.objects.count() - before


def test_every_state_changing_request_needs_the_csrf_token(world: World) -> None:
    writes = _writes()
    assert len(writes) >= 25
    wrong = []
    for template, method, persona in writes:
        response, audited = rolled_back(_session_write, world, template, method, persona, False)
        if response.status_code != 403 or audited:
            wrong.append(f"{method} /{template} as {persona} without the token: {response.status_code}, {audited=}")
        expected = MATRIX[template][method].split()[PERSONAS.index(persona)]
        response, _ = rolled_back(_session_write, world, template, method, persona, True)
        got = outcome(response, method)
        if got != expected:
            wrong.append(f"{method} /{template} as {persona} with the token: {got}, not {expected}")
    assert not wrong, "\n".join(wrong)


def test_a_bearer_token_needs_no_csrf_token(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    url = f"/api/patients/{world.clinic.patient.pk}/diary"
    body = json.dumps({"kind": "note", "note": "from the phone app"})
    headers = {"Authorization": f"Bearer {world.tokens['own_patient']}"}
    assert client.post(url, body, "application/json", headers=headers).status_code == 201


# --- login throttling -----------------------------------------------------------------------------------


def _login(username: str, password: str, address: str = "10.0.0.1", forwarded: str = "") -> Any:
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    return Client(REMOTE_ADDR=address, **extra).post("/login/", {"username": username, "password": password})


def _refused(response: Any, why: str) -> bool:
    return response.status_code == 200 and f"Too many failed logins {why}" in response.content.decode()


def test_an_account_locks_after_its_failures_from_any_address_then_reopens(clinic: Clinic) -> None:
    for i in range(settings.LOGIN_MAX_FAILURES):
        assert _login("doctor", "wrong", f"10.1.0.{i}").status_code == 200
    assert _refused(_login("doctor", PASSWORD, "10.1.1.1"), "for this account")
    assert _login("admin", PASSWORD, "10.1.1.1").status_code == 302  # another account, same address: fine
    past = timezone.now() - timedelta(seconds=settings.LOGIN_LOCK_SECONDS + 1)
    m.LoginFailure.objects.update(at=past)
    assert _login("doctor", PASSWORD, "10.1.1.1").status_code == 302


def test_an_address_locks_after_failures_across_many_accounts(clinic: Clinic) -> None:
    assert settings.LOGIN_MAX_FAILURES_PER_ADDRESS > settings.LOGIN_MAX_FAILURES
    for i in range(settings.LOGIN_MAX_FAILURES_PER_ADDRESS):
        assert _login(f"guess{i}", "wrong", "192.0.2.7").status_code == 200  # one try per name: no account locks
    assert _refused(_login("doctor", PASSWORD, "192.0.2.7"), "from this address")
    assert _login("doctor", PASSWORD, "192.0.2.8").status_code == 302
    assert set(m.LoginFailure.objects.values_list("address", flat=True)) == {"192.0.2.7"}


def test_behind_a_local_proxy_the_forwarded_address_counts_and_cannot_be_spoofed_from_outside(clinic: Clinic) -> None:
    for i in range(settings.LOGIN_MAX_FAILURES_PER_ADDRESS):
        _login(f"guess{i}", "wrong", "127.0.0.1", forwarded="203.0.113.7")
        # Sent directly (not from the proxy), a made-up X-Forwarded-For changes nothing: the peer counts.
        _login(f"other{i}", "wrong", "198.51.100.1", forwarded=f"203.0.113.{100 + i}")
    assert _refused(_login("doctor", PASSWORD, "127.0.0.1", forwarded="203.0.113.7"), "from this address")
    assert _refused(_login("doctor", PASSWORD, "198.51.100.1", forwarded="203.0.113.99"), "from this address")
    assert _login("doctor", PASSWORD, "127.0.0.1", forwarded="10.9.9.9, 203.0.113.8").status_code == 302


# --- cookies and TLS ------------------------------------------------------------------------------------


def test_the_session_cookie_is_httponly_lax_renewed_at_login_and_ends_with_the_browser(clinic: Clinic) -> None:
    client = Client()
    client.get("/login/")
    client.session.save()
    before = client.session.session_key
    response = client.post("/login/", {"username": "doctor", "password": PASSWORD})
    assert response.status_code == 302
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # plain HTTP (development): a Secure cookie would never come back
    assert cookie["max-age"] == "" and cookie["expires"] == ""  # a browser-session cookie
    assert cookie.value != before  # a new session id at login: no session fixation
    assert "Strict-Transport-Security" not in response


TLS_KEYS = ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS")


def _settings_with(env: dict[str, str], data: Path) -> dict[str, Any]:
    """The security settings as a fresh process reads them with this environment."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{k: getattr(s, k) for k in {TLS_KEYS!r}}}))"
    )
    full = {k: v for k, v in os.environ.items() if k != "BENZOTAPER_HTTPS"}
    full.update(DJANGO_SETTINGS_MODULE="benzotaper.web.settings", BENZOTAPER_DATA_DIR=str(data), **env)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# What BENZOTAPER_HTTPS=1 sets (checked below against the settings module itself).
TLS = {
    "SECURE_HSTS_SECONDS": ONE_YEAR,
    "SECURE_SSL_REDIRECT": True,
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
}


def test_over_tls_cookies_are_secure_and_hsts_is_sent(clinic: Clinic, tmp_path: Path) -> None:
    tls = _settings_with({"BENZOTAPER_HTTPS": "1"}, tmp_path)
    assert tls == TLS
    assert _settings_with({}, tmp_path) == dict.fromkeys(TLS_KEYS[:3], False) | {"SECURE_HSTS_SECONDS": 0}
    with override_settings(**tls):
        plain = Client().get("/login/")
        assert plain.status_code == 301 and plain["Location"].startswith("https://")
        response = Client().post("/login/", {"username": "doctor", "password": PASSWORD}, secure=True)
        assert response.status_code == 302
        assert response.cookies[settings.SESSION_COOKIE_NAME]["secure"] is True
        assert response["Strict-Transport-Security"] == f"max-age={ONE_YEAR}"
        form = Client().get("/login/", secure=True)
        assert form.cookies[settings.CSRF_COOKIE_NAME]["secure"] is True
        assert form["Strict-Transport-Security"] == f"max-age={ONE_YEAR}"


# --- tokens ---------------------------------------------------------------------------------------------


def _bearer(token: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {token}"})


def test_a_revoked_token_is_refused(world: World) -> None:
    token = world.tokens["team_clinician"]
    row = m.ApiToken.objects.get(digest=token_digest(token))
    assert _bearer(token).get("/api/patients").status_code == 200
    assert _bearer(token).delete(f"/api/tokens/{row.pk}").status_code == 204
    assert _bearer(token).get("/api/patients").status_code == 401
    assert _bearer(token).get(f"/fhir/Patient/{world.clinic.patient.pk}/$everything").status_code == 401


def test_an_expired_token_is_refused_and_its_expiry_is_shown(world: World) -> None:
    token = world.tokens["team_clinician"]
    row = m.ApiToken.objects.get(digest=token_digest(token))
    listed = {t["id"]: t for t in _bearer(token).get("/api/tokens").json()}
    expires = listed[row.pk]["expires"]
    assert expires.startswith((row.created + timedelta(days=settings.API_TOKEN_DAYS)).date().isoformat())
    almost = timezone.now() - timedelta(days=settings.API_TOKEN_DAYS) + timedelta(minutes=1)
    m.ApiToken.objects.filter(pk=row.pk).update(created=almost)
    assert _bearer(token).get("/api/patients").status_code == 200
    m.ApiToken.objects.filter(pk=row.pk).update(created=almost - timedelta(minutes=2))
    assert _bearer(token).get("/api/patients").status_code == 401
    assert _bearer(token).post("/fhir", "{}", "application/json").status_code == 401


def test_a_new_token_says_when_it_expires(world: World) -> None:
    client = world.client("team_clinician")
    body = client.post("/api/tokens", {"name": "phone"}, "application/json").json()
    assert body["token"] and body["expires"]
    days = (timezone.datetime.fromisoformat(body["expires"]) - timezone.datetime.fromisoformat(body["created"])).days
    assert days == settings.API_TOKEN_DAYS


# --- security headers on every page ---------------------------------------------------------------------


def _directives(csp: str) -> dict[str, list[str]]:
    parts = [d.split() for d in csp.split(";") if d.strip()]
    return {p[0]: p[1:] for p in parts}


def _header_problems(response: Any, tls: bool = False) -> list[str]:
    problems = []
    csp = _directives(response.get("Content-Security-Policy", ""))
    script = csp.get("script-src", csp.get("default-src"))
    if script is None or {"'unsafe-inline'", "'unsafe-eval'", "*", "data:"} & set(script):
        problems.append(f"script-src {script}")
    if csp.get("frame-ancestors") != ["'none'"]:
        problems.append(f"frame-ancestors {csp.get('frame-ancestors')}")
    if csp.get("object-src") != ["'none'"]:
        problems.append(f"object-src {csp.get('object-src')}")
    for header, value in (
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        ("X-Content-Type-Options", "nosniff"),
    ):
        if response.get(header) != value:
            problems.append(f"{header}: {response.get(header)}")
    hsts = response.get("Strict-Transport-Security")
    if tls and hsts != f"max-age={ONE_YEAR}":
        problems.append(f"HSTS over TLS: {hsts}")
    if not tls and hsts is not None:
        problems.append("HSTS over plain HTTP")
    if response.get("Content-Type", "").startswith("text/html"):
        inline = [s for s in re.findall(rb"<script([^>]*)>", response.content) if b"src=" not in s]
        if any(b'type="application/json"' not in s for s in inline):
            problems.append("an inline <script>")
    return problems


def test_every_page_sends_the_security_headers(world: World) -> None:
    checked, wrong = 0, []
    for template, method in cells():
        if method != "GET":
            continue
        for persona in {allowed_persona(template, method) or "admin", "anonymous"}:
            response = rolled_back(request, world, persona, template, method)
            checked += 1
            problems = _header_problems(response)
            if problems:
                wrong.append(f"GET /{template} as {persona} ({response.status_code}): {problems}")
    assert not wrong, "\n".join(wrong)
    assert checked >= 2 * len([c for c in cells() if c[1] == "GET"]) - 10


def test_over_tls_every_page_sends_hsts_and_the_other_headers(world: World) -> None:
    """With the settings of BENZOTAPER_HTTPS=1 (TLS, checked against settings.py above), every GET route."""
    checked, wrong = 0, []
    with override_settings(**TLS):
        for template, method in cells():
            if method != "GET":
                continue
            for persona in {allowed_persona(template, method) or "admin", "anonymous"}:
                secure = functools.partial(request, secure=True)
                response = rolled_back(secure, world, persona, template, method)
                checked += 1
                problems = _header_problems(response, tls=True)
                if problems:
                    wrong.append(f"GET /{template} as {persona} over TLS ({response.status_code}): {problems}")
    assert not wrong, "\n".join(wrong)
    assert checked >= 2 * len([c for c in cells() if c[1] == "GET"]) - 10


def test_the_header_check_can_fail() -> None:
    from django.http import HttpResponse

    bare = HttpResponse("<script>alert(1)</script>", content_type="text/html")
    problems = _header_problems(bare)
    assert len(problems) == 7  # no CSP script-src, frame-ancestors, object-src; three headers; the inline script
    assert "HSTS over TLS: None" in _header_problems(bare, tls=True)
    bare["Strict-Transport-Security"] = f"max-age={ONE_YEAR}"
    assert "HSTS over plain HTTP" in _header_problems(bare)


# --- the dependency audit's verdict ---------------------------------------------------------------------

AUDIT = Path(__file__).parents[2] / "scripts" / "audit-deps.sh"


def _verdict(tmp_path: Path, dependencies: list[dict[str, Any]], *flags: str) -> tuple[int, str]:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"dependencies": dependencies, "fixes": []}))
    env = {**os.environ, "AUDIT_REPORT": str(report)}
    done = subprocess.run(["bash", str(AUDIT), *flags], env=env, capture_output=True, text=True)
    return done.returncode, done.stdout


def test_the_dependency_audit_fails_on_a_fixable_vulnerability_and_never_passes_unchecked(tmp_path: Path) -> None:
    clean = {"name": "django", "version": "5.2.9", "vulns": []}
    fixable = {"name": "idna", "version": "3.6", "vulns": [{"id": "PYSEC-2024-60", "fix_versions": ["3.7"]}]}
    unfixed = {"name": "ecdsa", "version": "0.19.0", "vulns": [{"id": "GHSA-wj6h-64fc-37mp", "fix_versions": []}]}
    skipped = {"name": "django", "skip_reason": "Dependency not found on PyPI and could not be audited"}
    assert _verdict(tmp_path, [clean])[0] == 0
    code, out = _verdict(tmp_path, [clean, fixable, unfixed])
    assert code == 1 and "idna 3.6: PYSEC-2024-60 (fixed in: 3.7)" in out and "no fix yet" in out
    assert _verdict(tmp_path, [clean, unfixed])[0] == 0  # nothing to upgrade to: listed, not fatal
    code, out = _verdict(tmp_path, [skipped, skipped])
    assert code == 3 and "DEPENDENCY AUDIT NOT DONE" in out
    assert _verdict(tmp_path, [skipped], "--allow-unreachable")[0] == 0
    assert _verdict(tmp_path, [skipped, fixable], "--allow-unreachable")[0] == 1
