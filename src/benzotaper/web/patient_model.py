"""This patient's model from the levels on record: the core's MAP fit, eliminator label and trough forecast.

Shaped for the patient page, its chart and `GET /api/patients/{id}/fit`; computed once per data version
(`page_cache.cached`), never per view. Every number comes from `tdm.service` and `tdm.advice`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone

from benzotaper.errors import BenzotaperError
from benzotaper.tdm.advice import next_trough
from benzotaper.tdm.service import fit_levels
from benzotaper.web import clinic_clock, kb, level_records, page_cache, plan_records, prescriptions
from benzotaper.web import models as m

FORECAST_DAYS = 28


def _now() -> datetime:
    return timezone.localtime().replace(tzinfo=None)


def _level_row(lv: m.Level) -> dict[str, Any]:
    return {
        "id": lv.pk,
        "sampled_at": clinic_clock.local(lv.sampled_at).isoformat(timespec="minutes"),
        "analyte": lv.analyte,
        "value_ng_ml": lv.value_ng_ml,
    }


def _forecast(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The core's daily troughs as one row per analyte and day: {at, analyte, low_ng_ml, mid_ng_ml, high_ng_ml}."""
    rows = []
    for p in points:
        for analyte, band in p.get("analyte_bands", {}).items():
            rows.append(
                {
                    "at": p["at"],
                    "analyte": analyte,
                    "low_ng_ml": round(band["low"], 3),
                    "mid_ng_ml": round(band["value"], 3),
                    "high_ng_ml": round(band["high"], 3),
                }
            )
    return rows


def _planned_sample(patient: m.Patient, now: datetime) -> dict[str, Any] | None:
    """The approved plan's next advised trough sample still ahead, if any."""
    record = plan_records.approved_plan(patient)
    for advice in record.plan.get("sampling", []) if record else []:
        if datetime.fromisoformat(advice["at"]) >= now:
            return {**advice, "from_plan_version": record.version if record else None}
    return None


def _next_sample(patient: m.Patient, sig: str, since: date, why: str) -> dict[str, Any] | None:
    now = _now()
    planned = _planned_sample(patient, now)
    if planned is not None:
        return planned
    try:
        return next_trough(kb.knowledge(), sig, since, now, why)
    except BenzotaperError:
        return None


def _no_fit(reason: str, used: list[dict[str, Any]], excluded: list[dict[str, Any]], nxt: Any) -> dict[str, Any]:
    return {
        "eliminator": None,
        "reason": reason,
        "clearance_ratio": None,
        "samples_used": used,
        "samples_excluded": excluded,
        "forecast": [],
        "next_sample": nxt,
    }


def compute_fit(patient: m.Patient) -> dict[str, Any]:
    """The fit of the levels taken on the current regimen, or the reason there is none and what to sample."""
    sig, since = prescriptions.current_sig(patient), prescriptions.current_since(patient)
    levels = list(patient.levels.all())
    if not sig or since is None:
        excluded = [{**_level_row(lv), "reason": "no current regimen is recorded"} for lv in levels]
        return _no_fit(
            "record the current regimen first: the fit reads levels against the doses taken", [], excluded, None
        )
    samples = level_records.samples(patient)
    by_row = {s.row: lv for s, lv in zip(samples, levels, strict=True)}
    excluded = [
        {**_level_row(by_row[s.row]), "reason": f"sampled before the current regimen began on {since}"}
        for s in samples
        if s.sampled_at.date() < since
    ]
    current = [s for s in samples if s.sampled_at.date() >= since]
    ask = "a first trough level on the current regimen lets the fit say how fast this patient clears the drug"
    if not current:
        return _no_fit(
            "no level has been taken on the current regimen", [], excluded, _next_sample(patient, sig, since, ask)
        )
    try:
        out = fit_levels(kb.knowledge(), current, sig, since, days=FORECAST_DAYS)
    except BenzotaperError as exc:
        return _no_fit(str(exc), [], excluded, _next_sample(patient, sig, since, ask))
    left_out = {e["row"]: e["reason"] for e in out.get("rows_excluded", [])}
    used = [_level_row(by_row[r]) for r in out.get("rows_used", [])]
    excluded += [{**_level_row(by_row[r]), "reason": why} for r, why in left_out.items()]
    if not used:
        return _no_fit("no level on record can inform the fit", [], excluded, _next_sample(patient, sig, since, ask))
    again = "a further trough narrows the interval of this patient's clearance and checks the forecast"
    return {
        "eliminator": out["eliminator"],
        "reason": None,
        "clearance_ratio": out["clearance_ratio"],
        "classification": out["classification"],
        "parameters": out["parameters"],
        "samples_used": used,
        "samples_excluded": excluded,
        "forecast": _forecast(out["forecast"]),
        "forecast_interval": out["interval"],
        "next_sample": _next_sample(patient, sig, since, again),
        "converged": out["converged"],
        "notes": out["notes"],
        "sources": sorted({*out["sources"], *out["classification"].get("sources", [])}),
        "regimen": sig,
        "since": str(since),
    }


def patient_fit(patient: m.Patient, key: str | None = None) -> dict[str, Any]:
    """`compute_fit`, cached under the patient's data version (recomputed only when their records change)."""
    return page_cache.cached("fit", patient, lambda: compute_fit(patient), key)


def samples_due(patient: m.Patient, fit: dict[str, Any]) -> list[dict[str, Any]]:
    """Trough samples advised by the approved plan (and the fit's next one), each marked overdue or not."""
    now = _now()
    record = plan_records.approved_plan(patient)
    last = patient.levels.order_by("-sampled_at").first()
    last_at = clinic_clock.local(last.sampled_at) if last else datetime.min
    out: list[dict[str, Any]] = []
    for advice in record.plan.get("sampling", []) if record else []:
        due = datetime.fromisoformat(advice["at"])
        if last_at >= due - timedelta(days=1):
            continue  # taken (a level on record around or after the advised time)
        out.append({**advice, "overdue": due < now, "plan_version": record.version if record else None})
    nxt = fit.get("next_sample")
    if nxt and not any(o["at"] == nxt["at"] for o in out):
        out.append({**nxt, "overdue": datetime.fromisoformat(nxt["at"]) < now, "plan_version": None})
    return sorted(out, key=lambda o: o["at"])


def forecast_traces(fit: dict[str, Any]) -> list[dict[str, Any]]:
    """The forecast band (90%) and MAP trough per analyte, for the patient chart's level axis."""
    traces: list[dict[str, Any]] = []
    by: dict[str, list[dict[str, Any]]] = {}
    for row in fit.get("forecast", []):
        by.setdefault(row["analyte"], []).append(row)
    for analyte, rows in by.items():
        xs = [r["at"] for r in rows]
        name = f"{analyte} forecast (this patient, 90% band)"
        common = {"type": "scatter", "mode": "lines", "xaxis": "x", "yaxis": "y2", "legendgroup": name}
        traces.append(
            {
                **common,
                "name": name,
                "x": xs,
                "y": [r["high_ng_ml"] for r in rows],
                "line": {"width": 0},
                "showlegend": False,
            }
        )
        traces.append(
            {
                **common,
                "name": name,
                "x": xs,
                "y": [r["low_ng_ml"] for r in rows],
                "line": {"width": 0},
                "fill": "tonexty",
                "fillcolor": "rgba(214,39,40,0.18)",
            }
        )
        traces.append(
            {
                **common,
                "name": f"{analyte} forecast trough (this patient)",
                "x": xs,
                "y": [r["mid_ng_ml"] for r in rows],
                "line": {"dash": "dot", "color": "#d62728"},
            }
        )
    return traces
