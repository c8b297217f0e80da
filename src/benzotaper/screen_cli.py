"""`benzotaper screen | risk | crisis | pathways`: dependence screen, risk and setting, crisis lines, treatments.

Registered on the shared Typer app when cli.py imports this module. Bad input: one line on stderr, exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from benzotaper.assess.crisis import CrisisHelp, crisis_help, known_countries, source_list
from benzotaper.assess.dependence import screen_dependence
from benzotaper.assess.instruments import score
from benzotaper.assess.redflags import Alert
from benzotaper.assess.risk import RiskProfile, assess_risk
from benzotaper.assess_cli import read_json_file
from benzotaper.clitools import JsonOpt, _emit, _fail, _guard, app, out
from benzotaper.errors import AssessmentError
from benzotaper.knowledge import load_knowledge
from benzotaper.knowledge.instruments import load_instruments
from benzotaper.knowledge.safety_net import CATEGORIES, SafetyNet, load_safety_net

Opt = typer.Option


def read_json(path: Path, what: str) -> Any:
    """A JSON file, or an AssessmentError naming the file and the problem (see `read_json_file`)."""
    return read_json_file(path, what)


def _sds(sds: Path | None, sds_score: int | None, cutoff_id: str | None) -> tuple[int | None, int | None]:
    """SDS total and cut-off from an answers file (scored by the SDS instrument) or a given score."""
    if sds is not None and sds_score is not None:
        raise AssessmentError("give --sds answers.json or --sds-score N, not both")
    if sds is None and sds_score is None:
        return None, None
    instrument = load_instruments().get("sds")
    if instrument is None:
        raise AssessmentError("the SDS instrument file is missing (knowledge/data/assess/instruments/sds.toml)")
    if sds is not None:
        result = score(instrument, read_json(sds, "SDS answers"), cutoff_id)
        return result.total, result.cutoff.value if result.cutoff else None
    assert sds_score is not None
    if not instrument.min_score <= sds_score <= instrument.max_score:
        raise AssessmentError(f"--sds-score must be {instrument.min_score}-{instrument.max_score} (got {sds_score})")
    cutoff = instrument.cutoff(cutoff_id)
    if cutoff is None:
        ids = ", ".join(c.id for c in instrument.cutoffs)
        raise AssessmentError(f"--sds-cutoff {cutoff_id!r} is not an SDS cut-off; use one of: {ids}")
    return sds_score, cutoff.value


@app.command("screen")
def screen_command(
    answers: Annotated[
        Path | None, Opt("--answers", help="JSON object: sign -> yes/no (see docs/screening.md)")
    ] = None,
    sds: Annotated[Path | None, Opt("--sds", help="SDS answers JSON, scored by the SDS instrument")] = None,
    sds_score: Annotated[int | None, Opt("--sds-score", help="SDS total already scored (0-15)")] = None,
    sds_cutoff: Annotated[
        str | None, Opt("--sds-cutoff", help="SDS cut-off id: de_las_cuevas (default), cheng")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Dependence screen: the signs of dependence plus the SDS, as likely / possible / unlikely with reasons."""
    net = _guard(load_safety_net)
    given = _guard(lambda: read_json(answers, "screen answers") if answers else {})
    if not isinstance(given, dict):
        _fail(f"{answers.name if answers else 'answers'}: must be a JSON object of sign: yes/no")
    total, cutoff = _guard(lambda: _sds(sds, sds_score, sds_cutoff))
    result = _guard(lambda: screen_dependence(given, total, cutoff, net))
    if json_out:
        _emit(result.to_dict(net))
        return
    colour = {"likely": "bold red", "possible": "bold yellow", "unlikely": "bold green"}[result.result]
    out.print(f"Dependence: [{colour}]{result.result}[/]")
    for reason in result.reasons:
        out.print(f"  · {escape(reason)}", highlight=False)
    if result.unanswered:
        out.print(f"Not asked: {', '.join(result.unanswered)}")
    out.print("A screen, not a diagnosis. Never stop a benzodiazepine abruptly after regular use.")


