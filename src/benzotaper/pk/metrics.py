"""Summary numbers a clinician reads off level curves: peaks, troughs, accumulation, interdose dips."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq

from benzotaper.pk.simulation import Curves, Simulator
from benzotaper.regimen import DoseEvents

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class AnalyteSummary:
    """Over the simulation (first patient): Cmax, Tmax after the dose before the peak, last-day
    trough, and the analyte's own half-life in the model."""

    cmax_ng_ml: float
    tmax_h: float
    trough_ng_ml: float
    half_life_h: float


@dataclass(frozen=True, slots=True)
class DaySummary:
    """One calendar day of the diazepam-equivalent level."""

    day: int
    mean_ng_ml: float
    max_ng_ml: float
    min_ng_ml: float
    peak_trough_ratio: float
    min_predose_fraction: float | None
    interdose_withdrawal: bool


def model_half_life(sim: Simulator, analyte: int) -> float:
    """Terminal half-life of an analyte's own disposition (its slowest rate), in hours."""
    spec = sim.model.analytes[analyte]
    cl, v = float(sim.params.cl[0, analyte]), float(sim.params.v[0, analyte])
    if not spec.two_compartment:
        return math.log(2) * v / cl
    q, vp = float(sim.params.q[0, analyte]), float(sim.params.vp[0, analyte])
    k10, k12, k21 = cl / v, q / v, q / vp
    s = k10 + k12 + k21
    beta = (s - math.sqrt(s * s - 4 * k10 * k21)) / 2
    return math.log(2) / beta


def analyte_summaries(sim: Simulator, curves: Curves, events: DoseEvents) -> dict[str, AnalyteSummary]:
    """Cmax over the run, Tmax after the preceding dose, minimum over the last 24 h, per analyte."""
    t = curves.times_h
    last_day = t >= t[-1] - 24 + 1e-9
    out = {}
    for i, name in enumerate(curves.analytes):
        c = curves.conc[0, i]
        k = int(np.argmax(c))
        before = events.time[events.time <= t[k]]
        since = float(t[k] - before[-1]) if len(before) else float(t[k] - t[0])
        out[name] = AnalyteSummary(float(c[k]), since, float(np.min(c[last_day])), model_half_life(sim, i))
    return out


def time_to_steady_state(sim: Simulator, events: DoseEvents, fraction: float) -> float | None:
    """Hours for the diazepam-equivalent level to reach `fraction` of steady state (constant-rate input)."""
    if len(events.time) == 0:
        return None
    span = max(float(events.time[-1] - events.time[0]), 24.0)
    doses = sim.doses(events)
    rates = np.bincount(doses.depot, weights=doses.amount, minlength=len(sim.model.depots)) / span
    k = sim.modal.impulse_weights()[0]  # (I, m, D)
    kj = np.einsum("imd,i,d->m", k, sim.weights(), rates)
    lam = sim.modal.lam[0]
    css = float(np.sum(-kj / lam))
    if css <= 0:
        return None

    def level(t: float) -> float:
        return float(np.sum(kj * (np.exp(lam * t) - 1) / lam)) / css - fraction

    upper = 10.0
    while level(upper) < 0 and upper < 1e6:
        upper *= 2
    return float(brentq(level, 0.0, upper)) if upper < 1e6 else None


def day_summaries(sim: Simulator, events: DoseEvents, curves: Curves, threshold: float) -> list[DaySummary]:
    """Per day: mean, max, min, peak/trough and the interdose flag on the diazepam-equivalent level.

    The flag compares each pre-dose level (exact, just before the dose) with the mean level over the
    24 h before it; doses in the first 24 h of the run are not judged (no full day of history).
    """
    t, deq = curves.times_h, curves.deq[0]
    step = t[1] - t[0] if len(t) > 1 else 1.0
    all_times, all_predose = sim.deq_before_doses(events)
    keep = (all_times >= t[0] + 24) & (all_times <= t[-1])
    dose_times, predose = all_times[keep], all_predose[0, keep]
    cums = np.concatenate([[0.0], np.cumsum(deq)])
    window = round(24 / step)
    idx = np.clip(np.searchsorted(t, dose_times), window, len(t))
    means = (cums[idx] - cums[idx - window]) / window
    ratios = np.divide(predose, means, out=np.ones_like(predose), where=means > 0)
    days = []
    for d in range(math.ceil((t[-1] - t[0] + step) / 24)):
        sel = (t >= t[0] + 24 * d) & (t < t[0] + 24 * (d + 1))
        if not np.any(sel):
            break
        seg = deq[sel]
        in_day = (dose_times >= t[0] + 24 * d) & (dose_times < t[0] + 24 * (d + 1))
        worst = float(np.min(ratios[in_day])) if np.any(in_day) else None
        low = float(np.min(seg))
        days.append(
            DaySummary(
                d,
                float(np.mean(seg)),
                float(np.max(seg)),
                low,
                float(np.max(seg) / low) if low > 0 else math.inf,
                worst,
                worst is not None and worst < threshold,
            )
        )
    return days
