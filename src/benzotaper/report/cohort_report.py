"""A cohort run as one self-contained HTML page for a health-system analyst.

Reads what `run_cohort` wrote to its output folder (summary.json and the result tables, Parquet or CSV)
with pyarrow only, draws four charts as inline SVG (matplotlib, Agg backend) and writes one page with
no script, no style sheet or font from elsewhere and no link to a CDN: it opens offline.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from benzotaper.errors import CohortError
from benzotaper.knowledge.cohort_rules import CohortKnowledge, load_cohort_knowledge, whole_days

Row = dict[str, Any]
TITLE = "Benzodiazepine and Z-drug use in the population"
ANALYSED_ROUTES = ("oral", "oromucosal")  # route groups whose BZD rows form episodes: omop.toml analysed_with_oral
TOP_CANDIDATES = 50
NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}
SEX_ORDER = ("F", "M", "unknown")
LABELS = {
    "users": "users (any use)",
    "high_dose": "high dose",
    "escalation": "escalating dose",
    "opioid_coprescription": "opioid co-prescription",
    "concurrent_bzd": "two or more BZDs at once",
    "multiple_prescribers": "multiple prescribers",
    "interdose_risk": "interdose withdrawal risk",
}
DURATION_WORDS = {
    "days_supply": "days_supply of the prescription",
    "end_date": "end date minus start date, plus one",
    "quantity_over_ddd": "quantity x strength / WHO defined daily dose",
    "single_day": "nothing usable: counted as one day",
}
DOSE_WORDS = {
    "computed": "quantity x strength / duration",
    "missing_quantity": "no quantity: daily dose unknown",
    "missing_strength": "no strength: daily dose unknown",
    "no_equivalence": "no diazepam equivalence for the drug",
    "implausible": "above the plausible maximum: set aside",
    "not_applicable": "opioid: dose not needed",
}
DOSES_WORDS = {
    "sig": "stated in the sig text",
    "units_per_day": "tablets per day from quantity / duration",
    "unknown": "unknown (no interdose judgement)",
}
CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;line-height:1.45;"
    "color:#111}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:left;vertical-align:top}th{background:#f3f4f6}td.n{text-align:right;font-variant-numeric:"
    "tabular-nums}.muted{color:#6b7280;font-size:.9em}svg{max-width:100%;height:auto}figure{margin:1em 0 2em}"
    "nav a{margin-right:1em}.warn{background:#fef3c7;border-left:6px solid #b45309;padding:6px 10px}"
)


@dataclass(frozen=True)
class CohortRun:
    """Everything one run wrote: summary.json and the result tables as lists of row dicts."""

    summary: dict[str, Any]
    ages: list[Row]
    drugs: list[Row]
    candidates: list[Row]
    candidate_columns: list[str]
    mapping: list[Row]
    quality: list[Row]

    @property
    def settings(self) -> dict[str, Any]:
        """The thresholds the run used (summary.json "settings")."""
        return dict(self.summary["settings"])

    @property
    def tiers(self) -> list[str]:
        """The long-term indicator columns, shortest tier first."""
        days = self.settings["long_term_days"]
        return [f"long_term_{n}" for n in sorted(days, key=lambda n: int(days[n]))]

    @property
    def indicators(self) -> list[str]:
        """Every 0/1 indicator column, in the pipeline's report order."""
        return list(self.summary["persons_with"])

    @property
    def review_tier(self) -> str:
        """The long-term tier that puts a person on the review list (from the candidates' columns)."""
        found = [c.removeprefix("reason_") for c in self.candidate_columns if c.startswith("reason_long_term_")]
        return found[0] if found else self.tiers[0]


def _table(out_dir: Path, name: str) -> pa.Table:
    """One result table, Parquet or CSV, as the pipeline wrote it."""
    parquet, csv = out_dir / f"{name}.parquet", out_dir / f"{name}.csv"
    if parquet.exists():
        return pq.read_table(parquet)
    if csv.exists():
        return pa_csv.read_csv(csv)
    raise CohortError(f"{out_dir} has no {name}.parquet or {name}.csv: run `benzotaper cohort run` first")


