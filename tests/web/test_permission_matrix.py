"""The permission matrix: every route Django's resolver knows, asked by six personas, checked against one table.

Routes are read from the resolver (pages, the ninja API's and the FHIR API's patterns), so a route added
later fails `test_every_route_is_in_the_matrix` until it gets a row in MATRIX. Each cell runs in a
savepoint that is rolled back, so every persona meets the same clinic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from benzotaper.web import clinic_clock, kb, plan_records, replans
from benzotaper.web import models as m
from benzotaper.web.api import token_digest
from benzotaper.web.audit import acting_as
from tests.web.conftest import Clinic, approve_running_plan, make_user

PERSONAS = ("anonymous", "own_patient", "other_patient", "team_clinician", "other_clinician", "admin")
FIXTURES = Path(__file__).parents[1] / "fixtures" / "fhir"

# One row per route (its template as the resolver spells it), one string per method, one outcome per
# persona in PERSONAS order: `ok` allowed (2xx, or a redirect that is not to the login page), `login`
# redirected to the login page, `form` a page's form shown again with its errors (nothing saved), or the
# exact status of a refusal (401 no credentials, 403 role refused, 404 not yours, 405 method not offered).
# Patient-scoped routes are asked about the team's patient, who is `own_patient`. A new route: copy the
# row of the route most like it, then run this file; the failure names each cell that differs.
MATRIX: dict[str, dict[str, str]] = {
    # open to everyone
    "healthz": {"GET": "ok ok ok ok ok ok", "POST": "ok ok ok ok ok ok"},
    "crisis/": {"GET": "ok ok ok ok ok ok", "POST": "ok ok ok ok ok ok"},
    "login/": {"GET": "ok ok ok ok ok ok", "POST": "form ok ok ok ok ok"},  # wrong password; logged in: home
    "logout/": {"GET": "405 405 405 405 405 405", "POST": "ok ok ok ok ok ok"},
    "api/docs": {"GET": "ok ok ok ok ok ok", "POST": "ok ok ok ok ok ok"},
    "api/openapi.json": {"GET": "ok ok ok ok ok ok", "POST": "ok ok ok ok ok ok"},
    # any logged-in user
    "": {"GET": "login ok ok ok ok ok", "POST": "login ok ok ok ok ok"},
    "language/": {"GET": "405 405 405 405 405 405", "POST": "login ok ok ok ok ok"},
    "sources/": {"GET": "login ok ok ok ok ok", "POST": "login ok ok ok ok ok"},  # the bibliography
    # clinicians' pages (patients are refused by role, another team's clinician by the record: 404)
    "patients/": {"GET": "login 403 403 ok ok ok", "POST": "login 403 403 ok ok ok"},
    "patients/new/": {"GET": "login 403 403 ok ok ok", "POST": "login 403 403 ok form ok"},  # form: not your team
    "worklist/": {"GET": "login 403 403 ok ok ok", "POST": "login 403 403 ok ok ok"},
    "patients/<int:pid>/": {"GET": "login 403 403 ok 404 ok", "POST": "login 403 403 ok 404 ok"},
    "patients/<int:pid>/edit/": {"GET": "login 403 403 ok 404 ok", "POST": "login 403 403 ok 404 ok"},
    "patients/<int:pid>/regimen/": {"GET": "login 403 403 ok 404 ok", "POST": "login 403 403 ok 404 ok"},
    "patients/<int:pid>/levels/new/": {"GET": "login 403 403 ok 404 ok", "POST": "login 403 403 ok 404 ok"},
    "patients/<int:pid>/assess/<str:instrument>/": {
        "GET": "login 403 403 ok 404 ok",
        "POST": "login 403 403 ok 404 ok",
    },
    "patients/<int:pid>/symptoms/new/": {"GET": "login 403 403 ok 404 ok", "POST": "login 403 403 ok 404 ok"},
    "patients/<int:pid>/holds/new/": {"GET": "login 403 403 ok 404 ok", "POST": "login 403 403 ok 404 ok"},
    "patients/<int:pid>/plan/": {"GET": "login 403 403 ok 404 ok", "POST": "login 403 403 ok 404 ok"},
    "patients/<int:pid>/plan/guided/": {"GET": "login 403 403 ok 404 ok", "POST": "login 403 403 ok 404 ok"},
    "patients/<int:pid>/replans/<int:rid>/": {"GET": "login 403 403 ok 404 ok", "POST": "login 403 403 ok 404 ok"},
    "patients/<int:pid>/plans/<int:version>/": {"GET": "login 403 403 ok 404 ok", "POST": "login 403 403 ok 404 ok"},
    "patients/<int:pid>/audit/": {"GET": "login 403 403 ok 404 ok", "POST": "login 403 403 ok 404 ok"},
    # the approved plan's files: clinicians of the team and the patient themself
    "patients/<int:pid>/plans/<int:version>/<str:kind>": {
        "GET": "login ok 404 ok 404 ok",
        "POST": "login ok 404 ok 404 ok",
    },
    # the patient's diary: patients only (each their own record; there is no patient id in the URL)
    "diary/": {"GET": "login ok ok 403 403 403", "POST": "login ok ok 403 403 403"},
    "diary/dose/": {"GET": "405 405 405 405 405 405", "POST": "login ok ok 403 403 403"},
    "diary/checkin/": {"GET": "405 405 405 405 405 405", "POST": "login ok ok 403 403 403"},
    "diary/bwsq/": {"GET": "login ok ok 403 403 403", "POST": "login ok ok 403 403 403"},
    # JSON API: no credentials 401; another team's (or another patient's) record 404; a patient reads their own
    # record and writes only their diary (403 for other writes)
    "api/patients": {"GET": "401 ok ok ok ok ok", "POST": "401 403 403 ok 422 ok"},  # 422: `team` is not yours
    "api/patients/<patient_id>": {"GET": "401 ok 404 ok 404 ok"},
    "api/patients/<patient_id>/summary": {"GET": "401 ok 404 ok 404 ok"},
    "api/patients/<patient_id>/regimens": {"GET": "401 ok 404 ok 404 ok", "POST": "401 403 404 ok 404 ok"},
    "api/patients/<patient_id>/levels": {"GET": "401 ok 404 ok 404 ok", "POST": "401 403 404 ok 404 ok"},
    "api/patients/<patient_id>/assessments": {"GET": "401 ok 404 ok 404 ok", "POST": "401 403 404 ok 404 ok"},
    "api/patients/<patient_id>/plans": {"GET": "401 ok 404 ok 404 ok", "POST": "401 403 404 ok 404 ok"},
    "api/patients/<patient_id>/plans/<int:version>": {"GET": "401 ok 404 ok 404 ok"},
    "api/patients/<patient_id>/diary": {"GET": "401 ok 404 ok 404 ok", "POST": "401 ok 404 ok 404 ok"},
    # the ward loop: clinicians only, even for the patient's own record
    "api/patients/<patient_id>/fit": {"GET": "401 403 404 ok 404 ok"},
    "api/patients/<patient_id>/plans/guided": {"POST": "401 403 404 ok 404 ok"},
    "api/patients/<patient_id>/replans": {"GET": "401 403 404 ok 404 ok"},
    "api/replans/<replan_id>/approve": {"POST": "401 403 404 ok 404 ok"},
    "api/replans/<replan_id>/discard": {"POST": "401 403 404 ok 404 ok"},
    "api/worklist": {"GET": "401 403 403 ok ok ok"},
    # one's own tokens (POST needs the login session: see test_security.py)
    "api/tokens": {"GET": "401 ok ok ok ok ok", "POST": "401 ok ok ok ok ok"},
    "api/tokens/<token_id>": {"DELETE": "401 ok ok ok ok ok"},
    # FHIR and CDS Hooks, behind the API's authentication
    "fhir/Patient/<patient_id>/$everything": {"GET": "401 ok 404 ok 404 ok"},
    "fhir": {"POST": "401 403 403 ok ok ok"},
    "cds-services": {"GET": "401 ok ok ok ok ok"},
    "cds-services/<service_id>": {"POST": "401 ok ok ok ok ok"},
}


# --- the routes, from the resolver ----------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One URL pattern and the methods it answers: ninja's declared ones, or GET and POST for a Django view."""

    template: str
    name: str
    methods: tuple[str, ...]
    view: Any
    api: bool


