"""The mirror analysis and the risk assessment as FHIR RiskAssessment, red flags and co-use warnings as DetectedIssue.

Export only: these are decisions benzotaper explains, not data it reads back.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from benzotaper.assess.mirror import MirrorAnalysis
from benzotaper.assess.redflags import Alert
from benzotaper.assess.risk import RiskAssessment
from benzotaper.fhir.context import ExportContext
from benzotaper.fhir.elements import Json

METHOD_MIRROR = (
    "benzotaper mirror analysis: clues of the case report combined as likelihood ratios (assess/mirror.toml)"
)
METHOD_RISK = "benzotaper risk and setting rules (assess/risk.toml): inpatient when any present factor calls for it"


def _base(ctx: ExportContext, kind: str, key: str, on: date | None) -> Json:
    out: Json = {
        "resourceType": kind,
        "id": ctx.resource_id(ctx.url(kind, key)),
        "status": "final",
        ("patient" if kind == "DetectedIssue" else "subject"): ctx.subject(),
    }
    if on is not None:
        out["identifiedDateTime" if kind == "DetectedIssue" else "occurrenceDateTime"] = on.isoformat()
    return out


def mirror_assessment(analysis: MirrorAnalysis, ctx: ExportContext, on: date | None) -> Json:
    """One RiskAssessment: per symptom the probability that it is withdrawal-driven, with the verdict and evidence."""
    predictions = []
    for verdict in analysis.symptoms.values():
        used = [f for f in verdict.findings if f.outcome is not None]
        evidence = "; ".join(f"{f.clue}: {f.detail} (likelihood ratio {f.likelihood_ratio:.2g})" for f in used)
        predictions.append(
            {
                "outcome": {"text": f"{verdict.name}: withdrawal-driven"},
                "probabilityDecimal": round(verdict.score, 3),
                "rationale": f"verdict: {verdict.verdict}" + (f"; {evidence}" if evidence else ""),
            }
        )
    summary: dict[str, Any] = analysis.summary
    notes = [summary.get("text", ""), *summary.get("to_settle", [])]
    out = _base(ctx, "RiskAssessment", "mirror", on)
    out.update(
        {
            "code": {"text": "withdrawal symptoms versus the original illness"},
            "method": {"text": METHOD_MIRROR},
            "prediction": predictions,
            "note": [{"text": n} for n in notes if n],
        }
    )
    return out


def mirror_issues(analysis: MirrorAnalysis, ctx: ExportContext, on: date | None) -> list[Json]:
    """One DetectedIssue per red-flag alert of the mirror analysis."""
    return [
        _issue(ctx, f"mirror/{a['flag']}", a["flag"], a["message"], a["action"], "urgent", on)
        for a in analysis.summary.get("alerts", [])
    ]


def risk_assessment(risk: RiskAssessment, ctx: ExportContext, on: date | None) -> Json:
    """The setting (inpatient/outpatient) with its reasons, the factors found and the advice."""
    notes = [f"{h.factor.name}: {h.detail}" for h in risk.factors]
    notes += [f"specialist referral: {r}" for r in risk.referral]
    if risk.not_assessed:
        notes.append("not assessed: " + ", ".join(risk.not_assessed))
    out = _base(ctx, "RiskAssessment", "risk", on)
    out.update(
        {
            "code": {"text": "complicated benzodiazepine withdrawal: setting of the taper"},
            "method": {"text": METHOD_RISK},
            "prediction": [
                {"outcome": {"text": f"taper setting: {risk.setting}"}, "rationale": "; ".join(risk.reasons)}
            ],
            "mitigation": risk.advice,
            "note": [{"text": n} for n in notes],
        }
    )
    if not out["note"]:
        del out["note"]
    return out


def risk_issues(risk: RiskAssessment, ctx: ExportContext, on: date | None) -> list[Json]:
    """Red-flag alerts (severity high) and co-use warnings (no severity in the data) as DetectedIssues."""
    issues = [_issue(ctx, f"risk/{a.flag}", a.name, a.message, _help(a), a.severity, on) for a in risk.alerts]
    issues += [_issue(ctx, f"co-use/{w.substance}", w.title, w.message, w.advice, None, on) for w in risk.co_use]
    return issues


def _help(alert: Alert) -> str:
    """'crisis: Samaritans 116 123; emergency 999' - the action and the crisis lines of the alert's country."""
    lines = [f"{line.name} {line.number}" for line in alert.help.lines]
    if alert.help.emergency is not None:
        lines.append(f"emergency {alert.help.emergency.number}")
    return f"{alert.action}: {'; '.join(lines)}" if lines else alert.action


def _issue(
    ctx: ExportContext, key: str, title: str, detail: str, action: str, severity: str | None, on: date | None
) -> Json:
    out = _base(ctx, "DetectedIssue", key, on)
    out.update({"code": {"text": title}, "detail": detail, "mitigation": [{"action": {"text": action}}]})
    mapped = ctx.codes.severity.get(severity) if severity else None
    if mapped:
        out["severity"] = mapped
    return out
