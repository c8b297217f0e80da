"""`benzotaper plan`: a taper plan from a prescription, with PDF, ICS, CSV and chart outputs.

Kept apart from cli.py so each file stays one concept; registered on the same Typer app.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from benzotaper.assess.crisis import crisis_help
from benzotaper.clitools import JsonOpt, _emit, _guard, out
from benzotaper.errors import PlanError
from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.regimen import parse_regimens
from benzotaper.taper.event_file import read_events
from benzotaper.taper.levels import plan_curves, step_level_rows
from benzotaper.taper.plan import Event, Plan
from benzotaper.taper.planner import PlanOptions
from benzotaper.taper.replan import replan

Opt = typer.Option


def _date(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PlanError(f"{name} must be a date YYYY-MM-DD (got {value!r})") from None


def plan_command(
    sig: Annotated[str, typer.Argument(help="Current regimen, e.g. 'alprazolam 2 mg tds'")],
    strategy: Annotated[
        str, Opt("--strategy", help="ashton, nice_cks, jcpg, maudsley, deprescribing_org, slow, standard, fast")
    ] = "ashton",
    start: Annotated[str | None, Opt("--start", help="First day YYYY-MM-DD (default today)")] = None,
    to: Annotated[str | None, Opt("--to", help="Long-acting drug to switch to (default diazepam)")] = None,
    switch: Annotated[
        str, Opt("--switch", help="auto, stepwise, direct, none or later (switch only once the tablets are too coarse)")
    ] = "auto",
    first_dose: Annotated[str, Opt("--first-dose", help="Dose switched first: evening or morning")] = "evening",
    end_by: Annotated[str | None, Opt("--end-by", help="Finish by this date: gentlest pace that fits")] = None,
    interval: Annotated[int | None, Opt("--interval", help="Days between reductions")] = None,
    fraction: Annotated[float | None, Opt("--fraction", help="Reduction fraction, e.g. 0.1")] = None,
    amount: Annotated[float | None, Opt("--amount", help="Linear step, mg diazepam-equivalent")] = None,
    market: Annotated[str | None, Opt("--market", help="Use products of this market (UK, US, ...)")] = None,
    quarters: Annotated[bool, Opt("--quarters", help="Allow quarter tablets (scored only)")] = False,
    override: Annotated[str | None, Opt("--override-reason", help="Clinician's reason to lift the rate limit")] = None,
    events: Annotated[Path | None, Opt("--events", help="CSV of holds, returns and scores to re-plan")] = None,
    pdf: Annotated[Path | None, Opt("--pdf", help="Patient calendar PDF")] = None,
    ics: Annotated[Path | None, Opt("--ics", help="iCalendar reminders")] = None,
    csv_path: Annotated[Path | None, Opt("--csv", help="Steps as CSV")] = None,
    chart: Annotated[Path | None, Opt("--chart", help="Chart: .png or .html")] = None,
    country: Annotated[str | None, Opt("--country", help="Crisis lines of this country on the PDF (e.g. GB)")] = None,
    guided_by: Annotated[
        Path | None, Opt("--guided-by", help="Levels CSV: let this patient's measured levels set the pace")
    ] = None,
    since: Annotated[
        str | None, Opt("--since", help="With --guided-by: the regimen was taken since YYYY-MM-DD")
    ] = None,
    level_fall: Annotated[
        float | None, Opt("--level-fall", help="With --guided-by: target fall of the trough level, percent per week")
    ] = None,
    trajectory: Annotated[
        str, Opt("--trajectory", help="With --guided-by: guide the 'level' or 'occupancy'")
    ] = "level",
    json_out: JsonOpt = False,
) -> None:
    """Plan a taper: substitution to a long-acting drug, then a guideline (or serum-guided) reduction to zero."""
    knowledge = _guard(load_knowledge)
    options = _guard(
        lambda: PlanOptions(
            start=_date("--start", start) or date.today(),
            strategy=strategy,
            to=to,
            switch=switch,
            end_by=_date("--end-by", end_by),
            interval_days=interval,
            fraction=fraction,
            amount_mg=amount,
            market=market,
            quarters=quarters,
            override_reason=override,
            first_dose=first_dose,
        )
    )
    guided: dict[str, Any] | None = None
    if guided_by is not None:
        plan, guided = _guard(
            lambda: _guided(knowledge, sig, options, guided_by, since, level_fall, trajectory, events)
        )
    else:
        plan = _guard(lambda: _make(knowledge, sig, options, events))
    curves = _guard(lambda: plan_curves(knowledge, plan))
    crisis = _guard(lambda: crisis_text(country)) if country else None
    files = _guard(lambda: _write(plan, curves, pdf, ics, csv_path, chart, crisis))
    if json_out:
        payload = _payload(knowledge, plan, curves, files)
        if guided is not None:
            payload["guided"] = guided
        _emit(payload)
        return
    _print(plan, files)
    if guided is not None:
        _print_guided(guided)


def _guided(
    knowledge: Knowledge,
    sig: str,
    options: PlanOptions,
    levels: Path,
    since: str | None,
    level_fall: float | None,
    trajectory: str,
    events: Path | None,
) -> tuple[Plan, dict[str, Any]]:
    from benzotaper.tdm.guided import default_trajectory, fall_bounds
    from benzotaper.tdm.samples import load_samples
    from benzotaper.tdm.service import guided_levels_plan

    first = _date("--since", since)
    if first is None:
        raise PlanError("--guided-by needs --since YYYY-MM-DD: the day the current regimen was started")
    highest = 100 * fall_bounds().highest
    if level_fall is not None and not 0 < level_fall <= highest:
        raise PlanError(
            f"--level-fall is a percentage per week, more than 0 and at most {highest:g} (got {level_fall:g})"
        )
    traj = default_trajectory(trajectory, level_fall / 100 if level_fall is not None else None)
    samples = load_samples(knowledge, levels)
    before = [s for s in samples if s.sampled_at.date() <= options.start]
    plan, extra = guided_levels_plan(knowledge, before or samples, sig, first, options, traj)
    if events is not None:
        plan = _guided_events(knowledge, plan, read_events(events), samples, sig, first, options, traj)
    return plan, extra


def _guided_events(
    knowledge: Knowledge,
    plan: Plan,
    events: list[Event],
    samples: list[Any],
    sig: str,
    since: date,
    options: PlanOptions,
    traj: Any,
) -> Plan:
    """Holds, returns and scores applied to the guided plan in date order, each re-planned from every level."""
    from benzotaper.tdm.replan_guided import original_patient, replan_guided

    patient = original_patient(knowledge, samples, sig, since, plan, options)
    for event in sorted(events, key=lambda e: e.day):
        plan, _ = replan_guided(knowledge, patient, plan, samples, event.day, options, traj, event)
    return plan


def _print_guided(guided: dict[str, Any]) -> None:
    fit = guided["fit"]
    out.print(
        f"[bold]Serum-guided[/]: {fit['eliminator']} eliminator, clearance {fit['clearance_ratio']:.2f} x typical "
        f"(population centile {fit['classification']['population_centile']:.0%}); target fall "
        f"{guided['trajectory']['fall_per_week']:.1%}/week of the {guided['trajectory']['kind']}"
    )
    table = Table(title="Fixed schedule vs guided plan", pad_edge=False)
    for col in ("plan", "patient", "ends", "steps", "max fall in a week", "weeks over target"):
        table.add_column(col)
    for row in guided["comparison"]:
        table.add_row(
            row["plan"],
            row["patient"],
            row["end_date"],
            str(row["steps"]),
            f"{row['max_weekly_fall']:.0%}",
            str(row["weeks_over_target"]),
        )
    out.print(table)
    for sample in guided["next_samples"]:
        out.print(f"Next level: {sample['at']} ({sample['when']})")


def _make(knowledge: Knowledge, sig: str, options: PlanOptions, events: Path | None) -> Plan:
    regimens = parse_regimens(sig, knowledge, start=options.start)
    return replan(knowledge, regimens, options, read_events(events) if events else [], sig)


def crisis_text(country: str) -> str:
    """The PDF's help line for a country: crisis lines and the emergency number (assess/crisis.py data)."""
    return crisis_help(country).help_line()