def _ninja_methods(callback: Any) -> tuple[str, ...] | None:
    """The methods of a ninja path view (ninja keeps its PathView in the view function's closure)."""
    for cell in getattr(callback, "__closure__", None) or ():
        operations = getattr(cell.cell_contents, "operations", None)
        if operations is not None:
            return tuple(sorted({meth.upper() for op in operations for meth in op.methods}))
    return None


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def all_routes() -> list[Route]:
    """Every route of the site, each once (ninja adds one pattern per operation of a path)."""
    seen: dict[str, Route] = {}
    for template, pattern in _walk(get_resolver().url_patterns):
        methods = _ninja_methods(pattern.callback)
        if pattern.name == "api-root":
            continue  # ninja's reverse() anchor for the API's prefix: matches no request path of its own
        if template in seen:
            if methods:
                old = seen[template]
                seen[template] = Route(template, old.name, tuple(sorted({*old.methods, *methods})), old.view, True)
            continue
        api = methods is not None
        seen[template] = Route(template, pattern.name or "", methods or ("GET", "POST"), pattern.callback, api)
    return list(seen.values())


def cells() -> list[tuple[str, str]]:
    """(route template, method) of every request the matrix makes."""
    return [(r.template, method) for r in all_routes() for method in r.methods]


def allowed_persona(template: str, method: str) -> str | None:
    """The first persona the table lets through this cell (None when it refuses everyone)."""
    row = MATRIX.get(template, {}).get(method, "").split()
    return next((p for p, result in zip(PERSONAS, row, strict=True) if result == "ok"), None)


