"""Taper plan as an iCalendar file: daily dose reminders per step and time, plus step-change and end-of-taper days.

Times are floating (no time zone), so a phone shows 08:00 wherever the patient is.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

from icalendar import Alarm, Calendar, Event

from benzotaper.report.plan_common import by_time, daily_total, mg_text
from benzotaper.taper.plan import Dose, Plan, Step

PRODID = "-//benzotaper//taper plan//EN"
DOMAIN = "benzotaper"
DOSE_MINUTES = 15
END_TEXT = "Last dose taken — taper complete; keep in touch with your prescriber"


def _uid(plan: Plan, *parts: object) -> str:
    """Stable UID from the plan start and the event's identity (same plan -> same UIDs, so re-imports update)."""
    return "-".join([plan.start.strftime("%Y%m%d"), *map(str, parts)]) + f"@{DOMAIN}"


def _summary(doses: list[Dose]) -> str:
    """'Take diazepam 5 mg' (drugs at the same time joined with ' + ')."""
    return "Take " + " + ".join(f"{d.drug} {mg_text(d.mg)}" for d in doses)


def _description(step: Step, doses: list[Dose]) -> str:
    """What to take (one portion a line), then the step and why."""
    lines = [p.label() for d in doses for p in d.portions]
    lines += ["", f"Step {step.index} ({step.phase}): {daily_total(step)}", step.rule]
    lines += [f"Warning: {w}" for w in step.warnings]
    return "\n".join(lines)


def _dose_event(plan: Plan, step: Step, at: time, doses: list[Dose], reminder_minutes: int) -> Event:
    """One dose time of one step, recurring daily for the step's days, with a display alarm."""
    start = datetime.combine(step.start, at)
    summary = _summary(doses)
    event = Event.new(
        uid=_uid(plan, "step", step.index, at.strftime("%H%M")),
        start=start,
        end=start + timedelta(minutes=DOSE_MINUTES),
        summary=summary,
        description=_description(step, doses),
    )
    event.add("rrule", {"freq": "daily", "count": step.days})
    alarm = Alarm.new(description=summary)
    alarm.add("action", "DISPLAY")
    alarm.add("trigger", timedelta(minutes=-reminder_minutes))
    event.add_component(alarm)
    return event


def _day_event(uid: str, day: date, summary: str, description: str = "") -> Event:
    """An all-day marker event."""
    return Event.new(uid=uid, start=day, end=day + timedelta(days=1), summary=summary, description=description or None)


def calendar(plan: Plan, reminder_minutes: int = 0) -> Calendar:
    """The calendar: dose events for every step with doses, a marker at each step start, and one at the end."""
    cal = Calendar.new(prodid=PRODID, uid=_uid(plan, "plan"), name=f"Taper plan: {plan.regimen}")
    for step in plan.steps:
        if not step.doses or step.days < 1:
            continue
        for at, doses in by_time(step):
            cal.add_component(_dose_event(plan, step, at, doses, reminder_minutes))
        cal.add_component(
            _day_event(
                _uid(plan, "step", step.index, "start"),
                step.start,
                f"Step {step.index} starts: {daily_total(step)}",
                step.rule,
            )
        )
    cal.add_component(_day_event(_uid(plan, "end"), plan.end_date, END_TEXT))
    return cal


def write_ics(plan: Plan, path: Path, reminder_minutes: int = 0) -> Path:
    """Write the plan's calendar (alarms `reminder_minutes` before each dose) and return the path."""
    path.write_bytes(calendar(plan, reminder_minutes).to_ical())
    return path
