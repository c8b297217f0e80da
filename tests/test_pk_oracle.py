"""The closed-form engine against an independent ODE integration (scipy solve_ivp, LSODA)."""

from __future__ import annotations

import numpy as np
import pytest

from benzotaper.knowledge import Knowledge
from benzotaper.pk import Simulator, TimeGrid, sample_population
from benzotaper.pk.ode_reference import simulate_ode
from tests.helpers import events, repeated


def _relative_error(a: np.ndarray, b: np.ndarray) -> float:
    scale = np.max(np.abs(b))
    mask = np.abs(b) > 1e-6 * scale
    return float(np.max(np.abs(a[mask] - b[mask]) / np.abs(b[mask])))


@pytest.mark.parametrize(
    "drugs",
    [
        ("diazepam",),
        ("alprazolam",),
        ("clonazepam",),
        ("clorazepate",),
        ("lorazepam", "zolpidem"),
        ("chlordiazepoxide",),
        ("diazepam", "oxazepam"),
    ],
)
def test_closed_form_matches_the_ode_oracle(knowledge: Knowledge, drugs: tuple[str, ...]) -> None:
    rng = np.random.default_rng(7)
    sim = Simulator.for_drugs(knowledge, drugs)
    pop = sample_population(sim.model, 3, rng)
    sim = Simulator.for_drugs(knowledge, drugs, pop)
    times = sorted([8.0 + 24 * d for d in range(10)] + [20.0 + 24 * d for d in range(10)] + [13.3, 100.7])
    ev = events(drugs[0], times, 2.0)
    if len(drugs) > 1:
        extra = events(drugs[1], [22.0 + 24 * d for d in range(10)], 5.0)
        ev = type(ev)(
            ev.origin, np.concatenate([ev.time, extra.time]), np.concatenate([ev.amt, extra.amt]), ev.drug + extra.drug
        )
    grid = TimeGrid(0.0, 0.5, 24 * 2 * 12)
    curves = sim.run(ev, grid)
    doses = sim.doses(ev)
    for patient in range(3):
        ref = simulate_ode(sim.model, pop, patient, doses, grid.times)
        assert _relative_error(curves.conc[patient], ref) < 1e-6


def test_grid_and_pointwise_evaluation_agree(knowledge: Knowledge) -> None:
    sim = Simulator.for_drugs(knowledge, ("diazepam",))
    ev = repeated("diazepam", 10.0, 8.0, 40, start=3.0)
    grid = TimeGrid(0.0, 0.25, 4 * 24 * 15)
    on_grid = sim.run(ev, grid).conc
    pointwise = sim.levels_at(ev, grid.times)
    assert _relative_error(on_grid, pointwise) < 1e-9


def test_doses_before_the_grid_start_are_carried_in(knowledge: Knowledge) -> None:
    sim = Simulator.for_drugs(knowledge, ("diazepam",))
    ev = repeated("diazepam", 10.0, 24.0, 10)
    full = sim.run(ev, TimeGrid(0.0, 1.0, 24 * 12)).conc
    late = sim.run(ev, TimeGrid(100.0, 1.0, 24 * 12 - 100)).conc
    assert _relative_error(late, full[:, :, 100:]) < 1e-9


def test_predose_recurrence_matches_direct_superposition(knowledge: Knowledge) -> None:
    from benzotaper.pk.engine import concentrations_at, predose_levels

    sim = Simulator.for_drugs(knowledge, ("lorazepam", "zolpidem"))
    ev = events("lorazepam", [8.0 + 12 * k for k in range(30)], 1.0)
    ev = type(ev)(
        ev.origin, np.append(ev.time, [22.0, 46.0]), np.append(ev.amt, [10.0, 10.0]), (*ev.drug, "zolpidem", "zolpidem")
    )
    doses = sim.doses(ev)
    times, levels = predose_levels(sim.modal, doses)
    direct = concentrations_at(sim.modal, doses, times, include_simultaneous=False)
    assert _relative_error(levels, direct) < 1e-9
