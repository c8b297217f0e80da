"""A straightforward pandas version of the whole `run_cohort` job: the benchmark's plain baseline.

The issue asks for DuckDB to be compared with "a straightforward pandas implementation of the same
indicators". This is the pandas an analyst writes first, mirroring queries.py step by step: tables
read with `pd.read_parquet`, lookups joined with `merge`, per-person windows with `sort_values` +
`groupby().shift()/cummax()/cumsum()`, aggregates with `groupby().agg()`, day sums from start/stop
events with a grouped cumsum. No row loops, no NumPy index tricks (bench/cohort_pandas.py is the
tuned, episodes-only variant). The small lookups use the pipeline's own Python code: the product
mapper (`map_product`), sig vocabulary, equivalence, DDDs, routes and the interdose rule.

`run_plain` does everything from reading the files to writing the six outputs (episodes,
by_year_age_sex, by_year_drug, candidates, mapping, quality); `compare_outputs` matches two output
folders row by row. Rules: docs/cohort.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq

from benzotaper.cohort import queries
from benzotaper.cohort.engine import find_table
from benzotaper.cohort.mapping import VocabRow, ingredient_ids, map_product, name_index, product_codes
from benzotaper.cohort.pipeline import (
    COLUMNS,
    OUTPUTS,
    REQUIRED,
    default_settings,
    ingredient_rows,
    interdose_rows,
    sig_doses,
)
from benzotaper.cohort.settings import CohortSettings
from benzotaper.errors import CohortError
from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.knowledge.cohort_rules import CohortKnowledge, load_cohort_knowledge

DATE_COLUMNS = ("drug_exposure_start_date", "drug_exposure_end_date")
EP = ["person_id", "episode_no"]  # an episode's key
MIN_DE = float(queries.MIN_DE)  # a day total at or below this is float noise around 0
ORIGIN = pd.Timestamp("2000-01-01")
ONE_DAY = pd.Timedelta(days=1)
KEYS: dict[str, tuple[str, ...]] = {
    "episodes": ("person_id", "episode_no"),
    "by_year_age_sex": ("year", "age_band", "sex"),
    "by_year_drug": ("year", "drug"),
    "candidates": ("person_id",),
    "mapping": ("status", "method", "kind", "ingredient"),
    "quality": ("kind", "route_group", "ingredient", "duration_rule", "dose_rule", "doses_rule"),
}


# ---------------------------------------------------------------------------------------------------------------
# Reading


def read_table(source: Path, table: str) -> pd.DataFrame | None:
    """One OMOP table of `source` with the columns the pipeline uses (absent optional ones as missing)."""
    found = find_table(source, table)
    if found is None:
        if table in REQUIRED:
            raise CohortError(f"table {table} is missing from {source}")
        return None
    path, fmt = found
    if fmt != "parquet":
        raise CohortError(f"the pandas baseline reads Parquet only ({path})")
    first = next(iter(sorted(path.glob("*.parquet")))) if path.is_dir() else path
    names = set(pq.read_schema(first).names)
    wanted = [c for c in COLUMNS[table] if c in names]
    df = pd.read_parquet(path, columns=wanted)
    for c in COLUMNS[table]:
        if c not in df:
            df[c] = None if COLUMNS[table][c] == "TEXT" else np.nan
    if table == "drug_exposure":
        for c in DATE_COLUMNS:
            df[c] = pd.to_datetime(df[c])
    return df


# ---------------------------------------------------------------------------------------------------------------
# Lookups built in Python from the distinct keys (small), as pipeline.build_product_map and _lookups do


def _none(value: Any) -> Any:
    """NaN/NA as None (the mapper expects None for missing)."""
    return None if pd.isna(value) else value


def _int(value: Any) -> int | None:
    return None if pd.isna(value) else int(value)


def vocab_rows(
    keys: pd.DataFrame, ids: dict[int, tuple[str, str]], tables: dict[str, pd.DataFrame | None]
) -> dict[int, list[VocabRow]]:
    """For each distinct drug concept: its known ingredient ancestor, strength and name (queries.vocabulary_lookup)."""
    ancestor, strength, concept = tables["concept_ancestor"], tables["drug_strength"], tables["concept"]
    if ancestor is None and strength is None and concept is None:
        return {}
    v = keys.loc[keys["drug_concept_id"] != 0, ["drug_concept_id"]].drop_duplicates()
    if ancestor is not None:
        ca = ancestor[ancestor["ancestor_concept_id"].isin(list(ids))]
        v = v.merge(ca, left_on="drug_concept_id", right_on="descendant_concept_id", how="left")
    else:
        v["ancestor_concept_id"] = np.nan
    if strength is not None:
        v["ingredient_concept_id"] = v["ancestor_concept_id"].fillna(v["drug_concept_id"])
        v = v.merge(strength, on=["drug_concept_id", "ingredient_concept_id"], how="left")
    if concept is not None:
        names = concept[["concept_id", "concept_name", "vocabulary_id", "concept_code"]]
        v = v.merge(names, left_on="drug_concept_id", right_on="concept_id", how="left")
    rows: dict[int, list[VocabRow]] = {}
    for r in v.to_dict("records"):  # one row per distinct concept (and ancestor): small
        rows.setdefault(int(r["drug_concept_id"]), []).append(
            VocabRow(
                int(r["drug_concept_id"]),
                _int(r["ancestor_concept_id"]),
                _none(r.get("amount_value")),
                _int(r.get("amount_unit_concept_id")),
                _none(r.get("numerator_value")),
                _int(r.get("numerator_unit_concept_id")),
                _none(r.get("denominator_value")),
                _int(r.get("denominator_unit_concept_id")),
                _none(r.get("concept_name")),
                _none(r.get("vocabulary_id")),
                _none(r.get("concept_code")),
            )
        )
    return rows


def product_map(
    keys: pd.DataFrame, tables: dict[str, pd.DataFrame | None], knowledge: Knowledge, ck: CohortKnowledge
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every distinct (drug_concept_id, drug_source_value) mapped by the pipeline's mapper; and the mapping report."""
    concept = tables["concept"]
    site: list[tuple[int, str]] = []
    if concept is not None:
        ing = concept[(concept["concept_class_id"] == "Ingredient") & (concept["standard_concept"].fillna("S") == "S")]
        site = list(zip(ing["concept_id"].astype("int64").tolist(), ing["concept_name"].astype(str), strict=True))
    ids = ingredient_ids(knowledge, ck, site)
    vocab = vocab_rows(keys, ids, tables)
    names, codes = name_index(knowledge, ck), product_codes(ck)
    products: list[dict[str, Any]] = []
    report: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    triples = zip(keys["drug_concept_id"].tolist(), keys["drug_source_value"].tolist(), keys["n"].tolist(), strict=True)
    for cid, text, n in sorted(triples, key=lambda k: (-k[2], k[0], k[1])):  # examples: most frequent first
        p = map_product(cid, text, vocab.get(cid, []), ids, codes, names, ck)
        products.append(
            {"drug_concept_id": cid, "drug_source_value": text, "ingredient": p.ingredient, "kind": p.kind,
             "unit_mg": p.unit_mg, "form": p.form, "route_hint": p.route_hint}
        )  # fmt: skip
        entry = report.setdefault((p.status, p.method, p.kind or "", p.ingredient or ""), {"rows": 0, "examples": []})
        entry["rows"] += n
        if p.status in ("unmapped", "unsupported_ingredient") and len(entry["examples"]) < 5:
            entry["examples"].append(text or f"concept {cid}")
    mapping = pd.DataFrame(
        [
            {
                "status": s,
                "method": m,
                "kind": k,
                "ingredient": i,
                "rows": e["rows"],
                "examples": "; ".join(e["examples"]),
            }
            for (s, m, k, i), e in sorted(report.items())
        ],
        columns=["status", "method", "kind", "ingredient", "rows", "examples"],
    )
    return pd.DataFrame(products, columns=list(products[0]) if products else None), mapping


