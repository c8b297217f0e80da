"""A pandas baseline for the cohort benchmark: the per-episode indicators of queries.py, without SQL.

It reproduces `queries.exposure`, the window step (`rx_order`, `fix_end`, `episode_starts`), `segments`,
`prescriber_peak` and `episodes` on a
drug_exposure table read into pandas, so the SQL engines can be compared with what a careful
analyst would write by hand. The small lookups (product map, ingredient equivalence and DDD, route
groups, interdose risk) are the pipeline's own, built once by `prepare` with a DuckDB engine before
any timing; `run_pandas` (the timed part) reads the Parquet files and does everything else.

Rules, as in queries.py: duration from days_supply (1..max_days_supply), else the end date (when the
span is under max_days_supply), else quantity x strength / DDD (capped, rounded half up, >= 1), else
one day; daily dose = quantity x strength / duration, dropped above the plausible maximum; a newer
prescription of the same ingredient ends the older the day before it starts; a new episode starts
when `start - max(previous ends) - 1 > gap_days`; the sweep sums the daily doses of overlapping
prescriptions (a running total at or below 1e-9 mg counts as no dose); escalation uses the
least-squares slope of daily DE against the start day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benzotaper.cohort.engine import DuckDBEngine, find_table
from benzotaper.cohort.pipeline import (
    COLUMNS,
    build_product_map,
    default_settings,
    ingredient_rows,
    interdose_rows,
    load_tables,
    sig_doses,
)
from benzotaper.cohort.settings import CohortSettings
from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.knowledge.cohort_rules import load_cohort_knowledge

READ_COLUMNS = tuple(COLUMNS["drug_exposure"])  # the OMOP columns the pipeline reads
TEXT_COLUMNS = ("sig", "drug_source_value", "route_source_value")
KEYS = ("person_id", "episode_no")
MIN_DE = 1e-9  # queries.episodes: a running total of daily DE at or below this is float noise around 0


@dataclass(frozen=True)
class Lookups:
    """The pipeline's small tables, as plain Python/pandas objects."""

    product_map: pd.DataFrame  # drug_concept_id, drug_source_value, ingredient, kind, unit_mg, form, route_hint
    ingredient: pd.DataFrame  # ingredient, kind, de_per_mg, ddd_mg
    route_map: dict[int, str]
    route_words: dict[str, str]
    interdose: dict[tuple[str, int], int]
    knowledge: Knowledge  # for sig_doses on the distinct sigs


def prepare(source: Path, knowledge: Knowledge | None = None) -> tuple[CohortSettings, Lookups]:
    """Settings and lookups exactly as run_cohort builds them (the product mapping runs on DuckDB)."""
    knowledge = knowledge or load_knowledge()
    ck = load_cohort_knowledge()
    settings = default_settings(knowledge, ck)
    eng = DuckDBEngine()
    try:
        present = load_tables(eng, source)
        rows, _ = build_product_map(eng, knowledge, ck, present)
    finally:
        eng.close()
    names = ["drug_concept_id", "drug_source_value", "ingredient", "kind", "unit_mg", "form", "route_hint"]
    product_map = pd.DataFrame([r[: len(names)] for r in rows], columns=names)
    ingredient = pd.DataFrame(ingredient_rows(knowledge, ck), columns=["ingredient", "kind", "de_per_mg", "ddd_mg"])
    ingredient[["de_per_mg", "ddd_mg"]] = ingredient[["de_per_mg", "ddd_mg"]].astype(float)
    words = {w: g for g, ws in ck.omop.route_words.items() for w in ws}
    interdose = {(ing, n): risk for ing, n, risk in interdose_rows(knowledge)}
    lookups = Lookups(product_map, ingredient, dict(ck.omop.routes), words, interdose, knowledge)
    return settings, lookups


# ---------------------------------------------------------------------------------------------------------------
# Reading


