"""Bayesian individualisation: MAP estimates of clearance (and volume where a prior exists) from levels.

Objective (-2 log posterior, Sheiner 1979): for each measured level ((ln y - ln f)/s)^2, where
s = sqrt(prop^2 + (add/y)^2) is the proportional + additive error at the measured level on the log
scale (log-transform-both-sides: the fit is monotone in the level and never saturates); a level below
the LLOQ adds -2 log P(ln level < ln LLOQ) (Beal's M3); each
free parameter adds (eta/omega)^2, theta = typical * exp(eta), omega^2 = ln(1 + CV^2) from the
knowledge base. A damped Newton method gets value, gradient and Hessian from one batched PK
evaluation per iteration; uncertainty is the Laplace approximation at the mode.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_ndtr

from benzotaper.errors import LevelsError
from benzotaper.knowledge.tdm_rules import load_tdm_knowledge
from benzotaper.pk import ParameterSet, PKModel, typical
from benzotaper.tdm.errormodel import error_model
from benzotaper.tdm.patient import Patient

FloatArray = NDArray[np.float64]
_TINY = 1e-9  # ng/mL: floor before taking logs (not a clinical number)
_STEP = 1e-3  # finite-difference step in eta (log-parameter) units
_BOUND_OMEGAS = 5.0
_MAX_ITER = 60
_MAX_STEP = 1.0  # at most one omega per Newton step (a trust region)
_DAMPING = np.array([1.0, 0.5, 0.25, 0.1, 0.03])


@dataclass(frozen=True, slots=True)
class FreeParameter:
    """A parameter the levels may move: clearance or volume of one analyte, with its log-normal prior."""

    kind: str  # "cl" or "v"
    analyte: int
    name: str
    typical: float
    cv: float
    source: str

    @property
    def omega(self) -> float:
        """SD of eta: sqrt(ln(1 + CV^2))."""
        return float(np.sqrt(np.log1p(self.cv**2)))

    @property
    def label(self) -> str:
        """'diazepam clearance'."""
        return f"{self.name} {'clearance' if self.kind == 'cl' else 'volume'}"


def free_parameters(patient: Patient) -> tuple[FreeParameter, ...]:
    """Clearance and volume of every simulated analyte whose CV is published (others stay typical)."""
    out = []
    for i, spec in enumerate(patient.model.analytes):
        disp = patient.knowledge.analytes[spec.id].disposition
        assert disp is not None
        if spec.cv_cl > 0 and disp.clearance is not None:
            src = disp.clearance.cv_source or disp.clearance.source
            out.append(FreeParameter("cl", i, spec.id, spec.cl, spec.cv_cl, src))
        if spec.cv_v > 0:
            out.append(FreeParameter("v", i, spec.id, spec.v, spec.cv_v, disp.volume.cv_source or disp.volume.source))
    return tuple(out)


def parameters_for(model: PKModel, free: tuple[FreeParameter, ...], eta: FloatArray) -> ParameterSet:
    """Typical parameters with exp(eta) applied to the free ones; eta (B, p) -> B parameter sets."""
    eta = np.atleast_2d(eta)
    base = typical(model, eta.shape[0])
    cl, v = base.cl.copy(), base.v.copy()
    for j, f in enumerate(free):
        target = cl if f.kind == "cl" else v
        target[:, f.analyte] = f.typical * np.exp(eta[:, j])
    return replace(base, cl=cl, v=v)


@dataclass(frozen=True)
class Objective:
    """-2 log posterior over a batch of eta vectors, for the samples that inform the fit."""

    patient: Patient
    free: tuple[FreeParameter, ...]
    used: NDArray[np.int64]
    log_level: FloatArray  # ln of each used level (of the LLOQ if censored)
    sd: FloatArray  # residual SD on the log scale at that level

    def __call__(self, eta: FloatArray) -> FloatArray:
        eta = np.atleast_2d(eta)
        pred = self.patient.predict(parameters_for(self.patient.model, self.free, eta))[:, self.used]
        total = np.zeros(eta.shape[0])
        log_pred = np.log(np.maximum(pred, _TINY))
        for col, j in enumerate(self.used):
            s = self.patient.samples[j]
            z = (self.log_level[col] - log_pred[:, col]) / self.sd[col]
            total += -2 * log_ndtr(z) if s.value is None else np.square(z)
        omegas = np.array([f.omega for f in self.free])
        return np.asarray(total + np.sum(np.square(eta / omegas), axis=1), dtype=np.float64)

    def derivatives(self, x: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        """Value, central-difference gradient and Hessian, all from one batched evaluation."""
        p, h = len(x), _STEP
        eye = np.eye(p)
        pairs = [(i, j) for i in range(p) for j in range(i + 1, p)]
        pts = [x]
        for i in range(p):
            pts += [x + h * eye[i], x - h * eye[i]]
        for i, j in pairs:
            plus, minus = eye[i] + eye[j], eye[i] - eye[j]
            pts += [x + h * plus, x + h * minus, x - h * minus, x - h * plus]
        v = self(np.vstack(pts))
        grad = np.array([(v[1 + 2 * i] - v[2 + 2 * i]) / (2 * h) for i in range(p)])
        hess = np.empty((p, p))
        for i in range(p):
            hess[i, i] = (v[1 + 2 * i] - 2 * v[0] + v[2 + 2 * i]) / h**2
        base = 1 + 2 * p
        for k, (i, j) in enumerate(pairs):
            a, b, c, d = v[base + 4 * k : base + 4 * k + 4]
            hess[i, j] = hess[j, i] = (a - b - c + d) / (4 * h * h)
        return float(v[0]), grad, hess


def _newton(obj: Objective, bound: FloatArray) -> tuple[FloatArray, float, bool]:
    """Damped Newton in eta with a batched backtracking line search, inside +-bound (a few ms for p <= 4)."""
    x = np.zeros(len(bound))
    value = float(obj(x[None, :])[0])
    for _ in range(_MAX_ITER):
        _, grad, hess = obj.derivatives(x)
        step = -np.linalg.solve(_positive_definite(hess)[0], grad)
        step *= min(1.0, _MAX_STEP / max(float(np.max(np.abs(step / bound))), 1e-300))
        trials = np.clip(x[None, :] + _DAMPING[:, None] * step[None, :], -bound, bound)
        values = obj(trials)
        best = int(np.argmin(values))
        if values[best] >= value - 1e-9:
            return x, value, bool(np.max(np.abs(grad)) < 1e-2)
        moved = float(np.max(np.abs(trials[best] - x)))
        x, value = trials[best], float(values[best])
        if moved < 1e-7:
            return x, value, True
    return x, value, False


@dataclass(frozen=True)
class Fit:
    """The MAP estimate, its Laplace covariance (of eta), and what was used."""

    patient: Patient
    free: tuple[FreeParameter, ...]
    eta: FloatArray
    cov: FloatArray
    objective: float
    converged: bool
    used: tuple[int, ...]
    notes: tuple[str, ...]

    def params(self) -> ParameterSet:
        """The individual (MAP) parameter set."""
        return parameters_for(self.patient.model, self.free, self.eta[None, :])

    def draws(self, n: int, rng: np.random.Generator) -> ParameterSet:
        """n parameter sets from the approximate posterior N(eta_MAP, cov)."""
        eta = rng.multivariate_normal(self.eta, self.cov, size=n, method="cholesky")
        return parameters_for(self.patient.model, self.free, eta)

    def interval(self, j: int, level: float) -> tuple[float, float]:
        """Posterior interval of free parameter j (its value, not eta)."""
        from scipy.stats import norm

        z = float(norm.ppf(0.5 + level / 2))
        sd = float(np.sqrt(self.cov[j, j]))
        typ = self.free[j].typical
        return typ * float(np.exp(self.eta[j] - z * sd)), typ * float(np.exp(self.eta[j] + z * sd))


def log_residuals(patient: Patient, used: NDArray[np.int64]) -> tuple[FloatArray, FloatArray]:
    """ln level and its SD on the log scale: sqrt(prop^2 + (add/level)^2), the error model at the level."""
    samples = [patient.samples[j] for j in used]
    err = error_model(load_tdm_knowledge(), [s.lloq for s in samples])
    at = np.maximum(np.array([s.value if s.value is not None else s.lloq or 0.0 for s in samples]), _TINY)
    return np.log(at), np.asarray(err.sd(at) / at, dtype=np.float64)


def exclusions(patient: Patient) -> dict[int, str]:
    """Why a sample cannot inform the fit, by index (samples not listed are used)."""
    out: dict[int, str] = {}
    for j, s in enumerate(patient.samples):
        if not patient.predictable[j]:
            out[j] = f"{s.analyte} is not simulated for this regimen"
        elif s.immunoassay:
            out[j] = "immunoassay (diazepam equivalents) is semi-quantitative"
    return out


def _usable(patient: Patient) -> tuple[NDArray[np.int64], list[str]]:
    left_out = exclusions(patient)
    notes = [f"row {patient.samples[j].row}: {why}; not used for the fit" for j, why in left_out.items()]
    used = [j for j in range(len(patient.samples)) if j not in left_out]
    return np.asarray(used, dtype=np.int64), notes


def _outliers(obj: Objective, eta: FloatArray) -> list[str]:
    """Measured levels far from the individual prediction (log-scale residual beyond the tdm.toml limit)."""
    limit = load_tdm_knowledge().value("fit", "outlier_z")
    pred = obj.patient.predict(parameters_for(obj.patient.model, obj.free, eta[None, :]))[0, obj.used]
    z = (obj.log_level - np.log(np.maximum(pred, _TINY))) / obj.sd
    out = []
    for col, j in enumerate(obj.used):
        s = obj.patient.samples[j]
        if s.value is not None and abs(z[col]) > limit:
            out.append(
                f"row {s.row}: {s.analyte} {s.value:.4g} ng/mL is far from the fitted model ({z[col]:+.1f} SD, "
                f"predicted {pred[col]:.4g}): check its time and unit, the doses before it and extra intake"
            )
    return out


def _positive_definite(h: FloatArray) -> tuple[FloatArray, bool]:
    """Symmetrise and floor the eigenvalues, so the covariance exists (flag when it had to be floored)."""
    h = (h + h.T) / 2
    w, v = np.linalg.eigh(h)
    floor = 1e-6 * max(float(np.max(np.abs(w))), 1.0)
    return (v * np.maximum(w, floor)) @ v.T, bool(np.all(w > floor))


def fit(patient: Patient) -> Fit:
    """MAP fit of the free parameters to the usable samples, with a Laplace covariance."""
    free = free_parameters(patient)
    if not free:
        names = ", ".join(a.name for a in patient.model.analytes)
        raise LevelsError(
            f"cannot individualise {names}: the knowledge base has no published between-subject variability of "
            "clearance or volume for these analytes (no prior to update); the levels can still be interpreted"
        )
    used, notes = _usable(patient)
    if len(used) == 0:
        raise LevelsError("no sample can inform the fit: " + "; ".join(notes))
    obj = Objective(patient, free, used, *log_residuals(patient, used))
    bound = np.array([_BOUND_OMEGAS * f.omega for f in free])
    eta, value, converged = _newton(obj, bound)
    hess, ok = _positive_definite(obj.derivatives(eta)[2])
    cov = np.asarray(np.linalg.inv(hess / 2), dtype=np.float64)
    prior = np.array([f.omega**2 for f in free])
    loose = np.diag(cov) > prior
    if np.any(loose):  # a posterior wider than the prior means the curvature was not trustworthy
        cov[loose, :] = 0.0
        cov[:, loose] = 0.0
        cov[loose, loose] = prior[loose]
    if not ok:
        notes.append("the data do not pin down every parameter (flat posterior direction); its interval is the prior's")
    at_bound = [f.label for f, e, b in zip(free, eta, bound, strict=True) if abs(e) >= b - 1e-6]
    if at_bound:
        notes.append(f"{', '.join(at_bound)} at {_BOUND_OMEGAS:g} SD from typical: check doses, times and units")
    notes += _outliers(obj, eta)
    used_t = tuple(int(j) for j in used)
    return Fit(patient, free, eta, cov, value, converged, used_t, tuple(notes))
