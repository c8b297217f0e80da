"""An independent oracle: integrate dx/dt = A x with scipy's solve_ivp, one patient at a time.

Slow on purpose (it is the baseline the closed form is checked and benchmarked against); never
used by the product's own calculations.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.integrate import solve_ivp

from benzotaper.pk.engine import Doses
from benzotaper.pk.model import PKModel
from benzotaper.pk.parameters import ParameterSet, input_vectors, output_matrix, system_matrix

FloatArray = NDArray[np.float64]


def simulate_ode(
    model: PKModel,
    params: ParameterSet,
    patient: int,
    doses: Doses,
    times: FloatArray,
    rtol: float = 1e-10,
    atol: float = 1e-14,
) -> FloatArray:
    """Concentrations (analytes, len(times)) for one patient; `times` must be increasing."""
    a = system_matrix(model, params)[patient]
    b = input_vectors(model, params)[patient]
    out_m = output_matrix(model, params)[patient]
    result = np.zeros((out_m.shape[0], len(times)))
    t_end = float(times[-1])
    keep = doses.time <= t_end
    t_dose, amt, dep = doses.time[keep], doses.amount[keep], doses.depot[keep]
    t = float(min(times[0], t_dose.min() if len(t_dose) else times[0]))
    x = np.zeros(a.shape[0])
    boundaries = sorted({*t_dose.tolist(), t_end})
    for tb in boundaries:
        want = (times >= t) & (times < tb)
        if tb > t:
            t_eval = np.append(times[want], tb)
            sol = solve_ivp(
                lambda _t, y: a @ y,
                (t, tb),
                x,
                method="LSODA",
                t_eval=t_eval,
                rtol=rtol,
                atol=atol,
                jac=lambda _t, _y: a,
            )
            result[:, want] = out_m @ sol.y[:, :-1]
            x = sol.y[:, -1]
        at = t_dose == tb
        x = x + b[:, dep[at]] @ amt[at]
        t = tb
    result[:, times >= t_end] = (out_m @ x)[:, None]
    return result