def read_run(out_dir: Path) -> CohortRun:
    """Read summary.json and the result tables of a cohort output folder."""
    path = out_dir / "summary.json"
    if not path.exists():
        raise CohortError(f"{out_dir} has no summary.json: run `benzotaper cohort run` first")
    summary = json.loads(path.read_text(encoding="utf-8"))
    candidates = _table(out_dir, "candidates")
    return CohortRun(
        summary=summary,
        ages=_table(out_dir, "by_year_age_sex").to_pylist(),
        drugs=_table(out_dir, "by_year_drug").to_pylist(),
        candidates=candidates.to_pylist(),
        candidate_columns=list(candidates.column_names),
        mapping=_table(out_dir, "mapping").to_pylist(),
        quality=_table(out_dir, "quality").to_pylist(),
    )


# ---- numbers and text --------------------------------------------------------------------------


def label(column: str) -> str:
    """Plain words for an indicator column ('long_term_over_1_year' -> 'long-term over 1 year')."""
    if column.startswith("long_term_"):
        return "long-term " + column.removeprefix("long_term_").replace("_", " ")
    return LABELS.get(column, column.replace("_", " "))


def sum_by(rows: Iterable[Row], key: str, columns: Sequence[str]) -> dict[Any, dict[str, int]]:
    """Column sums for each value of `key` (missing values count as 0)."""
    out: dict[Any, dict[str, int]] = {}
    for row in rows:
        acc = out.setdefault(row[key], dict.fromkeys(columns, 0))
        for c in columns:
            acc[c] += int(row[c] or 0)
    return out


def rate(count: int, population: int) -> float | None:
    """Count per 1,000 persons (None without a population)."""
    return count * 1000.0 / population if population else None


def fmt_int(value: int | None) -> str:
    """Whole number with thousands separators."""
    return "-" if value is None else f"{value:,}"


