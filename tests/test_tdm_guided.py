"""Serum-guided taper: the plan follows the patient's levels, keeps the safety limits, and re-plans.

Expectations are independent of the code: the trajectory by hand, the safety invariants of
taper/safety.py, and the pharmacological direction a fast vs a slow eliminator must take.
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from benzotaper.cli import app
from benzotaper.knowledge import Knowledge
from benzotaper.pk import ParameterSet
from benzotaper.regimen import parse_regimens
from benzotaper.taper.plan import Plan
from benzotaper.taper.planner import PlanOptions, build_plan
from benzotaper.taper.safety import violations
from benzotaper.tdm.compare import scenario
from benzotaper.tdm.fit import fit, free_parameters, parameters_for
from benzotaper.tdm.guided import Trajectory, default_trajectory, guided_plan
from benzotaper.tdm.patient import Patient, build_patient
from benzotaper.tdm.samples import Sample
from benzotaper.tdm.service import guide_for, replan_with_levels

SIG = "diazepam 10 mg tds"
SINCE = date(2026, 1, 1)
START = date(2026, 4, 1)
runner = CliRunner()


def _patient(knowledge: Knowledge, sig: str = SIG) -> Patient:
    samples = [Sample(2, datetime(2026, 3, 25, 7, 30), "nordiazepam", 500.0, 5.0)]
    return build_patient(knowledge, samples, sig, SINCE, until=datetime.combine(START, time()))


def _params(patient: Patient, ratio: float) -> ParameterSet:
    free = free_parameters(patient)
    eta = np.array([[math.log(ratio) if f.kind == "cl" else 0.0 for f in free]])
    return parameters_for(patient.model, free, eta)


def _plan(knowledge: Knowledge, patient: Patient, ratio: float, traj: Trajectory, sig: str = SIG) -> Plan:
    regimens = parse_regimens(sig, knowledge, start=START)
    options = PlanOptions(start=START, strategy="jcpg")
    return guided_plan(knowledge, patient, _params(patient, ratio), regimens, options, traj, sig)


def test_trajectory_matches_hand_calculation() -> None:
    traj = Trajectory("level", 0.05, 0.25, 0.5, 1.25)
    assert traj.at(800.0, 2) == pytest.approx(800 * 0.95**2)
    w1 = math.log(0.25) / math.log(0.95)  # 27.03 weeks to a quarter of the start
    assert traj.at(800.0, w1) == pytest.approx(200.0)
    assert traj.at(800.0, w1 + 4) == pytest.approx(200 * 0.975**4)
    assert traj.weekly(100.0, 800.0) == pytest.approx(0.025)


def test_bad_trajectory_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 25%"):
        Trajectory("level", 0.4, 0.25, 0.5, 1.25)
    with pytest.raises(ValueError, match="trajectory must be one of"):
        default_trajectory("dose")


@pytest.mark.slow
def test_fast_and_slow_eliminators_get_different_plans(knowledge: Knowledge) -> None:
    """A slow eliminator's level lags each cut, so it gets longer steps; a fast one small weekly steps."""
    patient = _patient(knowledge)
    traj = default_trajectory()
    fast, slow = _plan(knowledge, patient, 2.5, traj), _plan(knowledge, patient, 0.35, traj)
    horizon = [s for s in fast.steps if (s.start - START).days < 84 and s.phase == "reduction"]
    slow_h = [s for s in slow.steps if (s.start - START).days < 84 and s.phase == "reduction"]
    assert np.mean([s.days for s in slow_h]) > np.mean([s.days for s in horizon])
    # the first cut: the slow eliminator must cut deeper to start its level moving
    assert slow.steps[0].diazepam_equivalent_mg < fast.steps[0].diazepam_equivalent_mg
    for plan in (fast, slow):
        assert plan.steps[-1].phase == "stop" and not plan.steps[-1].doses


