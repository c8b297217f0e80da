"""CDS Hooks service logic: discovery, order-sign and order-select cards, refusals of bad requests.

Worked case (tests/fixtures/fhir/cds_order_sign_alprazolam.json): monthly alprazolam prescriptions of 30 days since
2025-09-01 (0.5 mg tds, 0.5 mg tds, 1 mg bd, then 1 mg tds), oxycodone since 2026-02-20, and a draft order on
2026-03-02 for alprazolam 1 mg tds. By hand: the era runs 2025-09-01 to 2026-03-02 = 183 days (> 90, < 365);
alprazolam 0.5 mg ~ 10 mg diazepam (Ashton), so the doses are 30, 30, 40, 60, 60, 60 and 60 mg/day.
"""

from __future__ import annotations

import copy
import json
import statistics
from datetime import date
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fhir.resources.R4B")

from benzotaper.errors import FhirError
from benzotaper.fhir import discovery, order_select, order_sign
from benzotaper.knowledge import Knowledge

FIXTURES = Path(__file__).parent / "fixtures" / "fhir"
PATIENT = "6f1c3a52-7d1e-4b8a-9c55-2f0e8a1d4b77"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cards(knowledge: Knowledge) -> dict[str, dict[str, Any]]:
    response = order_sign(load("cds_order_sign_alprazolam.json"), knowledge=knowledge, base_url="https://clinic.test")
    return {c["source"]["topic"]["code"]: c for c in response["cards"]}


def test_discovery_lists_both_hooks_with_prefetch_templates() -> None:
    services = discovery()["services"]
    assert [s["hook"] for s in services] == ["order-sign", "order-select"]
    for service in services:
        assert {"id", "hook", "title", "description", "prefetch"} <= set(service)
        assert service["prefetch"]["medications"] == "MedicationRequest?patient={{context.patientId}}&status=active"
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"


def test_the_worked_case_gets_one_card_per_finding(cards: dict[str, dict[str, Any]]) -> None:
    assert set(cards) == {"long_term", "escalation", "high_dose", "opioid", "interdose"}
    for card in cards.values():
        assert len(card["summary"]) < 140
        assert card["indicator"] in ("info", "warning", "critical")
        assert card["source"]["label"] == "benzotaper"
        assert card["links"] == [
            {"label": "Plan a gradual taper in benzotaper", "url": f"https://clinic.test/patients/{PATIENT}/plan/",
             "type": "absolute"}
        ]  # fmt: skip
    assert len({c["uuid"] for c in cards.values()}) == 5


def test_long_term_use_counts_the_days_of_the_drug_era(cards: dict[str, dict[str, Any]]) -> None:
    card = cards["long_term"]
    assert "183 days" in card["summary"] and "more than 3 months" in card["summary"]
    assert "since **2025-09-01**" in card["detail"]


def test_escalation_uses_the_least_squares_trend(cards: dict[str, dict[str, Any]]) -> None:
    days = [0, 30, 61, 91, 123, 153, 182]  # prescription starts after 2025-09-01
    deq = [30, 30, 40, 60, 60, 60, 60]
    slope = statistics.linear_regression(days, deq).slope * 365
    mean = (30 * 30 + 30 * 30 + 40 * 30 + 60 * 30 * 3 + 60 * 1) / (30 * 6 + 1)  # weighted by days supplied
    assert slope >= 0.5 * mean  # cohort.toml: escalation when the trend is at least 50% of the mean per year
    assert f"**{slope:+.1f} mg/day per year**" in cards["escalation"]["detail"]
    assert f"({mean:.1f} mg)" in cards["escalation"]["detail"]


def test_high_dose_compares_the_diazepam_equivalent(cards: dict[str, dict[str, Any]], knowledge: Knowledge) -> None:
    equivalence = knowledge.drugs["alprazolam"].equivalence
    assert equivalence is not None and equivalence.used.value == 0.5  # mg alprazolam ~ 10 mg diazepam
    assert "60 mg/day" in cards["high_dose"]["summary"]  # 3 mg x 10 / 0.5
    assert "more than 40 mg" in cards["high_dose"]["summary"]