def fmt_num(value: float | None, digits: int = 1) -> str:
    """Decimal number with thousands separators."""
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def fmt_mg(value: float) -> str:
    """A threshold as written: '40', '12.5'."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def fmt_pct(part: int, whole: int) -> str:
    """`part` as a percentage of `whole`."""
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def esc(value: object) -> str:
    """HTML-escaped text."""
    return html.escape(str(value))


def band_key(band: str) -> tuple[int, str]:
    """Sort key of an age band label ('18-44', '80+') by its lowest age."""
    digits = re.match(r"\d+", band)
    return (int(digits.group()) if digits else 10**6, band)


def age_groups(run: CohortRun) -> list[str]:
    """Age band labels, youngest first."""
    return sorted({str(r["age_band"]) for r in run.ages}, key=band_key)


def sexes(run: CohortRun) -> list[str]:
    """Sex groups present, F, M, unknown first."""
    found = {str(r["sex"]) for r in run.ages}
    return [s for s in SEX_ORDER if s in found] + sorted(found - set(SEX_ORDER))


# ---- HTML pieces -------------------------------------------------------------------------------


def html_table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = (), ident: str = ""
) -> str:
    """A table of already formatted cells; every cell and header is escaped; `right` columns align right."""
    numeric = set(right)
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i in numeric else ''}>{esc(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    attr = f" id='{esc(ident)}'" if ident else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section(ident: str, title: str, *parts: str) -> str:
    """An <h2> section with an anchor."""
    return f"<section id='{esc(ident)}'><h2>{esc(title)}</h2>{''.join(parts)}</section>"


def para(text: str, cls: str = "") -> str:
    """One escaped paragraph."""
    return f"<p{f' class={cls}' if cls else ''}>{esc(text)}</p>"


# ---- charts ------------------------------------------------------------------------------------


def inline_svg(fig: Any, key: str, title: str) -> str:
    """The figure as an inline <svg> with ids prefixed by `key` (several charts share one page)."""
    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": key}):
        fig.savefig(buf, format="svg", metadata=NO_METADATA, bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    svg = re.sub(r'(\s)id="([^"]+)"', rf'\1id="{key}-\2"', svg)
    svg = svg.replace("url(#", f"url(#{key}-").replace('href="#', f'href="#{key}-')
    svg = svg.replace("<svg", f'<svg role="img" aria-label="{esc(title)}"', 1)
    return f"<figure id='chart-{esc(key)}'>{svg}<figcaption class=muted>{esc(title)}</figcaption></figure>"


def no_data(ax: Any) -> None:
    """Mark an empty chart."""
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")


def chart_by_year(run: CohortRun) -> str:
    """(a) Users and each long-term tier per 1,000 persons, per calendar year."""
    columns = ["users", *run.tiers]
    years = sum_by(run.ages, "year", ["population", *columns])
    xs = sorted(years)
    fig, ax = plt.subplots(figsize=(10, 4.2))
    styles = [("-", "o"), ("--", "s"), ("-.", "^"), (":", "D")]
    for k, c in enumerate(columns):
        ys = [rate(years[y][c], years[y]["population"]) for y in xs]
        line, marker = styles[k % len(styles)]
        ax.plot(xs, [math.nan if v is None else v for v in ys], linestyle=line, marker=marker, label=label(c))
    if xs:
        ax.set_xticks(xs)
        ax.legend(loc="best", fontsize=8)
    else:
        no_data(ax)
    ax.set_xlabel("calendar year")
    ax.set_ylabel("persons per 1,000 population")
    ax.set_title("Users and long-term users per 1,000 persons, by year")
    ax.grid(alpha=0.3)
    return inline_svg(fig, "by-year", "Users and long-term users per 1,000 persons per year (all ages, both sexes)")


def grouped_bars(groups: Sequence[str], series: Mapping[str, Sequence[float | None]], title: str, xlabel: str) -> Any:
    """Side-by-side bars: one group per x position, one bar per series."""
    fig, ax = plt.subplots(figsize=(10, 4.2))
    width = 0.8 / max(len(series), 1)
    for k, (name, values) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, [0.0 if v is None else v for v in values], width=width, label=name)
    ax.set_xticks(range(len(groups)), list(groups))
    if groups:
        ax.legend(loc="best", fontsize=8)
    else:
        no_data(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("persons per 1,000 population")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    return fig


def pooled_rates(run: CohortRun, key: str, groups: Sequence[str]) -> dict[str, list[float | None]]:
    """Users, the longest long-term tier and high dose per 1,000, all years pooled, for each group of `key`."""
    columns = ["users", run.tiers[-1], "high_dose"]
    sums = sum_by(run.ages, key, ["population", *columns])
    return {label(c): [rate(sums[g][c], sums[g]["population"]) for g in groups] for c in columns}


def chart_by_age(run: CohortRun) -> str:
    """(b) Rates per 1,000 by age band, all years pooled."""
    groups = age_groups(run)
    title = "Rate per 1,000 persons by age band (all years pooled)"
    fig = grouped_bars(groups, pooled_rates(run, "age_band", groups), title, "age band (age in the calendar year)")
    return inline_svg(fig, "by-age", title + ": sum of counts / sum of population")


def chart_by_sex(run: CohortRun) -> str:
    """(c) Rates per 1,000 by sex, all years pooled."""
    groups = sexes(run)
    title = "Rate per 1,000 persons by sex (all years pooled)"
    fig = grouped_bars(groups, pooled_rates(run, "sex", groups), title, "sex")
    return inline_svg(fig, "by-sex", title + ": sum of counts / sum of population")


def drug_totals(run: CohortRun) -> dict[str, dict[str, int]]:
    """Per drug, users and indicator counts summed over years (person-years), most used first."""
    sums = sum_by(run.drugs, "drug", ["users", *run.indicators])
    return dict(sorted(sums.items(), key=lambda kv: (-kv[1]["users"], str(kv[0]))))


def chart_by_drug(run: CohortRun) -> str:
    """(d) Horizontal bars of users per drug, labelled with the share in the review long-term tier."""
    totals = drug_totals(run)
    names = list(totals)[::-1]
    fig, ax = plt.subplots(figsize=(10, 0.45 * max(len(names), 4) + 1.2))
    users = [totals[n]["users"] for n in names]
    ax.barh(names, users, color="tab:blue")
    for i, n in enumerate(names):
        share = fmt_pct(totals[n][run.review_tier], totals[n]["users"])
        ax.text(users[i], i, f"  {users[i]:,} ({share} {label(run.review_tier)})", va="center", fontsize=8)
    if not names:
        no_data(ax)
    ax.set_xlim(0, max(users, default=1) * 1.45)
    ax.set_xlabel("users, summed over years (a person using in 3 years counts 3 times)")
    ax.set_title(f"Users per drug, with the share {label(run.review_tier)}")
    ax.grid(alpha=0.3, axis="x")
    return inline_svg(fig, "by-drug", f"Users per drug (person-years) and the share {label(run.review_tier)}")


# ---- sections ----------------------------------------------------------------------------------


def header(run: CohortRun, out_dir: Path) -> str:
    """Title, the data summary and the run timings."""
    s = run.summary
    timings = s.get("timings_s", {})
    steps = ", ".join(f"{k} {fmt_num(float(v), 2)} s" for k, v in timings.items())
    total = fmt_num(sum(float(v) for v in timings.values()), 2)
    rows = [
        ("drug_exposure rows", fmt_int(s["drug_exposure_rows"])),
        ("persons (person table)", fmt_int(s["persons"])),
        ("users (persons with a BZD/Z-drug episode)", f"{fmt_int(s['users'])} ({fmt_pct(s['users'], s['persons'])})"),
        ("episodes", fmt_int(s["episodes"])),
        ("engine", str(s["engine"])),
        ("OMOP tables read", ", ".join(s.get("tables", []))),
        ("run time", f"{total} s ({steps})" if timings else "-"),
        ("results folder", str(out_dir)),
    ]
    return (
        f"<header><h1>{esc(TITLE)}</h1>"
        + para("Drug-utilisation indicators from an OMOP CDM extract, made by benzotaper cohort run.", "muted")
        + html_table(["data", "value"], rows, right=(), ident="data-summary")
        + "</header>"
    )


def setting_rows(run: CohortRun, ck: CohortKnowledge) -> list[tuple[str, str, str, str]]:
    """(setting, value, source key, citation) for each threshold of summary.json "settings"."""
    st, src = run.settings, run.settings.get("sources", {})
    rows = [("gap_days", f"{st['gap_days']} days", src.get("gap_days", ""))]
    rows += [
        (f"long_term_days.{n}", f"more than {d} days", src.get(f"long_term_{n}", ""))
        for n, d in sorted(st["long_term_days"].items(), key=lambda kv: int(kv[1]))
    ]
    high, per_year = fmt_mg(float(st["high_dose_de_mg"])), fmt_num(100 * float(st["escalation_per_year"]), 0)
    rows += [
        ("high_dose_de_mg", f"more than {high} mg DE/day", src.get("high_dose", "")),
        ("min_prescribers", f"{st['min_prescribers']} or more", src.get("multiple_prescribers", "")),
        ("prescriber_window_days", f"{st['prescriber_window_days']} days", src.get("multiple_prescribers", "")),
        ("escalation_per_year", f"{per_year}% per year", src.get("escalation", "")),
        ("age_bands", ", ".join(age_groups(run)), src.get("age_bands", "")),
    ]
    return [(k, v, key, citation(ck, key)) for k, v, key in rows]


def citation(ck: CohortKnowledge, key: str) -> str:
    """The bibliography text of a source key (policy keys get a plain statement)."""
    if key == "benzotaper_policy":
        return "benzotaper design decision; the rationale is in knowledge/data/cohort.toml"
    source = ck.sources.get(key)
    return source.citation if source else ""


def settings_section(run: CohortRun, ck: CohortKnowledge) -> str:
    """The thresholds used, each with its source key and citation."""
    return section(
        "settings",
        "Settings used",
        para("DE = diazepam-equivalent. Source keys refer to knowledge/data/cohort.toml [sources].", "muted"),
        html_table(["setting", "value", "source key", "source"], setting_rows(run, ck), ident="settings-table"),
    )


def key_figures(run: CohortRun) -> str:
    """Persons with each indicator (any episode) and review candidates, with % of users."""
    s = run.summary
    users = int(s["users"])
    rows = [(label("users"), "users", fmt_int(users), fmt_pct(users, users))]
    rows += [(label(k), k, fmt_int(int(v)), fmt_pct(int(v), users)) for k, v in s["persons_with"].items()]
    cand = int(s["review_candidates"])
    rows.append(("review candidates", "review_candidates", fmt_int(cand), fmt_pct(cand, users)))
    return section(
        "key-figures",
        "Key figures",
        para("Persons meeting each indicator on at least one episode (whole study period).", "muted"),
        html_table(["indicator", "column", "persons", "% of users"], rows, right=(2, 3), ident="key-figures-table"),
    )


def charts(run: CohortRun) -> str:
    """The four charts."""
    note = (
        "Rates: persons with the indicator in a calendar year x 1,000 / persons in the person table of that age "
        "and sex in that year; pooled rates sum counts and populations over all years."
    )
    parts = [chart_by_year(run), chart_by_age(run), chart_by_sex(run), chart_by_drug(run)]
    return section("charts", "Charts", para(note, "muted"), *parts)


def year_table(run: CohortRun) -> str:
    """Rows = calendar year; columns = population, then users and each indicator per 1,000."""
    columns = ["users", *run.indicators]
    years = sum_by(run.ages, "year", ["population", *columns])
    rows = [
        [str(y), fmt_int(years[y]["population"])]
        + [fmt_num(rate(years[y][c], years[y]["population"])) for c in columns]
        for y in sorted(years)
    ]
    headers = ["year", "population", *(label(c) for c in columns)]
    return section(
        "rates-by-year",
        "Indicator rates by year (per 1,000 persons)",
        html_table(headers, rows, right=range(1, len(headers)), ident="rates-by-year-table"),
    )


def drug_table(run: CohortRun) -> str:
    """Per drug: user-years and each indicator as count and % of that drug's user-years."""
    totals = drug_totals(run)
    rows = [
        [str(d), fmt_int(t["users"])] + [f"{fmt_int(t[c])} ({fmt_pct(t[c], t['users'])})" for c in run.indicators]
        for d, t in totals.items()
    ]
    headers = ["drug", "users (person-years)", *(label(c) for c in run.indicators)]
    note = (
        "Users of each drug per year, summed over years; an indicator counts when an episode containing the drug "
        "meets it. One person can appear under several drugs."
    )
    return section(
        "by-drug",
        "By drug",
        para(note, "muted"),
        html_table(headers, rows, right=range(1, len(headers)), ident="by-drug-table"),
    )


