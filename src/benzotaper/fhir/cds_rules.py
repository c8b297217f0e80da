"""What a benzodiazepine or Z-drug order means given the patient's medication history: the findings behind the cards.

The rules are the population rules of the cohort analysis applied to one patient (cohort.toml: drug-era gap,
long-term tiers, high dose, escalation; vocabulary.toml: opioid ingredients), the co-use warning of the safety net
(assess/risk.toml) and the interdose-withdrawal flag of the PK engine (policy.toml), as in `benzotaper simulate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from benzotaper.equivalence import diazepam_equivalent_mg
from benzotaper.errors import BenzotaperError
from benzotaper.fhir.records import CoMedication, MedicationRecord
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.cohort_rules import CohortKnowledge, whole_days
from benzotaper.knowledge.safety_net import SafetyNet
from benzotaper.regimen import Regimen
from benzotaper.simulate import simulate_sig

INTERDOSE_DAYS = 21  # simulated days before the flag is read, as in cohort/pipeline.py interdose_rows


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason for a card: which rule, a one-line summary, the markdown detail, the source keys."""

    rule: str
    summary: str
    detail: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Situation:
    """The order(s) being signed and what the prefetch says the patient already takes."""

    knowledge: Knowledge
    cohort: CohortKnowledge
    net: SafetyNet
    drafts: tuple[MedicationRecord, ...]
    history: tuple[MedicationRecord, ...]
    co: tuple[CoMedication, ...]
    today: date

    def cite(self, key: str) -> str:
        """'citation (url)' of a source key from the cohort, knowledge or safety-net sources."""
        source = self.cohort.sources.get(key) or self.knowledge.sources.get(key) or self.net.sources.get(key)
        if source is None:
            return key
        return f"{source.citation}" + (f" ({source.url})" if source.url else "")


def _deq(knowledge: Knowledge, r: Regimen) -> float | None:
    mg = r.daily_mg or r.max_daily_mg
    try:
        return diazepam_equivalent_mg(knowledge, r.drug, mg) if mg > 0 else None
    except BenzotaperError:
        return None


def _episode(s: Situation) -> tuple[date, list[Regimen]]:
    """Start of the drug era the order continues (gaps up to cohort.toml episode.gap_days) and its regimens."""
    gap = timedelta(days=whole_days(s.cohort.episode_gap))
    spans = sorted(
        ((r.start, r.end or s.today, r) for m in (*s.history, *s.drafts) for r in m.regimens if r.start <= s.today),
        key=lambda x: x[0],
    )
    episodes: list[tuple[date, date, list[Regimen]]] = []
    for first, last, r in spans:
        if episodes and first <= episodes[-1][1] + gap:
            begin, end, members = episodes[-1]
            episodes[-1] = (begin, max(end, last), [*members, r])
        else:
            episodes.append((first, last, [r]))
    if not episodes or episodes[-1][1] < s.today - gap:
        return s.today, []
    return episodes[-1][0], episodes[-1][2]


def long_term(s: Situation) -> Finding | None:
    """The longest long-term tier (cohort.toml [[long_term]]) the era exceeds on the order date."""
    start, _ = _episode(s)
    duration = (s.today - start).days + 1
    tiers = sorted(s.cohort.long_term, key=lambda t: t[1].value)
    passed = [(name, q) for name, q in tiers if duration > whole_days(q)]
    if not passed:
        return None
    name, q = passed[-1]
    label = name.removeprefix("over_").replace("_", " ")
    gap = s.cohort.episode_gap
    return Finding(
        "long_term",
        f"Long-term benzodiazepine/Z-drug use: {duration} days by this order (more than {label})",
        f"Continuous use since **{start}**: prescriptions at most {whole_days(gap)} days apart form one episode "
        f"({s.cite(gap.source)}). **{duration} days** by {s.today}, more than the {whole_days(q)}-day threshold "
        f"({s.cite(q.source)}{'; ' + q.note if q.note else ''}). Consider whether to continue, and a gradual "
        "taper plan if not.",
        (gap.source, q.source),
    )


