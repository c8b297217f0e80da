"""The command line: `benzotaper drugs | convert | simulate | plan | demo`, each with --json.

Bad input prints one clear line on stderr and exits with code 2.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from benzotaper.clitools import JsonOpt, _emit, _fail, _guard, app, out
from benzotaper.equivalence import Conversion, convert
from benzotaper.knowledge import Drug, Knowledge, load_knowledge
from benzotaper.plan_cli import plan_command
from benzotaper.simulate import SimulationReport, simulate_sig
from benzotaper.units import mass_to_mg, parse_number


def _finite(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def _source_list(knowledge: Knowledge, keys: tuple[str, ...] | list[str]) -> list[dict[str, str | None]]:
    return [
        {"key": k, "citation": knowledge.source(k).citation, "url": knowledge.source(k).url}
        for k in dict.fromkeys(keys)
    ]


def _drug_row(drug: Drug, knowledge: Knowledge) -> dict[str, Any]:
    analyte = knowledge.analytes[drug.analyte]
    disp = analyte.disposition
    eq = drug.equivalence
    half = disp.half_life if disp else None
    return {
        "drug": drug.id,
        "class": drug.drug_class,
        "atc": list(drug.atc),
        "brands": list(drug.brands),
        "equivalent_to_10mg_diazepam_mg": eq.used.value if eq else None,
        "equivalence_table": eq.default_table if eq else None,
        "equivalence_range_mg": list(eq.published_range()) if eq else None,
        "half_life_h": half.value if half else None,
        "half_life_range_h": list(half.range) if half and half.range else None,
        "active_metabolites": [e.metabolite for e in analyte.metabolism],
        "circulating_analyte": drug.analyte,
        "sources": sorted({*(eq.used.sources if eq else ()), *(half.sources if half else ())}),
    }


@app.command()
def drugs(json_out: JsonOpt = False) -> None:
    """The drugs the knowledge base knows: diazepam equivalents and half-lives, with sources."""
    knowledge = _guard(load_knowledge)
    rows = [_drug_row(d, knowledge) for d in sorted(knowledge.drugs.values(), key=lambda d: d.id)]
    if json_out:
        _emit({"drugs": rows})
        return
    table = Table(title="Benzodiazepines, Z-drugs and clomethiazole (dose ≈ 10 mg oral diazepam)")
    for col in ("drug", "class", "≈10 mg diazepam", "published range", "half-life (h)", "active metabolites"):
        table.add_column(col)
    for r in rows:
        eq = (
            f"{r['equivalent_to_10mg_diazepam_mg']:g} mg ({r['equivalence_table']})"
            if r["equivalence_table"]
            else "not published"
        )
        rng = "–".join(f"{x:g}" for x in r["equivalence_range_mg"]) + " mg" if r["equivalence_range_mg"] else ""
        hl = f"{r['half_life_h']:g}" if r["half_life_h"] is not None else "?"
        if r["half_life_range_h"]:
            hl += f" ({r['half_life_range_h'][0]:g}–{r['half_life_range_h'][1]:g})"
        table.add_row(r["drug"], r["class"], eq, rng, hl, ", ".join(r["active_metabolites"]))
    out.print(table)
    out.print("Sources per number: benzotaper drugs --json. Equivalences are approximate; tables disagree.")


def _conversion_payload(c: Conversion, knowledge: Knowledge) -> dict[str, Any]:
    return {
        "from": {"drug": c.from_drug, "mg": c.mg},
        "to": {
            "drug": c.to_drug,
            "mg": round(c.to_mg, 4),
            "range_mg": [round(c.range_mg[0], 4), round(c.range_mg[1], 4)],
        },
        "table": c.table,
        "per_table_mg": {k: round(v, 4) for k, v in c.per_table_mg.items()},
        "sources": _source_list(knowledge, c.sources),
    }


@app.command(name="convert")
def convert_cmd(
    amount: Annotated[str, typer.Argument(help="Dose amount, e.g. 6")],
    unit: Annotated[str, typer.Argument(help="Unit of the amount: mg, mcg, µg, g")],
    drug: Annotated[str, typer.Argument(help="Drug the dose is of, e.g. alprazolam")],
    to: Annotated[str, typer.Option("--to", help="Drug to convert to")] = "diazepam",
    table: Annotated[
        str | None,
        typer.Option("--table", help="Use one equivalence table (ashton, vadod2021, nhs_scotland, who2009, medscape)"),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Equivalent dose of another drug, e.g. `benzotaper convert 6 mg alprazolam --to diazepam`."""
    knowledge = _guard(load_knowledge)
    mg = _guard(lambda: mass_to_mg(parse_number(amount), unit, f"{amount} {unit}"))
    result = _guard(lambda: convert(knowledge, mg, drug, to, table))
    payload = _conversion_payload(result, knowledge)
    if json_out:
        _emit(payload)
        return
    lo, hi = result.range_mg
    out.print(
        f"{result.mg:g} mg {result.from_drug} ≈ [bold]{result.to_mg:.3g} mg {result.to_drug}[/] "
        f"({result.table} table); published range {lo:.3g}–{hi:.3g} mg"
    )
    for name, value in result.per_table_mg.items():
        out.print(f"  {name}: {value:.3g} mg")
    out.print("Sources: " + "; ".join(s["citation"] or "" for s in payload["sources"]))
    out.print("Equivalences are approximate: switch stepwise and watch for withdrawal or over-sedation.")


