"""Population drug utilisation (cohort): generated data with known truth, mapping rules, engines agree.

The truth comes from the generator's own design of each person (archetypes, doses, dates), not from
running the analysis; the Spark test checks the second engine row by row against DuckDB.
"""

from __future__ import annotations

import math
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from benzotaper.cli import app
from benzotaper.cohort.generate import TRUTH_FIELDS, generate
from benzotaper.cohort.mapping import strength_in
from benzotaper.cohort.pipeline import default_settings, run_cohort, sig_doses
from benzotaper.errors import BenzotaperError, CohortError
from benzotaper.knowledge import load_knowledge

K = load_knowledge()
OUTPUTS = ("episodes", "by_year_age_sex", "by_year_drug", "candidates", "mapping", "quality")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("omop")
    generate(out, rows=15_000, templates=2_500, seed=11)
    return out


@pytest.fixture(scope="module")
def duck(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("duck")
    run_cohort(generated, out, "duckdb")
    return out


def _truth(generated: Path) -> dict[tuple[int, date], dict[str, Any]]:
    rows = pq.read_table(generated / "truth").to_pylist()
    return {(r["person_id"], r["episode_start"]): r for r in rows}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def test_every_generated_episode_is_found_with_its_true_values(generated: Path, duck: Path) -> None:
    truth = _truth(generated)
    found = {(r["person_id"], r["episode_start"]): r for r in pq.read_table(duck / "episodes.parquet").to_pylist()}
    assert set(found) == set(truth)
    wrong = [
        (key, f, found[key][f], t[f])
        for key, t in truth.items()
        for f in (*TRUTH_FIELDS, "episode_end", "ingredients")
        if not (found[key][f] is None and t[f] is None) and not _same(found[key][f], t[f])
    ]
    assert wrong == []


def test_truth_covers_each_indicator(generated: Path) -> None:
    """The generated data exercises every indicator, so the exact match above means something."""
    rows = list(_truth(generated).values())
    assert sum(r["escalation"] for r in rows) >= 10
    assert sum(r["opioid_overlap_days"] > 0 for r in rows) >= 10
    assert sum(r["concurrent_days"] > 0 for r in rows) >= 10
    assert sum(r["window_prescribers"] >= 4 for r in rows) >= 10
    assert sum((r["max_daily_de_mg"] or 0) > 40 for r in rows) >= 10
    assert sum(r["interdose_risk"] for r in rows) >= 10
    assert sum(r["max_daily_de_mg"] is None for r in rows) >= 1
    assert {r["archetype"] for r in rows} >= {"short_course", "escalating", "switcher", "doctor_shopping"}


def test_indicator_flags_follow_the_thresholds(duck: Path) -> None:
    s = default_settings()
    for r in pq.read_table(duck / "episodes.parquet").to_pylist():
        for t in s.long_term:
            assert r[f"long_term_{t.name}"] == int(r["duration_days"] > t.days)
        assert r["high_dose"] == int((r["max_daily_de_mg"] or 0) > s.high_dose_de_mg)
        assert r["opioid_coprescription"] == int(r["opioid_overlap_days"] > 0)
        assert r["multiple_prescribers"] == int(r["window_prescribers"] >= s.min_prescribers)
        assert r["window_prescribers"] <= r["prescribers"]


def test_no_row_is_dropped_silently(generated: Path, duck: Path) -> None:
    total = pq.read_table(generated / "drug_exposure").num_rows
    mapping = pq.read_table(duck / "mapping.parquet").to_pylist()
    assert sum(m["rows"] for m in mapping) == total
    statuses = {m["status"] for m in mapping}
    assert {"mapped", "out_of_scope", "unmapped"} <= statuses
    methods = {m["method"] for m in mapping if m["status"] == "mapped"}
    assert {"concept_ancestor", "source_rxnorm_code", "source_name"} <= methods


def test_intravenous_doses_are_kept_apart(generated: Path, duck: Path) -> None:
    quality = pq.read_table(duck / "quality.parquet").to_pylist()
    parenteral = sum(q["rows"] for q in quality if q["route_group"] == "parenteral")
    con = duckdb.connect()
    iv = con.execute(
        f"SELECT COUNT(*) FROM read_parquet('{generated}/drug_exposure/*.parquet') WHERE route_concept_id = 4171047"
    ).fetchall()[0][0]
    assert parenteral == iv > 0


def test_population_counts_add_up(generated: Path, duck: Path) -> None:
    rows = pq.read_table(duck / "by_year_age_sex.parquet").to_pylist()
    persons = pq.read_table(generated / "person").to_pylist()
    year = max(r["year"] for r in rows)
    expected = sum(1 for p in persons if p["year_of_birth"] <= year)
    assert sum(r["population"] for r in rows if r["year"] == year) == expected
    truth = list(_truth(generated).values())
    users = {t["person_id"] for t in truth if t["episode_start"].year <= year <= t["episode_end"].year}
    assert sum(r["users"] for r in rows if r["year"] == year) == len(users)


def test_review_candidates_have_reasons(duck: Path) -> None:
    rows = pq.read_table(duck / "candidates.parquet").to_pylist()
    assert rows and all(r["reasons"] > 0 for r in rows)
    reasons = [k for k in rows[0] if k.startswith("reason_")]
    assert all(r["reasons"] == sum(r[k] for k in reasons) for r in rows)
    assert [r["reasons"] for r in rows] == sorted((r["reasons"] for r in rows), reverse=True)


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows)


