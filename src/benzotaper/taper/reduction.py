"""One reduction step: take a diazepam-equivalent amount off the day's doses, made of real products.

The cut comes off drugs other than the main (long-acting) one first, then off the largest dose of
the day (ties: the earlier dose; the bedtime dose goes last). Each new dose is rounded to what the
products make: tablets when they come within the rounding tolerance of the asked-for step,
otherwise tablets plus oral liquid. The new total never falls below `floor` (the safety limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from benzotaper.taper.state import EPS, Context, Slots, clean, copy, deq


@dataclass(frozen=True)
class Cut:
    """The day after a reduction, and notes on how it was made."""

    slots: Slots
    notes: tuple[str, ...]


def cut_order(slots: Slots, main: str, consolidate: bool = False) -> list[tuple[str, time]]:
    """(drug, time) in the order doses are reduced: largest first, or (consolidating) smallest daytime first."""
    times = sorted(slots)
    bedtime = times[-1] if len(times) > 1 else None
    keys = [(d, t) for t in times for d in slots[t]]
    if consolidate:
        return sorted(keys, key=lambda k: (k[0] == main, k[1] == bedtime, slots[k[1]][k[0]], k[1]))
    return sorted(keys, key=lambda k: (k[0] == main, -slots[k[1]][k[0]], k[1] == bedtime, k[1]))


def reduce_once(ctx: Context, slots: Slots, target_deq: float, floor_deq: float, main: str) -> Cut | None:
    """Cut the day's doses towards `target_deq`; None if no practicable cut stays at or above `floor_deq`."""
    total = deq(slots, ctx.fx)
    remaining = total - target_deq
    new = copy(slots)
    notes: list[str] = []
    for drug, t in cut_order(slots, main, total <= ctx.consolidate_below + EPS):
        if remaining <= EPS:
            break
        have = new[t][drug]
        if ctx.fx.of(drug, have) <= remaining + EPS and deq(new, ctx.fx) - ctx.fx.of(drug, have) >= floor_deq - EPS:
            new[t][drug] = 0.0
            remaining -= ctx.fx.of(drug, have)
            continue
        chosen = _round(ctx, new, t, drug, have - ctx.fx.to_mg(drug, remaining), floor_deq, notes)
        if chosen is None:
            continue  # this dose cannot make the rest of the cut; try the next one
        new[t][drug] = chosen
        remaining = 0.0
    if deq(new, ctx.fx) >= total - EPS:
        return None
    return Cut(clean(new), tuple(notes))


def _round(ctx: Context, day: Slots, t: time, drug: str, wanted: float, floor: float, notes: list[str]) -> float | None:
    """The practicable dose for `drug` at `t` nearest `wanted`, below the current dose, keeping the total >= floor."""
    stock = ctx.stocks[drug]
    have = day[t][drug]
    others = deq(day, ctx.fx) - ctx.fx.of(drug, have)
    asked = have - wanted

    def allowed(x: float) -> bool:
        return x < have - EPS and others + ctx.fx.of(drug, x) >= floor - EPS

    solids = [x for x in stock.nearby(wanted, liquid=False) if allowed(x)]
    best = min(solids, key=lambda x: abs(x - wanted), default=None)
    if best is not None and abs(best - wanted) <= ctx.rounding_tolerance * asked + EPS:
        return best
    liquids = [x for x in stock.nearby(wanted, liquid=True) if allowed(x)]
    liquid_best = min(liquids, key=lambda x: abs(x - wanted), default=None)
    if liquid_best is not None and stock.liquid is not None:
        if liquid_best != best:
            notes.append(
                f"{drug} oral liquid {stock.liquid.strength.value:g} mg/mL used for a step tablets cannot make"
            )
        return liquid_best
    if best is not None:
        notes.append(
            f"{drug}: tablets allow only a {have - best:g} mg step here (asked {asked:.3g} mg); no oral liquid"
        )
    return best
