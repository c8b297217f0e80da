"""One call per task, as the CLI (and later the web app) uses them: interpret, fit with forecast, guided plan."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np

from benzotaper.errors import PlanError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.tdm_rules import load_tdm_knowledge
from benzotaper.pk import model_half_life, typical
from benzotaper.regimen import parse_regimens
from benzotaper.taper.plan import Plan
from benzotaper.taper.planner import PlanOptions, build_plan
from benzotaper.tdm.compare import representatives, scenario
from benzotaper.tdm.eliminator import classify
from benzotaper.tdm.fit import Fit, exclusions, fit
from benzotaper.tdm.forecast import forecast, time_to_target, trough_times
from benzotaper.tdm.guided import Guide, Trajectory, events_before, guided_plan
from benzotaper.tdm.interpret import interpret, variability_notes
from benzotaper.tdm.patient import Patient, build_patient, regimen_history
from benzotaper.tdm.samples import Sample


def interpret_levels(knowledge: Knowledge, samples: list[Sample], sig: str, since: date) -> dict[str, Any]:
    """`levels interpret`: one entry per sample, plus notes on the model."""
    patient = build_patient(knowledge, samples, sig, since)
    rows = [i.to_dict() for i in interpret(patient, sig)]
    return {
        "regimen": sig,
        "since": str(since),
        "samples": rows,
        "notes": [*patient.notes, *variability_notes(patient)],
    }


def parameters(fitted: Fit, level: float = 0.90) -> dict[str, Any]:
    """Per analyte: typical, individual and interval of each free parameter; the fixed ones say why."""
    out: dict[str, Any] = {}
    for j, f in enumerate(fitted.free):
        lo, hi = fitted.interval(j, level)
        value = f.typical * float(np.exp(fitted.eta[j]))
        key = "clearance_l_h" if f.kind == "cl" else "volume_l"
        out.setdefault(f.name, {})[key] = {
            "typical": f.typical,
            "individual": value,
            "low": lo,
            "high": hi,
            "ratio": value / f.typical,
            "prior_cv": f.cv,
            "source": f.source,
        }
    sim = fitted.patient.simulator(fitted.params())
    for i, spec in enumerate(fitted.patient.model.analytes):
        entry = out.setdefault(spec.id, {})
        if "clearance_l_h" not in entry:
            entry["clearance_l_h"] = {"typical": spec.cl, "individual": spec.cl, "fixed": "no published variability"}
        entry["half_life_h"] = model_half_life(sim, i)
    return out


def _fit_summary(fitted: Fit) -> dict[str, Any]:
    label = classify(fitted)
    return {
        "eliminator": label.label,
        "clearance_ratio": label.clearance_ratio,
        "classification": label.to_dict(),
        "parameters": parameters(fitted),
        "samples_used": len(fitted.used),
        "rows_used": [fitted.patient.samples[j].row for j in fitted.used],
        "rows_excluded": [
            {"row": fitted.patient.samples[j].row, "reason": why} for j, why in exclusions(fitted.patient).items()
        ],
        "converged": fitted.converged,
        "objective": fitted.objective,
        "notes": list(fitted.notes),
        "sources": ["sheiner1979", "beal2001", "ich_m10"],
    }


def fit_levels(
    knowledge: Knowledge,
    samples: list[Sample],
    sig: str,
    since: date,
    days: int = 28,
    target: float | None = None,
    propose: str | None = None,
    propose_from: date | None = None,
) -> dict[str, Any]:
    """`levels fit`: MAP fit, label, forecast under the current regimen, and optionally a proposed change."""
    last = max(s.sampled_at for s in samples)
    first_day = last.date() + timedelta(days=1)
    until = datetime.combine(first_day + timedelta(days=days), time())
    patient = build_patient(knowledge, samples, sig, since)
    fitted = fit(patient)
    _, events = regimen_history(knowledge, sig, since, until, patient.samples)
    points = forecast(fitted, events, trough_times(events, first_day, days))
    out = {"regimen": sig, "since": str(since), **_fit_summary(fitted)}
    out["forecast"] = [p.to_dict() for p in points]
    out["interval"] = "90% interval from the fitted patient's parameter uncertainty (not assay error)"
    if target is not None:
        hit = time_to_target(points, target)
        out["time_to_target"] = {"target_ng_ml": target, "reached": hit.isoformat(timespec="minutes") if hit else None}
    if propose:
        out["proposal"] = _proposal(knowledge, fitted, events, propose, propose_from or first_day, until, target)
    out["notes"] = [*out["notes"], *patient.notes, *variability_notes(patient)]
    return out


def _proposal(
    knowledge: Knowledge, fitted: Fit, past: Any, sig: str, on: date, until: datetime, target: float | None
) -> dict[str, Any]:
    from benzotaper.tdm.forecast import switch_regimen

    events = switch_regimen(knowledge, past, sig, on, until)
    n = (until.date() - on).days
    points = forecast(fitted, events, trough_times(events, on, n))
    out: dict[str, Any] = {"regimen": sig, "from": str(on), "forecast": [p.to_dict() for p in points]}
    if target is not None:
        hit = time_to_target(points, target)
        out["time_to_target"] = {"target_ng_ml": target, "reached": hit.isoformat(timespec="minutes") if hit else None}
    return out


def sampling_advice(plan: Plan) -> list[dict[str, str]]:
    """Trough samples before the morning dose at the start of the next reduction steps."""
    tdm = load_tdm_knowledge()
    starts = [s for s in plan.steps[1:] if s.doses][: int(tdm.value("guided", "samples_ahead"))]
    out = []
    for step in starts:
        clock = min(d.time for d in step.doses)
        out.append(
            {
                "at": datetime.combine(step.start, clock).isoformat(timespec="minutes"),
                "when": f"{tdm.sampling_time}; before step {step.index} starts",
                "why": "the trough at the end of a step shows how far this patient's level has fallen; enter it and "
                "re-plan (the next doses are recomputed from all levels)",
                "source": tdm.sampling_source,
            }
        )
    return out


def guided_levels_plan(
    knowledge: Knowledge, samples: list[Sample], sig: str, since: date, options: PlanOptions, trajectory: Trajectory
) -> tuple[Plan, dict[str, Any]]:
    """`plan ... --guided-by levels.csv`: the guided plan and its explanation (fit, advice, comparison)."""
    until = datetime.combine(options.start, time())
    switch_to = (knowledge.drug(options.to).id if options.to else knowledge.taper.substitution.default_target,)
    patient = build_patient(knowledge, samples, sig, since, until=until, extra_drugs=switch_to)
    fitted = fit(patient)
    regimens = parse_regimens(sig, knowledge, start=options.start)
    plan = guided_plan(knowledge, patient, fitted.params(), regimens, options, trajectory, sig)
    extra = {
        "fit": _fit_summary(fitted),
        "trajectory": {
            "kind": trajectory.kind,
            "fall_per_week": trajectory.fall_per_week,
            "slow_below_fraction": trajectory.slow_below,
            "slow_factor": trajectory.slow_factor,
            "weekly_tolerance": trajectory.tolerance,
        },
        "next_samples": sampling_advice(plan),
        "comparison": comparison(knowledge, patient, fitted, plan, options, trajectory, regimens, sig),
    }
    return plan, extra


def comparison(
    knowledge: Knowledge,
    patient: Patient,
    fitted: Fit,
    guided: Plan,
    options: PlanOptions,
    trajectory: Trajectory,
    regimens: Any,
    sig: str,
) -> list[dict[str, Any]]:
    """Fixed schedule vs guided plan, each in a fast eliminator, this patient and a slow eliminator."""
    clock = min(d.at for r in regimens for d in r.doses)
    base = guide_for(knowledge, patient, fitted, options.start, trajectory, clock)
    fixed = build_plan(knowledge, regimens, replace(options, end_by=None), sig)
    people = {"this patient": fitted.params(), **representatives(base, fitted.free)}
    rows = []
    for who, params in people.items():
        g = replace(base, params=params)
        plan = (
            guided
            if who == "this patient"
            else guided_plan(knowledge, patient, params, regimens, options, trajectory, sig)
        )
        rows.append(scenario(g, fixed, f"fixed ({fixed.strategy})", who, trajectory).to_dict())
        rows.append(scenario(g, plan, "guided", who, trajectory).to_dict())
    return rows


def guide_for(
    knowledge: Knowledge, patient: Patient, fitted: Fit, start: date, trajectory: Trajectory, clock: time
) -> Guide:
    """A Guide over the doses before the plan (for scoring plans in any individual at the sampling clock)."""
    return Guide(knowledge, patient, fitted.params(), events_before(patient, start), trajectory, (7,), clock)


def replan_with_levels(
    knowledge: Knowledge,
    patient: Patient,
    plan: Plan,
    samples: list[Sample],
    on: date,
    options: PlanOptions,
    trajectory: Trajectory,
) -> tuple[Plan, Fit]:
    """A new level arrived: refit on every level with the doses actually planned so far, re-plan from `on`."""
    from benzotaper.tdm.replan_guided import regimens_of

    if not plan.start <= on <= plan.end_date:
        raise PlanError(f"re-plan date {on} is outside the plan ({plan.start} to {plan.end_date})")
    active = next(s for s in plan.steps if s.start <= on <= s.end)
    if not active.doses:
        raise PlanError(f"the plan has already stopped on {on}; nothing to re-plan")
    clipped = [replace(s, days=min(s.days, (on - s.start).days)) for s in plan.steps if s.start < on]
    guide = Guide(
        knowledge, patient, typical(patient.model), events_before(patient, plan.start), trajectory, (7,), time()
    )
    events = guide.events(clipped)
    updated = build_patient(knowledge, samples, "", patient.origin.date(), events=events)
    refit = fit(updated)
    new = guided_plan(
        knowledge,
        updated,
        refit.params(),
        regimens_of(active, on),
        replace(options, start=on),
        trajectory,
        plan.regimen,
    )
    return new, refit
