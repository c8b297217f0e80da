"""Importing FHIR R4 bundles: Synthea-like and EHR-like shapes, unusual dosage forms, levels, scales, refusals.

Expected values are worked by hand from the fixture (e.g. 5 mL of a 1 mg/mL solution = 5 mg; 150 nmol/L of
lorazepam x 321.16 g/mol = 48.17 ng/mL; the CIWA-B answers add up to 24, in the 21-40 'moderate' band).
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fhir.resources.R4B")

from benzotaper.errors import FhirError
from benzotaper.fhir import ImportResult, import_bundle
from benzotaper.knowledge import Knowledge

FIXTURES = Path(__file__).parent / "fixtures" / "fhir"
SYNTHEA_PATIENT = "6f1c3a52-7d1e-4b8a-9c55-2f0e8a1d4b77"
EHR_PATIENT = "eq81JpV0lvAD0EzYS1bT.2A3"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def synthea(knowledge: Knowledge) -> ImportResult:
    return import_bundle(load("synthea_alprazolam.json"), knowledge)


@pytest.fixture(scope="module")
def ehr(knowledge: Knowledge) -> ImportResult:
    return import_bundle(load("ehr_dosage_forms_levels_scales.json"), knowledge)


def reasons(result: ImportResult) -> dict[str, str]:
    return {u.resource: u.reason for u in result.unmapped}


# ---------------------------------------------------------------- Synthea-like bundle


def test_it_reads_a_synthea_patient_with_its_extensions(synthea: ImportResult) -> None:
    info = synthea.patient(SYNTHEA_PATIENT).patient
    assert info.patient.sex == "female"
    assert info.patient.birth_year == 1968
    assert info.birth_date == date(1968, 4, 12)
    assert info.patient.country == "US"
    assert info.name == "María465 Rodríguez12"


def test_it_reads_synthea_dose_counts_with_the_rxnorm_product_strength(synthea: ImportResult) -> None:
    meds = synthea.patient(SYNTHEA_PATIENT).medications
    assert [m.drug for m in meds] == ["alprazolam"] * 4
    # RxNorm 308048 'alprazolam 0.5 MG Oral Tablet', 1 tablet 3 times a day -> 0.5 mg x 3 = 1.5 mg/day
    first = meds[0].regimens[0]
    assert first.daily_mg == pytest.approx(1.5)
    assert [d.mg for d in first.doses] == [0.5, 0.5, 0.5]
    # 197321 'alprazolam 1 MG Oral Tablet' twice a day -> 2 mg/day, then three times a day -> 3 mg/day
    assert meds[2].regimens[0].daily_mg == pytest.approx(2.0)
    assert meds[3].regimens[0].daily_mg == pytest.approx(3.0)


def test_it_ends_a_prescription_after_its_expected_supply(synthea: ImportResult) -> None:
    first = synthea.patient(SYNTHEA_PATIENT).medications[0].regimens[0]
    # authored 2025-09-01, 30 days' supply: the 30th day is 2025-09-30
    assert (first.start, first.end) == (date(2025, 9, 1), date(2025, 9, 30))


def test_it_keeps_an_opioid_as_a_co_medication(synthea: ImportResult) -> None:
    co = synthea.patient(SYNTHEA_PATIENT).co_medications
    assert [(c.ingredient, c.kind, c.start) for c in co] == [("oxycodone", "opioid", date(2025, 11, 15))]


def test_it_lists_a_drug_outside_the_value_sets_with_the_reason(synthea: ImportResult) -> None:
    why = reasons(synthea)["MedicationRequest/11111111-2222-4333-8444-555555550006"]
    assert why == "no benzodiazepine or Z-drug: code not in value sets: RxNorm 4493 (fluoxetine)"


def test_it_counts_the_resources_it_does_not_read(synthea: ImportResult) -> None:
    assert synthea.ignored == {"Claim": 1, "Condition": 1, "Encounter": 1, "Observation (vital-signs)": 1}


# ---------------------------------------------------------------- EHR-like bundle: dosage forms


def test_it_converts_millilitres_of_an_oral_solution_with_its_strength(ehr: ImportResult) -> None:
    med = next(m for m in ehr.patient(EHR_PATIENT).medications if m.source == "MedicationRequest/eDZsol1")
    (regimen,) = med.regimens
    # 5 mL of RxNorm 309843 'diazepam 1 MG/ML Oral Solution' at 08:00 and 20:00
    assert [(d.at, d.mg) for d in regimen.doses] == [(time(8), 5.0), (time(20), 5.0)]
    assert regimen.start == date(2026, 1, 5) and regimen.end is None


def test_it_refuses_a_rectal_gel_and_an_injection_naming_the_route(ehr: ImportResult) -> None:
    why = reasons(ehr)
    assert why["MedicationRequest/eDZgel2"].startswith("route rectal is not modelled")
    assert why["MedicationRequest/eLZinj3"].startswith("route parenteral is not modelled")


def test_it_reads_a_free_text_sig_with_tablets_of_the_coded_strength(ehr: ImportResult) -> None:
    med = next(m for m in ehr.patient(EHR_PATIENT).medications if m.drug == "lorazepam")
    # 'Take 1 tablet (1 mg total) by mouth three times daily.' of a 1 mg tablet: 3 x 1 mg
    assert med.regimens[0].daily_mg == pytest.approx(3.0)
    assert len(med.regimens[0].doses) == 3


def test_it_refuses_a_request_without_dosage(ehr: ImportResult) -> None:
    assert reasons(ehr)["MedicationRequest/eCZnodose5"] == "no dosage (dosageInstruction/dosage is empty)"


def test_it_reads_a_contained_medication_and_an_event_timing(ehr: ImportResult) -> None:
    med = next(m for m in ehr.patient(EHR_PATIENT).medications if m.drug == "temazepam")
    (regimen,) = med.regimens
    # 1 capsule of 15 mg at HS ('at bedtime', 22:00 in sig.toml), from 2026-01-05 to 2026-02-03
    assert [(d.at, d.mg) for d in regimen.doses] == [(time(22), 15.0)]
    assert (regimen.start, regimen.end) == (date(2026, 1, 5), date(2026, 2, 3))


# ---------------------------------------------------------------- levels


def test_it_reads_loinc_levels_and_converts_nanomoles(ehr: ImportResult, knowledge: Knowledge) -> None:
    samples = {(s.analyte, s.sampled_at): s for s in ehr.patient(EHR_PATIENT).samples}
    drawn = datetime(2026, 2, 16, 7, 45)  # wall-clock time as written (-06:00)
    assert samples[("diazepam", drawn)].value == pytest.approx(350.0)
    assert samples[("nordiazepam", drawn)].value == pytest.approx(420.0)
    # 150 nmol/L x 321.16 g/mol (lorazepam, knowledge) = 48174 ng/L = 48.174 ng/mL
    assert knowledge.analytes["lorazepam"].molar_mass.value == 321.16
    assert samples[("lorazepam", drawn)].value == pytest.approx(48.174)


def test_a_less_than_result_is_censored_at_its_limit(ehr: ImportResult) -> None:
    censored = [s for s in ehr.patient(EHR_PATIENT).samples if s.censored]
    assert [(s.analyte, s.lloq) for s in censored] == [("nordiazepam", 20.0)]


def test_it_refuses_levels_it_cannot_use_with_reasons(ehr: ImportResult) -> None:
    why = reasons(ehr)
    assert "is a sum (diazepam + nordiazepam)" in why["Observation/eObsSUM"]
    assert why["Observation/eObsPCT"].startswith("unit not accepted: '%'")
    assert why["Observation/eObsA1C"] == "code not in value sets: Hemoglobin A1c"
    assert why["Observation/eObsDAY"].startswith("sampling time has no clock time")


# ---------------------------------------------------------------- scales


def test_it_scores_a_ciwa_b_response(ehr: ImportResult) -> None:
    (result,) = ehr.patient(EHR_PATIENT).scores
    assert result.instrument == "ciwa_b"
    assert result.score.total == 24  # 2+1+2+1+0+0+1+1+2+3+1+2+1+2+0+1+2+1+1+0
    assert result.score.band == "moderate"  # 21-40 on the form's bands
    assert result.authored == datetime(2026, 2, 16, 9, 30)


def test_it_refuses_unfinished_and_foreign_questionnaires(ehr: ImportResult) -> None:
    why = reasons(ehr)
    assert why["QuestionnaireResponse/eQR2"].startswith("status 'in-progress'")
    assert "is not in value sets (CIWA-B, BWSQ, SDS)" in why["QuestionnaireResponse/eQR3"]


def test_every_record_is_either_mapped_or_listed(ehr: ImportResult) -> None:
    bundle = load("ehr_dosage_forms_levels_scales.json")
    read = {"MedicationRequest", "Observation", "QuestionnaireResponse"}
    wanted = sum(1 for e in bundle["entry"] if e["resource"]["resourceType"] in read)
    p = ehr.patient(EHR_PATIENT)
    assert len(p.medications) + len(p.samples) + len(p.scores) + len(ehr.unmapped) == wanted


# ---------------------------------------------------------------- no benzodiazepine, malformed bundles


def test_a_bundle_without_benzodiazepines_maps_nothing_and_says_why(knowledge: Knowledge) -> None:
    result = import_bundle(load("no_benzodiazepine.json"), knowledge)
    assert result.patient("nobzd-1").medications == ()
    assert [u.reason for u in result.unmapped] == [
        "no benzodiazepine or Z-drug: code not in value sets: RxNorm 4493 (fluoxetine)",
        "no benzodiazepine or Z-drug: 'Lisinopril 10 MG Oral Tablet'",
    ]


def test_a_malformed_date_names_the_resource_and_the_field(knowledge: Knowledge) -> None:
    with pytest.raises(FhirError) as err:
        import_bundle(load("malformed_dosage_date.json"), knowledge)
    message = str(err.value)
    assert message.startswith("MedicationRequest/bad1 (entry 1): dosageInstruction[0].timing.repeat.boundsPeriod.start")
    assert "'2026-13-01'" in message


@pytest.mark.parametrize(
    ("bundle", "expected"),
    [
        ({"resourceType": "Patient"}, "bundle: resourceType must be 'Bundle' (got 'Patient')"),
        ([], "bundle: resourceType must be 'Bundle' (got 'list')"),
        ({"resourceType": "Bundle", "entry": {}}, "bundle: entry must be a list (got dict)"),
        ({"resourceType": "Bundle", "entry": [{"fullUrl": "x"}]}, "bundle entry[0].resource: expected a resource"),
    ],
)
def test_it_refuses_a_bundle_that_is_not_one(knowledge: Knowledge, bundle: Any, expected: str) -> None:
    with pytest.raises(FhirError, match=expected.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        import_bundle(bundle, knowledge)


def test_a_missing_medication_reference_names_the_field(knowledge: Knowledge) -> None:
    order = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/x"},
        "medicationReference": {"reference": "Medication/nope"},
    }
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}
    with pytest.raises(FhirError, match=r"MedicationRequest/m1 \(entry 0\)\.medicationReference: 'Medication/nope'"):
        import_bundle(bundle, knowledge)
