"""Worked examples: plans checked against the published schedules and guideline figures they follow.

Expected numbers come from ../shared/reference/clinical_facts.md (Ashton Schedules 1-3 as parsed
from the Manual; NICE CKS durations), not from the planner's output.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from itertools import pairwise

import pytest

from benzotaper.errors import PlanError
from benzotaper.knowledge import Knowledge
from benzotaper.regimen import parse_regimens
from benzotaper.taper.levels import plan_curves, step_levels
from benzotaper.taper.plan import Event, Plan
from benzotaper.taper.planner import PlanOptions, plan_from_text
from benzotaper.taper.products import stock_for
from benzotaper.taper.replan import replan

START = date(2026, 12, 1)
AM, NIGHT = time(8), time(20)


def _plan(knowledge: Knowledge, sig: str, **kw: object) -> Plan:
    return plan_from_text(knowledge, sig, PlanOptions(start=START, **kw))  # type: ignore[arg-type]


def _by_time(step: object, drug: str) -> dict[time, float]:
    return {d.time: d.mg for d in step.doses if d.drug == drug}  # type: ignore[attr-defined]


def test_ashton_schedule_2_diazepam_40mg(knowledge: Knowledge) -> None:
    """Schedule 2: AM/night pairs 18/20, 18/18, ... 6/8, then the morning dose goes first, 1 mg at a time."""
    ashton = [
        (18, 20),
        (18, 18),
        (16, 18),
        (16, 16),
        (14, 16),
        (14, 14),
        (12, 14),
        (12, 12),
        (10, 12),
        (10, 10),
        (8, 10),
        (8, 8),
        (6, 8),
        (5, 8),
        (4, 8),
        (3, 8),
        (2, 8),
        (1, 8),
        (0, 8),
        (0, 7),
        (0, 6),
        (0, 5),
        (0, 4),
    ]
    plan = _plan(knowledge, "diazepam 20 mg bd", strategy="ashton")
    pairs = [(_by_time(s, "diazepam").get(AM, 0.0), _by_time(s, "diazepam").get(NIGHT, 0.0)) for s in plan.steps]
    assert pairs[: len(ashton)] == [(float(a), float(b)) for a, b in ashton]
    assert plan.steps[-1].doses == () and plan.steps[-2].diazepam_equivalent_mg == 1.0  # stops from 1 mg
    assert all(s.days == 14 for s in plan.steps[:-1])  # 1-2 weeks per stage; the gentle end


def test_ashton_schedule_1_alprazolam_6mg(knowledge: Knowledge) -> None:
    """Schedule 1: night dose converted first at 0.5 mg alprazolam = 10 mg diazepam, 1 week per crossover
    step, total held at 120 mg; then 10 mg cuts 110, 100, 90, 80, 70 while alprazolam is withdrawn."""
    plan = _plan(knowledge, "alprazolam 6 mg/day in 3 doses", strategy="ashton")
    assert plan.table == "ashton"
    first = plan.steps[0]
    night = max(d.time for d in first.doses)
    assert _by_time(first, "diazepam") == {night: 10.0} and _by_time(first, "alprazolam")[night] == 1.5
    subst = [s for s in plan.steps if s.phase == "substitution"]
    assert all(s.days == 7 and s.diazepam_equivalent_mg == 120.0 for s in subst)
    reductions = [s.diazepam_equivalent_mg for s in plan.steps if s.phase == "reduction"]
    assert reductions[:5] == [110.0, 100.0, 90.0, 80.0, 70.0]
    assert all(max(d.mg for d in s.doses if d.drug == "diazepam") <= 20 for s in plan.steps if s.doses)
    gone = next(s for s in plan.steps if "alprazolam" not in s.daily_mg)
    assert gone.diazepam_equivalent_mg <= 70  # alprazolam is withdrawn before the diazepam taper


def test_ashton_schedule_3_lorazepam_6mg(knowledge: Knowledge) -> None:
    """Schedule 3: 1 mg lorazepam = 10 mg diazepam; night first; total 60 mg through the crossover."""
    plan = _plan(knowledge, "lorazepam 2 mg tds", strategy="ashton")
    subst = [s for s in plan.steps if s.phase == "substitution"]
    assert subst and all(s.diazepam_equivalent_mg == 60.0 for s in subst)
    night = max(d.time for d in subst[0].doses)
    assert set(_by_time(subst[0], "diazepam")) == {night}
    assert set(subst[-1].daily_mg) == {"diazepam"}  # fully switched before reducing


def test_nice_cks_durations(knowledge: Knowledge) -> None:
    """CKS: from 40 mg/day about 30-60 weeks, from 20 mg/day 20-40 weeks (steps every 1-2 weeks)."""
    weekly40 = _plan(knowledge, "diazepam 20 mg bd", strategy="nice_cks", interval_days=7)
    weekly20 = _plan(knowledge, "diazepam 10 mg bd", strategy="nice_cks", interval_days=7)
    assert 30 <= (weekly40.end_date - START).days / 7 <= 60
    assert 20 <= (weekly20.end_date - START).days / 7 <= 40


def test_jcpg_first_reductions_are_10_percent_every_2_weeks(knowledge: Knowledge) -> None:
    plan = _plan(knowledge, "diazepam 20 mg bd", strategy="jcpg")
    d = [s.diazepam_equivalent_mg for s in plan.steps[:4]]
    assert d[1] / d[0] == pytest.approx(0.9, abs=0.03) and plan.steps[1].start - plan.steps[0].start == timedelta(14)


def test_hyperbolic_steps_shrink_as_the_dose_falls(knowledge: Knowledge) -> None:
    plan = _plan(knowledge, "diazepam 20 mg bd", strategy="maudsley")
    doses = [s.diazepam_equivalent_mg for s in plan.steps if s.doses]
    cuts = [a - b for a, b in pairwise(doses)]
    assert cuts[0] > cuts[len(cuts) // 2] > cuts[-1]


def test_deprescribing_org_tapers_directly(knowledge: Knowledge) -> None:
    plan = _plan(knowledge, "temazepam 20 mg nocte", strategy="deprescribing_org")
    assert plan.target is None and plan.steps[0].daily_mg == {"temazepam": 15.0}  # 25% of the current dose
    coarse = _plan(knowledge, "zopiclone 7.5 mg nocte", strategy="deprescribing_org")
    assert coarse.target == "diazepam" and any("switched to diazepam" in w for w in coarse.warnings)


def test_liquid_when_tablets_cannot_make_the_step(knowledge: Knowledge) -> None:
    plan = _plan(knowledge, "diazepam 2 mg nocte", strategy="standard")
    liquids = [p for s in plan.steps for d in s.doses for p in d.portions if p.unit == "mg/mL"]
    assert liquids and all(p.drug == "diazepam" for p in liquids)


def test_unknown_scoring_means_no_halves(knowledge: Knowledge) -> None:
    stock = stock_for(knowledge, "lorazepam", "US", quarters=False)
    assert stock.solid(0.25) is None  # no scored US lorazepam tablet: no halves of 0.5 mg
    diazepam = stock_for(knowledge, "diazepam", "UK", quarters=False)
    made = diazepam.solid(1.0)
    assert made is not None and made[0].count == 0.5 and made[0].strength == 2.0  # scored 2 mg (PrescQIPP)


def test_target_end_date(knowledge: Knowledge) -> None:
    deadline = date(2028, 1, 1)
    plan = _plan(knowledge, "alprazolam 2 mg tds", strategy="standard", end_by=deadline)
    assert plan.end_date <= deadline
    slower = _plan(knowledge, "alprazolam 2 mg tds", strategy="standard", end_by=deadline + timedelta(days=180))
    assert slower.end_date > plan.end_date  # a later date gives a gentler plan
    with pytest.raises(PlanError, match="no .* ends by"):
        _plan(knowledge, "alprazolam 2 mg tds", strategy="standard", end_by=date(2027, 3, 1))


def test_override_is_recorded(knowledge: Knowledge) -> None:
    reason = "inpatient detox, supervised"
    plan = _plan(knowledge, "diazepam 10 mg bd", strategy="fast", pace=3.0, override_reason=reason)
    assert plan.overrides and any(s.override for s in plan.steps)
    with pytest.raises(PlanError, match="written reason"):
        _plan(knowledge, "diazepam 10 mg bd", override_reason="x")


def test_severe_ciwab_goes_back_a_step_and_slows(knowledge: Knowledge) -> None:
    options = PlanOptions(start=START, strategy="ashton")
    regimens = parse_regimens("diazepam 20 mg bd", knowledge, start=START)
    base = replan(knowledge, regimens, options, [])
    day = base.steps[3].start + timedelta(days=3)
    after = replan(knowledge, regimens, options, [Event(day, "score", instrument="ciwa_b", score=45)])
    hold = next(s for s in after.steps if s.phase == "hold")
    assert hold.start == day and hold.diazepam_equivalent_mg == base.steps[2].diazepam_equivalent_mg
    assert after.end_date > base.end_date
    mild = replan(knowledge, regimens, options, [Event(day, "score", instrument="ciwa_b", score=5)])
    assert mild.end_date == base.end_date


def test_hold_extends_the_plan(knowledge: Knowledge) -> None:
    options = PlanOptions(start=START, strategy="ashton")
    regimens = parse_regimens("diazepam 5 mg bd", knowledge, start=START)
    base = replan(knowledge, regimens, options, [])
    held = replan(knowledge, regimens, options, [Event(base.steps[2].start, "hold", days=28)])
    assert held.end_date == base.end_date + timedelta(days=28)


def test_crossover_levels_are_predicted(knowledge: Knowledge) -> None:
    plan = _plan(knowledge, "alprazolam 2 mg tds", strategy="ashton")
    levels = step_levels(plan, plan_curves(knowledge, plan))
    assert len(levels) == len(plan.steps) - 1
    assert all(0 < lv.occupancy < 1 and lv.trough_ng_ml <= lv.mean_ng_ml for lv in levels)
