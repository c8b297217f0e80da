"""Run the population analysis: load OMOP tables, map products, derive episodes, write the outputs.

One function, `run_cohort`, drives either engine through the same SQL (queries.py). Lookups that
need the knowledge base (ingredients, equivalence, DDDs, sig frequencies, interdose risk) are built
here in Python and handed to the engine as small tables.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from benzotaper.cohort import queries
from benzotaper.cohort.engine import Engine, arrow_table, find_table, make_engine
from benzotaper.cohort.mapping import (
    PRODUCT_COLUMNS,
    Product,
    VocabRow,
    ingredient_ids,
    map_product,
    name_index,
    product_codes,
)
from benzotaper.cohort.settings import CohortSettings, LongTerm
from benzotaper.equivalence import diazepam_equivalent_mg
from benzotaper.errors import BenzotaperError, CohortError
from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.knowledge.cohort_rules import CohortKnowledge, load_cohort_knowledge, whole_days
from benzotaper.simulate import simulate_sig

COLUMNS: dict[str, dict[str, str]] = {
    "person": {"person_id": "BIGINT", "gender_concept_id": "BIGINT", "year_of_birth": "INT"},
    "drug_exposure": {
        "drug_exposure_id": "BIGINT",
        "person_id": "BIGINT",
        "drug_concept_id": "BIGINT",
        "drug_exposure_start_date": "DATE",
        "drug_exposure_end_date": "DATE",
        "quantity": "DOUBLE",
        "days_supply": "INT",
        "sig": "TEXT",
        "route_concept_id": "BIGINT",
        "provider_id": "BIGINT",
        "drug_source_value": "TEXT",
        "route_source_value": "TEXT",
    },
    "concept": {
        "concept_id": "BIGINT",
        "concept_name": "TEXT",
        "vocabulary_id": "TEXT",
        "concept_class_id": "TEXT",
        "standard_concept": "TEXT",
        "concept_code": "TEXT",
    },
    "concept_ancestor": {"ancestor_concept_id": "BIGINT", "descendant_concept_id": "BIGINT"},
    "drug_strength": {
        "drug_concept_id": "BIGINT",
        "ingredient_concept_id": "BIGINT",
        "amount_value": "DOUBLE",
        "amount_unit_concept_id": "BIGINT",
        "numerator_value": "DOUBLE",
        "numerator_unit_concept_id": "BIGINT",
        "denominator_value": "DOUBLE",
        "denominator_unit_concept_id": "BIGINT",
    },
}
REQUIRED = {
    "person": ("person_id", "year_of_birth"),
    "drug_exposure": ("drug_exposure_id", "person_id", "drug_exposure_start_date"),
}
OUTPUTS = ("episodes", "by_year_age_sex", "by_year_drug", "candidates", "mapping", "quality")
Progress = Callable[[str], None]


@dataclass
class CohortResult:
    """What a run produced: output files, the summary (also summary.json) and timings."""

    outputs: dict[str, Path]
    summary: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


def default_settings(knowledge: Knowledge | None = None, ck: CohortKnowledge | None = None) -> CohortSettings:
    """The thresholds of cohort.toml, with the source of each."""
    knowledge = knowledge or load_knowledge()
    ck = ck or load_cohort_knowledge()
    esc = ck.escalation
    sources = {
        "gap_days": ck.episode_gap.source,
        "high_dose": ck.high_dose.source,
        "multiple_prescribers": ck.min_prescribers.source,
        "escalation": esc["per_year"].source,
        "age_bands": ck.age_bands_source,
        **{f"long_term_{n}": q.source for n, q in ck.long_term},
    }
    return CohortSettings(
        gap_days=whole_days(ck.episode_gap),
        long_term=tuple(LongTerm(n, whole_days(q), q.source) for n, q in ck.long_term),
        high_dose_de_mg=ck.high_dose.value,
        min_prescribers=round(ck.min_prescribers.value),
        prescriber_window_days=whole_days(ck.prescriber_window),
        escalation_min_days=whole_days(esc["min_days"]),
        escalation_min_prescriptions=round(esc["min_prescriptions"].value),
        escalation_per_year=esc["per_year"].value,
        plausible_max_de_mg=knowledge.policy.plausible_max_daily_diazepam_equivalent.value,
        max_days_supply=whole_days(ck.max_days_supply),
        age_bands=ck.age_bands,
        review_long_term=ck.review_long_term,
        sources=sources,
    )


def load_tables(engine: Engine, source: Path) -> set[str]:
    """Expose the OMOP tables of a folder or DuckDB file as typed views; return those present."""
    if not source.exists():
        raise CohortError(f"input {source} does not exist (expected a folder of Parquet/CSV files or a DuckDB file)")
    present: set[str] = set()
    for table, columns in COLUMNS.items():
        if source.is_dir():
            found = find_table(source, table)
            cols = engine.load(f"raw_{table}", *found) if found else None
        else:
            cols = engine.load_database_table(f"raw_{table}", source, table)
        if cols is None:
            if table in REQUIRED:
                raise CohortError(
                    f"table {table} is missing from {source}: expected {table}.parquet, {table}/ (Parquet files), "
                    f"{table}.csv or a table in the DuckDB file"
                )
            continue
        missing = [c for c in REQUIRED.get(table, ()) if c not in cols]
        if table == "drug_exposure" and "drug_concept_id" not in cols and "drug_source_value" not in cols:
            missing.append("drug_concept_id or drug_source_value")
        if missing:
            raise CohortError(f"table {table}: missing column(s) {', '.join(missing)} (OMOP CDM v5.4 names)")
        engine.view(table, queries.typed(f"raw_{table}", columns, set(cols), engine.dialect))
        present.add(table)
    return present


def _vocab_rows(engine: Engine, ids: list[int], present: set[str]) -> dict[int, list[VocabRow]]:
    if not present & {"concept", "concept_ancestor", "drug_strength"}:
        return {}
    sql = queries.vocabulary_lookup(
        ids, "concept_ancestor" in present, "drug_strength" in present, "concept" in present
    )
    rows: dict[int, list[VocabRow]] = {}
    for r in engine.rows(sql)[1]:
        rows.setdefault(int(r[0]), []).append(
            VocabRow(
                int(r[0]),
                None if r[1] is None else int(r[1]),
                r[2],
                None if r[3] is None else int(r[3]),
                r[4],
                None if r[5] is None else int(r[5]),
                r[6],
                None if r[7] is None else int(r[7]),
                r[8],
                r[9],
                r[10],
            )
        )
    return rows


def build_product_map(
    engine: Engine, knowledge: Knowledge, ck: CohortKnowledge, present: set[str]
) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    """Map every distinct product key; return the product_map rows and the mapping report."""
    site: list[tuple[int, str]] = []
    if "concept" in present:
        site = [
            (int(r[0]), str(r[1]))
            for r in engine.rows(
                "SELECT concept_id, concept_name FROM concept WHERE concept_class_id = 'Ingredient'"
                " AND COALESCE(standard_concept, 'S') = 'S'"
            )[1]
        ]
    ids = ingredient_ids(knowledge, ck, site)
    vocab = _vocab_rows(engine, sorted(ids), present)
    names, codes = name_index(knowledge, ck), product_codes(ck)
    keys = engine.rows(queries.product_keys())[1]
    rows: list[tuple[Any, ...]] = []
    report: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for cid, text, n in keys:
        p: Product = map_product(int(cid), str(text), vocab.get(int(cid), []), ids, codes, names, ck)
        rows.append((int(cid), str(text), p.ingredient, p.kind, p.unit_mg, p.form, p.route_hint, p.method, p.status))
        key = (p.status, p.method, p.kind or "", p.ingredient or "")
        entry = report.setdefault(key, {"rows": 0, "examples": []})
        entry["rows"] += int(n)
        if p.status in ("unmapped", "unsupported_ingredient") and len(entry["examples"]) < 5:
            entry["examples"].append(text or f"concept {cid}")
    mapping = [
        {"status": s, "method": m, "kind": k, "ingredient": i, "rows": v["rows"], "examples": "; ".join(v["examples"])}
        for (s, m, k, i), v in sorted(report.items())
    ]
    return rows, mapping


_INTERDOSE: dict[int, tuple[tuple[str, int, int], ...]] = {}


def interdose_rows(knowledge: Knowledge) -> tuple[tuple[str, int, int], ...]:
    """(ingredient, doses per day, 1 if the clinic's interdose-withdrawal rule fires at steady state)."""
    if id(knowledge) in _INTERDOSE:
        return _INTERDOSE[id(knowledge)]
    rows = []
    for drug in knowledge.drugs.values():
        for n in range(2, 7):
            try:
                report = simulate_sig(
                    knowledge, f"{drug.name} {n} mg/day in {n} doses", days=21, start=date(2024, 1, 1)
                )
            except BenzotaperError:
                break
            rows.append((drug.id, n, int(report.days[-1].interdose_withdrawal)))
    _INTERDOSE[id(knowledge)] = tuple(rows)
    return _INTERDOSE[id(knowledge)]


def sig_doses(sig: str, knowledge: Knowledge) -> int | None:
    """Doses per day a free-text sig states ('1 tab tid prn' -> 3), from the sig vocabulary."""
    text = " " + " ".join(sig.lower().replace(".", "").split()) + " "
    best: tuple[int, int] | None = None
    for phrase, times in knowledge.sig.frequencies.items():
        p = " " + phrase.replace(".", "") + " "
        if p in text and (best is None or len(p) > best[0]):
            best = (len(p), len(times))
    return best[1] if best else None


def _lookups(engine: Engine, knowledge: Knowledge, ck: CohortKnowledge, s: CohortSettings) -> None:
    ingredients = []
    for d in knowledge.drugs.values():
        try:
            de = diazepam_equivalent_mg(knowledge, d.id, 1.0)
        except BenzotaperError:
            de = None
        ddd = ck.ddd.get(d.id)
        ingredients.append((d.id, "bzd", de, ddd.value if ddd else None))
    ingredients += [(o, "opioid", None, None) for o in ck.opioids]
    engine.put(
        "ingredient",
        arrow_table(
            [("ingredient", "TEXT"), ("kind", "TEXT"), ("de_per_mg", "DOUBLE"), ("ddd_mg", "DOUBLE")], ingredients
        ),
    )
    engine.put(
        "route_map",
        arrow_table([("route_concept_id", "BIGINT"), ("route_group", "TEXT")], list(ck.omop.routes.items())),
    )
    words = {w: g for g, ws in ck.omop.route_words.items() for w in ws}
    raw_routes = engine.rows("SELECT DISTINCT lower(trim(route_source_value)) FROM drug_exposure")[1]
    engine.put(
        "route_words",
        arrow_table(
            [("route_source_value", "TEXT"), ("route_group", "TEXT")],
            [(r[0], words[r[0]]) for r in raw_routes if r[0] in words],
        ),
    )
    sigs = engine.rows("SELECT DISTINCT lower(trim(sig)) FROM drug_exposure WHERE sig IS NOT NULL")[1]
    parsed = [(r[0], sig_doses(r[0], knowledge)) for r in sigs]
    engine.put(
        "sig_map", arrow_table([("sig", "TEXT"), ("doses_per_day", "INT")], [p for p in parsed if p[1] is not None])
    )
    engine.put(
        "interdose",
        arrow_table(
            [("ingredient", "TEXT"), ("doses_per_day", "INT"), ("at_risk", "INT")], list(interdose_rows(knowledge))
        ),
    )
    engine.put("age_bands", arrow_table([("label", "TEXT"), ("lo", "INT"), ("hi", "INT")], s.band_table()))


def _years(engine: Engine) -> list[int]:
    lo_hi = engine.rows("SELECT MIN(year(episode_start)), MAX(year(episode_end)) FROM episodes")[1][0]
    if lo_hi[0] is None:
        return []
    return list(range(int(lo_hi[0]), int(lo_hi[1]) + 1))


def run_cohort(
    source: Path,
    out_dir: Path,
    engine: str | Engine = "duckdb",
    settings: CohortSettings | None = None,
    knowledge: Knowledge | None = None,
    progress: Progress | None = None,
    fmt: str = "parquet",
) -> CohortResult:
    """The whole analysis; outputs go to `out_dir` as Parquet (or CSV) plus summary.json."""
    if fmt not in ("parquet", "csv"):
        raise CohortError(f"--format must be parquet or csv (got {fmt!r})")
    knowledge = knowledge or load_knowledge()
    ck = load_cohort_knowledge()
    s = settings or default_settings(knowledge, ck)
    eng = make_engine(engine) if isinstance(engine, str) else engine
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now
        if progress:
            progress(name)

    try:
        present = load_tables(eng, source)
        step("load")
        rows, mapping = build_product_map(eng, knowledge, ck, present)
        eng.put("product_map", arrow_table(PRODUCT_COLUMNS, rows))
        _lookups(eng, knowledge, ck, s)
        step("map products")
        eng.create("exposure", queries.exposure(s, eng.dialect))
        eng.create("bzd_rx", queries.bzd_rx(s, eng.dialect))
        step("daily doses and episodes")
        eng.create("episode_base", queries.episode_base(eng.dialect))
        eng.create("segments", queries.segments(eng.dialect))
        eng.create("prescriber_peak", queries.prescriber_peak(s, eng.dialect))
        eng.create("episodes", queries.episodes(s))
        step("indicators")
        eng.put("years", arrow_table([("year", "INT")], [(y,) for y in _years(eng)]))
        eng.create("person_years", queries.person_years(s))
        outputs = _write(eng, s, ck, out_dir, fmt, mapping)
        step("write")
        summary = _summary(eng, s, mapping, present, outputs)
        summary["timings_s"] = timings
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        outputs["summary"] = out_dir / "summary.json"
        return CohortResult(outputs, summary, timings)
    finally:
        if isinstance(engine, str):
            eng.close()


def _write(
    eng: Engine, s: CohortSettings, ck: CohortKnowledge, out_dir: Path, fmt: str, mapping: list[dict[str, Any]]
) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    queries_by_name = {
        "episodes": ("SELECT * FROM episodes", ("person_id", "episode_no")),
        "by_year_age_sex": (
            queries.by_year_age_sex(s, ck.omop.male, ck.omop.female),
            ("year", "age_band", "sex"),
        ),
        "by_year_drug": (queries.by_year_drug(s), ("year", "drug")),
        "quality": (
            queries.quality(eng.dialect),
            ("kind", "route_group", "ingredient", "duration_rule", "dose_rule", "doses_rule"),
        ),
    }
    outputs: dict[str, Path] = {}
    for name, (sql, keys) in queries_by_name.items():
        path = out_dir / f"{name}.{fmt}"
        eng.write(sql, path, [(k, "ascending") for k in keys])
        outputs[name] = path
    eng.create("person_summary", queries.person_summary(s))
    outputs["candidates"] = _write_candidates(eng, s, out_dir, fmt)
    mapping_cols = [
        ("status", "TEXT"),
        ("method", "TEXT"),
        ("kind", "TEXT"),
        ("ingredient", "TEXT"),
        ("rows", "BIGINT"),
        ("examples", "TEXT"),
    ]
    eng.put("mapping_report", arrow_table(mapping_cols, [tuple(m.values()) for m in mapping]))
    outputs["mapping"] = out_dir / f"mapping.{fmt}"
    eng.write(
        "SELECT * FROM mapping_report",
        outputs["mapping"],
        [(k, "ascending") for k in ("status", "method", "kind", "ingredient")],
    )
    return outputs


def candidate_sql(s: CohortSettings) -> str:
    """Users who should have a deprescribing review, with one 0/1 column per reason."""
    review = f"long_term_{s.review_long_term}"
    short = f"long_term_{s.long_term[0].name}"
    reasons = {
        review: review,
        "high_dose": "high_dose",
        "escalation": "escalation",
        "opioid_coprescription": "opioid_coprescription",
        "multiple_prescribers": "multiple_prescribers",
        "interdose_risk": f"CASE WHEN interdose_risk = 1 AND {short} = 1 THEN 1 ELSE 0 END",
    }
    cols = ", ".join(f"{expr} AS reason_{name}" for name, expr in reasons.items())
    score = " + ".join(f"({expr})" for expr in reasons.values())
    return f"""
SELECT * FROM (
  SELECT person_id, year_of_birth, gender_concept_id, episodes, first_start, last_end, longest_episode_days,
         max_daily_de_mg, cumulative_de_mg, opioid_overlap_days, window_prescribers, trend_per_year,
         {cols}, {score} AS reasons
  FROM person_summary
) t WHERE reasons > 0
"""


def _write_candidates(eng: Engine, s: CohortSettings, out_dir: Path, fmt: str) -> Path:
    path = out_dir / f"candidates.{fmt}"
    eng.write(
        candidate_sql(s),
        path,
        [("reasons", "descending"), ("max_daily_de_mg", "descending"), ("person_id", "ascending")],
    )
    return path


def _summary(
    eng: Engine, s: CohortSettings, mapping: list[dict[str, Any]], present: set[str], outputs: dict[str, Path]
) -> dict[str, Any]:
    flags = queries.indicator_names(s)
    sums = ", ".join(f"SUM({f})" for f in flags)
    ep = eng.rows(f"SELECT COUNT(*), COUNT(DISTINCT person_id), {sums} FROM episodes")[1][0]
    people = eng.rows(f"SELECT {', '.join(f'SUM({f})' for f in flags)} FROM person_summary")[1][0]
    cand = eng.rows(f"SELECT COUNT(*) FROM ({candidate_sql(s)}) c")[1][0][0]
    total = eng.rows("SELECT COUNT(*) FROM drug_exposure")[1][0][0]
    routes = eng.rows(
        "SELECT kind, route_group, COUNT(*) FROM exposure GROUP BY kind, route_group ORDER BY kind, route_group"
    )[1]
    persons = eng.rows("SELECT COUNT(*) FROM person")[1][0][0]
    return {
        "engine": eng.dialect.name,
        "tables": sorted(present),
        "drug_exposure_rows": int(total),
        "persons": int(persons),
        "mapping": mapping,
        "routes": [{"kind": k, "route_group": g, "rows": int(n)} for k, g, n in routes],
        "episodes": int(ep[0] or 0),
        "users": int(ep[1] or 0),
        "episodes_with": {f: int(v or 0) for f, v in zip(flags, ep[2:], strict=True)},
        "persons_with": {f: int(v or 0) for f, v in zip(flags, people, strict=True)},
        "review_candidates": int(cand),
        "settings": {
            "gap_days": s.gap_days,
            "long_term_days": {t.name: t.days for t in s.long_term},
            "high_dose_de_mg": s.high_dose_de_mg,
            "min_prescribers": s.min_prescribers,
            "prescriber_window_days": s.prescriber_window_days,
            "escalation_per_year": s.escalation_per_year,
            "sources": s.sources,
        },
        "outputs": {k: str(v) for k, v in outputs.items()},
    }
