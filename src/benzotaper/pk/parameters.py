"""Parameter sets for a model: the typical patient, or a log-normal population, as arrays."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from benzotaper.pk.model import PKModel

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ParameterSet:
    """One row per virtual patient; columns follow the model's analytes, depots and edges."""

    cl: FloatArray  # (n, analytes) L/h
    v: FloatArray  # (n, analytes) L
    q: FloatArray  # (n, analytes) L/h
    vp: FloatArray  # (n, analytes) L
    ka: FloatArray  # (n, depots) 1/h
    f: FloatArray  # (n, depots) fraction
    fm: FloatArray  # (n, edges) fraction

    @property
    def n(self) -> int:
        """Number of virtual patients."""
        return int(self.cl.shape[0])


def typical(model: PKModel, n: int = 1) -> ParameterSet:
    """The typical values from the knowledge base, repeated n times."""

    def rows(values: list[float]) -> FloatArray:
        return np.tile(np.asarray(values, dtype=float), (n, 1))

    a = model.analytes
    return ParameterSet(
        cl=rows([s.cl for s in a]),
        v=rows([s.v for s in a]),
        q=rows([s.q for s in a]),
        vp=rows([s.vp for s in a]),
        ka=rows([d.ka for d in model.depots]),
        f=rows([d.bioavailability for d in model.depots]),
        fm=rows([e.fraction for e in model.edges]),
    )


def _lognormal(rng: np.random.Generator, typical_values: FloatArray, cvs: list[float]) -> FloatArray:
    """theta_i = theta_typ * exp(eta), eta ~ N(0, ln(1 + CV^2)): median at the typical value."""
    omega = np.sqrt(np.log1p(np.square(np.asarray(cvs, dtype=float))))
    eta = rng.standard_normal(typical_values.shape) * omega
    return np.asarray(typical_values * np.exp(eta), dtype=np.float64)


def sample_population(model: PKModel, n: int, rng: np.random.Generator) -> ParameterSet:
    """n virtual patients with log-normal between-subject variability where the CV is published."""
    base = typical(model, n)
    return replace(
        base,
        cl=_lognormal(rng, base.cl, [s.cv_cl for s in model.analytes]),
        v=_lognormal(rng, base.v, [s.cv_v for s in model.analytes]),
        ka=_lognormal(rng, base.ka, [d.cv_ka for d in model.depots]),
    )


def system_matrix(model: PKModel, p: ParameterSet) -> FloatArray:
    """The rate matrix A (n, m, m) of dx/dt = A x, amounts in mg of each analyte."""
    m = model.n_compartments
    a = np.zeros((p.n, m, m))
    for d, depot in enumerate(model.depots):
        a[:, d, d] = -p.ka[:, d]
        a[:, model.central(depot.analyte), d] += p.ka[:, d]
    k = p.cl / p.v
    for i, spec in enumerate(model.analytes):
        c = model.central(i)
        a[:, c, c] -= k[:, i]
        if spec.two_compartment:
            per = model.peripheral(i)
            k12 = p.q[:, i] / p.v[:, i]
            k21 = p.q[:, i] / p.vp[:, i]
            a[:, c, c] -= k12
            a[:, per, c] += k12
            a[:, c, per] += k21
            a[:, per, per] -= k21
    for e, edge in enumerate(model.edges):
        src, dst = model.central(edge.source), model.central(edge.target)
        a[:, dst, src] += p.fm[:, e] * k[:, edge.source] * edge.mass_ratio
    return a


def input_vectors(model: PKModel, p: ParameterSet) -> FloatArray:
    """B (n, m, depots): state change per mg dosed of each drug (bioavailability, salt factor)."""
    b = np.zeros((p.n, model.n_compartments, len(model.depots)))
    for d, depot in enumerate(model.depots):
        b[:, d, d] = p.f[:, d] * depot.mass_factor
    return b


def output_matrix(model: PKModel, p: ParameterSet) -> FloatArray:
    """C (n, analytes, m): ng/mL of each analyte per mg in the state (central amount / volume)."""
    out = np.zeros((p.n, len(model.analytes), model.n_compartments))
    for i in range(len(model.analytes)):
        out[:, i, model.central(i)] = 1000.0 / p.v[:, i]
    return out
