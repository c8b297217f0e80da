"""Which products exist for a drug, and how to make a dose from them.

Tablets are halved only when the knowledge base says they are scored (unknown = do not split);
quarters only when the clinician allows them. A liquid tops up what tablets cannot make, measured
to the syringe resolution in taper.toml. Amounts are handled in micrograms (integers) so that
sums of tablet pieces are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from benzotaper.errors import PlanError
from benzotaper.knowledge import Formulation, Knowledge
from benzotaper.taper.plan import Portion

SOLID_FORMS = ("tablet", "capsule")
LIQUID_FORMS = ("oral_solution", "oral_suspension")
SPLITTABLE = ("tablet",)
UG = 1000  # micrograms per mg
SCAN_LIMIT = 400  # grid points searched each way for a makeable dose
_COST = {1.0: 1.0, 0.5: 1.6, 0.25: 2.2}  # prefer whole tablets, then halves, then quarters


def ug(mg: float) -> int:
    """mg -> integer micrograms."""
    return round(mg * UG)


@dataclass(frozen=True, slots=True)
class Piece:
    """A whole, half or quarter of one solid product."""

    form: str
    strength: float
    fraction: float

    @property
    def ug(self) -> int:
        return ug(self.strength * self.fraction)


@dataclass(frozen=True)
class Stock:
    """The products a plan may use for one drug."""

    drug: str
    solids: tuple[Formulation, ...]
    liquid: Formulation | None
    quarters: bool
    resolution_ml: float
    min_ml: float
    notes: tuple[str, ...] = ()

    @cached_property
    def pieces(self) -> tuple[Piece, ...]:
        """Every piece a patient can take, largest first."""
        out: set[Piece] = set()
        for f in self.solids:
            out.add(Piece(f.form, f.strength.value, 1.0))
            if f.scored and f.form in SPLITTABLE:
                out.add(Piece(f.form, f.strength.value, 0.5))
                if self.quarters:
                    out.add(Piece(f.form, f.strength.value, 0.25))
        return tuple(sorted(out, key=lambda p: (-p.ug, p.fraction)))

    @cached_property
    def step_ug(self) -> int:
        """Greatest common divisor of the pieces: solid doses are multiples of it."""
        return math.gcd(*(p.ug for p in self.pieces)) if self.pieces else 0

    @property
    def liquid_step_mg(self) -> float:
        """mg per syringe graduation of the liquid (0 without a liquid)."""
        return self.liquid.strength.value * self.resolution_ml if self.liquid else 0.0

    @property
    def smallest_mg(self) -> float:
        """The smallest positive dose these products make."""
        sizes = [p.ug / UG for p in self.pieces]
        if self.liquid:
            sizes.append(self.liquid.strength.value * self.min_ml)
        if not sizes:
            raise PlanError(f"{self.drug}: no oral tablet, capsule or liquid in the knowledge base to make doses from")
        return min(sizes)

    def solid(self, mg: float) -> tuple[Portion, ...] | None:
        """Fewest pieces (whole tablets preferred) that make exactly `mg`, or None."""
        target = ug(mg)
        if target == 0:
            return ()
        if not self.pieces or target % self.step_ug:
            return None
        return _decompose(self.drug, self.pieces, target // self.step_ug, self.step_ug)

    def make(self, mg: float) -> tuple[Portion, ...] | None:
        """Tablets for as much as they can make, the liquid for the rest (or None if impossible)."""
        exact = self.solid(mg)
        if exact is not None:
            return exact
        if self.liquid is None:
            return None
        conc = self.liquid.strength.value
        ml = mg / conc
        if abs(ml / self.resolution_ml - round(ml / self.resolution_ml)) > 1e-6:
            return None
        base = ug(mg) - ug(mg) % self.step_ug if self.step_ug else 0
        while base > 0:
            rest_ml = round((ug(mg) - base) / UG / conc, 6)
            solid = self.solid(base / UG)
            if rest_ml >= self.min_ml - 1e-9 and solid is not None and _on_grid(rest_ml, self.resolution_ml):
                return (*solid, self._liquid(rest_ml))
            base -= self.step_ug
        return (self._liquid(round(ml, 6)),) if ml >= self.min_ml - 1e-9 else None

    def _liquid(self, ml: float) -> Portion:
        assert self.liquid is not None
        f = self.liquid
        return Portion(self.drug, f.form, f.strength.value, f.strength.unit, ml=round(ml, 4))

    def nearby(self, mg: float, liquid: bool) -> list[float]:
        """The makeable doses nearest below and above `mg` (tablet grid, and liquid grid if allowed), and 0."""
        out: set[float | None] = {0.0}
        grids = [self.step_ug / UG] if self.step_ug else []
        if liquid and self.liquid:
            grids.append(self.liquid_step_mg)
        for step in grids:
            k = math.floor(mg / step + 1e-9)
            out.update((self._scan(k, -1, step), self._scan(k + 1, 1, step)))
        return sorted(x for x in out if x is not None)

    def _scan(self, k: int, direction: int, step: float) -> float | None:
        """First makeable multiple of `step` from index k going down (-1) or up (+1)."""
        for j in range(k, k + direction * SCAN_LIMIT, direction):
            if j <= 0:
                return None
            x = round(j * step, 6)
            if x >= self.smallest_mg - 1e-9 and self.make(x) is not None:
                return x
        return None


def _on_grid(value: float, step: float) -> bool:
    return abs(value / step - round(value / step)) < 1e-6


def _decompose(drug: str, pieces: tuple[Piece, ...], units: int, step: int) -> tuple[Portion, ...] | None:
    """Least-cost combination of pieces summing to `units` x `step` micrograms (small DP)."""
    sizes = [p.ug // step for p in pieces]
    best: list[float] = [0.0] + [math.inf] * units
    choice = [-1] * (units + 1)
    for total in range(1, units + 1):
        for i, size in enumerate(sizes):
            if size <= total and best[total - size] + _COST[pieces[i].fraction] < best[total]:
                best[total] = best[total - size] + _COST[pieces[i].fraction]
                choice[total] = i
    if math.isinf(best[units]):
        return None
    counts: dict[int, int] = {}
    total = units
    while total > 0:
        counts[choice[total]] = counts.get(choice[total], 0) + 1
        total -= sizes[choice[total]]
    merged: dict[tuple[str, float], float] = {}
    for i, n in counts.items():
        key = (pieces[i].form, pieces[i].strength)
        merged[key] = merged.get(key, 0.0) + n * pieces[i].fraction
    return tuple(
        Portion(drug, form, strength, "mg", count=count)
        for (form, strength), count in sorted(merged.items(), key=lambda kv: -kv[0][1])
    )


def _dedupe(formulations: list[Formulation]) -> tuple[Formulation, ...]:
    """One entry per form and strength; scored if any market's product is scored."""
    by_key: dict[tuple[str, float], Formulation] = {}
    for f in formulations:
        key = (f.form, f.strength.value)
        if key not in by_key or (f.scored and not by_key[key].scored):
            by_key[key] = f
    return tuple(by_key.values())