def escalation(s: Situation) -> Finding | None:
    """Escalating dose over the era: least-squares trend of the daily diazepam-equivalent (cohort.toml [escalation])."""
    start, members = _episode(s)
    rules = s.cohort.escalation
    points = [(float((r.start - start).days), d, (min(r.end or s.today, s.today) - r.start).days + 1)
              for r in members if (d := _deq(s.knowledge, r)) is not None]  # fmt: skip
    duration = (s.today - start).days + 1
    if duration < whole_days(rules["min_days"]) or len(points) < rules["min_prescriptions"].value:
        return None
    xs, ys, ws = zip(*points, strict=True)
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    mean = sum(y * w for y, w in zip(ys, ws, strict=True)) / sum(ws)
    per_year = rules["per_year"]
    if slope * 365.0 < per_year.value * mean:
        return None
    return Finding(
        "escalation",
        f"Escalating dose: {ys[0]:g} to {ys[-1]:g} mg/day diazepam-equivalent since {start}",
        f"Trend of the daily diazepam-equivalent over {len(points)} prescriptions: **{slope * 365:+.1f} mg/day per "
        f"year**, at least {per_year.value:.0%} of the mean daily dose ({mean:.1f} mg) per year "
        f"({s.cite(per_year.source)}: {per_year.note}). Tolerance and dose climbing are signs of dependence.",
        (per_year.source,),
    )


def high_dose(s: Situation) -> Finding | None:
    """Daily diazepam-equivalent of the order plus other benzodiazepines taken now above cohort.toml [high_dose]."""
    drafted = {m.drug for m in s.drafts}
    parts = [(r.drug, d) for m in s.drafts for r in m.regimens if (d := _deq(s.knowledge, r)) is not None]
    parts += [
        (r.drug, d)
        for m in s.history
        if m.drug not in drafted
        for r in m.regimens
        if r.active_on(s.today) and (d := _deq(s.knowledge, r)) is not None
    ]
    total = sum(d for _, d in parts)
    limit = s.cohort.high_dose
    if total <= limit.value:
        return None
    listing = ", ".join(f"{drug} {d:.3g} mg" for drug, d in parts)
    return Finding(
        "high_dose",
        f"High dose: {total:.3g} mg/day diazepam-equivalent (more than {limit.value:g} mg)",
        f"Daily diazepam-equivalent with this order: **{total:.3g} mg** ({listing}; scheduled plus the most the "
        f"as-needed part allows, default equivalence tables). High-dose use is more than {limit.value:g} mg/day "
        f"({s.cite(limit.source)}). Equivalences are approximate: published tables disagree.",
        (limit.source,),
    )


def opioid(s: Situation) -> Finding | None:
    """An opioid taken on the order date (history or the same order set), with the safety net's co-use warning."""
    active = [c for c in s.co if (c.start is None or c.start <= s.today) and (c.end is None or c.end >= s.today)]
    if not active:
        return None
    warning = s.net.co_use.get("opioids")
    names = ", ".join(sorted({c.ingredient for c in active}))
    text = f"{warning.message} {warning.advice}" if warning else ""
    keys = warning.sources if warning else ()
    cites = "; ".join(s.cite(k) for k in keys)
    return Finding(
        "opioid",
        f"Opioid co-prescription: {names} with a benzodiazepine/Z-drug",
        f"Active opioid order(s): **{names}** (RxNorm ingredients of vocabulary.toml or their names). {text}"
        + (f" Sources: {cites}." if cites else ""),
        keys,
    )


def interdose(s: Situation) -> list[Finding]:
    """Short-acting drugs taken several times a day whose simulated level dips before each dose (policy.toml)."""
    out = []
    for m in s.drafts:
        for r in m.regimens:
            if len(r.doses) < 2:
                continue
            sig = f"{r.drug} " + ", ".join(f"{d.mg:.10g} mg at {d.at:%H:%M}" for d in r.doses)
            try:
                report = simulate_sig(s.knowledge, sig, INTERDOSE_DAYS, s.today)
            except BenzotaperError:
                continue
            last = report.days[-1]
            if not last.interdose_withdrawal:
                continue
            rule = s.knowledge.policy.interdose_trough_fraction
            out.append(
                Finding(
                    "interdose",
                    f"Interdose withdrawal risk: {r.drug} {len(r.doses)} times a day",
                    f"Simulated typical patient on {sig} (day {INTERDOSE_DAYS}): before a dose the "
                    f"diazepam-equivalent level falls to **{last.min_predose_fraction:.0%}** of the 24-hour mean "
                    f"(flag below {rule.value:.0%}; {rule.note}). Symptoms late in the dosing interval may be "
                    "withdrawal; a long-acting drug (diazepam) smooths the level.",
                    (rule.source,),
                )
            )
    return out


def findings(s: Situation, unread: Sequence[str]) -> list[Finding]:
    """Every finding for the situation, plus one 'unread' finding per benzodiazepine order that could not be read."""
    found = [f for f in (long_term(s), escalation(s), high_dose(s), opioid(s)) if f is not None] if s.drafts else []
    found += interdose(s)
    found += [
        Finding("unread", "benzotaper could not read a benzodiazepine order; the check is incomplete", reason, ())
        for reason in unread
    ]
    return found
