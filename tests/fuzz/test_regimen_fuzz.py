"""Fuzz: prescription text (sigs) read by benzotaper.regimen (issue 19 §1, surface "regimen").

Inputs are sigs built the way prescribers write them: a drug (generic, brand or other name from the knowledge
base, a typo of one, an unknown word, or none), a dose (numbers of every shape from the dose/unit fuzz, mass units
and look-alikes, tablet counts with and without a strength), a frequency (every phrase of the sig vocabulary,
'/day in N doses', 'at HH:MM', as-needed with a daily maximum, or an odd one), one to four clauses joined by
'+', ';', ',', '&' or 'and then', then one mutation (case, a character inserted or deleted, whitespace, unicode,
truncation). Raw text too. The property (tests/fuzz/contract.py): each sig is read into regimens whose doses
are finite, more than 0 mg and within the plausibility bounds of policy.toml, or refused with the project's
error naming the drug, the value and what is accepted. The command line (`benzotaper simulate SIG --days N`,
`benzotaper plan SIG`) costs 50-500 ms a call, so it runs on a sample: EXAMPLES // 40 and EXAMPLES // 100.
"""

from __future__ import annotations

import math
import re
from datetime import date, timedelta
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benzotaper.errors import BenzotaperError, ImplausibleValueError, RegimenError, UnitError
from benzotaper.knowledge import load_knowledge
from benzotaper.regimen import Regimen, _clean, check_plausible, parse_regimens
from tests.fuzz.contract import EXAMPLES, FUZZ, accepted_or_refused, cli
from tests.fuzz.test_units_fuzz import numbers, unit_texts

SURFACE = "regimen"
K = load_knowledge()  # module level: hypothesis would print a fixture's huge repr on failure
START = date(2026, 1, 1)
NAMES = sorted({a for d in K.drugs.values() for a in (d.id, d.name, *d.brands, *d.synonyms)})
DRUG_NAMES = sorted({d.name.lower() for d in K.drugs.values()})
ACCEPTED = ("expected", "e.g.", "examples", "must be", "accepted", "did you mean", "write", "give", "needs", "one of")
MASS = ["mg"] * 6 + ["mcg", "µg", "μg", "ug", "g", "microgram", "milligrams", "MG", "Mg", "mL", "ml", "tabs", "units"]
FREQUENCIES = sorted(K.sig.frequencies)
ODD_FREQUENCIES = ["", "sometimes", "tds tds", "q3h", "t.d.s.", "b.i.d.", "at 25:00", "at 07:30", "at 7h30", "at 23:59",
                   "at 24:00", "at 12.30", "at 12:60", "/day", "/day in 0 doses", "/day in 7 doses", "per day",
                   "a day in 3 divided doses", "/day in 99999999999999999999 doses", "/d in 2 doses", "daily x",
                   "at night please", "nocte;", "bd,", "and then", "tds & bd", "od +", "prn max 0/day",
                   "prn max 99999999999/day", "as needed up to 3 times a day", "sos maximum 2 doses daily",
                   "prn max -1/day", "p.r.n.", "when required max 3 in 24 hours"]  # fmt: skip
SEPARATORS = [" + ", "; ", ", ", " and then ", " & ", "+", ",", ";", " , "]
JUNK = ["\x00", "\ufeff", "\u200b", "\u202e", "½", "¼", "µ", "μ", "，", "\t", "\n", "\r\n", "∞", "𝟗", "١", "—",
        "'", '"', "\\", "%", "{", "}", "[", "]", "*", "x", "X", "/", "-", ".", ":", "ß", "İ", "ǅ"]  # fmt: skip


@st.composite
def drug_words(draw: st.DrawFn) -> str:
    """A drug as written: a known name (any case), a typo of one, an unknown word, or nothing."""
    name = draw(st.sampled_from(NAMES))
    kind = draw(st.sampled_from(["known"] * 6 + ["upper", "typo", "unknown", "none"]))
    if kind == "upper":
        return name.upper()
    if kind == "typo" and len(name) > 2:
        i = draw(st.integers(0, len(name) - 1))
        return name[:i] + draw(st.sampled_from(["", "x", "n", name[i] * 2])) + name[i + 1 :]
    if kind == "unknown":
        return draw(st.sampled_from(["aspirin", "xyz", "take", "tab", "benzo", "Dr.", "12", "-", "drug"]))
    return "" if kind == "none" else name


USUAL_NUMBERS = ["0.25", "0.5", "1", "2", "2.5", "5", "10", "15", "20", "30", ".5", "1/2", "1 1/2", "½", "2,5", "7.5"]


