"""Regimens: dosing patterns over dates, read from prescription text, expanded to dose events.

>>> from benzotaper.knowledge import load_knowledge
>>> k = load_knowledge()
>>> [r.daily_mg for r in parse_regimens("alprazolam 2 mg tds", k, start=date(2026, 1, 1))]
[6.0]
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
from numpy.typing import NDArray

from benzotaper.errors import ImplausibleValueError, RegimenError, UnitError, UnknownDrugError
from benzotaper.knowledge import Drug, Knowledge
from benzotaper.knowledge.base import normalise_name
from benzotaper.units import NUMBER, parse_dose, parse_number

FloatArray = NDArray[np.float64]
_NUM = NUMBER  # with exponents: '1e9 mg' is read as 10^9 mg (and refused as implausible), not as '1e' of a unit
_MASS = r"(?:mg|mcg|µg|ug|g|micrograms?|milligrams?)"
_TABS = r"(?:tabs?|tablets?|caps?|capsules?)"
SIG_EXAMPLES = (
    "'2 mg tds', '1 mg bid', '0.5 mg mane, 1 mg nocte', '10 mg qhs', '0.25 mg prn max 3/day', '6 mg/day in 3 doses'"
)


@dataclass(frozen=True, slots=True)
class ScheduledDose:
    """An amount (mg) at a clock time, every day the regimen runs."""

    at: time
    mg: float


@dataclass(frozen=True, slots=True)
class Regimen:
    """One drug's dosing pattern from `start` to `end` (inclusive; None = ongoing)."""

    drug: str
    doses: tuple[ScheduledDose, ...]
    start: date
    end: date | None = None
    prn_mg: float = 0.0
    prn_max_per_day: int = 0
    sig: str = ""

    @property
    def daily_mg(self) -> float:
        """Scheduled mg per day (as-needed doses not included)."""
        return sum(d.mg for d in self.doses)

    @property
    def max_daily_mg(self) -> float:
        """Scheduled plus the most the as-needed part allows."""
        return self.daily_mg + self.prn_mg * self.prn_max_per_day

    def active_on(self, day: date) -> bool:
        """Whether the regimen runs on `day`."""
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class DoseEvents:
    """Dose records with NONMEM field meaning: time (h from origin), amt (mg), cmt (drug), evid=1."""

    origin: datetime
    time: FloatArray
    amt: FloatArray
    drug: tuple[str, ...]

    def records(self) -> list[dict[str, object]]:
        """One dict per event, NONMEM style (time, amt, cmt, evid, ii, addl)."""
        return [
            {"time": float(t), "amt": float(a), "cmt": d, "evid": 1, "ii": 0.0, "addl": 0}
            for t, a, d in zip(self.time, self.amt, self.drug, strict=True)
        ]

    @property
    def drugs(self) -> tuple[str, ...]:
        """Distinct drugs in order of first appearance."""
        return tuple(dict.fromkeys(self.drug))


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _clean(text: str) -> str:
    t = text.lower().replace("μ", "µ").replace("½", " 1/2").replace("¼", " 1/4")
    t = re.sub(r"(?<=\d),(?=\d)", ".", t)
    return re.sub(r"\s+", " ", t).strip()


def _frequency(knowledge: Knowledge, phrase: str) -> tuple[str, ...] | None:
    key = phrase.replace(".", "").strip()
    return knowledge.sig.frequencies.get(key)


def _split_drug(knowledge: Knowledge, clause: str, names: frozenset[str]) -> tuple[Drug | None, str]:
    """Leading drug name (up to three words, one of `names`) and the rest of the clause."""
    words = clause.split(" ")
    if re.match(r"^[\d./]", words[0]):
        return None, clause
    for n in (3, 2, 1):
        if len(words) >= n and normalise_name(" ".join(words[:n])) in names:
            return knowledge.drug(" ".join(words[:n])), " ".join(words[n:])
    try:
        return knowledge.drug(words[0]), ""  # raises UnknownDrugError with did-you-mean suggestions
    except UnknownDrugError as exc:
        if exc.suggestions:
            raise
        raise RegimenError(
            f"unknown drug {words[0]!r}: a regimen starts with a drug name, e.g. 'alprazolam 2 mg tds' "
            "(`benzotaper drugs` lists them)"
        ) from exc


