"""Regimen dose events -> level curves of every analyte, diazepam-equivalent level and occupancy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from benzotaper.knowledge import Knowledge
from benzotaper.pk.engine import (
    Doses,
    TimeGrid,
    concentrations_at,
    in_chunks,
    predose_levels,
    simulate_grid,
)
from benzotaper.pk.modal import Modal, modal
from benzotaper.pk.model import PKModel, build_model
from benzotaper.pk.occupancy import occupancy
from benzotaper.pk.parameters import ParameterSet, typical
from benzotaper.pk.potency import Potency, potencies
from benzotaper.regimen import DoseEvents

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Curves:
    """Levels on a grid: conc (n, analytes, T) ng/mL, deq and occupancy (n, T)."""

    times_h: FloatArray
    analytes: tuple[str, ...]
    conc: FloatArray
    deq: FloatArray
    occupancy: FloatArray
    potencies: tuple[Potency, ...]

    def analyte(self, name: str) -> FloatArray:
        """(n, T) curve of one analyte."""
        return self.conc[:, self.analytes.index(name), :]


def engine_doses(knowledge: Knowledge, model: PKModel, events: DoseEvents) -> Doses:
    """Dose events for the engine: absorption lag applied, drug names mapped to the model's depots."""
    index = {d: model.depot_of(knowledge.drug(d).id) for d in events.drugs}
    depot = np.array([index[d] for d in events.drug], dtype=np.int64)
    lag = np.array([dep.lag for dep in model.depots])[depot] if len(depot) else np.zeros(0)
    return Doses(events.time + lag, events.amt.astype(float), depot)


@dataclass(frozen=True)
class Simulator:
    """A model with its parameters, ready to turn dose events into curves (build once, reuse)."""

    knowledge: Knowledge
    model: PKModel
    params: ParameterSet
    modal: Modal
    potency: tuple[Potency, ...]

    @classmethod
    def for_drugs(cls, knowledge: Knowledge, drugs: tuple[str, ...], params: ParameterSet | None = None) -> Simulator:
        """The simulator for these drugs, with typical parameters unless a population is given."""
        model = build_model(knowledge, drugs)
        p = params if params is not None else typical(model)
        return cls(knowledge, model, p, modal(model, p), tuple(potencies(knowledge, model)))

    def doses(self, events: DoseEvents) -> Doses:
        """Engine doses: absorption lag applied, drug names mapped to depots."""
        return engine_doses(self.knowledge, self.model, events)

    def weights(self) -> FloatArray:
        """Diazepam-equivalent weight per analyte."""
        return np.array([p.value for p in self.potency])

    def run(self, events: DoseEvents, grid: TimeGrid) -> Curves:
        """Curves on the grid for every parameter set."""
        conc = simulate_grid(self.modal, self.doses(events), grid)
        n = conc.shape[0]
        deq = np.empty((n, grid.n))
        occ = np.empty((n, grid.n))
        weights = self.weights()

        def post(lo: int, hi: int) -> None:
            np.einsum("nit,i->nt", conc[lo:hi], weights, out=deq[lo:hi])
            occ[lo:hi] = occupancy(self.knowledge.occupancy, deq[lo:hi])

        in_chunks(n, post)
        return Curves(grid.times, tuple(a.id for a in self.model.analytes), conc, deq, occ, self.potency)

    def levels_at(self, events: DoseEvents, times_h: FloatArray, include_simultaneous: bool = True) -> FloatArray:
        """Exact analyte levels (n, analytes, len(times)) at arbitrary times."""
        return concentrations_at(self.modal, self.doses(events), np.asarray(times_h, dtype=float), include_simultaneous)

    def deq_before_doses(self, events: DoseEvents) -> tuple[FloatArray, FloatArray]:
        """Dose times (h, lag applied) and the exact diazepam-equivalent level just before each (n, k)."""
        times, levels = predose_levels(self.modal, self.doses(events))
        return times, np.asarray(np.einsum("nit,i->nt", levels, self.weights()), dtype=np.float64)