def ingredient_table(knowledge: Knowledge, ck: CohortKnowledge) -> pd.DataFrame:
    """Every ingredient: diazepam equivalent per mg and WHO DDD (BZDs), or none (opioids)."""
    columns = ["ingredient", "ingredient_kind", "de_per_mg", "ddd_mg"]
    table = pd.DataFrame(ingredient_rows(knowledge, ck), columns=columns)
    return table.astype({"de_per_mg": float, "ddd_mg": float})


def lookup(df: pd.DataFrame, table: pd.DataFrame, on: list[str], column: str) -> Any:
    """`column` of a small lookup `table` (unique keys) for every row of `df`: a left merge on the key
    columns only (merging the whole wide frame would copy every column), in the row order of `df`."""
    return df[on].merge(table, on=on, how="left")[column].to_numpy()


def _lower_trim(text: str) -> str:
    return text.strip(" ").lower()  # SQL lower(trim(x)): trim removes spaces only


# ---------------------------------------------------------------------------------------------------------------
# queries.exposure: every in-scope row with its route group, duration, daily dose and codes


def exposure(
    de: pd.DataFrame,
    products: pd.DataFrame,
    s: CohortSettings,
    knowledge: Knowledge,
    ck: CohortKnowledge,
) -> pd.DataFrame:
    """BZD and opioid rows: route group, the rules used, duration, end, daily DE, doses/day, interdose flag."""
    # the lookups first, while the frame is narrow: product, route by concept, route by words, sig
    dim = products[products["kind"].isin(["bzd", "opioid"])].merge(
        ingredient_table(knowledge, ck)[["ingredient", "de_per_mg", "ddd_mg"]], on="ingredient", how="left"
    )
    words = {w: g for g, ws in ck.omop.route_words.items() for w in ws}
    texts = de["route_source_value"].dropna().unique().tolist()
    route_words = pd.DataFrame(
        [(t, words[_lower_trim(t)]) for t in texts if _lower_trim(t) in words],
        columns=["route_source_value", "route_by_words"],
    )
    route_map = pd.DataFrame(list(ck.omop.routes.items()), columns=["route_concept_id", "route_by_concept"])
    route_map["route_concept_id"] = route_map["route_concept_id"].astype("Int64")
    sigs = de["sig"].dropna().unique().tolist()
    parsed = [(t, sig_doses(_lower_trim(t), knowledge)) for t in sigs]
    sig_map = pd.DataFrame([p for p in parsed if p[1] is not None], columns=["sig", "sig_doses"])
    sig_map["sig_doses"] = sig_map["sig_doses"].astype(float)
    de["route_concept_id"] = de["route_concept_id"].astype("Int64")
    x = de.merge(dim, on=["drug_concept_id", "drug_source_value"], how="inner")
    x["route_by_concept"] = lookup(x, route_map, ["route_concept_id"], "route_by_concept")
    x["route_by_words"] = lookup(x, route_words, ["route_source_value"], "route_by_words")
    x["sig_doses"] = lookup(x, sig_map, ["sig"], "sig_doses")

    # route: route_concept_id, else the words of route_source_value, else the product's hint, else unknown
    x["route_group"] = x["route_by_concept"].fillna(x["route_by_words"]).fillna(x["route_hint"]).fillna("unknown")

    # duration: the first rule that applies (queries.exposure), then the duration it names
    start, end, top = x["drug_exposure_start_date"], x["drug_exposure_end_date"], s.max_days_supply
    supply, q, unit, ddd = x["days_supply"], x["quantity"], x["unit_mg"], x["ddd_mg"]
    span = (end - start).dt.days
    ddd_days = np.floor((q * unit / ddd).clip(upper=top) + 0.5)
    rules = [
        (supply > 0) & (supply <= top),
        (end > start) & (span < top),
        (q > 0) & (unit > 0) & (ddd > 0) & (ddd_days >= 1),
    ]
    x["duration_rule"] = np.select(rules, [0, 1, 2], 3)
    x["duration"] = np.select(rules, [supply, span + 1, ddd_days], 1).astype("int64")
    x["start_date"] = start
    x["end_date"] = start + pd.to_timedelta(x["duration"] - 1, unit="D")

    # daily dose in diazepam equivalents; above the plausible maximum it is not used
    raw_mg = (q * unit / x["duration"]).where((q > 0) & (unit > 0))
    de_mg = raw_mg * x["de_per_mg"]
    too_high = de_mg > s.plausible_max_de_mg
    x["daily_de"] = de_mg.mask(too_high)
    x["dose_rule"] = np.select(
        [x["kind"] == "opioid", q.isna() | (q <= 0), unit.isna(), x["de_per_mg"].isna(), too_high], [5, 1, 2, 3, 4], 0
    )

    # doses per day: the sig, else tablets per day when the duration came from days_supply or the end date
    units = (x["form"] == "solid") & (q > 0) & (x["duration_rule"] <= 1)
    per_day = np.floor(q / x["duration"] + 0.5).where(units)
    x["doses_per_day"] = x["sig_doses"].fillna(per_day)
    x["doses_rule"] = np.select([x["sig_doses"].notna(), units], [0, 1], 2)

    # interdose-withdrawal risk of the ingredient at those doses per day (the clinic's PK rule)
    bzds = dim.loc[dim["kind"] == "bzd", "ingredient"].unique().tolist()
    risk = pd.DataFrame(interdose_rows(knowledge, bzds), columns=["ingredient", "doses_per_day", "interdose"])
    risk["doses_per_day"] = risk["doses_per_day"].astype(float)
    x["interdose"] = lookup(x, risk, ["ingredient", "doses_per_day"], "interdose")
    x["interdose"] = x["interdose"].fillna(0).astype("int64")

    x["analysed"] = (x["kind"] == "bzd") & x["route_group"].isin(list(ck.omop.analysed_with_oral))
    keep = [
        "person_id", "drug_exposure_id", "ingredient", "kind", "route_group", "analysed", "start_date", "end_date",
        "duration", "daily_de", "provider_id", "duration_rule", "dose_rule", "doses_rule", "interdose",
    ]  # fmt: skip
    return x[keep]