def read_exposure(source: Path) -> pd.DataFrame:
    """drug_exposure as a DataFrame: dates as whole days since 1970 (float when some are missing), texts categorical."""
    found = find_table(source, "drug_exposure")
    if found is None or found[1] != "parquet":
        raise FileNotFoundError(f"no drug_exposure Parquet in {source}")
    path = found[0]
    schema = pq.read_schema(next(path.glob("*.parquet")) if path.is_dir() else path)
    columns = [c for c in READ_COLUMNS if c in schema.names]
    table = pq.read_table(path, columns=columns, read_dictionary=[c for c in TEXT_COLUMNS if c in columns])
    for name in ("drug_exposure_start_date", "drug_exposure_end_date"):
        if name in columns:
            i = table.column_names.index(name)
            table = table.set_column(i, name, table.column(name).cast(pa.date32()).cast(pa.int32()))
    df = table.to_pandas()
    for name in READ_COLUMNS:
        if name not in df:
            df[name] = pd.Categorical([None] * len(df)) if name in TEXT_COLUMNS else np.nan
    return df


def _per_category(col: pd.Series, fn: Any, default: Any, dtype: Any) -> np.ndarray:
    """fn applied to each distinct text (missing -> default), spread back to the rows."""
    if not isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype("category")
    values = [fn(str(c)) for c in col.cat.categories]
    table = np.array([*values, default], dtype=dtype)
    return table[col.cat.codes.to_numpy()]  # code -1 (missing) picks the default at the end


def _lower_trim(text: str) -> str:
    return text.strip(" ").lower()  # SQL lower(trim(x)): trim removes spaces only


# ---------------------------------------------------------------------------------------------------------------
# queries.exposure


def exposure(de: pd.DataFrame, s: CohortSettings, lk: Lookups) -> pd.DataFrame:
    """In-scope rows (BZD and opioids): route group, duration, end, daily DE, doses/day, interdose risk."""
    pm = lk.product_map[lk.product_map["kind"].isin(["bzd", "opioid"])].reset_index(drop=True)
    pm = pm.merge(lk.ingredient[["ingredient", "de_per_mg", "ddd_mg"]], on="ingredient", how="left")
    # Row -> product: join on (COALESCE(drug_concept_id, 0), COALESCE(drug_source_value, ''))
    src_ids = {text: i for i, text in enumerate(pd.unique(lk.product_map["drug_source_value"]))}
    src = _per_category(de["drug_source_value"], lambda t: src_ids.get(t, -1), src_ids.get("", -1), np.int64)
    cid_codes, cid_uniq = pd.factorize(de["drug_concept_id"].fillna(0).to_numpy(np.int64))
    width = len(src_ids) + 1
    pm_cid = pd.Index(cid_uniq).get_indexer(pm["drug_concept_id"].to_numpy(np.int64))
    seen = np.flatnonzero(pm_cid >= 0)  # products whose concept occurs in the data
    pm_key = pm_cid[seen] * width + pm["drug_source_value"].map(src_ids).to_numpy(np.int64)[seen] + 1
    hit = pd.Index(pm_key).get_indexer(cid_codes * width + src + 1)
    keep = hit >= 0
    prod = seen[hit[keep]]

    def col(name: str, dtype: Any = None) -> np.ndarray:
        return de[name].to_numpy(dtype)[keep]

    groups = sorted({*lk.route_map.values(), *lk.route_words.values(), *pm["route_hint"].dropna(), "unknown"})
    gcode = {g: i for i, g in enumerate(groups)}
    codes, uniq = pd.factorize(col("route_concept_id"))
    by_concept = np.array([*(gcode.get(lk.route_map.get(int(u), ""), -1) for u in uniq), -1], dtype=np.int64)
    route = by_concept[codes]
    words = _per_category(
        de["route_source_value"], lambda t: gcode.get(lk.route_words.get(_lower_trim(t), ""), -1), -1, np.int64
    )[keep]
    hint = pm["route_hint"].map(gcode).fillna(-1).to_numpy(np.int64)[prod]
    route = np.where(route >= 0, route, np.where(words >= 0, words, np.where(hint >= 0, hint, gcode["unknown"])))

    ingredients = sorted(pm["ingredient"].dropna().unique())
    icode = {g: i for i, g in enumerate(ingredients)}
    ing = pm["ingredient"].map(icode).fillna(-1).to_numpy(np.int64)[prod]
    bzd = (pm["kind"] == "bzd").to_numpy()[prod]
    unit = pm["unit_mg"].to_numpy(float)[prod]
    solid = (pm["form"] == "solid").to_numpy()[prod]
    de_per_mg = pm["de_per_mg"].to_numpy(float)[prod]
    ddd = pm["ddd_mg"].to_numpy(float)[prod]

    start = col("drug_exposure_start_date", float)
    end = col("drug_exposure_end_date", float)
    supply = col("days_supply", float)
    q = col("quantity", float)
    top = s.max_days_supply
    with np.errstate(all="ignore"):
        span = end - start
        ddd_days = np.floor(np.fmin(q * unit / ddd, top) + 0.5)
        rules = [
            (supply > 0) & (supply <= top),
            (end > start) & (span < top),
            (q > 0) & (unit > 0) & (ddd > 0) & (ddd_days >= 1),
        ]
        duration = np.select(rules, [supply, span + 1, ddd_days], 1.0).astype(np.int64)
        rule = np.select(rules, [0, 1, 2], 3)
        raw_mg = np.where((q > 0) & (unit > 0), q * unit / duration, np.nan)
        daily = raw_mg * de_per_mg
        daily_de = np.where(daily > s.plausible_max_de_mg, np.nan, daily)
        by_sig = _per_category(
            de["sig"], lambda t: _none_to_nan(sig_doses(_lower_trim(t), lk.knowledge)), np.nan, float
        )[keep]
        by_units = np.where(solid & (q > 0) & (rule <= 1), np.floor(q / duration + 0.5), np.nan)
        doses = np.where(np.isnan(by_sig), by_units, by_sig)

    most = max([n for _, n in lk.interdose] + [0])
    risk = np.zeros((len(ingredients) + 1, most + 1), dtype=np.int64)  # last row: no ingredient
    for (name, n), at_risk in lk.interdose.items():
        if name in icode:
            risk[icode[name], n] = at_risk
    ok = ~np.isnan(doses) & (doses >= 0) & (doses <= most)
    interdose = np.zeros(len(doses), dtype=np.int64)
    interdose[ok] = risk[ing[ok], doses[ok].astype(np.int64)]

    out = pd.DataFrame(
        {
            "drug_exposure_id": col("drug_exposure_id", np.int64),
            "person_id": col("person_id", np.int64),
            "bzd": bzd,
            "ingredient": ing,
            "route": route,
            "start_date": start.astype(np.int64),
            "end_date": start.astype(np.int64) + duration - 1,
            "duration": duration,
            "provider_id": col("provider_id", float),
            "daily_de": daily_de,
            "interdose": interdose,
        }
    )
    out.attrs["ingredients"] = ingredients
    out.attrs["routes"] = gcode
    return out


