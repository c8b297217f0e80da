"""Plotly figures of a patient and of a draft plan: doses, predicted and measured levels, scores, diary."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np

from benzotaper.equivalence import diazepam_equivalent_mg
from benzotaper.errors import BenzotaperError
from benzotaper.taper.levels import plan_curves
from benzotaper.taper.plan import Plan
from benzotaper.web import models as m
from benzotaper.web.clinic_clock import local, today
from benzotaper.web.kb import instruments, knowledge
from benzotaper.web.level_records import level_reading
from benzotaper.web.plan_records import approved_plan, stored_plan


def _dose_history(patient: m.Patient) -> dict[str, Any]:
    """Daily diazepam-equivalent dose from the regimen records (a step line)."""
    xs: list[str] = []
    ys: list[float] = []
    for r in patient.regimens.all():
        end = r.end or today()
        xs += [r.start.isoformat(), end.isoformat(), None]  # type: ignore[list-item]
        ys += [r.daily_de_mg, r.daily_de_mg, None]  # type: ignore[list-item]
    return {"x": xs, "y": ys}


def diary_traces(patient: m.Patient) -> list[dict[str, Any]]:
    """The diary part of the chart, read fresh on every view: doses taken per day and check-ins.

    Summed per day and drug in the database (a year of diary is ~1,500 rows per patient); each drug's
    diazepam-equivalent factor is looked up once (the conversion is linear in mg).
    """
    from django.db.models import Sum

    k = knowledge()
    factors: dict[str, float | None] = {}
    taken: dict[str, float] = {}
    sums = (
        patient.diary.filter(kind="dose", taken_mg__isnull=False)
        .values_list("day", "drug")
        .annotate(mg=Sum("taken_mg"))
        .order_by("day")
    )
    for day, drug, mg in sums:
        if drug not in factors:
            try:
                factors[drug] = diazepam_equivalent_mg(k, drug, 1.0)
            except BenzotaperError:
                factors[drug] = None
        factor = factors[drug]
        if factor is not None and mg is not None:
            taken[day.isoformat()] = taken.get(day.isoformat(), 0.0) + mg * factor
    feelings = list(
        patient.diary.filter(kind="checkin", feeling__isnull=False).order_by("day").values_list("day", "feeling")
    )
    traces: list[dict[str, Any]] = []
    if taken:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "taken (diary, diazepam-eq mg/day)",
                "x": list(taken),
                "y": [round(v, 2) for v in taken.values()],
                "xaxis": "x",
                "yaxis": "y",
                "marker": {"symbol": "diamond", "size": 6},
            }
        )
    if feelings:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "feeling (diary, 0-10)",
                "x": [d.isoformat() for d, _ in feelings],
                "y": [f for _, f in feelings],
                "xaxis": "x",
                "yaxis": "y3",
                "marker": {"symbol": "circle-open"},
            }
        )
    return traces


def diary_json(patient: m.Patient) -> str:
    """The diary chart traces as a ready-to-embed JSON block (`diary-data`)."""
    from django.utils.html import json_script

    return str(json_script(diary_traces(patient), "diary-data"))


def patient_chart(patient: m.Patient, fit: dict[str, Any] | None = None) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    history = _dose_history(patient)
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "dose (diazepam-eq mg/day)",
            **history,
            "xaxis": "x",
            "yaxis": "y",
            "line": {"shape": "hv"},
        }
    )
    record = approved_plan(patient)
    if record is not None:
        data += _plan_traces(record)
    data += _measured_traces(patient)
    if fit is not None:
        from benzotaper.web.patient_model import forecast_traces

        data += forecast_traces(fit)
    for code in ("ciwa_b", "bwsq", "sds"):
        rows = [(a.taken_at.date().isoformat(), a.total) for a in patient.assessments.all() if a.instrument == code]
        if rows:
            xs, ys = zip(*rows, strict=True)
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": instruments()[code].name,
                    "x": list(xs),
                    "y": list(ys),
                    "xaxis": "x",
                    "yaxis": "y3",
                }
            )
    layout: dict[str, Any] = {
        "height": 620,
        "margin": {"l": 60, "r": 60, "t": 20, "b": 40},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.08},
        # Open on the recent past and the plan ahead; the whole history is a zoom-out away.
        "xaxis": {"type": "date", "anchor": "y3", "range": _recent_range(patient)},
        "yaxis": {"title": {"text": "mg/day"}, "domain": [0.70, 1.0]},
        "yaxis2": {"title": {"text": "ng/mL (log)"}, "domain": [0.36, 0.66], "type": "log"},
        "yaxis4": {
            "title": {"text": "occupancy"},
            "overlaying": "y2",
            "side": "right",
            "range": [0, 1],
            "tickformat": ".0%",
            "dtick": 0.25,
        },
        "yaxis3": {"title": {"text": "score"}, "domain": [0.0, 0.30]},
    }
    for key in ("yaxis2", "yaxis4"):
        layout[key]["anchor"] = "x"
    return {"data": data, "layout": layout}


def _recent_range(patient: m.Patient) -> list[str]:
    """The chart's opening window: 120 days back to the end of the approved plan (at least 60 days ahead)."""
    record = approved_plan(patient)
    end = today() + timedelta(days=60)
    if record is not None and record.plan.get("end_date"):
        end = max(end, date.fromisoformat(record.plan["end_date"]) + timedelta(days=14))
    return [(today() - timedelta(days=120)).isoformat(), end.isoformat()]