def mapping_line(run: CohortRun) -> str:
    """How many rows were mapped, unmapped or out of scope, and whether all rows are accounted for."""
    total = int(run.summary["drug_exposure_rows"])
    by_status = sum_by(run.mapping, "status", ["rows"])
    counted = sum(v["rows"] for v in by_status.values())
    parts = ", ".join(f"{fmt_int(v['rows'])} {k.replace('_', ' ')}" for k, v in sorted(by_status.items()))
    not_mapped = counted - by_status.get("mapped", {"rows": 0})["rows"]
    if counted == total:
        return para(
            f"All {fmt_int(total)} drug_exposure rows are in this table ({parts}): {fmt_int(not_mapped)} rows were "
            "unmapped or out of scope and are listed here; none were dropped silently."
        )
    return para(
        f"The mapping table counts {fmt_int(counted)} rows but drug_exposure has {fmt_int(total)}: "
        "rows are missing from the report; check the run.",
        "warn",
    )


def mapping_table(run: CohortRun) -> str:
    """Every distinct product group: how it was mapped and how many rows it holds."""
    rows = [
        [
            str(r["status"]),
            str(r["method"]),
            str(r["kind"] or ""),
            str(r["ingredient"] or ""),
            fmt_int(int(r["rows"])),
            str(r["examples"] or ""),
        ]
        for r in run.mapping
    ]
    return section(
        "mapping",
        "Mapping report",
        mapping_line(run),
        html_table(
            ["status", "method", "kind", "ingredient", "rows", "examples"], rows, right=(4,), ident="mapping-table"
        ),
    )