def _none_to_nan(value: int | None) -> float:
    return math.nan if value is None else float(value)


# ---------------------------------------------------------------------------------------------------------------
# queries.rx_order + fix_end + episode_starts (the per-person window step)


def bzd_rx(x: pd.DataFrame, s: CohortSettings) -> pd.DataFrame:
    """Oral BZD prescriptions sorted by person, start, id; with episode numbers and the superseded end."""
    routes = x.attrs["routes"]
    oral = [routes[g] for g in ("oral", "oromucosal") if g in routes]
    rx = x[x["bzd"] & x["route"].isin(oral)]
    rx = rx.sort_values(["person_id", "start_date", "drug_exposure_id"], kind="stable", ignore_index=True)
    person = rx["person_id"].to_numpy()
    start = rx["start_date"].to_numpy()
    end = rx["end_date"].to_numpy()
    first = np.ones(len(rx), dtype=bool)
    first[1:] = person[1:] != person[:-1]

    running_max = rx.groupby("person_id", sort=False)["end_date"].cummax().to_numpy()
    prev_end = np.zeros(len(rx), dtype=np.int64)
    prev_end[1:] = running_max[:-1]
    new = first | (start - prev_end - 1 > s.gap_days)
    gid = np.cumsum(new) - 1  # one id per episode over all persons
    first_gid = np.maximum.accumulate(np.where(first, gid, 0))
    rx["episode"] = gid
    rx["episode_no"] = gid - first_gid + 1

    # next start of the same ingredient (lead over person, ingredient ordered by start, id)
    order = np.lexsort((np.arange(len(rx)), rx["ingredient"].to_numpy(), person))
    p_o, i_o, s_o = person[order], rx["ingredient"].to_numpy()[order], start[order]
    same = np.zeros(len(rx), dtype=bool)
    same[:-1] = (p_o[1:] == p_o[:-1]) & (i_o[1:] == i_o[:-1])
    nxt = np.full(len(rx), np.iinfo(np.int64).max)
    nxt[:-1] = np.where(same[:-1], s_o[1:], nxt[:-1])
    next_same = np.empty_like(nxt)
    next_same[order] = nxt
    rx["eff_end"] = np.where(next_same <= end, next_same - 1, end)
    return rx


