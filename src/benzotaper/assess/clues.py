"""The clues of domain.md section 2, each read off a timeline for one symptom.

Each clue function answers with one outcome of the clue in knowledge/data/assess/mirror.toml, or
says it cannot be assessed and what would answer it. Weights come from the data, never from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from benzotaper.assess.exposure import Exposure
from benzotaper.assess.level_relation import LevelRelation
from benzotaper.assess.timeline import Timeline, Treatment
from benzotaper.knowledge.mirror_rules import MirrorKnowledge, SymptomTerm
from benzotaper.knowledge.taper_rules import HOURS_PER_DAY


@dataclass(frozen=True, slots=True)
class Finding:
    """A clue's answer for one symptom: the outcome (None: not assessed) and what was seen."""

    clue: str
    outcome: str | None
    detail: str
    likelihood_ratio: float = 1.0
    to_settle: str | None = None

    @property
    def direction(self) -> str:
        """'for' withdrawal, 'against' it, or 'not assessed'."""
        if self.outcome is None:
            return "not assessed"
        return "for" if self.likelihood_ratio > 1 else "against"


@dataclass
class SymptomFacts:
    """What the timeline says about one symptom, gathered from every record of it (built up, then read)."""

    key: str
    name: str
    term: SymptomTerm | None
    onset: date | None
    timed: list[tuple[datetime, float]] = field(default_factory=list)
    resolved: date | None = None
    last_seen: date | None = None
    in_indication: bool = False
    relieved: bool | None = None
    treatments: list[Treatment] = field(default_factory=list)
    level: LevelRelation | None = None


@dataclass(frozen=True)
class Context:
    """Shared inputs of every clue."""

    timeline: Timeline
    exposure: Exposure
    mk: MirrorKnowledge

    def days(self, setting: str) -> float:
        """A duration setting in days."""
        return self.mk.setting(setting) / HOURS_PER_DAY


Clue = Callable[[SymptomFacts, Context], tuple[str | None, str, str | None]]


def mirror_action(f: SymptomFacts, ctx: Context) -> tuple[str | None, str, str | None]:
    """Mirror of an action, withdrawal set, specific sensory symptom, or outside the set."""
    t = f.term
    if t is None:
        return (
            None,
            f"{f.name!r} is not in the symptom vocabulary",
            "name the symptom with a term from the vocabulary (`benzotaper symptoms` lists them)",
        )
    if t.sensory_specific:
        return "sensory_specific", f"{t.label}: a sensory/motor symptom typical of withdrawal", None
    if t.mirrors:
        action = ctx.mk.actions[t.mirrors]
        return "mirror", f"{t.label} mirrors the {action.label} action (its shortage gives {action.mirror})", None
    if t.withdrawal_set:
        return "withdrawal_set", f"{t.label} belongs to the withdrawal set ({t.kind})", None
    return "outside_set", f"{t.label} is not a recognised withdrawal symptom", None


def novelty(f: SymptomFacts, ctx: Context) -> tuple[str | None, str, str | None]:
    """New since the first benzodiazepine, or part of the original indication."""
    first = ctx.timeline.first_bzd
    if f.in_indication:
        return "indication", "part of the original indication", None
    if f.onset is None:
        return None, "onset not recorded", "record when the symptom first appeared"
    if f.onset < first:
        return "indication", f"present since {f.onset}, before the first benzodiazepine ({first})", None
    return "new", f"began {f.onset}, {_years(f.onset - first)} after the first benzodiazepine ({first})", None


def tolerance(f: SymptomFacts, ctx: Context) -> tuple[str | None, str, str | None]:
    """A new symptom after the first months of use, in a patient whose dose escalated."""
    if f.in_indication or f.onset is None or f.onset < ctx.timeline.first_bzd:
        return None, "not a new symptom", None
    ratio = ctx.mk.setting("escalation_ratio")
    relief_days = ctx.days("initial_relief")
    escalated = ctx.exposure.escalated_by(ratio)
    if (f.onset - ctx.timeline.first_bzd).days < relief_days:
        return "no_escalation", f"began within the first {relief_days:g} days of use (no initial relief period)", None
    if escalated is None:
        return "no_escalation", f"the daily dose never rose to {ratio:g} x the starting dose", None
    peak = max(c.deq_mg for c in ctx.exposure.changes)
    return (
        "after_escalation",
        f"began after {_years(f.onset - ctx.timeline.first_bzd)} of use; the dose escalated from "
        f"{ctx.exposure.first_deq:.3g} to {peak:.3g} mg/day diazepam-equivalent (from {escalated})",
        None,
    )


