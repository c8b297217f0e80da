"""schemathesis over the JSON API: every operation of `/api/openapi.json`, fed generated requests in process.

The operations are read from the app's own schema when the test runs, so a route added later is fuzzed too.
Requests carry a clinician's bearer token (or session and CSRF token where the schema asks for a session);
path ids are often real records of the clinician's patients, so generation reaches the handlers. The
properties: no 5xx, answers that match the schema, and every 4xx a JSON body whose errors name the field.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection, transaction
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from benzotaper.web import clinic_clock
from benzotaper.web import models as m
from benzotaper.web.api import token_digest

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# Requests in all, shared evenly by the operations; BENZOTAPER_API_FUZZ sets another total (a quick local run).
# CI runs the web tests twice: the 10,000 on SQLite, and a shorter pass on PostgreSQL for its own failures
# (bigint overflow, strict types) so that CI stays within its time.
TOTAL_REQUESTS = int(os.environ.get("BENZOTAPER_API_FUZZ", "10000"))
POSTGRES_SHARE = 0.3
OPERATION_SECONDS = 15.0  # time one operation gets for its share; a slow one sends fewer, the quick ones make up
QUICK_SECONDS = 0.1  # mean time per request of an operation that may send more than its share
TOTAL_SECONDS = 420.0  # bound of the whole run (about 200 s on an idle 2-core machine)
REQUEST_SECONDS = 10.0  # an answer slower than this holds a server worker too long: a failure
CHUNK = 50  # requests per hypothesis run (positive and negative runs alternate)
LOCATIONS = {"body", "query", "path", "header", "cookie"}
TOKEN = "fuzz-clinician-token-0123456789abcdef"
PAST = "2024-03-01"


# --- the clinic the requests hit ---------------------------------------------------------------------


@dataclass
class FuzzClinic:
    """A clinician's own patients with real records, another team's patient, and ids that point at nothing."""

    bearer: dict[str, str]
    session_cookies: dict[str, str]
    csrf_header: dict[str, str]
    ids: dict[str, list[int]] = field(default_factory=dict)
    hints: dict[str, list[Any]] = field(default_factory=dict)

    def path_choices(self, names: list[str]) -> list[dict[str, int]]:
        """Real ids for the path parameters this clinic knows (the rest stay generated), one dict per choice."""
        known = [n for n in names if n in self.ids]
        if not known:
            return []
        width = max(len(self.ids[n]) for n in known)
        return [{n: self.ids[n][i % len(self.ids[n])] for n in known} for i in range(width)]

    def hinted(self, case: Any, picks: list[int]) -> Any:
        """The case with some body fields set to values a clinic really uses (by field name, any operation)."""
        if isinstance(case.body, dict):
            for name, pick in zip(sorted(set(case.body) & set(self.hints)), picks, strict=False):
                if pick < len(self.hints[name]):
                    case.body[name] = self.hints[name][pick]
        return case


def _seed(client: Client, patient_id: int) -> None:
    """Records of every kind through the API itself, so they are what the API would store."""
    base = f"/api/patients/{patient_id}"
    for path, body in (
        ("/regimens", {"sig": "alprazolam 1 mg tds", "start": PAST}),
        ("/levels", {"analyte": "alprazolam", "sampled_at": "2024-04-01T08:00", "value": 12.5,
                     "last_dose_at": "2024-03-31T22:00"}),
        ("/levels", {"analyte": "alprazolam", "sampled_at": "2024-04-08T08:00", "value": "<5", "lloq": 5}),
        ("/assessments", {"instrument": "ciwa_b", "answers": [1] * 20, "taken_at": "2024-04-01T09:00"}),
        ("/assessments", {"instrument": "sds", "answers": [1, 1, 1, 1, 1], "taken_at": "2024-04-01T09:00"}),
        ("/plans", {"strategy": "ashton", "start": (clinic_clock.today() - timedelta(days=3)).isoformat(),
                    "approve": True}),
        ("/assessments", {"instrument": "ciwa_b", "answers": [2] * 20}),  # after the plan: drafts a re-plan
        ("/diary", {"kind": "checkin", "feeling": 6, "note": "slept badly"}),
        ("/diary", {"kind": "dose", "drug": "alprazolam", "taken_mg": 1.0, "planned_mg": 1.0}),
    ):
        response = client.post(base + path, json.dumps(body), content_type="application/json")
        assert response.status_code in (200, 201), (path, response.content[:400])


def build_clinic() -> FuzzClinic:
    """Ward A's clinician with a token and a session, two seeded patients, a bare one, and Ward B's patient."""
    users = get_user_model().objects
    team, other = m.CareTeam.objects.create(name="Ward A"), m.CareTeam.objects.create(name="Ward B")
    doctor = users.create_user("fuzz-doctor")
    m.Profile.objects.create(user=doctor, role="clinician").teams.set([team])
    m.ApiToken.objects.create(user=doctor, digest=token_digest(TOKEN), name="fuzz")
    spare = m.ApiToken.objects.create(user=doctor, digest=token_digest(TOKEN + "-spare"), name="spare")
    patient_user = users.create_user("fuzz-patient")
    m.Profile.objects.create(user=patient_user, role="patient")
    seeded = [m.Patient.objects.create(team=team, name="Ann Example", birth_year=1970, sex="F", country="GB",
                                       user=patient_user),
              m.Patient.objects.create(team=team, name="Cy Second", country="PL")]
    bare = m.Patient.objects.create(team=team, name="No Records")
    far = m.Patient.objects.create(team=other, name="Far Away")
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    api = Client(headers=bearer)
    for p in seeded:
        _seed(api, p.pk)
    browser = Client()
    browser.force_login(doctor)
    secret = _get_new_csrf_string()
    hints: dict[str, list[Any]] = {
        "team": [team.pk, team.pk, other.pk],
        "sig": ["diazepam 10 mg tds", "alprazolam 0.5 mg mane, 1 mg nocte", "lorazepam 1 mg bd + zolpidem 10 mg nocte",
                "clonazepam 0.5 mg tds", "diazepam 1e9 mg tds", "xanax 2 mg nan"],
        "start": [PAST, "2025-01-01"],
        "analyte": ["alprazolam", "diazepam", "nordazepam", "diazepam_equivalents", "lorazepam"],
        "value": [12.5, "<5", "0", "-3", "1e400", 250],
        "drug": ["alprazolam", "diazepam", "Valium", "unknownium"],
        "answers": [[1] * 20, [0, 1, 2, 3, 0], [2] * 20, {"1": 3}],
        "bwsq": [[1] * 20, [0, 1, 2]],
        "kind": ["dose", "checkin", "note"],
        "day": [clinic_clock.today().isoformat()],
        "taken_mg": [1.0, 0],
        "feeling": [5],
        "note": ["slept badly"],
    }
    ids = {
        "patient_id": [p.pk for p in seeded] * 3 + [bare.pk, far.pk, far.pk + 1000],
        "version": [1, 1, 1, 2],
        "token_id": [spare.pk, spare.pk + 1000],
        "team": [team.pk],
        "replan_id": [r.pk for r in m.Replan.objects.filter(patient__in=seeded)] + [10_000],
    }
    return FuzzClinic(bearer, {"sessionid": browser.cookies["sessionid"].value, "csrftoken": secret},
                      {"X-CSRFToken": secret}, ids, hints)


@contextmanager
def wsgi_in_test_transaction() -> Iterator[WSGIHandler]:
    """Django's WSGI app with the per-request connection closing off, as Django's own test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# --- the properties ----------------------------------------------------------------------------------


