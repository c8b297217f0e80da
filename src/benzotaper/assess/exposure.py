"""Benzodiazepine exposure over a timeline: daily diazepam-equivalent dose, escalation, reductions, dose events.

The mirror clues ask when the dose rose or fell and what the level was when a symptom was recorded;
this module answers from the drug history (and the diary of taken doses where there is one).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

import numpy as np

from benzotaper.assess.timeline import BzdCourse, Timeline
from benzotaper.equivalence import diazepam_equivalent_mg
from benzotaper.errors import AssessmentError, BenzotaperError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.taper_rules import HOURS_PER_DAY
from benzotaper.pk import Simulator, model_half_life
from benzotaper.regimen import DoseEvents, Regimen, expand, parse_regimens

STEADY_STATE_HALF_LIVES = 5  # pharmacokinetics: 5 half-lives bring a level within ~3% of steady state


@dataclass(frozen=True, slots=True)
class DoseChange:
    """The daily diazepam-equivalent dose from `day` on (until the next change)."""

    day: date
    deq_mg: float


@dataclass(frozen=True, slots=True)
class Exposure:
    """The history as regimens plus the step function of daily diazepam-equivalent dose."""

    regimens: tuple[Regimen, ...]
    changes: tuple[DoseChange, ...]
    first_day: date

    def deq_on(self, day: date) -> float:
        """Daily diazepam-equivalent mg on a day (0 before the first or after the last course)."""
        i = bisect_right([c.day for c in self.changes], day) - 1
        return self.changes[i].deq_mg if i >= 0 else 0.0

    @property
    def first_deq(self) -> float:
        """The daily diazepam-equivalent dose the history starts with."""
        return self.changes[0].deq_mg

    def escalated_by(self, ratio: float) -> date | None:
        """The first day the dose reached `ratio` x the starting dose, or None."""
        return next((c.day for c in self.changes if c.deq_mg >= ratio * self.first_deq), None)

    def reductions(self) -> list[DoseChange]:
        """Every change that lowered the daily dose (a stop is a change to 0)."""
        return [b for a, b in zip(self.changes, self.changes[1:], strict=False) if b.deq_mg < a.deq_mg - 1e-9]

    @property
    def last_dose_day(self) -> date | None:
        """The day of the last dose when the history ends with a stop, else None (still taking)."""
        last = self.changes[-1]
        return last.day - timedelta(days=1) if last.deq_mg == 0 else None


def _course_regimens(knowledge: Knowledge, course: BzdCourse, i: int) -> list[Regimen]:
    try:
        return parse_regimens(course.dose, knowledge, course.start, course.end, drug=course.drug)
    except (BenzotaperError, LookupError, ValueError) as exc:
        raise AssessmentError(f"timeline: bzd_history[{i}]: {exc}") from None


def exposure(knowledge: Knowledge, timeline: Timeline) -> Exposure:
    """Parse every course and build the daily diazepam-equivalent step function."""
    regimens = tuple(r for i, c in enumerate(timeline.bzd_history) for r in _course_regimens(knowledge, c, i))
    days = sorted({r.start for r in regimens} | {r.end + timedelta(days=1) for r in regimens if r.end})
    changes: list[DoseChange] = []
    for day in days:
        total = sum(diazepam_equivalent_mg(knowledge, r.drug, r.max_daily_mg) for r in regimens if r.active_on(day))
        if not changes or abs(changes[-1].deq_mg - total) > 1e-9:
            changes.append(DoseChange(day, total))
    return Exposure(regimens, tuple(changes), days[0])


def _diary_events(timeline: Timeline, origin: datetime) -> DoseEvents:
    doses = sorted(timeline.doses, key=lambda d: d.at)
    return DoseEvents(
        origin,
        np.array([(d.at - origin) / timedelta(hours=1) for d in doses]),
        np.array([d.mg for d in doses]),
        tuple(d.drug for d in doses),
    )


def _merge(a: DoseEvents, b: DoseEvents) -> DoseEvents:
    times = np.concatenate([a.time, b.time])
    order = np.argsort(times, kind="stable")
    drugs = a.drug + b.drug
    return DoseEvents(a.origin, times[order], np.concatenate([a.amt, b.amt])[order], tuple(drugs[i] for i in order))


def lead_in_days(knowledge: Knowledge, drugs: tuple[str, ...]) -> int:
    """Days of dosing to simulate before a window so its levels are near steady state."""
    sim = Simulator.for_drugs(knowledge, drugs)
    longest = max(model_half_life(sim, i) for i in range(len(sim.model.analytes)))
    return int(np.ceil(STEADY_STATE_HALF_LIVES * longest / HOURS_PER_DAY))


def dose_events(knowledge: Knowledge, timeline: Timeline, exp: Exposure, start: datetime, end: datetime) -> DoseEvents:
    """Doses from a lead-in before `start` up to `end`: scheduled, replaced by the diary where it has entries."""
    drugs = tuple(dict.fromkeys([r.drug for r in exp.regimens] + [knowledge.drug(d.drug).id for d in timeline.doses]))
    origin = datetime.combine(start.date() - timedelta(days=lead_in_days(knowledge, drugs)), time())
    clipped = [
        replace(r, start=max(r.start, origin.date())) for r in exp.regimens if r.end is None or r.end >= origin.date()
    ]
    clipped = [r for r in clipped if r.start <= end.date()]
    scheduled = expand(clipped, origin, end)
    if not timeline.doses:
        return scheduled
    first = min(d.at for d in timeline.doses)
    last = max(d.at for d in timeline.doses)
    keep = (scheduled.time < (first - origin) / timedelta(hours=1)) | (
        scheduled.time > (last - origin) / timedelta(hours=1)
    )
    kept = DoseEvents(
        origin,
        scheduled.time[keep],
        scheduled.amt[keep],
        tuple(d for d, k in zip(scheduled.drug, keep, strict=True) if k),
    )
    diary = _diary_events(timeline, origin)
    return _merge(kept, replace(diary, drug=tuple(knowledge.drug(d).id for d in diary.drug)))
