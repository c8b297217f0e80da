"""Re-planning a serum-guided plan after a score, a hold, a return or a new level; next-sample advice.

Expectations are independent of the code: the approved days before the re-plan are unchanged, the hold rule's
days and doses come from taper.toml's text (CIWA-B 21-40: pause 14 days at the current dose; 41+: return to the
previous step), the plan ends drug-free and passes taper/safety.py's invariants, and settling time is
4 half-lives by hand.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from benzotaper.cli import app
from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.taper.plan import Event, Plan
from benzotaper.taper.planner import PlanOptions
from benzotaper.taper.safety import violations
from benzotaper.tdm.advice import next_trough, settle_hours
from benzotaper.tdm.guided import default_trajectory
from benzotaper.tdm.replan_guided import original_patient, replan_guided
from benzotaper.tdm.samples import Sample
from benzotaper.tdm.service import guided_levels_plan

SIG = "alprazolam 2 mg tds"
SINCE = date(2026, 11, 30)
START = date(2026, 12, 7)
# Troughs of a patient clearing alprazolam twice as fast as typical (hand calculation in tests/web/test_loop.py).
LEVELS = [Sample(i + 1, datetime(2026, 12, 4 + i, 7, 55), "alprazolam", 12.3, None) for i in range(3)]
OPTIONS = PlanOptions(start=START, switch="later")


@lru_cache(maxsize=1)
def _approved() -> Plan:
    plan, _ = guided_levels_plan(load_knowledge(), LEVELS, SIG, SINCE, OPTIONS, default_trajectory("occupancy"))
    return plan


@pytest.fixture
def approved() -> Plan:
    return _approved()


def _daily(plan: Plan, day: date) -> dict[str, float]:
    return plan.step_on(day).daily_mg if day < plan.end_date else {}


def _safe(knowledge: Knowledge, plan: Plan) -> list[str]:
    lim = knowledge.taper.limits
    stop = plan.parameters["stop_mg_diazepam_equivalent"]
    return violations(plan, lim.max_reduction_fraction.value, 14, stop)


def test_an_alprazolam_taper_guided_by_alprazolam_levels_reaches_zero(knowledge: Knowledge, approved: Plan) -> None:
    assert approved.steps[-1].doses == () and _safe(knowledge, approved) == []
    guided = [s for s in approved.steps if s.rule.startswith("serum-guided")]
    assert guided and all(d.drug == "alprazolam" for s in guided for d in s.doses)
    # Below 1 mg the alprazolam tablets cannot make a step within 25% in 14 days: the rest is switched
    # to diazepam by the preset, and the plan says so.
    assert any("stop guiding" in w for w in approved.warnings)
    assert any(d.drug == "diazepam" for s in approved.steps for d in s.doses)


def test_never_switching_refuses_clearly_when_the_tablets_run_out(knowledge: Knowledge) -> None:
    from benzotaper.errors import PlanError

    with pytest.raises(PlanError, match="no product allows the next guided step"):
        guided_levels_plan(
            knowledge, LEVELS, SIG, SINCE, PlanOptions(start=START, switch="none"), default_trajectory("occupancy")
        )


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    offset=st.integers(min_value=3, max_value=120),
    score=st.integers(min_value=21, max_value=80),
)
def test_a_score_re_plan_keeps_the_past_holds_first_and_stays_safe(offset: int, score: int) -> None:
    knowledge, approved = load_knowledge(), _approved()
    day = START + timedelta(days=offset)
    patient = original_patient(knowledge, LEVELS, SIG, SINCE, approved, OPTIONS)
    event = Event(day=day, kind="score", instrument="ciwa_b", score=float(score))
    new, _ = replan_guided(knowledge, patient, approved, LEVELS, day, OPTIONS, default_trajectory("occupancy"), event)
    for k in range((day - START).days):  # the approved days before the event are as they were
        d = START + timedelta(days=k)
        assert _daily(new, d) == _daily(approved, d)
    hold = new.step_on(day)
    assert hold.phase == "hold" and str(score) in hold.rule
    if score <= 40:  # moderate band: pause at the dose in force for at least the rule's 14 days
        assert hold.daily_mg == approved.step_on(day).daily_mg and hold.days >= 14
    else:  # severe: back to the previous step's doses (never lower than the dose in force)
        assert sum(hold.daily_mg.values()) >= sum(approved.step_on(day).daily_mg.values())
    assert new.steps[-1].doses == () and _safe(knowledge, new) == []


def test_a_new_low_level_re_plans_from_its_day_on_every_level(knowledge: Knowledge, approved: Plan) -> None:
    patient = original_patient(knowledge, LEVELS, SIG, SINCE, approved, OPTIONS)
    on = START + timedelta(days=14)
    low = Sample(4, datetime.combine(on, time(7, 55)), "alprazolam", 6.0, None)
    new, refit = replan_guided(knowledge, patient, approved, [*LEVELS, low], on, OPTIONS, default_trajectory())
    assert len(refit.used) == 4
    assert all(_daily(new, START + timedelta(days=k)) == _daily(approved, START + timedelta(days=k)) for k in range(14))
    assert new.steps[-1].doses == () and _safe(knowledge, new) == []


def test_a_re_plan_outside_the_plan_is_refused(knowledge: Knowledge, approved: Plan) -> None:
    from benzotaper.errors import PlanError

    patient = original_patient(knowledge, LEVELS, SIG, SINCE, approved, OPTIONS)
    with pytest.raises(PlanError, match="outside the plan"):
        replan_guided(
            knowledge, patient, approved, LEVELS, approved.end_date + timedelta(days=3), OPTIONS, default_trajectory()
        )


def test_settling_takes_four_half_lives_of_the_slowest_analyte(knowledge: Knowledge) -> None:
    # Alprazolam: CL 0.05 L/h/kg and V 0.7 L/kg (70 kg) give t1/2 = ln 2 x 49 / 3.5 = 9.70 h; 4 x = 38.8 h.
    assert settle_hours(knowledge, "alprazolam 1 mg bd") == pytest.approx(4 * math.log(2) * 49 / 3.5, rel=1e-3)


def test_the_next_trough_waits_for_steady_state_and_the_morning_dose(knowledge: Knowledge) -> None:
    since = date(2026, 12, 1)
    # Started today at midnight: settled after 38.8 h (Dec 2, 14:48), so the first settled morning dose is Dec 3.
    advice = next_trough(knowledge, "alprazolam 1 mg bd", since, datetime(2026, 12, 1, 9, 0), "why")
    assert advice["at"] == "2026-12-03T08:00" and "before the morning dose" in advice["when"]
    # Long settled: the next morning.
    later = next_trough(knowledge, "alprazolam 1 mg bd", date(2025, 1, 1), datetime(2026, 12, 1, 9, 0), "why")
    assert later["at"] == "2026-12-02T08:00"


def test_the_cli_applies_events_to_a_guided_plan(tmp_path: Path) -> None:
    levels = tmp_path / "levels.csv"
    levels.write_text(
        "sampled_at,analyte,value,unit\n"
        + "".join(f"{s.sampled_at:%Y-%m-%dT%H:%M},alprazolam,{s.value},ng/mL\n" for s in LEVELS)
    )
    events = tmp_path / "events.csv"
    events.write_text("date,kind,days,instrument,score,note\n2026-12-20,score,,ciwa_b,30,restless\n")
    args = [
        "plan",
        SIG,
        "--guided-by",
        str(levels),
        "--since",
        str(SINCE),
        "--start",
        str(START),
        "--switch",
        "later",
        "--events",
        str(events),
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    hold = next(s for s in plan["steps"] if s["start"] == "2026-12-20")
    assert hold["phase"] == "hold" and hold["days"] >= 14 and "30 on 2026-12-20" in hold["rule"]
    assert plan["events"][0]["score"] == 30.0
