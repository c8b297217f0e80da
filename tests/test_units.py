"""Dose and concentration parsing: every accepted spelling, every refusal names what it expects."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benzotaper.errors import ImplausibleValueError, UnitError
from benzotaper.units import from_ng_ml, parse_concentration, parse_dose, to_ng_ml


@pytest.mark.parametrize(
    ("text", "mg"),
    [
        ("0.5 mg", 0.5),
        ("500 µg", 0.5),
        ("500 μg", 0.5),
        ("500 mcg", 0.5),
        ("500 ug", 0.5),
        ("2.5mg", 2.5),
        ("2,5 mg", 2.5),
        ("1 g", 1000.0),
        (".25 mg", 0.25),
        ("½ mg", 0.5),
    ],
)
def test_it_reads_doses_in_any_usual_spelling(text: str, mg: float) -> None:
    assert math.isclose(parse_dose(text), mg)


def test_tablets_need_a_strength() -> None:
    assert parse_dose("1/2 tab", tablet_mg=2) == 1.0
    assert parse_dose("1 1/2 tablets", tablet_mg=5) == 7.5
    with pytest.raises(UnitError, match="give the tablet strength"):
        parse_dose("1/2 tab")


@pytest.mark.parametrize("text", ["5 mL", "3 h", "abc", "", "mg"])
def test_it_refuses_what_is_not_a_dose(text: str) -> None:
    with pytest.raises(UnitError, match="expected|empty"):
        parse_dose(text)


@pytest.mark.parametrize("text", ["0 mg", "-1 mg"])
def test_it_refuses_zero_and_negative_doses(text: str) -> None:
    with pytest.raises(ImplausibleValueError, match="more than 0 mg"):
        parse_dose(text)


def test_concentrations_convert_between_mass_and_molar_units() -> None:
    # Norwegian alprazolam limit 160 nmol/L x 308.77 g/mol = 49.4 ng/mL (hand calculation, pk_facts §5b)
    assert math.isclose(to_ng_ml(160, "nmol/L", molar_mass=308.77), 49.403, rel_tol=1e-4)
    assert parse_concentration("45 µg/L") == pytest.approx(45.0)
    assert parse_concentration("0.2 mg/L") == pytest.approx(200.0)
    with pytest.raises(UnitError, match="molar mass"):
        to_ng_ml(160, "nmol/L")
    with pytest.raises(UnitError, match="concentration unit must be one of"):
        to_ng_ml(3, "mg")
    with pytest.raises(ImplausibleValueError):
        to_ng_ml(-1, "ng/mL")


@given(st.floats(min_value=1e-3, max_value=1e5), st.sampled_from(["ng/mL", "µg/L", "mg/L", "nmol/L", "µmol/L"]))
def test_conversion_round_trips(value: float, unit: str) -> None:
    ng = to_ng_ml(value, unit, molar_mass=284.74)
    assert math.isclose(from_ng_ml(ng, unit, molar_mass=284.74), value, rel_tol=1e-9)