@pytest.mark.slow
def test_guided_plan_keeps_weekly_falls_that_a_fixed_schedule_breaks(knowledge: Knowledge) -> None:
    """For a fast eliminator a fixed 10%/2-week schedule drops the level faster than the target; guided does not."""
    patient = _patient(knowledge)
    traj = default_trajectory()
    fitted = fit(patient)
    regimens = parse_regimens(SIG, knowledge, start=START)
    fixed = build_plan(knowledge, regimens, PlanOptions(start=START, strategy="jcpg"), SIG)
    guided = _plan(knowledge, patient, 2.5, traj)
    guide = guide_for(knowledge, patient, fitted, START, traj, time(8, 0))
    from dataclasses import replace

    fast_guide = replace(guide, params=_params(patient, 2.5))
    fixed_fast = scenario(fast_guide, fixed, "fixed", "fast", traj)
    guided_fast = scenario(fast_guide, guided, "guided", "fast", traj)
    assert fixed_fast.max_weekly_fall > traj.fall_per_week * traj.tolerance
    assert guided_fast.weeks_over_target < fixed_fast.weeks_over_target / 2


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ratio=st.floats(0.3, 3.0),
    fall=st.floats(0.02, 0.10),
    dose=st.sampled_from(["diazepam 5 mg tds", "diazepam 10 mg bd", "diazepam 15 mg tds"]),
)
def test_guided_plans_keep_the_safety_invariants(knowledge: Knowledge, ratio: float, fall: float, dose: str) -> None:
    patient = _patient(knowledge, dose)
    plan = _plan(knowledge, patient, ratio, default_trajectory("level", fall), dose)
    limits = knowledge.taper.limits
    stop = plan.parameters["stop_mg_diazepam_equivalent"]
    assert isinstance(stop, float)
    assert violations(plan, limits.max_reduction_fraction.value, 14, stop) == []
    doses = [s.diazepam_equivalent_mg for s in plan.steps]
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(doses)), "the dose never rises"
    assert doses[-1] == 0 and doses[-2] <= stop * 1.25 + 1e-9, "no abrupt stop"


@pytest.mark.slow
def test_occupancy_trajectory_plans_too(knowledge: Knowledge) -> None:
    plan = _plan(knowledge, _patient(knowledge), 1.0, default_trajectory("occupancy", 0.05))
    assert "occupancy" in plan.steps[0].rule and plan.steps[-1].phase == "stop"


@pytest.mark.slow
def test_replan_after_a_low_level_speeds_up_the_clearance_estimate(knowledge: Knowledge) -> None:
    """A level far below the plan's prediction means faster elimination: the refit moves clearance up."""
    patient = _patient(knowledge)
    traj = default_trajectory()
    first = fit(patient)
    plan = _plan(knowledge, patient, 1.0, traj)
    on = date(2026, 6, 1)
    low = Sample(3, datetime(2026, 5, 31, 7, 30), "nordiazepam", 80.0, 5.0)
    new, refit = replan_with_levels(
        knowledge, patient, plan, [*patient.samples, low], on, PlanOptions(start=START, strategy="jcpg"), traj
    )
    j = next(i for i, f in enumerate(refit.free) if f.name == "nordiazepam")
    assert refit.eta[j] > first.eta[j] + 0.1
    assert new.start == on and new.steps[-1].phase == "stop"
    assert [s.doses for s in new.steps[:3]] != [s.doses for s in plan.steps if s.start >= on][:3]


def _levels_csv(tmp_path: Path) -> Path:
    path = tmp_path / "levels.csv"
    path.write_text(
        "sampled_at,analyte,value,unit,lloq\n"
        "2026-03-01T07:30,diazepam,350,ng/mL,5\n"
        "2026-03-01T07:30,nordiazepam,500,ng/mL,5\n"
        "2026-03-20T07:30,nordiazepam,1.9,umol/L,\n",
        encoding="utf-8",
    )
    return path


