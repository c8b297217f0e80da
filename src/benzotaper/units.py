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
_NUMBER = r"(?:\d+\s+\d+/\d+|\d+/\d+|\d*\.\d+|\d+(?:\.\d*)?)"


def parse_number(text: str) -> float:
    """'1 1/2' -> 1.5, '1/2' -> 0.5, '.5' -> 0.5, '2,5' -> 2.5 (decimal comma)."""
    t = text.strip().replace(",", ".")
    for glyph, ascii_ in _VULGAR.items():
        t = t.replace(glyph, f" {ascii_}")
    t = t.strip()
    try:
        return float(sum(Fraction(part) for part in t.split()))
    except (ValueError, ZeroDivisionError) as exc:
        raise UnitError(f"expected a number such as 0.5, 1/2 or 1 1/2 (got {text!r})") from exc
    except OverflowError as exc:  # '1e400': a fraction too large for a float
        raise ImplausibleValueError(f"number {text!r} is too large; expected one such as 0.5, 1/2 or 1 1/2") from exc


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
    tab = re.fullmatch(rf"(?P<n>{_NUMBER})\s*(?:x\s*)?{_TABLET_WORDS}", t, re.IGNORECASE)
    if tab:
        if tablet_mg is None:
            raise UnitError(f"dose {text!r} counts tablets; give the tablet strength in mg too")
        return _positive(parse_number(tab["n"]) * tablet_mg, text)
    m = re.fullmatch(rf"(?P<n>-?{_NUMBER})\s*(?P<u>[a-zA-Zµ]+)", t)
    if not m:
        raise UnitError(f"cannot read the dose {text!r}; expected {DOSE_FORMS}")
    return _positive(mass_to_mg(parse_number(m["n"]), m["u"], text), text)


def mass_to_mg(value: float, unit: str, original: str | None = None) -> float:
    """Convert a mass in any unit (mg, µg, mcg, ug, g) to mg; other dimensions are refused."""
    ureg = registry()
    try:
        q = ureg.Quantity(value, unit.replace("µ", "u"))
        return float(q.to("mg").magnitude)
    except (pint.errors.UndefinedUnitError, pint.errors.DimensionalityError, AttributeError) as exc:
        shown = original if original is not None else f"{value} {unit}"
        raise UnitError(f"dose {shown!r} is not a mass; expected {DOSE_FORMS}") from exc


def _positive(mg: float, text: str) -> float:
    if not math.isfinite(mg) or mg <= 0:
        raise ImplausibleValueError(f"dose must be more than 0 mg (got {text!r})")
    return mg


def to_ng_ml(value: float, unit: str, molar_mass: float | None = None) -> float:
    """A serum concentration in ng/mL; molar units (nmol/L) need the analyte's molar mass (g/mol)."""
    if not math.isfinite(value) or value < 0:
        raise ImplausibleValueError(f"concentration must be 0 or more (got {value} {unit})")
    q = _concentration(value, unit)
    if q.check("[substance] / [length] ** 3"):
        if molar_mass is None:
            raise UnitError(f"{unit} needs the analyte's molar mass to convert to ng/mL")
        q = q * registry().Quantity(molar_mass, "g/mol")
    return float(q.to("ng/mL").magnitude)


def from_ng_ml(value: float, unit: str, molar_mass: float | None = None) -> float:
    """The inverse of to_ng_ml: express a level given in ng/mL in `unit`."""
    per_unit = to_ng_ml(1.0, unit, molar_mass)
    return value / per_unit


def _concentration(value: float, unit: str) -> pint.Quantity:  # type: ignore[type-arg]
    ureg = registry()
    try:
        q = ureg.Quantity(value, unit.strip().replace("µ", "u").replace("μ", "u"))
    except (pint.errors.UndefinedUnitError, AttributeError, ValueError) as exc:
        raise UnitError(f"concentration unit must be one of {list(CONCENTRATION_UNITS)} (got {unit!r})") from exc
    if not (q.check("[mass] / [length] ** 3") or q.check("[substance] / [length] ** 3")):
        raise UnitError(f"concentration unit must be one of {list(CONCENTRATION_UNITS)} (got {unit!r})")
    return q


def parse_concentration(text: str, molar_mass: float | None = None) -> float:
    """'45 ng/mL', '160 nmol/L' (with molar mass), '0.2 mg/L' -> ng/mL."""
    m = re.fullmatch(rf"\s*(?P<n>{_NUMBER})\s*(?P<u>\S+)\s*", _normalise(text))
    if not m:
        raise UnitError(f"cannot read the concentration {text!r}; expected e.g. '45 ng/mL' or '160 nmol/L'")
    return to_ng_ml(parse_number(m["n"]), m["u"], molar_mass)
