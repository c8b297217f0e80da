"""Safety net: crisis lines by country, red flags, dependence screen, risk and setting, pathways, and their CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from benzotaper.assess.crisis import crisis_help, generic_help
from benzotaper.assess.dependence import screen_dependence
from benzotaper.assess.redflags import red_flags
from benzotaper.assess.risk import SETTING_RANK, RiskProfile, assess_risk
from benzotaper.cli import app
from benzotaper.errors import AssessmentError, ImplausibleValueError, KnowledgeError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.loader import DATA_DIR, read_sources
from benzotaper.knowledge.safety_net import FLAGS, RELIABILITY, SUBSTANCES, SafetyNet, load_safety_net, read_safety_net

runner = CliRunner()
NET = load_safety_net()

# Independent expectation, copied from shared/docs/domain.md section 4 (not from the data file).
DOMAIN_LINES = {
    "US": ["988"],
    "CA": ["988"],
    "GB": ["116123", "111"],
    "ES": ["024"],
    "FR": ["3114"],
    "DE": ["116123"],
    "CH": ["143"],
    "IT": ["0223272327"],
}
# The example (Poland) and the numbers named in the brief.
PL_LINES = ["116123", "800702222"]


def digits(number: str) -> str:
    return re.sub(r"\D", "", number)


def low_risk(**changes: Any) -> RiskProfile:
    base: dict[str, Any] = {f: False for f in FLAGS}
    base.update(age=40, diazepam_mg=5.0, years_of_use=0.1)
    base.update(changes)
    return RiskProfile(**base)


# --- crisis lines ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(DOMAIN_LINES))
def test_every_domain_country_has_the_number_domain_md_states(code: str) -> None:
    help_ = crisis_help(code)
    numbers = {digits(line.number) for line in help_.lines}
    assert set(DOMAIN_LINES[code]) <= numbers
    assert help_.emergency is not None and help_.emergency.number and not help_.fallback


def test_poland_has_adult_crisis_line_support_centre_and_112() -> None:
    help_ = crisis_help("pl")
    assert [digits(line.number) for line in help_.lines] == PL_LINES
    assert help_.emergency is not None and "112" in help_.emergency.number


def test_uk_and_case_are_accepted_for_great_britain() -> None:
    assert crisis_help(" uk ").country == "GB" == crisis_help("gb").country


def test_germany_lists_telefonseelsorge_numbers() -> None:
    numbers = {digits(line.number) for line in crisis_help("DE").lines}
    assert {"08001110111", "08001110222", "116123"} <= numbers


def test_eu_member_without_lines_falls_back_to_112() -> None:
    help_ = crisis_help("DK")
    assert help_.fallback and help_.lines == () and help_.emergency is not None
    assert help_.emergency.number == "112" and "emergency" in help_.advice


def test_every_eu_member_gets_help() -> None:
    for code in NET.crisis.eu_members:
        help_ = crisis_help(code)
        assert help_.lines or (help_.emergency is not None and help_.emergency.number == "112")


def test_unknown_country_is_refused_naming_code_and_known_ones() -> None:
    with pytest.raises(AssessmentError, match="'JP'.*PL"):
        crisis_help("JP")
    with pytest.raises(AssessmentError, match="ISO 3166"):
        crisis_help("Poland")


def test_generic_help_has_advice_but_no_invented_number() -> None:
    help_ = generic_help()
    assert help_.lines == () and help_.emergency is None and "emergency number" in help_.advice


def test_every_line_cites_a_source_with_an_address() -> None:
    for country in NET.crisis.countries.values():
        assert country.emergency.sources
        for line in country.lines:
            assert line.sources and NET.sources[line.sources[0]].url, line.name
            assert line.kind in ("crisis", "suicide", "emergency", "health_advice")


# --- sources --------------------------------------------------------------------------------------------------


def _all_keys(net: SafetyNet) -> set[str]:
    keys = {k for c in net.crisis.countries.values() for ln in c.lines for k in ln.sources}
    keys |= {k for c in net.crisis.countries.values() for k in c.emergency.sources}
    keys |= {*net.crisis.eu_emergency.sources, *net.crisis.advice_sources}
    keys |= {k for f in net.factors for k in f.sources} | {k for w in net.co_use.values() for k in w.sources}
    keys |= {k for f in net.red_flags for k in f.sources} | {k for s in net.signs for k in s.sources}
    keys |= {k for p in net.pathways for k in p.sources} | {q.source for q in net.thresholds.values()}
    keys |= {*net.setting.sources, *net.setting.never_abrupt_sources, net.dependence.likely_min_signs.source}
    return keys


def test_every_item_cites_a_source_that_exists() -> None:
    for key in _all_keys(NET):
        source = NET.sources[key]
        assert source.citation and source.reliability in RELIABILITY, key


def test_source_keys_are_one_namespace_with_every_other_knowledge_file() -> None:
    """read_sources refuses a key defined twice with different content, across all knowledge files."""
    merged = read_sources(dict.fromkeys([DATA_DIR / "sources.toml", *sorted(DATA_DIR.rglob("*.toml"))]))
    assert _all_keys(NET) <= set(merged)


def test_policy_choices_are_marked_as_policy() -> None:
    assert NET.sources["assess_policy"].reliability == "policy"
    assert NET.dependence.likely_min_signs.source == "assess_policy"


# --- red flags ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("finding", ["suicidal ideation", "Suicidal thoughts", "suicidal_thoughts", "wants to die"])
def test_suicidality_gives_an_urgent_alert_with_crisis_lines(finding: str) -> None:
    alerts = red_flags([finding, "tinnitus"], country="GB")
    assert [a.flag for a in alerts] == ["suicidal_thoughts"]
    alert = alerts[0]
    assert alert.severity == "urgent" and alert.message
    assert "116123" in {digits(line.number) for line in alert.help.lines}
    assert alert.sources


@pytest.mark.parametrize(
    ("finding", "flag"),
    [
        ("grand mal seizure", "seizure"),
        ("acute confusion", "confusion_delirium"),
        ("hearing voices", "hallucinations_psychosis"),
        ("severe depression", "severe_depression"),
        ("self-harm", "self_harm"),
        ("slowed breathing", "breathing_overdose"),
    ],
)
def test_red_flags_from_domain_md(finding: str, flag: str) -> None:
    assert [a.flag for a in red_flags([finding])] == [flag]


def test_negated_or_unrelated_findings_raise_no_alert() -> None:
    assert red_flags(["denies suicidal thoughts", "no seizures", "fitness class", "anxiety"]) == []


def test_alert_without_country_carries_generic_emergency_advice() -> None:
    (alert,) = red_flags(["seizure"])
    assert alert.action == "emergency" and alert.help.lines == () and "emergency number" in alert.help.advice


# --- dependence screen ----------------------------------------------------------------------------------------


def test_two_signs_make_dependence_likely_with_a_reason_and_source_each() -> None:
    result = screen_dependence({"craving": "yes", "several_prescribers": "yes", "escalating_dose": "no"}, None, None)
    assert result.result == "likely"
    assert {s.id for s in result.positive} == {"craving", "several_prescribers"}
    for sign in result.positive:
        assert any(sign.meaning in r and sign.sources[0] in r for r in result.reasons)


def test_one_sign_is_possible_and_none_is_unlikely() -> None:
    assert screen_dependence({"craving": True}, None, None).result == "possible"
    assert screen_dependence({"craving": "no", "tolerance": 0}, None, None).result == "unlikely"


def test_sds_at_cutoff_is_likely_on_its_own_and_below_does_not_cancel_signs() -> None:
    assert screen_dependence({}, 7, 7).result == "likely"
    assert screen_dependence({"craving": "no"}, 6, 7).result == "unlikely"
    assert screen_dependence({"craving": "y", "more_than_prescribed": "y"}, 2, 7).result == "likely"


@pytest.mark.parametrize(
    ("answers", "score", "cutoff", "message"),
    [
        ({"cravings!": "yes"}, None, None, "unknown screen answer"),
        ({"craving": "maybe"}, None, None, "'craving'"),
        ({}, 5, None, "cut-off"),
        ({}, None, None, "nothing to screen"),
        ({}, -1, 7, "SDS score"),
    ],
)
def test_bad_screen_input_is_refused(
    answers: dict[str, object], score: int | None, cutoff: int | None, message: str
) -> None:
    with pytest.raises(AssessmentError, match=message):
        screen_dependence(answers, score, cutoff)


# --- risk and setting -----------------------------------------------------------------------------------------


def test_low_risk_profile_is_outpatient(knowledge: Knowledge) -> None:
    result = assess_risk(low_risk(), knowledge)
    assert result.setting == "outpatient" and result.reasons == (NET.setting.default_reason,)
    assert result.referral == () and result.alerts == ()


def test_seizure_history_gives_inpatient_with_reason(knowledge: Knowledge) -> None:
    result = assess_risk(low_risk(seizure_history=True), knowledge)
    assert result.setting == "inpatient"
    assert any("seizures" in r for r in result.reasons)
    assert "seizure_history" in {h.factor.id for h in result.factors}


def test_high_dose_from_a_regimen_gives_inpatient(knowledge: Knowledge) -> None:
    result = assess_risk(low_risk(diazepam_mg=None, regimen="alprazolam 2 mg tds"), knowledge)
    assert result.diazepam_mg == pytest.approx(120.0)  # Ashton: 0.5 mg alprazolam = 10 mg diazepam
    assert result.setting == "inpatient" and "high_dose" in {h.factor.id for h in result.factors}
    assert "short_acting_drug" in {h.factor.id for h in result.factors}


def test_opioid_co_use_gives_the_fda_warning(knowledge: Knowledge) -> None:
    result = assess_risk(low_risk(co_used=frozenset({"opioids"})), knowledge)
    (warning,) = result.co_use
    assert warning.substance == "opioids" and "risk_fda2016" in warning.sources
    assert "fda.gov" in (NET.sources["risk_fda2016"].url or "")
    assert result.referral and result.setting == "outpatient"


def test_gabapentinoid_and_alcohol_warnings(knowledge: Knowledge) -> None:
    result = assess_risk(low_risk(co_used=frozenset({"gabapentinoids", "alcohol"})), knowledge)
    assert {w.substance for w in result.co_use} == {"gabapentinoids", "alcohol"}
    assert "risk_fda2019" in next(w for w in result.co_use if w.substance == "gabapentinoids").sources


def test_suicidality_in_the_profile_gives_inpatient_and_an_alert(knowledge: Knowledge) -> None:
    result = assess_risk(low_risk(findings=("suicidal ideation",), country="PL"), knowledge)
    assert result.setting == "inpatient" and result.alerts[0].help.country == "PL"


def test_missing_answers_are_listed_as_not_assessed(knowledge: Knowledge) -> None:
    result = assess_risk(RiskProfile(diazepam_mg=10.0), knowledge)
    assert result.setting == "outpatient" and "seizure_history" in result.not_assessed


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"agee": 3}, "unknown profile field"),
        ({"age": "old"}, "age must be"),
        ({"co_used": ["tea"]}, "co_used"),
        ({"seizure_history": "yes"}, "seizure_history"),
        ({"regimen": "diazepam 5 mg", "diazepam_mg": 5}, "not both"),
    ],
)
def test_bad_profiles_are_refused_naming_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(AssessmentError, match=message):
        RiskProfile.from_mapping(raw)


profiles = st.fixed_dictionaries(
    {f: st.sampled_from([None, False, True]) for f in FLAGS}
    | {
        "age": st.none() | st.floats(min_value=18, max_value=100),
        "diazepam_mg": st.none() | st.floats(min_value=0, max_value=300),
        "years_of_use": st.none() | st.floats(min_value=0, max_value=40),
        "co_used": st.frozensets(st.sampled_from(SUBSTANCES)),
        "findings": st.lists(
            st.sampled_from(["seizure", "anxiety", "suicidal ideation", "hopeless", "tremor"]), max_size=3
        ),
    }
)
additions = st.one_of(
    st.sampled_from(FLAGS).map(lambda f: {f: True}),
    st.sampled_from(SUBSTANCES).map(lambda s: {"co_used": s}),
    st.sampled_from(["seizure", "self-harm", "delirium", "severe depression"]).map(lambda f: {"findings": f}),
    st.floats(min_value=0, max_value=200).map(lambda x: {"more_mg": x}),
)
_RECOMMENDS_STOP = re.compile(
    r"\b(stop|discontinu|quit|cold turkey)\w*\b[^.]*\b(abrupt|sudden|immediately|at once|now)\w*"
)
_WARNS = ("not", "never", "avoid", "can cause", "don't")


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    return []


def _apply(raw: dict[str, Any], addition: dict[str, Any]) -> dict[str, Any]:
    new = dict(raw)
    if "co_used" in addition:
        new["co_used"] = raw["co_used"] | {addition["co_used"]}
    elif "findings" in addition:
        new["findings"] = [*raw["findings"], addition["findings"]]
    elif "more_mg" in addition:
        new["diazepam_mg"] = (raw["diazepam_mg"] or 0.0) + addition["more_mg"]
    else:
        new.update(addition)
    return new


@settings(max_examples=60, deadline=None)
@given(raw=profiles, addition=additions)
def test_adding_a_risk_factor_never_lowers_the_setting(
    knowledge: Knowledge, raw: dict[str, Any], addition: dict[str, Any]
) -> None:
    make = lambda r: RiskProfile(**{**r, "findings": tuple(r["findings"])})
    more = _apply(raw, addition)
    # Past the plausible maximum a dose is refused, not assessed (test_a_dose_past_the_plausible_maximum_is_refused).
    assume((more["diazepam_mg"] or 0.0) <= knowledge.policy.plausible_max_daily_diazepam_equivalent.value)
    before = assess_risk(make(raw), knowledge, NET)
    after = assess_risk(make(more), knowledge, NET)
    assert SETTING_RANK[after.setting] >= SETTING_RANK[before.setting]


@settings(max_examples=60, deadline=None)
@given(raw=profiles, country=st.sampled_from([None, "GB", "PL", "US", "DK"]))
def test_no_assessment_ever_recommends_an_abrupt_stop(
    knowledge: Knowledge, raw: dict[str, Any], country: str | None
) -> None:
    profile = RiskProfile(**{**raw, "findings": tuple(raw["findings"]), "country": country})
    payload = assess_risk(profile, knowledge, NET).to_dict(NET)
    for text in _texts(payload):
        for sentence in re.split(r"(?<=[.;:])\s", text.lower()):
            if _RECOMMENDS_STOP.search(sentence):
                assert any(w in sentence for w in _WARNS), sentence
    assert "abrupt" in payload["advice"].lower() and "not" in payload["advice"].lower()


# --- pathways and loader --------------------------------------------------------------------------------------


def test_pathways_cover_domain_md_section_4() -> None:
    names = " ".join(f"{p.name} {p.description}".lower() for p in NET.pathways)
    for term in (
        "taper",
        "serum",
        "inpatient",
        "outpatient",
        "cbt",
        "motivational",
        "contingency",
        "12-step",
        "smart recovery",
        "online",
        "exercise",
        "mindfulness",
        "relapse",
        "crisis",
    ):
        assert term in names, term
    assert {p.reliability for p in NET.pathways if "smart" in p.id} == {"weak"}


def test_default_safety_net_is_cached() -> None:
    assert load_safety_net() is load_safety_net()


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        ("risk.toml", 'setting = "specialist"', 'setting = "hospital"', r"risk.toml: factor\[\d+\].setting"),
        (
            "crisis.toml",
            'sources = ["crisis_nl_113"]',
            'sources = ["nowhere"]',
            r"crisis.toml: country.NL.line\[0\].sources",
        ),
        ("dependence.toml", 'id = "craving"', 'id = "tolerance"', r"dependence.toml: sign.id/synonyms"),
        ("pathways.toml", 'category = "support"', 'category = "spa"', r"pathways.toml: pathway\[\d+\].category"),
    ],
)
def test_malformed_files_are_refused_naming_file_and_field(
    tmp_path: Path, name: str, old: str, new: str, message: str
) -> None:
    (tmp_path / "assess").mkdir()
    text = (DATA_DIR / "assess" / name).read_text(encoding="utf-8")
    assert old in text
    (tmp_path / "assess" / name).write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(KnowledgeError, match=message):
        read_safety_net([tmp_path])


def test_clinic_directory_can_override_a_file(tmp_path: Path) -> None:
    (tmp_path / "assess").mkdir()
    shutil.copy(DATA_DIR / "assess" / "crisis.toml", tmp_path / "assess" / "crisis.toml")
    assert set(load_safety_net([tmp_path]).crisis.countries) == set(NET.crisis.countries)


# --- command line ---------------------------------------------------------------------------------------------


def _json(args: list[str]) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_cli_crisis_poland_json_shape() -> None:
    data = _json(["crisis", "--country", "PL"])
    assert data["country"] == "PL" and [digits(x["number"]) for x in data["lines"]] == PL_LINES
    for line in data["lines"]:
        assert {"name", "number", "hours", "kind", "url", "source"} <= set(line)
    assert "112" in data["emergency"]["number"] and data["advice"] and data["sources"]


def test_cli_crisis_human_output_and_unknown_country() -> None:
    assert "116 123" in runner.invoke(app, ["crisis", "--country", "uk"]).stdout
    result = runner.invoke(app, ["crisis", "--country", "JP"])
    assert result.exit_code == 2 and "'JP'" in result.stderr and "PL" in result.stderr


def test_cli_screen_with_sds_score(tmp_path: Path) -> None:
    answers = tmp_path / "screen.json"
    answers.write_text(json.dumps({"craving": "no", "escalating_dose": "no"}), encoding="utf-8")
    data = _json(["screen", "--answers", str(answers), "--sds-score", "9"])
    assert data["result"] == "likely" and data["sds"]["score"] == 9 and data["sds"]["cutoff"] >= 1
    answers.write_text(json.dumps({"craving": "perhaps"}), encoding="utf-8")
    result = runner.invoke(app, ["screen", "--answers", str(answers)])
    assert result.exit_code == 2 and "craving" in result.stderr


def test_cli_risk_profile(tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(
        json.dumps(
            {
                "age": 56,
                "regimen": "lorazepam 2 mg tds",
                "seizure_history": True,
                "co_used": ["opioids"],
                "findings": ["suicidal ideation"],
            }
        ),
        encoding="utf-8",
    )
    data = _json(["risk", str(profile), "--country", "GB"])
    assert data["setting"] == "inpatient" and data["co_use_warnings"][0]["substance"] == "opioids"
    assert data["alerts"][0]["severity"] == "urgent" and data["alerts"][0]["help"]["lines"]
    assert "Samaritans" in runner.invoke(app, ["risk", str(profile), "--country", "GB"]).stdout
    profile.write_text(json.dumps({"age": "old"}), encoding="utf-8")
    result = runner.invoke(app, ["risk", str(profile)])
    assert result.exit_code == 2 and "age" in result.stderr


def test_cli_pathways() -> None:
    data = _json(["pathways"])
    assert len(data["pathways"]) == len(NET.pathways) and data["sources"]
    assert runner.invoke(app, ["pathways", "--category", "spa"]).exit_code == 2


def test_a_dose_past_the_plausible_maximum_is_refused(knowledge: Knowledge) -> None:
    top = knowledge.policy.plausible_max_daily_diazepam_equivalent.value
    assert assess_risk(RiskProfile(diazepam_mg=top), knowledge, NET).diazepam_mg == top
    with pytest.raises(ImplausibleValueError, match=rf"diazepam_mg {top + 1:g} mg/day is implausible: at most {top:g}"):
        assess_risk(RiskProfile(diazepam_mg=top + 1), knowledge, NET)