def _names_field(entry: Any) -> bool:
    """A validation error entry that says where (a field past the location) and what (a message)."""
    if not isinstance(entry, dict) or not str(entry.get("msg", "")).strip():
        return False
    loc = [str(part) for part in entry.get("loc", [])]
    return len(loc) >= 2 and loc[0] in LOCATIONS


def client_error_problem(status: int, body: bytes) -> str | None:
    """What is wrong with a 4xx answer, or None: JSON with `detail`; a 422's every error names its field."""
    try:
        data = json.loads(body)
    except ValueError:
        return f"{status} answer is not JSON: {body[:200]!r}"
    detail = data.get("detail") if isinstance(data, dict) else None
    if not detail:
        return f"{status} answer has no 'detail': {body[:200]!r}"
    if status == 422 and (not isinstance(detail, list) or not all(_names_field(e) for e in detail)):
        return f"422 errors that name no field: {body[:300]!r}"
    return None


def authentication_for(operation: Any, clinic: FuzzClinic) -> dict[str, Any]:
    """The token where the schema allows it, else the session cookie with its CSRF token."""
    schemes = {name for requirement in operation.definition.raw.get("security", []) for name in requirement}
    if not schemes or "TokenAuth" in schemes:
        return {"headers": clinic.bearer}
    return {"headers": clinic.csrf_header, "cookies": clinic.session_cookies}


