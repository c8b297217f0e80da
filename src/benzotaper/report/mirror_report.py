"""The mirror analysis as a clinician's report: Markdown (with a PNG chart) and self-contained HTML.

Both show the verdict table, the evidence for and against each symptom with its source, what would
settle the doubt, and, where symptom times are known, the predicted level against the severity.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import plotly.graph_objects as go  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from benzotaper.assess.mirror import MirrorAnalysis

TITLE = "Mirror analysis: withdrawal symptoms or the original illness?"
DISCLAIMER = (
    "Decision support for a clinician, not a diagnosis. Weights are benzotaper's stated judgement on published "
    "heuristics (knowledge/data/assess/mirror.toml), not a validated instrument. Never stop a benzodiazepine "
    "abruptly after regular use."
)
LEVEL = "diazepam-equivalent level (ng/mL, typical patient)"


def _rows(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    out = []
    for name, s in doc["symptoms"].items():
        top = [e for e in s["evidence"]][:2]
        out.append((name, s["verdict"], f"{s['score']:.2f}", "; ".join(e["finding"] for e in top)))
    return out


def _timed(analysis: MirrorAnalysis) -> list[Any]:
    return [v for v in analysis.symptoms.values() if v.series is not None and len(v.series.times) > 1]


def level_chart_png(analysis: MirrorAnalysis, path: Path) -> Path | None:
    """Severity of each timed symptom and the predicted level on one time axis (None if no timed data)."""
    timed = _timed(analysis)
    if not timed:
        return None
    fig, ax = plt.subplots(figsize=(11, 4.5))
    level_ax = ax.twinx()
    first = timed[0].series
    level_ax.plot(first.times, first.level_ng_ml, color="grey", alpha=0.6, label=LEVEL)
    for v in timed:
        ax.plot(v.series.times, v.series.severity, ".", markersize=3, label=f"{v.name} ({v.verdict})")
    ax.set_ylabel("severity (0-10)")
    level_ax.set_ylabel(LEVEL)
    ax.set_title("Symptom severity against the predicted drug level")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _evidence_md(s: dict[str, Any]) -> list[str]:
    lines = [
        f"- {'+' if e['direction'] == 'for' else '-'} **{e['clue']}** (x{e['likelihood_ratio']:g}): "
        f"{e['finding']} [{e['source']}]"
        for e in s["evidence"]
    ]
    lines += [f"- ? {n['clue']}: {n['why']}" for n in s["not_assessed"]]
    return lines


def crisis_lines(summary: dict[str, Any]) -> list[str]:
    """Alerts and crisis help as plain lines (empty when there is no red flag)."""
    crisis = summary.get("crisis")
    if not crisis:
        return []
    out = [f"{a['symptom']}: {a['message']}" for a in summary["alerts"]]
    out += [f"{c['name']}: {c['number']}" + (f" ({c['hours']})" if c.get("hours") else "") for c in crisis["lines"]]
    if crisis["emergency"]:
        out.append(f"Emergency: {crisis['emergency']['number']}")
    out.append(crisis["advice"])
    return out


def to_markdown(analysis: MirrorAnalysis, chart: Path | None = None) -> str:
    """The report as Markdown; `chart` is linked by file name when given."""
    doc = analysis.to_dict()
    summary = doc["summary"]
    lines = [f"# {TITLE}", "", f"_{DISCLAIMER}_", "", f"**{summary['text']}**", ""]
    if summary["red_flags"]:
        lines += [f"> **Red flag:** {', '.join(summary['red_flags'])}: urgent clinical review.", ">"]
        lines += [f"> - {line}" for line in crisis_lines(summary)] + [""]
    lines += ["| symptom | verdict | P(withdrawal) | main evidence |", "|---|---|---|---|"]
    lines += [f"| {n} | {v} | {p} | {e} |" for n, v, p, e in _rows(doc)]
    if chart is not None:
        lines += ["", f"![Severity against level]({chart.name})"]
    for name, s in doc["symptoms"].items():
        lines += ["", f"## {name}: {s['verdict']} ({s['score']:.2f})", "", *_evidence_md(s)]
    lines += ["", "## What would settle the doubt", "", *[f"- {t}" for t in summary["to_settle"]]]
    lines += ["", "## Sources", "", *[f"- [{s['key']}] {s['citation']}" for s in doc["sources"]]]
    return "\n".join(lines) + "\n"


def write_markdown(analysis: MirrorAnalysis, path: Path) -> Path:
    """Write the Markdown report and its PNG chart (same stem, `_levels.png`) when there are timed records."""
    chart = level_chart_png(analysis, path.with_name(f"{path.stem}_levels.png"))
    path.write_text(to_markdown(analysis, chart), encoding="utf-8")
    return path


def _chart_div(analysis: MirrorAnalysis) -> str:
    timed = _timed(analysis)
    if not timed:
        return "<p>No timed severity records: no level chart.</p>"
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    first = timed[0].series
    fig.add_trace(
        go.Scatter(
            x=[t.isoformat() for t in first.times], y=first.level_ng_ml.tolist(), name=LEVEL, line={"color": "grey"}
        ),
        secondary_y=True,
    )
    for v in timed:
        x = [t.isoformat() for t in v.series.times]
        fig.add_trace(
            go.Scatter(x=x, y=v.series.severity.tolist(), mode="markers", name=f"{v.name} ({v.verdict})"),
            secondary_y=False,
        )
    fig.update_yaxes(title_text="severity (0-10)", secondary_y=False)
    fig.update_yaxes(title_text=LEVEL, secondary_y=True)
    fig.update_layout(title="Symptom severity against the predicted drug level", height=450)
    return str(fig.to_html(include_plotlyjs=True, full_html=False))


def _esc(text: object) -> str:
    return html.escape(str(text))


def to_html(analysis: MirrorAnalysis) -> str:
    """A self-contained HTML page (plotly.js embedded: opens offline)."""
    doc = analysis.to_dict()
    summary = doc["summary"]
    colour = {"withdrawal": "#b45309", "primary": "#1d4ed8", "undetermined": "#6b7280"}
    rows = "".join(
        f"<tr><td>{_esc(n)}</td><td style='color:{colour[v]};font-weight:bold'>{v}</td>"
        f"<td>{p}</td><td>{_esc(e)}</td></tr>"
        for n, v, p, e in _rows(doc)
    )
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{TITLE}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        ".flag{background:#fee2e2;border-left:6px solid #b91c1c;padding:8px}</style></head><body>",
        f"<h1>{TITLE}</h1><p><em>{_esc(DISCLAIMER)}</em></p><p><strong>{_esc(summary['text'])}</strong></p>",
    ]
    if summary["red_flags"]:
        parts.append(
            f"<p class='flag'><strong>Red flag:</strong> {_esc(', '.join(summary['red_flags']))}: "
            "urgent clinical review.</p><ul class='flag'>"
            + "".join(f"<li>{_esc(line)}</li>" for line in crisis_lines(summary))
            + "</ul>"
        )
    parts.append(
        f"<table><tr><th>symptom</th><th>verdict</th><th>P(withdrawal)</th><th>main evidence</th></tr>{rows}</table>"
    )
    parts.append(_chart_div(analysis))
    for name, s in doc["symptoms"].items():
        items = "".join(f"<li>{_esc(line[2:])}</li>" for line in _evidence_md(s))
        parts.append(f"<h2>{_esc(name)}: {s['verdict']} ({s['score']:.2f})</h2><ul>{items}</ul>")
    parts.append(
        "<h2>What would settle the doubt</h2><ul>"
        + "".join(f"<li>{_esc(t)}</li>" for t in summary["to_settle"])
        + "</ul>"
    )
    parts.append(
        "<h2>Sources</h2><ul>"
        + "".join(f"<li>[{_esc(s['key'])}] {_esc(s['citation'])}</li>" for s in doc["sources"])
        + "</ul>"
    )
    return "".join(parts) + "</body></html>\n"


def write_html(analysis: MirrorAnalysis, path: Path) -> Path:
    """Write the HTML report."""
    path.write_text(to_html(analysis), encoding="utf-8")
    return path
