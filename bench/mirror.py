"""Benchmark and validation of the mirror analysis (issue 5).

1. Speed. Target: a 10-year timeline with hourly symptom records for 90 days in under 1 s. The
   baseline, run in the same process, is the PK engine alone computing the level at the same record
   times (`Simulator.levels_at`), so the ratio says what the analysis adds to one PK evaluation.
2. Validation. Simulated patients whose symptoms are withdrawal-driven or primary by construction
   (assess/synthetic.py): AUC, accuracy of the decided verdicts and how many stay undetermined.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from benzotaper.assess.exposure import dose_events, exposure
from benzotaper.assess.mirror import analyse
from benzotaper.assess.synthetic import auc, simulated_cohort
from benzotaper.assess.timeline import Timeline, parse_timeline
from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.knowledge.mirror_rules import load_mirror_knowledge
from benzotaper.pk import Simulator
from timing import median_s

REPEATS = 5
COHORT = 1000




def ten_year_timeline() -> Timeline:
    """Alprazolam since 2016 with three escalations, five symptoms, hourly records for the last 90 days."""
    rng = np.random.default_rng(3)
    history = [
        {"drug": "alprazolam", "dose": f"{mg} mg tds", "start": date(2016 + 3 * i, 1, 1), "end": end}
        for i, (mg, end) in enumerate([(0.25, date(2018, 12, 31)), (0.5, date(2021, 12, 31)), (1, date(2024, 12, 31))])
    ]
    history.append({"drug": "alprazolam", "dose": "1.5 mg tds", "start": date(2025, 1, 1), "end": None})
    start = datetime(2025, 10, 1)
    records: list[dict[str, Any]] = []
    for name in ("panic attacks", "insomnia", "tinnitus"):
        for h in range(90 * 24):
            at = start + timedelta(hours=h)
            records.append({"symptom": name, "at": at, "severity": float(np.clip(rng.normal(5, 2), 0, 10))})
    onsets = [
        {"symptom": "anxiety", "onset": date(2010, 1, 1)},
        {"symptom": "panic attacks", "onset": date(2017, 5, 1)},
        {"symptom": "insomnia", "onset": date(2019, 2, 1)},
        {"symptom": "tinnitus", "onset": date(2022, 8, 1)},
        {"symptom": "hypertension", "onset": date(2023, 3, 1)},
    ]
    doc = {
        "indication": {"condition": "anxiety disorder", "since": date(2010, 1, 1), "symptoms": ["anxiety"]},
        "bzd_history": history,
        "symptoms": onsets + records,
        "treatments": [{"drug": "amlodipine", "for": "hypertension", "effect": "none"}],
        "bzd_relief": ["panic attacks"],
    }
    return parse_timeline(doc)


def speed(k: Knowledge) -> None:
    mk = load_mirror_knowledge()
    timeline = ten_year_timeline()
    times = sorted({s.at for s in timeline.symptoms if s.at})
    exp = exposure(k, timeline)
    events = dose_events(k, timeline, exp, times[0], times[-1])
    sim = Simulator.for_drugs(k, events.drugs)
    hours = np.array([(t - events.origin) / timedelta(hours=1) for t in times])
    t_all = median_s(lambda: analyse(k, timeline, mk), REPEATS)
    t_base = median_s(lambda: sim.levels_at(events, hours), REPEATS)
    n = sum(1 for s in timeline.symptoms if s.at)
    print(f"10-year timeline, {n} hourly records over 90 days: analysis {1000 * t_all:.0f} ms (target < 1000 ms)")
    print(f"  baseline PK levels at the record times {1000 * t_base:.1f} ms; ratio {t_all / t_base:.1f}")


def validation(k: Knowledge) -> None:
    mk = load_mirror_knowledge()
    t0 = time.perf_counter()
    cohort = simulated_cohort(k, mk, COHORT, seed=2026)
    scores, truth, verdicts = [], [], []
    for patient in cohort:
        for v in analyse(k, patient.timeline, mk).symptoms.values():
            scores.append(v.score)
            truth.append(patient.truth[v.name] == "withdrawal")
            verdicts.append(v.verdict)
    decided = [(t, v) for t, v in zip(truth, verdicts, strict=True) if v != "undetermined"]
    correct = sum(1 for t, v in decided if (v == "withdrawal") == t)
    print(f"simulated cohort: {COHORT} patients, {len(scores)} symptoms ({sum(truth)} withdrawal-driven)")
    print(f"  AUC {auc(scores, truth):.3f} (target >= 0.9)")
    share = len(decided) / len(scores)
    print(f"  decided {len(decided)} ({share:.0%}); accuracy of decided verdicts {correct / len(decided):.1%}")
    for label, want in (("withdrawal", True), ("primary", False)):
        mine = [v for t, v in zip(truth, verdicts, strict=True) if t == want]
        shares = ", ".join(f"{x} {mine.count(x) / len(mine):.0%}" for x in ("withdrawal", "primary", "undetermined"))
        print(f"  truly {label}: {shares}")
    print(f"  ({time.perf_counter() - t0:.1f} s for generation and analysis)")


def main() -> None:
    k = load_knowledge()
    speed(k)
    validation(k)


if __name__ == "__main__":
    main()