def _site(tmp: Path, exposures: list[dict[str, Any]]) -> Path:
    """A reduced-form site: person + drug_exposure only, as CSV (no vocabulary tables)."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "person.csv").write_text("person_id,gender_concept_id,year_of_birth\n1,8532,1960\n2,8507,1990\n")
    cols = [
        "drug_exposure_id",
        "person_id",
        "drug_concept_id",
        "drug_exposure_start_date",
        "drug_exposure_end_date",
        "quantity",
        "days_supply",
        "sig",
        "drug_source_value",
    ]
    lines = [",".join(cols)] + [",".join("" if e.get(c) is None else str(e[c]) for c in cols) for e in exposures]
    (tmp / "drug_exposure.csv").write_text("\n".join(lines) + "\n")
    return tmp


def test_reduced_form_csv_with_missing_fields(tmp_path: Path) -> None:
    """Names only, no days_supply, quantity-only rows: each handled by its documented rule."""
    site = _site(
        tmp_path / "site",
        [
            # 30 x diazepam 5 mg over 2024-01-01..2024-01-30 (end date rule): 5 mg/day, 150 mg
            {
                "drug_exposure_id": 1,
                "person_id": 1,
                "drug_concept_id": 0,
                "drug_exposure_start_date": "2024-01-01",
                "drug_exposure_end_date": "2024-01-30",
                "quantity": 30,
                "drug_source_value": "Diazepam 5mg tablets",
            },
            # quantity only: 60 x 5 mg = 300 mg; DDD 10 mg -> 30 days at 10 mg/day
            {
                "drug_exposure_id": 2,
                "person_id": 1,
                "drug_concept_id": 0,
                "drug_exposure_start_date": "2024-02-10",
                "drug_exposure_end_date": "2024-02-10",
                "quantity": 60,
                "drug_source_value": "DIAZEPAM 5MG TAB",
            },
            # no quantity: duration from days_supply, dose unknown
            {
                "drug_exposure_id": 3,
                "person_id": 2,
                "drug_concept_id": 0,
                "drug_exposure_start_date": "2024-03-01",
                "drug_exposure_end_date": "2024-03-01",
                "days_supply": 14,
                "drug_source_value": "Xanax 0.5 mg",
            },
            {
                "drug_exposure_id": 4,
                "person_id": 2,
                "drug_concept_id": 0,
                "drug_exposure_start_date": "2024-03-01",
                "drug_exposure_end_date": "2024-03-01",
                "quantity": 5,
                "drug_source_value": "paracetamol 500 mg",
            },
        ],
    )
    run_cohort(site, tmp_path / "out", "duckdb", fmt="csv")
    eps = (tmp_path / "out" / "episodes.csv").read_text().splitlines()
    header = eps[0].split(",")
    first = dict(zip(header, eps[1].split(","), strict=True))
    # one episode 2024-01-01 .. 2024-03-10 (10 days without supply <= 30): 150 + 300 mg diazepam
    assert (first["episode_start"], first["episode_end"]) == ("2024-01-01", "2024-03-10")
    assert float(first["cumulative_de_mg"]) == pytest.approx(150.0 + 300.0)
    assert float(first["max_daily_de_mg"]) == pytest.approx(10.0)
    second = dict(zip(header, eps[2].split(","), strict=True))
    assert second["duration_days"] == "14" and second["max_daily_de_mg"] == ""
    quality = (tmp_path / "out" / "quality.csv").read_text()
    assert "quantity_over_ddd" in quality and "missing_quantity" in quality and "end_date" in quality
    mapping = (tmp_path / "out" / "mapping.csv").read_text()
    assert "unmapped" in mapping and "paracetamol" in mapping


def test_bad_input_names_the_table_and_column(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    with pytest.raises(CohortError, match="table person is missing"):
        run_cohort(site, tmp_path / "out")
    (site / "person.csv").write_text("person_id,year_of_birth\n1,1960\n")
    (site / "drug_exposure.csv").write_text("drug_exposure_id,person_id\n1,1\n")
    with pytest.raises(CohortError, match="drug_exposure: missing column.*drug_exposure_start_date"):
        run_cohort(site, tmp_path / "out")


def _assert_same_outputs(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        ta, tb = pq.read_table(a / f"{name}.parquet"), pq.read_table(b / f"{name}.parquet")
        assert ta.schema.names == tb.schema.names, name
        assert ta.num_rows == tb.num_rows, name
        for ra, rb in zip(ta.to_pylist(), tb.to_pylist(), strict=True):
            assert all((ra[k] is None and rb[k] is None) or _same(ra[k], rb[k]) for k in ra), (name, ra, rb)


def test_groups_of_persons_give_the_same_results(
    generated: Path, duck: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large inputs are analysed in groups of persons (memory); the outputs must not change."""
    from benzotaper.cohort.engine import DuckDBEngine

    monkeypatch.setattr(DuckDBEngine, "PART_ROWS", 4_000)
    eng = DuckDBEngine()
    assert eng.parts(15_000) == 4
    try:
        run_cohort(generated, tmp_path / "parts", eng)
    finally:
        eng.close()
    _assert_same_outputs(duck, tmp_path / "parts")


