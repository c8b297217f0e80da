"""The patient page's data: today's regimen and step, and everything heavy, once per data version."""

from __future__ import annotations

from typing import Any

from benzotaper.errors import BenzotaperError
from benzotaper.web import models as m
from benzotaper.web.charts import patient_chart
from benzotaper.web.clinic_clock import today
from benzotaper.web.kb import safety_net
from benzotaper.web.level_records import level_reading
from benzotaper.web.mirror_records import mirror
from benzotaper.web.page_cache import cached
from benzotaper.web.patient_alerts import alerts
from benzotaper.web.plan_records import approved_plan, step_on
from benzotaper.web.prescriptions import current_sig, current_since, regimen_preview
from benzotaper.web.safety import crisis_for, risk


def summary(patient: m.Patient) -> dict[str, Any]:
    """Today's regimen with its diazepam-equivalent dose, the active plan and today's step."""
    sig = current_sig(patient)
    preview = None
    error = None
    if sig:
        try:
            preview = regimen_preview(sig, current_since(patient) or today())
        except BenzotaperError as exc:
            error = str(exc)
    record = approved_plan(patient)
    step = step_on(record.plan, today()) if record else None
    return {"sig": sig, "preview": preview, "error": error, "plan": record, "step": step}


def page_data(patient: m.Patient, key: str | None = None) -> dict[str, Any]:
    """Everything heavy on the patient page, computed by the core once per data version and day.

    The figure is kept as ready-to-embed JSON text, so a cached view does no serialising.
    """
    from django.utils.html import json_script

    def compute() -> dict[str, Any]:
        s = summary(patient)
        record = s.pop("plan")
        s["plan"] = (
            None
            if record is None
            else {
                "version": record.version,
                "strategy_name": record.plan.get("strategy_name", ""),
                "end_date": record.plan.get("end_date", ""),
            }
        )
        from benzotaper.web.patient_model import patient_fit, samples_due

        fit = patient_fit(patient, key)
        heavy = patient_chart(patient, fit)
        return {
            "fit": fit,
            "samples_due": samples_due(patient, fit),
            "replans": [
                {"id": r.pk, "reason": r.reason, "changes": len(r.changes)}
                for r in patient.replans.filter(status="waiting")
            ],
            "summary": s,
            "alerts": alerts(patient),
            "risk": risk(patient),
            "mirror": mirror(patient),
            "levels": level_reading(patient),
            "figure_json": str(json_script(heavy, "figure-data")),
            "help": crisis_for(patient).to_dict(safety_net()),
        }

    return cached("page", patient, compute, key)
