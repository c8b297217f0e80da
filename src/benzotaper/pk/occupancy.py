"""GABA-A receptor occupancy from the diazepam-equivalent level (Emax model in knowledge/)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from benzotaper.knowledge import Occupancy

FloatArray = NDArray[np.float64]


def occupancy(model: Occupancy, deq_ng_ml: FloatArray) -> FloatArray:
    """Fraction of sites occupied: Emax * C^h / (EC50^h + C^h)."""
    c = np.maximum(np.asarray(deq_ng_ml, dtype=float), 0.0)
    h = model.hill.value
    ch = c if h == 1.0 else np.power(c, h)  # pow is ~20x slower than a plain ratio
    out: FloatArray = ch / (ch + model.ec50.value**h)
    out *= model.emax.value
    return out


def level_for_occupancy(model: Occupancy, fraction: float) -> float:
    """The diazepam-equivalent level (ng/mL) that gives `fraction` occupancy (inverse Emax)."""
    if not 0 <= fraction < model.emax.value:
        raise ValueError(f"occupancy must be in [0, {model.emax.value}) (got {fraction})")
    h = model.hill.value
    return float(model.ec50.value * (fraction / (model.emax.value - fraction)) ** (1 / h))
