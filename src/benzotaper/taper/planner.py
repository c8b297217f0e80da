"""Build a taper plan: optional substitution to a long-acting drug, then reduction to zero.

>>> from datetime import date
>>> from benzotaper.knowledge import load_knowledge
>>> k = load_knowledge()
>>> plan = plan_from_text(k, "diazepam 5 mg bd", PlanOptions(strategy="ashton", start=date(2026, 12, 1)))
>>> plan.steps[-1].doses, plan.steps[-2].diazepam_equivalent_mg
((), 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from benzotaper.errors import PlanError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.taper_rules import Preset, days
from benzotaper.regimen import Regimen, parse_regimens
from benzotaper.taper.factors import factors
from benzotaper.taper.plan import Phase, Plan, Step
from benzotaper.taper.products import stock_for
from benzotaper.taper.safety import violations
from benzotaper.taper.state import EPS, Context, Slots, clean, deq, drugs_in
from benzotaper.taper.steps import History, append_step, final_step, main_drug, preset_stop, reduce_to_stop, stop_deq
from benzotaper.taper.strategies import Reducer, d50_deq
from benzotaper.taper.substitution import substitute

SWITCH_MODES = ("auto", "stepwise", "direct", "none", "later")
FIRST_DOSE = ("evening", "morning")
LONG_PLAN_YEARS = 3.0


@dataclass(frozen=True)
class PlanOptions:
    """What the clinician chooses; None means 'the preset's own value'."""

    start: date
    strategy: str = "ashton"
    to: str | None = None
    switch: str = "auto"
    market: str | None = None
    quarters: bool = False
    substitution_days: int | None = None
    interval_days: int | None = None
    fraction: float | None = None
    amount_mg: float | None = None
    end_by: date | None = None
    override_reason: str | None = None
    first_dose: str = "evening"
    tolerance: float | None = None
    pace: float = 1.0


def plan_from_text(knowledge: Knowledge, sig: str, options: PlanOptions) -> Plan:
    """Parse a prescription ('alprazolam 2 mg tds') and plan its taper."""
    regimens = parse_regimens(sig, knowledge, start=options.start)
    return build_plan(knowledge, regimens, options, sig)


def build_plan(knowledge: Knowledge, regimens: Sequence[Regimen], options: PlanOptions, sig: str = "") -> Plan:
    """A plan for the regimens; with `end_by`, the gentlest pace that ends by that date."""
    if options.end_by is not None:
        from benzotaper.taper.deadline import fit_end_date

        return fit_end_date(knowledge, regimens, options, sig)
    return _build(knowledge, regimens, options, sig)


def preset_of(knowledge: Knowledge, name: str) -> Preset:
    """The preset called `name`, or a clear error listing the choices."""
    presets = knowledge.taper.presets
    if name not in presets:
        raise PlanError(f"strategy {name!r} is not known; choose one of {sorted(presets)}")
    return presets[name]


def _check(options: PlanOptions) -> None:
    if options.switch not in SWITCH_MODES:
        raise PlanError(f"switch must be one of {list(SWITCH_MODES)} (got {options.switch!r})")
    if options.first_dose not in FIRST_DOSE:
        raise PlanError(f"first_dose must be one of {list(FIRST_DOSE)} (got {options.first_dose!r})")
    if options.fraction is not None and not 0 < options.fraction < 1:
        raise PlanError(f"fraction must be between 0 and 1, e.g. 0.1 for 10% (got {options.fraction})")
    for name in ("interval_days", "substitution_days"):
        value = getattr(options, name)
        if value is not None and not 1 <= value <= 365:
            raise PlanError(f"{name} must be 1-365 days (got {value})")
    if options.amount_mg is not None and not options.amount_mg > 0:
        raise PlanError(f"amount_mg must be more than 0 mg (got {options.amount_mg})")
    if options.override_reason is not None and len(options.override_reason.strip()) < 10:
        raise PlanError("an override of the safety limits needs a written reason (at least 10 characters)")
    if not 0 < options.pace <= 10:
        raise PlanError(f"pace must be in (0, 10] (got {options.pace})")


def _slots(knowledge: Knowledge, regimens: Sequence[Regimen], warnings: list[str]) -> Slots:
    slots: Slots = {}
    for r in regimens:
        drug = knowledge.drug(r.drug).id
        if r.prn_mg:
            warnings.append(
                f"{r.drug}: as-needed doses ({r.prn_mg:g} mg) are not part of the plan; agree with the patient how "
                "they are replaced by the scheduled doses"
            )
        for d in r.doses:
            slots.setdefault(d.at, {})
            slots[d.at][drug] = slots[d.at].get(drug, 0.0) + d.mg
    if not slots:
        raise PlanError("the regimen has no scheduled doses to taper (as-needed use only: no taper is needed)")
    return clean(slots)