def _drug_names(knowledge: Knowledge) -> frozenset[str]:
    """Every name a drug is known by, normalised: a miss costs no did-you-mean search (difflib, ~4 ms a try)."""
    return frozenset(
        normalise_name(alias) for d in knowledge.drugs.values() for alias in (d.id, d.name, *d.brands, *d.synonyms)
    )


def _dose_amount(text: str, drug: Drug) -> tuple[float, str]:
    """The leading dose of a clause in mg, and what follows it."""
    m = re.match(rf"(?P<n>-?{_NUM})\s*x?\s*(?P<s>{_NUM})\s*mg\s*{_TABS}\b\s*(?P<rest>.*)", text)
    if m:
        mg = parse_number(m["n"]) * parse_number(m["s"])
        if not (math.isfinite(mg) and mg > 0):  # '-1 x 2 mg tab', '0 x 2 mg tab', '1e300 x 1e300 mg tab'
            raise ImplausibleValueError(f"{drug.name}: dose must be more than 0 mg and finite (got {text!r})")
        return mg, m["rest"]
    m = re.match(rf"(?P<dose>-?{_NUM}\s*{_MASS})(?=$|[\s/])\s*(?P<rest>.*)", text)
    if m:
        return parse_dose(m["dose"]), m["rest"]
    m = re.match(rf"(?P<dose>{_NUM}\s*{_TABS})\b", text)
    if m:
        raise UnitError(
            f"{drug.name}: {m['dose']!r} counts tablets; write the strength too, e.g. '1 x 2 mg tab' or the dose in mg"
        )
    m = re.match(rf"(?P<dose>-?{_NUM}\s*[a-zµ/]+)", text)
    if m:
        parse_dose(m["dose"])  # raises UnitError naming the accepted units
    raise RegimenError(f"{drug.name}: expected a dose such as '2 mg' in {text!r}; sig examples: {SIG_EXAMPLES}")


def _as_needed(knowledge: Knowledge, rest: str) -> tuple[bool, int, str]:
    for phrase in sorted({p.replace(".", "") for p in knowledge.sig.as_needed}, key=len, reverse=True):
        if re.match(rf"{re.escape(phrase)}\b", rest.replace(".", "")):
            tail = rest.replace(".", "")[len(phrase) :].strip(" ,")
            m = re.match(
                r"(?:max(?:imum)?|up to)\s*(?P<n>\d+)\s*(?:x|times|doses)?\s*"
                r"(?:/|per|a|daily|in 24 ?h(?:ours)?)?\s*(?:day|daily)?",
                tail,
            )
            if m:
                return True, int(m["n"]), tail[m.end() :].strip()
            return True, 0, tail
    return False, 0, rest


@dataclass(frozen=True, slots=True)
class _Clause:
    doses: tuple[ScheduledDose, ...]
    prn_mg: float
    prn_max: int


def _parse_clause(knowledge: Knowledge, drug: Drug, text: str) -> _Clause:
    """One dose instruction: '2 mg tds', '6 mg/day in 3 doses', '0.25 mg prn max 3/day'."""
    mg, rest = _dose_amount(text, drug)
    per_day = re.match(r"(?:/|per |a )\s*(?:day|d)\b\s*(?:in (?P<k>\d+) (?:divided )?doses)?\s*(?P<rest>.*)", rest)
    if per_day:
        k = int(per_day["k"] or 1)
        times = knowledge.sig.divided.get(k)
        if times is None or k < 1:
            raise RegimenError(
                f"{drug.name}: cannot divide a daily dose into {k} doses (1 to {max(knowledge.sig.divided)} accepted)"
            )
        _expect_end(drug, per_day["rest"])
        return _Clause(tuple(ScheduledDose(_clock(t), mg / k) for t in times), 0.0, 0)
    prn, prn_max, tail = _as_needed(knowledge, rest)
    if prn:
        _expect_end(drug, tail)
        return _Clause((), mg, prn_max or 1)
    explicit = re.fullmatch(r"(?:at )?(?P<t>([01]?\d|2[0-3])[:.h][0-5]\d)", rest)
    if explicit:
        return _Clause((ScheduledDose(_clock(explicit["t"].replace(".", ":").replace("h", ":")), mg),), 0, 0)
    times = _frequency(knowledge, rest) if rest else None
    if times is None:
        known = "tds, bid, mane, nocte, qhs, prn, '/day in N doses', 'at 08:00'"
        raise RegimenError(
            f"{drug.name}: unknown dosing frequency {rest!r} (expected e.g. {known})"
            if rest
            else f"{drug.name}: the dose {text!r} needs a frequency (e.g. {known})"
        )
    return _Clause(tuple(ScheduledDose(_clock(t), mg) for t in times), 0.0, 0)


