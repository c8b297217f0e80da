"""Pages: permissions on every URL, validation next to the field, audit, plan versions, diary, headers."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from benzotaper.web import clinic_clock, kb, plan_records, prescriptions, safety
from benzotaper.web import models as m
from benzotaper.web.audit import acting_as
from tests.web.conftest import PASSWORD, Clinic, approve_running_plan

PUBLIC = {"healthz", "login", "crisis", "api/docs", "api/openapi.json"}


def _walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, str]]:
    """(route template, name) of every URL pattern, API routes included."""
    out = []
    for p in patterns:
        if isinstance(p, URLResolver):
            out += _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            out.append((prefix + str(p.pattern), p.name or ""))
    return out


def _fill(route: str, pid: int) -> str:
    values = {"pid": pid, "patient_id": pid, "id": pid, "version": 1, "kind": "pdf", "instrument": "bwsq"}

    def sub(match: re.Match[str]) -> str:
        return str(values.get(match.group(2), 1))

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", sub, route)


def _approve(clinic: Clinic, patient: m.Patient) -> None:
    with acting_as(clinic.doctor):
        if not patient.regimens.exists():
            m.Regimen.objects.create(patient=patient, sig="diazepam 5 mg bd", start=date(2025, 1, 1), daily_de_mg=10)
        plan = plan_records.build_plan(
            prescriptions.current_sig(patient), {"strategy": "ashton", "start": "2026-01-05"}
        )
        m.Plan.objects.create(
            patient=patient,
            version=1,
            status="approved",
            sig=prescriptions.current_sig(patient),
            options={"strategy": "ashton", "start": "2026-01-05", "events": []},
            plan=plan_records.plan_payload(plan),
            approved_by=clinic.doctor,
        )


def _routes() -> list[str]:
    return [r for r, _ in _walk(get_resolver().url_patterns)]


def test_every_route_refuses_people_whose_data_it_is_not(clinic: Clinic) -> None:
    _approve(clinic, clinic.patient)
    _approve(clinic, clinic.other_patient)
    with acting_as(clinic.doctor):  # a re-plan draft with the id the routes are filled with
        m.Replan.objects.create(pk=1, patient=clinic.patient, based_on_version=1, reason="test", plan={"steps": []})
    routes = _routes()
    assert len(routes) > 20
    owner = clinic.client(clinic.doctor)
    anonymous, stranger = clinic.client(None), clinic.client(clinic.stranger)
    other_patient, own_patient = clinic.client(clinic.other_patient_user), clinic.client(clinic.patient_user)
    before = m.AuditEntry.objects.count()
    checked = 0
    for route in routes:
        url = _fill(route, clinic.patient.pk)
        if route.rstrip("/") in PUBLIC or url.rstrip("/") in {"", "/logout", "/language"}:
            continue
        for method in ("get", "post"):
            response = getattr(anonymous, method)(url)
            assert response.status_code in (302, 401, 403, 404, 405), (method, url, response.status_code)
            if response.status_code == 302:
                assert response["Location"].startswith("/login/"), url
        scoped = "<int:pid>" in route or "{" in route or "<int:patient_id>" in route or "<patient_id>" in route
        if not scoped:
            continue
        checked += 1
        if "diary" not in route:
            # The owner's clinician can read it, so a refusal below is about permission, not missing data.
            assert owner.get(url).status_code in (200, 405), url
        for who, client in (("other team's clinician", stranger), ("another patient", other_patient)):
            for method in ("get", "post"):
                response = getattr(client, method)(url, {})
                # An API POST with an empty body may fail validation first (400/422); tests/web/test_api.py
                # posts valid bodies. Either way nothing is saved (checked below).
                allowed = (
                    (403, 404, 405, 400, 422) if route.startswith("api/") and method == "post" else (403, 404, 405)
                )
                assert response.status_code in allowed, (who, method, url, response.status_code)
        if not route.startswith(("api/", "fhir/")) and "plans/<int:version>/<str:kind>" not in route:
            # The patient's own record, but a clinician's page: refused too.
            response = own_patient.post(url, {})
            assert response.status_code == 403, (url, response.status_code)
    assert checked >= 12
    # Nothing the refused requests did changed a clinical record.
    assert m.AuditEntry.objects.count() == before


def test_patient_sees_only_own_diary_and_plan_files(clinic: Clinic) -> None:
    _approve(clinic, clinic.patient)
    _approve(clinic, clinic.other_patient)
    own = clinic.client(clinic.patient_user)
    assert own.get("/diary/").status_code == 200
    assert own.get(f"/patients/{clinic.patient.pk}/plans/1/pdf").status_code == 200
    assert own.get(f"/patients/{clinic.other_patient.pk}/plans/1/pdf").status_code == 404
    assert own.get(f"/patients/{clinic.patient.pk}/").status_code == 403
    assert clinic.client(clinic.doctor).get("/diary/").status_code == 403


def test_patient_list_shows_only_the_care_team(clinic: Clinic) -> None:
    page = clinic.client(clinic.doctor).get("/patients/").content.decode()
    assert "Ann Example" in page and "Bob Other" not in page
    page = clinic.client(clinic.admin).get("/patients/").content.decode()
    assert "Ann Example" in page and "Bob Other" in page
    page = clinic.client(clinic.doctor).get("/patients/?q=zzz").content.decode()
    assert "Ann Example" not in page


def test_regimen_is_shown_back_before_saving_and_saved_on_confirm(clinic: Clinic) -> None:
    c = clinic.client(clinic.doctor)
    url = f"/patients/{clinic.patient.pk}/regimen/"
    count = m.Regimen.objects.count()
    page = c.post(url, {"sig": "lorazepam 1 mg tds", "start": "2026-01-01", "action": "preview"}).content.decode()
    # 1 mg three times a day is 3 mg/day; nothing saved yet.
    assert "3.0 mg/" in page or "3 mg/" in page
    assert m.Regimen.objects.count() == count
    response = c.post(url, {"sig": "lorazepam 1 mg tds", "start": "2026-01-01", "action": "save"})
    assert response.status_code == 302
    saved = m.Regimen.objects.latest("id")
    assert saved.sig == "lorazepam 1 mg tds" and saved.parsed["drugs"][0]["daily_mg"] == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("path", "data", "field"),
    [
        ("regimen/", {"sig": "alprazolam 500 mg tds", "start": "2026-01-01", "action": "save"}, "sig"),
        ("regimen/", {"sig": "no drug here", "start": "2026-01-01", "action": "save"}, "sig"),
        ("regimen/", {"sig": "diazepam 5 mg bd", "start": "2026-02-01", "end": "2026-01-01", "action": "save"}, "end"),
        (
            "levels/new/",
            {"analyte": "diazepam", "sampled_at": "2026-01-01T08:00", "value": "1e9", "unit": "ng/mL"},
            "value",
        ),
        (
            "levels/new/",
            {"analyte": "diazepam", "sampled_at": "2026-01-01T08:00", "value": "abc", "unit": "ng/mL"},
            "value",
        ),
        ("holds/new/", {"day": "2026-01-01", "kind": "hold", "days": "9999", "reason": "x"}, "days"),
    ],
)
def test_bad_input_is_refused_next_to_its_field_and_nothing_saved(
    clinic: Clinic, path: str, data: dict[str, str], field: str
) -> None:
    before = m.AuditEntry.objects.count()
    response = clinic.client(clinic.doctor).post(f"/patients/{clinic.patient.pk}/{path}", data)
    assert response.status_code == 200
    page = response.content.decode()
    assert f'id="error-{field}"' in page, page[:3000]
    assert m.AuditEntry.objects.count() == before


def test_level_in_ug_per_litre_is_stored_in_ng_per_ml(clinic: Clinic) -> None:
    sampled = (clinic_clock.today() - timedelta(days=1)).isoformat() + "T08:00"
    response = clinic.client(clinic.doctor).post(
        f"/patients/{clinic.patient.pk}/levels/new/",
        {"analyte": "alprazolam", "sampled_at": sampled, "value": "25", "unit": "ug/L"},
    )
    assert response.status_code == 302
    level = m.Level.objects.get(patient=clinic.patient)
    assert level.value_ng_ml == pytest.approx(25.0)  # 1 µg/L = 1 ng/mL


def test_assessment_total_is_the_sum_of_answers(clinic: Clinic) -> None:
    bwsq = kb.instruments()["bwsq"]
    answers = {f"item_{it.id}": (i % 3) for i, it in enumerate(bwsq.items)}
    expected = sum(i % 3 for i in range(len(bwsq.items)))
    response = clinic.client(clinic.doctor).post(
        f"/patients/{clinic.patient.pk}/assess/bwsq/", {"taken_at": "2026-01-02T10:00", **answers}
    )
    assert response.status_code == 302
    assert m.Assessment.objects.get(patient=clinic.patient).total == expected


def test_changes_are_audited_with_who_and_before_after(clinic: Clinic) -> None:
    c = clinic.client(clinic.doctor)
    url = f"/patients/{clinic.patient.pk}/edit/"
    response = c.post(
        url, {"team": clinic.team.pk, "name": "Ann Renamed", "birth_year": 1970, "sex": "F", "country": "GB"}
    )
    assert response.status_code == 302
    entry = m.AuditEntry.objects.filter(model="Patient", action="update").latest("id")
    assert entry.user == clinic.doctor
    assert entry.before["name"] == "Ann Example" and entry.after["name"] == "Ann Renamed"
    page = c.get(f"/patients/{clinic.patient.pk}/audit/").content.decode()
    assert "Ann Renamed" in page


def test_approved_plans_are_versioned_never_overwritten(clinic: Clinic) -> None:
    c = clinic.client(clinic.doctor)
    url = f"/patients/{clinic.patient.pk}/plan/"
    form = {"strategy": "ashton", "start": "2026-01-05", "switch": "auto"}
    preview = c.post(url, {**form, "action": "preview"})
    assert preview.status_code == 200 and not m.Plan.objects.exists()
    assert c.post(url, {**form, "action": "approve"})["Location"].endswith("/plans/1/")
    first = m.Plan.objects.get(version=1)
    assert c.post(url, {**form, "strategy": "slow", "action": "approve"})["Location"].endswith("/plans/2/")
    first.refresh_from_db()
    assert first.plan["strategy"] == "ashton" and m.Plan.objects.get(version=2).plan["strategy"] == "slow"
    first.sig = "changed"
    with pytest.raises(ValueError, match="never changed"):
        first.save()
    for kind, head in (("pdf", b"%PDF"), ("ics", b"BEGIN:VCALENDAR"), ("csv", b"")):
        body = c.get(f"/patients/{clinic.patient.pk}/plans/1/{kind}").content
        assert body.startswith(head) and body


def test_diary_dose_appears_on_the_clinicians_page(clinic: Clinic) -> None:
    approve_running_plan(clinic, days_ago=2)
    me = clinic.client(clinic.patient_user)
    page = me.get("/diary/").content.decode()
    step = plan_records.step_on(m.Plan.objects.get().plan, clinic_clock.today())
    assert step is not None
    dose = step["doses"][0]
    assert f"{dose['mg']} mg" in page
    r = me.post(
        "/diary/dose/",
        {"drug": dose["drug"], "planned_mg": dose["mg"], "time": dose["time"], "taken_mg": dose["mg"] / 2},
    )
    assert r.status_code == 302
    entry = m.DiaryEntry.objects.get(kind="dose")
    assert entry.taken_mg == pytest.approx(dose["mg"] / 2) and entry.created_by == clinic.patient_user
    assert me.post("/diary/checkin/", {"feeling": 11}).status_code == 302  # refused with a message
    assert not m.DiaryEntry.objects.filter(kind="checkin").exists()
    doctor_page = clinic.client(clinic.doctor).get(f"/patients/{clinic.patient.pk}/").content.decode()
    assert f"(planned {dose['mg']})" in doctor_page


def test_diary_shows_the_newest_record_of_a_dose_tapped_twice(clinic: Clinic) -> None:
    approve_running_plan(clinic, days_ago=2)
    me = clinic.client(clinic.patient_user)
    step = plan_records.step_on(m.Plan.objects.get().plan, clinic_clock.today())
    assert step is not None
    dose = step["doses"][0]
    slot = {"drug": dose["drug"], "planned_mg": dose["mg"], "time": dose["time"]}
    first, second = dose["mg"] / 2, dose["mg"] / 4
    assert me.post("/diary/dose/", {**slot, "taken_mg": first}).status_code == 302
    assert me.post("/diary/dose/", {**slot, "taken_mg": second}).status_code == 302
    page = me.get("/diary/").content.decode()
    assert f"taken {second} mg" in page and f"taken {first} mg" not in page
    assert m.DiaryEntry.objects.filter(kind="dose").count() == 2  # both taps are kept in the record


def test_login_is_throttled_after_repeated_failures(clinic: Clinic) -> None:
    from django.conf import settings
    from django.test import Client

    c = Client()
    for _ in range(settings.LOGIN_MAX_FAILURES):
        c.post("/login/", {"username": "doctor", "password": "wrong"})
    response = c.post("/login/", {"username": "doctor", "password": PASSWORD})
    assert response.status_code == 200 and "Too many failed logins" in response.content.decode()
    assert Client().post("/login/", {"username": "admin", "password": PASSWORD}).status_code == 302


def test_passwords_are_argon2_and_headers_are_strict(clinic: Clinic) -> None:
    # OWASP Password Storage Cheat Sheet minimum for Argon2id: 19 MiB memory, 2 iterations, 1 lane.
    assert clinic.doctor.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    response = clinic.client(clinic.doctor).get(f"/patients/{clinic.patient.pk}/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    scripts = re.findall(r"<script([^>]*)>", response.content.decode())
    assert scripts and all("src=" in s or 'type="application/json"' in s for s in scripts)


def test_older_argon2_hashes_still_log_in_and_are_upgraded(clinic: Clinic) -> None:
    from django.contrib.auth.hashers import Argon2PasswordHasher
    from django.test import Client

    django_default = Argon2PasswordHasher()
    clinic.doctor.password = django_default.encode(PASSWORD, django_default.salt())
    clinic.doctor.save()
    assert "m=102400" in clinic.doctor.password
    assert Client().post("/login/", {"username": "doctor", "password": PASSWORD}).status_code == 302
    clinic.doctor.refresh_from_db()
    assert clinic.doctor.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")


def test_crisis_help_is_on_every_patient_page(clinic: Clinic) -> None:
    help_ = safety.crisis_for(clinic.patient)
    number = help_.lines[0].number if help_.lines else help_.emergency.number  # type: ignore[union-attr]
    assert number in clinic.client(clinic.doctor).get(f"/patients/{clinic.patient.pk}/").content.decode()
    assert number in clinic.client(clinic.patient_user).get("/diary/").content.decode()
    assert clinic.client(None).get("/crisis/?country=GB").status_code == 200


def test_health_endpoint(client: Any, db: Any) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