# ---------------------------------------------------------------------------------------------------------------
# queries.segments, joined to episodes as in queries.episodes (sw)


def _day_key(group: np.ndarray, day: np.ndarray, lo: int, width: int) -> np.ndarray:
    """One sortable int64 per (group, day): group * width + (day - lo)."""
    return group.astype(np.int64) * width + (day - lo)


def sweep(rx: pd.DataFrame, x: pd.DataFrame, ep: pd.DataFrame) -> pd.DataFrame:
    """Per episode: max total daily DE, days with >= 2 BZDs, days with an opioid (non-parenteral)."""
    routes = x.attrs["routes"]
    b = rx[rx["eff_end"] >= rx["start_date"]]
    o = x[~x["bzd"] & (x["route"] != routes.get("parenteral", -1))]
    o = o[o["person_id"].isin(ep["person_id"])]  # only people with episodes can match
    d_de = b["daily_de"].fillna(0.0).to_numpy()
    nb, no = len(b), len(o)
    person = np.concatenate([b["person_id"], b["person_id"], o["person_id"], o["person_id"]])
    day = np.concatenate([b["start_date"], b["eff_end"] + 1, o["start_date"], o["end_date"] + 1])
    lo = int(min(day.min(initial=0), ep["episode_start"].min()))
    width = int(max(day.max(initial=0), ep["episode_end"].max())) - lo + 1
    ev = pd.DataFrame(
        {
            "d_de": np.concatenate([d_de, -d_de, np.zeros(2 * no)]),
            "d_b": np.concatenate([np.ones(nb, np.int64), -np.ones(nb, np.int64), np.zeros(2 * no, np.int64)]),
            "d_o": np.concatenate([np.zeros(2 * nb, np.int64), np.ones(no, np.int64), -np.ones(no, np.int64)]),
        }
    )
    agg = ev.groupby(_day_key(person, day, lo, width), sort=True).sum()  # ordered by person, day
    key = agg.index.to_numpy()
    person, day = key // width, key % width + lo
    run = agg.groupby(person, sort=False).cumsum()  # running totals per person, as the SQL window
    last = np.ones(len(agg), dtype=bool)
    last[:-1] = person[1:] != person[:-1]
    days = np.zeros(len(agg), dtype=np.int64)
    days[:-1] = day[1:] - day[:-1]
    keep = (run["d_b"].to_numpy() >= 1) & ~last
    person, day, days = person[keep], day[keep], days[keep]
    de, n_b, n_o = (run[c].to_numpy()[keep] for c in ("d_de", "d_b", "d_o"))
    # JOIN ... ON person AND day BETWEEN episode_start AND episode_end: episodes of one person are
    # disjoint and sorted, so the candidate is the last episode starting on or before the day.
    ep_person = ep["person_id"].to_numpy()
    idx = np.searchsorted(_day_key(ep_person, ep["episode_start"].to_numpy(), lo, width), key[keep], side="right") - 1
    ok = idx >= 0
    ok[ok] = (ep_person[idx[ok]] == person[ok]) & (day[ok] <= ep["episode_end"].to_numpy()[idx[ok]])
    seg = pd.DataFrame(
        {
            "max_daily_de_mg": np.where(de > MIN_DE, np.round(de, 6), np.nan),
            "concurrent_days": np.where(n_b >= 2, days, 0),
            "opioid_overlap_days": np.where(n_o >= 1, days, 0),
        }
    )[ok]
    return seg.groupby(ep.index.to_numpy()[idx[ok]], sort=False).agg(
        {"max_daily_de_mg": "max", "concurrent_days": "sum", "opioid_overlap_days": "sum"}
    )


