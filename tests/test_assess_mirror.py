"""The mirror analysis against independent expectations: the worked cases' stated verdicts, hand-made
diaries with a known pattern, the clue rules of domain.md section 2, and a simulated cohort."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from benzotaper.assess.clues import Finding
from benzotaper.assess.mirror import analyse, combine
from benzotaper.assess.synthetic import auc, simulated_cohort
from benzotaper.assess.timeline import parse_timeline, read_timeline
from benzotaper.cli import app
from benzotaper.errors import AssessmentError, KnowledgeError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.mirror_rules import ASSESS_DIR, MirrorKnowledge, load_mirror_knowledge, read_mirror_knowledge

CASES = Path(__file__).parents[1] / "src/benzotaper/knowledge/data/cases"
MK = load_mirror_knowledge()
ISSUE_EXAMPLE = """
patient: {sex: F, birth_year: 1968}
indication: {condition: anxiety disorder, since: 1994-01-01, symptoms: [anxiety]}
bzd_history:
  - {drug: lorazepam, dose: 1 mg bid, start: 2009-05-01, end: 2014-12-31}
  - {drug: lorazepam, dose: 2.5 mg tds, start: 2015-01-01}
symptoms:
  - {symptom: anxiety, onset: 1994-01-01}
  - {symptom: insomnia, onset: 2011-06-01}
  - {symptom: hypertension, onset: 2016-03-01}
  - {symptom: anxiety, at: 2024-03-01T07:00, severity: 7}   # severity 0-10
treatments:
  - {drug: amlodipine, for: hypertension, start: 2016-04-01, effect: none}
