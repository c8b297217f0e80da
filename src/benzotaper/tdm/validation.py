"""Parameter recovery on simulated patients: does the MAP fit find the clearance a patient really has?

Each simulated patient's true etas are drawn exactly from the fit's priors (eta ~ N(0, omega^2) for
every free parameter of `fit.free_parameters`, the others typical), the true levels come from
`Patient.predict`, the residual error from the same proportional + additive model the fit assumes,
and a level below the LLOQ is censored. Fitting every patient then gives, per free parameter, the
bias of the individual estimate (mean of MAP/true - 1 and geometric mean ratio - 1), the RMSE of
log(MAP/true), and how often the posterior interval contains the truth (coverage).

Because the data are generated from the very model that is fitted, this checks the estimator and its
Laplace intervals, not the model: a real patient differs from the population model in more ways.
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from benzotaper.errors import LevelsError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.tdm_rules import load_tdm_knowledge
from benzotaper.pk import build_model
from benzotaper.regimen import parse_regimens
from benzotaper.tdm.errormodel import error_model
from benzotaper.tdm.fit import FreeParameter, fit, free_parameters, parameters_for
from benzotaper.tdm.patient import Patient, build_patient
from benzotaper.tdm.samples import Sample

FloatArray = NDArray[np.float64]

DEFAULT_SIG = "diazepam 10 mg tds"
DEFAULT_SINCE = date(2026, 1, 1)
DEFAULT_DAYS = 90
TROUGH = time(7, 30)  # before the 08:00 dose of tds/bd/od (knowledge/data/sig.toml)


class SimulatedPatient(NamedTuple):
    """True etas (one per free parameter, in `free` order) and the levels a laboratory would report."""

    eta: FloatArray
    samples: list[Sample]


def trough_times(
    since: date = DEFAULT_SINCE, days: int = DEFAULT_DAYS, n: int = 5, at: time = TROUGH
) -> list[datetime]:
    """Trough sample times on the last `n` of `days` days of treatment started on `since`."""
    if not 0 < n <= days:
        raise ValueError(f"need 0 < n <= days (got n={n}, days={days})")
    return [datetime.combine(since + timedelta(days=days - n + k), at) for k in range(n)]


def design(
    knowledge: Knowledge,
    sig: str,
    since: date,
    sample_times: list[datetime],
    analytes: list[str],
    lloq: float | None = None,
) -> Patient:
    """The patient with one placeholder sample per (time, analyte), in time order (values are irrelevant)."""
    placeholders = [
        Sample(row, at, analyte, 1.0, lloq)
        for row, (at, analyte) in enumerate(((t, a) for t in sorted(sample_times) for a in analytes), start=2)
    ]
    return build_patient(knowledge, placeholders, sig, since)


def true_etas(free: tuple[FreeParameter, ...], n: int, rng: np.random.Generator) -> FloatArray:
    """(n, p) etas drawn from the priors N(0, omega^2)."""
    omegas = np.array([f.omega for f in free], dtype=np.float64)
    return np.asarray(rng.standard_normal((n, len(free))) * omegas, dtype=np.float64)


def observe(
    patient: Patient, eta: FloatArray, rng: np.random.Generator, outlier: bool = False
) -> tuple[FloatArray, FloatArray]:
    """(true, observed) levels (n, S) for etas (n, p): residual error drawn, one level x10 per patient if `outlier`."""
    eta = np.atleast_2d(eta)
    free = free_parameters(patient)
    truth = patient.predict(parameters_for(patient.model, free, eta))
    err = error_model(load_tdm_knowledge(), [s.lloq for s in patient.samples])
    observed = err.draw(truth, rng)
    if outlier:
        which = rng.integers(0, truth.shape[1], size=truth.shape[0])
        observed[np.arange(truth.shape[0]), which] *= 10.0
    return truth, observed


def samples_from(patient: Patient, values: FloatArray) -> list[Sample]:
    """The design's samples with these values (S,); a value below its LLOQ becomes censored."""
    out = []
    for s, y in zip(patient.samples, values, strict=True):
        censored = s.lloq is not None and y < s.lloq
        out.append(Sample(s.row, s.sampled_at, s.analyte, None if censored else float(y), s.lloq, s.last_dose_at))
    return out


def simulate_patients(
    knowledge: Knowledge,
    sig: str,
    since: date,
    sample_times: list[datetime],
    analytes: list[str],
    n: int,
    seed: int,
    lloq: float | None = None,
    outlier: bool = False,
) -> list[SimulatedPatient]:
    """n patients with etas drawn from the priors and levels with residual error, censored below `lloq`."""
    template = design(knowledge, sig, since, sample_times, analytes, lloq)
    free = free_parameters(template)
    if not free:
        raise LevelsError(f"{sig}: no free parameter (no published CV of clearance or volume) to simulate")
    rng = np.random.default_rng(seed)
    eta = true_etas(free, n, rng)
    _, observed = observe(template, eta, rng, outlier)
    return [SimulatedPatient(eta[i], samples_from(template, observed[i])) for i in range(n)]


@dataclass(frozen=True)
class ParameterRecovery:
    """How well one free parameter is recovered across the simulated patients."""

    label: str
    omega: float
    mean_relative_error: float  # mean(MAP/true) - 1
    gmr_error: float  # geometric mean ratio - 1
    rmse_log: float  # sqrt(mean(log(MAP/true)^2))
    coverage: float  # share of intervals containing the truth
    width_log: float  # mean log(high/low) of the interval
    shrinkage: float  # 1 - sd(eta_MAP)/omega


