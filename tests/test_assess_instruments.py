"""CIWA-B, BWSQ and SDS as data: published item counts and ranges, hand-scored answers, refusals, trends, CLI."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from benzotaper.assess.instruments import IMPROVING, STABLE, TOO_FEW, WORSENING, score, trend
from benzotaper.cli import app
from benzotaper.errors import AssessmentError, KnowledgeError
from benzotaper.knowledge.instruments import Instrument, load_instruments

runner = CliRunner()
INSTRUMENTS = load_instruments()
CIWA_B, BWSQ, SDS = INSTRUMENTS["ciwa_b"], INSTRUMENTS["bwsq"], INSTRUMENTS["sds"]
# 1+2+1+0+1 + 0+2+1+1+3 + 1+2+1+2+0 + 1+1+1+0+1 = 22
CIWA_ANSWERS = [1, 2, 1, 0, 1, 0, 2, 1, 1, 3, 1, 2, 1, 2, 0, 1, 1, 1, 0, 1]


# --- the instruments as published ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "items", "values", "lo", "hi"),
    [
        (CIWA_B, 20, (0, 1, 2, 3, 4), 0, 80),  # Busto 1989: "a scale of 20 five-point items"
        (BWSQ, 20, (0, 1, 2), 0, 40),  # Tyrer 1990: 20 items; no / moderate / severe
        (SDS, 5, (0, 1, 2, 3), 0, 15),  # Gossop 1995: 5 items scored 0-3
    ],
)
def test_item_counts_and_ranges_as_published(
    instrument: Instrument, items: int, values: tuple[int, ...], lo: int, hi: int
) -> None:
    assert len(instrument.items) == items
    assert all(item.values == values for item in instrument.items)
    assert (instrument.min_score, instrument.max_score) == (lo, hi)
    assert [i.number for i in instrument.items] == list(range(1, items + 1))


def test_every_item_and_band_names_a_known_source() -> None:
    for instrument in INSTRUMENTS.values():
        keys = {i.wording_source for i in instrument.items} | {b.source for b in instrument.bands}
        keys |= {c.source for c in instrument.cutoffs} | {instrument.scoring_source, instrument.items_source}
        assert keys <= set(instrument.sources), instrument.id


def test_ciwa_b_bands_are_unverified_and_sourced_as_weak() -> None:
    assert [(b.min, b.max) for b in CIWA_B.bands] == [(0, 0), (1, 20), (21, 40), (41, 60), (61, 80)]
    assert {CIWA_B.sources[b.source].reliability for b in CIWA_B.bands} == {"weak"}
    assert CIWA_B.wording == "paraphrased"


def test_bwsq_has_no_bands_and_needs_permission() -> None:
    assert BWSQ.bands == () and BWSQ.no_bands_reason
    assert BWSQ.licence.permission_required and BWSQ.licence.source == "bwsq_imperial"
    assert all(i.wording == "paraphrased" for i in BWSQ.items)


def test_sds_cutoffs_store_both_published_thresholds() -> None:
    cuevas, cheng = SDS.cutoff("de_las_cuevas"), SDS.cutoff("cheng")
    assert cuevas is not None and cheng is not None
    assert (cuevas.value, cuevas.sensitivity, cuevas.specificity, cuevas.auc) == (7, 0.979, 0.942, 0.991)
    assert (cheng.value, cheng.auc) == (6, 0.86)
    assert SDS.cutoff() == cuevas


# --- scoring ------------------------------------------------------------------------------------------------


def test_ciwa_b_hand_scored() -> None:
    result = score(CIWA_B, CIWA_ANSWERS)
    assert (result.total, result.band, result.band_source) == (22, "moderate", "ciwab_form_bands")
    assert result.dependent is None and result.cutoff is None
    assert result.items[9].id == "anxious" and result.items[9].label == "severe"
    assert any("weak source" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "no signs of withdrawal"),
        (1, "mild"),
        (20, "mild"),
        (21, "moderate"),
        (40, "moderate"),
        (41, "severe"),
        (61, "very severe"),
        (80, "very severe"),
    ],
)
def test_ciwa_b_band_edges(total: int, band: str) -> None:
    answers = [4] * (total // 4) + ([total % 4] if total % 4 else [])
    answers += [0] * (20 - len(answers))
    assert score(CIWA_B, answers).band == band


def test_answers_keyed_by_id_in_any_case_equal_the_list() -> None:
    keyed = {item.id.upper(): v for item, v in zip(CIWA_B.items, CIWA_ANSWERS, strict=True)}
    assert score(CIWA_B, keyed).total == score(CIWA_B, CIWA_ANSWERS).total == 22


@pytest.mark.parametrize(
    ("answers", "cutoff", "dependent"),
    [
        ([2, 1, 1, 1, 1], None, False),  # 6: below de las Cuevas (> 6)
        ([2, 1, 1, 1, 1], "cheng", True),  # 6: at Cheng (>= 5.5)
        ([2, 2, 1, 1, 1], None, True),  # 7: at de las Cuevas
        ([1, 1, 1, 1, 1], "cheng", False),  # 5
    ],
)
def test_sds_cutoff_six_versus_seven(answers: list[int], cutoff: str | None, dependent: bool) -> None:
    result = score(SDS, answers, cutoff)
    assert result.dependent is dependent and result.band is None
    assert result.cutoff is not None and result.cutoff.id == (cutoff or "de_las_cuevas")


def test_bwsq_scores_without_band_and_warns_about_the_licence() -> None:
    result = score(BWSQ, [2] * 5 + [1] * 5 + [0] * 10)
    assert (result.total, result.band, result.dependent) == (15, None, None)
    assert any("Imperial College" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("instrument", "answers", "expected"),
    [
        (CIWA_B, CIWA_ANSWERS[:19], "item 20 ('obs_sweating'): no answer"),
        (CIWA_B, {**dict.fromkeys([i.id for i in CIWA_B.items][:-1], 0)}, "item 20 ('obs_sweating'): no answer"),
        (CIWA_B, [*CIWA_ANSWERS, 1], "extra answer at position 21"),
        (CIWA_B, [5, *CIWA_ANSWERS[1:]], "item 1 ('irritable'): 5 is out of range; allowed values: 0, 1, 2, 3, 4"),
        (CIWA_B, [0, 0, True, *CIWA_ANSWERS[3:]], "item 3 ('tense'): True is not a whole number"),
        (CIWA_B, [0, 2.0, *CIWA_ANSWERS[2:]], "item 2 ('fatigued'): 2.0 is not a whole number"),
        (CIWA_B, ["1", *CIWA_ANSWERS[1:]], "item 1 ('irritable'): '1' is not a whole number"),
        (BWSQ, [0] * 19 + [3], "item 20 ('appetite'): 3 is out of range; allowed values: 0, 1, 2"),
        (BWSQ, [1, 2, 7], "item 3 ('light'): 7 is out of range"),  # a bad value is named before the missing ones
        (SDS, {"worry": 1, "bogus": 1}, "no item 'bogus'"),
        (SDS, {"worry": "2"}, "item 3 ('worry'): '2' is not a whole number"),
        (SDS, {"worry": 1, "WORRY": 2}, "item 3 ('worry'): answered twice"),
        (SDS, [-1, 0, 0, 0, 0], "item 1 ('out_of_control'): -1 is out of range"),
        (SDS, "01234", "must be a list of item scores"),
    ],
)
def test_refusals_name_the_item(instrument: Instrument, answers: object, expected: str) -> None:
    with pytest.raises(AssessmentError, match=re.escape(expected)):
        score(instrument, answers)  # type: ignore[arg-type]


def test_cutoff_choice_is_checked() -> None:
    with pytest.raises(AssessmentError, match="no published cut-off"):
        score(CIWA_B, CIWA_ANSWERS, "cheng")
    with pytest.raises(AssessmentError, match="no cut-off 'gossop'"):
        score(SDS, [0] * 5, "gossop")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=20, max_size=20))
def test_ciwa_b_complete_answers_score_in_range_with_exactly_one_band(answers: list[int]) -> None:
    result = score(CIWA_B, answers)
    assert 0 <= result.total <= 80
    assert sum(b.min <= result.total <= b.max for b in CIWA_B.bands) == 1
    assert result.band == CIWA_B.band_for(result.total).label  # type: ignore[union-attr]


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_complete_in_range_answers_score_within_min_max(data: st.DataObject) -> None:
    instrument = data.draw(st.sampled_from(list(INSTRUMENTS.values())))
    answers = [data.draw(st.sampled_from(item.values)) for item in instrument.items]
    assert instrument.min_score <= score(instrument, answers).total <= instrument.max_score


# --- trends -------------------------------------------------------------------------------------------------

WEEKLY = [(datetime(2026, 1, 1 + 7 * i), s) for i, s in enumerate([12, 18, 15, 11, 9])]


def test_trend_hand_calculation() -> None:
    # x = 0..4 weeks, y mean 13: sum(dx*dy) = 2 - 5 + 0 - 2 - 8 = -13, sum(dx^2) = 10 -> -1.3 points/week
    result = trend(WEEKLY, [date(2026, 1, 5), date(2026, 1, 20)], stable_within=4)
    assert result.slope_per_week == pytest.approx(-1.3)
    assert (result.count, result.min_score, result.max_score) == (5, 9, 18)
    assert result.last_reduction == date(2026, 1, 20)
    assert result.reference == (datetime(2026, 1, 15), 15)  # last score on or before the reduction
    assert result.change_since_reduction == -6 and result.direction == IMPROVING


def test_trend_reference_is_first_score_after_when_none_before() -> None:
    result = trend(WEEKLY, [date(2025, 12, 20)])
    assert result.reference == (datetime(2026, 1, 1), 12)
    assert result.change_since_reduction == 9 - 12


def test_trend_reduction_on_the_day_of_a_score_counts_that_score_as_before() -> None:
    records = [(datetime(2026, 1, 8, 9, 30), 18), (datetime(2026, 1, 15), 25)]
    result = trend(records, [date(2026, 1, 8)], stable_within=4)
    assert result.reference == records[0] and result.direction == WORSENING


def test_trend_ignores_reductions_after_the_last_score() -> None:
    result = trend(list(reversed(WEEKLY)), [date(2026, 3, 1)])
    assert result.last_reduction is None and result.change_since_reduction is None
    assert result.change == 9 - 12 and result.first == WEEKLY[0]


@pytest.mark.parametrize(("stable_within", "direction"), [(4, STABLE), (3, WORSENING), (None, WORSENING)])
def test_trend_stable_margin(stable_within: float | None, direction: str) -> None:
    records = [(datetime(2026, 1, 1), 10), (datetime(2026, 1, 8), 13)]
    assert trend(records, stable_within=stable_within).direction == direction


def test_trend_accepts_plain_dates_and_refuses_bad_scores() -> None:
    result = trend([(date(2026, 1, 1), 10), (date(2026, 1, 15), 4)], [datetime(2026, 1, 2, 8)])  # type: ignore[list-item]
    assert result.slope_per_week == pytest.approx(-3.0) and result.change_since_reduction == -6
    with pytest.raises(AssessmentError, match="score 2 .*'7' is not a whole number"):
        trend([(datetime(2026, 1, 1), 1), (datetime(2026, 1, 2), "7")])  # type: ignore[list-item]


def test_trend_single_score_and_empty() -> None:
    single = trend([(datetime(2026, 1, 1), 10)])
    assert single.direction == TOO_FEW and single.slope_per_week is None
    with pytest.raises(AssessmentError, match="at least one"):
        trend([])


def test_instrument_margins_come_from_data_with_a_source() -> None:
    assert CIWA_B.stable_within.value == 4 and CIWA_B.stable_within.source == "benzotaper_policy"
    assert all(i.stable_within.note for i in INSTRUMENTS.values())


# --- the data files are checked ------------------------------------------------------------------------------

MINI = """
id = "mini"
name = "MINI"
full_name = "Minimal test instrument"
purpose = "test"
administration = "self-report"
time_frame = "now"
items_source = "test_mini"
wording = "paraphrased"
wording_note = "test"