# ---------------------------------------------------------------------------------------------------------------
# queries.prescriber_peak


def prescriber_peak(rx: pd.DataFrame, s: CohortSettings) -> pd.DataFrame:
    """Most distinct prescribers active at once in an episode (each active for the window after a visit)."""
    w = s.prescriber_window_days
    p = rx[rx["provider_id"].notna()]
    order = np.lexsort((np.arange(len(p)), p["provider_id"].to_numpy(), p["episode"].to_numpy()))
    ep = p["episode"].to_numpy()[order]
    prov = p["provider_id"].to_numpy()[order]
    start = p["start_date"].to_numpy()[order]
    first = np.ones(len(p), dtype=bool)
    first[1:] = (ep[1:] != ep[:-1]) | (prov[1:] != prov[:-1])
    prev_end = np.zeros(len(p), dtype=np.int64)
    prev_end[1:] = start[:-1] + w - 1  # start is sorted within a prescriber: max(start + w - 1) = previous
    new_island = first | (start > prev_end)
    island_first = np.flatnonzero(new_island)
    island_last = np.append(island_first[1:], len(p)) - 1
    n = len(island_first)
    ev_ep = np.concatenate([ep[island_first], ep[island_first]])
    ev_day = np.concatenate([start[island_first], start[island_last] + w])
    lo = int(ev_day.min(initial=0))
    width = int(ev_day.max(initial=0)) - lo + 1
    delta = pd.Series(np.concatenate([np.ones(n, np.int64), -np.ones(n, np.int64)]))
    agg = delta.groupby(_day_key(ev_ep, ev_day, lo, width), sort=True).sum()  # ordered by episode, day
    agg_ep = agg.index.to_numpy() // width
    active = agg.groupby(agg_ep, sort=False).cumsum()
    return pd.DataFrame(
        {
            "window_prescribers": active.groupby(agg_ep, sort=False).max(),
            "prescribers": pd.Series(first).groupby(ep, sort=False).sum(),  # COUNT(DISTINCT provider_id)
        }
    )


# ---------------------------------------------------------------------------------------------------------------
# queries.episodes


