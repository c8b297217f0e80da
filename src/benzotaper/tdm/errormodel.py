"""Residual error: proportional + additive, the additive part tied to the assay's LLOQ (ICH M10).

sd(f) = sqrt((prop * f)^2 + add^2), add = LLOQ * sqrt(cv_lloq^2 - prop^2): the total CV is `prop`
at high levels and `cv_lloq` at the LLOQ. Without a stated LLOQ the additive part is zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from benzotaper.knowledge.tdm_rules import TdmKnowledge

FloatArray = NDArray[np.float64]
SD_FLOOR = 1e-3  # ng/mL: numerical guard for a zero prediction without an LLOQ (not a clinical number)


@dataclass(frozen=True)
class ErrorModel:
    """Per-sample residual SD parameters."""

    proportional: float
    additive: FloatArray  # (S,) ng/mL

    def sd(self, predicted: FloatArray) -> FloatArray:
        """Residual SD (…, S) for predictions (…, S)."""
        sd = np.sqrt(np.square(self.proportional * predicted) + np.square(self.additive))
        return np.asarray(np.maximum(sd, SD_FLOOR), dtype=np.float64)

    def draw(self, predicted: FloatArray, rng: np.random.Generator) -> FloatArray:
        """Observations with residual error, never below zero."""
        noise = rng.standard_normal(predicted.shape) * self.sd(predicted)
        return np.asarray(np.maximum(predicted + noise, 0.0), dtype=np.float64)


def error_model(tdm: TdmKnowledge, lloqs: list[float | None]) -> ErrorModel:
    """The error model for samples with these LLOQs (ng/mL or None)."""
    prop = tdm.value("error", "proportional")
    factor = math.sqrt(tdm.value("error", "lloq_cv") ** 2 - prop**2)
    add = np.array([factor * (q or 0.0) for q in lloqs], dtype=np.float64)
    return ErrorModel(prop, add)
