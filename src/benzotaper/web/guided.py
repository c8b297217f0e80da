"""Plans guided by this patient's levels: the core's guided planner fed from the records, and rebuilt from them.

A guided plan version stores, next to the usual options, what it was guided by (`options["guided"]`:
weekly fall, trajectory, the regimen's start and the levels used), so a re-plan starts from the same
patient model. Its steps are read back from the stored JSON (the core is deterministic, but re-running the
fit for every chart would cost a second).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from benzotaper.errors import LevelsError, PlanError
from benzotaper.fhir.plan_json import plan_from_json
from benzotaper.taper.plan import Plan
from benzotaper.taper.planner import PlanOptions
from benzotaper.tdm.guided import Trajectory, default_trajectory, fall_bounds
from benzotaper.tdm.samples import Sample
from benzotaper.tdm.service import guided_levels_plan
from benzotaper.web import clinic_clock, kb, level_records, plan_records, prescriptions
from benzotaper.web import models as m

FALL = fall_bounds()  # percent in the forms and the API: FALL.lowest * 100 .. FALL.highest * 100
GUIDED_DEFAULTS = {"level_fall": 100 * FALL.default, "trajectory": "occupancy", "switch": "later"}


def is_guided(options: dict[str, Any]) -> bool:
    """Whether stored plan options describe a serum-guided plan."""
    return bool(options.get("guided"))


def trajectory_of(guided: dict[str, Any]) -> Trajectory:
    """The core's trajectory from stored options (weekly fall in percent)."""
    return default_trajectory(str(guided.get("trajectory") or "level"), float(guided["level_fall"]) / 100.0)


def _sample_json(s: Sample) -> dict[str, Any]:
    return {
        "row": s.row,
        "sampled_at": s.sampled_at.isoformat(timespec="minutes"),
        "analyte": s.analyte,
        "value": s.value,
        "lloq": s.lloq,
        "last_dose_at": s.last_dose_at.isoformat(timespec="minutes") if s.last_dose_at else None,
    }


def samples_from(rows: list[dict[str, Any]]) -> list[Sample]:
    """Stored level snapshots back into the core's samples."""
    return [
        Sample(
            row=int(r["row"]),
            sampled_at=datetime.fromisoformat(r["sampled_at"]),
            analyte=r["analyte"],
            value=r["value"],
            lloq=r.get("lloq"),
            last_dose_at=datetime.fromisoformat(r["last_dose_at"]) if r.get("last_dose_at") else None,
        )
        for r in rows
    ]


def current_samples(patient: m.Patient, since: date) -> list[Sample]:
    """The patient's levels taken on the current regimen."""
    return [s for s in level_records.samples(patient) if s.sampled_at.date() >= since]


def build_guided(patient: m.Patient, options: dict[str, Any]) -> tuple[Plan, dict[str, Any], dict[str, Any]]:
    """The guided plan, its explanation (fit, comparison, next samples) and the options to store with it."""
    sig, since = prescriptions.current_sig(patient), prescriptions.current_since(patient)
    if not sig or since is None:
        raise PlanError("no current regimen: record one first")
    samples = current_samples(patient, since)
    if not samples:
        raise LevelsError(f"no level has been taken on the current regimen (since {since}); record a trough first")
    merged = {**GUIDED_DEFAULTS, **{k: v for k, v in options.items() if v not in (None, "")}}
    opts: PlanOptions = plan_records.plan_options(merged)
    _check_start(opts.start, since)
    traj = trajectory_of(merged)
    plan, extra = guided_levels_plan(kb.knowledge(), samples, sig, since, opts, traj)
    stored = {k: v for k, v in merged.items() if k not in ("level_fall", "trajectory")}
    stored["guided"] = {
        "level_fall": float(merged["level_fall"]),
        "trajectory": traj.kind,
        "since": since.isoformat(),
        "levels": [_sample_json(s) for s in samples],
    }
    return plan, extra, stored


# An input bound, not a clinical fact: the model is fitted to the levels taken now, and simulating to a start
# years away took minutes (start 7204-08-03: 607 s, found by the API fuzz). Plan later with later levels.
START_LEAD_DAYS = 365


def _check_start(start: date, since: date) -> None:
    """The first day lies between the current regimen's start and START_LEAD_DAYS from today."""
    latest = clinic_clock.today() + timedelta(days=START_LEAD_DAYS)
    if not since <= start <= latest:
        raise PlanError(
            f"start {start.isoformat()} is not accepted: the plan starts, when guided by the current levels, "
            f"between the regimen's start {since.isoformat()} and {latest.isoformat()} "
            f"({START_LEAD_DAYS} days from today)"
        )


def stored_guided_plan(record: m.Plan) -> Plan:
    """A saved guided plan read back from its JSON."""
    return replace(plan_from_json(record.plan), regimen=record.sig)


def sample_dates(extra: dict[str, Any]) -> list[str]:
    """When the guided plan asks for the next trough samples (ISO date and time)."""
    return [s["at"] for s in extra.get("next_samples", [])]
