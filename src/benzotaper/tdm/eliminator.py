"""Fast, typical or slow eliminator: the individual's apparent clearance of the active moiety vs the population.

Apparent clearance = dose rate / mean diazepam-equivalent level at steady state on the patient's own
regimen, so a diazepam patient is judged on diazepam + nordiazepam together. The ratio to the
typical patient is `clearance_ratio`; its centile among virtual patients drawn from the same priors
gives the label (tdm.toml: below the 20th centile slow, above the 80th fast).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from benzotaper.knowledge.tdm_rules import load_tdm_knowledge
from benzotaper.pk import ParameterSet, modal, sample_population, typical
from benzotaper.tdm.fit import Fit
from benzotaper.tdm.patient import Patient

FloatArray = NDArray[np.float64]
_DRAWS = 400


def _dose_rates(patient: Patient) -> FloatArray:
    """mg per hour of each depot's drug over the history (its mix decides the weighting)."""
    span = max(float(patient.events.time.max() - patient.events.time.min()), 24.0)
    rates = np.zeros(len(patient.model.depots))
    np.add.at(rates, patient.doses.depot, patient.doses.amount)
    return rates / span


def apparent_clearance(patient: Patient, params: ParameterSet) -> FloatArray:
    """(n,) dose rate / steady-state mean diazepam-equivalent level, in L/h-like units (mg/h per ng/mL x 1000)."""
    auc = modal(patient.model, params).auc_per_mg()  # (n, I, D) ng*h/mL per mg
    weights = patient.deq_weights if patient.deq_weights.any() else np.ones(len(patient.model.analytes))
    rates = _dose_rates(patient)
    level = np.einsum("nid,i,d->n", auc, weights, rates)  # ng/mL mean level
    return np.asarray(1000.0 * rates.sum() / np.maximum(level, 1e-300), dtype=np.float64)


@dataclass(frozen=True)
class Eliminator:
    """The label with the numbers behind it."""

    label: str
    clearance_ratio: float
    ratio_interval: tuple[float, float]
    centile: float
    centile_interval: tuple[float, float]
    thresholds: tuple[float, float]
    sources: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON form."""
        return {
            "label": self.label,
            "clearance_ratio": self.clearance_ratio,
            "clearance_ratio_interval": list(self.ratio_interval),
            "population_centile": self.centile,
            "population_centile_interval": list(self.centile_interval),
            "slow_below_centile": self.thresholds[0],
            "fast_above_centile": self.thresholds[1],
            "sources": list(self.sources),
        }


def population_clearances(patient: Patient) -> FloatArray:
    """Apparent clearances of the virtual population (same seed and size as the prediction intervals)."""
    tdm = load_tdm_knowledge()
    rng = np.random.default_rng(int(tdm.value("interpret", "seed")))
    params = sample_population(patient.model, int(tdm.value("interpret", "population_draws")), rng)
    return np.sort(apparent_clearance(patient, params))


def classify(fit: Fit, level: float = 0.90) -> Eliminator:
    """Label the fitted patient; the intervals come from the Laplace posterior."""
    tdm = load_tdm_knowledge()
    patient = fit.patient
    typ = float(apparent_clearance(patient, typical(patient.model))[0])
    ind = float(apparent_clearance(patient, fit.params())[0])
    rng = np.random.default_rng(int(tdm.value("interpret", "seed")) + 1)
    post = apparent_clearance(patient, fit.draws(_DRAWS, rng)) / typ
    pop = population_clearances(patient) / typ
    tail = (1 - level) / 2
    lo, hi = (float(x) for x in np.quantile(post, [tail, 1 - tail]))
    centile = float(np.searchsorted(pop, ind / typ) / len(pop))
    c_lo, c_hi = (float(np.searchsorted(pop, x) / len(pop)) for x in (lo, hi))
    slow = tdm.q("eliminator", "slow_below_centile")
    fast = tdm.q("eliminator", "fast_above_centile")
    label = "slow" if centile < slow.value else "fast" if centile > fast.value else "typical"
    return Eliminator(label, ind / typ, (lo, hi), centile, (c_lo, c_hi), (slow.value, fast.value), (slow.source,))