def _target(knowledge: Knowledge, preset: Preset, options: PlanOptions, drugs: list[str]) -> str | None:
    rules = knowledge.taper.substitution
    if options.switch in ("none", "later"):  # "later": only when the drug's products get too coarse
        return None
    if options.to is not None:
        target = knowledge.drug(options.to).id
        return target
    if options.switch in ("stepwise", "direct"):
        return rules.default_target
    if not preset.substitute or all(d in rules.direct_by_default for d in drugs):
        return None if len(drugs) == 1 else rules.default_target
    return rules.default_target


def _context(
    knowledge: Knowledge, options: PlanOptions, preset: Preset, drugs: list[str], target: str | None
) -> Context:
    fallback = knowledge.taper.substitution.default_target
    fx = factors(knowledge, [*drugs, *([target] if target else []), fallback], preset.table)
    stocks = {d: stock_for(knowledge, d, options.market, options.quarters) for d in fx.deq}
    limits = knowledge.taper.limits
    ctx = Context(
        knowledge=knowledge,
        fx=fx,
        stocks=stocks,
        target=target,
        max_fraction=limits.max_reduction_fraction.value,
        window_days=days(limits.reduction_window),
        stop_from_deq=limits.stop_from_diazepam_equivalent.value,
        rounding_tolerance=limits.rounding_tolerance.value,
        consolidate_below=limits.consolidate_below.value,
        override=options.override_reason,
        allow_switch=options.switch != "none",
    )
    for w in fx.warnings:
        ctx.warn(w)
    for s in stocks.values():
        for note in s.notes:
            ctx.warn(note)
    return ctx


@dataclass
class Draft:
    """A plan being built: the shared context, the steps so far and the doses of the last step."""

    preset: Preset
    options: PlanOptions
    ctx: Context
    history: History
    phases: list[Phase]
    slots: Slots
    target: str | None
    tolerance: float
    sig: str


def start_draft(knowledge: Knowledge, regimens: Sequence[Regimen], options: PlanOptions, sig: str) -> Draft:
    """Checks, context and the substitution phase (if any): everything before the reduction."""
    _check(options)
    preset = preset_of(knowledge, options.strategy)
    pre_warnings: list[str] = []
    slots = _slots(knowledge, regimens, pre_warnings)
    drugs = drugs_in(slots)
    target = _target(knowledge, preset, options, drugs)
    ctx = _context(knowledge, options, preset, drugs, target)
    for w in pre_warnings:
        ctx.warn(w)
    if target is not None and target not in knowledge.taper.substitution.targets:
        ctx.warn(
            f"{target} is not one of the usual long-acting substitutes {list(knowledge.taper.substitution.targets)}"
        )
    subst = knowledge.taper.substitution
    tolerance = (
        options.tolerance if options.tolerance is not None else knowledge.taper.limits.substitution_tolerance.value
    )
    history = History([], options.start)
    phases: list[Phase] = []
    start_deq = deq(slots, ctx.fx)
    if target is not None and any(d != target for d in drugs):
        sub_days = options.substitution_days or days(subst.step)
        moves = substitute(
            ctx, slots, target, subst.chunk.value, tolerance, options.first_dose, options.switch == "direct"
        )
        for move in moves:
            append_step(ctx, history, "substitution", move.slots, sub_days, move.rule, subst.chunk.sources)
            slots = move.slots
        if moves:
            phases.append(
                Phase(
                    "substitution",
                    options.start,
                    history.next_start - timedelta(days=1),
                    f"switch to {target}, one time-of-day dose per step, evening first; daily diazepam-equivalent "
                    f"kept within {tolerance:.0%} of {start_deq:g} mg",
                )
            )
    return Draft(preset, options, ctx, history, phases, slots, target, tolerance, sig or _describe(regimens))


def finish_draft(knowledge: Knowledge, draft: Draft, red_start: date, description: str) -> Plan:
    """The stop step, the reduction phase and the checked Plan."""
    final_step(draft.ctx, draft.history, draft.slots)
    draft.phases.append(Phase("reduction", red_start, draft.history.steps[-1].start - timedelta(days=1), description))
    return _assemble(
        knowledge,
        draft.preset,
        draft.options,
        draft.ctx,
        draft.history,
        draft.phases,
        draft.target,
        draft.tolerance,
        draft.sig,
    )


