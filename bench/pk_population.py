"""Population benchmark: 10,000 virtual patients, 180 days, diazepam 10 mg tds, hourly grid.

Prints wall time, points per second, and the speed ratio per patient against scipy's solve_ivp
(LSODA, tight tolerances) run in this same process on a sample of the same patients, with the
largest relative difference between the two.
"""

from __future__ import annotations

import argparse
import time
from datetime import date, datetime, timedelta

import numpy as np

from benzotaper.knowledge import load_knowledge
from benzotaper.pk import Simulator, TimeGrid, sample_population
from benzotaper.pk.ode_reference import simulate_ode
from benzotaper.regimen import expand, parse_regimens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--reference", type=int, default=20, help="patients integrated by solve_ivp")
    args = parser.parse_args()

    knowledge = load_knowledge()
    start = date(2026, 1, 1)
    origin = datetime(2026, 1, 1)
    regimens = parse_regimens("diazepam 10 mg tds", knowledge, start=start)
    events = expand(regimens, origin, origin + timedelta(days=args.days))
    typical_sim = Simulator.for_drugs(knowledge, events.drugs)
    population = sample_population(typical_sim.model, args.patients, np.random.default_rng(2026))
    grid = TimeGrid(0.0, 1.0, 24 * args.days)

    t0 = time.perf_counter()
    sim = Simulator.for_drugs(knowledge, events.drugs, population)
    curves = sim.run(events, grid)
    cold = time.perf_counter() - t0
    del curves
    t0 = time.perf_counter()
    sim = Simulator.for_drugs(knowledge, events.drugs, population)
    curves = sim.run(events, grid)
    wall = time.perf_counter() - t0
    points = curves.conc.shape[0] * curves.conc.shape[1] * curves.conc.shape[2]

    sample = np.linspace(0, args.patients - 1, args.reference).astype(int)
    doses = sim.doses(events)
    t1 = time.perf_counter()
    worst = 0.0
    for p in sample:
        ref = simulate_ode(sim.model, population, int(p), doses, grid.times)
        mask = ref > 1e-6 * ref.max()
        worst = max(worst, float(np.max(np.abs(curves.conc[p][mask] - ref[mask]) / ref[mask])))
    ode_wall = time.perf_counter() - t1
    per_patient_closed = wall / args.patients
    per_patient_ode = ode_wall / len(sample)

    print(
        f"patients: {args.patients}, days: {args.days}, doses: {len(events.time)}, "
        f"analytes: {', '.join(curves.analytes)}, grid points per patient: {grid.n}"
    )
    print(f"closed form, first run (fresh memory pages): {cold:.3f} s")
    print(
        f"closed form, second run: {wall:.3f} s wall for the population, "
        f"{points / wall / 1e6:.1f} M concentration points/s"
    )
    print(
        f"solve_ivp reference: {ode_wall:.2f} s for {len(sample)} patients ({per_patient_ode * 1e3:.1f} ms per patient)"
    )
    print(f"speed-up per patient: {per_patient_ode / per_patient_closed:,.0f}x")
    print(f"largest relative difference to solve_ivp: {worst:.2e}")


if __name__ == "__main__":
    main()
