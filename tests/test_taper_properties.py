"""Safety invariants of every plan, over random regimens and strategies (hypothesis).

The checks are written here from the rules (JCPG 25% in 2 weeks, no abrupt stop, real products,
substitution within tolerance), not by calling the planner's own safety module.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benzotaper.errors import PlanError
from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.regimen import Regimen, ScheduledDose
from benzotaper.taper.plan import Plan
from benzotaper.taper.planner import PlanOptions, build_plan

START = date(2026, 12, 1)
K = load_knowledge()  # module level: hypothesis would print a fixture's huge repr on failure
TIMES = [time(8), time(13), time(18), time(22)]
# drug -> whole-tablet strengths a patient may already take (each exists in the knowledge base)
TAKEN = {
    "alprazolam": [0.25, 0.5, 1.0, 2.0],
    "lorazepam": [0.5, 1.0, 2.0],
    "clonazepam": [0.5, 1.0, 2.0],
    "diazepam": [2.0, 5.0, 10.0],
    "temazepam": [10.0, 20.0],
    "zopiclone": [3.75, 7.5],
    "zolpidem": [5.0, 10.0],
    "oxazepam": [10.0, 15.0, 30.0],
    "nitrazepam": [5.0],
}


@st.composite
def regimens(draw: st.DrawFn) -> list[Regimen]:
    n_drugs = draw(st.integers(1, 2))
    names = draw(st.lists(st.sampled_from(sorted(TAKEN)), min_size=n_drugs, max_size=n_drugs, unique=True))
    out = []
    for name in names:
        times = draw(st.lists(st.sampled_from(TIMES), min_size=1, max_size=3, unique=True))
        doses = tuple(
            ScheduledDose(t, draw(st.sampled_from(TAKEN[name])) * draw(st.integers(1, 2))) for t in sorted(times)
        )
        out.append(Regimen(name, doses, START))
    return out


options = st.builds(
    PlanOptions,
    start=st.just(START),
    strategy=st.sampled_from(["ashton", "nice_cks", "jcpg", "maudsley", "deprescribing_org", "standard", "fast"]),
    switch=st.sampled_from(["auto", "stepwise", "direct", "none"]),
    quarters=st.booleans(),
)


def _deq(knowledge: Knowledge, plan: Plan, drug: str, mg: float) -> float:
    """Diazepam-equivalent by the plan's table for this drug (independent conversion)."""
    eq = knowledge.drug(drug).equivalence
    assert eq is not None
    tables = [t.strip() for t in plan.table.split(",")]
    table = next((t for t in tables if t in eq.tables), eq.default_table)
    return mg * 10.0 / eq.tables[table].value


def _check_products(knowledge: Knowledge, plan: Plan, quarters: bool) -> None:
    for step in plan.steps:
        for dose in step.doses:
            assert dose.portions, f"step {step.index}: {dose} has no products"
            assert sum(p.mg for p in dose.portions) == pytest.approx(dose.mg, abs=1e-6)
            drug = knowledge.drug(dose.drug)
            for p in dose.portions:
                match = [
                    f for f in drug.formulations if f.form == p.form and f.strength.value == pytest.approx(p.strength)
                ]
                assert match, f"{p.product} is not a product in the knowledge base"
                if p.unit == "mg/mL":
                    assert round(p.ml * 10, 6) % 1 == 0 and p.ml >= 0.5
                    continue
                whole = p.count % 1 == 0
                half_ok = any(f.scored for f in match) and (p.count * 2) % 1 == 0
                quarter_ok = quarters and any(f.scored for f in match) and (p.count * 4) % 1 == 0
                assert whole or half_ok or quarter_ok, f"{p.count} x {p.product}: split not allowed"


def _check_rate_and_stop(plan: Plan) -> None:
    steps = plan.steps
    assert not steps[-1].doses, "a plan ends at zero"
    for step in steps[:-1]:
        assert step.doses, "no dose-free step before the end"
        window = step.start - timedelta(days=13)
        before = [s.diazepam_equivalent_mg for s in steps if s.start < step.start and s.end >= window]
        if before:
            assert step.diazepam_equivalent_mg >= 0.75 * max(before) - 1e-6, f"step {step.index} cuts > 25% in 2 weeks"
    last = steps[-2].diazepam_equivalent_mg
    assert last <= 1.25 * max(1.0, plan.parameters["stop_mg_diazepam_equivalent"]) + 1e-6, f"abrupt stop from {last}"  # type: ignore[operator]


def _check_monotone(plan: Plan) -> None:
    red = [s.diazepam_equivalent_mg for s in plan.steps if s.phase == "reduction"]
    assert all(b <= a + 1e-6 for a, b in pairwise(red))


def _check_substitution(knowledge: Knowledge, plan: Plan, regimen: list[Regimen]) -> None:
    first = sum(_deq(knowledge, plan, r.drug, d.mg) for r in regimen for d in r.doses)
    for step in plan.steps:
        if step.phase != "substitution":
            break
        total = sum(_deq(knowledge, plan, d.drug, d.mg) for d in step.doses)
        assert step.diazepam_equivalent_mg == pytest.approx(total, rel=1e-6)
        assert abs(total - first) <= plan.tolerance * first + 0.01 * first, "substitution keeps the equivalent dose"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(regimen=regimens(), opts=options)
def test_every_plan_is_safe(regimen: list[Regimen], opts: PlanOptions) -> None:
    try:
        plan = build_plan(K, regimen, opts)
    except PlanError as exc:  # only the documented refusal is allowed, with its advice
        assert "override" in str(exc) or "switch" in str(exc).lower()
        return
    _check_rate_and_stop(plan)
    _check_products(K, plan, opts.quarters)
    _check_monotone(plan)
    if plan.steps[0].phase == "substitution":
        assert plan.target is not None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(regimen=regimens())
def test_substitution_keeps_the_equivalent_dose(regimen: list[Regimen]) -> None:
    plan = build_plan(K, regimen, PlanOptions(start=START, strategy="ashton", switch="stepwise"))
    _check_substitution(K, plan, regimen)
    steps = [s for s in plan.steps if s.phase == "substitution"]
    for a, b in pairwise(steps):
        assert (b.start - a.start).days == 7, "each crossover step is held one week"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(regimen=regimens(), weeks=st.integers(30, 150))
def test_end_date_is_met_or_refused(regimen: list[Regimen], weeks: int) -> None:
    deadline = START + timedelta(weeks=weeks)
    try:
        plan = build_plan(K, regimen, PlanOptions(start=START, strategy="standard", end_by=deadline))
    except PlanError as exc:
        assert "no " in str(exc) or "override" in str(exc)
        return
    assert plan.end_date <= deadline
    _check_rate_and_stop(plan)