def _write(
    plan: Plan,
    curves: Any,
    pdf: Path | None,
    ics: Path | None,
    csv_path: Path | None,
    chart: Path | None,
    crisis: str | None = None,
) -> dict[str, str]:
    files: dict[str, str] = {}
    if csv_path is not None:
        from benzotaper.report.plan_csv import write_csv

        files["csv"] = str(write_csv(plan, csv_path))
    if ics is not None:
        from benzotaper.report.plan_ics import write_ics

        files["ics"] = str(write_ics(plan, ics))
    if pdf is not None:
        from benzotaper.report.plan_pdf import write_pdf

        files["pdf"] = str(write_pdf(plan, pdf, crisis_text=crisis))
    if chart is not None:
        from benzotaper.report.plan_chart import plot_plan_html, plot_plan_png

        if chart.suffix.lower() not in (".png", ".html"):
            raise PlanError(f"--chart must end in .png or .html (got {chart.name!r})")
        files["chart"] = str(
            (plot_plan_html if chart.suffix.lower() == ".html" else plot_plan_png)(plan, curves, chart)
        )
    return files


def _payload(knowledge: Knowledge, plan: Plan, curves: Any, files: dict[str, str]) -> dict[str, Any]:
    payload = plan.to_dict()
    payload["levels"] = step_level_rows(plan, curves)
    payload["source_citations"] = {k: knowledge.source(k).citation for k in plan.sources if k in knowledge.sources}
    payload["files"] = files
    return payload


def _print(plan: Plan, files: dict[str, str]) -> None:
    out.rule(f"[bold]{plan.strategy_name}[/] taper for {plan.regimen}")
    out.print(
        f"Equivalence table: {plan.table}; {plan.start} to {plan.end_date} "
        f"({(plan.end_date - plan.start).days / 7:.0f} weeks, {len(plan.steps)} steps)"
    )
    table = Table(show_lines=False, pad_edge=False)
    for col in ("#", "from", "days", "phase", "doses (mg)", "DZ-eq"):
        table.add_column(col, no_wrap=col != "doses (mg)")
    for s in plan.steps:
        doses = ", ".join(f"{d.time:%H:%M} {d.drug} {d.mg:g}" for d in s.doses) or "stop: no more doses"
        table.add_row(str(s.index), str(s.start), str(s.days), s.phase[:5], doses, f"{s.diazepam_equivalent_mg:g}")
    out.print(table)
    for w in plan.warnings:
        out.print(f"[yellow]warning:[/] {w}", highlight=False)
    out.print(
        "[bold]Never stop a benzodiazepine abruptly after regular use.[/] Seizures, confusion or thoughts of "
        "self-harm need urgent help: call your local emergency number."
    )
    out.print("Tablets per dose, the rule and sources of every step: --json, --csv or --pdf.")
    for kind, path in files.items():
        out.print(f"{kind}: {path}")