def scope(row: Row) -> str:
    """Which part of the analysis a quality row feeds."""
    if row["kind"] == "bzd":
        return "BZD oral" if row["route_group"] in ANALYSED_ROUTES else "BZD other routes"
    return "opioid"


SCOPES = ("BZD oral", "BZD other routes", "opioid")


def rule_table(run: CohortRun, column: str, words: Mapping[str, str], ident: str) -> str:
    """Rows per value of one rule column, split by scope (oral BZD apart from the rest)."""
    counts: dict[str, dict[str, int]] = {}
    for r in run.quality:
        acc = counts.setdefault(str(r[column]), dict.fromkeys(SCOPES, 0))
        acc[scope(r)] += int(r["rows"])
    totals = {sc: sum(c[sc] for c in counts.values()) for sc in SCOPES}
    rows = [
        [rule, words.get(rule, "")] + [f"{fmt_int(c[sc])} ({fmt_pct(c[sc], totals[sc])})" for sc in SCOPES]
        for rule, c in sorted(counts.items(), key=lambda kv: -sum(kv[1].values()))
    ]
    return html_table([column, "meaning", *SCOPES], rows, right=(2, 3, 4), ident=ident)


def route_use(kind: str, group: str) -> str:
    """What the analysis does with rows of this kind and route group."""
    if kind == "bzd":
        return "episodes and indicators" if group in ANALYSED_ROUTES else "reported only: not in episodes"
    if kind == "opioid":
        return "not used (parenteral)" if group == "parenteral" else "opioid overlap"
    return "not used"


