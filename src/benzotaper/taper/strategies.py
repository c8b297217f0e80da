"""Reduction rules: how far the next step goes, given today's daily diazepam-equivalent dose.

Four kinds, each a preset in taper.toml: bands (Ashton, NICE CKS), proportional (JCPG, speed
presets, deprescribing.org), linear, and hyperbolic (equal steps of predicted GABA-A occupancy).
Safety limits and rounding to products are applied afterwards by the reduction loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benzotaper.errors import ModelError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.taper_rules import HOURS_PER_DAY, Preset
from benzotaper.pk import Simulator


@dataclass(frozen=True, slots=True)
class Proposal:
    """The next daily diazepam-equivalent dose a strategy asks for, with its reason."""

    deq: float
    rule: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Reducer:
    """A preset with the clinician's adjustments: `fraction`/`amount` overrides and a pace scale."""

    preset: Preset
    fraction: float | None = None
    amount: float | None = None
    scale: float = 1.0
    d50_deq: float = 0.0  # hyperbolic only: daily diazepam-equivalent dose giving half-maximal occupancy

    def propose(self, current: float, start: float, slow: float = 1.0) -> Proposal:
        """Next daily dose (mg diazepam-equivalent) from `current`; `start` is the first reduction's dose."""
        cut, rule, sources = self._cut(current, start)
        cut *= self.scale * slow
        if self.scale != 1.0 or slow != 1.0:
            rule += f", pace x{self.scale * slow:.2f}"
        return Proposal(max(current - cut, 0.0), rule, sources)

    def _fraction(self) -> float:
        if self.fraction is not None:
            return self.fraction
        assert self.preset.fraction is not None
        return self.preset.fraction.value

    def _cut(self, current: float, start: float) -> tuple[float, str, tuple[str, ...]]:
        p = self.preset
        if p.kind == "bands":
            band = next((b for b in p.bands if current > b.above + 1e-9), p.bands[-1])
            q = band.rule
            if band.step is not None:
                return q.value, f"{p.name}: {q.value:g} mg step while above {band.above:g} mg", q.sources
            return q.value * current, f"{p.name}: {q.value:.0%} of the dose while above {band.above:g} mg", q.sources
        if p.kind == "linear":
            amount = self.amount if self.amount is not None else self._fraction() * start
            src = () if self.amount is not None else self._fraction_sources()
            return amount, f"linear: {amount:g} mg diazepam-equivalent per step", src
        if p.kind == "hyperbolic":
            return self._hyperbolic(current, start)
        f = self._fraction()
        ne, below = p.near_end_fraction, p.near_end_below
        if ne is not None and below is not None and current <= below.value * start + 1e-9:
            return ne.value * current, f"{p.name}: {ne.value:.1%} steps near the end", ne.sources
        return f * current, f"{p.name}: {f:.0%} of the current dose", self._fraction_sources()

    def _fraction_sources(self) -> tuple[str, ...]:
        return () if self.fraction is not None or self.preset.fraction is None else self.preset.fraction.sources

    def _hyperbolic(self, current: float, start: float) -> tuple[float, str, tuple[str, ...]]:
        """Equal occupancy steps: occupancy(d) = d / (d + D50) for a dose d at steady state."""
        f, d50 = self._fraction(), self.d50_deq
        step = occ(start, d50) - occ(start * (1 - f), d50)
        remaining = occ(current, d50) - step
        new = 0.0 if remaining <= 0 else remaining * d50 / (1 - remaining)
        rule = (
            f"hyperbolic: equal steps of predicted GABA-A occupancy ({100 * step:.2f} points per step, "
            f"set by a first reduction of {f:.0%})"
        )
        return current - new, rule, (*self._fraction_sources(), "hyperbolic_bzd")


def occ(dose: float, d50: float) -> float:
    """Relative occupancy at steady state for a daily dose (Emax model, Hill 1)."""
    return dose / (dose + d50)


def d50_deq(knowledge: Knowledge, drug: str, deq_per_mg: float) -> float:
    """Daily diazepam-equivalent dose whose steady-state average level equals the occupancy EC50.

    Uses the drug's own PK (mean level = F * dose * AUC-per-mg / 24 h, potency-weighted); falls back
    to diazepam when the drug cannot be simulated.
    """
    try:
        sim, per = Simulator.for_drugs(knowledge, (drug,)), deq_per_mg
    except ModelError:
        sim, per = Simulator.for_drugs(knowledge, ("diazepam",)), 1.0
    auc = sim.modal.auc_per_mg()[0, :, 0]
    level_per_mg_day = float(np.dot(auc, sim.weights())) / HOURS_PER_DAY
    return knowledge.occupancy.ec50.value / level_per_mg_day * per
