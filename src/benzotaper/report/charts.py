"""Static charts (matplotlib, no display needed) of level curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benzotaper.pk import Curves


def plot_curves(curves: Curves, path: Path, title: str) -> Path:
    """Analyte levels and the diazepam-equivalent level (ng/mL) over days, occupancy beneath."""
    days = (curves.times_h - curves.times_h[0]) / 24.0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for i, name in enumerate(curves.analytes):
        top.plot(days, curves.conc[0, i], label=f"{name} (ng/mL)", linewidth=1.2)
    top.plot(
        days, curves.deq[0], label="diazepam-equivalent level (ng/mL)", color="black", linewidth=1.6, linestyle="--"
    )
    top.set_ylabel("serum level (ng/mL)")
    top.set_title(title)
    top.legend(loc="best", fontsize=8)
    top.grid(alpha=0.3)
    bottom.plot(days, 100 * curves.occupancy[0], color="tab:purple")
    bottom.set_ylabel("GABA-A occupancy (%)")
    bottom.set_xlabel("days")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