def test_duckdb_database_input(generated: Path, duck: Path, tmp_path: Path) -> None:
    db = tmp_path / "cdm.duckdb"
    con = duckdb.connect(str(db))
    for name in ("person", "drug_exposure"):
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{generated}/{name}/*.parquet')")
    for name in ("concept", "concept_ancestor", "drug_strength"):
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{generated}/{name}.parquet')")
    con.close()
    run_cohort(db, tmp_path / "out")
    assert pq.read_table(tmp_path / "out" / "episodes.parquet").equals(pq.read_table(duck / "episodes.parquet"))


def test_cli_generate_and_run_with_report(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["cohort", "generate", "--rows", "3_000", str(tmp_path / "d"), "--json"])
    assert res.exit_code == 0, res.output
    report = tmp_path / "r.html"
    res = runner.invoke(app, ["cohort", "run", str(tmp_path / "d"), "--report", str(report), "--json"])
    assert res.exit_code == 0, res.output
    assert report.exists() and '"review_candidates"' in res.stdout
    bad = runner.invoke(app, ["cohort", "run", str(tmp_path / "d"), "--engine", "oracle"])
    assert bad.exit_code == 2 and "--engine must be duckdb or spark" in bad.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("diazepam 5 MG Oral Tablet", (5.0, "solid")),
        ("alprazolam 0.25 MG Oral Tablet", (0.25, "solid")),
        ("diazepam 5 MG/ML Injectable Solution", (5.0, "liquid")),
        ("diazepam 2 mg/5 ml oral solution", (0.4, "liquid")),
        ("clonazepam 500 mcg tablets", (0.5, "solid")),
        ("{12 (alprazolam 0.5 MG Oral Tablet) } Pack", None),
        ("diazepam oral solution", None),
    ],
)
def test_strength_from_text(text: str, expected: tuple[float, str] | None) -> None:
    got = strength_in(text)
    if expected is None:
        assert got is None
    else:
        assert got is not None and got[0] == pytest.approx(expected[0]) and got[1] == expected[1]


def test_sig_doses_per_day() -> None:
    k = load_knowledge()
    assert sig_doses("take 1 tablet three times daily", k) == 3
    assert sig_doses("1 tab qid prn", k) == 4
    assert sig_doses("1 tablet at night", k) == 1
    assert sig_doses("as directed", k) is None


@settings(max_examples=8, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=90), min_size=1, max_size=6),
    gap_days=st.integers(min_value=0, max_value=60),
)
def test_episode_split_follows_the_gap_rule(
    tmp_path_factory: pytest.TempPathFactory, gaps: list[int], gap_days: int
) -> None:
    """Invariant: a new episode starts exactly when the days without supply exceed the gap setting."""
    tmp = tmp_path_factory.mktemp("gap")
    rows, day, expected = [], date(2024, 1, 1).toordinal(), 1
    for i, gap in enumerate([0, *gaps]):
        if i:
            day += 14 + gap
            expected += int(gap > gap_days)
        start = date.fromordinal(day).isoformat()
        rows.append(
            {
                "drug_exposure_id": i + 1,
                "person_id": 1,
                "drug_concept_id": 0,
                "drug_exposure_start_date": start,
                "drug_exposure_end_date": start,
                "quantity": 14,
                "days_supply": 14,
                "drug_source_value": "diazepam 5 mg tablet",
            }
        )
    site = _site(tmp / "site", rows)
    s = default_settings(K).with_overrides(gap_days=gap_days)
    run_cohort(site, tmp / "out", "duckdb", settings=s, knowledge=K)
    assert pq.read_table(tmp / "out" / "episodes.parquet").num_rows == expected
    shutil.rmtree(tmp)


@pytest.mark.slow
def test_spark_gives_identical_results(generated: Path, duck: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.fail("Spark needs Java: scripts/install-java.sh installs it (CI runs it)")
    run_cohort(generated, tmp_path / "spark", "spark")
    _assert_same_outputs(duck, tmp_path / "spark")


def test_interdose_rule_as_the_simulator_says() -> None:
    """The cohort's interdose lookup (drug passed by id, only the day summaries) agrees with simulate_sig."""
    from benzotaper.cohort.pipeline import (
        INTERDOSE_DAYS,
        INTERDOSE_DOSES,
        INTERDOSE_SIG,
        INTERDOSE_START,
        interdose_rows,
    )
    from benzotaper.simulate import simulate_sig

    expected = []
    for drug in K.drugs.values():
        for n in INTERDOSE_DOSES:
            try:
                report = simulate_sig(
                    K, f"{drug.name} {INTERDOSE_SIG.format(n=n)}", days=INTERDOSE_DAYS, start=INTERDOSE_START
                )
            except BenzotaperError:
                break
            expected.append((drug.id, n, int(report.days[-1].interdose_withdrawal)))
    assert interdose_rows(K) == tuple(expected)
    assert any(risk for *_, risk in expected) and not all(risk for *_, risk in expected)
