"""Parse and convert doses (mg) and serum concentrations (ng/mL), on the package's pint registry.

>>> parse_dose("500 mcg")
0.5
>>> parse_dose("1/2 tab", tablet_mg=2)
1.0
>>> round(to_ng_ml(160, "nmol/L", molar_mass=308.77), 1)
49.4
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import pint

from benzotaper.errors import ImplausibleValueError, UnitError
from benzotaper.knowledge.unitreg import registry

DOSE_FORMS = "'0.5 mg', '500 µg', '500 mcg', '2.5mg', '1 g', or tablets such as '1/2 tab' with a strength"
CONCENTRATION_UNITS = ("ng/mL", "µg/L", "ug/L", "mcg/L", "mg/L", "µg/mL", "nmol/L", "µmol/L")
_TABLET_WORDS = r"(?:tabs?|tablets?|caps?|capsules?|pills?)"
_VULGAR = {"½": "1/2", "¼": "1/4", "¾": "3/4", "⅓": "1/3", "⅔": "2/3"}
# A number as prescriptions write it: mixed (1 1/2), fraction (1/2), decimal (.5, 2.5), exponent (1e-3).
NUMBER = r"(?:\d+\s+\d+/\d+|\d+/\d+|(?:\d*\.\d+|\d+(?:\.\d*)?)(?:[eE][+-]?\d+)?)"


def parse_number(text: str) -> float:
    """'1 1/2' -> 1.5, '1/2' -> 0.5, '.5' -> 0.5, '2,5' -> 2.5 (decimal comma), '2.5e-1' -> 0.25."""
    if not text.strip():
        raise UnitError("number is empty; expected one such as 0.5, 1/2 or 1 1/2")
    t = text.strip().replace(",", ".")
    for glyph, ascii_ in _VULGAR.items():
        t = t.replace(glyph, f" {ascii_}")
    m = re.fullmatch(rf"(?P<sign>[+-]?)(?P<body>{NUMBER})", " ".join(t.split()))
    if not m:
        raise UnitError(f"expected a number such as 0.5, 1/2 or 1 1/2 (got {text!r})")
    value = _fraction(m["body"], text) if "/" in m["body"] else _decimal(m["body"], text)
    return -value if m["sign"] == "-" else value


def _fraction(body: str, text: str) -> float:
    """'1/2' or '1 1/2' as a float (exact arithmetic first, so '1/3' is as close as a float gets)."""
    try:
        return float(sum(Fraction(part) for part in body.split()))
    except (ValueError, ZeroDivisionError) as exc:  # '1/0', or a part past Python's 4300-digit limit
        raise UnitError(f"expected a number such as 0.5, 1/2 or 1 1/2 (got {text!r})") from exc
    except OverflowError as exc:  # a fraction too large for a float
        raise _too_large(text) from exc


def _decimal(body: str, text: str) -> float:
    """'2.5', '.5', '1e-3' as a float; float() answers '1e999999999' at once where Fraction takes minutes."""
    value = float(body)
    if math.isinf(value):
        raise _too_large(text)
    if value == 0 and re.search(r"[1-9]", re.split(r"[eE]", body)[0]):
        raise ImplausibleValueError(f"number {text!r} is too small to tell from 0; expected one such as 0.5 or 1/2")
    return value


def _too_large(text: str) -> ImplausibleValueError:
    return ImplausibleValueError(f"number {text!r} is too large; expected one such as 0.5, 1/2 or 1 1/2")


def _normalise(text: str) -> str:
    t = text.strip()
    for glyph, ascii_ in _VULGAR.items():
        t = t.replace(glyph, f" {ascii_}")
    t = re.sub(r"(?<=\d),(?=\d)", ".", t)  # decimal comma
    return re.sub(r"\s+", " ", t.replace("μ", "µ")).strip()


def parse_dose(text: str, tablet_mg: float | None = None) -> float:
    """A dose as mg. Tablets need `tablet_mg`. Raises UnitError naming the accepted forms."""
    t = _normalise(text)
    if not t:
        raise UnitError(f"dose is empty; expected {DOSE_FORMS}")
    tab = re.fullmatch(rf"(?P<n>{NUMBER})\s*(?:x\s*)?{_TABLET_WORDS}", t, re.IGNORECASE)
    if tab:
        if tablet_mg is None:
            raise UnitError(f"dose {text!r} counts tablets; give the tablet strength in mg too")
        if not (math.isfinite(tablet_mg) and tablet_mg > 0):
            raise ImplausibleValueError(f"dose {text!r}: the tablet strength must be more than 0 mg (got {tablet_mg})")
        return _positive(_dose_number(tab["n"], text) * tablet_mg, text)
    m = re.fullmatch(rf"(?P<n>-?{NUMBER})\s*(?P<u>[a-zA-Zµ]+)", t)
    if not m:
        raise UnitError(f"cannot read the dose {text!r}; expected {DOSE_FORMS}")
    return _positive(mass_to_mg(_dose_number(m["n"], text), m["u"], text), text)


def _dose_number(number: str, text: str) -> float:
    """The number of a dose; a refusal names the whole dose as written."""
    try:
        return parse_number(number)
    except (UnitError, ImplausibleValueError) as exc:
        raise type(exc)(f"dose {text!r}: {exc}") from exc


def mass_to_mg(value: float, unit: str, original: str | None = None) -> float:
    """Convert a mass in any unit (mg, µg, mcg, ug, g) to mg; other dimensions are refused.

    The unit must be a single word (letters only): pint reads '2 nan' as a scaling factor, '(mg' as a
    syntax error and 'mg#x' as mg with a comment, none of which is a unit a prescriber writes.
    """
    shown = original if original is not None else f"{value} {unit}"
    word = unit.strip().replace("µ", "u").replace("μ", "u")
    if not re.fullmatch(r"[A-Za-z]+", word):
        raise UnitError(f"dose {shown!r} is not a mass; expected {DOSE_FORMS}")
    try:
        mg = float(registry().Quantity(value, word).to("mg").magnitude)
    except (pint.errors.PintError, ValueError, TypeError, AttributeError) as exc:  # 'nan' is a number to pint
        raise UnitError(f"dose {shown!r} is not a mass; expected {DOSE_FORMS}") from exc
    if not math.isfinite(mg):
        raise UnitError(f"dose {shown!r} is not a finite amount of mg; expected {DOSE_FORMS}")
    return mg


def _positive(mg: float, text: str) -> float:
    if not math.isfinite(mg) or mg <= 0:
        raise ImplausibleValueError(f"dose must be more than 0 mg (got {text!r})")
    return mg


def to_ng_ml(value: float, unit: str, molar_mass: float | None = None) -> float:
    """A serum concentration in ng/mL; molar units (nmol/L) need the analyte's molar mass (g/mol)."""
    if not math.isfinite(value) or value < 0:
        raise ImplausibleValueError(f"concentration must be 0 or more (got {value} {unit!r})")
    q = _concentration(value, unit)
    if q.check("[substance] / [length] ** 3"):
        if molar_mass is None:
            raise UnitError(f"concentration unit {unit!r} is molar: it needs the analyte's molar mass for ng/mL")
        if not (math.isfinite(molar_mass) and molar_mass > 0):
            raise ImplausibleValueError(f"molar mass must be more than 0 g/mol (got {molar_mass} for {unit})")
        q = q * registry().Quantity(molar_mass, "g/mol")
    ng = float(q.to("ng/mL").magnitude)
    if not math.isfinite(ng):
        raise ImplausibleValueError(f"concentration {value:g} {unit} is too large: it must be a finite level in ng/mL")
    return ng