def route_table(run: CohortRun) -> str:
    """Rows per kind and route group, and what the analysis does with them."""
    sums = sum_by(({**r, "key": (r["kind"], r["route_group"])} for r in run.quality), "key", ["rows"])
    rows = [[str(k), str(g), fmt_int(v["rows"]), route_use(str(k), str(g))] for (k, g), v in sorted(sums.items())]
    return html_table(["kind", "route_group", "rows", "used for"], rows, right=(2,), ident="route-table")


def quality_section(run: CohortRun) -> str:
    """How durations, daily doses and doses per day were found, and which routes were analysed."""
    note = (
        "In-scope rows only (mapped BZD/Z-drug and opioid rows). Episodes and indicators use oral and oromucosal "
        "BZD rows; BZD rows of other routes are counted here and left out of episodes."
    )
    return section(
        "quality",
        "Data quality",
        para(note, "muted"),
        "<h3>Route groups</h3>",
        route_table(run),
        "<h3>How durations were found (duration_rule)</h3>",
        rule_table(run, "duration_rule", DURATION_WORDS, "duration-table"),
        "<h3>How daily doses were found (dose_rule)</h3>",
        rule_table(run, "dose_rule", DOSE_WORDS, "dose-table"),
        "<h3>How doses per day were found (doses_rule, for interdose risk)</h3>",
        rule_table(run, "doses_rule", DOSES_WORDS, "doses-table"),
    )


def age_sex(row: Row, ck: CohortKnowledge) -> str:
    """'67 F': age in the year of the last use, and sex from the gender concept."""
    gender: Any = row.get("gender_concept_id")
    sex = {ck.omop.male: "M", ck.omop.female: "F"}.get(gender, "?")
    yob: Any = row.get("year_of_birth")
    last: Any = row.get("last_end")
    age = str(last.year - int(yob)) if yob is not None and hasattr(last, "year") else "?"
    return f"{age} {sex}"


def reasons(row: Row) -> str:
    """The reason_* columns that are 1, in words."""
    return ", ".join(label(k.removeprefix("reason_")) for k, v in row.items() if k.startswith("reason_") and v == 1)


def candidates_section(run: CohortRun, ck: CohortKnowledge) -> str:
    """The first review candidates in the pipeline's order (most reasons, then highest dose)."""
    top = run.candidates[:TOP_CANDIDATES]
    rows = [
        [
            str(r["person_id"]),
            age_sex(r, ck),
            fmt_int(r["longest_episode_days"]),
            fmt_num(r["max_daily_de_mg"]),
            reasons(r),
        ]
        for r in top
    ]
    note = (
        f"The top {len(top):,} of {len(run.candidates):,} review candidates, ordered by number of reasons, then "
        "maximum daily dose. Age is in the year of the last supply."
    )
    headers = ["person_id", "age / sex", "longest episode (days)", "max daily DE (mg)", "reasons"]
    return section(
        "candidates",
        "Review candidates",
        para(note, "muted"),
        html_table(headers, rows, right=(0, 2, 3), ident="candidates-table"),
    )


