"""Forecasts for the individual: daily trough levels under a regimen or plan, with a 90% interval.

The interval reflects what the levels leave uncertain about the patient (draws from the Laplace
posterior), not assay error: it is the band the true level should lie in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np

from benzotaper.knowledge import Knowledge
from benzotaper.regimen import DoseEvents, expand, parse_regimens
from benzotaper.tdm.fit import Fit
from benzotaper.tdm.patient import with_events

_HOUR = timedelta(hours=1)
DEFAULT_TROUGH = time(8, 0)
DRAWS = 300


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    """Trough diazepam-equivalent level (ng/mL) at a time, with its interval and each analyte's MAP level."""

    at: datetime
    value: float
    low: float
    high: float
    analytes: dict[str, float]
    bands: dict[str, tuple[float, float]] = field(default_factory=dict)  # each analyte's 90% interval

    def to_dict(self) -> dict[str, object]:
        """JSON form."""
        return {
            "at": self.at.isoformat(timespec="minutes"),
            "deq": {"value": self.value, "low": self.low, "high": self.high, "unit": "ng/mL"},
            "analytes": self.analytes,
            "analyte_bands": {
                a: {"low": lo, "value": self.analytes[a], "high": hi, "unit": "ng/mL"}
                for a, (lo, hi) in self.bands.items()
            },
        }


def trough_times(events: DoseEvents, first: date, days: int) -> list[datetime]:
    """Each day's pre-dose time: the first dose of that day, or 08:00 on days without doses."""
    out = []
    for k in range(days):
        day = first + timedelta(days=k)
        midnight = datetime.combine(day, time())
        lo, hi = (midnight - events.origin) / _HOUR, (midnight - events.origin) / _HOUR + 24
        today = events.time[(events.time >= lo) & (events.time < hi)]
        out.append(
            midnight + timedelta(hours=float(today.min() - lo)) if len(today) else datetime.combine(day, DEFAULT_TROUGH)
        )
    return out


def forecast(
    fit: Fit, events: DoseEvents, times: list[datetime], level: float = 0.90, seed: int = 0
) -> list[ForecastPoint]:
    """MAP trough levels at the times under `events` (same origin), with posterior intervals."""
    patient = with_events(fit.patient, events)
    t_h = np.array([(t - patient.origin) / _HOUR for t in times])
    ind = patient.levels(fit.params(), t_h)[0]  # (I, T)
    draws = patient.levels(fit.draws(DRAWS, np.random.default_rng(seed)), t_h)
    deq_draws = np.einsum("nit,i->nt", draws, patient.deq_weights)
    tail = (1 - level) / 2
    lo, hi = np.quantile(deq_draws, [tail, 1 - tail], axis=0)
    deq = patient.deq_weights @ ind
    a_lo, a_hi = np.quantile(draws, [tail, 1 - tail], axis=0)  # (I, T) each
    ids = [a.id for a in patient.model.analytes]
    return [
        ForecastPoint(
            t,
            float(deq[k]),
            float(lo[k]),
            float(hi[k]),
            {a: float(ind[i, k]) for i, a in enumerate(ids)},
            {a: (float(a_lo[i, k]), float(a_hi[i, k])) for i, a in enumerate(ids)},
        )
        for k, t in enumerate(times)
    ]


def time_to_target(points: list[ForecastPoint], target: float) -> datetime | None:
    """First forecast time at which the MAP trough is at or below `target` ng/mL."""
    return next((p.at for p in points if p.value <= target), None)


def switch_regimen(knowledge: Knowledge, past: DoseEvents, sig: str, on: date, until: datetime) -> DoseEvents:
    """The doses taken before `on`, then `sig` from `on` until `until` (same origin)."""
    cut = (datetime.combine(on, time()) - past.origin) / _HOUR
    keep = past.time < cut
    new = expand(parse_regimens(sig, knowledge, start=on), past.origin, until)
    times = np.concatenate([past.time[keep], new.time[new.time >= cut]])
    amts = np.concatenate([past.amt[keep], new.amt[new.time >= cut]])
    drugs = [d for d, k in zip(past.drug, keep, strict=True) if k]
    drugs += [d for d, t in zip(new.drug, new.time, strict=True) if t >= cut]
    order = np.argsort(times, kind="stable")
    return DoseEvents(past.origin, times[order], amts[order], tuple(drugs[i] for i in order))
