"""Switch a regimen to a long-acting drug one time-of-day dose at a time (the Ashton method).

Each step moves about `chunk` mg diazepam-equivalent (never more than half of one time-of-day
dose before its last part) from the current drug to the long-acting one at the same clock time,
evening dose first, keeping the daily diazepam-equivalent total within the stated tolerance. A
single dose of the long-acting drug never exceeds its maximum single dose; what cannot be moved
stays and is reduced first. A direct switch does every time of day in one step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import time

from benzotaper.taper.state import EPS, Context, Slots, clean, copy, deq

HALF = 0.5


@dataclass(frozen=True)
class Move:
    """One substitution step: the new day's doses and the reason."""

    slots: Slots
    rule: str


def slot_order(times: list[time], first: str) -> list[time]:
    """Evening (last) dose first, then the morning, then the others in clock order."""
    ordered = sorted(times)
    if first == "evening" and ordered:
        return [ordered[-1], *ordered[:-1]]
    return ordered


def max_single(ctx: Context, drug: str) -> tuple[float, str]:
    """Largest single dose of `drug` during a taper, and where the number comes from."""
    rules = ctx.knowledge.taper.substitution.max_single
    if drug in rules:
        return rules[drug].value, rules[drug].source
    dosing = ctx.knowledge.drug(drug).dosing
    if dosing.usual_max_single is not None:
        return dosing.usual_max_single.value, dosing.usual_max_single.source
    if dosing.usual_max_daily is not None:
        return dosing.usual_max_daily.value, dosing.usual_max_daily.source
    return math.inf, ""


def substitute(
    ctx: Context, slots: Slots, target: str, chunk: float, tolerance: float, first: str, direct: bool
) -> list[Move]:
    """Substitution steps from `slots` to `target`; empty if nothing needs switching."""
    start_deq = deq(slots, ctx.fx)
    original = {t: {d: mg for d, mg in doses.items() if d != target} for t, doses in slots.items()}
    cap, cap_source = max_single(ctx, target)
    moves: list[Move] = []
    current = copy(slots)
    while True:
        step = _next_move(ctx, current, original, target, chunk, tolerance, first, direct, start_deq, cap)
        if step is None:
            break
        current = step.slots
        moves.append(step)
    left: dict[str, float] = {}
    for doses in current.values():
        for d, mg in doses.items():
            if d != target:
                left[d] = left.get(d, 0.0) + mg
    if left:
        ctx.warn(
            f"substitution stops at {cap:g} mg {target} per dose (largest single dose, {cap_source}); "
            + ", ".join(f"{mg:g} mg/day {d}" for d, mg in left.items())
            + " stays and is reduced first"
        )
    if direct and moves:
        rule = f"direct switch to {target} at every time of day in one step (clinician's choice)"
        return [Move(moves[-1].slots, rule)]
    return moves


def _next_move(
    ctx: Context,
    current: Slots,
    original: dict[time, dict[str, float]],
    target: str,
    chunk: float,
    tolerance: float,
    first: str,
    direct: bool,
    start_deq: float,
    cap: float,
) -> Move | None:
    for t in slot_order(list(current), first):
        others = sorted((d for d in current.get(t, {}) if d != target), key=lambda d: -ctx.fx.of(d, current[t][d]))
        room = cap - current.get(t, {}).get(target, 0.0)
        if not others or room <= EPS:
            continue
        drug = others[0]
        limit = math.inf if direct else max(min(chunk, HALF * ctx.fx.of(drug, original[t].get(drug, 0.0))), EPS)
        moved = _move(ctx, current, t, drug, target, limit, room, tolerance, start_deq)
        if moved is not None:
            return moved
    return None


def _move(
    ctx: Context, current: Slots, t: time, drug: str, target: str, limit: float, room: float, tol: float, start: float
) -> Move | None:
    """Move up to `limit` mg diazepam-equivalent of `drug` at `t` to `target`, the best practicable way."""
    have = current[t][drug]
    src, dst = ctx.stocks[drug], ctx.stocks[target]
    wanted_left = max(have - ctx.fx.to_mg(drug, limit), 0.0)
    lefts = {x for x in src.nearby(wanted_left, liquid=False) if x < have - EPS}
    lefts |= {x for x in src.nearby(wanted_left + src.step_ug / 1000, liquid=False) if x < have - EPS}
    best: tuple[bool, float, Slots, float, float] | None = None
    base = current[t].get(target, 0.0)
    for left in sorted(lefts, key=lambda x: abs(x - wanted_left)):
        exact = base + ctx.fx.to_mg(target, ctx.fx.of(drug, have - left))
        for total in _targets(dst.nearby(exact, liquid=False), dst.nearby(exact, liquid=True)):
            if total - base > room + EPS or total <= base + EPS:
                continue
            trial = copy(current)
            trial[t][drug] = left
            trial[t][target] = total
            dev = abs(deq(trial, ctx.fx) - start) / start
            liquid = dst.solid(total) is None
            if dev <= tol + EPS and (best is None or (liquid, dev) < (best[0], best[1])):
                best = (liquid, dev, trial, left, total)
        if best is not None:
            break
    if best is None:
        return None
    _, _, trial, left, total = best
    rule = (
        f"replace {have - left:g} mg {drug} at {t:%H:%M} with {total - base:g} mg {target} "
        f"(about {ctx.fx.of(drug, have - left):g} mg diazepam-equivalent; daily total kept within "
        f"{tol:.0%} of the start)"
    )
    return Move(clean(trial), rule)


def _targets(solid: list[float], with_liquid: list[float]) -> list[float]:
    """Candidate doses of the long-acting drug: tablet-made first, then liquid-made."""
    return [*solid, *(x for x in with_liquid if x not in solid)]