def is_write(route: Route, method: str) -> bool:
    """State-changing: any non-GET API operation, and the page routes whose POST has a body in BODIES."""
    return method != "GET" and (route.api or (route.template, method) in BODIES)


# --- the clinic every cell meets ------------------------------------------------------------------------


@dataclass
class World:
    """The conftest clinic plus what makes every route answer: plans, levels, a waiting re-plan, tokens, and a
    third patient (Cyd, with a login) in the team's care, who is the persona `other_patient`."""

    clinic: Clinic
    replan: m.Replan
    same_team: m.Patient
    same_team_user: Any
    tokens: dict[str, str] = field(default_factory=dict)
    spare_tokens: dict[str, int] = field(default_factory=dict)

    def user(self, persona: str) -> Any:
        c = self.clinic
        return {
            "anonymous": None,
            "own_patient": c.patient_user,
            "other_patient": self.same_team_user,  # a patient of the same care team: still not theirs
            "team_clinician": c.doctor,
            "other_clinician": c.stranger,
            "admin": c.admin,
        }[persona]

    def client(self, persona: str, **kwargs: Any) -> Client:
        client = Client(**kwargs)
        user = self.user(persona)
        if user is not None:
            client.force_login(user)
        return client

    def hidden(self, persona: str) -> list[m.Patient]:
        """The patients this persona may not see."""
        c = self.clinic
        everyone = [c.patient, c.other_patient, self.same_team]
        visible = {
            "anonymous": [],
            "own_patient": [c.patient],
            "other_patient": [self.same_team],
            "team_clinician": [c.patient, self.same_team],
            "other_clinician": [c.other_patient],
            "admin": everyone,
        }[persona]
        return [p for p in everyone if p not in visible]


def _token(user: Any, name: str) -> tuple[str, int]:
    token = f"matrix-{user.username}-{name}"
    row = m.ApiToken.objects.create(user=user, digest=token_digest(token), name=name)
    return token, row.pk


def build_world(clinic: Clinic) -> World:
    """Both teams' patients get an approved running plan; the team's patient a waiting re-plan; everyone tokens."""
    tz = timezone.get_current_timezone()
    with acting_as(clinic.doctor):
        for days_ago in (3, 2):  # troughs on the current regimen, so the guided plan has levels to follow
            at = datetime.combine(clinic_clock.today() - timedelta(days=days_ago), time(7, 55))
            m.Level.objects.create(
                patient=clinic.patient, analyte="alprazolam", sampled_at=timezone.make_aware(at, tz), value_ng_ml=15.0
            )
    approve_running_plan(clinic, days_ago=10)
    with acting_as(clinic.doctor):
        clinic.patient.identifier = "MRN-ANN-4711"
        clinic.patient.save()
        same_team_user = make_user("cydpat", "patient")
        same_team = m.Patient.objects.create(
            team=clinic.team, name="Cyd Sameteam", identifier="MRN-CYD-4713", user=same_team_user
        )
        other = clinic.other_patient
        other.identifier = "MRN-BOB-4712"
        other.save()
        m.Regimen.objects.create(patient=other, sig="diazepam 5 mg bd", start=clinic.patient.regimens.get().start)
        start = (clinic_clock.today() - timedelta(days=10)).isoformat()
        plan = plan_records.build_plan("diazepam 5 mg bd", {"strategy": "ashton", "start": start})
        m.Plan.objects.create(
            patient=other,
            version=1,
            status="approved",
            sig="diazepam 5 mg bd",
            options={"strategy": "ashton", "start": start, "events": []},
            plan=plan_records.plan_payload(plan),
            approved_by=clinic.stranger,
        )
        base = m.Plan.objects.get(patient=clinic.patient, version=1)
        draft = m.Replan.objects.create(
            patient=clinic.patient,
            based_on_version=1,
            reason="a level above the model's band",
            plan=base.plan,
            options=base.options,
            audit_mark=replans.audit_mark(clinic.patient),
        )
    world = World(clinic, draft, same_team, same_team_user)
    for persona in PERSONAS[1:]:
        user = world.user(persona)
        world.tokens[persona], _ = _token(user, "matrix")
        _, world.spare_tokens[persona] = _token(user, "spare")
    world.spare_tokens["anonymous"] = world.spare_tokens["team_clinician"]
    return world


