"""Does a symptom follow the drug level? Severity records against the PK engine's predicted level.

The level is the typical patient's diazepam-equivalent concentration at each record time. A withdrawal
symptom is worse when the level is low (late in the dosing interval, after a cut); a primary symptom
is independent of it; worse when the level is high points to a side effect instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from scipy.stats import mannwhitneyu, spearmanr

from benzotaper.knowledge.mirror_rules import MirrorKnowledge
from benzotaper.pk import Simulator
from benzotaper.regimen import DoseEvents

FloatArray = np.ndarray
PHASES = ("early", "middle", "late")  # thirds of the dosing interval


@dataclass(frozen=True)
class LevelSeries:
    """Record times with the predicted level and the recorded severity (for the clue and the chart)."""

    times: tuple[datetime, ...]
    level_ng_ml: FloatArray
    severity: FloatArray
    interval_phase: FloatArray  # 0 just after a dose .. 1 just before the next


@dataclass(frozen=True, slots=True)
class LevelRelation:
    """The clue's answer and its numbers."""

    outcome: str | None  # None: not assessable
    rho: float | None
    p_value: float | None
    n: int
    level_cv: float
    phase_means: dict[str, float]
    reason: str


def level_series(sim: Simulator, events: DoseEvents, records: list[tuple[datetime, float]]) -> LevelSeries:
    """Predicted diazepam-equivalent level at each severity record."""
    times = tuple(t for t, _ in records)
    hours = np.array([(t - events.origin) / timedelta(hours=1) for t in times])
    conc = sim.levels_at(events, hours)[0]
    level = np.asarray(sim.weights() @ conc, dtype=float)
    return LevelSeries(times, level, np.array([s for _, s in records], dtype=float), _phase(events.time, hours))


def _phase(dose_h: FloatArray, hours: FloatArray) -> FloatArray:
    """Position of each time within its dosing interval (NaN outside dosing)."""
    doses = np.unique(dose_h)
    idx = np.searchsorted(doses, hours, side="right") - 1
    out = np.full(len(hours), np.nan)
    ok = (idx >= 0) & (idx < len(doses) - 1)
    prev, nxt = doses[idx[ok]], doses[idx[ok] + 1]
    out[ok] = (hours[ok] - prev) / (nxt - prev)
    return out


def _phase_means(series: LevelSeries) -> dict[str, float]:
    means = {}
    for k, name in enumerate(PHASES):
        mask = (series.interval_phase >= k / 3) & (series.interval_phase < (k + 1) / 3)
        if mask.any():
            means[name] = round(float(series.severity[mask].mean()), 2)
    return means


def relate(series: LevelSeries, mk: MirrorKnowledge) -> LevelRelation:
    """Classify the relation between level and severity, or say why it cannot be assessed."""
    n = len(series.times)
    level = series.level_ng_ml
    cv = float(level.std() / level.mean()) if n and level.mean() > 0 else 0.0
    phases = _phase_means(series)
    if n < mk.setting("level_min_records"):
        return LevelRelation(
            None,
            None,
            None,
            n,
            cv,
            phases,
            f"{n} timed records; at least {mk.setting('level_min_records'):g} are needed",
        )
    if cv < mk.setting("level_min_variation") or np.ptp(series.severity) == 0:
        why = f"level varies by {cv:.0%} over the records" if np.ptp(series.severity) else "severity never changes"
        return LevelRelation(None, None, None, n, cv, phases, f"{why}: too flat to show a relation")
    rho, p = _spearman(series)
    late, p_late = _late_vs_early(series)
    alpha, size = mk.setting("level_alpha") / 2, mk.setting("level_rho")  # two tests: Bonferroni
    low = (rho <= -size and p < alpha) or (late >= size and p_late < alpha)
    high = (rho >= size and p < alpha) or (late <= -size and p_late < alpha)
    outcome = (
        "worse_at_low_level" if low and not high else ("worse_at_high_level" if high and not low else "no_relation")
    )
    reason = (
        f"Spearman rho {rho:+.2f} with the level (p={p:.2g}, n={n}); "
        f"late vs early in the dosing interval {late:+.2f} (p={p_late:.2g})"
    )
    return LevelRelation(outcome, rho, p, n, cv, phases, reason)


def _spearman(series: LevelSeries) -> tuple[float, float]:
    result = spearmanr(series.level_ng_ml, series.severity)
    return float(result.statistic), float(result.pvalue)


def _late_vs_early(series: LevelSeries) -> tuple[float, float]:
    """Rank-biserial effect (+1: always worse late in the interval) and its Mann-Whitney p-value."""
    phase = series.interval_phase
    late, early = series.severity[phase >= 2 / 3], series.severity[phase < 1 / 3]
    if len(late) < 3 or len(early) < 3:
        return 0.0, 1.0
    result = mannwhitneyu(late, early, alternative="two-sided")
    effect = 2 * float(result.statistic) / (len(late) * len(early)) - 1
    return effect, float(result.pvalue)
