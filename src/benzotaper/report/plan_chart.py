"""Charts of a taper plan over calendar dates: daily doses, and (given simulated curves) level and occupancy.

A static PNG (matplotlib) for reports and an offline interactive HTML (plotly, library embedded, no CDN).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go  # type: ignore[import-untyped]
from numpy.typing import NDArray
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from benzotaper.pk import Curves
from benzotaper.report.plan_common import drugs
from benzotaper.taper.plan import Plan

DEQ_LABEL = "diazepam-equivalent (mg/day)"
LEVEL_LABEL = "diazepam-equivalent level (ng/mL)"
OCC_LABEL = "GABA-A occupancy (%)"
TAIL_DAYS = 7


def dose_steps(plan: Plan) -> tuple[list[date], dict[str, list[float]]]:
    """Step-change dates (plus one after the end) and, per series, the mg/day from each date on.

    Series are each drug's mg/day and the diazepam-equivalent mg/day (`DEQ_LABEL`); the last value repeats
    so a 'post' step plot shows the final level up to the extra date.
    """
    dates = [s.start for s in plan.steps] + [plan.end_date + timedelta(days=TAIL_DAYS)]
    series = {d: [s.daily_mg.get(d, 0.0) for s in plan.steps] for d in drugs(plan)}
    series[DEQ_LABEL] = [s.diazepam_equivalent_mg for s in plan.steps]
    return dates, {k: [*v, v[-1]] for k, v in series.items()}


def curve_times(plan: Plan, curves: Curves) -> NDArray[np.datetime64]:
    """Curve times (hours from midnight of the plan start) as datetimes."""
    seconds = np.round(np.asarray(curves.times_h, dtype=float) * 3600).astype("timedelta64[s]")
    return np.datetime64(datetime.combine(plan.start, datetime.min.time()), "s") + seconds


def plot_plan_png(plan: Plan, curves: Curves | None, path: Path) -> Path:
    """Stacked panels sharing the date axis: mg/day per drug, then level and occupancy of patient 0 if given."""
    rows = 3 if curves is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(11, 3 + 2.5 * rows), sharex=True, squeeze=False)
    top = axes[0, 0]
    dates, series = dose_steps(plan)
    x = np.array(dates, dtype="datetime64[D]")
    for name, values in series.items():
        style = {"color": "black", "linestyle": "--"} if name == DEQ_LABEL else {}
        top.step(x, values, where="post", label=name if name == DEQ_LABEL else f"{name} (mg/day)", **style)
    top.set_ylabel("dose (mg/day)")
    top.set_title(f"Taper plan: {plan.regimen} - {plan.strategy_name}")
    if curves is not None:
        t = curve_times(plan, curves)
        axes[1, 0].plot(t, curves.deq[0], color="tab:blue")
        axes[1, 0].set_ylabel("level (ng/mL)")
        axes[1, 0].set_title(LEVEL_LABEL, fontsize=9)
        axes[2, 0].plot(t, 100 * curves.occupancy[0], color="tab:purple")
        axes[2, 0].set_ylabel(OCC_LABEL)
    for ax in axes[:, 0]:
        ax.axvline(np.datetime64(plan.end_date), color="tab:green", linestyle=":", label="drug-free from")
        ax.grid(alpha=0.3)
    top.legend(loc="best", fontsize=8)
    axes[-1, 0].set_xlabel("date")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_plan_html(plan: Plan, curves: Curves | None, path: Path) -> Path:
    """Same panels as `plot_plan_png`, interactive, with plotly.js embedded so it opens offline."""
    rows = 3 if curves is not None else 1
    titles = ["dose (mg/day)", LEVEL_LABEL, OCC_LABEL][:rows]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.07)
    dates, series = dose_steps(plan)
    for name, values in series.items():
        line = {"shape": "hv", **({"color": "black", "dash": "dash"} if name == DEQ_LABEL else {})}
        fig.add_trace(go.Scatter(x=[d.isoformat() for d in dates], y=values, name=name, line=line), row=1, col=1)
    if curves is not None:
        t = [str(v) for v in curve_times(plan, curves)]
        fig.add_trace(go.Scatter(x=t, y=curves.deq[0].tolist(), name=LEVEL_LABEL), row=2, col=1)
        fig.add_trace(go.Scatter(x=t, y=(100 * curves.occupancy[0]).tolist(), name=OCC_LABEL), row=3, col=1)
    fig.update_layout(
        title=f"Taper plan: {plan.regimen} - {plan.strategy_name}", height=300 + 250 * rows, hovermode="x unified"
    )
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path
