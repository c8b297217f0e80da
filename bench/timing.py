"""Shared timing for the benchmarks: the median wall time of a few runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_s(action: Callable[[], object], repeats: int = 7) -> float:
    """Median seconds of `repeats` runs of `action`."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        action()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