def quality(x: pd.DataFrame) -> pd.DataFrame:
    """Rows per kind, route group, ingredient and the rules used for duration, dose and doses per day."""
    cols = ["kind", "route_group", "ingredient", "duration_rule", "dose_rule", "doses_rule"]
    q = x.groupby(cols).size().reset_index(name="rows")
    for col, names in (
        ("duration_rule", queries.DURATION_RULES),
        ("dose_rule", queries.DOSE_RULES),
        ("doses_rule", queries.DOSES_RULES),
    ):
        q[col] = q[col].map(dict(enumerate(names)))
    return q


# ---------------------------------------------------------------------------------------------------------------
# queries.rx_order, fix_end, episode_starts: the per-person window step


def prescriptions(x: pd.DataFrame, s: CohortSettings) -> pd.DataFrame:
    """The analysed prescriptions in person order with their episode number and superseded end (`eff_end`).

    An episode starts when the days without supply before a prescription (after the latest end of
    the person's earlier ones) exceed the gap. A newer prescription of the same ingredient ends the
    older the day before it starts (rx_order's lead and fix_end together: the next prescription of
    the same ingredient, in that ingredient's own order).
    """
    rx = x[x["analysed"]].drop(columns=["analysed", "kind", "route_group"])
    rx = rx.sort_values(["person_id", "start_date", "drug_exposure_id"], ignore_index=True)
    rx["latest_end"] = rx.groupby("person_id")["end_date"].cummax()
    prev_end = rx.groupby("person_id")["latest_end"].shift()
    rx["is_start"] = prev_end.isna() | ((rx["start_date"] - prev_end).dt.days - 1 > s.gap_days)
    rx["episode_no"] = rx.groupby("person_id")["is_start"].cumsum().astype("int64")
    by_ingredient = rx.sort_values(["person_id", "ingredient", "start_date", "drug_exposure_id"])
    rx["next_same"] = by_ingredient.groupby(["person_id", "ingredient"])["start_date"].shift(-1)  # aligned on the index
    rx["eff_end"] = (rx["next_same"] - ONE_DAY).where(rx["next_same"] <= rx["end_date"], rx["end_date"])
    return rx.drop(columns=["latest_end", "next_same"])