def definitions(run: CohortRun, ck: CohortKnowledge) -> list[str]:
    """The rules in plain words, with this run's numbers."""
    st = run.settings
    tiers = ", ".join(f"more than {d} days ({n.replace('_', ' ')})" for n, d in st["long_term_days"].items())
    shortest = label(run.tiers[0])
    return [
        f"Episode: a person's oral or oromucosal benzodiazepine and Z-drug prescriptions, any ingredient, joined "
        f"while the gap between the end of one supply and the next start is at most {st['gap_days']} days.",
        "Supply: days_supply, else the end date, else quantity x strength / WHO defined daily dose, else one day. "
        "Daily dose = quantity x strength / duration, in mg diazepam-equivalent (DE).",
        "Supersede rule: a newer prescription of the same ingredient replaces the older one from its first day (early "
        "refills are not double counted); doses of different ingredients taken at once add up.",
        f"Long-term use: an episode lasting {tiers}, counted from its first start to its last day of supply.",
        "High dose: a total daily dose (all BZDs taken at once added up) above "
        f"{fmt_mg(float(st['high_dose_de_mg']))} mg DE/day on any day of the episode.",
        f"Escalation: in an episode of at least {whole_days(ck.escalation['min_days'])} days with at least "
        f"{round(ck.escalation['min_prescriptions'].value)} dosed prescriptions (cohort.toml), the least-squares trend "
        f"of the daily DE dose rises by at least {fmt_num(100 * float(st['escalation_per_year']), 0)}% of the "
        "episode's mean daily dose per year.",
        "Opioid co-prescription: at least one day of the episode also covered by an opioid prescription (any route "
        "but parenteral).",
        "Two or more BZDs at once: at least one day covered by two or more BZD prescriptions after the supersede rule.",
        f"Multiple prescribers: {st['min_prescribers']} or more different prescribers active within any "
        f"{st['prescriber_window_days']}-day window of the episode.",
        "Interdose withdrawal risk: the drug taken in its number of doses per day (from the sig, or tablets per day) "
        "would, by benzotaper's pharmacokinetic simulation at steady state, fall low enough between doses to give "
        f"interdose withdrawal. For the review list it counts only on an episode {shortest}.",
        f"Review candidate: a person with an episode {label(run.review_tier)}, or any of high dose, escalation, "
        "opioid co-prescription, multiple prescribers or interdose risk.",
        "Rates: a user counts in each calendar year an episode overlaps; population = persons in the person table of "
        "that age (year minus year of birth) and sex; deaths and observation periods are not taken into account. "
        "A user counts under an indicator in a year when an episode overlapping that year meets it.",
    ]


def definitions_section(run: CohortRun, ck: CohortKnowledge) -> str:
    """The 'Definitions' section."""
    items = "".join(f"<li>{esc(line)}</li>" for line in definitions(run, ck))
    return section("definitions", "Definitions", f"<ul>{items}</ul>")


NAV = (
    ("settings", "Settings"),
    ("key-figures", "Key figures"),
    ("charts", "Charts"),
    ("rates-by-year", "Rates by year"),
    ("by-drug", "By drug"),
    ("mapping", "Mapping"),
    ("quality", "Data quality"),
    ("candidates", "Review candidates"),
    ("definitions", "Definitions"),
)


def to_html(run: CohortRun, out_dir: Path, ck: CohortKnowledge) -> str:
    """The whole page."""
    nav = "<nav>" + "".join(f"<a href='#{i}'>{esc(t)}</a>" for i, t in NAV) + "</nav>"
    body = [
        header(run, out_dir),
        nav,
        settings_section(run, ck),
        key_figures(run),
        charts(run),
        year_table(run),
        drug_table(run),
        mapping_table(run),
        quality_section(run),
        candidates_section(run, ck),
        definitions_section(run, ck),
    ]
    head = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(TITLE)}</title><style>{CSS}</style></head>"
    )
    return head + "<body>" + "".join(body) + "</body></html>\n"


def write_cohort_report(out_dir: Path, report_path: Path) -> Path:
    """Read a cohort output folder and write the self-contained HTML report to `report_path`."""
    run = read_run(out_dir)
    page = to_html(run, out_dir, load_cohort_knowledge())
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(page, encoding="utf-8")
    return report_path