def from_ng_ml(value: float, unit: str, molar_mass: float | None = None) -> float:
    """The inverse of to_ng_ml: express a level given in ng/mL in `unit`."""
    if not math.isfinite(value) or value < 0:
        raise ImplausibleValueError(f"concentration must be 0 or more (got {value} ng/mL)")
    level = value / to_ng_ml(1.0, unit, molar_mass)
    if not math.isfinite(level):
        raise ImplausibleValueError(f"concentration {value:g} ng/mL is too large for {unit}: it must be a finite level")
    return level


def _concentration(value: float, unit: str) -> pint.Quantity:  # type: ignore[type-arg]
    """A pint quantity for a mass or amount per volume written as 'ng/mL' (one word over another)."""
    word = unit.strip().replace("µ", "u").replace("μ", "u")
    refusal = UnitError(f"concentration unit must be one of {list(CONCENTRATION_UNITS)} (got {unit!r})")
    if not re.fullmatch(r"[A-Za-z]+/[A-Za-z]+", word):
        raise refusal
    try:
        q = registry().Quantity(value, word)
    except (pint.errors.PintError, ValueError, TypeError, AttributeError) as exc:
        raise refusal from exc
    if not (q.check("[mass] / [length] ** 3") or q.check("[substance] / [length] ** 3")):
        raise refusal
    return q


def parse_concentration(text: str, molar_mass: float | None = None) -> float:
    """'45 ng/mL', '160 nmol/L' (with molar mass), '0.2 mg/L' -> ng/mL."""
    if not text.strip():
        raise UnitError("concentration is empty; expected e.g. '45 ng/mL' or '160 nmol/L'")
    m = re.fullmatch(rf"\s*(?P<n>{NUMBER})\s*(?P<u>\S+)\s*", _normalise(text))
    if not m:
        raise UnitError(f"cannot read the concentration {text!r}; expected e.g. '45 ng/mL' or '160 nmol/L'")
    try:
        return to_ng_ml(parse_number(m["n"]), m["u"], molar_mass)
    except (UnitError, ImplausibleValueError) as exc:  # the message names the text as written, not its parts
        raise type(exc)(f"concentration {text!r}: {exc}") from exc
