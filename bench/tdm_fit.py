"""Benchmark and validation of serum-level monitoring (tdm): MAP fit and interpretation speed, parameter recovery.

1. Speed. Targets: one MAP fit of 5 trough levels of diazepam and nordiazepam over a 90-day history of
   diazepam 10 mg tds in under 20 ms; one `interpret` of one level in under 50 ms. The baselines, run in
   the same process, are one PK prediction of the same samples for the typical patient (fit) and for
   the interpretation's virtual population (interpret), so the ratios say how many PK evaluations each
   costs. No timed asserts: the figures are printed.
2. Validation. 1,000 patients simulated from the priors (tdm/validation.py), fitted one by one: bias of
   the individual clearance (mean of MAP/true - 1 and geometric mean ratio - 1), RMSE of log(MAP/true),
   coverage of the 90% interval, with 1 and with 5 trough samples, for diazepam and alprazolam.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.knowledge.tdm_rules import load_tdm_knowledge
from benzotaper.pk import sample_population, typical
from benzotaper.tdm import validation as V
from benzotaper.tdm.fit import fit
from benzotaper.tdm.interpret import interpret
from benzotaper.tdm.patient import build_patient
from timing import median_s

REPEATS = 21
CASES = (("diazepam 10 mg tds", "diazepam clearance"), ("alprazolam 1 mg tds", "alprazolam clearance"))


def speed(k: Knowledge) -> None:
    (sim,) = V.simulate_patients(
        k, V.DEFAULT_SIG, V.DEFAULT_SINCE, V.trough_times(n=5), ["diazepam", "nordiazepam"], 1, seed=1
    )
    patient = build_patient(k, sim.samples, V.DEFAULT_SIG, V.DEFAULT_SINCE)
    t_fit = median_s(lambda: fit(patient), REPEATS)
    t_build_fit = median_s(lambda: fit(build_patient(k, sim.samples, V.DEFAULT_SIG, V.DEFAULT_SINCE)), REPEATS)
    typ = typical(patient.model)
    t_pred = median_s(lambda: patient.predict(typ), REPEATS)
    print(
        f"MAP fit, {len(patient.samples)} levels (5 troughs x diazepam + nordiazepam), {len(patient.events.time)} "
        f"doses over 90 days: {1000 * t_fit:.1f} ms (target < 20 ms); with build_patient {1000 * t_build_fit:.1f} ms"
    )
    print(f"  baseline one typical-patient prediction {1000 * t_pred:.2f} ms; ratio {t_fit / t_pred:.0f}")

    one = build_patient(k, sim.samples[:1], V.DEFAULT_SIG, V.DEFAULT_SINCE)
    t_int = median_s(lambda: interpret(one), REPEATS)
    tdm = load_tdm_knowledge()
    draws = int(tdm.value("interpret", "population_draws"))
    population = sample_population(one.model, draws, np.random.default_rng(0))
    t_pop = median_s(lambda: one.predict(population), REPEATS)
    print(f"interpret one level: {1000 * t_int:.1f} ms (target < 50 ms)")
    print(f"  baseline prediction for the {draws} virtual patients {1000 * t_pop:.1f} ms; ratio {t_int / t_pop:.1f}")


def validation(k: Knowledge, patients: int) -> None:
    for sig, label in CASES:
        for troughs in (1, 5):
            t0 = time.perf_counter()
            r = V.recovery(k, sig, V.DEFAULT_SINCE, V.trough_times(n=troughs), n=patients, seed=2026)
            wall = time.perf_counter() - t0
            levels = len(V.simulated_analytes(k, sig)) * troughs
            print(
                f"{sig}: {r.n} simulated patients, {troughs} trough(s) at 07:30 ({levels} levels); "
                f"median fit {r.median_fit_ms:.1f} ms, {wall:.1f} s in all; converged {r.converged}/{r.n}, "
                f"at a bound {r.at_bound}"
            )
            for line in r.lines():
                mark = "  *" if line.startswith(label) else "   "
                print(f"{mark} {line}")
            cl = r.parameter(label)
            verdict = "ok" if abs(cl.gmr_error) < 0.10 and 0.85 <= cl.coverage <= 0.95 else "OUTSIDE TARGET"
            print(f"    {label}: |bias| < 10% and coverage 85-95%: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=1000, help="simulated patients per design")
    args = parser.parse_args()
    k = load_knowledge()
    speed(k)
    validation(k, args.patients)


if __name__ == "__main__":
    main()
