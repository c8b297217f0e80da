"""FHIR and CDS Hooks over HTTP: export, import, discovery and cards, behind the API's permissions."""

from __future__ import annotations

import json
from pathlib import Path

from benzotaper.web import models as m
from tests.web.conftest import Clinic, approve_running_plan

FIXTURES = Path(__file__).parents[1] / "fixtures" / "fhir"


def _approve(clinic: Clinic) -> None:
    approve_running_plan(clinic, days_ago=3)


def test_everything_exports_the_plan_as_medication_requests_for_the_care_team_only(clinic: Clinic) -> None:
    _approve(clinic)
    url = f"/fhir/Patient/{clinic.patient.pk}/$everything"
    response = clinic.client(clinic.doctor).get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+json"
    bundle = response.json()
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    steps = len(m.Plan.objects.get().plan["steps"])
    assert bundle["resourceType"] == "Bundle" and "Patient" in kinds
    # At least one MedicationRequest per dosed step of the approved plan (HL7 tapering style).
    assert kinds.count("MedicationRequest") >= steps - 1
    assert clinic.client(clinic.stranger).get(url).status_code == 404
    assert clinic.client(clinic.other_patient_user).get(url).status_code == 404
    assert clinic.client(None).get(url).status_code == 401


def test_import_creates_records_in_the_callers_team_and_lists_what_it_could_not_map(clinic: Clinic) -> None:
    bundles = sorted(FIXTURES.glob("*.json"))
    bundle = next(p for p in bundles if "synthea" in p.name.lower())
    body = bundle.read_text()
    before = m.Patient.objects.count()
    refused = clinic.client(clinic.patient_user).post("/fhir", body, content_type="application/fhir+json")
    assert refused.status_code == 403 and m.Patient.objects.count() == before
    response = clinic.client(clinic.doctor).post("/fhir", body, content_type="application/fhir+json")
    assert response.status_code in (200, 201), response.content[:500]
    result = response.json()
    assert "unmapped" in result
    for created in result["created"]:
        assert m.Patient.objects.get(pk=created["patient_id"]).team == clinic.team


def test_import_of_a_malformed_bundle_names_the_problem_and_saves_nothing(clinic: Clinic) -> None:
    before = m.Patient.objects.count()
    c = clinic.client(clinic.doctor)
    bad = c.post("/fhir", "{not json", content_type="application/fhir+json")
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    wrong = c.post("/fhir", json.dumps({"resourceType": "Bundle", "entry": "x"}), content_type="application/json")
    assert wrong.status_code == 422 and "entry" in wrong.json()["issue"][0]["diagnostics"]
    assert m.Patient.objects.count() == before


def test_cds_hooks_discovery_and_order_sign_cards(clinic: Clinic) -> None:
    c = clinic.client(clinic.doctor)
    services_ = c.get("/cds-services").json()["services"]
    hooks = {s["hook"] for s in services_}
    assert {"order-sign", "order-select"} <= hooks
    sign = next(s for s in services_ if s["hook"] == "order-sign")
    requests = [p for p in sorted(FIXTURES.glob("*.json")) if "cds" in p.name.lower()]
    assert requests
    for path in requests:
        raw = json.loads(path.read_text())
        if raw.get("hook") != "order-sign":
            continue
        response = c.post(f"/cds-services/{sign['id']}", raw, content_type="application/json")
        assert response.status_code == 200
        cards = response.json()["cards"]
        # The alprazolam request's prefetch holds a long history; a non-BZD order (lisinopril) gets none.
        assert bool(cards) == ("alprazolam" in path.name), path.name
        for card in cards:
            assert len(card["summary"]) <= 140 and card["indicator"] in ("info", "warning", "critical")
    assert c.post("/cds-services/nope", {}, content_type="application/json").status_code == 404
    assert clinic.client(None).get("/cds-services").status_code == 401
