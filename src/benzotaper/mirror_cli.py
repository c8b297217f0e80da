"""`benzotaper mirror` (withdrawal or primary illness, per symptom) and `benzotaper symptoms` (the vocabulary).

Registered on the shared Typer app when cli.py imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from benzotaper.assess.mirror import MirrorAnalysis, analyse
from benzotaper.assess.timeline import read_timeline
from benzotaper.clitools import JsonOpt, _emit, _guard, app, out
from benzotaper.knowledge import load_knowledge
from benzotaper.knowledge.mirror_rules import load_mirror_knowledge
from benzotaper.report.mirror_report import write_html, write_markdown

STYLE = {"withdrawal": "bold yellow", "primary": "bold blue", "undetermined": "dim"}


def _run(path: Path) -> MirrorAnalysis:
    timeline = read_timeline(path)
    return analyse(load_knowledge(), timeline, load_mirror_knowledge())


def _show(doc: dict[str, Any]) -> None:
    table = Table(title="Mirror analysis: withdrawal-driven or primary illness?")
    for col in ("symptom", "verdict", "P(withdrawal)", "strongest evidence"):
        table.add_column(col)
    for name, s in doc["symptoms"].items():
        top = s["evidence"][0]["finding"] if s["evidence"] else "-"
        v = s["verdict"]
        table.add_row(escape(name), f"[{STYLE[v]}]{v}[/]", f"{s['score']:.2f}", escape(top))
    out.print(table)
    summary = doc["summary"]
    out.print(f"[bold]{escape(summary['text'])}[/]")
    if summary["red_flags"]:
        out.print(
            f"[bold red]Red flag:[/] {escape(', '.join(summary['red_flags']))}: "
            "urgent clinical review (see `benzotaper crisis`)."
        )
    for alert in summary["alerts"]:
        out.print(f"[bold red]{escape(alert['symptom'])}:[/] {escape(alert['message'])}")
    if summary["crisis"]:
        out.print(_crisis_text(summary["crisis"]))
    for item in summary["to_settle"]:
        out.print(f"  - to settle: {escape(item)}")
    out.print("[dim]Decision support, not a diagnosis; weights and sources: docs/mirror.md.[/]")


def _crisis_text(crisis: dict[str, Any]) -> str:
    """One line of crisis help: the lines and the emergency number for the patient's country."""
    lines = "; ".join(f"{c['name']} {c['number']}" for c in crisis["lines"])
    emergency = crisis["emergency"]["number"] if crisis["emergency"] else "the local emergency number"
    text = f"{crisis['name'] or ''}: {lines or crisis['advice']}; emergency: {emergency}"
    return f"[bold]Crisis help[/] {escape(text)}"


@app.command()
def mirror(
    timeline: Annotated[Path, typer.Argument(help="Patient timeline, YAML or JSON (format: docs/mirror.md)")],
    html: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Write a Markdown report (and a PNG chart) here.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """For every symptom: withdrawal-driven, primary illness, or undetermined, with the evidence."""
    analysis = _guard(lambda: _run(timeline))
    doc = analysis.to_dict()
    if html is not None:
        doc["html"] = str(write_html(analysis, html))
    if markdown is not None:
        doc["markdown"] = str(write_markdown(analysis, markdown))
    if json_out:
        _emit(doc)
    else:
        _show(doc)


@app.command()
def symptoms(json_out: JsonOpt = False) -> None:
    """The symptom vocabulary of the mirror analysis: names, mirrored action, withdrawal set, source."""
    mk = load_mirror_knowledge()
    rows: list[dict[str, Any]] = [
        {
            "id": t.id,
            "label": t.label,
            "synonyms": list(t.synonyms),
            "mirrors": t.mirrors,
            "withdrawal_set": t.withdrawal_set,
            "sensory_specific": t.sensory_specific,
            "red_flag": t.red_flag,
            "source": t.source,
        }
        for t in mk.symptoms.values()
    ]
    if json_out:
        _emit({"symptoms": rows})
        return
    table = Table(title="Symptom vocabulary")
    for col in ("id", "mirrors", "withdrawal set", "synonyms"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"], r["mirrors"] or "-", "yes" if r["withdrawal_set"] else "no", ", ".join(r["synonyms"][:4])
        )
    out.print(table)