def test_opioid_co_prescription_is_critical(cards: dict[str, dict[str, Any]]) -> None:
    card = cards["opioid"]
    assert card["indicator"] == "critical"
    assert "oxycodone" in card["summary"]


def test_a_short_acting_drug_three_times_a_day_flags_interdose_withdrawal(cards: dict[str, dict[str, Any]]) -> None:
    assert "alprazolam 3 times a day" in cards["interdose"]["summary"]


def test_a_draft_order_of_another_drug_gets_no_card(knowledge: Knowledge) -> None:
    assert order_sign(load("cds_order_sign_lisinopril.json"), knowledge=knowledge) == {"cards": []}


def test_order_select_reads_only_the_selected_orders(knowledge: Knowledge) -> None:
    request = load("cds_order_select.json")
    assert order_select(request, knowledge=knowledge) == {"cards": []}  # lisinopril selected
    request["context"]["selections"] = ["MedicationRequest/draft-alprazolam-1"]
    assert len(order_select(request, knowledge=knowledge)["cards"]) == 5


def test_without_history_only_the_order_itself_is_judged(knowledge: Knowledge) -> None:
    request = load("cds_order_sign_alprazolam.json")
    request["prefetch"] = {}
    response = order_sign(request, knowledge=knowledge, today=date(2026, 3, 2))
    assert {c["source"]["topic"]["code"] for c in response["cards"]} == {"high_dose", "interdose"}


def test_an_order_it_cannot_read_gets_an_info_card(knowledge: Knowledge) -> None:
    request = load("cds_order_sign_alprazolam.json")
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    order["dosageInstruction"][0]["route"] = {"coding": [{"system": "http://snomed.info/sct", "code": "37161004"}]}
    request["prefetch"] = {}
    (card,) = order_sign(request, knowledge=knowledge)["cards"]
    assert card["indicator"] == "info"
    assert "route rectal is not modelled" in card["detail"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(hook="patient-view"), "hook: expected 'order-sign' (got 'patient-view')"),
        (lambda r: r.pop("hookInstance"), "hookInstance: expected a non-empty string (got None)"),
        (lambda r: r["context"].pop("patientId"), "context.patientId: expected a non-empty string (got None)"),
        (lambda r: r["context"].pop("userId"), "context.userId: expected a non-empty string (got None)"),
        (lambda r: r["context"].update(draftOrders=[]), "context.draftOrders: expected a FHIR Bundle"),
        (lambda r: r.update(prefetch=[]), "prefetch: expected an object (got list)"),
    ],
)
def test_a_bad_request_names_the_field(knowledge: Knowledge, change: Any, message: str) -> None:
    request = load("cds_order_sign_alprazolam.json")
    change(request)
    with pytest.raises(FhirError) as err:
        order_sign(request, knowledge=knowledge)
    assert str(err.value).startswith(message)


def test_a_malformed_draft_order_names_the_bundle_resource_and_field(knowledge: Knowledge) -> None:
    request = load("cds_order_sign_alprazolam.json")
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    order["authoredOn"] = "02/03/2026"
    with pytest.raises(
        FhirError, match=r"^context\.draftOrders: MedicationRequest/draft-alprazolam-1 \(entry 0\): authoredOn"
    ):
        order_sign(request, knowledge=knowledge)


def test_order_select_needs_selections(knowledge: Knowledge) -> None:
    request = copy.deepcopy(load("cds_order_select.json"))
    del request["context"]["selections"]
    with pytest.raises(FhirError, match=r"^context\.selections: expected a list"):
        order_select(request, knowledge=knowledge)


def test_draft_orders_without_subject_belong_to_the_patient_in_context(knowledge: Knowledge) -> None:
    request = load("cds_order_sign_lisinopril.json")
    del request["context"]["draftOrders"]["entry"][0]["resource"]["subject"]
    assert order_sign(request, knowledge=knowledge) == {"cards": []}  # read, and not a benzodiazepine
    request = load("cds_order_sign_alprazolam.json")
    del request["context"]["draftOrders"]["entry"][0]["resource"]["subject"]
    assert len(order_sign(request, knowledge=knowledge)["cards"]) == 5