# ---------------------------------------------------------------------------------------------------------------
# queries.episode_base: one grouping per episode


def episode_base(rx: pd.DataFrame) -> pd.DataFrame:
    """Per episode: span, prescriptions, doses, least-squares trend, providers, interdose flag, single max dose."""
    dosed = rx["daily_de"].notna()
    episode_start = rx["start_date"].where(rx["is_start"]).ffill()  # rows are in episode order
    day = (rx["start_date"] - episode_start).dt.days.where(dosed)  # x of the regression (from the episode start)
    work = rx[[*EP, "start_date", "end_date", "daily_de", "provider_id", "interdose"]].assign(
        de_days=rx["daily_de"] * rx["duration"],
        dosed_days=rx["duration"].where(dosed),
        x=day,
        xx=day * day,
        xy=day * rx["daily_de"],
        single=rx["daily_de"].where((rx["eff_end"] >= rx["start_date"]) & (rx["daily_de"] > MIN_DE)),
    )
    g = work.groupby(EP).agg(
        episode_start=("start_date", "min"),
        episode_end=("end_date", "max"),
        prescriptions=("start_date", "size"),
        cumulative_de_mg=("de_days", "sum"),
        dosed_days=("dosed_days", "sum"),
        dosed_prescriptions=("daily_de", "count"),
        sum_y=("daily_de", "sum"),
        sum_x=("x", "sum"),
        sum_xx=("xx", "sum"),
        sum_xy=("xy", "sum"),
        min_provider=("provider_id", "min"),
        max_provider=("provider_id", "max"),
        interdose_risk=("interdose", "max"),
        single_max_de=("single", "max"),
    )
    none = g["dosed_prescriptions"] == 0  # SUM over no values is missing
    g["cumulative_de_mg"] = g["cumulative_de_mg"].mask(none)
    g["dosed_days"] = g["dosed_days"].astype("Int64").mask(none)
    n = g["dosed_prescriptions"]
    spread = n * g["sum_xx"] - g["sum_x"] ** 2  # n^2 var(x), exact (whole days)
    g["slope_per_day"] = ((n * g["sum_xy"] - g["sum_x"] * g["sum_y"]) / spread).where(spread > 0)
    g["duration_days"] = (g["episode_end"] - g["episode_start"]).dt.days + 1
    g["single_max_de"] = g["single_max_de"].round(6)
    return g.drop(columns=["sum_y", "sum_x", "sum_xx", "sum_xy"]).reset_index()


