"""Modal (eigen) form of the linear system: the closed-form sum of exponentials per patient.

A = V diag(lam) V^-1, so one mg of drug d given at time 0 yields, for analyte i,
C_i(t) = sum_j W[i, j] * c[j, d] * exp(lam_j t). Every simulation is built from these terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from benzotaper.errors import ModelError
from benzotaper.pk.model import PKModel
from benzotaper.pk.parameters import ParameterSet, input_vectors, output_matrix, system_matrix

FloatArray = NDArray[np.float64]

# Rates closer than this (relative) are nudged apart: repeated eigenvalues have no eigenbasis.
_MIN_GAP = 1e-7


@dataclass(frozen=True)
class Modal:
    """Eigenvalues lam (n, m) < 0, input weights c (n, m, depots), output weights w (n, I, m)."""

    lam: FloatArray
    c: FloatArray
    w: FloatArray

    def impulse_weights(self) -> FloatArray:
        """K (n, I, m, depots): ng/mL per mg at t=0+ for each mode; C_i(t) = sum_j K e^{lam_j t}."""
        return self.w[:, :, :, None] * self.c[:, None, :, :]

    def auc_per_mg(self) -> FloatArray:
        """(n, I, depots) AUC(0-inf) in ng*h/mL per mg of each drug: sum_j K_j / -lam_j."""
        return np.asarray(np.einsum("nimd,nm->nid", self.impulse_weights(), -1.0 / self.lam), dtype=np.float64)


def _separate(a: FloatArray) -> FloatArray:
    """Nudge diagonal rates where two are nearly equal, so the eigenbasis stays well-conditioned."""
    diag = -np.diagonal(a, axis1=1, axis2=2)
    out = a.copy()
    m = diag.shape[1]
    for j in range(1, m):
        for i in range(j):
            close = np.abs(diag[:, j] - diag[:, i]) <= _MIN_GAP * np.maximum(diag[:, i], 1e-300)
            if np.any(close):
                out[close, j, j] *= 1 + 10 * _MIN_GAP * (j + 1)
    return out


def modal(model: PKModel, params: ParameterSet) -> Modal:
    """Diagonalise every patient's rate matrix at once (batched LAPACK)."""
    a = _separate(system_matrix(model, params))
    lam, vec = np.linalg.eig(a)
    if np.iscomplexobj(lam):
        if np.max(np.abs(lam.imag)) > 1e-9 * np.max(np.abs(lam.real)):
            raise ModelError("the compartment model has oscillating modes; check its parameters")
        lam, vec = lam.real, vec.real
    if np.any(lam >= 0):
        raise ModelError("the compartment model does not eliminate the drug (a rate is not negative)")
    inv = np.linalg.inv(vec)
    c = inv @ input_vectors(model, params)
    w = output_matrix(model, params) @ vec
    return Modal(lam=lam, c=c, w=w)
