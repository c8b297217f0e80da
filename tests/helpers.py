"""Small helpers for building dose events in tests."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from benzotaper.regimen import DoseEvents

ORIGIN = datetime(2026, 1, 1)


def events(drug: str, times_h: list[float], mg: float | list[float]) -> DoseEvents:
    amounts = np.broadcast_to(np.asarray(mg, dtype=float), (len(times_h),)).copy()
    return DoseEvents(ORIGIN, np.asarray(times_h, dtype=float), amounts, (drug,) * len(times_h))


def repeated(drug: str, mg: float, tau_h: float, n: int, start: float = 0.0) -> DoseEvents:
    return events(drug, [start + k * tau_h for k in range(n)], mg)
