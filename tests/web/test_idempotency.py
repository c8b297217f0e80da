"""Idempotency keys: a resent write records once and answers as the first; a reused key for another write is 422."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from typing import Any

import pytest
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from benzotaper.web import idempotency
from benzotaper.web import models as m
from tests.web.conftest import Clinic, approve_running_plan, make_user


def _bearer(user: Any) -> Client:
    token = f"tok-{secrets.token_hex(8)}"
    m.ApiToken.objects.create(user=user, digest=hashlib.sha256(token.encode()).hexdigest(), name="t")
    return Client(headers={"Authorization": f"Bearer {token}"})


def _post(client: Client, url: str, body: dict[str, Any], key: str | None) -> Any:
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post(url, data=json.dumps(body), content_type="application/json", headers=headers)


WRITES: list[tuple[str, dict[str, Any], Any]] = [
    ("diary", {"kind": "dose", "drug": "alprazolam", "taken_mg": 0.5}, m.DiaryEntry),
    ("levels", {"analyte": "diazepam", "sampled_at": "2024-03-10T08:00", "value": "120"}, m.Level),
    ("assessments", {"instrument": "sds", "answers": [1, 1, 1, 1, 1]}, m.Assessment),
]


@pytest.mark.parametrize(("name", "body", "model"), WRITES, ids=[w[0] for w in WRITES])
def test_same_key_and_body_records_once_and_answers_the_same(clinic: Clinic, name: str, body: Any, model: Any) -> None:
    url = f"/api/patients/{clinic.patient.pk}/{name}"
    client = _bearer(clinic.doctor)
    before = model.objects.count()
    first = _post(client, url, body, "key-1")
    again = _post(client, url, body, "key-1")
    assert first.status_code == 201, first.content
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert model.objects.count() == before + 1
    assert m.IdempotencyKey.objects.get(key="key-1").status == 201


def test_without_a_key_a_resend_records_twice(clinic: Clinic) -> None:
    url = f"/api/patients/{clinic.patient.pk}/diary"
    client = _bearer(clinic.doctor)
    _post(client, url, WRITES[0][1], None)
    _post(client, url, WRITES[0][1], None)
    assert clinic.patient.diary.count() == 2 and not m.IdempotencyKey.objects.exists()


def test_same_key_with_another_body_is_422_naming_the_header(clinic: Clinic) -> None:
    url = f"/api/patients/{clinic.patient.pk}/diary"
    client = _bearer(clinic.doctor)
    assert _post(client, url, {"kind": "note", "note": "first"}, "k").status_code == 201
    other = _post(client, url, {"kind": "note", "note": "second"}, "k")
    assert other.status_code == 422
    [entry] = other.json()["detail"]
    assert entry["loc"] == ["header", "Idempotency-Key"] and entry["input"] == "k" and "new key" in entry["msg"]
    assert list(clinic.patient.diary.values_list("note", flat=True)) == ["first"]
    # and on another path: a key names one write
    level = _post(client, f"/api/patients/{clinic.patient.pk}/levels", WRITES[1][1], "k")
    assert level.status_code == 422 and not m.Level.objects.exists()


def test_keys_are_per_user(clinic: Clinic) -> None:
    colleague = make_user("colleague", "clinician", clinic.team)
    url = f"/api/patients/{clinic.patient.pk}/diary"
    for user in (clinic.doctor, colleague):
        assert _post(_bearer(user), url, WRITES[0][1], "shared").status_code == 201
    assert clinic.patient.diary.count() == 2


@pytest.mark.parametrize("key", ["", "x" * 201, "has space", "tab\there"])
def test_unacceptable_keys_are_422_and_record_nothing(clinic: Clinic, key: str) -> None:
    response = _post(_bearer(clinic.doctor), f"/api/patients/{clinic.patient.pk}/diary", WRITES[0][1], key)
    assert response.status_code == 422
    [entry] = response.json()["detail"]
    assert entry["loc"] == ["header", "Idempotency-Key"] and "200 visible ASCII" in entry["msg"]
    assert not clinic.patient.diary.exists()


def test_a_refused_write_is_replayed_but_a_forbidden_one_is_not_kept(clinic: Clinic) -> None:
    url = f"/api/patients/{clinic.patient.pk}/diary"
    client = _bearer(clinic.doctor)
    bad = {"kind": "checkin", "feeling": 11}
    first, again = _post(client, url, bad, "bad"), _post(client, url, bad, "bad")
    assert first.status_code == 422 and (again.status_code, again.content) == (422, first.content)
    # a stranger's 403/404 depends on who asks, not on the request: nothing stored under the stranger's key
    assert _post(_bearer(clinic.stranger), url, WRITES[0][1], "s").status_code in {403, 404}
    assert not m.IdempotencyKey.objects.filter(key="s").exists() and not clinic.patient.diary.exists()


def test_session_api_writes_honour_the_key(clinic: Clinic) -> None:
    browser = Client(enforce_csrf_checks=False)
    browser.force_login(clinic.patient_user)
    url = f"/api/patients/{clinic.patient.pk}/diary"
    codes = [_post(browser, url, {"kind": "note", "note": "phone"}, "sess").status_code for _ in range(3)]
    assert codes == [201, 201, 201] and clinic.patient.diary.count() == 1


# --- the write and its key share one transaction ------------------------------------------------------------


def _request(clinic: Clinic) -> HttpRequest:
    request = RequestFactory().post("/api/x", data=b"{}", content_type="application/json")
    request.user = clinic.doctor
    return request


def _writer(clinic: Clinic, answer: int | None) -> Any:
    def view(request: HttpRequest) -> HttpResponse:
        m.DiaryEntry.objects.create(patient=clinic.patient, day="2025-01-01", at="2025-01-01T08:00Z", kind="note")
        if answer is None:
            raise RuntimeError("crash after the write")
        return HttpResponse(b"{}", status=answer, content_type="application/json")

    return view


@pytest.mark.parametrize("answer", [None, 500, 503, 401, 429])
def test_a_failed_request_leaves_neither_write_nor_key(clinic: Clinic, answer: int | None) -> None:
    with pytest.raises(RuntimeError) if answer is None else _nothing():
        idempotency.once(_request(clinic), clinic.doctor, "k", _writer(clinic, answer))
    assert not clinic.patient.diary.exists() and not m.IdempotencyKey.objects.exists()


def test_a_kept_answer_leaves_write_and_key(clinic: Clinic) -> None:
    response = idempotency.once(_request(clinic), clinic.doctor, "k", _writer(clinic, 201))
    assert response.status_code == 201 and clinic.patient.diary.count() == 1
    row = m.IdempotencyKey.objects.get()
    stored = (row.user, row.method, row.path, row.status, bytes(row.body))
    assert stored == (clinic.doctor, "POST", "/api/x", 201, b"{}")


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# --- the diary's forms --------------------------------------------------------------------------------------


def _form_key(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to `action`."""
    form = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S)
    assert form is not None, action
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(1)))