def _simulation_payload(rep: SimulationReport, knowledge: Knowledge) -> dict[str, Any]:
    model = rep.simulator.model
    analytes = {}
    for spec, pot in zip(model.analytes, rep.curves.potencies, strict=True):
        s = rep.analytes[spec.id]
        published = spec.half_life_published
        analytes[spec.id] = {
            "cmax_ng_ml": _finite(s.cmax_ng_ml),
            "tmax_h": _finite(s.tmax_h, 3),
            "trough_ng_ml": _finite(s.trough_ng_ml),
            "half_life_h": _finite(s.half_life_h, 2),
            "half_life_published_h": published.value if published else None,
            "half_life_published_range_h": list(published.range) if published and published.range else None,
            "diazepam_equivalent_weight": _finite(pot.value),
            "weight_basis": pot.basis,
        }
    last = rep.days[-1]
    return {
        "regimen": [
            {
                "drug": r.drug,
                "doses": [{"time": d.at.strftime("%H:%M"), "mg": d.mg} for d in r.doses],
                "daily_mg": r.daily_mg,
                "prn_mg": r.prn_mg,
                "prn_max_per_day": r.prn_max_per_day,
            }
            for r in rep.regimens
        ],
        "analytes": analytes,
        "interdose_withdrawal": rep.interdose_withdrawal,
        "interdose_threshold": rep.threshold,
        "time_to_90pct_steady_state_h": _finite(rep.time_to_steady_state_h, 1),
        "diazepam_equivalent_last_day": {
            "mean_ng_ml": _finite(last.mean_ng_ml),
            "min_ng_ml": _finite(last.min_ng_ml),
            "max_ng_ml": _finite(last.max_ng_ml),
        },
        "occupancy_last_day_mean": _finite(
            float(rep.curves.occupancy[0, rep.curves.times_h >= rep.curves.times_h[-1] - 24].mean())
        ),
        "days": [
            {
                "day": d.day + 1,
                "mean_ng_ml": _finite(d.mean_ng_ml),
                "max_ng_ml": _finite(d.max_ng_ml),
                "min_ng_ml": _finite(d.min_ng_ml),
                "peak_trough_ratio": _finite(d.peak_trough_ratio, 3),
                "min_predose_fraction_of_24h_mean": _finite(d.min_predose_fraction, 3),
                "interdose_withdrawal": d.interdose_withdrawal,
            }
            for d in rep.days
        ],
        "assumptions": list(rep.assumptions),
        "sources": _source_list(knowledge, _simulation_sources(rep, knowledge)),
    }


def _simulation_sources(rep: SimulationReport, knowledge: Knowledge) -> list[str]:
    keys: list[str] = []
    for spec in rep.simulator.model.analytes:
        disp = knowledge.analytes[spec.id].disposition
        if disp:
            for q in (disp.clearance, disp.volume, disp.half_life, disp.q, disp.peripheral_volume):
                keys += list(q.sources) if q else []
    for dep in rep.simulator.model.depots:
        ab = knowledge.drug(dep.drug).absorption
        for q in (ab.bioavailability, ab.ka, ab.tmax, ab.lag):
            keys += list(q.sources) if q else []
    occ = knowledge.occupancy
    keys += [occ.ec50.source, knowledge.policy.interdose_trough_fraction.source]
    return keys


def _print_simulation(rep: SimulationReport) -> None:
    table = Table(title="Typical patient, levels in serum")
    for col in ("analyte", "Cmax (ng/mL)", "Tmax after dose (h)", "last-day trough (ng/mL)", "half-life (h)"):
        table.add_column(col)
    for name, s in rep.analytes.items():
        table.add_row(name, f"{s.cmax_ng_ml:.1f}", f"{s.tmax_h:.2f}", f"{s.trough_ng_ml:.1f}", f"{s.half_life_h:.1f}")
    out.print(table)
    last = rep.days[-1]
    out.print(
        f"Diazepam-equivalent level, last day: mean {last.mean_ng_ml:.0f} ng/mL, "
        f"range {last.min_ng_ml:.0f}–{last.max_ng_ml:.0f} (peak/trough {last.peak_trough_ratio:.2f})"
    )
    if rep.time_to_steady_state_h is not None:
        out.print(f"Time to 90% of steady state: {rep.time_to_steady_state_h / 24:.1f} days")
    if rep.interdose_withdrawal:
        worst = min(d.min_predose_fraction for d in rep.days if d.min_predose_fraction is not None)
        out.print(
            f"[bold yellow]Interdose withdrawal risk:[/] the level falls to {100 * worst:.0f}% of the "
            f"24-hour mean before a dose (flag below {100 * rep.threshold:.0f}%). Symptoms late in the "
            "dosing interval may be withdrawal, not the original illness; consider a long-acting drug."
        )
    else:
        out.print(f"No interdose dip below {100 * rep.threshold:.0f}% of the 24-hour mean.")
    for note in rep.assumptions:
        out.print(f"  · {note}", highlight=False)