def episodes(rx: pd.DataFrame, x: pd.DataFrame, s: CohortSettings) -> pd.DataFrame:
    """One row per episode with the indicator flags (columns and meaning as the SQL `episodes`)."""
    work = rx[["episode", "person_id", "episode_no", "start_date", "end_date", "daily_de", "interdose"]].assign(
        de_mg=rx["daily_de"] * rx["duration"], dosed_days=rx["duration"].where(rx["daily_de"].notna())
    )
    ep = work.groupby("episode", sort=True).agg(
        person_id=("person_id", "first"),
        episode_no=("episode_no", "first"),
        episode_start=("start_date", "min"),
        episode_end=("end_date", "max"),
        prescriptions=("person_id", "size"),
        cumulative_de_mg=("de_mg", "sum"),
        dosed_days=("dosed_days", "sum"),
        dosed_prescriptions=("daily_de", "count"),
        interdose_risk=("interdose", "max"),
    )
    none = ep["dosed_prescriptions"] == 0  # SUM over no values is NULL
    ep.loc[none, ["cumulative_de_mg", "dosed_days"]] = np.nan
    ep["duration_days"] = ep["episode_end"] - ep["episode_start"] + 1
    ep["slope_per_day"] = _slope(rx[rx["daily_de"].notna()])
    ep["ingredients"] = _ingredient_sets(rx, x.attrs["ingredients"])
    ep = ep.join(sweep(rx, x, ep)).join(prescriber_peak(rx, s))
    for col in ("concurrent_days", "opioid_overlap_days", "window_prescribers", "prescribers"):
        ep[col] = ep[col].fillna(0).astype(np.int64)

    mean = ep["cumulative_de_mg"] / ep["dosed_days"]
    ep["mean_daily_de_mg"] = mean.where(ep["dosed_days"] > 0)
    trend_ok = (ep["dosed_prescriptions"] >= 2) & (ep["dosed_days"] > 0) & (ep["cumulative_de_mg"] > 0)
    ep["trend_per_year"] = (ep["slope_per_day"] * 365.0 / mean).where(trend_ok)
    for t in s.long_term:
        ep[f"long_term_{t.name}"] = (ep["duration_days"] > t.days).astype(np.int64)
    ep["high_dose"] = (ep["max_daily_de_mg"] > s.high_dose_de_mg).astype(np.int64)
    ep["escalation"] = (
        (ep["duration_days"] >= s.escalation_min_days)
        & (ep["dosed_prescriptions"] >= s.escalation_min_prescriptions)
        & (ep["slope_per_day"] * 365.0 >= s.escalation_per_year * mean)
    ).astype(np.int64)
    ep["concurrent_bzd"] = (ep["concurrent_days"] > 0).astype(np.int64)
    ep["opioid_coprescription"] = (ep["opioid_overlap_days"] > 0).astype(np.int64)
    ep["multiple_prescribers"] = (ep["window_prescribers"] >= s.min_prescribers).astype(np.int64)
    for col in ("episode_start", "episode_end"):
        ep[col] = ep[col].to_numpy().astype("datetime64[D]").astype("datetime64[s]")
    columns = [
        "person_id", "episode_no", "episode_start", "episode_end", "duration_days", "prescriptions", "ingredients",
        "cumulative_de_mg", "dosed_days", "max_daily_de_mg", "mean_daily_de_mg", "trend_per_year", "concurrent_days",
        "opioid_overlap_days", "prescribers", "window_prescribers", "interdose_risk",
        *(f"long_term_{t.name}" for t in s.long_term),
        "high_dose", "escalation", "concurrent_bzd", "opioid_coprescription", "multiple_prescribers",
    ]  # fmt: skip
    return ep[columns].reset_index(drop=True)


def _slope(d: pd.DataFrame) -> pd.Series:
    """regr_slope(daily_de, day) per episode; NULL when all days are equal.

    slope = n * sum(dx * (y - y0)) / sum(dx^2) with dx = n*x - sum(x) exact in integers and y0 the
    episode's first dose, so a constant dose gives exactly 0 (as the engines' online algorithms do).
    """
    g = d.groupby("episode", sort=False)
    n = g["start_date"].transform("size").to_numpy()
    dx = n * d["start_date"].to_numpy() - g["start_date"].transform("sum").to_numpy()  # the origin cancels out
    dy = (d["daily_de"] - g["daily_de"].transform("first")).to_numpy()
    sums = pd.DataFrame({"n": 1, "num": dx * dy, "den": dx * dx}).groupby(d["episode"].to_numpy(), sort=False).sum()
    return (sums["n"] * sums["num"] / sums["den"].astype(float)).where(sums["den"] > 0)


def _ingredient_sets(rx: pd.DataFrame, names: list[str]) -> pd.Series:
    """Sorted distinct ingredient names per episode, comma-joined (one bit per ingredient, then decoded)."""
    pairs = rx[["episode", "ingredient"]].drop_duplicates()
    bits = pd.Series(np.left_shift(np.int64(1), pairs["ingredient"].to_numpy(np.int64)), index=pairs.index)
    mask = bits.groupby(pairs["episode"]).sum()
    labels = {m: ",".join(names[i] for i in range(len(names)) if m >> i & 1) for m in mask.unique()}
    return mask.map(labels)


def run_pandas(source: Path, settings: CohortSettings, lookups: Lookups) -> pd.DataFrame:
    """The timed part: read drug_exposure, derive exposures, episodes and indicators."""
    x = exposure(read_exposure(source), settings, lookups)
    rx = bzd_rx(x, settings)
    return episodes(rx, x, settings)


# ---------------------------------------------------------------------------------------------------------------
# Checking


def read_episodes(path: Path) -> pd.DataFrame:
    """An episodes.parquet written by run_cohort (or by the benchmark for pandas)."""
    return pq.read_table(path).to_pandas()


