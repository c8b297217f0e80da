"""FHIR Dosage -> the core's sig text -> Regimens, through the one sig parser (regimen.parse_regimens).

Coded dosages (doseAndRate.doseQuantity with timing.repeat timeOfDay / when / frequency+period, or timing.code)
are written as a sig such as 'diazepam 5 mg at 08:00, 10 mg at 22:00' or 'diazepam 15 mg/day in 3 doses';
free text (`dosage.text`, `patientInstruction`) is cleaned with the word lists of fhir.toml. Either way the
parser's plausibility checks apply. Anything that cannot be read raises Refusal with the reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from benzotaper.cohort.mapping import route_hint
from benzotaper.errors import BenzotaperError, UnitError
from benzotaper.fhir.codes import MedicationMatch
from benzotaper.fhir.elements import Json, Refusal, code_in, codings, concept_text, parse_date
from benzotaper.knowledge import Drug, Knowledge
from benzotaper.knowledge.fhir_codes import FhirCodes
from benzotaper.regimen import Regimen, parse_regimens
from benzotaper.units import mass_to_mg, parse_number

COUNT_UNITS = frozenset(
    {"1", "{tbl}", "{tablet}", "{tablets}", "tbl", "tab", "tabs", "tablet", "tablets", "{cap}", "{capsule}",
     "{capsules}", "cap", "caps", "capsule", "capsules", "{count}", "{dose}"}
)  # fmt: skip
VOLUME_UNITS = frozenset({"ml", "milliliter", "millilitre", "milliliters", "millilitres"})
HOURS = {"h": 1.0, "d": 24.0, "wk": 168.0}  # UCUM time units read in timing.repeat.periodUnit
_NUM = r"(\d+(?:\.\d+)?|\d+/\d+|½|¼)"


@dataclass(frozen=True)
class DosageReader:
    """Reads the dosages of one medication record for one drug and product."""

    knowledge: Knowledge
    codes: FhirCodes
    route_words: Mapping[str, tuple[str, ...]]
    drug: Drug
    match: MedicationMatch

    def regimens(
        self, dosages: Sequence[Json], start: date | None, end: date | None, where: str
    ) -> tuple[list[Regimen], str, list[str]]:
        """Regimens (one per distinct boundsPeriod), the sig text read, and notes; Refusal when unreadable."""
        if not dosages:
            raise Refusal("no dosage (dosageInstruction/dosage is empty)")
        notes = self._route(dosages)
        groups: dict[tuple[str | None, str | None], list[Json]] = {}
        for d in dosages:
            bounds = d.get("timing", {}).get("repeat", {}).get("boundsPeriod", {})
            groups.setdefault((bounds.get("start"), bounds.get("end")), []).append(d)
        regimens: list[Regimen] = []
        sigs: list[str] = []
        for (b_start, b_end), group in groups.items():
            first = parse_date(b_start, f"{where}.timing.repeat.boundsPeriod.start") if b_start else start
            last = parse_date(b_end, f"{where}.timing.repeat.boundsPeriod.end") if b_end else end
            if first is None:
                raise Refusal("no start date (boundsPeriod.start, effective[x] or authoredOn)")
            sig = self._sig(group)
            sigs.append(sig)
            regimens += self._parse(sig, first, last)
        return regimens, "; ".join(sigs), notes

    def _parse(self, sig: str, start: date, end: date | None) -> list[Regimen]:
        try:
            found = parse_regimens(sig, self.knowledge, start=start, end=end, drug=self.drug.id)
        except BenzotaperError as exc:
            raise Refusal(f"dosage not understood ({sig!r}): {exc}") from None
        others = sorted({r.drug for r in found} - {self.drug.id})
        if others:
            raise Refusal(f"the dosage names {', '.join(others)} but the medication is {self.drug.name}")
        return found

    # ---------------------------------------------------------------- route

    def _route(self, dosages: Sequence[Json]) -> list[str]:
        groups = {self._route_of(d) for d in dosages} - {None}
        if not groups and self.match.route is not None:
            groups = {self.match.route}
        for group in sorted(g for g in groups if g is not None):
            if group not in self.codes.analysed_routes:
                raise Refusal(
                    f"route {group} is not modelled: the PK model, equivalence tables and taper planner describe "
                    f"{' and '.join(self.codes.analysed_routes)} use"
                )
        return [] if groups else ["no route given: read as oral use"]

    def _route_of(self, dosage: Json) -> str | None:
        route = dosage.get("route")
        if route is None:
            return None
        code = code_in(route, self.codes.system("snomed"))
        if code is not None and code in self.codes.routes:
            return self.codes.routes[code]
        text = concept_text(route)
        hint = route_hint(text, self.route_words) if text else None
        if hint is None:
            shown = ", ".join(f"{c.get('system')}|{c.get('code')}" for c in codings(route)) or text or "empty"
            raise Refusal(f"route not in value sets: {shown}")
        return hint

    # ---------------------------------------------------------------- sig

    def _sig(self, group: Sequence[Json]) -> str:
        clauses: list[str] = []
        for d in group:
            try:
                coded = self._coded(d)
            except Refusal:
                if not self._text(d):
                    raise
                coded = None
            if coded is None:
                text = self._text(d)
                if not text:
                    raise Refusal("no dosage: neither a coded dose with timing nor dosage text")
                clauses.append(text)
            else:
                clauses += coded
        return f"{self.drug.name} {', '.join(clauses)}"

    def _coded(self, d: Json) -> list[str] | None:
        """Clauses for a coded dosage, None when it has no dose quantity (then the text is read)."""
        dose_rate = d.get("doseAndRate") or []
        ordered = [x for x in dose_rate if code_in(x.get("type"), self.codes.system("dose_rate_type")) == "ordered"]
        chosen = (ordered or dose_rate or [None])[0]
        if chosen is None:
            return None
        if "doseRange" in chosen:
            raise Refusal("dose given as a range (doseRange); one dose per administration is needed")
        if "doseQuantity" not in chosen:
            raise Refusal("dose given as a rate; one dose per administration is needed")
        mg = self._mg(chosen["doseQuantity"])
        prn = d.get("asNeededBoolean") is True or "asNeededCodeableConcept" in d
        return self._timing(mg, d.get("timing") or {}, prn, d.get("maxDosePerPeriod"))

    def _mg(self, q: Mapping[str, Any]) -> float:
        value = q.get("value")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise Refusal(f"dose quantity has no number (got {value!r})")
        unit = str(q.get("code") or q.get("unit") or "").strip()
        kind = "liquid" if unit.lower() in VOLUME_UNITS else "solid" if unit.lower() in COUNT_UNITS or not unit else ""
        if kind:
            strength = self.match.strength
            if strength is None or strength[1] != kind:
                what = "mg per mL" if kind == "liquid" else "mg per tablet or capsule"
                unit_text = unit or "no unit"
                raise Refusal(f"dose of {value:g} ({unit_text}) needs the product strength in {what}, which is unknown")
            return float(value) * strength[0]
        try:
            return mass_to_mg(float(value), unit)
        except UnitError:
            raise Refusal(
                f"unit not accepted: dose unit {unit!r} (accepted: mg, µg, g; mL of a liquid or tablets of known "
                "strength)"
            ) from None

    def _timing(self, mg: float, timing: Json, prn: bool, max_per_period: Any) -> list[str]:
        rep = timing.get("repeat") or {}
        dose = f"{_num(mg)} mg"
        per_day = self._per_day(rep)
        if prn:
            most = _max_per_day(max_per_period, mg) or (round(per_day) if per_day else None)
            return [f"{dose} prn" + (f" max {most}/day" if most else "")]
        if rep.get("timeOfDay"):
            return [f"{dose} at {str(t)[:5]}" for t in rep["timeOfDay"]]
        if rep.get("when"):
            return [f"{dose} {self._event(code)}" for code in rep["when"]]
        if per_day is not None:
            return [self._frequency(mg, rep, per_day)]
        code = next((str(c.get("code")) for c in codings(timing.get("code")) if c.get("code")), None)
        if code is not None and code.lower() in self.knowledge.sig.frequencies:
            return [f"{dose} {code.lower()}"]
        if code is not None:
            raise Refusal(f"timing code {code!r} is not a daily schedule the sig vocabulary knows")
        raise Refusal("no timing: give timeOfDay, when, frequency and period, or a timing code")

    def _event(self, code: str) -> str:
        phrase = self.codes.event_timing.get(code)
        if phrase is None:
            raise Refusal(f"timing.repeat.when {code!r} is not read (known: {', '.join(self.codes.event_timing)})")
        return phrase

    @staticmethod
    def _per_day(rep: Json) -> float | None:
        if "period" not in rep:
            return None
        unit = rep.get("periodUnit", "d")
        if unit not in HOURS:
            raise Refusal(f"timing period unit {unit!r} is not read (h, d or wk)")
        period = float(rep["period"])
        if not period > 0:
            raise Refusal(f"timing.repeat.period {rep['period']!r} {unit}: a period must be more than 0")
        per_day = float(rep.get("frequency", 1)) * 24.0 / (period * HOURS[unit])
        if not math.isfinite(per_day):
            raise Refusal(f"timing.repeat frequency {rep.get('frequency', 1)!r} per {period:g} {unit} is not a number "
                          "of doses a day")  # fmt: skip
        if per_day < 1 - 1e-9:
            raise Refusal(f"dosing less often than daily ({per_day:.3g} times a day) is not modelled")
        return per_day

    def _frequency(self, mg: float, rep: Json, per_day: float) -> str:
        period, unit = float(rep["period"]), rep.get("periodUnit", "d")
        phrase = f"q{period:g}h"
        if unit == "h" and float(rep.get("frequency", 1)) == 1 and phrase in self.knowledge.sig.frequencies:
            return f"{_num(mg)} mg {phrase}"
        n = round(per_day)
        if abs(per_day - n) > 1e-9 or n not in self.knowledge.sig.divided:
            raise Refusal(
                f"{per_day:g} doses a day cannot be spread over the day (1 to {max(self.knowledge.sig.divided)})"
            )
        return f"{_num(mg * n)} mg/day in {n} doses"

    def _text(self, d: Json) -> str:
        raw = d.get("text") or d.get("patientInstruction") or ""
        text = str(raw).lower()
        for pattern in self.codes.drop_patterns:
            text = pattern.sub(" ", text)
        for word in sorted(self.codes.drop_words, key=len, reverse=True):
            text = re.sub(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", " ", text)
        strength = self.match.strength
        if strength and strength[1] == "solid":
            text = re.sub(rf"{_NUM}\s*(?:tabs?|tablets?|caps?|capsules?)\b", rf"\1 x {strength[0]:g} mg tab", text)
        if strength and strength[1] == "liquid":
            text = re.sub(rf"{_NUM}\s*ml\b", lambda m: f"{_num(_ml(m[1]) * strength[0])} mg", text)
        return " ".join(text.split())


def _ml(text: str) -> float:
    """mL in dosage text ('5', '1/2'); Refusal when it is not a number ('1/0')."""
    try:
        return parse_number(text)
    except BenzotaperError as exc:
        raise Refusal(f"dosage text: {text!r} mL is not an amount: {exc}") from None


def _num(x: float) -> str:
    """A number as the sig parser reads it, without float noise: 0.75, 2.5, 10."""
    return format(x, ".10g")


def _max_per_day(ratio: Any, mg: float) -> int | None:
    """Doses a day allowed by maxDosePerPeriod (e.g. 3 tablets / 1 d, or 6 mg / 1 d)."""
    if not isinstance(ratio, Mapping):
        return None
    num, den = ratio.get("numerator") or {}, ratio.get("denominator") or {}
    if den.get("value") is None or num.get("value") is None or not mg > 0:
        return None
    days = float(den["value"]) * HOURS.get(str(den.get("code") or den.get("unit") or "d"), 24.0) / 24.0
    unit = str(num.get("code") or num.get("unit") or "")
    try:
        count = mass_to_mg(float(num["value"]), unit) / mg if unit else float(num["value"])
    except UnitError:
        count = float(num["value"])
    per_day = count / days if days > 0 else math.inf
    return max(1, int(per_day + 1e-9)) if math.isfinite(per_day) else None