def test_diary_dose_form_resent_records_once(clinic: Clinic) -> None:
    approve_running_plan(clinic)
    phone = clinic.client(clinic.patient_user)
    html = phone.get("/diary/").content.decode()
    fields = _form_key(html, "/diary/dose/")
    assert len(fields["idempotency_key"]) >= 16
    data = {**fields, "taken_mg": fields["planned_mg"]}
    first, again = phone.post("/diary/dose/", data), phone.post("/diary/dose/", data)
    assert (first.status_code, first["Location"]) == (again.status_code, again["Location"]) == (302, "/diary/")
    assert clinic.patient.diary.filter(kind="dose").count() == 1
    # a new rendering carries a new key, so the next tap records
    fresh = _form_key(phone.get("/diary/").content.decode(), "/diary/checkin/")["idempotency_key"]
    assert fresh != fields["idempotency_key"]


def test_diary_checkin_form_resent_records_once_and_new_form_records_again(clinic: Clinic) -> None:
    phone = clinic.client(clinic.patient_user)
    keys = [_form_key(phone.get("/diary/").content.decode(), "/diary/checkin/") for _ in range(2)]
    assert keys[0]["idempotency_key"] != keys[1]["idempotency_key"]
    for fields in (keys[0], keys[0], keys[1]):
        assert phone.post("/diary/checkin/", {**fields, "feeling": "6", "note": "ok"}).status_code == 302
    assert clinic.patient.diary.filter(kind="checkin").count() == 2


def test_diary_bwsq_form_resent_records_once(clinic: Clinic) -> None:
    phone = clinic.client(clinic.patient_user)
    html = phone.get("/diary/bwsq/").content.decode()
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert key is not None
    items = sorted(set(re.findall(r'name="(item_[^"]+)"', html)))
    data = {"idempotency_key": key.group(1), "taken_at": "2025-01-02 09:00", **{i: "0" for i in items}}
    responses = [phone.post("/diary/bwsq/", data) for _ in range(2)]
    assert [r.status_code for r in responses] == [302, 302], responses[0].content[:300]
    assert m.Assessment.objects.filter(patient=clinic.patient, instrument="bwsq").count() == 1


# --- two requests with one key at the same moment -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_write_once(clinic: Clinic) -> None:
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("needs a database that queues writers: runs on PostgreSQL in CI (scripts/with-postgres.sh)")
    url = f"/api/patients/{clinic.patient.pk}/diary"
    clients = [_bearer(clinic.doctor) for _ in range(6)]
    barrier = threading.Barrier(len(clients))
    answers: list[tuple[int, bytes]] = []

    def send(client: Client) -> None:
        barrier.wait()
        response = _post(client, url, {"kind": "note", "note": "race"}, "race")
        answers.append((response.status_code, response.content))
        connection.close()

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == len(clients) and len(set(answers)) == 1 and answers[0][0] == 201
    assert clinic.patient.diary.count() == 1