# --- filling a route and its body -------------------------------------------------------------------------


def _values(world: World, persona: str) -> dict[str, str]:
    c = world.clinic
    return {
        "pid": str(c.patient.pk),
        "patient_id": str(c.patient.pk),
        "version": "1",
        "kind": "pdf",
        "instrument": "ciwa_b",
        "rid": str(world.replan.pk),
        "replan_id": str(world.replan.pk),
        "token_id": str(world.spare_tokens[persona]),
        "service_id": "benzotaper-order-sign",
    }


def url_of(template: str, world: World, persona: str) -> str:
    """The route with its parameters filled for this persona (the team's patient, the waiting re-plan...)."""
    values = _values(world, persona)

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"route {template!r}: no value for <{name}>; add one to _values() in this file"
        return values[name]

    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", sub, template)


def _ciwa_b() -> dict[str, str]:
    items = kb.instruments()["ciwa_b"].items
    return {"taken_at": _now(), **{f"item_{item.id}": "1" for item in items}}


def _bwsq() -> dict[str, str]:
    items = kb.instruments()["bwsq"].items
    return {"taken_at": _now(), **{f"item_{item.id}": "0" for item in items}}


def _now() -> str:
    return (clinic_clock.today() - timedelta(days=1)).isoformat() + "T10:00"


def _dose(world: World) -> dict[str, Any]:
    step = plan_records.step_on(m.Plan.objects.get(patient=world.clinic.patient).plan, clinic_clock.today())
    assert step is not None and step["doses"], "the running plan has doses today"
    dose = step["doses"][0]
    return {"drug": dose["drug"], "planned_mg": dose["mg"], "time": dose["time"], "taken_mg": dose["mg"]}


def _bundle() -> str:
    return (FIXTURES / "synthea_alprazolam.json").read_text()


def _cds() -> Any:
    return json.loads((FIXTURES / "cds_order_sign_alprazolam.json").read_text())