@app.command("risk")
def risk_command(
    profile: Annotated[Path, typer.Argument(help="Risk profile JSON (fields in docs/screening.md)")],
    country: Annotated[str | None, Opt("--country", help="ISO country code for crisis lines, e.g. GB")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Risk factors for complicated withdrawal, inpatient or outpatient with reasons, co-use warnings, red flags."""
    net = _guard(load_safety_net)
    raw = _guard(lambda: read_json(profile, "profile"))
    if not isinstance(raw, dict):
        _fail(f"{profile.name}: must be a JSON object of profile fields")
    if country is not None:
        raw["country"] = country
    parsed = _guard(lambda: RiskProfile.from_mapping(raw))
    knowledge = _guard(load_knowledge)
    result = _guard(lambda: assess_risk(parsed, knowledge, net))
    if json_out:
        _emit(result.to_dict(net))
        return
    for alert in result.alerts:
        _print_alert(alert)
    colour = "bold red" if result.setting == "inpatient" else "bold green"
    out.print(f"Setting: [{colour}]{result.setting}[/]")
    for reason in result.reasons:
        out.print(f"  · {escape(reason)}", highlight=False)
    for reason in result.referral:
        out.print(f"  [yellow]›[/] {escape(reason)}", highlight=False)
    table = Table(title="Risk factors present")
    for col in ("factor", "effect", "what showed it", "reliability", "sources"):
        table.add_column(col, overflow="fold")
    for hit in result.factors:
        f = hit.factor
        table.add_row(f.name, f.setting, hit.detail, f.reliability, ", ".join(f.sources))
    out.print(table)
    for w in result.co_use:
        out.print(f"[bold yellow]{escape(w.title)}[/]: {escape(w.message)} {escape(w.advice)}", highlight=False)
    for note in result.notes:
        out.print(f"note: {escape(note)}", highlight=False)
    if result.not_assessed:
        out.print(f"Not assessed (not in the profile): {', '.join(result.not_assessed)}")
    out.print(f"[bold]{escape(result.advice)}[/]")


def _print_alert(alert: Alert) -> None:
    out.print(f"[bold red]URGENT - {escape(alert.name)}[/]: {escape(alert.message)}", highlight=False)
    _print_help(alert.help)


def _print_help(help_: CrisisHelp) -> None:
    if help_.emergency is not None:
        out.print(f"[bold]Emergency: {escape(help_.emergency.number)}[/] ({escape(help_.emergency.name)})")
    for line in help_.lines:
        hours = f", {line.hours}" if line.hours else ""
        out.print(f"  {escape(line.name)}: [bold]{escape(line.number)}[/] ({line.kind}{hours})", highlight=False)
    out.print(escape(help_.advice), highlight=False)


@app.command("crisis")
def crisis_command(
    country: Annotated[str, Opt("--country", help="ISO 3166 alpha-2 code, e.g. PL, GB (UK accepted), US")],
    json_out: JsonOpt = False,
) -> None:
    """Crisis lines, the emergency number and what to do now, for a country (with sources)."""
    net = _guard(load_safety_net)
    help_ = _guard(lambda: crisis_help(country, net))
    if json_out:
        _emit(help_.to_dict(net))
        return
    out.rule(f"Crisis help: {escape(help_.name)} ({help_.country})")
    table = Table()
    for col in ("line", "number", "hours", "kind", "source"):
        table.add_column(col, overflow="fold")
    for line in help_.lines:
        table.add_row(line.name, line.number, line.hours or "not stated", line.kind, line.sources[0])
    if help_.lines:
        out.print(table)
    if help_.emergency is not None:
        out.print(f"[bold]Emergency: {escape(help_.emergency.number)}[/] ({escape(help_.emergency.name)})")
    out.print(escape(help_.advice), highlight=False)
    out.print(f"Known countries: {', '.join(known_countries(net))}; other EU members: 112.")


@app.command("pathways")
def pathways_command(
    category: Annotated[str | None, Opt("--category", help=f"Only one of: {', '.join(CATEGORIES)}")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Treatment pathways: detox, setting, psychological treatment, support groups, aftercare (with sources)."""
    net = _guard(load_safety_net)
    if category is not None and category not in CATEGORIES:
        _fail(f"--category must be one of {', '.join(CATEGORIES)} (got {category!r})")
    items = [p for p in net.pathways if category is None or p.category == category]
    if json_out:
        _emit(_pathways_payload(net, items))
        return
    table = Table(title="Treatment pathways", show_lines=True)
    for col in ("category", "pathway", "what it is", "evidence"):
        table.add_column(col, overflow="fold")
    for p in items:
        table.add_row(p.category, p.name, p.description, f"{p.reliability} ({', '.join(p.sources)})")
    out.print(table)
    out.print("'weak' = named only by patient-facing sources; see `benzotaper pathways --json` for citations.")


def _pathways_payload(net: SafetyNet, items: list[Any]) -> dict[str, Any]:
    return {
        "pathways": [
            {
                "id": p.id,
                "name": p.name,
                "category": p.category,
                "description": p.description,
                "reliability": p.reliability,
                "sources": list(p.sources),
                "note": p.note or None,
            }
            for p in items
        ],
        "sources": source_list(net, [k for p in items for k in p.sources]),
    }
