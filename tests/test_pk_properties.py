"""Invariants of linear kinetics, checked on random regimens (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.integrate import simpson

from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.pk import Simulator, TimeGrid
from tests import strategies as s
from tests.helpers import events, repeated

KNOWLEDGE: Knowledge = load_knowledge()
SIMS = {d: Simulator.for_drugs(KNOWLEDGE, (d,)) for d in s.SIMULATED}
GRID = TimeGrid(0.0, 0.5, 2 * 24 * 10)
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(s.drugs, s.dose_times, s.doses_mg, st.floats(min_value=0.1, max_value=10))
def test_levels_scale_linearly_with_dose(drug: str, times: list[float], mg: float, factor: float) -> None:
    sim = SIMS[drug]
    base = sim.run(events(drug, times, mg), GRID).conc
    scaled = sim.run(events(drug, times, mg * factor), GRID).conc
    np.testing.assert_allclose(scaled, base * factor, rtol=1e-9, atol=1e-12 * max(base.max(), 1.0))


@FAST
@given(s.drugs, s.dose_times, s.dose_times, s.doses_mg)
def test_levels_superpose(drug: str, first: list[float], second: list[float], mg: float) -> None:
    sim = SIMS[drug]
    a = sim.run(events(drug, first, mg), GRID).conc
    b = sim.run(events(drug, second, mg), GRID).conc
    both = sim.run(events(drug, sorted(first + second), mg), GRID).conc
    np.testing.assert_allclose(both, a + b, rtol=1e-9, atol=1e-12 * max(both.max(), 1.0))


@FAST
@given(s.drugs, s.dose_times, s.doses_mg)
def test_levels_are_never_negative(drug: str, times: list[float], mg: float) -> None:
    curves = SIMS[drug].run(events(drug, times, mg), GRID)
    assert np.all(curves.conc >= -1e-12 * max(curves.conc.max(), 1.0))
    assert np.all((curves.occupancy >= 0) & (curves.occupancy < 1))


@FAST
@given(s.drugs, s.doses_mg, s.intervals_h)
def test_steady_state_interval_auc_equals_f_dose_over_cl(drug: str, mg: float, tau: float) -> None:
    sim = SIMS[drug]
    model = sim.model
    depot = model.depots[0]
    parent = model.analytes[depot.analyte]
    t_half = max(math.log(2) * (a.v + a.vp) / a.cl for a in model.analytes)
    n = int(12 * t_half / tau) + 2
    ev = repeated(drug, mg, tau, n)
    t0 = (n - 1) * tau
    t = t0 + np.linspace(0.0, tau, 2001)
    level = sim.levels_at(ev, t)[0, depot.analyte]
    auc = float(simpson(level, x=t)) / 1000.0  # mg*h/L
    expected = depot.bioavailability * depot.mass_factor * mg / parent.cl
    assert math.isclose(auc, expected, rel_tol=2e-3)


@FAST
@given(
    st.floats(min_value=0.5, max_value=20), st.sampled_from([8.0, 12.0, 24.0]), st.floats(min_value=0.0, max_value=1.0)
)
def test_steady_state_matches_the_one_compartment_closed_form(mg: float, tau: float, phase: float) -> None:
    # Textbook accumulation (Gibaldi & Perrier): Css(t) = F D ka / (V (ka - k)) *
    # [exp(-k t) / (1 - exp(-k tau)) - exp(-ka t) / (1 - exp(-ka tau))], 0 <= t < tau.
    sim = SIMS["alprazolam"]
    depot, spec = sim.model.depots[0], sim.model.analytes[0]
    assert not spec.two_compartment and not sim.model.edges
    k, ka, f, v = spec.cl / spec.v, depot.ka, depot.bioavailability, spec.v
    n = int(30 * math.log(2) / k / tau) + 2
    t_in = phase * tau * 0.999
    level = sim.levels_at(repeated("alprazolam", mg, tau, n), np.array([(n - 1) * tau + t_in + depot.lag]))
    closed = (
        1000
        * f
        * mg
        * ka
        / (v * (ka - k))
        * (math.exp(-k * t_in) / (1 - math.exp(-k * tau)) - math.exp(-ka * t_in) / (1 - math.exp(-ka * tau)))
    )
    assert math.isclose(float(level[0, 0, 0]), closed, rel_tol=1e-6)