# Valid input for every state-changing request, so an `ok` cell is a real write and a refusal is the rule's.
Body = Callable[[World], Any]
BODIES: dict[tuple[str, str], Body] = {
    ("login/", "POST"): lambda w: {"username": "nobody-here", "password": "not-a-password"},
    ("logout/", "POST"): lambda w: {},
    ("language/", "POST"): lambda w: {"language": "pl", "next": "/crisis/"},
    ("patients/new/", "POST"): lambda w: {"team": w.clinic.team.pk, "name": "New Person", "sex": "F"},
    ("patients/<int:pid>/edit/", "POST"): lambda w: {
        "team": w.clinic.team.pk,
        "name": "Ann Renamed",
        "identifier": "MRN-ANN-4711",
        "birth_year": 1970,
        "sex": "F",
        "country": "GB",
    },
    ("patients/<int:pid>/regimen/", "POST"): lambda w: {
        "sig": "diazepam 5 mg tds",
        "start": clinic_clock.today().isoformat(),
        "action": "save",
    },
    ("patients/<int:pid>/levels/new/", "POST"): lambda w: {
        "analyte": "alprazolam",
        "sampled_at": _now(),
        "value": "25",
        "unit": "ng/mL",
    },
    ("patients/<int:pid>/assess/<str:instrument>/", "POST"): lambda w: _ciwa_b(),
    ("patients/<int:pid>/symptoms/new/", "POST"): lambda w: {
        "symptom": "insomnia",
        "onset": clinic_clock.today().isoformat(),
        "severity": "4",
    },
    ("patients/<int:pid>/holds/new/", "POST"): lambda w: {
        "day": clinic_clock.today().isoformat(),
        "kind": "hold",
        "days": "7",
        "reason": "a hard week",
    },
    ("patients/<int:pid>/plan/", "POST"): lambda w: {
        "strategy": "ashton",
        "start": clinic_clock.today().isoformat(),
        "switch": "auto",
        "action": "approve",
    },
    ("patients/<int:pid>/plan/guided/", "POST"): lambda w: {
        "start": clinic_clock.today().isoformat(),
        "level_fall": "5",
        "trajectory": "occupancy",
        "switch": "later",
        "strategy": "ashton",
        "action": "approve",
    },
    ("patients/<int:pid>/replans/<int:rid>/", "POST"): lambda w: {"action": "approve"},
    ("diary/dose/", "POST"): _dose,
    ("diary/checkin/", "POST"): lambda w: {"feeling": "6", "note": "better today"},
    ("diary/bwsq/", "POST"): lambda w: _bwsq(),
    ("api/patients", "POST"): lambda w: {"team": w.clinic.team.pk, "name": "Api Person"},
    ("api/patients/<patient_id>/regimens", "POST"): lambda w: {
        "sig": "diazepam 5 mg tds",
        "start": clinic_clock.today().isoformat(),
    },
    ("api/patients/<patient_id>/levels", "POST"): lambda w: {
        "analyte": "alprazolam",
        "sampled_at": _now(),
        "value": "25",
        "unit": "ng/mL",
    },
    ("api/patients/<patient_id>/assessments", "POST"): lambda w: {"instrument": "sds", "answers": [1, 1, 1, 1, 1]},
    ("api/patients/<patient_id>/plans", "POST"): lambda w: {"strategy": "ashton", "approve": True},
    ("api/patients/<patient_id>/diary", "POST"): lambda w: {"kind": "note", "note": "slept badly"},
    ("api/patients/<patient_id>/plans/guided", "POST"): lambda w: {"approve": True},
    ("api/replans/<replan_id>/approve", "POST"): lambda w: {},
    ("api/replans/<replan_id>/discard", "POST"): lambda w: {},
    ("api/tokens", "POST"): lambda w: {"name": "phone"},
    ("api/tokens/<token_id>", "DELETE"): lambda w: None,
    ("fhir", "POST"): lambda w: _bundle(),
    ("cds-services/<service_id>", "POST"): lambda w: _cds(),
}


def request(
    world: World,
    persona: str,
    template: str,
    method: str,
    client: Client | None = None,
    bearer: bool = True,
    headers: dict[str, str] | None = None,
    secure: bool = False,
) -> Any:
    """Make one cell's request: pages with the login session, API routes with the persona's bearer token
    (with `bearer=False`, the login session too); `secure` makes it over HTTPS."""
    route = next(r for r in all_routes() if r.template == template)
    client = client or world.client(persona)
    headers = dict(headers or {})
    if route.api and bearer and persona != "anonymous":
        headers["Authorization"] = f"Bearer {world.tokens[persona]}"
    url = url_of(template, world, persona)
    body = BODIES.get((template, method), lambda w: {})(world)
    if route.api:
        data = body if isinstance(body, str) else json.dumps(body)
        payload = data if body is not None else ""
        return client.generic(method, url, payload, "application/json", headers=headers, secure=secure)
    return getattr(client, method.lower())(url, body if method == "POST" else None, headers=headers, secure=secure)


FORM_ERROR = re.compile(rb'role="alert"|class="errorlist')


def outcome(response: Any, method: str = "GET") -> str:
    """`ok`, `login`, `form` (a page's form shown again with its errors) or the status, as the table spells them."""
    status = response.status_code
    if status in (301, 302, 303, 307, 308):
        location = urlparse(response["Location"])
        return "login" if location.path == "/login/" and "next=" in location.query else "ok"
    is_page = response.get("Content-Type", "").startswith("text/html")
    if method == "POST" and status == 200 and is_page and FORM_ERROR.search(response.content):
        return "form"
    return "ok" if 200 <= status < 300 else str(status)


class _Undo(Exception):
    def __init__(self, result: Any) -> None:
        self.result = result


def rolled_back(make: Callable[..., Any], *args: Any) -> Any:
    """`make(*args)` in a savepoint that is then rolled back, with the page caches emptied on both sides."""
    cache.clear()
    try:
        with transaction.atomic():
            raise _Undo(make(*args))
    except _Undo as undo:
        return undo.result
    finally:
        cache.clear()