@st.composite
def dose_texts(draw: st.DrawFn) -> str:
    """A dose: '<number> <mass>', '<n> x <strength> mg tab', '<n> tabs', or a number and any unit."""
    n = draw(st.one_of(st.sampled_from(USUAL_NUMBERS), numbers))
    kind = draw(st.sampled_from(["mass"] * 5 + ["tablets", "count", "any"]))
    if kind == "mass":
        return f"{n}{draw(st.sampled_from(['', ' ']))}{draw(st.sampled_from(MASS))}"
    if kind == "tablets":
        form = draw(st.sampled_from(["tab", "tablet", "caps", "tabs"]))
        return f"{n} x {draw(st.sampled_from(USUAL_NUMBERS))} mg {form}"
    if kind == "count":
        return f"{n} {draw(st.sampled_from(['tab', 'tabs', 'tablets', 'capsule']))}"
    return f"{n} {draw(unit_texts)}"


@st.composite
def frequency_texts(draw: st.DrawFn) -> str:
    """A frequency from the sig vocabulary, a per-day division, a clock time, an as-needed part or an odd one."""
    kind = draw(st.sampled_from(["vocabulary"] * 4 + ["divided", "clock", "prn", "odd"]))
    if kind == "vocabulary":
        return draw(st.sampled_from(FREQUENCIES))
    if kind == "divided":
        return f"/day in {draw(st.integers(-2, 9))} doses"
    if kind == "clock":
        return f"at {draw(st.integers(0, 30)):02d}:{draw(st.integers(0, 70)):02d}"
    if kind == "prn":
        return f"{draw(st.sampled_from(sorted(K.sig.as_needed)))} max {draw(st.integers(-1, 30))}/day"
    return draw(st.sampled_from(ODD_FREQUENCIES))


clauses = st.builds(lambda d, dose, f: " ".join(p for p in (d, dose, f) if p), drug_words(), dose_texts(),
                    frequency_texts())  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """`text` with at most one mutation: case, a character inserted or deleted, whitespace, truncation."""
    kind = draw(st.sampled_from(["none"] * 4 + ["upper", "insert", "delete", "spaces", "truncate", "double"]))
    i = draw(st.integers(0, len(text)))
    if kind == "upper":
        return text.upper()
    if kind == "insert":
        return text[:i] + draw(st.one_of(st.sampled_from(JUNK), st.characters())) + text[i:]
    if kind == "delete":
        return text[:i] + text[i + 1 :]
    if kind == "spaces":
        return text.replace(" ", draw(st.sampled_from(["  ", "\t", "\n", "\u00a0", ""])))
    if kind == "truncate":
        return text[:i]
    return f"{text} {text}" if kind == "double" else text


structured = (
    st.lists(clauses, min_size=1, max_size=4)
    .flatmap(lambda cs: st.sampled_from(SEPARATORS).map(lambda sep: sep.join(cs)))
    .flatmap(mutated)
)
sigs = st.one_of(
    structured,
    structured,
    structured,
    structured,
    st.text(max_size=40),
    st.text(alphabet="abcdilmnoprstuxz0123456789 ./+,;", max_size=40),
)


# ---------------------------------------------------------------- well-formed sigs with the mg/day they mean

DOSED = [d for d in K.drugs.values() if d.dosing.usual_max_daily is not None]


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[str, str, float]:
    """'<drug> <dose> mg <frequency>' within the plausible range, and the drug id and mg/day it means."""
    drug = draw(st.sampled_from(DOSED))
    phrase = draw(st.sampled_from(FREQUENCIES))
    per_day = len(K.sig.frequencies[phrase])
    # a quarter to the whole of the label's usual daily maximum: inside the bounds of policy.toml
    assert drug.dosing.usual_max_daily is not None
    daily = drug.dosing.usual_max_daily.value * draw(st.sampled_from([0.25, 0.5, 1.0]))
    mg = daily / per_day
    name = draw(st.sampled_from([drug.name, drug.id, *drug.brands]))
    return f"{name} {mg!r} mg {phrase}", drug.id, mg * per_day


# ---------------------------------------------------------------- checks


def _check_refusal(text: str, exc: BenzotaperError, end: date) -> None:
    """One line naming the drug, a part of the sig as written or the end date, and what is accepted."""
    message = str(exc)
    if f"end date {end}" in message:
        assert "must be" in message, message
        return
    assert "\n" not in message, f"a refusal of several lines: {message!r}"
    quoted = re.findall(r"'((?:[^'\\]|\\.)*)'", message)
    written = _clean(text)  # the parser quotes clauses as it reads them: lower case, '½' as ' 1/2', '2,5' as '2.5'
    names_part = any(q.strip() and (q in written or q in repr(written) or q in text) for q in quoted)
    names_drug = any(re.search(rf"\b{re.escape(n)}\b", message.lower()) for n in DRUG_NAMES)
    named = names_part or names_drug or ("empty" in message and not text.strip())
    assert named, f"{message!r} names no part of {text!r}"
    assert any(word in message for word in ACCEPTED), f"{message!r} does not say what is accepted"


