"""Re-planning a serum-guided plan: after a new level, a withdrawal score, a hold or a return.

The days before the re-plan stay as approved. A score or hold first holds (or returns to the previous
step's doses) for the days its rule gives (taper.toml), more slowly afterwards if the rule says so. The
rest is re-planned by the guided planner from every level, refitted on the doses actually planned so
far, so the new schedule continues from this patient's current state. The result is one whole plan
from the original start, so two versions can be compared day by day.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

from benzotaper.errors import PlanError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.taper_rules import days
from benzotaper.pk import typical
from benzotaper.regimen import Regimen, ScheduledDose
from benzotaper.taper.plan import Event, Plan, Step
from benzotaper.taper.planner import PlanOptions
from benzotaper.taper.replan import action_for, check_event, split_at
from benzotaper.taper.safety import violations
from benzotaper.tdm.fit import Fit, fit
from benzotaper.tdm.guided import Guide, Trajectory, events_before, guided_plan
from benzotaper.tdm.patient import Patient, build_patient
from benzotaper.tdm.samples import Sample


def original_patient(
    knowledge: Knowledge, samples: list[Sample], sig: str, since: date, plan: Plan, options: PlanOptions
) -> Patient:
    """The patient as the guided plan was first built: the regimen since `since`, the levels before the plan."""
    before = [s for s in samples if s.sampled_at.date() <= plan.start]
    if not before:
        raise PlanError("the guided plan's levels are missing: no level was taken before the plan started")
    switch_to = (knowledge.drug(options.to).id if options.to else knowledge.taper.substitution.default_target,)
    until = datetime.combine(plan.start, time())
    return build_patient(knowledge, before, sig, since, until=until, extra_drugs=switch_to)


def regimens_of(step: Step, on: date) -> list[Regimen]:
    """A step's doses as regimens starting on `on` (what a re-plan continues from)."""
    drugs = dict.fromkeys(d.drug for d in step.doses)
    return [
        Regimen(drug, tuple(ScheduledDose(d.time, d.mg) for d in step.doses if d.drug == drug), start=on)
        for drug in drugs
    ]


def _refit(
    knowledge: Knowledge, patient: Patient, plan: Plan, steps: list[Step], samples: list[Sample], traj: Trajectory
) -> Fit:
    """All levels refitted with the doses the plan gave (not the regimen on paper)."""
    guide = Guide(knowledge, patient, typical(patient.model), events_before(patient, plan.start), traj, (7,), time())
    events = guide.events(steps)
    drugs = tuple(d.drug for d in patient.model.depots)
    return fit(build_patient(knowledge, samples, "", patient.origin.date(), events=events, extra_drugs=drugs))


def _checked(knowledge: Knowledge, plan: Plan) -> Plan:
    """The spliced plan passes the same final safety check as every plan (limits across the splice too)."""
    limits = knowledge.taper.limits
    stop = float(plan.parameters.get("stop_mg_diazepam_equivalent", limits.stop_from_diazepam_equivalent.value))
    problems = violations(plan, limits.max_reduction_fraction.value, days(limits.reduction_window), stop)
    if problems:
        raise PlanError("the re-plan failed its safety check (a planner defect; please report): " + "; ".join(problems))
    return plan


def _splice(plan: Plan, kept: list[Step], new: Plan, event: Event | None, extra: list[Step]) -> Plan:
    """Steps before the re-plan, any hold, then the new plan's steps, numbered again, as one plan."""
    steps = [*kept, *extra, *new.steps]
    numbered = tuple(replace(s, index=i) for i, s in enumerate(steps))
    events = (*plan.events, event) if event is not None else plan.events
    warnings = tuple(dict.fromkeys((*plan.warnings, *new.warnings)))
    phases = tuple(p for p in plan.phases if p.end < new.start) + new.phases
    return replace(new, start=plan.start, steps=numbered, events=events, warnings=warnings, phases=phases)


def replan_guided(
    knowledge: Knowledge,
    patient: Patient,
    plan: Plan,
    samples: list[Sample],
    on: date,
    options: PlanOptions,
    trajectory: Trajectory,
    event: Event | None = None,
) -> tuple[Plan, Fit]:
    """The guided plan re-planned from `on` (or from the event's day), with the event's hold applied first."""
    if event is not None:
        check_event(plan, event)
        on = event.day
    if not plan.start <= on < plan.end_date:
        raise PlanError(f"re-plan date {on} is outside the plan's dosing days ({plan.start} to {plan.end_date})")
    marker = event or Event(day=on, kind="hold")
    kept, in_force, previous = split_at(plan, marker)
    extra: list[Step] = []
    doses, resume = in_force, on
    if event is not None:
        act = action_for(knowledge, event)
        if act.kind != "none":
            doses = previous if act.kind == "return" and previous is not None else in_force
            hold_days = act.days + ((in_force.end - on).days + 1 if act.kind == "hold" else 0)
            note = f"{act.reason}; {event.note}" if event.note else act.reason
            extra.append(
                replace(
                    doses,
                    index=0,
                    phase="hold",
                    start=on,
                    days=max(hold_days, 1),
                    rule=note,
                    sources=act.sources,
                    warnings=(),
                    override=None,
                )
            )
            resume = on + timedelta(days=max(hold_days, 1))
            trajectory = replace(trajectory, fall_per_week=trajectory.fall_per_week * act.slow_factor)
    if not doses.doses:
        raise PlanError(f"the plan has already stopped on {on}; nothing to re-plan")
    usable = [s for s in samples if s.sampled_at.date() <= resume]
    refit = _refit(knowledge, patient, plan, [*kept, *extra], usable, trajectory)
    new = guided_plan(
        knowledge,
        refit.patient,
        refit.params(),
        regimens_of(doses, resume),
        replace(options, start=resume),
        trajectory,
        plan.regimen,
    )
    return _checked(knowledge, _splice(plan, kept, new, event, extra)), refit