@dataclass(frozen=True)
class Recovery:
    """Recovery figures and the per-patient arrays behind them (n, p), values not etas."""

    sig: str
    level: float
    free: tuple[FreeParameter, ...]
    truth: FloatArray
    estimate: FloatArray
    low: FloatArray
    high: FloatArray
    seconds: FloatArray  # wall time of each fit (build_patient not included)
    converged: int
    at_bound: int
    parameters: tuple[ParameterRecovery, ...]

    @property
    def n(self) -> int:
        """Simulated patients fitted."""
        return int(self.truth.shape[0])

    @property
    def median_fit_ms(self) -> float:
        """Median wall time of one fit, ms."""
        return 1000.0 * float(np.median(self.seconds))

    def parameter(self, label: str) -> ParameterRecovery:
        """The figures for 'diazepam clearance' etc."""
        for p in self.parameters:
            if p.label == label:
                return p
        raise KeyError(f"{label!r} is not a free parameter here (have {[p.label for p in self.parameters]})")

    def lines(self) -> list[str]:
        """One readable line per parameter."""
        return [
            f"{p.label}: mean relative error {p.mean_relative_error:+.1%}, GMR-1 {p.gmr_error:+.1%}, "
            f"RMSE(log) {p.rmse_log:.3f}, {self.level:.0%} coverage {p.coverage:.1%}, "
            f"interval width x{np.exp(p.width_log):.2f}, shrinkage {p.shrinkage:.0%}"
            for p in self.parameters
        ]


def summarise(
    free: tuple[FreeParameter, ...], truth: FloatArray, estimate: FloatArray, low: FloatArray, high: FloatArray
) -> tuple[ParameterRecovery, ...]:
    """Bias, RMSE, coverage, width and shrinkage per parameter from (n, p) arrays of values."""
    log_ratio = np.log(estimate / truth)
    ratio = estimate / truth
    covered = (low <= truth) & (truth <= high)
    eta_map = np.log(estimate / np.array([f.typical for f in free]))
    omegas = np.array([f.omega for f in free])
    sd_map = np.std(eta_map, axis=0, ddof=1) if truth.shape[0] > 1 else np.zeros(len(free))
    return tuple(
        ParameterRecovery(
            f.label,
            f.omega,
            float(np.mean(ratio[:, j]) - 1),
            float(np.exp(np.mean(log_ratio[:, j])) - 1),
            float(np.sqrt(np.mean(np.square(log_ratio[:, j])))),
            float(np.mean(covered[:, j])),
            float(np.mean(np.log(high[:, j] / low[:, j]))),
            float(1 - sd_map[j] / omegas[j]),
        )
        for j, f in enumerate(free)
    )


def recover(
    knowledge: Knowledge, sig: str, since: date, patients: list[SimulatedPatient], level: float = 0.90
) -> Recovery:
    """Fit every simulated patient (through `build_patient`, as a real levels file would be) and score it."""
    if not patients:
        raise ValueError("no simulated patients")
    rows: list[tuple[FloatArray, FloatArray, FloatArray, FloatArray]] = []
    seconds, converged, at_bound = [], 0, 0
    free: tuple[FreeParameter, ...] = ()
    for sim in patients:
        patient = build_patient(knowledge, sim.samples, sig, since)
        t0 = clock.perf_counter()
        result = fit(patient)
        seconds.append(clock.perf_counter() - t0)
        free = result.free
        typ = np.array([f.typical for f in free])
        bounds = np.array([result.interval(j, level) for j in range(len(free))])
        rows.append((typ * np.exp(sim.eta), typ * np.exp(result.eta), bounds[:, 0], bounds[:, 1]))
        converged += result.converged
        at_bound += any("SD from typical" in note for note in result.notes)
    truth, estimate, low, high = (np.vstack([r[k] for r in rows]) for k in range(4))
    return Recovery(
        sig,
        level,
        free,
        truth,
        estimate,
        low,
        high,
        np.asarray(seconds, dtype=np.float64),
        converged,
        at_bound,
        summarise(free, truth, estimate, low, high),
    )


def recovery(
    knowledge: Knowledge,
    sig: str = DEFAULT_SIG,
    since: date = DEFAULT_SINCE,
    sample_times: list[datetime] | None = None,
    analytes: list[str] | None = None,
    n: int = 1000,
    seed: int = 2026,
    lloq: float | None = None,
    outlier: bool = False,
    level: float = 0.90,
) -> Recovery:
    """Simulate n patients on `sig` since `since` (default: 5 troughs at the end of 90 days, every analyte) and fit.

    `analytes` defaults to every simulated analyte of the regimen (diazepam and nordiazepam for diazepam).
    """
    times = sample_times if sample_times is not None else trough_times(since)
    if analytes is None:
        analytes = simulated_analytes(knowledge, sig, since)
    patients = simulate_patients(knowledge, sig, since, times, analytes, n, seed, lloq, outlier)
    return recover(knowledge, sig, since, patients, level)


def simulated_analytes(knowledge: Knowledge, sig: str, since: date = DEFAULT_SINCE) -> list[str]:
    """Every analyte the model simulates for the regimen (diazepam, nordiazepam for diazepam)."""
    drugs = [r.drug for r in parse_regimens(sig, knowledge, start=since)]
    return [a.id for a in build_model(knowledge, drugs).analytes]