def _check_accepted(regimens: list[Regimen]) -> None:
    """Regimens with finite doses more than 0 mg, at real clock times, within the plausibility bounds."""
    assert regimens, "a sig accepted with no regimen"
    for r in regimens:
        assert r.drug in K.drugs
        for dose in (*r.doses, *([] if not r.prn_mg else [None])):
            mg = r.prn_mg if dose is None else dose.mg
            assert math.isfinite(mg) and mg > 0, r
        assert r.prn_max_per_day >= (1 if r.prn_mg else 0), r
        assert math.isfinite(r.max_daily_mg), r
        check_plausible(K, r)  # raises if an accepted regimen is outside the bounds


# ---------------------------------------------------------------- properties


@pytest.mark.slow
@FUZZ
@given(text=sigs, days=st.integers(0, 30))
def test_sigs_are_read_or_refused(text: str, days: int) -> None:
    """parse_regimens: plausible regimens, or a refusal naming the drug or part of the sig, and what is accepted."""
    end = START + timedelta(days=days - 1)  # days 0: an end before the start
    result = accepted_or_refused(SURFACE, lambda: parse_regimens(text, K, START, end))
    if isinstance(result, BenzotaperError):
        _check_refusal(text, result, end)
    else:
        _check_accepted(result)


@pytest.mark.slow
@FUZZ
@given(case=well_formed())
def test_well_formed_sigs_mean_what_they_say(case: tuple[str, str, float]) -> None:
    """A sig within the bounds is read as its drug at its mg a day (an oracle for the accepted side)."""
    text, drug, daily = case
    (regimen,) = parse_regimens(text, K, START)
    assert regimen.drug == drug and math.isclose(regimen.daily_mg, daily, rel_tol=1e-9), (text, regimen)


DAYS = st.one_of(st.integers(1, 3).map(str), st.sampled_from(["0", "-1", "3661", "1" * 30, "abc", "1.5", "", "٣"]))


@pytest.mark.slow
@settings(FUZZ, max_examples=max(EXAMPLES // 40, 10))
@given(text=sigs, days=DAYS)
def test_simulate_command(text: str, days: str) -> None:
    """`benzotaper simulate SIG --days N`: exit 0, or 2 with one `error:` line."""
    with mock.patch("benzotaper.cli.load_knowledge", lambda: K):
        cli(SURFACE, ["simulate", text, "--days", days])


@pytest.mark.slow
@settings(FUZZ, max_examples=max(EXAMPLES // 100, 10))
@given(text=sigs)
def test_plan_command(text: str) -> None:
    """`benzotaper plan SIG`: exit 0, or 2 with one `error:` line."""
    with mock.patch("benzotaper.plan_cli.load_knowledge", lambda: K):
        cli(SURFACE, ["plan", text, "--start", "2026-01-01"])


# ---------------------------------------------------------------- regressions found by the fuzz (and issue 19)


def test_a_unit_pint_reads_as_a_number_is_refused_naming_the_dose() -> None:
    # issue 19: 'nan' is a number to pint, which answered "Unit expression cannot have a scaling factor."
    code, _, err = cli(SURFACE, ["simulate", "diazepam 2 nan", "--days", "2"])
    assert code == 2 and "dose '2 nan' is not a mass; expected '0.5 mg'" in err
    with pytest.raises(UnitError, match=r"dose '-1 nan' is not a mass; expected"):
        parse_regimens("diazepam -1 nan", K, START)  # issue 19: a bare ValueError


def test_a_dose_in_exponent_notation_is_read_and_refused_as_implausible() -> None:
    # issue 19: '1e9 mg' was read as the unit '1e' ("dose '1e' is not a mass")
    with pytest.raises(ImplausibleValueError, match=r"1e\+09 mg at 08:00.*at most 400 mg for diazepam"):
        parse_regimens("diazepam 1e9 mg tds", K, START)
    code, _, err = cli(SURFACE, ["plan", "diazepam 1e9 mg tds"])
    assert code == 2 and "implausible" in err and "at most 400 mg for diazepam" in err
    assert parse_regimens("diazepam 2.5e0 mg bd", K, START)[0].daily_mg == 5.0


def test_an_unknown_word_without_suggestions_says_what_a_sig_starts_with() -> None:
    with pytest.raises(RegimenError, match=r"unknown drug 'qqq': a regimen starts with a drug name, e.g."):
        parse_regimens("qqq 2 mg tds", K, START)


@pytest.mark.parametrize("text", [";", "+", ",", " ; ", "&", ";;"])
def test_a_sig_of_only_separators_is_refused(text: str) -> None:
    # found fuzzing this surface: ';' or '+' alone was accepted as a regimen of no drugs
    with pytest.raises(RegimenError, match=r"names no drug and dose; expected e.g. 'alprazolam 2 mg tds'"):
        parse_regimens(text, K, START)
