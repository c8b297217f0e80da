"""The mirror analysis: for every symptom, withdrawal-driven or primary illness, with the evidence.

Clues (assess/clues.py) are combined as likelihood ratios on the log-odds scale from the prior in
knowledge/data/assess/mirror.toml. The output supports a clinician's judgement; it does not replace it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from benzotaper.assess.clues import Context, Finding, SymptomFacts, evaluate
from benzotaper.assess.crisis import crisis_help, generic_help
from benzotaper.assess.exposure import Exposure, dose_events, exposure
from benzotaper.assess.level_relation import LevelRelation, LevelSeries, level_series, relate
from benzotaper.assess.redflags import Alert, red_flags
from benzotaper.assess.timeline import Timeline
from benzotaper.errors import AssessmentError, UnknownDrugError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.mirror_rules import MirrorKnowledge, SymptomTerm, normalise_symptom
from benzotaper.knowledge.safety_net import load_safety_net
from benzotaper.pk import Simulator
from benzotaper.regimen import plausible_daily_max

VERDICTS = ("withdrawal", "primary", "undetermined")


@dataclass(frozen=True)
class SymptomVerdict:
    """One symptom's verdict, posterior probability of withdrawal, and the findings behind it."""

    key: str
    name: str
    verdict: str
    score: float
    findings: tuple[Finding, ...]
    term: SymptomTerm | None
    series: LevelSeries | None = None

    def to_dict(self, mk: MirrorKnowledge) -> dict[str, Any]:
        """JSON form: verdict, score and the evidence for and against."""
        used = [f for f in self.findings if f.outcome is not None]
        used.sort(key=lambda f: -abs(math.log(f.likelihood_ratio)))
        return {
            "verdict": self.verdict,
            "score": round(self.score, 3),
            "label": self.term.label if self.term else self.name,
            "red_flag": bool(self.term and self.term.red_flag),
            "evidence": [_evidence(f, mk) for f in used],
            "not_assessed": [
                {"clue": f.clue, "why": f.detail, "to_settle": f.to_settle} for f in self.findings if f.outcome is None
            ],
        }


def _evidence(f: Finding, mk: MirrorKnowledge) -> dict[str, Any]:
    clue = mk.clues[f.clue]
    return {
        "clue": f.clue,
        "question": clue.question,
        "outcome": f.outcome,
        "finding": f.detail,
        "direction": f.direction,
        "likelihood_ratio": round(f.likelihood_ratio, 3),
        "source": clue.source,
    }