@app.command()
def simulate(
    sig: Annotated[
        str, typer.Argument(help="Regimen, e.g. 'alprazolam 2 mg tds' or 'lorazepam 1 mg bid + zolpidem 10 mg nocte'")
    ],
    days: Annotated[int, typer.Option("--days", help="Days to simulate")] = 14,
    start: Annotated[str | None, typer.Option("--start", help="First day (YYYY-MM-DD); default today")] = None,
    step: Annotated[float, typer.Option("--step", help="Grid step in hours")] = 0.25,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="Interdose flag: pre-dose level below this fraction of the 24 h mean"),
    ] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG chart here")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Level curves, daily metrics and the interdose-withdrawal flag for a regimen (typical patient)."""
    knowledge = _guard(load_knowledge)
    first = _guard(lambda: date.fromisoformat(start) if start else date.today())
    if not 0 < step <= 6:
        _fail(f"--step must be between 0 and 6 hours (got {step})")
    rep = _guard(lambda: simulate_sig(knowledge, sig, days, first, step, threshold))
    if plot is not None:
        from benzotaper.report.charts import plot_curves

        plot_curves(rep.curves, plot, f"{sig} — typical patient")
    if json_out:
        payload = _simulation_payload(rep, knowledge)
        payload["plot"] = str(plot) if plot else None
        _emit(payload)
        return
    _print_simulation(rep)
    if plot is not None:
        out.print(f"Chart written to {plot}")


@app.command()
def demo(json_out: JsonOpt = False) -> None:
    """Worked example: alprazolam 6 mg/day (domain.md case 2) against its diazepam equivalent."""
    knowledge = _guard(load_knowledge)
    sig = "alprazolam 6 mg/day in 3 doses"
    conversion = convert(knowledge, 6.0, "alprazolam", "diazepam")
    start = date(2026, 1, 1)
    alpra = simulate_sig(knowledge, sig, 14, start)
    diaz_sig = f"diazepam {conversion.to_mg / 3:g} mg tds"
    diaz = simulate_sig(knowledge, diaz_sig, 28, start)
    if json_out:
        _emit(
            {
                "regimen": sig,
                "conversion": _conversion_payload(conversion, knowledge),
                "alprazolam": _simulation_payload(alpra, knowledge),
                "diazepam": _simulation_payload(diaz, knowledge),
            }
        )
        return
    out.rule("[bold]benzotaper demo[/]: a man of 34 on alprazolam 6 mg/day (domain.md, case 2)")
    out.print(f"Regimen: {sig}")
    lo, hi = conversion.range_mg
    out.print(
        f"Diazepam equivalent: [bold]{conversion.to_mg:g} mg/day[/] ({conversion.table} table); "
        f"published tables give {lo:g}–{hi:g} mg/day."
    )
    out.rule("Alprazolam as taken (14 days)")
    _print_simulation(alpra)
    out.rule(f"Diazepam at the equivalent dose ({diaz_sig}, 28 days)")
    _print_simulation(diaz)
    out.rule("What this means")
    out.print(
        "Short-acting alprazolam swings through the day; symptoms that peak before each dose can be "
        "interdose withdrawal. Diazepam's long half-life (and nordiazepam's) smooths the level, which is "
        "why guidelines switch to it stepwise, one dose at a time, before a gradual reduction."
    )
    out.print(
        "[bold]Never stop a benzodiazepine abruptly after regular use[/]: seizures can follow. "
        "Plan the switch and the taper with the prescriber."
    )


app.command("plan")(plan_command)

# Importing these modules registers their commands on `app` (assess, cohort, levels, screen, risk, crisis, mirror).
import benzotaper.assess_cli  # noqa: E402
import benzotaper.cohort_cli  # noqa: E402
import benzotaper.fhir_cli  # noqa: E402
import benzotaper.levels_cli  # noqa: E402
import benzotaper.mirror_cli  # noqa: E402
import benzotaper.screen_cli  # noqa: E402
import benzotaper.web_cli  # noqa: E402, F401


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
