"""Fuzz: dose and unit strings read by benzotaper.units (issue 19 §1, surface "dose/unit").

Inputs are numbers written the ways a clinician or a file writes them (integers, decimals, decimal commas,
fractions, mixed numbers, vulgar fractions, exponents, huge, tiny, negative, NaN, infinity, Unicode digits and
minus signs) joined to units (the accepted masses and concentrations, other dimensions, pint expressions, unit
look-alikes), tablet counts, and raw text. The property (tests/fuzz/contract.py): each string is read, or
refused with the project's error whose message names the field, the value and what is accepted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benzotaper.errors import BenzotaperError
from benzotaper.knowledge import load_knowledge
from benzotaper.units import (
    CONCENTRATION_UNITS,
    from_ng_ml,
    mass_to_mg,
    parse_concentration,
    parse_dose,
    parse_number,
    to_ng_ml,
)
from tests.fuzz.contract import FUZZ, accepted_or_refused

SURFACE = "dose/unit"
K = load_knowledge()
MOLAR_MASSES = sorted({a.molar_mass.value for a in K.analytes.values() if a.molar_mass is not None})
# Words that say what is accepted: every refusal must carry one (with the field and the value).
ACCEPTED = ("expected", "must be", "accepted", "one of", "give ", "needs", "such as", "e.g.")

# ---------------------------------------------------------------- numbers

ODD_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e309", "1e-400", "1e400", "1e999999999", "1e-999999999",
               "9" * 400, "0." + "0" * 400 + "1", "1/0", "0/0", "1/2/3", "1 2", "1 -1/2", "--1", "+1", "−1", "1_000",
               "0x10", "1.2.3", ".", ",", "1,", ",5", "1,000", "1,5", "١٢", "１２", "𝟗", "²", "½½", "1½", "1 ½",
               "⅓", "¾", "3/4", "1 1/2", "0", "-0", "00.5", "5.", ".5", "1e3", "1E3", "2.5e-1", "1e", "e3", "1e+",
               " 2 ", "\t2", "2\u00a0", "\u20072"]  # fmt: skip


def _decimal(x: float) -> str:
    return f"{x}"


numbers = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(_decimal),
    st.floats(min_value=1e-6, max_value=1e6).map(lambda x: f"{x:g}"),
    st.floats(min_value=1e-6, max_value=1e6).map(lambda x: f"{x:.3f}".replace(".", ",")),
    st.floats(min_value=1e-30, max_value=1e30).map(lambda x: f"{x:e}"),
    st.tuples(st.integers(0, 20), st.integers(0, 20)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 9)).map(lambda t: f"{t[0]} {t[1]}/{t[2]}"),
    st.integers(-400, 400).map(lambda e: f"1e{e}"),
    st.sampled_from(ODD_NUMBERS),
    st.text(alphabet="0123456789.,/-+eE ½¼", max_size=8),
)

# ---------------------------------------------------------------- units

MASS_UNITS = ["mg", "mcg", "µg", "μg", "ug", "g", "MG", "Mg", "mG", "milligram", "milligrams", "microgram", "kg",
              "lb", "grain", "ng", "pg", "tonne"]  # fmt: skip
OTHER_UNITS = ["mL", "ml", "L", "h", "s", "day", "m", "mol", "mmol", "%", "", " ", "nan", "inf", "e", "e9", "x",
               "tab", "tabs", "tablet", "caps", "pill", "mg/day", "mg/kg", "mg**2", "mg^2", "1/mg", "mg*mg", "mg mg",
               "2 mg", "mg 2", "(mg", "mg)", "mg**99999999", "mg**1e9", "mg**-1", "[mg]", "{mg}", "mg.", "m g", "mgg",
               "µ", "ųg", "degC", "delta_degC", "°C", "kelvin", "ng/(mL", "ng/mL/", "/mL", "ng//mL", "ng/0",
               "ng/mL*0", "0*ng/mL", "ng/mL**0", "ng/mL**1e300", "mL/ng", "__class__", "Quantity", "ng/mL;",
               "ng/mL\x00", "ng\nmL", "ng/mL#", "ng/mL'", 'ng/mL"', "ng/mL\\", "10**1000 ng/mL", "ng/mL**(1/2)",
               "pi", "avogadro_number", "planck_constant"]  # fmt: skip
unit_texts = st.one_of(
    st.sampled_from(MASS_UNITS + OTHER_UNITS + list(CONCENTRATION_UNITS) + ["pmol/L", "mg/dL", "g/L", "ng/dL"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzµμ/*^()0123456789. _-", max_size=10),
    st.text(max_size=6),
)
SEPARATORS = ["", " ", "  ", "\t", "\u00a0", "\n", " x "]
TABLETS = ["tab", "tabs", "tablet", "tablets", "cap", "caps", "capsule", "capsules", "pill", "pills", "TAB", "x tab"]

doses = st.one_of(
    st.builds(lambda n, s, u: f"{n}{s}{u}", numbers, st.sampled_from(SEPARATORS), unit_texts),
    st.builds(lambda n, s, u: f"{n}{s}{u}", numbers, st.sampled_from(SEPARATORS), st.sampled_from(MASS_UNITS)),
    st.builds(lambda n, s, t: f"{n}{s}{t}", numbers, st.sampled_from(SEPARATORS), st.sampled_from(TABLETS)),
    st.text(max_size=20),
)
tablet_strengths = st.one_of(st.none(), st.sampled_from([0.5, 1.0, 2.0, 5.0, 10.0]), st.floats())
values = st.one_of(st.floats(), st.floats(min_value=0, max_value=1e6), st.sampled_from([0.0, -0.0, 1e308, 5e-324]))
molar_masses = st.one_of(st.none(), st.sampled_from(MOLAR_MASSES))


# Well-formed doses with the mg they mean: an oracle for what is accepted (the numbers are exact in binary).
MG_PER = {"mg": 1.0, "mcg": 1e-3, "µg": 1e-3, "μg": 1e-3, "ug": 1e-3, "g": 1e3, "milligrams": 1.0}
WRITTEN = {"plain": "{:g}", "comma": "{:g}", "exponent": "{:e}"}


def _written(x: float, style: str) -> str:
    text = WRITTEN[style].format(x)
    return text.replace(".", ",") if style == "comma" else text


well_formed = st.builds(
    lambda x, unit, sep, style: (f"{_written(x, style)}{sep}{unit}", x * MG_PER[unit]),
    st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 12.5, 30.0, 100.0, 250.0, 1000.0]),
    st.sampled_from(sorted(MG_PER)),
    st.sampled_from(["", " ", "  "]),
    st.sampled_from(sorted(WRITTEN)),
)


@dataclass(frozen=True)
class Case:
    """One call into benzotaper.units: which function, its arguments, and the mg expected if it is well formed."""

    kind: str
    args: tuple[Any, ...]
    expected: float | None = None


cases = st.one_of(
    numbers.map(lambda t: Case("number", (t,))),
    st.tuples(doses, tablet_strengths).map(lambda a: Case("dose", a)),
    st.tuples(well_formed, tablet_strengths).map(lambda a: Case("dose", (a[0][0], a[1]), a[0][1])),
    st.tuples(values, unit_texts).map(lambda a: Case("mass", a)),
    st.tuples(values, unit_texts, molar_masses).map(lambda a: Case("to_ng_ml", a)),
    st.tuples(values, unit_texts, molar_masses).map(lambda a: Case("from_ng_ml", a)),
    st.tuples(
        st.one_of(st.builds(lambda n, s, u: f"{n}{s}{u}", numbers, st.sampled_from(SEPARATORS), unit_texts),
                  st.text(max_size=20)),
        molar_masses,
    ).map(lambda a: Case("concentration", a)),
)  # fmt: skip

FUNCTIONS: dict[str, Callable[..., float]] = {
    "number": parse_number,
    "dose": parse_dose,
    "mass": mass_to_mg,
    "to_ng_ml": to_ng_ml,
    "from_ng_ml": from_ng_ml,
    "concentration": parse_concentration,
}
FIELDS = {"number": "number", "dose": "dose", "mass": "dose", "to_ng_ml": "concentration",
          "from_ng_ml": "concentration", "concentration": "concentration"}  # fmt: skip


# ---------------------------------------------------------------- checks


def _shown(case: Case) -> list[str]:
    """The ways a refusal may name the value of `case`: the text as written, or the number and the unit."""
    if case.kind in ("number", "dose", "concentration"):
        text = case.args[0]
        return [repr(text)] if text.strip() else ["empty"]
    value, unit = case.args[0], case.args[1]
    return [repr(f"{value} {unit}"), repr(unit), f"{value} {unit}", f"{value:g} ng/mL", f"{value} ng/mL"]


def _check_refusal(case: Case, exc: BenzotaperError) -> None:
    """The refusal is one line naming the field, the value and what is accepted."""
    message = str(exc)
    assert "\n" not in message, f"a refusal of several lines: {message!r}"
    assert FIELDS[case.kind] in message, f"{message!r} does not name the {FIELDS[case.kind]}"
    assert any(s in message for s in _shown(case)), f"{message!r} does not name the value of {case}"
    assert any(word in message for word in ACCEPTED), f"{message!r} does not say what is accepted"


def _check_accepted(case: Case, result: float) -> None:
    """A finite number; a dose more than 0 mg (the mg meant when well formed); a level 0 or more."""
    assert isinstance(result, float) and math.isfinite(result), f"{case} gave {result!r}"
    if case.kind == "dose":
        assert result > 0, f"{case} gave {result!r} mg"
        if case.expected is not None:
            assert math.isclose(result, case.expected, rel_tol=1e-12), f"{case} read as {result} mg"
    if case.kind in ("to_ng_ml", "from_ng_ml", "concentration"):
        assert result >= 0, f"{case} gave {result!r}"


# ---------------------------------------------------------------- the property


@pytest.mark.slow
@FUZZ
@given(case=cases)
def test_dose_and_unit_strings_are_read_or_refused(case: Case) -> None:
    """Every string is read (finite, plausible sign, the meant mg) or refused naming field, value, accepted forms."""
    result = accepted_or_refused(SURFACE, lambda: FUNCTIONS[case.kind](*case.args), mentions=[FIELDS[case.kind]])
    if isinstance(result, BenzotaperError):
        assert case.expected is None, f"a well-formed dose was refused: {case}: {result}"
        _check_refusal(case, result)
    else:
        _check_accepted(case, result)


# ---------------------------------------------------------------- regressions found by the fuzz


def test_a_line_break_in_a_refused_unit_is_shown_escaped() -> None:
    # found fuzzing this surface (10,000 inputs): a negative level in 'ng\nmL' gave a refusal of two lines
    with pytest.raises(BenzotaperError) as caught:
        to_ng_ml(-1.0, "ng\nmL")
    assert str(caught.value) == "concentration must be 0 or more (got -1.0 'ng\\nmL')"