def _plan_traces(record: m.Plan) -> list[dict[str, Any]]:
    plan = stored_plan(record)
    k = knowledge()
    xs, ys = _plan_steps_xy(plan)
    curves = plan_curves(k, plan, step_h=6.0)
    grid = _time_axis(datetime.combine(plan.start, time()), curves.times_h)
    traces = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"plan v{record.version} (diazepam-eq mg/day)",
            "x": xs,
            "y": ys,
            "xaxis": "x",
            "yaxis": "y",
            "line": {"dash": "dot", "shape": "hv"},
        },
        # One predicted curve per analyte, so a measured level is read against the same analyte.
        *(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{analyte} predicted (typical patient, ng/mL)",
                **grid,
                "y": np.round(curves.analyte(analyte)[0], 2).tolist(),
                "xaxis": "x",
                "yaxis": "y2",
            }
            for analyte in curves.analytes
        ),
        {
            "type": "scatter",
            "mode": "lines",
            "name": "GABA-A occupancy",
            **grid,
            "y": np.round(curves.occupancy[0], 3).tolist(),
            "xaxis": "x",
            "yaxis": "y4",
            "line": {"dash": "dash"},
        },
    ]
    return traces


def _plan_steps_xy(plan: Plan) -> tuple[list[Any], list[Any]]:
    """The plan's daily diazepam-equivalent dose as a step line (x, y with gaps between steps)."""
    k = knowledge()
    xs: list[Any] = []
    ys: list[Any] = []
    for s in plan.steps:
        de = round(sum(diazepam_equivalent_mg(k, drug, mg) for drug, mg in s.daily_mg.items()), 2)
        xs += [s.start.isoformat(), s.end.isoformat(), None]
        ys += [de, de, None]
    return xs, ys


def _time_axis(start: datetime, hours: np.ndarray) -> dict[str, Any]:
    """Plotly x values for a curve sampled at `hours` after `start`.

    An evenly spaced grid is sent as a start and a step (`x0`, `dx` in ms on a date axis), which halves
    the page's chart data; an uneven one as explicit times.
    """
    steps = np.diff(hours)
    if len(hours) > 1 and np.allclose(steps, steps[0]):
        first = start + timedelta(hours=float(hours[0]))
        return {"x0": first.isoformat(timespec="minutes"), "dx": float(steps[0]) * 3_600_000.0}
    return {"x": [(start + timedelta(hours=float(h))).isoformat(timespec="minutes") for h in hours]}


