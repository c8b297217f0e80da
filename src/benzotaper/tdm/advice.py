"""Which level to take next: a trough at steady state on the current regimen, or the plan's next sample.

AGNP (tdm.toml `sampling`): a trough before the morning dose, once 4-5 half-lives have passed since
the last change, so the level has settled. The half-life is the typical model's slowest analyte of the
regimen (for diazepam: nordiazepam), since that is what takes longest to settle.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.tdm_rules import load_tdm_knowledge
from benzotaper.pk import Simulator, build_model, modal, model_half_life, potencies, typical
from benzotaper.regimen import parse_regimens


def settle_hours(knowledge: Knowledge, sig: str) -> float:
    """Hours to steady state on `sig`: settle_half_lives x the slowest analyte's half-life (typical patient)."""
    regimens = parse_regimens(sig, knowledge, start=date(2000, 1, 1))
    model = build_model(knowledge, [r.drug for r in regimens])
    params = typical(model)
    sim = Simulator(knowledge, model, params, modal(model, params), tuple(potencies(knowledge, model)))
    slowest = max(model_half_life(sim, i) for i in range(len(model.analytes)))
    return load_tdm_knowledge().value("sampling", "settle_half_lives") * slowest


def next_trough(knowledge: Knowledge, sig: str, since: date, now: datetime, why: str) -> dict[str, Any]:
    """The first morning trough after `now` at which the level on `sig` (taken since `since`) has settled."""
    tdm = load_tdm_knowledge()
    regimens = parse_regimens(sig, knowledge, start=since)
    clocks = [d.at for r in regimens for d in r.doses]
    clock = min(clocks) if clocks else time(8, 0)
    settled = datetime.combine(since, time()) + timedelta(hours=settle_hours(knowledge, sig))
    day = max(now + timedelta(hours=1), settled).date()
    at = datetime.combine(day, clock)
    if at < max(now, settled):
        at += timedelta(days=1)
    return {
        "at": at.isoformat(timespec="minutes"),
        "when": tdm.sampling_time,
        "why": why,
        "settled_from": settled.isoformat(timespec="minutes"),
        "source": tdm.sampling_source,
    }
