"""Reading sigs into regimens and expanding them to dose events."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from benzotaper.errors import ImplausibleValueError, RegimenError, UnitError, UnknownDrugError
from benzotaper.knowledge import Knowledge
from benzotaper.regimen import expand, parse_regimens

START = date(2026, 1, 1)


def _doses(knowledge: Knowledge, sig: str) -> list[tuple[str, float]]:
    (regimen,) = parse_regimens(sig, knowledge, START)
    return [(d.at.strftime("%H:%M"), d.mg) for d in regimen.doses]


@pytest.mark.parametrize(
    ("sig", "expected"),
    [
        ("alprazolam 2 mg tds", [("08:00", 2), ("14:00", 2), ("20:00", 2)]),
        ("lorazepam 1 mg bid", [("08:00", 1), ("20:00", 1)]),
        ("lorazepam 1 mg b.i.d.", [("08:00", 1), ("20:00", 1)]),
        ("alprazolam 0.5 mg mane, 1 mg nocte", [("08:00", 0.5), ("22:00", 1)]),
        ("temazepam 10 mg qhs", [("22:00", 10)]),
        ("alprazolam 6 mg/day in 3 doses", [("08:00", 2), ("14:00", 2), ("20:00", 2)]),
        ("diazepam 2 mg three times daily", [("08:00", 2), ("14:00", 2), ("20:00", 2)]),
        ("diazepam 5 mg qds", [("08:00", 5), ("12:00", 5), ("16:00", 5), ("20:00", 5)]),
        ("diazepam 500 mcg od", [("08:00", 0.5)]),
        ("diazepam 5 mg at 07:30", [("07:30", 5)]),
        ("diazepam 1 x 2 mg tab bd", [("08:00", 2), ("20:00", 2)]),
        ("Xanax 0.5mg t.d.s.", [("08:00", 0.5), ("14:00", 0.5), ("20:00", 0.5)]),
    ],
)
def test_it_reads_common_sig_forms(knowledge: Knowledge, sig: str, expected: list[tuple[str, float]]) -> None:
    assert _doses(knowledge, sig) == expected


def test_as_needed_doses_keep_their_daily_maximum(knowledge: Knowledge) -> None:
    (r,) = parse_regimens("alprazolam 0.25 mg prn max 3/day", knowledge, START)
    assert (r.doses, r.prn_mg, r.prn_max_per_day, r.max_daily_mg) == ((), 0.25, 3, 0.75)


def test_several_drugs_at_once(knowledge: Knowledge) -> None:
    regimens = parse_regimens("lorazepam 1 mg tds + clonazepam 0.5 mg bd + zolpidem 10 mg nocte", knowledge, START)
    assert [(r.drug, r.daily_mg) for r in regimens] == [("lorazepam", 3), ("clonazepam", 1), ("zolpidem", 10)]


def test_an_unknown_drug_gets_did_you_mean(knowledge: Knowledge) -> None:
    with pytest.raises(UnknownDrugError, match="did you mean .*'lorazepam'"):
        parse_regimens("lorazepan 1 mg bid", knowledge, START)


@pytest.mark.parametrize(
    ("sig", "error", "message"),
    [
        ("diazepam 2000 mg tds", ImplausibleValueError, r"at most 400 mg for diazepam"),
        ("diazepam 5 mcg bd", ImplausibleValueError, r"at least 0.01 mg for diazepam"),
        ("diazepam -2 mg tds", ImplausibleValueError, r"more than 0 mg"),
        ("diazepam 0 mg tds", ImplausibleValueError, r"more than 0 mg"),
        ("diazepam 2 mL tds", UnitError, r"not a mass"),
        ("diazepam 2 tabs tds", UnitError, r"write the strength"),
        ("diazepam 2 mg", RegimenError, r"needs a frequency"),
        ("diazepam 2 mg sometimes", RegimenError, r"unknown dosing frequency 'sometimes'"),
        ("2 mg tds", RegimenError, r"name the drug first"),
        ("", RegimenError, r"empty"),
    ],
)
def test_bad_sigs_are_refused_with_a_clear_message(
    knowledge: Knowledge, sig: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        parse_regimens(sig, knowledge, START)


def test_expansion_gives_one_event_per_dose_between_the_dates(knowledge: Knowledge) -> None:
    regimens = parse_regimens("alprazolam 2 mg tds", knowledge, START, end=date(2026, 1, 10))
    ev = expand(regimens, datetime(2026, 1, 1), datetime(2026, 3, 1))
    assert len(ev.time) == 30
    assert ev.time[0] == 8.0 and ev.time[1] == 14.0 and ev.time[-1] == 9 * 24 + 20
    assert float(ev.amt.sum()) == 60.0
    assert ev.records()[0] == {"time": 8.0, "amt": 2.0, "cmt": "alprazolam", "evid": 1, "ii": 0.0, "addl": 0}


def test_as_needed_doses_are_simulated_only_when_asked(knowledge: Knowledge) -> None:
    regimens = parse_regimens("alprazolam 0.5 mg tds, 0.25 mg prn max 2/day", knowledge, START, end=START)
    assert len(expand(regimens, datetime(2026, 1, 1), datetime(2026, 1, 2)).time) == 3
    with_prn = expand(regimens, datetime(2026, 1, 1), datetime(2026, 1, 2), prn_per_day=5)
    assert len(with_prn.time) == 5  # capped at the prescribed maximum of 2


def test_the_scheduled_dose_times_are_clock_times(knowledge: Knowledge) -> None:
    (r,) = parse_regimens("diazepam 5 mg nocte", knowledge, START)
    assert r.doses[0].at == time(22, 0)


@pytest.mark.parametrize("sig", ["diazepam 2 nan", "diazepam -1 nan"])
def test_a_dose_that_is_not_a_mass_is_a_unit_error_naming_it_and_the_accepted_forms(
    knowledge: Knowledge, sig: str
) -> None:
    # Issue 19: these gave a units-library message and a bare ValueError.
    with pytest.raises(UnitError, match=r"dose '.*nan' is not a mass; expected '0\.5 mg'"):
        parse_regimens(sig, knowledge, datetime(2026, 1, 1))


def test_a_dose_of_a_billion_mg_is_refused_as_implausible_not_misread(knowledge: Knowledge) -> None:
    # Issue 19: "1e9" was read as "1e" ("dose '1e' is not a mass").
    with pytest.raises(ImplausibleValueError, match=r"1e\+09 mg at 08:00.*at most 400 mg for diazepam"):
        parse_regimens("diazepam 1e9 mg tds", knowledge, datetime(2026, 1, 1))
