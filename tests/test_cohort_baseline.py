"""The benchmark's plain pandas baseline (bench/cohort_pandas_plain.py) gives DuckDB's six outputs.

The benchmark compares DuckDB with this baseline: the comparison only means something if both do
the same job, so every output must match row by row on generated data.
"""

from __future__ import annotations

import sys
from pathlib import Path

from benzotaper.cohort.generate import generate
from benzotaper.cohort.pipeline import OUTPUTS, run_cohort
from benzotaper.knowledge import Knowledge

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_plain_pandas_baseline_equals_duckdb(tmp_path: Path, knowledge: Knowledge) -> None:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    from cohort_pandas_plain import compare_outputs, run_plain

    data = tmp_path / "data"
    generate(data, 30_000, knowledge=knowledge)
    run_cohort(data, tmp_path / "duckdb", "duckdb", knowledge=knowledge)
    outputs = run_plain(data, tmp_path / "plain", knowledge=knowledge)

    assert len(outputs["episodes"]) > 0
    assert set(outputs) == set(OUTPUTS)
    assert all((tmp_path / "plain" / f"{name}.parquet").is_file() for name in OUTPUTS)
    assert compare_outputs(tmp_path / "plain", tmp_path / "duckdb", show=5) == dict.fromkeys(OUTPUTS, 0)