def stock_for(knowledge: Knowledge, drug: str, market: str | None, quarters: bool) -> Stock:
    """Products of `drug` on `market` (any market when None), with a note when we fall back."""
    d = knowledge.drug(drug)
    limits = knowledge.taper.limits
    notes: list[str] = []

    def on(market_: str | None, forms: tuple[str, ...]) -> list[Formulation]:
        return [f for f in d.formulations if f.form in forms and (market_ is None or market_ in f.markets)]

    solids = on(market, SOLID_FORMS)
    if not solids and market is not None and on(None, SOLID_FORMS):
        solids = on(None, SOLID_FORMS)
        notes.append(f"{d.name}: no tablets or capsules listed for {market}; using products from other markets")
    liquids = on(market, LIQUID_FORMS)
    if not liquids and on(None, LIQUID_FORMS):
        liquids = on(None, LIQUID_FORMS)
        if market is not None:
            notes.append(f"{d.name}: no oral liquid listed for {market}; the liquid is an import or special order")
    liquid = min(liquids, key=lambda f: f.strength.value) if liquids else None
    return Stock(
        drug=d.id,
        solids=_dedupe(solids),
        liquid=liquid,
        quarters=quarters,
        resolution_ml=limits.liquid_resolution.value * 1000,
        min_ml=limits.min_liquid_volume.value * 1000,
        notes=tuple(notes),
    )
