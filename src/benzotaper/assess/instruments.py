"""Score CIWA-B, BWSQ or SDS answers and follow scores over time (trend, change since the last reduction).

Every number used (allowed answers, bands, cut-offs, the "stable" margin) comes from the instrument's data file;
answers that cannot be scored are refused with a message naming the item.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from benzotaper.errors import AssessmentError
from benzotaper.knowledge.instruments import Cutoff, Instrument, Item

# Plain-language directions. Every instrument here scores higher for more symptoms or dependence, so a falling
# score is "improving"; a change smaller than the instrument's `stable_within` (its data file) is "stable".
IMPROVING, WORSENING, STABLE, TOO_FEW = "improving", "worsening", "stable", "too few scores"
WEEK_SECONDS = timedelta(weeks=1).total_seconds()
MAX_TREND_SCORE = 2**53  # larger scores lose precision as floats (the slope); no instrument comes near
SHOWN_CHARS = 60  # a refused value is shown up to this many characters, then shortened with "..."
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = SHOWN_CHARS
_REPR.maxlevel = 3


def shown(value: object) -> str:
    """A refused value as a message shows it: its repr, shortened; safe for huge numbers and deep nesting."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * SHOWN_CHARS:
        digits = math.floor(value.bit_length() * math.log10(2)) + 1
        return f"a whole number of about {digits} digits"
    return _REPR.repr(value)


@dataclass(frozen=True, slots=True)
class ItemValue:
    """One scored answer."""

    id: str
    number: int
    value: int
    label: str


@dataclass(frozen=True, slots=True)
class Score:
    """A scored set of answers: total, band, the dependence call (SDS) and what to be careful about."""

    instrument: str
    total: int
    min_score: int
    max_score: int
    band: str | None
    band_source: str | None
    dependent: bool | None
    cutoff: Cutoff | None
    items: tuple[ItemValue, ...]
    warnings: tuple[str, ...]


def score(instrument: Instrument, answers: Sequence[int] | Mapping[str, int], cutoff: str | None = None) -> Score:
    """Score answers given as a list in item order or a mapping keyed by item id (any case).

    `cutoff` picks a published cut-off by id (SDS: 'de_las_cuevas', the default, or 'cheng').
    """
    values = _values(instrument, answers)
    chosen = _cutoff(instrument, cutoff)
    total = sum(values)
    band = instrument.band_for(total)
    return Score(
        instrument=instrument.id,
        total=total,
        min_score=instrument.min_score,
        max_score=instrument.max_score,
        band=band.label if band else None,
        band_source=band.source if band else None,
        dependent=None if chosen is None else total >= chosen.value,
        cutoff=chosen,
        items=tuple(
            ItemValue(it.id, it.number, v, it.label(v)) for it, v in zip(instrument.items, values, strict=True)
        ),
        warnings=_warnings(instrument, band.source if band else None, chosen),
    )


def _describe(instrument: Instrument, item: Item) -> str:
    return f"{instrument.name} item {item.number} ({item.id!r})"


def _allowed(item: Item) -> str:
    return "allowed values: " + ", ".join(str(v) for v in item.values)