bzd_relief: [hypertension, insomnia]       # symptoms that a BZD dose relieves
"""
runner = CliRunner()


def _analyse(knowledge: Knowledge, doc: dict[str, Any]) -> dict[str, Any]:
    return analyse(knowledge, parse_timeline(doc), MK).to_dict()


def _base(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "indication": {"condition": "anxiety disorder", "since": date(2000, 1, 1), "symptoms": ["anxiety"]},
        "bzd_history": [{"drug": "alprazolam", "dose": "0.5 mg tds", "start": date(2020, 1, 1)}],
        "symptoms": [{"symptom": "anxiety", "onset": date(2000, 1, 1)}],
    }
    doc.update(extra)
    return doc


# --- the two worked cases of domain.md section 3 (verdicts stated by the case report)


@pytest.mark.parametrize("path", sorted(CASES.glob("*.yaml")), ids=lambda p: p.stem)
def test_it_reproduces_every_verdict_of_the_worked_cases(knowledge: Knowledge, path: Path) -> None:
    expected = yaml.safe_load(path.read_text())["expected"]
    doc = analyse(knowledge, read_timeline(path), MK).to_dict()
    assert {name: s["verdict"] for name, s in doc["symptoms"].items()} == expected


def test_case_one_flags_the_seizure_as_a_red_flag(knowledge: Knowledge) -> None:
    doc = analyse(knowledge, read_timeline(CASES / "case1_anxiety_lorazepam.yaml"), MK).to_dict()
    assert doc["summary"]["red_flags"] == ["grand mal seizure"]
    assert doc["symptoms"]["grand mal seizure"]["red_flag"] is True


# --- the issue's example timeline, accepted as is


def test_it_accepts_the_issue_example_as_is(knowledge: Knowledge) -> None:
    doc = analyse(knowledge, parse_timeline(yaml.safe_load(ISSUE_EXAMPLE)), MK).to_dict()
    assert set(doc["symptoms"]) == {"anxiety", "insomnia", "hypertension"}
    assert doc["symptoms"]["anxiety"]["verdict"] == "primary"  # the original indication (clue 2)
    assert doc["symptoms"]["insomnia"]["verdict"] == "withdrawal"  # new, after escalation, relieved by a dose
    for s in doc["symptoms"].values():
        assert {"verdict", "score", "evidence"} <= set(s)
        assert all(e["source"] in MK.sources for e in s["evidence"])


# --- single clues, read off small timelines


def _finding(doc: dict[str, Any], symptom: str, clue: str) -> dict[str, Any] | None:
    return next((e for e in doc["symptoms"][symptom]["evidence"] if e["clue"] == clue), None)


def test_a_symptom_starting_days_after_a_cut_counts_as_within_the_withdrawal_window(knowledge: Knowledge) -> None:
    history = [
        {"drug": "diazepam", "dose": "10 mg tds", "start": date(2015, 1, 1), "end": date(2024, 12, 31)},
        {"drug": "diazepam", "dose": "5 mg tds", "start": date(2025, 1, 1)},
    ]
    symptoms = [{"symptom": "tinnitus", "onset": date(2025, 1, 8)}, {"symptom": "cough", "onset": date(2025, 6, 1)}]
    doc = _analyse(knowledge, _base(bzd_history=history, symptoms=symptoms))
    assert _finding(doc, "tinnitus", "after_reduction")["outcome"] == "within_window"  # type: ignore[index]
    assert _finding(doc, "cough", "after_reduction")["outcome"] == "outside_window"  # type: ignore[index]
    assert doc["symptoms"]["tinnitus"]["verdict"] == "withdrawal"


def test_a_response_to_treatment_counts_against_withdrawal(knowledge: Knowledge) -> None:
    symptoms = [{"symptom": "back pain", "onset": date(2022, 1, 1)}]
    treat = [{"drug": "physiotherapy", "for": "backache", "effect": "good"}]
    doc = _analyse(knowledge, _base(symptoms=symptoms, treatments=treat))
    ev = _finding(doc, "back pain", "treatment_response")
    assert ev is not None and ev["direction"] == "against"


def test_what_fades_with_detox_is_withdrawal_and_what_persists_is_primary(knowledge: Knowledge) -> None:
    history = [{"drug": "diazepam", "dose": "5 mg bid", "start": date(2015, 1, 1), "end": date(2024, 6, 30)}]
    symptoms = [
        {"symptom": "anxiety", "onset": date(2000, 1, 1)},
        {"symptom": "anxiety", "at": datetime(2025, 3, 1, 10), "severity": 6},
        {"symptom": "palpitations", "onset": date(2018, 1, 1), "resolved": date(2024, 8, 1)},
    ]
    doc = _analyse(knowledge, _base(bzd_history=history, symptoms=symptoms))
    assert _finding(doc, "palpitations", "detox_course")["outcome"] == "faded"  # type: ignore[index]
    assert _finding(doc, "anxiety", "detox_course")["outcome"] == "persisted"  # type: ignore[index]


def test_an_unknown_symptom_name_is_not_assessed_rather_than_guessed(knowledge: Knowledge) -> None:
    doc = _analyse(knowledge, _base(symptoms=[{"symptom": "glowing toenails", "onset": date(2022, 1, 1)}]))
    s = doc["symptoms"]["glowing toenails"]
    assert any(n["clue"] == "mirror_action" for n in s["not_assessed"])


def test_synonyms_merge_into_one_symptom(knowledge: Knowledge) -> None:
    symptoms = [
        {"symptom": "High blood pressure", "onset": date(2022, 1, 1)},
        {"symptom": "hypertension", "onset": date(2023, 1, 1)},
    ]
    doc = _analyse(knowledge, _base(symptoms=symptoms))
    assert list(doc["symptoms"]) == ["High blood pressure"]


# --- the level relation: diaries with a pattern made by hand, not by the PK engine


def _diary(pattern: str) -> list[dict[str, Any]]:
    """Hourly 07:00-22:00 for 14 days on alprazolam 08/14/22: worst just before a dose, or noise."""
    records = []
    import random

    rnd = random.Random(4)
    for d in range(14):
        for h in range(7, 23):
            if pattern == "interdose":
                since = min((h - t) % 24 for t in (8, 14, 22))  # hours since the last dose
                sev = min(10.0, 1.0 + 1.2 * since + rnd.uniform(-0.5, 0.5))
            else:
                sev = rnd.uniform(2, 8)
            records.append({"symptom": "panic", "at": datetime(2025, 3, 1 + d, h), "severity": round(sev, 1)})
    return records


def test_severity_peaking_before_each_dose_follows_the_level(knowledge: Knowledge) -> None:
    history = [{"drug": "alprazolam", "dose": "1 mg tds", "start": date(2020, 1, 1)}]
    doc = _analyse(
        knowledge,
        _base(bzd_history=history, symptoms=[{"symptom": "panic", "onset": date(2021, 1, 1)}, *_diary("interdose")]),
    )
    ev = _finding(doc, "panic", "level_relation")
    assert ev is not None and ev["outcome"] == "worse_at_low_level"
    assert "late" in ev["finding"]


def test_severity_independent_of_the_level_shows_no_relation(knowledge: Knowledge) -> None:
    history = [{"drug": "alprazolam", "dose": "1 mg tds", "start": date(2020, 1, 1)}]
    doc = _analyse(
        knowledge,
        _base(bzd_history=history, symptoms=[{"symptom": "panic", "onset": date(2021, 1, 1)}, *_diary("noise")]),
    )
    ev = _finding(doc, "panic", "level_relation")
    assert ev is not None and ev["outcome"] == "no_relation"


def test_a_flat_level_is_not_read_as_no_relation(knowledge: Knowledge) -> None:
    # diazepam's level barely moves at a steady dose: a diary cannot show a relation either way
    history = [{"drug": "diazepam", "dose": "10 mg bid", "start": date(2020, 1, 1)}]
    doc = _analyse(
        knowledge,
        _base(bzd_history=history, symptoms=[{"symptom": "panic", "onset": date(2021, 1, 1)}, *_diary("noise")]),
    )
    assert any(n["clue"] == "level_relation" and "flat" in n["why"] for n in doc["symptoms"]["panic"]["not_assessed"])


def test_a_diary_of_taken_doses_replaces_the_schedule(knowledge: Knowledge) -> None:
    # one dose a day at 20:00 in the diary: hours just before it are the lowest level
    history = [{"drug": "alprazolam", "dose": "1 mg tds", "start": date(2020, 1, 1)}]
    doses = [
        {"drug": "alprazolam", "mg": 1.0, "at": datetime(2025, 3, 1, 20) + timedelta(days=d)} for d in range(-3, 15)
    ]
    records = [
        {"symptom": "agitation", "at": datetime(2025, 3, 2 + d, h), "severity": float(h - 6) / 2}
        for d in range(12)
        for h in range(7, 20)
    ]
    doc = _analyse(
        knowledge,
        _base(
            bzd_history=history, doses=doses, symptoms=[{"symptom": "agitation", "onset": date(2021, 1, 1)}, *records]
        ),
    )
    assert _finding(doc, "agitation", "level_relation")["outcome"] == "worse_at_low_level"  # type: ignore[index]


# --- combination rule: properties


def _f(lr: float) -> Finding:
    return Finding("novelty", "new", "", lr)


@given(st.lists(st.floats(0.05, 20), max_size=6), st.floats(1.01, 20))
def test_evidence_for_withdrawal_never_lowers_the_score(lrs: list[float], extra: float) -> None:
    before, _ = combine([_f(x) for x in lrs], MK)
    after, _ = combine([_f(x) for x in [*lrs, extra]], MK)
    assert after > before
    assert 0 < after < 1


@given(st.lists(st.floats(0.05, 20), max_size=6))
def test_the_verdict_follows_the_thresholds(lrs: list[float]) -> None:
    p, verdict = combine([_f(x) for x in lrs], MK)
    if p >= MK.setting("withdrawal_at"):
        assert verdict == "withdrawal"
    elif p <= MK.setting("primary_at"):
        assert verdict == "primary"
    else:
        assert verdict == "undetermined"


def test_with_no_evidence_the_score_is_the_prior() -> None:
    p, _ = combine([], MK)
    assert p == pytest.approx(MK.setting("prior"))


# --- knowledge files refuse bad weights


def test_every_clue_column_sums_to_one() -> None:
    for clue in MK.clues.values():
        assert sum(o.p_withdrawal for o in clue.outcomes.values()) == pytest.approx(1)
        assert sum(o.p_primary for o in clue.outcomes.values()) == pytest.approx(1)


def test_a_clue_whose_probabilities_do_not_sum_to_one_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "mirror.toml"
    text = (
        (ASSESS_DIR / "mirror.toml")
        .read_text()
        .replace("{ withdrawal = 0.88, primary = 0.45 }", "{ withdrawal = 0.98, primary = 0.45 }")
    )
    bad.write_text(text)
    with pytest.raises(KnowledgeError, match=r"clue\[1\].*withdrawal probabilities must sum to 1"):
        read_mirror_knowledge(ASSESS_DIR / "symptoms.toml", bad)


def test_every_symptom_and_clue_cites_a_known_source() -> None:
    mk: MirrorKnowledge = MK
    assert all(t.source in mk.sources for t in mk.symptoms.values())
    assert all(c.source in mk.sources for c in mk.clues.values())
    assert all(c.rationale for c in mk.clues.values())


# --- bad input names the field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"symptoms": [{"symptom": "anxiety", "at": datetime(2024, 1, 1), "severity": 11}]}, "symptoms[0].severity"),
        ({"bzd_history": []}, "bzd_history"),
        (
            {
                "bzd_history": [
                    {"drug": "lorazepam", "dose": "1 mg bid", "start": date(2020, 1, 1), "end": date(2019, 1, 1)}
                ]
            },
            "bzd_history[0]",
        ),
        ({"treatments": [{"drug": "x", "for": "anxiety", "effect": "great"}]}, "treatments[0].effect"),
    ],
)
def test_a_bad_timeline_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(AssessmentError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_timeline(_base(**change))


def test_an_unknown_drug_in_the_history_names_the_course(knowledge: Knowledge) -> None:
    doc = _base(bzd_history=[{"drug": "lorazpam", "dose": "1 mg bid", "start": date(2020, 1, 1)}])
    with pytest.raises(AssessmentError, match=r"bzd_history\[0\].*lorazepam"):
        analyse(knowledge, parse_timeline(doc), MK)


# --- the CLI


def test_mirror_json_has_the_documented_keys(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(ISSUE_EXAMPLE)
    html = tmp_path / "r.html"
    result = runner.invoke(
        app, ["mirror", str(path), "--json", "--html", str(html), "--markdown", str(tmp_path / "r.md")]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc["symptoms"]["insomnia"]) >= {"verdict", "score", "evidence"}
    assert doc["symptoms"]["insomnia"]["verdict"] in ("withdrawal", "primary", "undetermined")
    assert "summary" in doc
    page = html.read_text()
    assert "<table>" in page and "insomnia" in page and "cdn.plot.ly" not in page
    assert "| insomnia | withdrawal |" in (tmp_path / "r.md").read_text()


def test_mirror_refuses_a_bad_file_with_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "bzd_history: [{drug: diazepam, dose: 5 mg, start: 2020-01-01}]\n"
        "symptoms: [{symptom: anxiety, severity: -1, at: 2021-01-01}]\n"
    )
    result = runner.invoke(app, ["mirror", str(path)])
    assert result.exit_code == 2
    assert "symptoms[0].severity" in result.stderr


def test_symptoms_lists_the_vocabulary_as_json() -> None:
    result = runner.invoke(app, ["symptoms", "--json"])
    assert result.exit_code == 0
    ids = {s["id"] for s in json.loads(result.stdout)["symptoms"]}
    assert {"anxiety", "insomnia", "seizure", "tinnitus", "hypertension"} <= ids


# --- the simulated cohort (issue 5, item 9): truth comes from the generating mechanism


def test_the_analysis_separates_simulated_withdrawal_from_primary_symptoms(knowledge: Knowledge) -> None:
    cohort = simulated_cohort(knowledge, MK, 1000, seed=7)
    scores, truth = [], []
    for patient in cohort:
        doc = analyse(knowledge, patient.timeline, MK)
        for v in doc.symptoms.values():
            scores.append(v.score)
            truth.append(patient.truth[v.name] == "withdrawal")
    assert len(cohort) == 1000
    assert auc(scores, truth) >= 0.9


def test_auc_matches_a_hand_count() -> None:
    # pairs (pos, neg): (0.9,0.1) win, (0.9,0.5) win, (0.4,0.1) win, (0.4,0.5) loss -> 3/4
    assert auc([0.9, 0.4, 0.1, 0.5], [True, True, False, False]) == pytest.approx(0.75)


# --- red flags bring crisis help for the patient's country (domain.md section 4 numbers)


def test_suicidal_thoughts_bring_the_crisis_lines_of_the_patients_country(knowledge: Knowledge) -> None:
    doc = _analyse(
        knowledge,
        _base(patient={"country": "GB"}, symptoms=[{"symptom": "suicidal ideation", "onset": date(2024, 1, 1)}]),
    )
    summary = doc["summary"]
    assert summary["red_flags"] == ["suicidal ideation"]
    assert summary["alerts"] and summary["alerts"][0]["symptom"] == "suicidal ideation"
    numbers = {line["number"].replace(" ", "") for line in summary["crisis"]["lines"]}
    assert {"116123", "111"} <= numbers  # Samaritans and NHS 111, as domain.md lists them


def test_an_unknown_country_still_gets_emergency_advice(knowledge: Knowledge) -> None:
    doc = _analyse(
        knowledge, _base(patient={"country": "ZZ"}, symptoms=[{"symptom": "seizure", "onset": date(2024, 1, 1)}])
    )
    assert doc["summary"]["crisis"]["advice"]
    assert doc["summary"]["alerts"][0]["flag"] == "seizure"


def test_no_red_flag_means_no_alert(knowledge: Knowledge) -> None:
    doc = _analyse(knowledge, _base())
    assert doc["summary"]["alerts"] == [] and doc["summary"]["crisis"] is None
