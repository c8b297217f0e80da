"""Reading FHIR Dosage into regimens: each coded timing form, as-needed limits, and the reasons for refusals."""

from __future__ import annotations

from datetime import date, time
from typing import Any

import pytest

pytest.importorskip("fhir.resources.R4B")

from benzotaper.fhir import import_bundle
from benzotaper.knowledge import Knowledge

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
MG = {"unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}


def request(dosage: list[dict[str, Any]] | None, medication: dict[str, Any] | None = None) -> dict[str, Any]:
    med = medication or {"coding": [{"system": RX, "code": "197591", "display": "diazepam 5 MG Oral Tablet"}]}
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
        "medicationCodeableConcept": med, "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-01-10",
    }  # fmt: skip
    if dosage is not None:
        resource["dosageInstruction"] = dosage
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource}]}


def read(knowledge: Knowledge, dosage: list[dict[str, Any]] | None, medication: dict[str, Any] | None = None) -> Any:
    result = import_bundle(request(dosage, medication), knowledge)
    meds = result.patient("p1").medications
    return meds[0] if meds else result.unmapped[0].reason


def dose(value: float, **extra: Any) -> list[dict[str, Any]]:
    return [{"doseQuantity": {"value": value, **(extra or MG)}}]


def test_frequency_and_period_spread_the_daily_dose(knowledge: Knowledge) -> None:
    med = read(
        knowledge, [{"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}, "doseAndRate": dose(5)}]
    )
    # 5 mg twice a day: 10 mg/day at the sig.toml times for 2 divided doses (08:00, 20:00)
    assert [(d.at, d.mg) for d in med.regimens[0].doses] == [(time(8), 5.0), (time(20), 5.0)]
    assert med.regimens[0].start == date(2026, 1, 10)


def test_an_hourly_period_uses_the_q_hours_phrase(knowledge: Knowledge) -> None:
    med = read(
        knowledge, [{"timing": {"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}}, "doseAndRate": dose(2)}]
    )
    # q8h in sig.toml: 06:00, 14:00, 22:00
    assert [d.at for d in med.regimens[0].doses] == [time(6), time(14), time(22)]
    assert med.regimens[0].daily_mg == pytest.approx(6.0)


def test_a_timing_code_is_read_through_the_sig_vocabulary(knowledge: Knowledge) -> None:
    timing = {
        "code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation", "code": "TID"}]}
    }
    med = read(knowledge, [{"timing": timing, "doseAndRate": dose(2)}])
    assert med.regimens[0].daily_mg == pytest.approx(6.0)


def test_micrograms_are_converted_to_mg(knowledge: Knowledge) -> None:
    ug = {"unit": "ug", "system": "http://unitsofmeasure.org", "code": "ug"}
    med = read(knowledge, [{"timing": {"repeat": {"timeOfDay": ["22:00:00"]}}, "doseAndRate": dose(2500, **ug)}])
    assert [(d.at, d.mg) for d in med.regimens[0].doses] == [(time(22), 2.5)]


def test_as_needed_with_a_maximum_per_day(knowledge: Knowledge) -> None:
    most = {"numerator": {"value": 3, "unit": "tablet"}, "denominator": {"value": 1, "unit": "d", "code": "d"}}
    tablets = [{"doseQuantity": {"value": 1, "unit": "tablet"}}]
    med = read(knowledge, [{"asNeededBoolean": True, "doseAndRate": tablets, "maxDosePerPeriod": most}])
    regimen = med.regimens[0]
    # 1 tablet of 5 mg as needed, at most 3 a day: no scheduled dose, 5 mg prn, 15 mg/day at most
    assert (regimen.doses, regimen.prn_mg, regimen.prn_max_per_day, regimen.max_daily_mg) == ((), 5.0, 3, 15.0)


@pytest.mark.parametrize(
    ("dosage", "reason"),
    [
        ([{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}, "doseAndRate": dose(5)}],
         "dosing less often than daily"),
        ([{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
           "doseAndRate": [{"doseRange": {"low": {"value": 5, **MG}, "high": {"value": 10, **MG}}}]}],
         "dose given as a range"),
        ([{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
           "doseAndRate": dose(5, unit="drop", code="{drop}")}], "unit not accepted: dose unit '{drop}'"),
        ([{"doseAndRate": dose(5)}], "no timing"),
        ([{"text": "Take as directed"}], "dosage not understood"),
        ([{"route": {"coding": [{"system": "http://snomed.info/sct", "code": "999999"}]}, "text": "5 mg nocte"}],
         "route not in value sets: http://snomed.info/sct|999999"),
        ([{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}, "doseAndRate": dose(500)}],
         "daily dose must be at most"),
    ],
)  # fmt: skip
def test_what_cannot_be_read_is_refused_with_the_reason(knowledge: Knowledge, dosage: Any, reason: str) -> None:
    assert reason in read(knowledge, dosage)


def test_tablets_need_a_known_strength(knowledge: Knowledge) -> None:
    unnamed = {"coding": [{"system": RX, "code": "3322", "display": "diazepam"}]}  # the ingredient, no strength
    tablets = [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}]}]  # fmt: skip
    assert "needs the product strength in mg per tablet or capsule" in read(knowledge, tablets, unnamed)


def test_an_rxnorm_ingredient_code_names_the_drug(knowledge: Knowledge) -> None:
    # vocabulary.toml: RxNorm 3322 = diazepam (cpic_drug_table)
    med = read(knowledge, [{"text": "5 mg nocte"}], {"coding": [{"system": RX, "code": "3322"}]})
    assert (med.drug, med.regimens[0].daily_mg) == ("diazepam", 5.0)


def test_a_medication_statement_uses_its_effective_period(knowledge: Knowledge) -> None:
    statement = {
        "resourceType": "MedicationStatement", "id": "s1", "status": "active", "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": "Klonopin 0.5 mg tablet"},
        "effectivePeriod": {"start": "2024-05-01", "end": "2025-05-01"}, "dosage": [{"text": "0.5 mg bd"}],
    }  # fmt: skip
    result = import_bundle(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": statement}]}, knowledge
    )
    (med,) = result.patient("p1").medications
    regimen = med.regimens[0]
    assert (med.drug, regimen.start, regimen.end, regimen.daily_mg) == (
        "clonazepam",
        date(2024, 5, 1),
        date(2025, 5, 1),
        1.0,
    )


def test_a_benzodiazepine_outside_the_knowledge_base_is_named_in_the_reason(knowledge: Knowledge) -> None:
    quazepam = {"coding": [{"system": RX, "code": "207889", "display": "quazepam 15 MG Oral Tablet [Doral]"}]}
    reason = read(knowledge, [{"text": "15 mg nocte"}], quazepam)
    assert reason.startswith("quazepam: a benzodiazepine the knowledge base does not cover")
