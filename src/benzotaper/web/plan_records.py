"""Taper plans between the records and the core: options, build, rebuild a saved version, today's step, files."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

from benzotaper.taper.levels import plan_curves, step_level_rows
from benzotaper.taper.plan import Event, Plan
from benzotaper.taper.planner import PlanOptions
from benzotaper.taper.replan import replan
from benzotaper.tdm.service import sampling_advice
from benzotaper.web import models as m
from benzotaper.web.clinic_clock import today
from benzotaper.web.kb import knowledge
from benzotaper.web.page_cache import cached
from benzotaper.web.prescriptions import parse_sig

STRATEGIES = ("ashton", "nice_cks", "jcpg", "maudsley", "deprescribing_org", "slow", "standard", "fast")


def plan_options(raw: dict[str, Any]) -> PlanOptions:
    """PlanOptions from stored or submitted values (dates as ISO text)."""

    def day(key: str) -> date | None:
        value = raw.get(key)
        return date.fromisoformat(value) if value else None

    return PlanOptions(
        start=day("start") or today(),
        strategy=str(raw.get("strategy") or "ashton"),
        to=raw.get("to") or None,
        switch=str(raw.get("switch") or "auto"),
        market=raw.get("market") or None,
        quarters=bool(raw.get("quarters")),
        interval_days=int(raw["interval_days"]) if raw.get("interval_days") else None,
        fraction=float(raw["fraction"]) if raw.get("fraction") else None,
        end_by=day("end_by"),
        override_reason=raw.get("override_reason") or None,
        first_dose=str(raw.get("first_dose") or "evening"),
    )


def hold_events(patient: m.Patient) -> list[Event]:
    """The patient's holds and returns as the planner's events."""
    return [Event(day=h.day, kind=h.kind, days=h.days, note=h.reason) for h in patient.holds.all()]


def build_plan(sig: str, options: dict[str, Any], events: Iterable[Event] = ()) -> Plan:
    """A taper plan from a regimen and options, with holds applied (the CLI's `plan` path)."""
    opts = plan_options(options)
    regimens = parse_sig(sig, opts.start)
    return replan(knowledge(), regimens, opts, list(events), sig)


def stored_plan(record: m.Plan) -> Plan:
    """Rebuild a saved plan from its inputs (the core is deterministic) for PDF, ICS and CSV files."""
    from benzotaper.web import guided

    if guided.is_guided(record.options) or record.options.get("replanned"):
        return guided.stored_guided_plan(record)
    events = [
        Event(day=date.fromisoformat(e["date"]), kind=e["kind"], days=e["days"], note=e.get("note", ""))
        for e in record.options.get("events", [])
    ]
    return build_plan(record.sig, record.options, events)


def plan_payload(plan: Plan) -> dict[str, Any]:
    """The plan's JSON with the typical patient's settled level and occupancy per step."""
    payload = plan.to_dict()
    curves = plan_curves(knowledge(), plan)
    payload["levels"] = step_level_rows(plan, curves)
    payload["sampling"] = sampling_advice(plan)
    return payload


def approved_plan(patient: m.Patient) -> m.Plan | None:
    """The newest approved plan version."""
    return patient.plans.filter(status="approved").order_by("-version").first()


def todays_plan(patient: m.Patient, key: str | None = None) -> dict[str, Any] | None:
    """The approved plan's version, today's step and the next change (cached: a long plan costs ~1 ms), or None.

    `next` is the first step starting after today and `next_start` its first day, so the diary can say
    what changes when; a draft re-plan is never read here, only the approved version.
    """

    def compute() -> dict[str, Any] | None:
        record = approved_plan(patient)
        if record is None:
            return None
        upcoming = next_step(record.plan, today())
        return {
            "version": record.version,
            "step": step_on(record.plan, today()),
            "next": upcoming,
            "next_start": date.fromisoformat(upcoming["start"]) if upcoming else None,
        }

    return cached("today-plan", patient, compute, key)


def next_step(plan_json: dict[str, Any], day: date) -> dict[str, Any] | None:
    """The first plan step starting after `day`, or None when no change is left."""
    iso = day.isoformat()
    return next((dict(s) for s in plan_json.get("steps", []) if s["start"] > iso), None)


def step_on(plan_json: dict[str, Any], day: date) -> dict[str, Any] | None:
    """The plan step running on `day`, or None before the start / after the end."""
    iso = day.isoformat()
    for step in plan_json.get("steps", []):
        if step["start"] <= iso <= step["end"]:
            return dict(step)
    return None


def plan_files(record: m.Plan, kind: str, crisis: str | None) -> tuple[bytes, str]:
    """A saved plan as PDF calendar, iCalendar or CSV bytes, with its content type."""
    from benzotaper.report.plan_csv import write_csv
    from benzotaper.report.plan_ics import write_ics
    from benzotaper.report.plan_pdf import write_pdf

    plan = stored_plan(record)
    writers: dict[str, tuple[Callable[[Path], Any], str]] = {
        "pdf": (lambda p: write_pdf(plan, p, crisis_text=crisis), "application/pdf"),
        "ics": (lambda p: write_ics(plan, p), "text/calendar"),
        "csv": (lambda p: write_csv(plan, p), "text/csv"),
    }
    write, content_type = writers[kind]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"plan.{kind}"
        write(path)
        return path.read_bytes(), content_type