def test_cli_levels_interpret_and_fit_json(tmp_path: Path) -> None:
    levels = _levels_csv(tmp_path)
    common = ["--regimen", SIG, "--since", "2026-01-01", "--json"]
    res = runner.invoke(app, ["levels", "interpret", str(levels), *common])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["samples"]
    assert len(rows) == 3
    assert {"expected", "verdict", "reasons"} <= set(rows[0])
    assert {"value", "low", "high"} <= set(rows[0]["expected"])
    assert all(r["verdict"] in ("consistent", "lower", "higher", "above_alert") for r in rows)
    # 1.9 umol/L nordiazepam = 1.9 * 270.71 = 514 ng/mL (hand calculation)
    assert rows[2]["measured"]["value"] == pytest.approx(514.3, abs=0.5)
    res = runner.invoke(app, ["levels", "fit", str(levels), *common, "--days", "14", "--target", "300"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["eliminator"] in ("fast", "typical", "slow")
    assert out["clearance_ratio"] > 0 and len(out["forecast"]) == 14
    assert {"diazepam", "nordiazepam"} <= set(out["parameters"])


def test_cli_levels_bad_input_exits_2(tmp_path: Path) -> None:
    levels = _levels_csv(tmp_path)
    res = runner.invoke(app, ["levels", "fit", str(levels), "--regimen", SIG, "--since", "1 Jan"])
    assert res.exit_code == 2 and "--since" in res.stderr
    res = runner.invoke(app, ["plan", SIG, "--guided-by", str(levels), "--start", "2026-04-01"])
    assert res.exit_code == 2 and "--since" in res.stderr


@pytest.mark.slow
def test_cli_plan_guided_by_json(tmp_path: Path) -> None:
    levels = _levels_csv(tmp_path)
    args = ["plan", SIG, "--guided-by", str(levels), "--since", "2026-01-01", "--start", "2026-04-01", "--json"]
    res = runner.invoke(app, [*args, "--strategy", "jcpg", "--level-fall", "5"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["steps"][-1]["doses"] == [] and "serum-guided" in out["steps"][0]["rule"]
    guided = out["guided"]
    assert guided["fit"]["eliminator"] in ("fast", "typical", "slow")
    assert len(guided["next_samples"]) == 3
    patients = {row["patient"] for row in guided["comparison"]}
    assert patients == {"this patient", "fast", "slow"}
    _the_daily_troughs_agree_with_the_metrics(guided["comparison"])


def _the_daily_troughs_agree_with_the_metrics(rows: list[dict[str, Any]]) -> None:
    """Each row's daily series runs from the plan's first day to 28 days after its end and agrees with its metrics."""
    assert len(rows) == 6
    for row in rows:
        assert row["start_date"] == "2026-04-01"
        dosed = (date.fromisoformat(row["end_date"]) - date.fromisoformat(row["start_date"])).days
        series = row["daily_trough_ng_ml"]
        assert len(series) == dosed + 28
        assert series[0] == pytest.approx(row["start_trough_ng_ml"], abs=0.006)
        assert series[dosed] == pytest.approx(row["trough_at_stop_ng_ml"], abs=0.006)
    # Slower clearance, higher level at the same dose: the fixed schedule is the same plan in everyone.
    fixed = {row["patient"]: row for row in rows if row["plan"].startswith("fixed")}
    assert fixed["slow"]["daily_trough_ng_ml"][0] > fixed["fast"]["daily_trough_ng_ml"][0]


def test_documented_example_file_works() -> None:
    """The README's levels example: all rows read (µmol/L converted), a fit and a verdict per sample."""
    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "levels_diazepam.csv"
    common = ["--regimen", SIG, "--since", "2026-01-05", "--json"]
    res = runner.invoke(app, ["levels", "interpret", str(example), *common])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["samples"]
    assert len(rows) == 5 and rows[3]["measured"]["value"] == pytest.approx(1.62 * 270.71, rel=1e-3)
    res = runner.invoke(app, ["levels", "fit", str(example), *common])
    assert res.exit_code == 0 and json.loads(res.stdout)["samples_used"] == 5