@pytest.fixture
def world(clinic: Clinic) -> World:
    return build_world(clinic)


# --- the tests ------------------------------------------------------------------------------------------


def test_every_route_is_in_the_matrix(db: Any) -> None:
    missing = []
    for route in all_routes():
        row = MATRIX.get(route.template, {})
        for method in route.methods:
            if method not in row:
                missing.append(
                    f"route {route.template!r} (url name {route.name!r}, view {route.view.__module__}) method "
                    f"{method}: add it to MATRIX in tests/web/test_permission_matrix.py, e.g. "
                    f"{route.template!r}: {{{method!r}: 'login 403 403 ok 404 ok'}} (one outcome per persona: "
                    f"{', '.join(PERSONAS)})"
                )
    assert not missing, "\n".join(missing)
    stale = {(t, meth) for t, row in MATRIX.items() for meth in row} - set(cells())
    assert not stale, f"MATRIX rows for routes or methods the resolver no longer has: {sorted(stale)}"
    assert all(len(row.split()) == len(PERSONAS) for r in MATRIX.values() for row in r.values())


def test_every_state_changing_request_has_a_valid_body(db: Any) -> None:
    writes = {(r.template, meth) for r in all_routes() for meth in r.methods if is_write(r, meth)}
    assert writes - set(BODIES) == set(), "give these a valid body in BODIES so `ok` means a real write"
    assert set(BODIES) - set(cells()) == set(), "BODIES for routes the resolver no longer has"


def test_every_route_answers_every_persona_as_the_table_says(world: World) -> None:
    wrong = []
    asked = 0
    for template, method in cells():
        expected = dict(zip(PERSONAS, MATRIX[template][method].split(), strict=True))
        for persona in PERSONAS:
            response = rolled_back(request, world, persona, template, method)
            asked += 1
            got = outcome(response, method)
            if got != expected[persona]:
                wrong.append(f"{method} /{template} as {persona}: expected {expected[persona]}, got {got}")
    assert not wrong, f"{len(wrong)} of {asked} cells differ from MATRIX:\n" + "\n".join(wrong)
    assert asked == len(cells()) * len(PERSONAS) >= 300


def _leaks(body: str, hidden: list[m.Patient]) -> list[str]:
    """What of the hidden patients this answer shows: names, record numbers, ids in links and JSON."""
    found = []
    for p in hidden:
        found += [text for text in (p.name, p.identifier) if text and text in body]
        if re.search(rf"/patients/{p.pk}/|\"patient_id\": ?{p.pk}\b|/Patient/{p.pk}\b", body):
            found.append(f"id {p.pk}")
    return found


def test_no_answer_shows_a_patient_the_persona_may_not_see(world: World) -> None:
    leaks = []
    for template, method in cells():
        if method != "GET":
            continue
        for persona in PERSONAS:
            response = rolled_back(request, world, persona, template, method)
            body = response.content.decode(errors="replace") if not response.streaming else ""
            found = _leaks(body, world.hidden(persona))
            if found:
                leaks.append(f"GET /{template} as {persona} shows {found}")
    assert not leaks, "\n".join(leaks)


def test_the_leak_check_finds_names_record_numbers_and_ids(world: World) -> None:
    everyone = world.client("admin").get("/patients/").content.decode()
    found = _leaks(everyone, world.hidden("other_clinician"))
    assert {"Ann Example", "MRN-ANN-4711", f"id {world.clinic.patient.pk}"} <= set(found)
    api = Client().get("/api/worklist", headers={"Authorization": f"Bearer {world.tokens['admin']}"})
    assert f"id {world.clinic.patient.pk}" in _leaks(api.content.decode(), [world.clinic.patient])


@pytest.mark.parametrize("persona", PERSONAS[1:])
def test_lists_and_counts_hold_only_the_visible_patients(world: World, persona: str) -> None:
    hidden = {p.pk for p in world.hidden(persona)}
    headers = {"Authorization": f"Bearer {world.tokens[persona]}"}
    page = Client().get("/api/patients?limit=1000", headers=headers).json()
    ids = {row["id"] for row in page["items"]}
    assert ids and not ids & hidden and page["count"] == len(ids) == 3 - len(hidden)
    worklist = Client().get("/api/worklist", headers=headers)
    if worklist.status_code == 200:
        assert {item["patient_id"] for item in worklist.json()} <= ids
    searched = Client().get("/api/patients?q=MRN-", headers=headers).json()
    assert searched["count"] == len(ids)