[sources.test_mini]
citation = "test source"
reliability = "weak"

[licence]
status = "test"
permission_required = false
note = "test"

[option_sets.yn]
source = "test_mini"
options = [{ value = 0, label = "no" }, { value = 1, label = "yes" }]

[[item]]
id = "a"
text = "A?"
rater = "patient"
option_set = "yn"
wording = "paraphrased"
wording_source = "test_mini"

[[item]]
id = "b"
text = "B?"
rater = "patient"
option_set = "yn"
wording = "paraphrased"
wording_source = "test_mini"

[scoring]
method = "sum"
min = 0
max = 2
source = "test_mini"

[[band]]
min = 0
max = 0
label = "none"
source = "test_mini"

[[band]]
min = 1
max = 2
label = "some"
source = "test_mini"

[trend]
stable_within = { value = 1, unit = "", source = "test_mini" }
"""


def _write(tmp_path: Path, text: str, name: str = "mini") -> Path:
    folder = tmp_path / "assess" / "instruments"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.toml").write_text(text)
    return tmp_path


def test_a_clinic_directory_adds_an_instrument(tmp_path: Path) -> None:
    loaded = load_instruments([_write(tmp_path, MINI)])
    assert set(loaded) == {"ciwa_b", "bwsq", "sds", "mini"}
    assert score(loaded["mini"], {"A": 1, "b": 1}).band == "some"
    assert load_instruments() is INSTRUMENTS  # the default set is cached


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('label = "none"\nsource = "test_mini"', 'label = "none"', "band[0].source: missing source"),
        (
            'label = "some"\nsource = "test_mini"',
            'label = "some"\nsource = "nowhere"',
            "band[1].source: source 'nowhere'",
        ),
        ("min = 1\nmax = 2\nlabel", "min = 0\nmax = 2\nlabel", "band[1].min: 0 overlaps"),
        ("min = 1\nmax = 2\nlabel", "min = 2\nmax = 2\nlabel", "band[1].min: 2 leaves a gap"),
        ("min = 1\nmax = 2\nlabel", "min = 1\nmax = 1\nlabel", "band[1].max: bands end at 1"),
        ('id = "b"', 'id = "A"', "item[1].id: 'A' is used twice"),
        (
            '{ value = 0, label = "no" }, { value = 1',
            '{ value = 1, label = "no" }, { value = 0',
            "option_sets.yn.options",
        ),
        ("max = 2\nsource", "max = 3\nsource", "scoring: min/max 0-3 do not match"),
        ('id = "mini"', 'id = "other"', "id: must equal the file name"),
        ('wording = "paraphrased"\nwording_note', 'wording = "verified"\nwording_note', "wording: is 'verified' but"),
        (
            'wording_source = "test_mini"\n\n[[item]]\nid = "b"',
            '\n[[item]]\nid = "b"',
            "item[0].wording_source: missing",
        ),
        ("[trend]\nstable_within", "[trend]\nstable", "trend.stable_within"),
        ("permission_required = false", 'permission_required = "no"', "licence.permission_required"),
        ('text = "A?"', 'text = "A?"\ncolour = "red"', "item[0].colour: unknown key"),
    ],
)
def test_malformed_files_are_refused_naming_file_and_field(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in MINI
    with pytest.raises(KnowledgeError, match=re.escape("mini.toml: " + expected)):
        load_instruments([_write(tmp_path, MINI.replace(old, new, 1))])


def test_cutoffs_need_exactly_one_default(tmp_path: Path) -> None:
    cutoff = (
        '\n[[cutoff]]\nid = "{id}"\nvalue = 1\npublished_as = "x"\npopulation = "y"\nsource = "test_mini"\n'
        "default = true\n"
    )
    text = MINI + cutoff.format(id="one") + cutoff.format(id="two")
    with pytest.raises(KnowledgeError, match="mini.toml: cutoff: exactly one"):
        load_instruments([_write(tmp_path, text)])


def test_an_instrument_defined_twice_is_refused(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "src/benzotaper/knowledge/data/assess/instruments/sds.toml").read_text()
    with pytest.raises(KnowledgeError, match="sds.toml: id: instrument 'sds' is defined twice"):
        load_instruments([_write(tmp_path, text, "sds")])


# --- command line -------------------------------------------------------------------------------------------


def _file(tmp_path: Path, name: str, content: object) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _json(args: list[str]) -> dict[str, object]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_cli_assess_ciwa_b_json(tmp_path: Path) -> None:
    data = _json(["assess", "ciwa-b", _file(tmp_path, "a.json", CIWA_ANSWERS)])
    assert {
        "score",
        "band",
        "dependent",
        "instrument",
        "max_score",
        "items",
        "band_source",
        "sources",
        "licence",
        "warnings",
    } <= set(data)
    assert (data["score"], data["band"], data["max_score"], data["dependent"]) == (22, "moderate", 80, None)
    assert _json(["assess", "CIWA_B", _file(tmp_path, "a.json", CIWA_ANSWERS)])["score"] == 22


def test_cli_assess_sds_object_and_cutoff(tmp_path: Path) -> None:
    answers = _file(
        tmp_path, "s.json", {"out_of_control": 2, "missing_dose": 1, "worry": 1, "wish_stop": 1, "difficulty": 1}
    )
    default = _json(["assess", "sds", answers])
    assert (default["score"], default["dependent"]) == (6, False)
    cheng = _json(["assess", "sds", answers, "--cutoff", "cheng"])
    assert cheng["dependent"] is True and cheng["cutoff"]["value"] == 6  # type: ignore[index]


def test_cli_assess_human_output_keeps_brackets(tmp_path: Path) -> None:
    result = runner.invoke(app, ["assess", "sds", _file(tmp_path, "s.json", [3, 3, 3, 3, 3])])
    assert result.exit_code == 0, result.output
    assert "[benzodiazepine]" in result.stdout and "Dependent: yes" in result.stdout


def test_cli_assess_trend_json(tmp_path: Path) -> None:
    csv_text = "date,score\n" + "".join(f"{d:%Y-%m-%d},{s}\n" for d, s in WEEKLY)
    data = _json(
        ["assess-trend", "ciwa-b", _file(tmp_path, "t.csv", csv_text), "--reductions", "2026-01-05,2026-01-20"]
    )
    assert (data["change_since_reduction"], data["direction"], data["slope_per_week"]) == (-6, "improving", -1.3)
    assert data["last_reduction"] == "2026-01-20" and data["stable_within_source"] == "benzotaper_policy"


@pytest.mark.parametrize(
    ("args", "content", "message"),
    [
        (["assess", "ciwa-b"], "[1, 2,", "not valid JSON"),
        (["assess", "ciwa-b"], CIWA_ANSWERS[:5], "item 6 ('numbness'): no answer"),
        (["assess", "cows"], CIWA_ANSWERS, "unknown instrument 'cows'"),
        (["assess", "ciwa-b", "--cutoff", "cheng"], CIWA_ANSWERS, "no published cut-off"),
        (["assess", "bwsq"], {"dizziness": 4}, "item 11 ('dizziness'): 4 is out of range"),
        (["assess", "bwsq"], {"dizziness": 1}, "item 1 ('unreal'): no answer"),
        (["assess-trend", "sds"], "date,score\n2026-01-01,16\n", "outside the SDS range 0-15"),
        (["assess-trend", "sds"], "date,score\nyesterday,3\n", "line 2: needs date"),
        (["assess-trend", "sds", "--reductions", "2026-13-01"], "date,score\n2026-01-01,3\n", "--reductions"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], content: object, message: str) -> None:
    path = _file(tmp_path, "in.txt", content)
    result = runner.invoke(app, [*args[:2], path, *args[2:]])
    assert result.exit_code == 2, result.output
    assert "error" in result.stderr.lower() and message in " ".join(result.stderr.split())


def test_cli_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["assess", "sds", str(tmp_path / "absent.json")])
    assert result.exit_code == 2 and "cannot read answers file" in result.stderr