def _days(col: pd.Series) -> np.ndarray:
    return pd.to_datetime(col).to_numpy().astype("datetime64[D]").astype(np.int64)


def compare_detail(
    a: pd.DataFrame, b: pd.DataFrame, rel: float = 1e-9, noise: float = 1e-12, show: int = 0
) -> tuple[int, int]:
    """(rows that differ, real values that differ only by float noise around zero) between two episode tables.

    Compared on their common columns, matched on (person_id, episode_no): whole numbers and texts
    exactly, reals within `rel` (relative), dates as days, missing equal to missing. Reals that are
    zero in exact arithmetic come out of a running SUM of doubles or an online regr_slope as +-1e-15
    on one engine and 0 or NULL on another (e.g. max_daily_de_mg of an episode without a computable
    dose); values within `noise` of each other or of missing are counted apart, not as differences.
    """
    cols = [c for c in a.columns if c in b.columns and c not in KEYS]
    m = a.merge(b, on=list(KEYS), how="outer", suffixes=("_a", "_b"), indicator=True)
    one_side = (m["_merge"] != "both").to_numpy()
    bad = one_side.copy()
    per_column: dict[str, int] = {}
    tolerated = 0
    for c in cols:
        u, v = m[f"{c}_a"], m[f"{c}_b"]
        if c in ("episode_start", "episode_end"):
            ok = _days(u) == _days(v)
        elif pd.api.types.is_integer_dtype(u) and pd.api.types.is_integer_dtype(v):
            ok = u.to_numpy() == v.to_numpy()
        elif pd.api.types.is_numeric_dtype(u) and pd.api.types.is_numeric_dtype(v):
            fu, fv = u.to_numpy(float), v.to_numpy(float)
            with np.errstate(invalid="ignore"):
                diff = np.abs(fu - fv)
                ok = (diff <= rel * np.maximum(np.abs(fu), np.abs(fv))) | (np.isnan(fu) & np.isnan(fv))
                near = (diff <= noise) | (np.isnan(fu) & (np.abs(fv) <= noise)) | (np.isnan(fv) & (np.abs(fu) <= noise))
            tolerated += int((near & ~ok & ~one_side).sum())
            ok = ok | near
        else:
            ok = (u.astype(object).to_numpy() == v.astype(object).to_numpy()) | (u.isna() & v.isna()).to_numpy()
        ok = np.asarray(ok, dtype=bool) | one_side
        if (~ok).any():
            per_column[c] = int((~ok).sum())
        bad |= ~ok
    if show and bad.any():
        print(f"  {int(bad.sum())} differing rows; by column: {per_column}; on one side only: {int(one_side.sum())}")
        with pd.option_context("display.precision", 17):
            print(m.loc[bad].head(show).T.to_string())
    return int(bad.sum()), tolerated


def compare(a: pd.DataFrame, b: pd.DataFrame, rel: float = 1e-9, show: int = 0) -> int:
    """Rows that differ between two episode tables (see compare_detail)."""
    return compare_detail(a, b, rel, show=show)[0]


def check_equal(pandas_df: pd.DataFrame, duckdb_episodes_path: Path, show: int = 5) -> int:
    """Rows of the pandas episodes that differ from DuckDB's episodes.parquet (0 = identical)."""
    return compare(pandas_df, read_episodes(duckdb_episodes_path), show=show)


def main() -> None:
    import argparse
    import time

    from benzotaper.cohort.generate import generate
    from benzotaper.cohort.pipeline import run_cohort

    parser = argparse.ArgumentParser(description="Check the pandas baseline against DuckDB on generated data.")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/benzotaper-cohort-pandas-check"))
    args = parser.parse_args()
    source, out = args.data / "data", args.data / "duckdb"
    if not (source / "truth" / "generated.json").exists():
        generate(source, args.rows)
    run_cohort(source, out, "duckdb")
    settings, lookups = prepare(source)
    t0 = time.perf_counter()
    df = run_pandas(source, settings, lookups)
    print(f"pandas: {len(df)} episodes in {time.perf_counter() - t0:.2f} s")
    print(f"rows differing from DuckDB: {check_equal(df, out / 'episodes.parquet')}")


if __name__ == "__main__":
    main()