def _check(instrument: Instrument, item: Item, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AssessmentError(f"{_describe(instrument, item)}: {shown(value)} is not a whole number; {_allowed(item)}")
    if value not in item.values:
        raise AssessmentError(f"{_describe(instrument, item)}: {shown(value)} is out of range; {_allowed(item)}")
    return value


def _values(instrument: Instrument, answers: Any) -> list[int]:
    items = instrument.items
    if isinstance(answers, Mapping):
        given = _by_item(instrument, answers)
        valid = {it.id: _check(instrument, it, given[it.id]) for it in items if it.id in given}
        missing = [it for it in items if it.id not in given]
        if missing:
            raise AssessmentError(f"{_describe(instrument, missing[0])}: no answer; {_allowed(missing[0])}")
        return [valid[it.id] for it in items]
    if isinstance(answers, str | bytes) or not isinstance(answers, Sequence):
        raise AssessmentError(
            f"{instrument.name} answers must be a list of item scores in item order or an object keyed by item id "
            f"(got {type(answers).__name__})"
        )
    checked = [_check(instrument, it, v) for it, v in zip(items, answers, strict=False)]
    if len(answers) < len(items):
        item = items[len(answers)]
        raise AssessmentError(
            f"{_describe(instrument, item)}: no answer ({len(answers)} given, {len(items)} items); {_allowed(item)}"
        )
    if len(answers) > len(items):
        raise AssessmentError(
            f"{instrument.name} has {len(items)} items but {len(answers)} answers were given "
            f"(extra answer at position {len(items) + 1})"
        )
    return checked


def _by_item(instrument: Instrument, answers: Mapping[Any, Any]) -> dict[str, Any]:
    given: dict[str, Any] = {}
    ids = ", ".join(it.id for it in instrument.items)
    for key, value in answers.items():
        if not isinstance(key, str):
            raise AssessmentError(f"{instrument.name}: item id {shown(key)} is not a text; item ids are: {ids}")
        try:
            item = instrument.item(key)
        except KeyError:
            raise AssessmentError(f"{instrument.name} has no item {shown(key)}; item ids are: {ids}") from None
        if item.id in given:
            raise AssessmentError(f"{_describe(instrument, item)}: answered twice (ids are read in any case)")
        given[item.id] = value
    return given


def _cutoff(instrument: Instrument, cutoff_id: str | None) -> Cutoff | None:
    if cutoff_id is not None and not instrument.cutoffs:
        raise AssessmentError(f"{instrument.name} has no published cut-off; leave out the cut-off choice")
    chosen = instrument.cutoff(cutoff_id)
    if cutoff_id is not None and chosen is None:
        ids = ", ".join(c.id for c in instrument.cutoffs)
        raise AssessmentError(f"{instrument.name} has no cut-off {cutoff_id!r}; use one of: {ids}")
    return chosen


def _warnings(instrument: Instrument, band_source: str | None, cutoff: Cutoff | None) -> tuple[str, ...]:
    out = []
    if instrument.licence.permission_required:
        out.append(f"{instrument.name} licence: {instrument.licence.note}")
    paraphrased = sum(it.wording == "paraphrased" for it in instrument.items)
    if paraphrased:
        out.append(
            f"{instrument.name}: the wording of {paraphrased} of {len(instrument.items)} items is paraphrased, "
            "not checked against the published form; ask the questions from the published form."
        )
    if band_source is not None and instrument.sources[band_source].reliability != "primary":
        reliability = instrument.sources[band_source].reliability
        out.append(
            f"{instrument.name}: the severity bands come from a {reliability} source ({band_source}) and were not "
            "verified against the original paper; read the band as a rough guide."
        )
    if instrument.no_bands_reason:
        out.append(f"{instrument.name}: {instrument.no_bands_reason}")
    if cutoff is not None:
        out.append(
            f"{instrument.name}: 'dependent' uses the {cutoff.id} cut-off (total >= {cutoff.value}; "
            f"published as {cutoff.published_as}), validated in {cutoff.population}. It is a screen, not a diagnosis."
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Trend:
    """How scores moved: range, weekly slope, change since the last dose reduction and a plain direction."""

    count: int
    first: tuple[datetime, int]
    last: tuple[datetime, int]
    min_score: int
    max_score: int
    slope_per_week: float | None
    last_reduction: date | None
    reference: tuple[datetime, int] | None
    change_since_reduction: int | None
    change: int
    direction: str
    stable_within: float | None


def trend(
    records: Sequence[tuple[datetime, int]], reductions: Sequence[date] = (), stable_within: float | None = None
) -> Trend:
    """Summarise dated scores (any order). `reductions` are dose-reduction dates; `stable_within` is the
    instrument's "no real change" margin (Instrument.stable_within.value) - without it only 0 is stable.

    The change since the last reduction compares the last score with the last score recorded on or before that
    reduction's date (or, if there is none, the first score after it). The direction follows that change, or
    last minus first when there is no reduction within the records.
    """
    rows = sorted(_record(i, r) for i, r in enumerate(records))
    if not rows:
        raise AssessmentError("no scores to follow: give at least one (date, score)")
    first, last = rows[0], rows[-1]
    days = [_reduction_day(i, d) for i, d in enumerate(reductions)]
    last_reduction = max((d for d in days if d <= last[0].date()), default=None)
    reference = _reference(rows, last_reduction) if last_reduction else None
    since = last[1] - reference[1] if reference else None
    change = since if since is not None else last[1] - first[1]
    scores = [s for _, s in rows]
    return Trend(
        count=len(rows),
        first=first,
        last=last,
        min_score=min(scores),
        max_score=max(scores),
        slope_per_week=_slope(rows),
        last_reduction=last_reduction,
        reference=reference,
        change_since_reduction=since,
        change=change,
        direction=_direction(len(rows), change, stable_within),
        stable_within=stable_within,
    )


def _record(i: int, record: object) -> tuple[datetime, int]:
    if not isinstance(record, tuple | list) or len(record) != 2:
        raise AssessmentError(f"score {i + 1}: expected a (date, score) pair (got {shown(record)})")
    when, value = record
    if isinstance(when, date) and not isinstance(when, datetime):
        when = datetime.combine(when, time())
    if not isinstance(when, datetime):
        raise AssessmentError(f"score {i + 1}: the time must be a date or a date and time (got {shown(when)})")
    if when.tzinfo is not None:
        raise AssessmentError(
            f"score {i + 1}: the time {when.isoformat()} has a time zone; give the local date and time without one"
        )
    if isinstance(value, bool) or not isinstance(value, int):
        raise AssessmentError(f"score {i + 1} ({when:%Y-%m-%d}): {shown(value)} is not a whole number")
    if abs(value) > MAX_TREND_SCORE:
        raise AssessmentError(
            f"score {i + 1} ({when:%Y-%m-%d}): {shown(value)} is too large to follow (at most {MAX_TREND_SCORE})"
        )
    return when, value


def _reduction_day(i: int, day: object) -> date:
    if isinstance(day, datetime):
        return day.date()
    if not isinstance(day, date):
        raise AssessmentError(f"reduction {i + 1}: expected a date YYYY-MM-DD (got {shown(day)})")
    return day


def _reference(rows: list[tuple[datetime, int]], reduction: date) -> tuple[datetime, int]:
    before = [r for r in rows if r[0].date() <= reduction]
    return before[-1] if before else next(r for r in rows if r[0].date() > reduction)


def _slope(rows: list[tuple[datetime, int]]) -> float | None:
    """Least-squares change in score per week; None when all scores share one time."""
    xs = [(t - rows[0][0]).total_seconds() / WEEK_SECONDS for t, _ in rows]
    ys = [float(s) for _, s in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def _direction(count: int, change: int, stable_within: float | None) -> str:
    if count < 2:
        return TOO_FEW
    if abs(change) < (stable_within or 0) or change == 0:
        return STABLE
    return IMPROVING if change < 0 else WORSENING