def _expect_end(drug: Drug, tail: str) -> None:
    if tail.strip(" ,.;"):
        raise RegimenError(f"{drug.name}: could not understand {tail!r}; sig examples: {SIG_EXAMPLES}")


def _clauses(text: str) -> list[str]:
    """Clauses joined by '+', ';', ',', '&' or 'and then' (the '+' of an exponent such as '1e+09' joins nothing)."""
    return [c.strip() for c in re.split(r"\s*(?:(?<!\d[eE])\+|;|,|\band then\b|&)\s*", _clean(text)) if c.strip()]


def parse_regimens(
    text: str, knowledge: Knowledge, start: date, end: date | None = None, drug: str | None = None
) -> list[Regimen]:
    """Read a sig such as 'lorazepam 1 mg tds + zolpidem 10 mg nocte' into one Regimen per drug."""
    current = knowledge.drug(drug) if drug else None
    by_drug: dict[str, list[_Clause]] = {}
    order: list[Drug] = []
    if not text.strip():
        raise RegimenError(f"regimen is empty; expected e.g. 'alprazolam 2 mg tds' ({SIG_EXAMPLES})")
    names = _drug_names(knowledge)
    for clause in _clauses(text):
        named, rest = _split_drug(knowledge, clause, names)
        current = named or current
        if current is None:
            raise RegimenError(f"name the drug first, e.g. 'alprazolam {clause}'")
        if not rest:
            raise RegimenError(f"{current.name}: no dose given (expected e.g. '{current.name} 2 mg tds')")
        if current.id not in by_drug:
            order.append(current)
        by_drug.setdefault(current.id, []).append(_parse_clause(knowledge, current, rest))
    if not order:  # only separators: ';', '+', ' & '
        raise RegimenError(f"regimen {text.strip()!r} names no drug and dose; expected e.g. 'alprazolam 2 mg tds'")
    regimens = [_merge(d, by_drug[d.id], start, end, text) for d in order]
    for regimen in regimens:
        check_plausible(knowledge, regimen)
    return regimens


def _merge(drug: Drug, clauses: Sequence[_Clause], start: date, end: date | None, sig: str) -> Regimen:
    doses: dict[time, float] = {}
    for clause in clauses:
        for dose in clause.doses:
            doses[dose.at] = doses.get(dose.at, 0.0) + dose.mg
    prn = [c for c in clauses if c.prn_mg]
    if end is not None and end < start:
        raise RegimenError(f"end date {end} is before start date {start}: it must be on or after the start")
    return Regimen(
        drug=drug.id,
        doses=tuple(ScheduledDose(t, mg) for t, mg in sorted(doses.items())),
        start=start,
        end=end,
        prn_mg=prn[-1].prn_mg if prn else 0.0,
        prn_max_per_day=prn[-1].prn_max if prn else 0,
        sig=sig,
    )


def plausible_daily_max(knowledge: Knowledge, drug: Drug) -> float | None:
    """The largest daily dose accepted as plausible (policy.toml), or None when unknown."""
    policy = knowledge.policy
    if drug.dosing.usual_max_daily is not None:
        return policy.plausible_max_daily_multiple.value * drug.dosing.usual_max_daily.value
    if drug.equivalence is not None:
        per_10mg = drug.equivalence.used.value
        return policy.plausible_max_daily_diazepam_equivalent.value * per_10mg / 10.0
    return None