class OutOfTime(Exception):
    """An operation's time is up: raised before a request, so none is cut short."""


@dataclass
class Tally:
    """Requests sent per operation and status, the slowest answer, the time spent, and the failures found."""

    sent: dict[str, dict[int, int]] = field(default_factory=dict)
    slowest: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def count(self, label: str, status: int, seconds: float) -> None:
        by_status = self.sent.setdefault(label, {})
        by_status[status] = by_status.get(status, 0) + 1
        self.slowest[label] = max(self.slowest.get(label, 0.0), seconds)

    def total(self, label: str | None = None) -> int:
        return sum(sum(s.values()) for k, s in self.sent.items() if label in (None, k))

    def report(self) -> str:
        lines = [f"{self.total()} requests over {len(self.sent)} operations"]
        for label, by_status in sorted(self.sent.items()):
            statuses = ", ".join(f"{code}: {n}" for code, n in sorted(by_status.items()))
            lines.append(f"  {label}: {sum(by_status.values())} ({statuses}) in {self.seconds.get(label, 0):.1f} s, "
                         f"slowest {self.slowest.get(label, 0):.2f} s")
        return "\n".join(lines)


def _cases(operation: Any, clinic: FuzzClinic, mode: GenerationMode) -> st.SearchStrategy[Any]:
    """schemathesis's cases for one operation, two thirds with real path ids, with clinic values in some fields."""
    fixed = clinic.path_choices([p.name for p in operation.path_parameters])
    generated = operation.as_strategy(mode)
    if fixed:
        real = st.sampled_from(fixed).flatmap(lambda pp: operation.as_strategy(mode, path_parameters=pp))
        generated = st.one_of(real, real, generated)
    picks = st.lists(st.integers(0, 9), min_size=len(clinic.hints), max_size=len(clinic.hints))
    return st.builds(clinic.hinted, generated, picks)


def fuzz_operation(app: WSGIHandler, operation: Any, clinic: FuzzClinic, examples: int, seconds: float,
                   tally: Tally) -> None:
    """Chunks of positive and negative requests for one operation until `examples` are sent or `seconds` pass.

    Each request runs in a transaction rolled back afterwards, so every one meets the same clinic.
    """
    label = f"{operation.method.upper()} {operation.path}"
    auth = authentication_for(operation, clinic)
    started, before = time.perf_counter(), tally.total(label)

    def one(case: Any) -> None:
        if label in tally.failures:  # hypothesis replays a failing case: report it without resending a slow one
            raise AssertionError(tally.failures[label])
        if time.perf_counter() - started > seconds:
            raise OutOfTime  # ends this run between requests; not a failure
        began = time.perf_counter()
        try:
            with transaction.atomic():
                response = case.call(app=app, **auth)
                transaction.set_rollback(True)
        finally:
            cache.clear()  # rolled-back ids are reused: cached pages must not outlive their rows
        took = time.perf_counter() - began
        tally.count(label, response.status_code, took)
        try:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
            if 400 <= response.status_code < 500:
                problem = client_error_problem(response.status_code, response.content)
                assert problem is None, f"{problem}\n{case.as_curl_command()}"
            assert took < REQUEST_SECONDS, f"answered in {took:.1f} s (bound {REQUEST_SECONDS} s)\n" + (
                case.as_curl_command())
        except (Exception, BaseExceptionGroup) as exc:  # noted here too: hypothesis's replay may end OutOfTime
            tally.failures.setdefault(label, f"{type(exc).__name__}: {exc}"[:3000])
            raise

    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    for chunk in range(10_000):  # bounded: each chunk sends requests or the clock runs out
        left = examples - (tally.total(label) - before)
        if left <= 0 or time.perf_counter() - started > seconds:
            break
        mode = modes[chunk % 2]
        # No shrinking: a failing request is reported as generated (shrinking could replay slow ones for minutes).
        run = settings(max_examples=min(CHUNK, left), deadline=None, database=None, phases=[Phase.generate],
                       suppress_health_check=list(HealthCheck))
        try:
            run(given(_cases(operation, clinic, mode))(one))()
        except OutOfTime:
            break
        except (Exception, BaseExceptionGroup) as exc:  # kept, so every operation runs and all failures are listed
            tally.failures.setdefault(label, f"{type(exc).__name__}: {exc}"[:3000])
            break
    tally.seconds[label] = tally.seconds.get(label, 0.0) + time.perf_counter() - started