def _measured_traces(patient: m.Patient) -> list[dict[str, Any]]:
    """Measured levels per analyte, and beside them the model's expected value with its 90% range."""
    reading = level_reading(patient) or {}
    traces: list[dict[str, Any]] = []
    by_analyte: dict[str, list[m.Level]] = {}
    for lv in patient.levels.all():
        by_analyte.setdefault(lv.analyte, []).append(lv)
    for analyte, rows in by_analyte.items():
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{analyte} measured",
                "x": [local(lv.sampled_at).isoformat(timespec="minutes") for lv in rows],
                "y": [lv.value_ng_ml for lv in rows],
                "xaxis": "x",
                "yaxis": "y2",
                "marker": {"size": 10},
            }
        )
    rows_exp = [r for r in reading.get("samples", []) if r.get("expected")]
    if rows_exp:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "expected (model, range)",
                "x": [r["sampled_at"] for r in rows_exp],
                "y": [r["expected"]["value"] for r in rows_exp],
                "xaxis": "x",
                "yaxis": "y2",
                "marker": {"symbol": "line-ew-open", "size": 14},
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [r["expected"]["high"] - r["expected"]["value"] for r in rows_exp],
                    "arrayminus": [r["expected"]["value"] - r["expected"]["low"] for r in rows_exp],
                },
            }
        )
    return traces


def plan_figure(plan: Plan, version_label: str = "draft") -> dict[str, Any]:
    """A draft plan's chart for the plan builder: daily dose steps, predicted level and occupancy."""
    xs, ys = _plan_steps_xy(plan)
    curves = plan_curves(knowledge(), plan, step_h=6.0)
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{version_label}: diazepam-eq mg/day",
                "x": xs,
                "y": ys,
                "line": {"shape": "hv"},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "predicted level (ng/mL, typical patient)",
                **_time_axis(datetime.combine(plan.start, time()), curves.times_h),
                "y": np.round(curves.deq[0], 1).tolist(),
                "yaxis": "y2",
            },
        ],
        "layout": {
            "height": 360,
            "margin": {"l": 60, "r": 60, "t": 10, "b": 40},
            "legend": {"orientation": "h", "y": -0.15},
            "xaxis": {"type": "date"},
            "yaxis": {"title": {"text": "mg/day"}},
            "yaxis2": {"title": {"text": "ng/mL"}, "overlaying": "y", "side": "right"},
        },
    }


DAY_MS = 86_400_000.0
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def comparison_figure(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The side-by-side as a line chart: each plan's predicted daily trough in each patient, over time.

    One trace per comparison row (day 0 at its `start_date`, one point a day, sent as x0/dx), coloured by
    patient (fast / this patient / slow: both plans of a person share a colour) and styled by plan (guided
    solid, fixed dotted). Rows without the daily troughs (an older JSON) are skipped.
    """
    drawn = [r for r in rows if r.get("daily_trough_ng_ml") and r.get("start_date")]
    people = list(dict.fromkeys(r["patient"] for r in drawn))
    colour = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(people)}
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"{r['patient']}: {r['plan']}",
            "legendgroup": r["patient"],
            "x0": r["start_date"],
            "dx": DAY_MS,
            "y": list(r["daily_trough_ng_ml"]),
            "line": {"color": colour[r["patient"]], "dash": "solid" if str(r["plan"]).startswith("guided") else "dot"},
            "hovertemplate": "%{y:.1f} ng/mL",
        }
        for r in drawn
    ]
    layout = {
        "height": 340,
        "margin": {"l": 60, "r": 20, "t": 10, "b": 40},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.15},
        "xaxis": {"type": "date"},
        "yaxis": {"title": {"text": "predicted trough (diazepam-eq ng/mL)"}, "rangemode": "tozero"},
    }
    return {"data": data, "layout": layout}
