"""The cohort HTML report: self-contained, one chart per section, and numbers that match the run's files."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("duckdb")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from benzotaper.cohort.generate import generate  # noqa: E402
from benzotaper.cohort.pipeline import run_cohort  # noqa: E402
from benzotaper.errors import CohortError  # noqa: E402
from benzotaper.report.cohort_report import write_cohort_report  # noqa: E402

CHARTS = ("by-year", "by-age", "by-sex", "by-drug")


class Tables(HTMLParser):
    """Cell texts of every <table id=...>, row by row (header row included)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._current: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._current = dict(attrs).get("id") or f"anon{len(self.tables)}"
            self.tables[self._current] = []
        elif tag == "tr" and self._current:
            self.tables[self._current].append([])
        elif tag in ("td", "th") and self._current:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._current and self._cell is not None:
            self.tables[self._current][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse_tables(page: str) -> dict[str, list[dict[str, str]]]:
    """Each table as a list of {header: cell} rows."""
    parser = Tables()
    parser.feed(page)
    return {k: [dict(zip(rows[0], r, strict=True)) for r in rows[1:]] for k, rows in parser.tables.items() if rows}


def number(cell: str) -> float:
    """'1,234.5' -> 1234.5 (the first number in a cell)."""
    match = re.search(r"-?[\d,]+(\.\d+)?", cell)
    assert match, cell
    return float(match.group().replace(",", ""))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small synthetic dataset through the DuckDB pipeline, and its report."""
    root = tmp_path_factory.mktemp("cohort_report")
    generate(root / "omop", 5_000, seed=11)
    out = root / "results"
    run_cohort(root / "omop", out, "duckdb")
    report = write_cohort_report(out, root / "report" / "cohort.html")
    return {
        "out": out,
        "page": report.read_text(encoding="utf-8"),
        "summary": json.loads((out / "summary.json").read_text(encoding="utf-8")),
    }


def test_page_is_self_contained(run: dict[str, Any]) -> None:
    page = run["page"]
    assert page.startswith("<!doctype html>")
    assert "<script" not in page.lower()
    assert "<link" not in page.lower() and "@import" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "url(http" not in page and "cdn" not in page.lower()


def test_one_inline_svg_per_chart(run: dict[str, Any]) -> None:
    page = run["page"]
    assert page.count("<svg") == len(CHARTS)
    for key in CHARTS:
        figure = re.search(rf"<figure id='chart-{key}'>(.*?)</figure>", page, re.DOTALL)
        assert figure and figure.group(1).count("<svg") == 1
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "SVG element ids must be unique across charts"


def test_key_figures_match_summary(run: dict[str, Any]) -> None:
    summary = run["summary"]
    rows = {r["column"]: r for r in parse_tables(run["page"])["key-figures-table"]}
    assert number(rows["users"]["persons"]) == summary["users"] > 0
    assert number(rows["review_candidates"]["persons"]) == summary["review_candidates"]
    for name, persons in summary["persons_with"].items():
        assert number(rows[name]["persons"]) == persons
        assert number(rows[name]["% of users"]) == pytest.approx(100 * persons / summary["users"], abs=0.05)


def test_mapping_rows_add_up_to_drug_exposure(run: dict[str, Any]) -> None:
    rows = parse_tables(run["page"])["mapping-table"]
    assert sum(number(r["rows"]) for r in rows) == run["summary"]["drug_exposure_rows"]
    assert "none were dropped silently" in run["page"]


def test_rate_by_year_checked_by_hand(run: dict[str, Any]) -> None:
    table = pq.read_table(run["out"] / "by_year_age_sex.parquet").to_pylist()
    year = max({r["year"] for r in table}, key=lambda y: sum(r["users"] for r in table if r["year"] == y))
    this = [r for r in table if r["year"] == year]
    population = sum(r["population"] for r in this)
    expected = {c: sum(r[c] for r in this) * 1000 / population for c in ("users", "long_term_over_1_year")}
    row = next(r for r in parse_tables(run["page"])["rates-by-year-table"] if r["year"] == str(year))
    assert number(row["population"]) == population
    assert expected["users"] > 0
    assert number(row["users (any use)"]) == pytest.approx(expected["users"], abs=0.051)
    assert number(row["long-term over 1 year"]) == pytest.approx(expected["long_term_over_1_year"], abs=0.051)


def test_candidates_top_rows_and_reasons(run: dict[str, Any]) -> None:
    cands = pq.read_table(run["out"] / "candidates.parquet").to_pylist()
    rows = parse_tables(run["page"])["candidates-table"]
    assert len(rows) == min(50, len(cands))
    first, shown = cands[0], rows[0]
    assert shown["person_id"] == str(first["person_id"])
    assert len(shown["reasons"].split(", ")) == first["reasons"]


def test_text_from_the_data_is_escaped(run: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "results"
    shutil.copytree(run["out"], out)
    mapping = pq.read_table(out / "mapping.parquet").to_pylist()
    mapping[-1]["examples"] = "<script>alert('x')</script> & co"
    pq.write_table(pa.Table.from_pylist(mapping), out / "mapping.parquet")
    page = write_cohort_report(out, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in page


def test_missing_results_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CohortError, match="summary.json"):
        write_cohort_report(tmp_path, tmp_path / "r.html")