def check_plausible(knowledge: Knowledge, regimen: Regimen) -> None:
    """Refuse daily totals above the plausible maximum and single doses below the plausible minimum."""
    drug = knowledge.drug(regimen.drug)
    top = plausible_daily_max(knowledge, drug)
    low = _plausible_min_dose(knowledge, drug)
    accepted = _accepted_range(knowledge, drug, top, low)
    total = regimen.max_daily_mg
    if not math.isfinite(total) or (top is not None and total > top + 1e-9):
        raise ImplausibleValueError(
            f"{drug.name}: {total:g} mg a day ({_doses_text(regimen)}) is implausible: {accepted}"
        )
    amounts = [d.mg for d in regimen.doses] + ([regimen.prn_mg] if regimen.prn_mg else [])
    for mg in amounts:
        if low is not None and mg < low - 1e-12:
            raise ImplausibleValueError(
                f"{drug.name}: a dose of {mg:g} mg is implausible (micrograms written as mg?): {accepted}"
            )


def _plausible_min_dose(knowledge: Knowledge, drug: Drug) -> float | None:
    """The smallest single dose accepted as plausible (policy.toml), or None when the drug has no label maximum."""
    ref = drug.dosing.usual_max_single or drug.dosing.usual_max_daily
    return None if ref is None else knowledge.policy.plausible_min_dose_fraction.value * ref.value


def _accepted_range(knowledge: Knowledge, drug: Drug, top: float | None, low: float | None) -> str:
    """What check_plausible accepts, in words: 'dose must be at least 0.01 mg ...; daily dose at most 400 mg ...'."""
    parts = [f"dose must be at least {low:g} mg for {drug.name}"] if low is not None else []
    if top is not None:
        basis = (
            f"{knowledge.policy.plausible_max_daily_multiple.value:g} x the usual maximum"
            if drug.dosing.usual_max_daily is not None
            else f"{knowledge.policy.plausible_max_daily_diazepam_equivalent.value:g} mg diazepam-equivalent"
        )
        parts.append(f"daily dose must be at most {top:g} mg for {drug.name} ({basis})")
    return "; ".join(parts) or "a finite dose in mg"


def _doses_text(regimen: Regimen) -> str:
    """'1e+09 mg at 08:00, 1e+09 mg at 14:00' (and the as-needed part) for a refusal."""
    scheduled = [f"{d.mg:g} mg at {d.at:%H:%M}" for d in regimen.doses]
    prn = [f"{regimen.prn_mg:g} mg as needed up to {regimen.prn_max_per_day} a day"] if regimen.prn_mg else []
    return ", ".join(scheduled + prn)


def expand(regimens: Iterable[Regimen], origin: datetime, until: datetime, prn_per_day: int = 0) -> DoseEvents:
    """Dose events from `origin` (time 0) up to `until`; `prn_per_day` as-needed doses assumed taken."""
    times: list[float] = []
    amounts: list[float] = []
    drugs: list[str] = []
    for regimen in regimens:
        day = regimen.start
        last = min(regimen.end or until.date(), until.date())
        prn_times = _prn_times(regimen, prn_per_day)
        while day <= last:
            for dose in [*regimen.doses, *prn_times]:
                moment = datetime.combine(day, dose.at)
                if origin <= moment <= until or moment < origin:
                    times.append((moment - origin) / timedelta(hours=1))
                    amounts.append(dose.mg)
                    drugs.append(regimen.drug)
            day += timedelta(days=1)
    order = np.argsort(np.asarray(times), kind="stable")
    return DoseEvents(
        origin,
        np.asarray(times, dtype=float)[order],
        np.asarray(amounts, dtype=float)[order],
        tuple(drugs[i] for i in order),
    )


def _prn_times(regimen: Regimen, prn_per_day: int) -> list[ScheduledDose]:
    n = min(prn_per_day, regimen.prn_max_per_day) if regimen.prn_mg else 0
    if n <= 0:
        return []
    step = 14 * 60 // n  # spread over waking hours 08:00-22:00
    return [ScheduledDose(time((8 * 60 + k * step) // 60, (8 * 60 + k * step) % 60), regimen.prn_mg) for k in range(n)]