def after_reduction(f: SymptomFacts, ctx: Context) -> tuple[str | None, str, str | None]:
    """Onset within the withdrawal window after a dose reduction or stop."""
    if f.onset is None:
        return None, "onset not recorded", None
    cuts = [c for c in ctx.exposure.reductions() if c.day <= f.onset]
    if not cuts:
        return None, "no dose reduction before the onset", None
    lo, hi = ctx.days("reduction_window_from"), ctx.days("reduction_window_to")
    gap = (f.onset - cuts[-1].day).days
    inside = lo <= gap <= hi
    where = "within" if inside else "outside"
    return (
        ("within_window" if inside else "outside_window"),
        f"began {gap} days after a reduction on {cuts[-1].day} ({where} {lo:g}-{hi:g} days)",
        None,
    )


def level_relation(f: SymptomFacts, ctx: Context) -> tuple[str | None, str, str | None]:
    """Severity against the predicted level at the record times."""
    rel = f.level
    if rel is None:
        return (
            None,
            "no timed severity records",
            "keep an hourly diary of severity (0-10) with the dose times for 1-2 weeks",
        )
    phases = ", ".join(f"{k} {v:g}" for k, v in rel.phase_means.items())
    phase_note = f"; mean severity by thirds of the dosing interval: {phases}" if phases else ""
    settle = (
        None
        if rel.outcome
        else "more timed records, ideally across a dosing interval of a short-acting drug or a reduction"
    )
    return rel.outcome, f"{rel.reason}{phase_note}", settle


def bzd_relief(f: SymptomFacts, ctx: Context) -> tuple[str | None, str, str | None]:
    """Whether a benzodiazepine dose relieves the symptom."""
    if f.relieved is None:
        return None, "relief by a dose not recorded", "note whether a dose relieves it within hours"
    if f.relieved:
        return "relieved", "a benzodiazepine dose relieves it", None
    return "not_relieved", "a benzodiazepine dose does not relieve it", None


def treatment_response(f: SymptomFacts, ctx: Context) -> tuple[str | None, str, str | None]:
    """Failure of treatments aimed at the symptom ('drug resistance'), or a response."""
    rated = [t for t in f.treatments if t.effect is not None]
    if not rated:
        return None, "no treatment aimed at it recorded", None
    worked = [t.drug for t in rated if t.effect in ("partial", "good")]
    if worked:
        return "responded", f"responded to {', '.join(worked)}", None
    failed = [t.drug for t in rated]
    outcome = "failed_repeatedly" if len(failed) > 1 else "failed_once"
    return outcome, f"no effect of {', '.join(failed)}", None


def detox_course(f: SymptomFacts, ctx: Context) -> tuple[str | None, str, str | None]:
    """Faded by the end of a detox, or still present long after the last dose."""
    detox = ctx.timeline.detox
    last = (detox.end if detox else None) or ctx.exposure.last_dose_day
    if last is None:
        return None, "no completed detoxification", "a thorough, serum-level-guided detoxification shows what remains"
    grace = ctx.days("detox_persistence")
    if f.resolved is not None and f.resolved <= last + timedelta(days=grace):
        return "faded", f"resolved {f.resolved}, by the end of detox (last dose {last})", None
    if (
        f.last_seen is not None
        and f.last_seen >= last + timedelta(days=grace)
        and (f.resolved is None or f.resolved > f.last_seen)
    ):
        return (
            "persisted",
            f"still present {f.last_seen}, {(f.last_seen - last).days} days after the last dose ({last})",
            None,
        )
    return None, f"too early to tell: last dose {last}", "follow up for 12 weeks after the last dose"


CLUES: dict[str, Clue] = {
    "mirror_action": mirror_action,
    "novelty": novelty,
    "tolerance": tolerance,
    "after_reduction": after_reduction,
    "level_relation": level_relation,
    "bzd_relief": bzd_relief,
    "treatment_response": treatment_response,
    "detox_course": detox_course,
}


def _years(delta: timedelta) -> str:
    days = delta.days
    return f"{days / 365.25:.1f} years" if days >= 365 else f"{days} days"


def evaluate(f: SymptomFacts, ctx: Context) -> list[Finding]:
    """Every clue's finding for one symptom, weighted by the likelihoods in the data."""
    out = []
    for clue_id, clue in CLUES.items():
        outcome, detail, settle = clue(f, ctx)
        lr = ctx.mk.clues[clue_id].outcome(outcome).likelihood_ratio if outcome else 1.0
        out.append(Finding(clue_id, outcome, detail, lr, settle))
    return out
