"""Benchmark: planning a taper plus its PK chart data, against simulating the plain regimen as long.

Target (issue 3): any regimen, including the PK chart data for a 2-year plan, under 200 ms. The
baseline is the core `simulate_sig` of the starting regimen over the same number of days, run in
the same process, so the ratio says what planning adds on top of one PK run.
"""

from __future__ import annotations

from datetime import date

from benzotaper.knowledge import load_knowledge
from benzotaper.simulate import simulate_sig
from benzotaper.taper.levels import plan_curves
from benzotaper.taper.planner import PlanOptions, plan_from_text
from timing import median_s

CASES = [
    ("alprazolam 6 mg/day in 3 doses", "ashton"),
    ("lorazepam 1 mg bd + zolpidem 10 mg nocte", "maudsley"),
    ("clonazepam 1 mg tds", "standard"),
    ("diazepam 20 mg bd", "jcpg"),
    ("alprazolam 1 mg tds", "slow"),
]




def main() -> None:
    k = load_knowledge()
    start = date(2026, 12, 1)
    print(f"{'regimen':45} {'strategy':9} {'weeks':>6} {'plan ms':>8} {'+PK ms':>8} {'base ms':>8} {'ratio':>6}")
    for sig, strategy in CASES:
        opts = PlanOptions(start=start, strategy=strategy)
        plan = plan_from_text(k, sig, opts)
        days = (plan.end_date - start).days
        t_plan = median_s(lambda s=sig, o=opts: plan_from_text(k, s, o))
        t_all = median_s(lambda s=sig, o=opts: plan_curves(k, plan_from_text(k, s, o)))
        t_base = median_s(lambda s=sig, n=days: simulate_sig(k, s, n, start, step_h=1.0))
        print(
            f"{sig:45} {strategy:9} {days / 7:6.0f} {1000 * t_plan:8.1f} {1000 * t_all:8.1f} "
            f"{1000 * t_base:8.1f} {t_all / t_base:6.2f}"
        )


if __name__ == "__main__":
    main()
