"""Exporting a patient as a FHIR R4 Bundle, and the round trip export -> import -> equal core objects.

The expected shapes come from the FHIR spec and HL7's tapering example medrx0303 (intent, sequence,
timing.repeat.boundsPeriod, frequency 1 per 1 d, route SNOMED 26643006, doseAndRate type 'ordered').
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, time
from typing import Any

import pytest

pytest.importorskip("fhir.resources.R4B")

from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benzotaper.assess.instruments import score
from benzotaper.assess.mirror import analyse
from benzotaper.assess.risk import RiskProfile, assess_risk
from benzotaper.assess.timeline import Patient, read_timeline
from benzotaper.errors import FhirError
from benzotaper.fhir import PatientExport, ScaleResult, export_patient_bundle, import_bundle, plan_from_json
from benzotaper.fhir.codes import Coder
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.instruments import load_instruments
from benzotaper.knowledge.loader import DATA_DIR
from benzotaper.knowledge.mirror_rules import load_mirror_knowledge
from benzotaper.taper.plan import PHASES, Dose, Event, Phase, Plan, Portion, Step
from benzotaper.taper.planner import PlanOptions, plan_from_text
from benzotaper.tdm.samples import read_samples

Json = dict[str, Any]
LEVELS = """sampled_at,analyte,value,unit,lloq,last_dose_at,lab,method
2026-04-27T07:40,diazepam,160,ng/mL,5,2026-04-26T20:00,Central lab,LC-MS/MS
2026-04-27T07:40,nordiazepam,0.9,umol/L,0.02,2026-04-26T20:00,Central lab,LC-MS/MS
2026-05-25T07:40,diazepam,<5,ng/mL,5,,,
"""


@pytest.fixture(scope="module")
def coder(knowledge: Knowledge) -> Coder:
    return Coder(knowledge)


@pytest.fixture(scope="module")
def plan(knowledge: Knowledge) -> Plan:
    return plan_from_text(knowledge, "alprazolam 0.5 mg bd", PlanOptions(start=date(2026, 3, 2), strategy="ashton"))


@pytest.fixture(scope="module")
def bundle(knowledge: Knowledge, plan: Plan, coder: Coder) -> Json:
    samples = read_samples(knowledge, LEVELS)
    ciwa = load_instruments()["ciwa_b"]
    result = ScaleResult("ciwa_b", datetime(2026, 4, 27, 9, 0), score(ciwa, [1] * 10 + [0] * 10))
    record = PatientExport("p-0001", Patient(sex="female", birth_year=1968, country="GB"), date(1968, 4, 12),
                           "Ann Example", plan=plan, samples=samples, scores=[result])  # fmt: skip
    return export_patient_bundle(knowledge, record, status="draft", coder=coder)


def resources(bundle: Json, kind: str) -> list[Json]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_the_bundle_is_a_valid_r4_collection(bundle: Json) -> None:
    assert bundle["type"] == "collection"
    Bundle.model_validate(bundle)  # the R4 (R4B) model of fhir.resources, whole bundle at once
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(urls) == len(set(urls))


def test_each_step_is_a_planned_medication_request_in_the_tapering_style(bundle: Json, plan: Plan) -> None:
    requests = resources(bundle, "MedicationRequest")
    first = requests[0]
    assert (first["intent"], first["status"]) == ("plan", "draft")
    step = plan.steps[0]
    dosage = first["dosageInstruction"][0]
    assert dosage["sequence"] == step.index == 1
    repeat = dosage["timing"]["repeat"]
    assert repeat["boundsPeriod"] == {"start": "2026-03-02", "end": (step.start + (step.end - step.start)).isoformat()}
    assert (repeat["frequency"], repeat["period"], repeat["periodUnit"]) == (1, 1, "d")
    assert dosage["route"]["coding"][0]["code"] == "26643006"
    assert dosage["doseAndRate"][0]["type"]["coding"][0]["code"] == "ordered"
    assert dosage["doseAndRate"][0]["doseQuantity"]["code"] == "mg"


def test_the_substitution_phase_is_exported_with_both_drugs(bundle: Json, plan: Plan) -> None:
    substitution = [s for s in plan.steps if s.phase == "substitution"]
    assert substitution, "the plan switches alprazolam to diazepam first"
    requests = resources(bundle, "MedicationRequest")
    first_step = [r for r in requests if r["dosageInstruction"][0]["sequence"] == substitution[0].index]
    drugs = {r["medicationCodeableConcept"]["text"] for r in first_step}
    assert drugs == {d.drug for d in substitution[0].doses}


def test_the_drug_free_last_step_is_a_do_not_perform_request(bundle: Json, plan: Plan) -> None:
    last = resources(bundle, "MedicationRequest")[-1]
    assert last["doNotPerform"] is True
    assert last["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] == {"start": plan.end_date.isoformat()}


def test_the_careplan_carries_phases_and_links_every_step(bundle: Json, plan: Plan) -> None:
    (careplan,) = resources(bundle, "CarePlan")
    assert careplan["period"] == {"start": "2026-03-02", "end": plan.end_date.isoformat()}
    details = [a["detail"]["code"]["text"] for a in careplan["activity"] if "detail" in a]
    assert details == ["substitution", "reduction"]
    linked = {a["reference"]["reference"] for a in careplan["activity"] if "reference" in a}
    assert linked == {e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationRequest"}


def test_levels_are_loinc_observations_in_ucum_with_censoring(bundle: Json) -> None:
    observations = resources(bundle, "Observation")
    diazepam = observations[0]
    assert {"system": "http://loinc.org", "code": "3548-5"}.items() <= diazepam["code"]["coding"][0].items()
    assert diazepam["valueQuantity"] == {"value": 160.0, "unit": "ng/mL", "system": "http://unitsofmeasure.org",
                                         "code": "ng/mL"}  # fmt: skip
    # 0.9 µmol/L nordiazepam x 270.71 g/mol = 243.6 ng/mL, written in ng/mL
    assert observations[1]["valueQuantity"]["value"] == pytest.approx(0.9 * 270.71, rel=1e-3)
    assert observations[2]["valueQuantity"]["comparator"] == "<"
    assert observations[2]["valueQuantity"]["value"] == 5.0


def test_questionnaires_are_built_from_the_instrument_data(bundle: Json) -> None:
    by_id = {q["id"]: q for q in resources(bundle, "Questionnaire")}
    assert set(by_id) == {"ciwa-b", "bwsq", "sds"}
    ciwa = by_id["ciwa-b"]
    assert len(ciwa["item"]) == 21  # 20 items (Busto 1989) and the read-only total
    option = ciwa["item"][0]["answerOption"][4]
    assert option["valueCoding"]["code"] == "4"
    assert option["extension"] == [{"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue", "valueDecimal": 4}]
    assert ciwa["status"] == "draft"  # the item wording is paraphrased, not verified


def test_a_score_is_a_completed_questionnaire_response_with_its_total(bundle: Json) -> None:
    (qr,) = resources(bundle, "QuestionnaireResponse")
    assert qr["status"] == "completed"
    assert qr["questionnaire"].endswith("/Questionnaire/ciwa-b")
    assert qr["item"][-1] == {"linkId": "total", "answer": [{"valueInteger": 10}]}


def test_export_then_import_gives_back_the_same_core_objects(bundle: Json, plan: Plan, knowledge: Knowledge) -> None:
    text = json.dumps(bundle)  # what a file or an HTTP body carries
    record = import_bundle(json.loads(text), knowledge).patient("p-0001")
    assert record.plans == (plan,)
    assert record.patient.patient == Patient(sex="female", birth_year=1968, country="GB")
    assert (record.patient.birth_date, record.patient.name) == (date(1968, 4, 12), "Ann Example")
    original = read_samples(knowledge, LEVELS)
    assert [replace(s, row=0) for s in record.samples] == [replace(s, row=0) for s in original]
    assert [r.score for r in record.scores] == [score(load_instruments()["ciwa_b"], [1] * 10 + [0] * 10)]
    assert record.medications == ()  # taper steps are read as the plan, not as regimens


def test_plan_json_from_the_cli_reads_back_into_the_plan(plan: Plan) -> None:
    rounded = plan_from_json(json.loads(json.dumps(plan.to_dict())))
    assert rounded.steps[5].doses == plan.steps[5].doses  # mg in this plan have at most 4 decimals
    assert rounded.to_dict() == plan.to_dict()


def test_a_bad_status_or_patient_id_is_refused(knowledge: Knowledge, plan: Plan) -> None:
    with pytest.raises(FhirError, match="status must be one of"):
        export_patient_bundle(knowledge, PatientExport("p1", plan=plan), status="final")
    with pytest.raises(FhirError, match="patient id must be 1-64 letters"):
        export_patient_bundle(knowledge, PatientExport("p 1"))


# ---------------------------------------------------------------- property: plan -> bundle -> plan

DRUGS = ("diazepam", "alprazolam", "lorazepam", "clonazepam", "oxazepam", "zolpidem")
text = st.text(st.characters(codec="ascii", categories=("L", "N", "P", "Zs")), min_size=1, max_size=30).filter(
    lambda s: s == s.strip()
)
amount = st.floats(min_value=0.001, max_value=500, allow_nan=False, allow_infinity=False)


@st.composite
def portions(draw: st.DrawFn, drug: str) -> Portion:
    liquid = draw(st.booleans())
    return Portion(drug, "oral_solution" if liquid else "tablet", draw(amount), "mg/mL" if liquid else "mg",
                   0.0 if liquid else draw(amount), draw(amount) if liquid else 0.0)  # fmt: skip


@st.composite
def doses(draw: st.DrawFn) -> Dose:
    drug = draw(st.sampled_from(DRUGS))
    at = time(draw(st.integers(0, 23)), draw(st.integers(0, 59)))
    return Dose(drug, at, draw(amount), tuple(draw(st.lists(portions(drug), max_size=2))))


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    start = draw(st.dates(date(2020, 1, 1), date(2035, 1, 1)))
    steps, day = [], start
    for index in range(1, draw(st.integers(1, 4)) + 1):
        days = draw(st.integers(1, 60))
        steps.append(
            Step(index, draw(st.sampled_from(PHASES)), day, days, tuple(draw(st.lists(doses(), max_size=4))),
                 draw(st.floats(0, 400, allow_nan=False)), draw(st.one_of(st.just(""), text)),
                 tuple(draw(st.lists(text, max_size=2))), tuple(draw(st.lists(text, max_size=2))),
                 draw(st.one_of(st.none(), text)))
        )  # fmt: skip
        day = day.fromordinal(day.toordinal() + days)
    phase = Phase(draw(st.sampled_from(PHASES)), start, day, draw(st.one_of(st.just(""), text)))
    event = Event(start, draw(st.sampled_from(("hold", "return", "score"))), draw(st.integers(0, 30)), "ciwa_b",
                  draw(st.floats(0, 80, allow_nan=False)), draw(st.one_of(st.just(""), text)))  # fmt: skip
    params = draw(st.dictionaries(st.sampled_from(("interval_days", "fraction", "market", "pace")),
                                  st.one_of(st.none(), st.integers(0, 99), amount, text)))  # fmt: skip
    return Plan(
        regimen=draw(st.one_of(st.just(""), text)),
        strategy=draw(st.from_regex(r"[a-z_]{1,12}", fullmatch=True)),
        strategy_name=draw(text),
        table=draw(st.one_of(st.just(""), text)),
        start=start,
        steps=tuple(steps),
        phases=(phase,),
        warnings=tuple(draw(st.lists(text, max_size=3))),
        target=draw(st.one_of(st.none(), st.sampled_from(DRUGS))),
        tolerance=draw(st.floats(0, 1, allow_nan=False)),
        sources=tuple(draw(st.lists(text, max_size=3))),
        overrides=tuple(draw(st.lists(text, max_size=1))),
        events=tuple(draw(st.lists(st.just(event), max_size=1))),
        parameters=params,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans())
def test_any_plan_survives_the_round_trip(knowledge: Knowledge, coder: Coder, plan: Plan) -> None:
    if not any(s.doses for s in plan.steps):
        with pytest.raises(FhirError, match="without any dose"):
            export_patient_bundle(knowledge, PatientExport("p1", plan=plan), include_questionnaires=False, coder=coder)
        return
    bundle = export_patient_bundle(knowledge, PatientExport("p1", plan=plan), include_questionnaires=False, coder=coder)
    back = import_bundle(json.loads(json.dumps(bundle)), knowledge, coder=coder)
    assert back.patient("p1").plans == (plan,)
    assert back.unmapped == ()


# ---------------------------------------------------------------- mirror analysis and risk


def test_mirror_and_risk_are_risk_assessments_and_detected_issues(knowledge: Knowledge, coder: Coder) -> None:
    timeline = read_timeline(DATA_DIR / "cases" / "case2_alprazolam_breathlessness.yaml")
    mirror = analyse(knowledge, timeline, load_mirror_knowledge())
    profile = RiskProfile(age=34, regimen="alprazolam 2 mg tds", co_used=frozenset({"opioids"}),
                          findings=("suicidal thoughts",), country="GB")  # fmt: skip
    risk = assess_risk(profile, knowledge)
    record = PatientExport("c2", mirror=mirror, risk=risk, assessed_on=date(2026, 3, 2))
    bundle = export_patient_bundle(knowledge, record, include_questionnaires=False, coder=coder)
    mirror_ra, risk_ra = resources(bundle, "RiskAssessment")
    outcomes = {p["outcome"]["text"]: p for p in mirror_ra["prediction"]}
    assert set(outcomes) == {f"{v.name}: withdrawal-driven" for v in mirror.symptoms.values()}
    assert all(0 <= p["probabilityDecimal"] <= 1 for p in outcomes.values())
    assert risk_ra["prediction"][0]["outcome"]["text"] == f"taper setting: {risk.setting}"
    assert risk_ra["occurrenceDateTime"] == "2026-03-02"
    flag, co_use = resources(bundle, "DetectedIssue")
    assert (flag["code"]["text"], flag["severity"]) == ("Suicidal thoughts", "high")  # urgent -> high (fhir.toml)
    assert "severity" not in co_use  # the safety-net data gives co-use warnings no severity