def fuzz_schema(budget: int) -> Tally:
    """Every operation of the app's schema: `budget` requests shared evenly, then topped up by the fast ones."""
    clinic = build_clinic()
    tally = Tally()
    began = time.perf_counter()
    with wsgi_in_test_transaction() as app:
        schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
        operations = {f"{o.method.upper()} {o.path}": o for o in (r.ok() for r in schema.get_all_operations())}
        share = math.ceil(budget / max(1, len(operations)))
        for operation in operations.values():
            fuzz_operation(app, operation, clinic, share, OPERATION_SECONDS, tally)
        for _round in range(5):  # the slow operations' unsent share goes to the quick ones without failures
            quick = [label for label in operations if label not in tally.failures
                     and tally.seconds[label] / max(1, tally.total(label)) < QUICK_SECONDS]
            missing, left = budget - tally.total(), TOTAL_SECONDS - (time.perf_counter() - began)
            if missing <= 0 or not quick or left <= 0:
                break
            for label in quick:
                fuzz_operation(app, operations[label], clinic, math.ceil(missing / len(quick)), left / len(quick),
                               tally)
    return tally


# --- tests -------------------------------------------------------------------------------------------


def test_every_api_operation_answers_without_5xx_and_names_the_field_of_every_4xx() -> None:
    budget = TOTAL_REQUESTS if connection.vendor == "sqlite" else math.ceil(TOTAL_REQUESTS * POSTGRES_SHARE)
    tally = fuzz_schema(budget)
    print(f"\n{connection.vendor}: " + tally.report())
    assert not tally.failures, "\n\n".join(f"{k}:\n{v}" for k, v in tally.failures.items())
    assert tally.total() >= budget
    reached = {label for label, by_status in tally.sent.items() if any(c < 300 for c in by_status)}
    assert reached == set(tally.sent), f"operations never answered 2xx: {sorted(set(tally.sent) - reached)}"


def test_a_4xx_without_a_field_is_reported() -> None:
    """The 4xx property itself can fail: a whole-body 422, a non-JSON 4xx and an empty detail are caught."""
    whole_body = json.dumps({"detail": [{"type": "value_error", "loc": ["body"], "msg": "bad"}]}).encode()
    named = json.dumps({"detail": [{"type": "value_error", "loc": ["body", "sig"], "msg": "bad sig"}]}).encode()
    assert client_error_problem(422, whole_body) is not None
    assert client_error_problem(404, b"<h1>Not Found</h1>") is not None
    assert client_error_problem(403, b'{"detail": ""}') is not None
    assert client_error_problem(422, named) is None
    assert client_error_problem(404, b'{"detail": "Not Found"}') is None


# What the fuzz found, kept as plain examples: each answer must name the field (loc) it is about.
FOUND = [
    ("get", "/api/patients/{p}/regimens?offset=475606290921039991930880", None, 422, ["query", "offset"]),
    ("post", "/api/patients/{p}/levels", {"analyte": "alprazolam", "sampled_at": "2024-05-01T08:00", "value": "1e400"},
     422, ["body", "value"]),
    ("post", "/api/patients/{p}/plans", {"override_reason": "hold"}, 422, ["body", "override_reason"]),
    ("post", "/api/patients/{p}/plans", {"strategy": "fast", "end_by": "2000-01-01"}, 422, ["body", "end_by"]),
    ("post", "/api/patients/{bare}/plans", {}, 422, ["path", "patient_id"]),
    ("post", "/api/patients/{p}/plans/guided", {"start": "2024-03-01"}, 422, ["body", "start"]),
    ("get", "/api/patients/null/plans/null", None, 404, None),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "loc"), FOUND)
def test_what_the_fuzz_found_is_answered_with_the_field(method: str, path: str, body: Any, status: int,
                                                        loc: list[str] | None) -> None:
    clinic = build_clinic()
    url = path.format(p=clinic.ids["patient_id"][0], bare=clinic.ids["patient_id"][-3])
    client = Client(headers=clinic.bearer)
    if method == "get":
        response = client.get(url)
    else:
        response = client.post(url, json.dumps(body), content_type="application/json")
    assert response.status_code == status, response.content[:500]
    detail = response.json()["detail"]
    if loc is None:
        assert isinstance(detail, str) and detail
    else:
        assert [e["loc"][:2] for e in detail] == [loc], detail
        assert all(e["msg"] for e in detail)
