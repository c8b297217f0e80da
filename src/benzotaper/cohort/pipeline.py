"""Run the population analysis: load OMOP tables, map products, derive episodes, write the outputs.

One function, `run_cohort`, drives either engine through the same SQL (queries.py). Lookups that
need the knowledge base (ingredients, equivalence, DDDs, sig frequencies, interdose risk) are built
here in Python and handed to the engine as small tables, with a small code for every text. The
engine says in how many groups of persons to take large inputs (`Engine.parts`: DuckDB keeps each
group's intermediates near its memory limit; Spark takes everything at once).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from benzotaper.cohort import queries
from benzotaper.cohort.engine import Engine, arrow_table, make_engine
from benzotaper.cohort.mapping import (
    Product,
    VocabRow,
    ingredient_ids,
    map_product,
    name_index,
    product_codes,
)
from benzotaper.cohort.settings import CohortSettings, LongTerm
from benzotaper.cohort.tables import COLUMNS as COLUMNS  # re-exported: bench/cohort_pandas_plain.py reads them
from benzotaper.cohort.tables import REQUIRED as REQUIRED
from benzotaper.cohort.tables import load_tables as load_tables
from benzotaper.equivalence import diazepam_equivalent_mg
from benzotaper.errors import BenzotaperError, CohortError
from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.knowledge.cohort_rules import CohortKnowledge, load_cohort_knowledge, whole_days
from benzotaper.pk import Simulator, TimeGrid, day_summaries
from benzotaper.regimen import expand, parse_regimens

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


@dataclass(frozen=True)
class Keys:
    """What one scan of drug_exposure finds: distinct product keys with row counts, and the distinct
    raw route_source_value and sig texts with their normalised (lower-case, trimmed) forms."""

    products: list[tuple[int, str, int]]
    routes: dict[str, str]
    sigs: dict[str, str]


def scan_keys(engine: Engine) -> Keys:
    """The distinct texts every Python-built lookup needs, in one pass over drug_exposure."""
    products: list[tuple[int, str, int]] = []
    routes: dict[str, str] = {}
    sigs: dict[str, str] = {}
    for part, cid, text, route, route_norm, sig, sig_norm, n in engine.rows(queries.distinct_keys())[1]:
        if part == 0:
            products.append((int(cid), str(text), int(n)))
        elif part == 1 and route is not None:
            routes[str(route)] = str(route_norm)
        elif part == 2 and sig is not None:
            sigs[str(sig)] = str(sig_norm)
    return Keys(products, routes, sigs)


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
    engine: Engine, knowledge: Knowledge, ck: CohortKnowledge, present: set[str], keys: Keys | None = None
) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    """Map every distinct product key; return the product_map rows and the mapping report."""
    keys = keys or scan_keys(engine)
    engine.put(
        "product_keys",
        arrow_table([("drug_concept_id", "BIGINT"), ("drug_source_value", "TEXT"), ("n", "BIGINT")], keys.products),
    )
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
    rows: list[tuple[Any, ...]] = []
    report: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for cid, text, n in sorted(keys.products, key=lambda k: (-k[2], k[0], k[1])):  # examples: most frequent
        p: Product = map_product(cid, text, vocab.get(cid, []), ids, codes, names, ck)
        rows.append((cid, text, p.ingredient, p.kind, p.unit_mg, p.form, p.route_hint, p.method, p.status))
        key = (p.status, p.method, p.kind or "", p.ingredient or "")
        entry = report.setdefault(key, {"rows": 0, "examples": []})
        entry["rows"] += n
        if p.status in ("unmapped", "unsupported_ingredient") and len(entry["examples"]) < 5:
            entry["examples"].append(text or f"concept {cid}")
    mapping = [
        {"status": s, "method": m, "kind": k, "ingredient": i, "rows": v["rows"], "examples": "; ".join(v["examples"])}
        for (s, m, k, i), v in sorted(report.items())
    ]
    return rows, mapping


_INTERDOSE: dict[tuple[int, str], tuple[tuple[int, int], ...]] = {}
INTERDOSE_SIG = "{n} mg/day in {n} doses"  # the regimen the interdose rule is tried on, for n in INTERDOSE_DOSES
INTERDOSE_DOSES = range(2, 7)
INTERDOSE_DAYS, INTERDOSE_START = 21, date(2024, 1, 1)  # simulated until steady state; the last day is judged


def interdose_rows(knowledge: Knowledge, drugs: Iterable[str] | None = None) -> tuple[tuple[str, int, int], ...]:
    """(ingredient, doses per day, 1 if the clinic's interdose-withdrawal rule fires at steady state).

    For every drug of the knowledge base, or only `drugs` (the ingredients a data set holds: each
    drug is simulated once per process, which is most of a small run's time).
    """
    rows = []
    for drug in knowledge.drugs.values():
        if drugs is not None and drug.id not in drugs:
            continue
        key = (id(knowledge), drug.id)
        if key not in _INTERDOSE:
            found = []
            for n in INTERDOSE_DOSES:
                try:
                    found.append((n, int(interdose_at(knowledge, drug.id, n))))
                except BenzotaperError:
                    break
            _INTERDOSE[key] = tuple(found)
        rows += [(drug.id, n, risk) for n, risk in _INTERDOSE[key]]
    return tuple(rows)


def interdose_at(knowledge: Knowledge, drug: str, n: int) -> bool:
    """Whether the interdose rule fires on the last simulated day of `drug` n mg/day in n doses.

    What `simulate_sig(knowledge, f"{name} {INTERDOSE_SIG}", ...).days[-1].interdose_withdrawal`
    says (a test checks it for every drug), in less than half the time: the drug is passed by id
    rather than found again by name in the sig (each near miss of the name lookup costs a fuzzy
    search), and only the day summaries the rule reads are computed.
    """
    regimens = tuple(parse_regimens(INTERDOSE_SIG.format(n=n), knowledge, start=INTERDOSE_START, drug=drug))
    origin = datetime.combine(INTERDOSE_START, datetime.min.time())
    events = expand(regimens, origin, origin + timedelta(days=INTERDOSE_DAYS))
    sim = Simulator.for_drugs(knowledge, events.drugs)
    step_h = 0.25  # simulate_sig's default time step
    curves = sim.run(events, TimeGrid(0.0, step_h, round(INTERDOSE_DAYS * 24 / step_h)))
    days = tuple(day_summaries(sim, events, curves, knowledge.policy.interdose_trough_fraction.value))
    return bool(days[-1].interdose_withdrawal)


def _interdose_masks(knowledge: Knowledge, drugs: Iterable[str]) -> dict[str, int]:
    """Per ingredient, the doses per day at which the interdose rule fires, as bits of one number
    (product_dim.interdose_mask: a bit test per row instead of a join)."""
    masks: dict[str, int] = {}
    for drug, n, at_risk in interdose_rows(knowledge, drugs):
        if not 0 <= n < queries.INTERDOSE_BITS:
            raise CohortError(
                f"interdose rule simulated at {n} doses a day: the mask holds 0 to {queries.INTERDOSE_BITS - 1}"
            )
        masks[drug] = masks.get(drug, 0) | (at_risk << n)
    return masks


def sig_doses(sig: str, knowledge: Knowledge) -> int | None:
    """Doses per day a free-text sig states ('1 tab tid prn' -> 3), from the sig vocabulary."""
    text = " " + " ".join(sig.lower().replace(".", "").split()) + " "
    best: tuple[int, int] | None = None
    for phrase, times in knowledge.sig.frequencies.items():
        p = " " + phrase.replace(".", "") + " "
        if p in text and (best is None or len(p) > best[0]):
            best = (len(p), len(times))
    return best[1] if best else None


def ingredient_rows(knowledge: Knowledge, ck: CohortKnowledge) -> list[tuple[str, str, float | None, float | None]]:
    """Every ingredient: (name, 'bzd' or 'opioid', diazepam-equivalent mg per mg, WHO DDD in mg); None where unknown."""
    rows: list[tuple[str, str, float | None, float | None]] = []
    for d in knowledge.drugs.values():
        try:
            de: float | None = diazepam_equivalent_mg(knowledge, d.id, 1.0)
        except BenzotaperError:
            de = None
        ddd = ck.ddd.get(d.id)
        rows.append((d.id, "bzd", de, ddd.value if ddd else None))
    return rows + [(o, "opioid", None, None) for o in ck.opioids]


def _lookups(
    engine: Engine,
    knowledge: Knowledge,
    ck: CohortKnowledge,
    s: CohortSettings,
    keys: Keys,
    products: list[tuple[Any, ...]],
) -> queries.Routes:
    """The small tables the SQL joins: every text the big intermediates would carry becomes a code here."""
    ingredients = ingredient_rows(knowledge, ck)
    bzds = [n for n, kind, _, _ in ingredients if kind == "bzd"]
    if len(bzds) > 62:
        raise CohortError(f"{len(bzds)} BZD ingredients: an episode's ingredient set is a 62-bit mask")
    # BZD codes are powers of two (an episode's ingredients are a bit mask), opioid codes negative
    code = {n: 1 << i for i, n in enumerate(bzds)}
    code.update({n: -1 - i for i, (n, kind, _, _) in enumerate(ingredients) if kind != "bzd"})
    engine.put(
        "ingredient",
        arrow_table(
            [("ing", "BIGINT"), ("ingredient", "TEXT"), ("kind", "TEXT"), ("bit", "BIGINT")],
            [(code[n], n, k, code[n] if k == "bzd" else 0) for n, k, _, _ in ingredients],
        ),
    )
    by_name = {n: (de, ddd) for n, _, de, ddd in ingredients}
    words = {w: g for g, ws in ck.omop.route_words.items() for w in ws}
    groups = sorted({*ck.omop.routes.values(), *words.values(), "parenteral", "unknown"})
    if len(groups) > 1 << queries.CODES["route"][1]:
        raise CohortError(f"{len(groups)} route groups: a prescription's codes hold {1 << queries.CODES['route'][1]}")
    route = {g: i for i, g in enumerate(groups)}
    engine.put(
        "route_group", arrow_table([("route", "INT"), ("route_group", "TEXT")], [(i, g) for g, i in route.items()])
    )
    engine.put(
        "route_map",
        arrow_table(
            [("route_concept_id", "BIGINT"), ("route", "INT")], [(c, route[g]) for c, g in ck.omop.routes.items()]
        ),
    )
    engine.put(
        "route_words",
        arrow_table(
            [("route_source_value", "TEXT"), ("route", "INT")],
            [(raw, route[words[norm]]) for raw, norm in keys.routes.items() if norm in words],
        ),
    )
    parsed = [(raw, sig_doses(norm, knowledge)) for raw, norm in keys.sigs.items()]
    engine.put(
        "sig_map", arrow_table([("sig", "TEXT"), ("doses_per_day", "INT")], [p for p in parsed if p[1] is not None])
    )
    kinds = {"bzd": queries.BZD, "opioid": queries.OPIOID}
    risk = _interdose_masks(knowledge, {r[2] for r in products if r[3] == "bzd"})
    dim = []
    for cid, text, ingredient, kind, unit_mg, form, hint, _, _ in products:
        if kind in kinds:
            de_per_mg, ddd_mg = by_name.get(ingredient, (None, None))
            solid = 1 if form == "solid" else 0
            at_risk = risk.get(ingredient, 0)
            dim.append(
                (cid, text, code[ingredient], kinds[kind], unit_mg, solid, route.get(hint), de_per_mg, ddd_mg, at_risk)
            )
    engine.put(
        "product_dim",
        arrow_table(
            [
                ("drug_concept_id", "BIGINT"),
                ("drug_source_value", "TEXT"),
                ("ing", "BIGINT"),
                ("kind", "INT"),
                ("unit_mg", "DOUBLE"),
                ("solid", "INT"),
                ("hint", "INT"),
                ("de_per_mg", "DOUBLE"),
                ("ddd_mg", "DOUBLE"),
                ("interdose_mask", "INT"),
            ],
            dim,
        ),
    )
    engine.put(
        "age_band",
        arrow_table(
            [("age", "INT"), ("label", "TEXT")], [(a, b) for b, lo, hi in s.band_table() for a in range(lo, hi + 1)]
        ),
    )
    analysed = tuple(route[g] for g in ck.omop.analysed_with_oral if g in route)
    return queries.Routes(analysed, route["parenteral"], route["unknown"])


def _person_ranges(eng: Engine, parts: int, bins: int = 4096) -> list[tuple[int | None, int | None]]:
    """`parts` ranges of person_id with about as many drug_exposure rows each: (first id or None, end or None)."""
    if parts <= 1:
        return [(None, None)]
    hist = eng.rows(queries.person_histogram(bins))[1]
    if not hist:
        return [(None, None)]
    lo, hi = int(hist[0][0]), int(hist[0][1])
    counts = dict.fromkeys(range(bins), 0)
    for _, _, b, n in hist:
        counts[int(b)] += int(n)
    total, running = sum(counts.values()), 0
    cuts: list[int] = []
    for b in range(bins):
        running += counts[b]
        if running >= total * (len(cuts) + 1) / parts and len(cuts) < parts - 1:
            cuts.append(lo + ((b + 1) * (hi - lo + 1)) // bins)  # first id of the next bin
    edges = sorted(set(cuts))
    return list(zip([None, *edges], [*edges, None], strict=True))


def _episodes_part(
    eng: Engine, s: CohortSettings, ck: CohortKnowledge, routes: queries.Routes, part: int, where: str
) -> None:
    """Doses, episodes and per-person results of one group of persons (`where`; empty: everyone).

    Every step here is within a person, so the persons can be taken in groups that each fit the
    engine's memory (one read of drug_exposure per group, only where the group's rows are when the
    file is in person order); the population tables and the quality counts add the groups up
    afterwards. The results are `episodes_<part>`, `person_summary_<part>`, `users_age_sex_<part>`,
    `users_drug_<part>` and `quality_counts_<part>`.
    """
    d = eng.dialect
    eng.view("exposure", queries.exposure(s, d, routes, where))
    eng.create("rx_order", queries.rx_order(s, d))
    eng.create(f"quality_counts_{part}", queries.quality_counts())
    eng.create("part_opioid", queries.opioid(d, routes))
    eng.view("rx", queries.analysed_rx())
    eng.create("fix_end", queries.fix_end(d))
    eng.create("episode_start", queries.episode_starts(d))
    eng.create("episode_base", queries.episode_base(d))
    eng.drop("episode_start")
    eng.create("opioid_islands", queries.opioid_islands())
    eng.create("detail_episodes", queries.detail_episodes())
    eng.create("episode_rx", queries.episode_rx())
    for name in ("rx", "rx_order", "fix_end"):
        eng.drop(name)
    eng.create("mask_ingredient", queries.mask_ingredient())
    eng.create("sweep_episodes", queries.sweep_episodes())
    eng.create("segments", queries.segments(d))
    eng.create("opioid_days", queries.opioid_days(d))
    eng.create("prescriber_peak", queries.prescriber_peak(s, d))
    eng.drop("episode_rx")
    eng.create(f"episodes_{part}", queries.episodes(s, d))
    for name in ("episode_base", "detail_episodes", "sweep_episodes", "segments", "opioid_islands", "opioid_days"):
        eng.drop(name)
    eng.drop("prescriber_peak")
    eng.view("episodes_part", f"SELECT * FROM episodes_{part}")
    spans = eng.rows(
        "SELECT DISTINCT year(episode_start), year(episode_end) FROM episodes_part"
        " WHERE episode_start IS NOT NULL AND episode_end IS NOT NULL"
    )[1]
    pairs = [(int(y0), int(y1), y) for y0, y1 in spans for y in range(int(y0), int(y1) + 1)]  # the pairs that occur
    eng.put("year_span", arrow_table([("y0", "INT"), ("y1", "INT"), ("year", "INT")], pairs))
    eng.create("person_years", queries.person_years())
    eng.create(f"person_summary_{part}", queries.person_summary())
    eng.create(f"users_age_sex_{part}", queries.users_by_year_age_sex(s, ck.omop.male, ck.omop.female))
    eng.create("mixed_years", queries.mixed_years())
    eng.create(f"users_drug_{part}", queries.users_by_year_drug(s))
    for name in ("person_years", "mixed_years", "mask_ingredient", "episodes_part", "part_opioid", "year_span"):
        eng.drop(name)


def _years(engine: Engine, table: str = "episodes") -> list[int]:
    lo_hi = engine.rows(f"SELECT MIN(year(episode_start)), MAX(year(episode_end)) FROM {table}")[1][0]
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
        keys = scan_keys(eng)
        rows, mapping = build_product_map(eng, knowledge, ck, present, keys)
        routes = _lookups(eng, knowledge, ck, s, keys, rows)
        step("map products")
        bounds = _person_ranges(eng, eng.parts(int(eng.rows("SELECT COUNT(*) FROM drug_exposure")[1][0][0])))
        parts = len(bounds)
        for part, (first, after) in enumerate(bounds):
            _episodes_part(eng, s, ck, routes, part, queries.in_range("e.person_id", first, after) if parts > 1 else "")
        step("daily doses and episodes")
        for table in ("quality_counts", "episodes", "person_summary", "users_age_sex", "users_drug"):
            name = "quality_parts" if table == "quality_counts" else table
            eng.view(name, queries.union_all([f"{table}_{i}" for i in range(parts)]))  # read once or twice
        eng.view("quality_counts", queries.quality_sums())
        step("indicators")
        eng.put("years", arrow_table([("year", "INT")], [(y,) for y in _years(eng)]))
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
        "episodes": (queries.episode_output(s, eng.dialect), ("person_id", "episode_no")),
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
  FROM ({queries.unpacked(s, "person_summary")}) p
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
    sums = queries.flag_sums(s)
    ep = eng.rows(f"SELECT COUNT(*), {sums} FROM episodes")[1][0]
    people = eng.rows(f"SELECT COUNT(person_id), {sums} FROM person_summary")[1][0]  # one row per user
    cand = eng.rows(f"SELECT COUNT(*) FROM ({candidate_sql(s)}) c")[1][0][0]
    total = eng.rows("SELECT COUNT(*) FROM drug_exposure")[1][0][0]
    routes = eng.rows(
        f"SELECT kind, route_group, SUM(rows) FROM ({queries.quality(eng.dialect)}) q GROUP BY kind, route_group"
        " ORDER BY kind, route_group"
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
        "users": int(people[0] or 0),
        "episodes_with": {f: int(v or 0) for f, v in zip(flags, ep[1:], strict=True)},
        "persons_with": {f: int(v or 0) for f, v in zip(flags, people[1:], strict=True)},
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
