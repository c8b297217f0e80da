"""The JSON API: authentication, the permission rules on every route, a clinician's full flow, errors as 422.

Expected numbers are worked out by hand from the knowledge files, not read back from the code under test.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tomllib
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.utils import timezone

from benzotaper.web import clinic_clock, plan_records
from benzotaper.web import models as m
from benzotaper.web.api import Strategy, token_digest

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parents[2] / "src" / "benzotaper" / "knowledge" / "data"
PAST = "2024-03-01"  # regimen start used throughout: far enough back that every sample time is in the past


# --- fixtures (kept here: tests/web/conftest.py belongs to the pages' tests) -------------------------


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """The page cache is per patient and data version; ids are reused between rolled-back tests."""
    cache.clear()


def _user(name: str, role: str, teams: tuple[m.CareTeam, ...] = (), superuser: bool = False) -> Any:
    user = get_user_model().objects.create_user(name, is_superuser=superuser)  # no password: no slow hashing
    profile = m.Profile.objects.create(user=user, role=role)
    profile.teams.set(teams)
    return user


def _token(user: Any, name: str = "test") -> str:
    token = f"tok-{user.username}-{name}-{secrets.token_hex(8)}"
    m.ApiToken.objects.create(user=user, digest=hashlib.sha256(token.encode()).hexdigest(), name=name)
    return token


class World:
    """Two care teams, their clinicians, an admin, and patients with and without a login."""

    def __init__(self) -> None:
        self.team_a = m.CareTeam.objects.create(name="Ward A")
        self.team_b = m.CareTeam.objects.create(name="Ward B")
        self.clin_a = _user("clin_a", "clinician", (self.team_a,))
        self.clin_b = _user("clin_b", "clinician", (self.team_b,))
        self.admin = _user("admin", "admin", superuser=True)
        self.pat_user = _user("pat", "patient")
        self.other_user = _user("other", "patient")
        self.patient = m.Patient.objects.create(team=self.team_a, user=self.pat_user, name="Pat Own", country="GB")
        self.other = m.Patient.objects.create(team=self.team_a, user=self.other_user, name="Other Person")
        self.far = m.Patient.objects.create(team=self.team_b, name="Far Away")
        for p in (self.patient, self.other, self.far):
            m.Plan.objects.create(patient=p, version=1, status="approved", sig="diazepam 5 mg od", options={},
                                  plan={"steps": []}, approved_by=self.admin, approved_at=timezone.now())

    def client(self, user: Any) -> Client:
        return Client(headers={"Authorization": f"Bearer {_token(user)}"})


@pytest.fixture
def world() -> World:
    return World()


def post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


# Valid bodies: a refusal must come from the permission rule, not from input validation.
BODIES: dict[str, dict[str, Any]] = {
    "regimens": {"sig": "diazepam 5 mg tds", "start": PAST},
    "levels": {"analyte": "diazepam", "sampled_at": "2024-03-10T08:00", "value": "120", "unit": "ng/mL"},
    "assessments": {"instrument": "sds", "answers": [1, 1, 1, 1, 1]},
    "plans": {"strategy": "ashton"},
    "diary": {"kind": "note", "note": "slept badly"},
}


def patient_routes(pid: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    base = f"/api/patients/{pid}"
    rows: list[tuple[str, str, dict[str, Any] | None]] = [("get", base, None), ("get", f"{base}/summary", None),
                                                          ("get", f"{base}/plans/1", None)]
    for name, body in BODIES.items():
        rows += [("get", f"{base}/{name}", None), ("post", f"{base}/{name}", body)]
    return rows


def call(client: Client, method: str, url: str, body: dict[str, Any] | None) -> Any:
    return post(client, url, body or {}) if method == "post" else client.get(url)


# --- authentication ---------------------------------------------------------------------------------------


def test_token_auth_works_and_records_last_use(world: World) -> None:
    client = world.client(world.clin_a)
    response = client.get("/api/patients")
    assert response.status_code == 200
    assert {p["name"] for p in response.json()["items"]} == {"Pat Own", "Other Person"}
    assert m.ApiToken.objects.get(user=world.clin_a).last_used is not None


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer ", "Token abc", "Basic Y2xpbl9hOng="])
def test_bad_token_is_401(world: World, header: str) -> None:
    _token(world.clin_a)
    response = Client(headers={"Authorization": header}).get("/api/patients")
    assert response.status_code == 401


def test_token_of_inactive_user_is_401(world: World) -> None:
    client = world.client(world.clin_a)
    world.clin_a.is_active = False
    world.clin_a.save()
    assert client.get("/api/patients").status_code == 401


def test_session_user_creates_a_token_shown_once_and_stored_as_sha256(world: World) -> None:
    browser = Client()
    browser.force_login(world.pat_user)
    response = post(browser, "/api/tokens", {"name": "phone"})
    assert response.status_code == 201
    token = response.json()["token"]
    row = m.ApiToken.objects.get(user=world.pat_user)
    assert row.digest == hashlib.sha256(token.encode()).hexdigest() == token_digest(token)
    assert token not in json.dumps(list(m.ApiToken.objects.values()), default=str)
    listed = browser.get("/api/tokens").json()
    assert listed[0]["name"] == "phone" and "token" not in listed[0]
    bearer = Client(headers={"Authorization": f"Bearer {token}"})
    assert bearer.get(f"/api/patients/{world.patient.pk}").status_code == 200
    # a token cannot mint more tokens; the session can revoke it
    assert post(bearer, "/api/tokens", {"name": "more"}).status_code == 401
    assert browser.delete(f"/api/tokens/{row.pk}").status_code == 204
    assert bearer.get(f"/api/patients/{world.patient.pk}").status_code == 401


def test_tokens_of_others_cannot_be_revoked(world: World) -> None:
    _token(world.clin_b)
    row = m.ApiToken.objects.get(user=world.clin_b)
    assert world.client(world.clin_a).delete(f"/api/tokens/{row.pk}").status_code == 404
    assert m.ApiToken.objects.filter(pk=row.pk).exists()


def test_session_writes_need_the_csrf_token(world: World) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world.pat_user)
    url = f"/api/patients/{world.patient.pk}/diary"
    assert browser.get(url).status_code == 200
    refused = post(browser, url, BODIES["diary"])
    assert refused.status_code == 403
    assert not m.DiaryEntry.objects.exists()
    secret = _get_new_csrf_string()
    browser.cookies["csrftoken"] = secret
    ok = browser.post(url, data=json.dumps(BODIES["diary"]), content_type="application/json",
                      headers={"X-CSRFToken": secret})
    assert ok.status_code == 201
    assert m.DiaryEntry.objects.get().created_by == world.pat_user
    # without a session the answer is 401 (not a CSRF 403), so clients know to authenticate
    assert post(Client(enforce_csrf_checks=True), url, BODIES["diary"]).status_code == 401


# --- permissions on every route ------------------------------------------------------------------------


OTHER_ROUTES = [("get", "/api/patients", None), ("post", "/api/patients", {"team": 1, "name": "X"}),
                ("get", "/api/tokens", None), ("post", "/api/tokens", {"name": "x"})]


def test_anonymous_gets_401_everywhere(world: World) -> None:
    anonymous = Client()
    for method, url, body in [*patient_routes(world.patient.pk), *OTHER_ROUTES]:
        assert call(anonymous, method, url, body).status_code == 401, (method, url)
    assert anonymous.delete("/api/tokens/1").status_code == 401
    assert not m.DiaryEntry.objects.exists() and not m.Regimen.objects.exists()


def test_other_teams_clinician_gets_404_everywhere(world: World) -> None:
    before = m.AuditEntry.objects.count()
    client = world.client(world.clin_b)
    for method, url, body in patient_routes(world.patient.pk):
        response = call(client, method, url, body)
        assert response.status_code == 404, (method, url, response.content)
    assert m.AuditEntry.objects.count() == before


def test_patient_on_another_patient_gets_404_everywhere(world: World) -> None:
    before = m.AuditEntry.objects.count()
    client = world.client(world.pat_user)
    for method, url, body in patient_routes(world.other.pk) + patient_routes(world.far.pk):
        response = call(client, method, url, body)
        assert response.status_code == 404, (method, url, response.content)
    assert m.AuditEntry.objects.count() == before


def test_patient_reads_own_record_and_writes_only_the_diary(world: World) -> None:
    client = world.client(world.pat_user)
    for method, url, body in patient_routes(world.patient.pk):
        response = call(client, method, url, body)
        if method == "get":
            assert response.status_code == 200, (url, response.content)
        elif url.endswith("/diary"):
            assert response.status_code == 201, response.content
        else:
            assert response.status_code == 403, (url, response.content)
    assert post(client, "/api/patients", {"team": world.team_a.pk, "name": "Me Again"}).status_code == 403
    assert not m.Regimen.objects.exists() and not m.Level.objects.exists() and not m.Assessment.objects.exists()
    assert m.Plan.objects.filter(patient=world.patient).count() == 1
    listed = client.get("/api/patients").json()
    assert [p["id"] for p in listed["items"]] == [world.patient.pk]


def test_patient_checkin_with_bwsq_is_scored(world: World) -> None:
    client = world.client(world.pat_user)
    answers = [1, 0, 2, 1] * 5  # BWSQ: 20 items scored 0-2; hand sum 4 * 5 = 20
    response = post(client, f"/api/patients/{world.patient.pk}/diary", {"kind": "checkin", "feeling": 6,
                                                                        "bwsq": answers})
    assert response.status_code == 201, response.content
    assert response.json()["bwsq_total"] == 20
    assert response.json()["created_by"] == "pat"
    entry = m.DiaryEntry.objects.get()
    assert entry.bwsq == answers and entry.day == clinic_clock.today()


def test_admin_sees_every_patient(world: World) -> None:
    response = world.client(world.admin).get("/api/patients")
    assert response.json()["count"] == 3
    assert world.client(world.admin).get(f"/api/patients/{world.far.pk}/plans").status_code == 200


def test_clinician_creates_patients_only_in_own_teams(world: World) -> None:
    client = world.client(world.clin_a)
    response = post(client, "/api/patients", {"team": world.team_b.pk, "name": "Intruder"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "team"] and error["input"] == world.team_b.pk
    assert f"{world.team_a.pk} (Ward A)" in error["msg"] and "Ward B" not in error["msg"]
    assert not m.Patient.objects.filter(name="Intruder").exists()


# --- a clinician's full flow ----------------------------------------------------------------------------


def test_clinician_full_flow(world: World) -> None:
    client = world.client(world.clin_a)

    response = post(client, "/api/patients", {"team": world.team_a.pk, "name": "New Person", "birth_year": 1960,
                                              "country": "gb", "risk_factors": ["no_support"], "co_used": ["alcohol"]})
    assert response.status_code == 201, response.content
    patient = response.json()
    assert patient["country"] == "GB" and patient["risk_factors"] == ["no_support"]
    assert patient["co_used"] == ["alcohol"]
    pid = patient["id"]
    assert client.get(f"/api/patients/{pid}").json()["name"] == "New Person"

    # Regimen: alprazolam 2 mg three times a day = 6 mg/day. The default equivalence table (Ashton) puts
    # alprazolam 0.5 mg = diazepam 10 mg, so 6 mg/day = 6 / 0.5 * 10 = 120 mg diazepam-eq per day.
    alprazolam = tomllib.loads((DATA / "drugs" / "alprazolam.toml").read_text())["equivalence"]
    diazepam = tomllib.loads((DATA / "drugs" / "diazepam.toml").read_text())["equivalence"]
    assert alprazolam["default_table"] == "ashton" and alprazolam["tables"]["ashton"]["value"] == 0.5
    assert diazepam["tables"]["ashton"]["value"] == 10
    body = {"sig": "alprazolam 2 mg tds", "start": PAST}
    preview = post(client, f"/api/patients/{pid}/regimens", {**body, "preview_only": True})
    assert preview.status_code == 200, preview.content
    assert preview.json()["id"] is None and not m.Regimen.objects.filter(patient_id=pid).exists()
    saved = post(client, f"/api/patients/{pid}/regimens", body)
    assert saved.status_code == 201
    regimen = saved.json()
    assert regimen["parsed"]["drugs"][0]["daily_mg"] == pytest.approx(6.0)
    assert [d["mg"] for d in regimen["parsed"]["drugs"][0]["doses"]] == [2.0, 2.0, 2.0]
    assert regimen["daily_de_mg"] == pytest.approx(120.0)
    assert m.Regimen.objects.get(patient_id=pid).daily_de_mg == pytest.approx(120.0)
    assert client.get(f"/api/patients/{pid}/regimens").json()["count"] == 1

    # Level: 45 ug/L is 45 ng/mL (1 ug/L = 1 ng/mL).
    level = post(client, f"/api/patients/{pid}/levels", {"analyte": "alprazolam", "sampled_at": "2024-03-20T07:30",
                                                         "value": "45", "unit": "ug/L"})
    assert level.status_code == 201, level.content
    assert level.json()["value_ng_ml"] == pytest.approx(45.0)
    censored = post(client, f"/api/patients/{pid}/levels", {"analyte": "alprazolam", "sampled_at": "2024-03-21T07:30",
                                                            "value": "<5", "unit": "ng/mL"})
    assert censored.status_code == 201, censored.content
    assert censored.json()["value_ng_ml"] is None and censored.json()["lloq_ng_ml"] == pytest.approx(5.0)

    # Assessment: CIWA-B, 20 items scored 0-4; hand sum of [0, 1, 2, 3, 4] * 4 = 4 * 10 = 40.
    answers = [0, 1, 2, 3, 4] * 4
    scored = post(client, f"/api/patients/{pid}/assessments", {"instrument": "ciwa_b", "answers": answers})
    assert scored.status_code == 201, scored.content
    assert scored.json()["total"] == 40 and scored.json()["instrument"] == "ciwa_b"
    sds = post(client, f"/api/patients/{pid}/assessments",
               {"instrument": "sds", "answers": {"out_of_control": 2, "missing_dose": 1, "worry": 0,
                                                 "wish_stop": 3, "difficulty": 1}})
    assert sds.status_code == 201, sds.content
    assert sds.json()["total"] == 2 + 1 + 0 + 3 + 1
    assert client.get(f"/api/patients/{pid}/assessments?instrument=ciwa_b").json()["count"] == 1
    assert client.get(f"/api/patients/{pid}/assessments?instrument=ciwa-b").json()["count"] == 1

    # Plans: a draft is not saved; approving makes version 1, then 2; version 1 stays as it was.
    draft = post(client, f"/api/patients/{pid}/plans", {"strategy": "ashton", "start": "2024-06-03"})
    assert draft.status_code == 200, draft.content
    assert draft.json()["version"] is None and draft.json()["status"] == "draft"
    assert not m.Plan.objects.filter(patient_id=pid).exists()
    v1 = post(client, f"/api/patients/{pid}/plans", {"strategy": "ashton", "start": "2024-06-03", "approve": True})
    assert v1.status_code == 201, v1.content
    assert v1.json()["version"] == 1 and v1.json()["approved_by"] == "clin_a"
    assert v1.json()["plan"]["steps"] == draft.json()["plan"]["steps"]
    first = client.get(f"/api/patients/{pid}/plans/1").json()
    v2 = post(client, f"/api/patients/{pid}/plans", {"strategy": "slow", "start": "2024-06-10", "approve": True})
    assert v2.status_code == 201, v2.content
    assert v2.json()["version"] == 2
    assert client.get(f"/api/patients/{pid}/plans/1").json() == first
    assert first["options"]["strategy"] == "ashton"
    assert [p["version"] for p in client.get(f"/api/patients/{pid}/plans").json()["items"]] == [2, 1]
    assert client.get(f"/api/patients/{pid}/plans/3").status_code == 404

    # Diary written by the clinician, and the summary.
    dose = post(client, f"/api/patients/{pid}/diary", {"kind": "dose", "drug": "Xanax", "planned_mg": 2,
                                                       "taken_mg": 1.5, "day": "2024-06-04"})
    assert dose.status_code == 201, dose.content
    assert dose.json()["drug"] == "alprazolam" and dose.json()["taken_mg"] == 1.5
    summary = client.get(f"/api/patients/{pid}/summary")
    assert summary.status_code == 200, summary.content
    data = summary.json()
    assert data["sig"] == "alprazolam 2 mg tds"
    assert data["preview"]["diazepam_mg"] == pytest.approx(120.0)
    assert data["plan"]["version"] == 2
    assert isinstance(data["alerts"], list) and isinstance(data["risk"], dict)

    # Every change is in the audit log, attributed to the API user.
    audited = m.AuditEntry.objects.filter(patient_id=pid)
    assert {e.model for e in audited} >= {"Patient", "Regimen", "Level", "Assessment", "Plan", "DiaryEntry"}
    assert {e.user for e in audited} == {world.clin_a}


def test_session_client_is_audited_as_the_logged_in_user(world: World) -> None:
    browser = Client()
    browser.force_login(world.clin_a)
    response = post(browser, f"/api/patients/{world.patient.pk}/regimens", {"sig": "diazepam 5 mg tds", "start": PAST})
    assert response.status_code == 201
    assert m.AuditEntry.objects.get(model="Regimen").user == world.clin_a


# --- errors ---------------------------------------------------------------------------------------------


def test_bad_sig_is_422_naming_the_field_and_nothing_is_saved(world: World) -> None:
    client = world.client(world.clin_a)
    for sig in ("alprazolam 2 mg blah", "xanaxx 2 mg tds"):
        response = post(client, f"/api/patients/{world.patient.pk}/regimens", {"sig": sig, "start": PAST})
        assert response.status_code == 422
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", "sig"] and error["input"] == sig
        assert error["msg"]
    assert "expected e.g. tds" in post(client, f"/api/patients/{world.patient.pk}/regimens",
                                       {"sig": "alprazolam 2 mg blah", "start": PAST}).json()["detail"][0]["msg"]
    assert not m.Regimen.objects.exists()


def test_end_before_start_is_422_on_end(world: World) -> None:
    response = post(world.client(world.clin_a), f"/api/patients/{world.patient.pk}/regimens",
                    {"sig": "diazepam 5 mg tds", "start": PAST, "end": "2024-01-01"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "end"]


def test_implausible_level_is_422_and_nothing_is_saved(world: World) -> None:
    client = world.client(world.clin_a)
    m.Level.objects.create(patient=world.patient, analyte="diazepam", value_ng_ml=100.0,
                           sampled_at=timezone.make_aware(datetime(2024, 3, 2, 8)))
    response = post(client, f"/api/patients/{world.patient.pk}/levels",
                    {"analyte": "diazepam", "sampled_at": "2024-03-10T08:00", "value": "1e9", "unit": "ng/mL"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "value"] and "implausible" in error["msg"]
    assert list(m.Level.objects.values_list("value_ng_ml", flat=True)) == [100.0]


def test_level_errors_name_their_field(world: World) -> None:
    client = world.client(world.clin_a)
    url = f"/api/patients/{world.patient.pk}/levels"
    future = (timezone.localtime() + timedelta(days=2)).replace(tzinfo=None).isoformat(timespec="minutes")
    cases: dict[str, dict[str, Any]] = {
        "sampled_at": {"analyte": "diazepam", "sampled_at": future, "value": "100"},
        "analyte": {"analyte": "aspirin", "sampled_at": "2024-03-10T08:00", "value": "100"},
        "unit": {"analyte": "diazepam", "sampled_at": "2024-03-10T08:00", "value": "100", "unit": "grains"},
    }
    for field, body in cases.items():
        response = post(client, url, body)
        assert response.status_code == 422, (field, response.content)
        assert response.json()["detail"][0]["loc"][-1] == field, response.json()
    assert "accepted: alprazolam" in post(client, url, cases["analyte"]).json()["detail"][0]["msg"]
    assert not m.Level.objects.exists()


def test_bad_answers_are_422_naming_the_item(world: World) -> None:
    client = world.client(world.clin_a)
    url = f"/api/patients/{world.patient.pk}/assessments"
    wrong_count = post(client, url, {"instrument": "ciwa-b", "answers": [1] * 22})
    assert wrong_count.status_code == 422
    assert wrong_count.json()["detail"][0]["loc"] == ["body", "answers"]
    assert "20 items" in wrong_count.json()["detail"][0]["msg"]
    out_of_range = post(client, url, {"instrument": "sds", "answers": [9, 0, 0, 0, 0]})
    assert out_of_range.status_code == 422 and "allowed values" in out_of_range.json()["detail"][0]["msg"]
    unknown = post(client, url, {"instrument": "phq9", "answers": [1]})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "instrument"]
    assert not m.Assessment.objects.exists()


@pytest.mark.parametrize(("route", "body", "field", "accepted"), [
    # found by schemathesis on PostgreSQL: timestamptz refuses offsets beyond +-15:59, SQLite stored it
    ("assessments", {"instrument": "sds", "answers": [1] * 5, "taken_at": "2024-05-10T00:35:49-16:40"},
     "taken_at", "-12:00 to +14:00"),
    ("assessments", {"instrument": "sds", "answers": [1] * 5, "taken_at": "1842-05-10T00:35:49"},
     "taken_at", "1900 to 2100"),
    ("levels", {**BODIES["levels"], "sampled_at": "2024-03-10T08:00+14:30"}, "sampled_at", "-12:00 to +14:00"),
    ("levels", {**BODIES["levels"], "last_dose_at": "0001-01-01T00:00+14:00"}, "last_dose_at", "1900 to 2100"),
    ("diary", {"kind": "note", "note": "x", "at": "2024-03-10T08:00-12:01"}, "at", "-12:00 to +14:00"),
    ("diary", {"kind": "note", "note": "x", "day": "0001-01-01"}, "day", "1900 to 2100"),
])
def test_unreal_times_are_422_naming_the_field(world: World, route: str, body: dict[str, Any], field: str,
                                               accepted: str) -> None:
    response = post(world.client(world.clin_a), f"/api/patients/{world.patient.pk}/{route}", body)
    assert response.status_code == 422, response.content
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", field] and accepted in error["msg"], error
    assert not m.Assessment.objects.exists() and not m.Level.objects.exists() and not m.DiaryEntry.objects.exists()


def test_real_extreme_offsets_are_accepted(world: World) -> None:
    """UTC+14:00 (Kiritimati) and UTC-12:00 are real zones: the bound must not refuse them."""
    client = world.client(world.clin_a)
    url = f"/api/patients/{world.patient.pk}/assessments"
    for moment in ("2024-05-10T09:00+14:00", "2024-05-10T09:00-12:00"):
        body = {"instrument": "sds", "answers": [1] * 5, "taken_at": moment}
        assert post(client, url, body).status_code == 201, moment
    assert m.Assessment.objects.filter(patient=world.patient).count() == 2


def test_plan_errors_are_422(world: World) -> None:
    client = world.client(world.clin_a)
    url = f"/api/patients/{world.patient.pk}/plans"
    no_regimen = post(client, url, {"strategy": "ashton"})
    assert no_regimen.status_code == 422 and "regimen" in no_regimen.json()["detail"][0]["msg"]
    post(client, f"/api/patients/{world.patient.pk}/regimens", {"sig": "diazepam 10 mg tds", "start": PAST})
    for body in ({"strategy": "warp"}, {"fraction": 0.9}, {"interval_days": 0}, {"start": "not a date"}):
        response = post(client, url, body)
        assert response.status_code == 422, (body, response.content)
        assert response.json()["detail"][0]["loc"][:2] == ["body", next(iter(body))]
    fast = post(client, url, {"strategy": "ashton", "fraction": 0.5, "interval_days": 1, "approve": True})
    assert fast.status_code in (201, 422)
    if fast.status_code == 422:
        assert fast.json()["detail"][0]["msg"]
    assert m.Plan.objects.filter(patient=world.patient).count() == 1 + (fast.status_code == 201)


def test_diary_errors_are_422(world: World) -> None:
    client = world.client(world.pat_user)
    url = f"/api/patients/{world.patient.pk}/diary"
    tomorrow = (clinic_clock.today() + timedelta(days=1)).isoformat()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "dose", "taken_mg": 1}, "drug"),
        ({"kind": "dose", "drug": "diazepam"}, "taken_mg"),
        ({"kind": "dose", "drug": "diazepum", "taken_mg": 1}, "drug"),
        ({"kind": "checkin"}, "feeling"),
        ({"kind": "checkin", "feeling": 11}, "feeling"),
        ({"kind": "note", "note": "  "}, "note"),
        ({"kind": "note", "note": "x", "day": tomorrow}, "day"),
        ({"kind": "note", "note": "x", "bwsq": [0] * 20}, "bwsq"),
        ({"kind": "checkin", "feeling": 5, "bwsq": [3] * 20}, "bwsq"),
        ({"kind": "dream"}, "kind"),
    ]
    for body, field in cases:
        response = post(client, url, body)
        assert response.status_code == 422, (body, response.content)
        assert response.json()["detail"][0]["loc"][:2] == ["body", field], (body, response.json())
    assert not m.DiaryEntry.objects.exists()


def test_malformed_input_is_never_a_500(world: World) -> None:
    client = world.client(world.clin_a)
    base = f"/api/patients/{world.patient.pk}"
    bad = [
        client.post(f"{base}/diary", data="{not json", content_type="application/json"),
        post(client, f"{base}/regimens", {"sig": "", "start": PAST}),
        post(client, f"{base}/regimens", {"sig": "diazepam 5 mg tds", "start": "yesterday"}),
        post(client, f"{base}/levels", {"analyte": "diazepam", "sampled_at": "2024-03-10T08:00", "value": "lots"}),
        post(client, f"{base}/levels", {"analyte": "diazepam", "sampled_at": "2024-03-10T08:00", "value": "5",
                                        "lloq": "x"}),
        post(client, f"{base}/assessments", {"instrument": "sds", "answers": "all fine"}),
        post(client, "/api/patients", {"team": "ward", "name": "X"}),
        post(client, "/api/patients", {"team": world.team_a.pk, "name": "X", "country": "ZZ"}),
        post(client, "/api/patients", {"team": world.team_a.pk, "name": "X", "risk_factors": ["vampire"]}),
        client.get("/api/patients/notanumber"),
        client.get("/api/patients?limit=-1"),
    ]
    for response in bad:
        assert 400 <= response.status_code < 500, response.content
    assert not m.Regimen.objects.exists() and not m.Level.objects.exists()
    assert not m.Patient.objects.filter(name="X").exists()


def test_error_shape_of_a_bad_country(world: World) -> None:
    body = {"team": world.team_a.pk, "name": "X", "country": "ZZ"}
    response = post(world.client(world.clin_a), "/api/patients", body)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "country"] and error["input"] == "ZZ"


# --- listing and schema ---------------------------------------------------------------------------------


def test_lists_are_paginated(world: World) -> None:
    client = world.client(world.clin_a)
    page = client.get("/api/patients?limit=1&offset=1").json()
    assert page["count"] == 2 and len(page["items"]) == 1
    assert page["items"][0]["name"] == "Pat Own"  # ordered by name: "Other Person", "Pat Own"
    assert client.get("/api/patients?q=pat").json()["count"] == 1


def test_openapi_lists_every_route() -> None:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    expected = {
        "/api/patients": {"get", "post"},
        "/api/patients/{patient_id}": {"get"},
        "/api/patients/{patient_id}/regimens": {"get", "post"},
        "/api/patients/{patient_id}/levels": {"get", "post"},
        "/api/patients/{patient_id}/assessments": {"get", "post"},
        "/api/patients/{patient_id}/plans": {"get", "post"},
        "/api/patients/{patient_id}/plans/{version}": {"get"},
        "/api/patients/{patient_id}/diary": {"get", "post"},
        "/api/patients/{patient_id}/summary": {"get"},
        "/api/tokens": {"get", "post"},
        "/api/tokens/{token_id}": {"delete"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert set(paths[path]) >= methods, path
    schemes = response.json()["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    level_fields = response.json()["components"]["schemas"]["LevelOut"]["properties"]
    assert "value_ng_ml" in level_fields
    assert Client().get("/api/docs").status_code == 200


def test_strategy_choices_match_the_planner_records() -> None:
    assert set(get_args(Strategy)) == set(plan_records.STRATEGIES)


def test_dates_in_fixture_are_past() -> None:
    assert date.fromisoformat(PAST) < clinic_clock.today()
