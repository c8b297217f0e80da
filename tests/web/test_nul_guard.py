"""Text holding NUL (U+0000) is refused where it enters, naming the field, on SQLite and PostgreSQL alike.

Found by the API fuzz on PostgreSQL ("text fields cannot contain NUL"): a 500 on /api/tokens, /api/patients?q=
and the assessments; SQLite had stored the NUL. Each case here was a 500 or a silent store before the guard.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from benzotaper.web import models as m
from tests.web.conftest import Clinic


def _detail(response: Any) -> dict[str, Any]:
    body = json.loads(response.content)
    assert isinstance(body["detail"], list) and body["detail"], body
    entry: dict[str, Any] = body["detail"][0]
    return entry


def test_a_json_field_with_nul_is_a_422_naming_the_field_and_nothing_is_saved(clinic: Clinic) -> None:
    client = clinic.client(clinic.doctor)
    before = m.ApiToken.objects.count()
    response = client.post("/api/tokens", {"name": "phone\x00one"}, content_type="application/json")
    assert response.status_code == 422
    entry = _detail(response)
    assert entry["loc"] == ["body", "name"]
    assert "NUL" in entry["msg"] and "phone" in entry["msg"]
    assert m.ApiToken.objects.count() == before


def test_nul_deep_in_a_json_body_and_in_a_key_is_named_by_its_path(clinic: Clinic) -> None:
    client = clinic.client(clinic.doctor)
    url = f"/api/patients/{clinic.patient.pk}/assessments"
    nested = {"instrument": "ciwa-b", "answers": {"q\x001": 2}}
    assert _detail(client.post(url, nested, content_type="application/json"))["loc"] == ["body", "answers", "q\x001"]
    listed = {"instrument": "ciwa-b", "answers": {}, "notes": ["ok", "bad\x00"]}
    assert _detail(client.post(url, listed, content_type="application/json"))["loc"] == ["body", "notes", 1]


def test_a_body_that_is_a_string_with_nul_is_refused_by_the_schema_naming_the_payload(clinic: Clinic) -> None:
    # found by the API fuzz (CI run of 7 December): the guard answered loc ["body"], which names no field
    client = clinic.client(clinic.doctor)
    url = f"/api/patients/{clinic.patient.pk}/assessments"
    response = client.post(url, json.dumps("ciwa\x00b"), content_type="application/json")
    assert response.status_code == 422
    assert len(_detail(response)["loc"]) > 1, response.content
    assert not m.Assessment.objects.exists()


def test_a_query_parameter_with_nul_is_a_422_on_the_api_and_a_400_on_a_page(clinic: Clinic) -> None:
    client = clinic.client(clinic.doctor)
    api = client.get("/api/patients", {"q": "Ann\x00"})
    assert api.status_code == 422 and _detail(api)["loc"] == ["query", "q"]
    page = client.get("/patients/", {"q": "Ann\x00"})
    assert page.status_code == 400 and b"q" in page.content and b"NUL" in page.content


def test_a_form_field_with_nul_is_refused_at_the_field_and_the_patient_is_unchanged(clinic: Clinic) -> None:
    client = clinic.client(clinic.doctor)
    response = client.post(f"/patients/{clinic.patient.pk}/edit/", {"name": "Ann\x00Changed", "birth_year": "1970"})
    assert response.status_code == 200  # the form again, with its error at the field
    assert response.context["form"].errors["name"], response.context["form"].errors
    clinic.patient.refresh_from_db()
    assert clinic.patient.name == "Ann Example"


@pytest.mark.parametrize("text", ["Ann", "Zo\u00eb \u0141\u00f3d\u017a", "tab\tand\nnewline"])
def test_text_without_nul_passes_the_guard(clinic: Clinic, text: str) -> None:
    response = clinic.client(clinic.doctor).get("/api/patients", {"q": text})
    assert response.status_code == 200