@dataclass(frozen=True)
class MirrorAnalysis:
    """Verdicts for every symptom and the overall picture."""

    symptoms: dict[str, SymptomVerdict]
    exposure: Exposure
    knowledge: MirrorKnowledge
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The `mirror --json` document."""
        mk = self.knowledge
        keys = {f.clue: mk.clues[f.clue].source for v in self.symptoms.values() for f in v.findings if f.outcome}
        keys |= {v.term.id: v.term.source for v in self.symptoms.values() if v.term}
        cited = sorted(set(keys.values()) | {mk.settings["prior"].source})
        return {
            "symptoms": {v.name: v.to_dict(mk) for v in self.symptoms.values()},
            "summary": self.summary,
            "sources": [{"key": k, "citation": mk.sources[k].citation, "url": mk.sources[k].url} for k in cited],
        }


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def combine(findings: list[Finding], mk: MirrorKnowledge) -> tuple[float, str]:
    """Posterior probability of withdrawal and the verdict it gives."""
    log_odds = _logit(mk.setting("prior")) + sum(math.log(f.likelihood_ratio) for f in findings if f.outcome)
    p = 1 / (1 + math.exp(-log_odds))
    if p >= mk.setting("withdrawal_at"):
        return p, "withdrawal"
    if p <= mk.setting("primary_at"):
        return p, "primary"
    return p, "undetermined"


def _key(mk: MirrorKnowledge, name: str) -> tuple[str, SymptomTerm | None]:
    term = mk.lookup(name)
    return (term.id if term else normalise_symptom(name)), term


def gather(timeline: Timeline, mk: MirrorKnowledge) -> dict[str, SymptomFacts]:
    """Group every record by symptom (synonyms merged) and collect what the timeline says of each."""
    facts: dict[str, SymptomFacts] = {}
    for rec in timeline.symptoms:
        key, term = _key(mk, rec.symptom)
        f = facts.setdefault(key, SymptomFacts(key, rec.symptom, term, None))
        day = rec.onset or (rec.at.date() if rec.at else None)
        seen = [d for d in (f.onset, day) if d]
        f.onset = min(seen) if seen else None
        last = [d for d in (f.last_seen, rec.at.date() if rec.at else None, rec.onset) if d]
        f.last_seen = max(last) if last else None
        if rec.at is not None and rec.severity is not None:
            f.timed.append((rec.at, rec.severity))
        if rec.resolved is not None:
            f.resolved = rec.resolved
    indication = {_key(mk, s)[0] for s in (timeline.indication.symptoms if timeline.indication else ())}
    relief = {_key(mk, s)[0] for s in timeline.bzd_relief}
    no_relief = {_key(mk, s)[0] for s in timeline.bzd_no_relief}
    for key, f in facts.items():
        f.in_indication = key in indication
        f.relieved = True if key in relief else (False if key in no_relief else None)
        f.treatments.extend(t for t in timeline.treatments if _key(mk, t.for_)[0] == key)
    return facts


def _levels(
    knowledge: Knowledge, timeline: Timeline, exp: Exposure, facts: dict[str, SymptomFacts]
) -> dict[str, LevelSeries]:
    """Predicted level at every timed record, one PK run for the whole record window."""
    timed = [t for f in facts.values() for t, _ in f.timed]
    if not timed:
        return {}
    start, end = min(timed), max(timed)
    events = dose_events(knowledge, timeline, exp, start, end)
    if not len(events.time):
        return {}
    sim = Simulator.for_drugs(knowledge, events.drugs)
    return {k: level_series(sim, events, sorted(f.timed)) for k, f in facts.items() if f.timed}


def check_doses(knowledge: Knowledge, timeline: Timeline) -> None:
    """Each diary dose names a known drug and an amount no larger than its plausible daily maximum."""
    for i, dose in enumerate(timeline.doses):
        try:
            drug = knowledge.drug(dose.drug)
        except UnknownDrugError as exc:
            raise AssessmentError(f"timeline: doses[{i}].drug: {exc}; expected a drug of the knowledge base") from None
        top = plausible_daily_max(knowledge, drug)
        if top is not None and dose.mg > top:
            raise AssessmentError(
                f"timeline: doses[{i}].mg: {dose.mg:g} mg of {drug.name} is implausible; expected at most "
                f"{top:g} mg (the plausible daily maximum)"
            )


def analyse(knowledge: Knowledge, timeline: Timeline, mk: MirrorKnowledge) -> MirrorAnalysis:
    """Run the mirror analysis over a validated timeline."""
    check_doses(knowledge, timeline)
    exp = exposure(knowledge, timeline)
    facts = gather(timeline, mk)
    series = _levels(knowledge, timeline, exp, facts)
    ctx = Context(timeline, exp, mk)
    verdicts = {}
    for key, f in facts.items():
        rel: LevelRelation | None = relate(series[key], mk) if key in series else None
        f.level = rel
        findings = evaluate(f, ctx)
        score, verdict = combine(findings, mk)
        verdicts[key] = SymptomVerdict(key, f.name, verdict, score, tuple(findings), f.term, series.get(key))
    return MirrorAnalysis(verdicts, exp, mk, summarise(verdicts, exp, timeline))


def summarise(by_symptom: dict[str, SymptomVerdict], exp: Exposure, timeline: Timeline) -> dict[str, Any]:
    """How much of the picture is likely withdrawal, and what would settle the doubt."""
    verdicts = list(by_symptom.values())
    counts = {v: sum(1 for s in verdicts if s.verdict == v) for v in VERDICTS}
    share = counts["withdrawal"] / len(verdicts)
    expected = sum(s.score for s in verdicts) / len(verdicts)
    settle = sorted(
        {
            f.to_settle
            for s in verdicts
            if s.verdict == "undetermined"
            for f in s.findings
            if f.outcome is None and f.to_settle
        }
    )
    if counts["withdrawal"] or counts["undetermined"]:
        settle.append(
            "a serum-level-guided detoxification: symptoms that fade as the level falls slowly were withdrawal; "
            "what remains is the primary illness, which responds to its own treatment again"
        )
    return {
        "counts": counts,
        "withdrawal_share": round(share, 3),
        "mean_score": round(expected, 3),
        "text": _sentence(counts, share, len(verdicts)),
        "to_settle": settle,
        **_alerts(verdicts, timeline),
        "current_dose_deq_mg": round(exp.deq_on(timeline.assessed_on or _last_day(timeline)), 3),
    }


def _alerts(verdicts: list[SymptomVerdict], timeline: Timeline) -> dict[str, Any]:
    """Red-flag symptoms (vocabulary or the safety net's list) with urgent advice and crisis lines."""
    net = load_safety_net()
    country = timeline.patient.country
    try:
        alerts: list[Alert] = red_flags([s.name for s in verdicts], net, country)
        help_ = crisis_help(country, net) if country else generic_help(net)
    except AssessmentError:  # unknown country: never withhold help, fall back to generic advice
        alerts, help_ = red_flags([s.name for s in verdicts], net, None), generic_help(net)
    flagged = {a.finding for a in alerts} | {s.name for s in verdicts if s.term and s.term.red_flag}
    return {
        "red_flags": [s.name for s in verdicts if s.name in flagged],
        "alerts": [{"flag": a.flag, "symptom": a.finding, "action": a.action, "message": a.message} for a in alerts],
        "crisis": help_.to_dict(net) if flagged else None,
    }


def _last_day(timeline: Timeline) -> date:
    days = [c.end or c.start for c in timeline.bzd_history] + [s.at.date() for s in timeline.symptoms if s.at]
    days += [s.onset for s in timeline.symptoms if s.onset]
    return max(days)


def _sentence(counts: dict[str, int], share: float, n: int) -> str:
    if counts["withdrawal"] == n:
        return f"All {n} symptoms are likely withdrawal-driven."
    return (
        f"{counts['withdrawal']} of {n} symptoms ({share:.0%}) are likely withdrawal-driven, "
        f"{counts['primary']} likely primary illness, {counts['undetermined']} undetermined."
    )
