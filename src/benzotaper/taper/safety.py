"""Check a finished plan against the safety invariants, independently of how it was built.

Used as the planner's last gate and by the property tests: no cut above the limit within the
window (unless a step records a clinician override), no abrupt stop (the last dose before zero is
within one allowed step of the stop dose), doses only fall during reduction (except recorded holds and returns),
every dose made of real products, and the plan ends at zero.
"""

from __future__ import annotations

from datetime import timedelta

from benzotaper.taper.plan import Plan, Step

EPS = 1e-6


def violations(plan: Plan, max_fraction: float, window_days: int, stop_deq: float) -> list[str]:
    """Every broken invariant, as readable sentences (empty = safe)."""
    out: list[str] = []
    steps = plan.steps
    if not steps or steps[-1].doses:
        out.append("the plan does not end at zero")
        return out
    dosed = [s for s in steps if s.doses]
    if dosed and dosed[-1].diazepam_equivalent_mg > stop_deq * (1 + max_fraction) + EPS and not dosed[-1].override:
        out.append(f"abrupt stop from {dosed[-1].diazepam_equivalent_mg:g} mg (stop dose {stop_deq:g} mg)")
    out += _rate(steps, max_fraction, window_days)
    out += _monotone(steps)
    out += _made_of_products(steps)
    return out


def _rate(steps: tuple[Step, ...], max_fraction: float, window_days: int) -> list[str]:
    out = []
    for step in steps:
        if not step.doses or step.override:
            continue
        since = step.start - timedelta(days=window_days - 1)
        before = [s.diazepam_equivalent_mg for s in steps if s.start < step.start and s.end >= since]
        if before and step.diazepam_equivalent_mg < (1 - max_fraction) * max(before) - EPS:
            out.append(
                f"step {step.index} ({step.start}): {step.diazepam_equivalent_mg:g} mg is more than "
                f"{max_fraction:.0%} below {max(before):g} mg within {window_days} days"
            )
    return out


def _monotone(steps: tuple[Step, ...]) -> list[str]:
    out = []
    previous: Step | None = None
    for step in steps:
        if step.phase != "reduction":
            previous = None if step.phase == "hold" else previous
            continue
        if previous is not None and step.diazepam_equivalent_mg > previous.diazepam_equivalent_mg + EPS:
            out.append(f"step {step.index} raises the dose during reduction without a recorded hold or return")
        previous = step
    return out


def _made_of_products(steps: tuple[Step, ...]) -> list[str]:
    out = []
    for step in steps:
        for dose in step.doses:
            made = sum(p.mg for p in dose.portions)
            if not dose.portions or abs(made - dose.mg) > 1e-4:
                out.append(f"step {step.index}: {dose.drug} {dose.mg:g} mg at {dose.time} is not made of products")
            for p in dose.portions:
                if p.unit == "mg" and (p.count * 4) % 1:
                    out.append(f"step {step.index}: {p.count} x {p.product} is not a whole, half or quarter")
    return out