def ingredient_sets(rx: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each episode's distinct ingredients (one row each) and their sorted, comma-joined names per episode."""
    pairs = rx[[*EP, "ingredient"]].drop_duplicates().sort_values([*EP, "ingredient"], ignore_index=True)
    count = pairs.groupby(EP)["ingredient"].size().rename("n_ingredients").reset_index()
    sets = pairs.merge(count, on=EP)
    one = sets.loc[sets["n_ingredients"] == 1, [*EP, "ingredient"]].rename(columns={"ingredient": "ingredients"})
    several = sets[sets["n_ingredients"] > 1]  # switchers: few episodes
    joined = several.groupby(EP)["ingredient"].agg(",".join).rename("ingredients").reset_index()
    names = pd.concat([one, joined], ignore_index=True).merge(count, on=EP)
    return pairs, names


# ---------------------------------------------------------------------------------------------------------------
# Day sums: opioid stretches, the start/stop sweep, prescribers


def opioid_rows(x: pd.DataFrame) -> pd.DataFrame:
    """Opioid prescriptions that count for co-prescription (every route but parenteral)."""
    o = x[(x["kind"] == "opioid") & (x["route_group"] != "parenteral")]
    return o[["person_id", "start_date", "end_date"]].reset_index(drop=True)


def opioid_islands(op: pd.DataFrame) -> pd.DataFrame:
    """Each person's opioid days as disjoint stretches (overlapping prescriptions merged)."""
    o = op.sort_values(["person_id", "start_date", "end_date"], ignore_index=True)
    o["latest_end"] = o.groupby("person_id")["end_date"].cummax()
    prev_end = o.groupby("person_id")["latest_end"].shift()
    o["island"] = (prev_end.isna() | (o["start_date"] > prev_end)).cumsum()
    return (
        o.groupby(["person_id", "island"])
        .agg(o_start=("start_date", "min"), o_end=("end_date", "max"))
        .reset_index()
        .drop(columns=["island"])
    )


def opioid_days(rx: pd.DataFrame, islands: pd.DataFrame) -> pd.DataFrame:
    """Days with a BZD and an opioid per episode, adding up prescription x opioid stretch overlaps.

    Right where the episode's prescriptions never overlap once superseded (one ingredient).
    """
    r = rx.loc[(rx["eff_end"] >= rx["start_date"]) & rx["person_id"].isin(islands["person_id"])]
    m = r[[*EP, "start_date", "eff_end"]].merge(islands, on="person_id")
    m = m[(m["o_start"] <= m["eff_end"]) & (m["o_end"] >= m["start_date"])]
    first = m[["start_date", "o_start"]].max(axis=1)
    last = m[["eff_end", "o_end"]].min(axis=1)
    days = ((last - first).dt.days + 1).rename("pair_days")
    return days.groupby([m["person_id"], m["episode_no"]]).sum().rename("opioid_days").reset_index()


def sweep(rx: pd.DataFrame, op: pd.DataFrame, eps: pd.DataFrame) -> pd.DataFrame:
    """queries.segments: highest day total, days with two or more BZDs and days with an opioid, per episode.

    Start/stop events of the episode's prescriptions (+dose at the start, -dose the day after the
    end) and of the person's opioids within its span; running sums per episode in day order give
    the totals of each stretch of days up to the next event.
    """
    b = rx.merge(eps[EP], on=EP)
    b = b[b["eff_end"] >= b["start_date"]]
    o = op.merge(eps[[*EP, "episode_start", "episode_end"]], on="person_id")
    o = o[(o["start_date"] <= o["episode_end"]) & (o["end_date"] >= o["episode_start"])]
    de = b["daily_de"].fillna(0.0)
    zero_o = np.zeros(len(o))
    events = pd.concat(
        [
            pd.DataFrame({**{k: b[k] for k in EP}, "day": b["start_date"], "d_de": de, "d_b": 1, "d_o": 0}),
            pd.DataFrame({**{k: b[k] for k in EP}, "day": b["eff_end"] + ONE_DAY, "d_de": -de, "d_b": -1, "d_o": 0}),
            pd.DataFrame({**{k: o[k] for k in EP}, "day": o["start_date"], "d_de": zero_o, "d_b": 0, "d_o": 1}),
            pd.DataFrame(
                {**{k: o[k] for k in EP}, "day": o["end_date"] + ONE_DAY, "d_de": zero_o, "d_b": 0, "d_o": -1}
            ),
        ],
        ignore_index=True,
    )
    per_day = events.groupby([*EP, "day"]).sum().reset_index()  # sorted by episode, day
    running = per_day.groupby(EP)[["d_de", "d_b", "d_o"]].cumsum()
    per_day["de"], per_day["nb"], per_day["n_o"] = running["d_de"], running["d_b"], running["d_o"]
    per_day["days"] = (per_day.groupby(EP)["day"].shift(-1) - per_day["day"]).dt.days
    seg = per_day[(per_day["nb"] >= 1) & per_day["days"].notna()]
    seg = seg.assign(
        peak=seg["de"].round(6).where(seg["de"] > MIN_DE),
        concurrent=seg["days"].where(seg["nb"] >= 2, 0),
        opioid=seg["days"].where(seg["n_o"] >= 1, 0),
    )
    return (
        seg.groupby(EP)
        .agg(sweep_max_de=("peak", "max"), sweep_concurrent=("concurrent", "sum"), sweep_opioid=("opioid", "sum"))
        .reset_index()
    )


def prescriber_peak(rx: pd.DataFrame, eps: pd.DataFrame, s: CohortSettings) -> pd.DataFrame:
    """Distinct prescribers of each episode and the most of them active within any window (queries.prescriber_peak).

    Each prescription keeps its prescriber active for the window; a prescriber's overlapping
    active stretches are merged (open when the previous one of the same prescriber is out of the
    window, close when the next one is) and a running count of open stretches finds the peak.
    """
    w = s.prescriber_window_days
    r = rx.loc[rx["provider_id"].notna(), [*EP, "provider_id", "start_date"]].merge(eps[EP], on=EP)
    r = r.sort_values([*EP, "provider_id", "start_date"], ignore_index=True)
    by_provider = r.groupby([*EP, "provider_id"])["start_date"]
    prev_start, next_start = by_provider.shift(), by_provider.shift(-1)
    opens = prev_start.isna() | ((r["start_date"] - prev_start).dt.days >= w)
    closes = next_start.isna() | ((next_start - r["start_date"]).dt.days >= w)
    events = pd.concat(
        [
            r.loc[opens, EP].assign(day=r["start_date"], delta=1, first=prev_start.isna().astype("int64")),
            r.loc[closes, EP].assign(day=r["start_date"] + pd.Timedelta(days=w), delta=-1, first=0),
        ],
        ignore_index=True,
    )
    events = events.sort_values([*EP, "day", "delta"], ignore_index=True)
    events["active"] = events.groupby(EP)["delta"].cumsum()
    return events.groupby(EP).agg(peak_prescribers=("first", "sum"), peak_window=("active", "max")).reset_index()


# ---------------------------------------------------------------------------------------------------------------
# queries.episodes and the outputs


def episodes(
    rx: pd.DataFrame, x: pd.DataFrame, person: pd.DataFrame, s: CohortSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per episode with every indicator (episode_columns), plus the person's birth year and sex;
    and the (episode, ingredient) pairs."""
    g = episode_base(rx)
    pairs, sets = ingredient_sets(rx)
    g = g.merge(sets, on=EP, how="left")
    op = opioid_rows(x)
    several_ingredients = g[g["n_ingredients"] > 1]  # the sweep is needed only here (docs/cohort.md)
    several_providers = g[g["min_provider"] < g["max_provider"]]
    g = g.merge(sweep(rx, op, several_ingredients), on=EP, how="left")
    g = g.merge(opioid_days(rx, opioid_islands(op)), on=EP, how="left")
    g = g.merge(prescriber_peak(rx, several_providers, s), on=EP, how="left")
    needs_sweep = g["n_ingredients"] > 1
    g["max_daily_de_mg"] = g["sweep_max_de"].where(needs_sweep, g["single_max_de"])
    g["concurrent_days"] = g["sweep_concurrent"].fillna(0).astype("int64")
    g["opioid_overlap_days"] = g["sweep_opioid"].where(needs_sweep, g["opioid_days"]).fillna(0).astype("int64")
    one = np.where(g["min_provider"].isna(), 0, 1)
    several = g["min_provider"] < g["max_provider"]
    g["prescribers"] = g["peak_prescribers"].where(several, one).astype("int64")
    g["window_prescribers"] = g["peak_window"].where(several, one).astype("int64")

    mean = g["cumulative_de_mg"] / g["dosed_days"].astype(float)
    g["mean_daily_de_mg"] = mean.where(g["dosed_days"] > 0)
    trend_ok = (g["dosed_prescriptions"] >= 2) & (g["dosed_days"] > 0) & (g["cumulative_de_mg"] > 0)
    g["trend_per_year"] = (g["slope_per_day"] * 365.0 / mean).where(trend_ok.fillna(False))
    flags = {
        **{f"long_term_{t.name}": g["duration_days"] > t.days for t in s.long_term},
        "high_dose": g["max_daily_de_mg"] > s.high_dose_de_mg,
        "escalation": (g["duration_days"] >= s.escalation_min_days)
        & (g["dosed_prescriptions"] >= s.escalation_min_prescriptions)
        & (g["slope_per_day"] * 365.0 >= s.escalation_per_year * mean),
        "opioid_coprescription": g["opioid_overlap_days"] > 0,
        "concurrent_bzd": g["concurrent_days"] > 0,
        "multiple_prescribers": g["window_prescribers"] >= s.min_prescribers,
    }
    for name, flag in flags.items():
        g[name] = flag.astype("int64")
    g["interdose_risk"] = g["interdose_risk"].astype("int64")
    g = g.merge(person[["person_id", "year_of_birth", "gender_concept_id"]], on="person_id", how="left")
    return g, pairs


def year_span(ep: pd.DataFrame) -> pd.DataFrame:
    """Each episode once for every calendar year it overlaps (an equi-join on a small (y0, y1, year) lookup)."""
    ep = ep.assign(y0=ep["episode_start"].dt.year, y1=ep["episode_end"].dt.year)
    spans = ep[["y0", "y1"]].drop_duplicates()
    lookup = pd.DataFrame(
        [
            (y0, y1, y)
            for y0, y1 in zip(spans["y0"].tolist(), spans["y1"].tolist(), strict=True)
            for y in range(y0, y1 + 1)
        ],
        columns=["y0", "y1", "year"],
    )
    return ep.merge(lookup, on=["y0", "y1"])


def age_bands(s: CohortSettings) -> pd.DataFrame:
    """The band label of every age 0-200."""
    return pd.DataFrame(
        [(a, b) for b, lo, hi in s.band_table() for a in range(lo, hi + 1)], columns=["age", "age_band"]
    )


def sex_of(gender: pd.Series, ck: CohortKnowledge) -> pd.Series:
    """'M', 'F' or 'unknown' from gender_concept_id."""
    return pd.Series(
        np.select([gender == ck.omop.male, gender == ck.omop.female], ["M", "F"], "unknown"), index=gender.index
    )


def population_tables(
    ep: pd.DataFrame, pairs: pd.DataFrame, person: pd.DataFrame, s: CohortSettings, ck: CohortKnowledge
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """by_year_age_sex (population from `person`, users and indicator counts) and by_year_drug."""
    flags = queries.indicator_names(s)
    ey = year_span(ep[[*EP, "episode_start", "episode_end", "year_of_birth", "gender_concept_id", *flags]])
    # a user's indicators in a year: any episode overlapping the year
    py = (
        ey.groupby(["person_id", "year"])
        .agg(year_of_birth=("year_of_birth", "min"), gender_concept_id=("gender_concept_id", "min"),
             **{f: (f, "max") for f in flags})
        .reset_index()
    )  # fmt: skip
    py["age"] = py["year"] - py["year_of_birth"]
    py = py.merge(age_bands(s), on="age")
    py["sex"] = sex_of(py["gender_concept_id"], ck)
    users = (
        py.groupby(["year", "age_band", "sex"])
        .agg(users=("person_id", "size"), **{f: (f, "sum") for f in flags})
        .reset_index()
    )
    first, last = ep["episode_start"].dt.year.min(), ep["episode_end"].dt.year.max()
    years = pd.DataFrame({"year": range(int(first), int(last) + 1) if len(ep) else []}, dtype="int64")
    people = person.assign(sex=sex_of(person["gender_concept_id"], ck))
    cohorts = people.groupby(["year_of_birth", "sex"]).size().rename("n").reset_index()
    pop = cohorts.merge(years, how="cross")
    pop = pop[pop["year_of_birth"] <= pop["year"]]
    pop = pop.assign(age=pop["year"] - pop["year_of_birth"]).merge(age_bands(s), on="age")
    pop = pop.groupby(["year", "age_band", "sex"])["n"].sum().rename("population").reset_index()
    by_age = pop.merge(users, on=["year", "age_band", "sex"], how="left")
    for c in ["users", *flags]:
        by_age[c] = by_age[c].fillna(0).astype("int64")

    # users of each ingredient: the episodes of that year with that ingredient
    eyd = ey[[*EP, "year", *flags]].merge(pairs, on=EP)
    pyd = eyd.groupby(["person_id", "year", "ingredient"])[flags].max().reset_index()
    by_drug = (
        pyd.groupby(["year", "ingredient"])
        .agg(users=("person_id", "size"), **{f: (f, "sum") for f in flags})
        .reset_index()
        .rename(columns={"ingredient": "drug"})
    )
    return by_age, by_drug


def candidates(ep: pd.DataFrame, s: CohortSettings) -> pd.DataFrame:
    """Users for a deprescribing review: per person the worst of each indicator, one 0/1 column per reason."""
    flags = queries.indicator_names(s)
    p = (
        ep.groupby("person_id")
        .agg(
            year_of_birth=("year_of_birth", "min"),
            gender_concept_id=("gender_concept_id", "min"),
            episodes=("episode_no", "size"),
            first_start=("episode_start", "min"),
            last_end=("episode_end", "max"),
            longest_episode_days=("duration_days", "max"),
            max_daily_de_mg=("max_daily_de_mg", "max"),
            cumulative_de_mg=("cumulative_de_mg", "sum"),
            n_cumulative=("cumulative_de_mg", "count"),
            opioid_overlap_days=("opioid_overlap_days", "max"),
            window_prescribers=("window_prescribers", "max"),
            trend_per_year=("trend_per_year", "max"),
            **{f: (f, "max") for f in flags},
        )
        .reset_index()
    )
    p["cumulative_de_mg"] = p["cumulative_de_mg"].mask(p["n_cumulative"] == 0)  # SUM over no values is missing
    review, short = f"long_term_{s.review_long_term}", f"long_term_{s.long_term[0].name}"
    reasons = {
        review: p[review],
        "high_dose": p["high_dose"],
        "escalation": p["escalation"],
        "opioid_coprescription": p["opioid_coprescription"],
        "multiple_prescribers": p["multiple_prescribers"],
        "interdose_risk": ((p["interdose_risk"] == 1) & (p[short] == 1)).astype("int64"),
    }
    for name, value in reasons.items():
        p[f"reason_{name}"] = value
    p["reasons"] = sum(reasons.values())
    p = p[p["reasons"] > 0]
    columns = [
        "person_id", "year_of_birth", "gender_concept_id", "episodes", "first_start", "last_end",
        "longest_episode_days", "max_daily_de_mg", "cumulative_de_mg", "opioid_overlap_days", "window_prescribers",
        "trend_per_year", *(f"reason_{n}" for n in reasons), "reasons",
    ]  # fmt: skip
    p = p.sort_values(["reasons", "max_daily_de_mg", "person_id"], ascending=[False, False, True])
    return p[columns].reset_index(drop=True)


INTEGER_COLUMNS = {"year_of_birth", "gender_concept_id", "dosed_days", "rows", "population", "users"}  # may be float


def _write(df: pd.DataFrame, path: Path) -> None:
    """One output as Parquet in the pipeline's portable schema (int64, float64, string, date32)."""
    fields = []
    for name, dtype in df.dtypes.items():
        if pd.api.types.is_datetime64_any_dtype(dtype):
            t = pa.date32()
        elif pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
            t = pa.int64()
        elif pd.api.types.is_float_dtype(dtype):
            t = pa.int64() if name in INTEGER_COLUMNS else pa.float64()
        else:
            t = pa.string()
        fields.append(pa.field(str(name), t))
    frame = df.copy()
    for name in INTEGER_COLUMNS & set(frame.columns):
        frame[name] = frame[name].astype("Int64")
    pq.write_table(pa.Table.from_pandas(frame, schema=pa.schema(fields), preserve_index=False), path)


def run_plain(
    source: Path, out_dir: Path, settings: CohortSettings | None = None, knowledge: Knowledge | None = None
) -> dict[str, pd.DataFrame]:
    """Read the OMOP Parquet tables of `source`, derive everything, write the six outputs as
    out_dir/<name>.parquet; return them."""
    knowledge = knowledge or load_knowledge()
    ck = load_cohort_knowledge()
    s = settings or default_settings(knowledge, ck)
    person = read_table(source, "person")
    de = read_table(source, "drug_exposure")
    assert person is not None and de is not None  # required: read_table raises when absent
    tables = {t: read_table(source, t) for t in ("concept", "concept_ancestor", "drug_strength")}

    # distinct product keys (row counts) mapped once in Python
    de["drug_concept_id"] = de["drug_concept_id"].fillna(0).astype("int64")
    de["drug_source_value"] = de["drug_source_value"].fillna("")
    keys = de.groupby(["drug_concept_id", "drug_source_value"]).size().rename("n").reset_index()
    products, mapping = product_map(keys, tables, knowledge, ck)
    del tables

    x = exposure(de, products, s, knowledge, ck)
    del de
    q = quality(x)
    rx = prescriptions(x, s)
    ep, pairs = episodes(rx, x, person, s)
    del rx
    by_age, by_drug = population_tables(ep, pairs, person, s, ck)
    outputs = {
        "episodes": ep[queries.episode_columns(s)].sort_values(list(KEYS["episodes"]), ignore_index=True),
        "by_year_age_sex": by_age[["year", "age_band", "sex", "population", "users", *queries.indicator_names(s)]],
        "by_year_drug": by_drug[["year", "drug", "users", *queries.indicator_names(s)]],
        "candidates": candidates(ep, s),
        "mapping": mapping,
        "quality": q[[*KEYS["quality"], "rows"]],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        df = outputs[name]
        if name not in ("episodes", "candidates"):
            df = df.sort_values(list(KEYS[name]), ignore_index=True)
            outputs[name] = df
        _write(df, out_dir / f"{name}.parquet")
    return outputs


# ---------------------------------------------------------------------------------------------------------------
# Checking


def _days(col: pd.Series) -> pd.Series:
    return (pd.to_datetime(col) - pd.Timestamp("1970-01-01")).dt.days


def compare_table(
    a: pa.Table, b: pa.Table, keys: tuple[str, ...], rel: float = 1e-9, noise: float = 1e-12, show: int = 0
) -> int:
    """Rows that differ between two output tables, matched on `keys` (as cohort_pandas.compare_detail).

    Whole numbers and texts exactly, reals within `rel` (relative), dates as days, missing equal to
    missing; reals within `noise` of each other or of missing (float noise around zero) are equal.
    Different column sets: every row differs.
    """
    if set(a.column_names) != set(b.column_names):
        if show:
            print(f"  columns differ: {sorted(set(a.column_names) ^ set(b.column_names))}")
        return int(max(a.num_rows, b.num_rows))
    kinds = {f.name: f.type for f in a.schema}
    m = a.to_pandas().merge(b.to_pandas(), on=list(keys), how="outer", suffixes=("_a", "_b"), indicator=True)
    one_side = (m["_merge"] != "both").to_numpy()
    bad = one_side.copy()
    per_column: dict[str, int] = {}
    for c in (c for c in a.column_names if c not in keys):
        u, v = m[f"{c}_a"], m[f"{c}_b"]
        both_missing = (u.isna() & v.isna()).to_numpy()
        if pa.types.is_date(kinds[c]) or pa.types.is_timestamp(kinds[c]):
            ok = (_days(u) == _days(v)).to_numpy() | both_missing
        elif pa.types.is_integer(kinds[c]):
            ok = (u.astype("Int64") == v.astype("Int64")).fillna(False).to_numpy(bool) | both_missing
        elif pa.types.is_floating(kinds[c]):
            fu, fv = u.to_numpy(float), v.to_numpy(float)
            with np.errstate(invalid="ignore"):
                diff = np.abs(fu - fv)
                ok = (diff <= rel * np.maximum(np.abs(fu), np.abs(fv))) | both_missing
                ok |= (diff <= noise) | (np.isnan(fu) & (np.abs(fv) <= noise)) | (np.isnan(fv) & (np.abs(fu) <= noise))
        else:
            ok = (u.astype(object).to_numpy() == v.astype(object).to_numpy()) | both_missing
        ok = np.asarray(ok, dtype=bool) | one_side
        if (~ok).any():
            per_column[c] = int((~ok).sum())
        bad |= ~ok
    if show and bad.any():
        print(f"  {int(bad.sum())} differing rows; by column: {per_column}; on one side only: {int(one_side.sum())}")
        with pd.option_context("display.precision", 17, "display.width", 200):
            print(m.loc[bad].head(show).T.to_string())
    return int(bad.sum())


def compare_outputs(a_dir: Path, b_dir: Path, show: int = 5) -> dict[str, int]:
    """Rows that differ per output (episodes, by_year_age_sex, by_year_drug, candidates, mapping, quality)
    between two output folders; 0 = equal."""
    differ: dict[str, int] = {}
    for name, keys in KEYS.items():
        a, b = pq.read_table(a_dir / f"{name}.parquet"), pq.read_table(b_dir / f"{name}.parquet")
        if show:
            print(f"{name}: {a.num_rows} vs {b.num_rows} rows")
        differ[name] = compare_table(a, b, keys, show=show)
    return differ


def main() -> None:
    """Run the plain baseline on a data set and compare it with a DuckDB output folder (timed)."""
    import argparse
    import resource
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--compare", type=Path, help="a run_cohort output folder to compare with")
    args = parser.parse_args()
    t0 = time.perf_counter()
    outputs = run_plain(args.source, args.out)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"run_plain: {len(outputs['episodes'])} episodes in {wall:.1f} s, peak RSS {peak:.2f} GB")
    if args.compare:
        print(compare_outputs(args.out, args.compare))


if __name__ == "__main__":
    main()