def _build(knowledge: Knowledge, regimens: Sequence[Regimen], options: PlanOptions, sig: str) -> Plan:
    draft = start_draft(knowledge, regimens, options, sig)
    reducer = _reducer(knowledge, draft.preset, options, draft.ctx, draft.slots, draft.target)
    red_start = draft.history.next_start
    interval = options.interval_days or days(draft.preset.interval)
    draft.slots = reduce_to_stop(draft.ctx, reducer, draft.slots, draft.history, interval, draft.target)
    return finish_draft(knowledge, draft, red_start, f"{draft.preset.name}: {draft.preset.description}")


def _reducer(
    knowledge: Knowledge, preset: Preset, options: PlanOptions, ctx: Context, slots: Slots, target: str | None
) -> Reducer:
    main = main_drug(ctx, slots)
    d50 = d50_deq(knowledge, main, ctx.fx.deq[main]) if preset.kind == "hyperbolic" else 0.0
    return Reducer(preset, options.fraction, options.amount_mg, options.pace, d50)


def _describe(regimens: Sequence[Regimen]) -> str:
    return " + ".join(r.sig or f"{r.drug} {r.daily_mg:g} mg/day" for r in regimens)


def _length_warning(ctx: Context, start: date, steps: list[Step]) -> None:
    years = (steps[-1].start - start).days / 365.25
    if years > LONG_PLAN_YEARS:
        ctx.warn(
            f"this plan takes {years:.1f} years; if the patient tolerates the steps, a faster pace may be agreed "
            "(tapers after long-term use often take months to years: JCPG, Ashton)"
        )


def _assemble(
    knowledge: Knowledge,
    preset: Preset,
    options: PlanOptions,
    ctx: Context,
    history: History,
    phases: list[Phase],
    target: str | None,
    tolerance: float,
    sig: str,
) -> Plan:
    _dose_warnings(ctx, history.steps)
    _length_warning(ctx, options.start, history.steps)
    if options.override_reason:
        ctx.warn(f"clinician override of the safety limits: {options.override_reason}")
    sources = [*preset.sources, *ctx.fx.sources, *(k for s in history.steps for k in s.sources)]
    params = _parameters(preset, options)
    params["stop_mg_diazepam_equivalent"] = stop = stop_deq(
        ctx, main_drug(ctx, _last_slots(history)), preset_stop(preset)
    )
    plan = Plan(
        regimen=sig,
        strategy=preset.id,
        strategy_name=preset.name,
        table=", ".join(sorted(set(ctx.fx.table.values()))),
        start=options.start,
        steps=tuple(history.steps),
        phases=tuple(phases),
        warnings=tuple(ctx.warnings),
        target=ctx.target,
        tolerance=tolerance,
        sources=tuple(dict.fromkeys(sources)),
        overrides=(options.override_reason,) if options.override_reason else (),
        parameters=params,
    )
    problems = violations(plan, ctx.max_fraction, ctx.window_days, stop)
    if problems:
        raise PlanError("the plan failed its safety check (a planner defect; please report): " + "; ".join(problems))
    return plan


def _last_slots(history: History) -> Slots:
    dosed = [s for s in history.steps if s.doses]
    return {d.time: {d.drug: d.mg} for d in dosed[-1].doses} if dosed else {}


def _parameters(preset: Preset, options: PlanOptions) -> dict[str, object]:
    return {
        "interval_days": options.interval_days or days(preset.interval),
        "fraction": options.fraction
        if options.fraction is not None
        else (preset.fraction.value if preset.fraction else None),
        "amount_mg": options.amount_mg,
        "pace": options.pace,
        "switch": options.switch,
        "market": options.market,
        "quarters": options.quarters,
        "first_dose": options.first_dose,
    }


def _dose_warnings(ctx: Context, steps: list[Step]) -> None:
    """Warn once per drug when a single dose exceeds the label's usual maximum single dose."""
    for step in steps:
        for dose in step.doses:
            q = ctx.knowledge.drug(dose.drug).dosing.usual_max_single
            if q is not None and dose.mg > q.value + EPS:
                ctx.warn(
                    f"{dose.drug}: single doses up to {max_single_in(steps, dose.drug):g} mg exceed the label's "
                    f"usual maximum single dose of {q.value:g} mg ({q.source}); common in supervised detox; "
                    "prescriber to confirm"
                )


def max_single_in(steps: list[Step], drug: str) -> float:
    """Largest single dose of `drug` anywhere in the steps."""
    return max((d.mg for s in steps for d in s.doses if d.drug == drug), default=0.0)
