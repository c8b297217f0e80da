"""`benzotaper fhir import | export | cds ...`: FHIR R4 bundles in and out, and the CDS Hooks check offline.

Registered on the shared Typer app when cli.py imports this module. Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import functools
import json
import sys
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from benzotaper.clitools import JsonOpt, _emit, _guard, app, out
from benzotaper.errors import FhirError

Opt = typer.Option
fhir_app = typer.Typer(
    no_args_is_help=True, help="FHIR R4: import a bundle, export a patient, try the CDS Hooks check."
)
cds_app = typer.Typer(
    no_args_is_help=True, help="CDS Hooks service logic, offline: discovery, order-sign, order-select."
)
app.add_typer(fhir_app, name="fhir")
fhir_app.add_typer(cds_app, name="cds")

BundleArg = Annotated[Path, typer.Argument(help="FHIR R4 Bundle (JSON)")]
RequestArg = Annotated[Path, typer.Argument(help="CDS Hooks request (JSON)")]
TodayOpt = Annotated[str | None, Opt("--today", help="Order date YYYY-MM-DD (default: the draft's authoredOn)")]
BaseOpt = Annotated[str, Opt("--base-url", help="Base URL of the benzotaper web app for the planner link")]


def read_json(path: Path, what: str) -> Any:
    """A JSON file (UTF-8, a byte order mark allowed), or FhirError naming the file and the problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise FhirError(f"{what} {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise FhirError(f"{path.name}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}); "
                        "JSON files are UTF-8") from None  # fmt: skip
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FhirError(f"{path.name}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    except ValueError:  # an integer longer than Python reads (4300 digits)
        limit = sys.get_int_max_str_digits()
        raise FhirError(f"{path.name}: not readable JSON (a number has more than {limit} digits)") from None
    except RecursionError:
        raise FhirError(f"{path.name}: not readable JSON (arrays or objects nested too deep)") from None


def _date(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FhirError(f"{name} must be a date YYYY-MM-DD (got {value!r})") from None


@fhir_app.command("import")
def import_command(bundle: BundleArg, json_out: JsonOpt = False) -> None:
    """Read a bundle: patients, regimens with parsed doses, levels, scores, plans, and what could not be mapped."""
    from benzotaper.fhir.importer import import_bundle
    from benzotaper.knowledge import load_knowledge

    knowledge = _guard(load_knowledge)
    raw = _guard(lambda: read_json(bundle, "bundle"))
    result = _guard(lambda: import_bundle(raw, knowledge))
    payload = result.to_dict()
    if json_out:
        _emit(payload)
        return
    _print_import(payload)


def _score_option(spec: str) -> Any:
    """'ciwa-b:answers.json@2026-03-01T10:00' -> a ScaleResult."""
    from benzotaper.assess.instruments import score
    from benzotaper.assess_cli import find_instrument, read_answers
    from benzotaper.fhir.records import ScaleResult

    try:
        name, rest = spec.split(":", 1)
        path, when = rest.rsplit("@", 1)
        authored = datetime.fromisoformat(when)
    except ValueError:
        raise FhirError(f"--score must look like ciwa-b:answers.json@2026-03-01T10:00 (got {spec!r})") from None
    instrument = find_instrument(name)
    return ScaleResult(instrument.id, authored.replace(tzinfo=None), score(instrument, read_answers(Path(path))))


@fhir_app.command("export")
def export_command(
    plan: Annotated[Path | None, Opt("--plan", help="plan.json written by `benzotaper plan ... --json`")] = None,
    patient_id: Annotated[str, Opt("--patient-id", help="FHIR Patient.id to write")] = "patient-1",
    levels: Annotated[Path | None, Opt("--levels", help="Levels CSV (sampled_at, analyte, value, unit, ...)")] = None,
    scores: Annotated[
        list[str] | None, Opt("--score", help="Scale result INSTRUMENT:ANSWERS.json@YYYY-MM-DDTHH:MM (repeatable)")
    ] = None,
    status: Annotated[
        str, Opt("--status", help="Status of the plan's CarePlan and MedicationRequests: draft or active")
    ] = "draft",
    offset: Annotated[str, Opt("--utc-offset", help="UTC offset written on clock times, e.g. +01:00")] = "+00:00",
) -> None:
    """Write one patient's plan, levels and scores as a FHIR R4 Bundle (type collection) on stdout."""
    from benzotaper.fhir.exporter import PatientExport, export_patient_bundle
    from benzotaper.fhir.plan_json import plan_from_json
    from benzotaper.knowledge import load_knowledge
    from benzotaper.tdm.samples import load_samples

    knowledge = _guard(load_knowledge)
    taper = _guard(lambda: plan_from_json(read_json(plan, "plan"))) if plan is not None else None
    samples = _guard(lambda: load_samples(knowledge, levels)) if levels is not None else []
    results = [_guard(functools.partial(_score_option, spec)) for spec in scores or []]
    record = PatientExport(patient_id, plan=taper, samples=samples, scores=results)
    _emit(_guard(lambda: export_patient_bundle(knowledge, record, status=status, offset=offset)))


@cds_app.command("discovery")
def discovery_command() -> None:
    """The CDS Hooks discovery document (JSON)."""
    from benzotaper.fhir.cds_hooks import discovery

    _emit(discovery())


@cds_app.command("order-sign")
def order_sign_command(request: RequestArg, today: TodayOpt = None, base_url: BaseOpt = "http://localhost:8000",
                       json_out: JsonOpt = False) -> None:  # fmt: skip
    """Cards for an order-sign request: long-term use, escalation, high dose, opioids, interdose withdrawal."""
    from benzotaper.fhir.cds_hooks import order_sign

    raw = _guard(lambda: read_json(request, "request"))
    cards = _guard(lambda: order_sign(raw, today=_date("--today", today), base_url=base_url))
    _cards(cards, json_out)


@cds_app.command("order-select")
def order_select_command(request: RequestArg, today: TodayOpt = None, base_url: BaseOpt = "http://localhost:8000",
                         json_out: JsonOpt = False) -> None:  # fmt: skip
    """Cards for an order-select request (only the selected draft orders)."""
    from benzotaper.fhir.cds_hooks import order_select

    raw = _guard(lambda: read_json(request, "request"))
    cards = _guard(lambda: order_select(raw, today=_date("--today", today), base_url=base_url))
    _cards(cards, json_out)


def _cards(response: dict[str, Any], json_out: bool) -> None:
    if json_out:
        _emit(response)
        return
    if not response["cards"]:
        out.print("No cards: no benzodiazepine or Z-drug among the draft orders, or nothing to flag.")
    for card in response["cards"]:
        out.rule(f"[bold]{card['indicator']}[/]: {escape(card['summary'])}")
        out.print(escape(card["detail"]))
        for link in card.get("links", []):
            out.print(f"{escape(link['label'])}: {link['url']}")


def _print_import(payload: dict[str, Any]) -> None:
    for p in payload["patients"]:
        who = ", ".join(str(x) for x in (p["name"], p["sex"], p["birth_date"], p["country"]) if x)
        out.rule(f"[bold]Patient {escape(p['id'])}[/] {escape(who)}")
        for m in p["medications"]:
            out.print(f"[bold]{escape(m['drug'])}[/] ({escape(m['source'])}, {m['status']}): {escape(m['sig'])}")
            for r in m["regimens"]:
                doses = ", ".join(f"{d['time']} {d['mg']:g} mg" for d in r["doses"])
                prn = f"; as needed {r['prn_mg']:g} mg up to {r['prn_max_per_day']}/day" if r["prn_mg"] else ""
                out.print(f"  {r['start']} to {r['end'] or 'ongoing'}: {doses or 'no scheduled dose'}{prn} "
                          f"({r['daily_mg']:g} mg/day)")  # fmt: skip
            for note in m["notes"]:
                out.print(f"  [yellow]note:[/] {escape(note)}")
        for c in p["co_medications"]:
            out.print(f"[bold]{escape(c['ingredient'])}[/] ({c['kind']}, {escape(c['source'])}) from {c['start']}")
        _levels_table(p["levels"])
        for s in p["scores"]:
            out.print(f"{s['instrument']} {s['authored']}: total {s['total']} ({s['band'] or 'no band'})")
        for plan in p["plans"]:
            out.print(f"Taper plan ({plan['strategy']}) for {escape(plan['regimen'])}: {plan['start']} to "
                      f"{plan['end_date']}, {plan['steps']} steps")  # fmt: skip
    _unmapped(payload)


def _levels_table(levels: list[dict[str, Any]]) -> None:
    if not levels:
        return
    table = Table(title="Levels", pad_edge=False)
    for col in ("sampled", "analyte", "ng/mL", "reported"):
        table.add_column(col)
    for s in levels:
        value = f"<{s['lloq_ng_ml']:g}" if s["censored"] else f"{s['value_ng_ml']:.4g}"
        table.add_row(s["sampled_at"], s["analyte"], value, escape(s["reported"]))
    out.print(table)


def _unmapped(payload: dict[str, Any]) -> None:
    if payload["unmapped"]:
        out.rule("[bold]Not mapped[/] (listed with the reason)")
        reasons = Counter(u["reason"] for u in payload["unmapped"])
        for u in payload["unmapped"]:
            if reasons[u["reason"]] == 1:
                out.print(f"{escape(u['resource'])} (entry {u['entry']}): {escape(u['reason'])}")
        for reason, n in reasons.items():
            if n > 1:
                out.print(f"{n} records: {escape(reason)}")
    if payload["not_read"]:
        out.print("Not read: " + ", ".join(f"{k} x{n}" for k, n in payload["not_read"].items()))
