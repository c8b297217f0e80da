"""The indicator SQL, written once: every engine runs these texts (only `Dialect` calls differ).

Tables read: `drug_exposure`, `person` (typed views), and lookups built in Python: `product_dim`
(the in-scope products, with codes and the doses per day at which the interdose rule fires),
`ingredient`, `route_group`, `route_map`, `route_words`, `sig_map`, `year_span`, `years`, `age_band`.
Rules (docs/cohort.md): duration from days_supply, else the end date, else quantity / DDD, else
one day; daily dose = quantity x strength / duration; a newer prescription of the same ingredient
supersedes the older from its first day; doses of different ingredients add up.

How it stays fast (docs/cohort.md, "Speed and memory"): drug_exposure is read once per group of
persons into `rx_order`, which holds numbers and small codes (ingredient; kind, route group, the
rules used and the window's findings packed in one INTEGER, `codes`), never text; names come back
from the small lookups in the small outputs. One window pass over each person's prescriptions
finds episode starts and superseded prescriptions. The prescriptions find their episode by a join
to the (few) episode starts on their way into the per-episode grouping; only those of the episodes
that need them one by one (two or more ingredients, prescribers, or an opioid alongside) are
stored with their episode. The day-by-day sweep runs only for episodes with two or more
ingredients; elsewhere the highest day total is the highest single daily dose and opioid days add
up pair by pair. Indicator flags travel as one bit mask through the per-person and per-year
groupings and are unpacked only in the outputs; persons with one episode (most) skip those
groupings; every range join is an equi-join on a small lookup (year_span, age_band).
"""

from __future__ import annotations

from dataclasses import dataclass

from benzotaper.cohort.engine import Dialect
from benzotaper.cohort.settings import CohortSettings

ORIGIN = "DATE '2000-01-01'"
LAST_DAY = "DATE '9999-12-31'"  # after every date a prescription can have (episode_start.next_start of the last)
BZD, OPIOID = 1, 2  # product_dim.kind and exposure.kind
KINDS = ("", "bzd", "opioid")
DURATION_RULES = ("days_supply", "end_date", "quantity_over_ddd", "single_day")
DOSE_RULES = ("computed", "missing_quantity", "missing_strength", "no_equivalence", "implausible", "not_applicable")
DOSES_RULES = ("sig", "units_per_day", "unknown")
MIN_DE = "1e-9"  # a day's total at or below this is float noise around 0 (no computable dose)
# A prescription's small codes travel packed in one INTEGER column `codes`: (lowest bit, width) of
# each. One column instead of eight, because the window pass sorts and every big intermediate copies
# each column (and DuckDB stores a TINYINT column slower than an INTEGER). route: the group's code.
CODES = {
    "kind": (0, 2),
    "route": (2, 5),
    "duration_rule": (7, 2),
    "dose_rule": (9, 3),
    "doses_rule": (12, 2),
    "interdose": (14, 1),
    "is_start": (15, 1),
    "overlap": (16, 2),
}
INTERDOSE_BITS = 31  # product_dim.interdose_mask (an INTEGER): bit n = the interdose rule fires at n doses a day
QUALITY_CODES = ("kind", "route", "duration_rule", "dose_rule", "doses_rule")  # the lowest bits of `codes`


@dataclass(frozen=True)
class Routes:
    """Route group codes the queries filter on (the `route_group` lookup names every code)."""

    analysed: tuple[int, ...]  # oral and oromucosal: these BZD rows form episodes
    parenteral: int  # opioids of every other route count for co-prescription
    unknown: int


def code(d: Dialect, name: str, column: str = "codes") -> str:
    """One small code out of a packed `codes` column."""
    shift, width = CODES[name]
    return d.bits(column, shift, width)


def pack(values: dict[str, str]) -> str:
    """Small codes (each within its width in CODES) packed into one INTEGER expression."""
    return " + ".join(f"({v}) * {1 << CODES[k][0]}" for k, v in values.items())


def distinct_keys() -> str:
    """One scan for every lookup built in Python: the distinct product keys with their row counts,
    and the distinct route_source_value and sig texts with their normalised (lower, trimmed) form.

    `part` says which: 0 product key, 1 route text, 2 sig text.
    """
    return """
SELECT CASE WHEN GROUPING(drug_concept_id) = 0 THEN 0 WHEN GROUPING(route_source_value) = 0 THEN 1 ELSE 2 END AS part,
       drug_concept_id, drug_source_value, route_source_value, lower(trim(route_source_value)) AS route_norm,
       sig, lower(trim(sig)) AS sig_norm, COUNT(*) AS n
FROM (SELECT COALESCE(drug_concept_id, 0) AS drug_concept_id, COALESCE(drug_source_value, '') AS drug_source_value,
             route_source_value, sig FROM drug_exposure) k
GROUP BY GROUPING SETS ((drug_concept_id, drug_source_value), (route_source_value), (sig))
"""


def vocabulary_lookup(ingredient_ids: list[int], has_ancestor: bool, has_strength: bool, has_concept: bool) -> str:
    """For each distinct drug concept: its BZD/opioid ingredient ancestor, strength and name, if known."""
    ids = ", ".join(str(i) for i in ingredient_ids) or "NULL"
    ancestor = (
        "LEFT JOIN concept_ancestor ca ON ca.descendant_concept_id = k.drug_concept_id"
        f" AND ca.ancestor_concept_id IN ({ids})"
        if has_ancestor
        else "LEFT JOIN (SELECT CAST(NULL AS BIGINT) AS ancestor_concept_id, CAST(NULL AS BIGINT) AS"
        " descendant_concept_id) ca ON 1 = 0"
    )
    strength_cols = (
        "ds.amount_value, ds.amount_unit_concept_id, ds.numerator_value, ds.numerator_unit_concept_id,"
        " ds.denominator_value, ds.denominator_unit_concept_id"
    )
    strength = (
        "LEFT JOIN drug_strength ds ON ds.drug_concept_id = k.drug_concept_id"
        " AND ds.ingredient_concept_id = COALESCE(ca.ancestor_concept_id, k.drug_concept_id)"
        if has_strength
        else ""
    )
    if not has_strength:
        strength_cols = ", ".join(f"CAST(NULL AS DOUBLE) AS {c}" for c in ("a", "b", "c", "d", "e", "f"))
    concept = "LEFT JOIN concept c ON c.concept_id = k.drug_concept_id" if has_concept else ""
    concept_cols = "c.concept_name, c.vocabulary_id, c.concept_code" if has_concept else "NULL, NULL, NULL"
    return (
        "WITH k AS (SELECT * FROM product_keys WHERE drug_concept_id <> 0) "
        f"SELECT k.drug_concept_id, ca.ancestor_concept_id, {strength_cols}, {concept_cols} "
        f"FROM k {ancestor} {strength} {concept}"
    )


def exposure(s: CohortSettings, d: Dialect, routes: Routes, where: str = "") -> str:
    """Every in-scope row (BZD and opioid), narrow: numbers and small codes only, no text.

    `ing` is the ingredient's code (a power of two for BZDs, so an episode's ingredient set is a bit
    mask; negative for opioids). kind, route group and the rules used are small codes, packed in
    `codes` (CODES): duration_rule indexes DURATION_RULES, dose_rule DOSE_RULES, doses_rule
    DOSES_RULES; `interdose` is 1 when the clinic's interdose-withdrawal rule fires for the
    ingredient at the doses per day. `analysed` is 1 for BZD/Z-drugs of the routes analysed with
    oral use (a column of its own, so that the engine estimates how many rows its filter keeps).
    `where` (on drug_exposure `e`) keeps the rows of one group of persons.
    """
    start, end, top = "e.drug_exposure_start_date", "e.drug_exposure_end_date", s.max_days_supply
    span = d.days(start, end)

    def ddd_days(q: str, unit: str, ddd: str) -> str:
        return f"CAST(floor(LEAST({q} * {unit} / {ddd}, {top}) + 0.5) AS INT)"

    conditions = (
        f"e.days_supply > 0 AND e.days_supply <= {top}",
        f"{end} > {start} AND {span} < {top}",
        f"e.quantity > 0 AND p.unit_mg > 0 AND p.ddd_mg > 0 AND {ddd_days('e.quantity', 'p.unit_mg', 'p.ddd_mg')} >= 1",
    )
    values = ("b.days_supply", "b.span + 1", ddd_days("b.quantity", "b.unit_mg", "b.ddd_mg"))
    # the rule first, then the duration it names: each condition is evaluated once
    rule = "CASE " + " ".join(f"WHEN {c} THEN {i}" for i, c in enumerate(conditions)) + f" ELSE {len(conditions)} END"
    duration = (
        "CAST(CASE b.duration_rule "
        + " ".join(f"WHEN {i} THEN {v}" for i, v in enumerate(values))
        + " ELSE 1 END AS INT)"
    )
    route = f"COALESCE(rm.route, rw.route, p.hint, {routes.unknown})"
    units = "x.solid = 1 AND x.quantity > 0 AND x.duration_rule <= 1"
    de, top_de = "x.raw_mg * x.de_per_mg", s.plausible_max_de_mg
    analysed_routes = ", ".join(str(r) for r in routes.analysed) or "NULL"
    # units a day, capped where the interdose mask ends (beyond it the rule is not looked up): an INT
    per_day = f"LEAST(x.quantity / x.duration, {INTERDOSE_BITS})"
    doses = f"COALESCE(x.sig_doses, CASE WHEN {units} THEN CAST(floor({per_day} + 0.5) AS INT) END)"
    at_risk = d.bits("y.interdose_mask", "y.doses_per_day", 1)
    interdose = f"CASE WHEN y.doses_per_day BETWEEN 0 AND {INTERDOSE_BITS - 1} THEN {at_risk} ELSE 0 END"
    codes = pack(
        {
            "kind": "y.kind",
            "route": "y.route",
            "duration_rule": "y.duration_rule",
            "dose_rule": "y.dose_rule",
            "doses_rule": "y.doses_rule",
            "interdose": interdose,
        }
    )
    return f"""
WITH b AS (
  SELECT e.person_id, e.drug_exposure_id, p.ing, p.kind, {route} AS route, {start} AS start_date,
         {rule} AS duration_rule, e.days_supply, {span} AS span, e.quantity, p.unit_mg, p.ddd_mg, p.solid,
         e.provider_id, p.de_per_mg, p.interdose_mask, sm.doses_per_day AS sig_doses
  FROM drug_exposure e
  JOIN product_dim p ON p.drug_concept_id = COALESCE(e.drug_concept_id, 0)
       AND p.drug_source_value = COALESCE(e.drug_source_value, '')
  LEFT JOIN route_map rm ON rm.route_concept_id = e.route_concept_id
  LEFT JOIN route_words rw ON rw.route_source_value = e.route_source_value
  LEFT JOIN sig_map sm ON sm.sig = e.sig
  {f"WHERE {where}" if where else ""}
), t AS (
  SELECT b.*, {duration} AS duration FROM b
), x AS (
  SELECT t.*, CASE WHEN t.quantity > 0 AND t.unit_mg > 0 THEN t.quantity * t.unit_mg / t.duration END AS raw_mg FROM t
), y AS (
  SELECT x.person_id, x.drug_exposure_id, x.ing, x.kind, x.route, x.start_date,
         {d.add_days("x.start_date", "x.duration - 1")} AS end_date, x.duration_rule, x.provider_id,
         CASE WHEN {de} > {top_de} THEN NULL ELSE {de} END AS daily_de,
         CASE WHEN x.kind = {OPIOID} THEN 5 WHEN x.quantity IS NULL OR x.quantity <= 0 THEN 1
              WHEN x.unit_mg IS NULL THEN 2 WHEN x.de_per_mg IS NULL THEN 3
              WHEN {de} > {top_de} THEN 4 ELSE 0 END AS dose_rule,
         {doses} AS doses_per_day, x.interdose_mask,
         CASE WHEN x.sig_doses IS NOT NULL THEN 0 WHEN {units} THEN 1 ELSE 2 END AS doses_rule
  FROM x
)
SELECT y.person_id, y.drug_exposure_id, y.ing, y.start_date, y.end_date, y.daily_de, y.provider_id,
       CASE WHEN y.kind = {BZD} AND y.route IN ({analysed_routes}) THEN 1 ELSE 0 END AS analysed,
       CAST({codes} AS INT) AS codes
FROM y
"""


def rx_order(s: CohortSettings, d: Dialect) -> str:
    """Every in-scope row (exposure) with one window pass over each person's analysed prescriptions.

    The analysed prescriptions are taken in order of start (then id); other rows ride along for the
    quality counts and the opioid days. Added to `codes`: `is_start`, the days without supply before
    this prescription (after the latest end among the person's earlier ones) exceed the gap, so it
    opens an episode; `overlap`, 0 when no later prescription starts before this one ends, 1 when
    the next one is the same ingredient, 2 when it is another ingredient: the next of the same
    ingredient may still start in time (fix_end). `eff_end`: the day before the next prescription
    starts, when that one is the same ingredient and starts before this one ends (a newer
    prescription supersedes the older from its first day).
    """
    part = "PARTITION BY person_id, analysed ORDER BY start_date, drug_exposure_id"
    is_start = f"CASE WHEN prev_end IS NULL OR {d.days('prev_end', 'start_date')} - 1 > {s.gap_days} THEN 1 ELSE 0 END"
    overlap = "CASE WHEN next_start IS NULL OR next_start > end_date THEN 0 WHEN next_ing = ing THEN 1 ELSE 2 END"
    return f"""
WITH o AS (
  SELECT x.*,
         max(end_date) OVER ({part} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end,
         lead(start_date) OVER ({part}) AS next_start, lead(ing) OVER ({part}) AS next_ing
  FROM exposure x
)
SELECT person_id, drug_exposure_id, ing, analysed, start_date, end_date,
       CASE WHEN next_ing = ing AND next_start <= end_date THEN {d.add_days("next_start", "-1")} ELSE end_date END
         AS eff_end,
       daily_de, provider_id, CAST(codes + {pack({"is_start": is_start, "overlap": overlap})} AS INT) AS codes
FROM o
"""


def _quality_mask() -> int:
    shift, width = CODES[QUALITY_CODES[-1]]
    assert all(CODES[c][0] < shift for c in QUALITY_CODES[:-1])
    return (1 << (shift + width)) - 1


def quality_counts() -> str:
    """Rows per ingredient and `codes` of kind, route group and rules (small)."""
    return f"SELECT ing, codes & {_quality_mask()} AS codes, COUNT(*) AS n FROM rx_order GROUP BY ing, 2"


def quality_sums() -> str:
    """The quality counts of all groups of persons added up."""
    return "SELECT ing, codes, SUM(n) AS n FROM quality_parts GROUP BY ing, codes"


def opioid(d: Dialect, routes: Routes) -> str:
    """Opioid prescriptions that count for co-prescription (every route but parenteral)."""
    kind, route = code(d, "kind"), code(d, "route")
    keep = f"{kind} = {OPIOID} AND {route} <> {routes.parenteral}"
    return f"SELECT person_id, start_date, end_date FROM rx_order WHERE {keep}"


def analysed_rx() -> str:
    """The analysed prescriptions of rx_order (the others are only counted)."""
    return "SELECT * FROM rx_order WHERE analysed = 1"


def fix_end(d: Dialect) -> str:
    """`eff_end` of prescriptions followed by another ingredient, from the next one of their own ingredient.

    Only persons with such an overlap are looked at, in each ingredient's own order; only the
    prescriptions that next one cuts short are kept (usually few or none).
    """
    same = "PARTITION BY r.person_id, r.ing ORDER BY r.start_date, r.drug_exposure_id"
    overlap = code(d, "overlap")
    return f"""
WITH u AS (
  SELECT DISTINCT person_id FROM rx WHERE {overlap} = 2
), s2 AS (
  SELECT r.drug_exposure_id, r.end_date, {code(d, "overlap", "r.codes")} AS overlap,
         lead(r.start_date) OVER ({same}) AS next_same
  FROM rx r JOIN u ON u.person_id = r.person_id
)
SELECT drug_exposure_id, {d.add_days("next_same", "-1")} AS eff_end FROM s2 WHERE overlap = 2 AND next_same <= end_date
"""


def episode_starts(d: Dialect) -> str:
    """The first prescription of each episode: the episode's number, the next episode's first day
    (LAST_DAY after the last episode, so that the join to it is two plain comparisons) and how many
    episodes the person has (small).

    (No two episodes of a person start on the same day: an episode starts after every earlier end.)
    """
    part = "PARTITION BY person_id ORDER BY start_date"
    return f"""
SELECT person_id, start_date, CAST(row_number() OVER ({part}) AS INT) AS episode_no,
       COALESCE(lead(start_date) OVER ({part}), {LAST_DAY}) AS next_start,
       CAST(COUNT(*) OVER (PARTITION BY person_id) AS INT) AS person_episodes
FROM rx WHERE {code(d, "is_start")} = 1
"""


def episode_base(d: Dialect) -> str:
    """Per episode: span, prescriptions, ingredient set (a bit per ingredient), doses, trend, prescribers.

    Each prescription joins its episode (the latest episode start on or before its own start) on
    the way into the grouping: the prescriptions are not stored again with their episode. Episodes
    whose lowest and highest provider_id differ have two or more prescribers (counted in
    `prescriber_peak`); the others one or none. `single_max_de` is the highest daily dose of one
    prescription, which is the highest day total where no sweep is needed (see sweep_episodes):
    rounded after the MAX, which gives the same as rounding each dose first (rounding keeps order).
    """
    x = d.days(ORIGIN, "r.start_date")
    days = f"{d.days('r.start_date', 'r.end_date')} + 1"
    eff_end = "COALESCE(f.eff_end, r.eff_end)"
    return f"""
SELECT s.person_id, s.episode_no, s.person_episodes, MIN(r.start_date) AS episode_start, MAX(r.end_date) AS episode_end,
       {d.days("MIN(r.start_date)", "MAX(r.end_date)")} + 1 AS duration_days,
       COUNT(*) AS prescriptions, bit_or(r.ing) AS ing_mask,
       SUM(r.daily_de * ({days})) AS cumulative_de_mg,
       SUM(CASE WHEN r.daily_de IS NOT NULL THEN {days} END) AS dosed_days,
       COUNT(r.daily_de) AS dosed_prescriptions,
       regr_slope(r.daily_de, {x}) AS slope_per_day,
       MIN(r.provider_id) AS min_provider, MAX(r.provider_id) AS max_provider,
       {code(d, "interdose", "bit_or(r.codes)")} AS interdose_risk,
       ROUND(MAX(CASE WHEN {eff_end} >= r.start_date AND r.daily_de > {MIN_DE} THEN r.daily_de END), 6) AS single_max_de
FROM rx r
JOIN episode_start s ON s.person_id = r.person_id AND r.start_date >= s.start_date AND r.start_date < s.next_start
LEFT JOIN fix_end f ON f.drug_exposure_id = r.drug_exposure_id
GROUP BY s.person_id, s.episode_no, s.person_episodes
"""


def mask_ingredient() -> str:
    """Each ingredient set that occurs (a bit mask) with its ingredients, one row per ingredient (small)."""
    return """
SELECT m.ing_mask, i.ingredient
FROM (SELECT DISTINCT ing_mask FROM episode_base) m JOIN ingredient i ON (m.ing_mask & i.bit) <> 0
"""


def opioid_islands() -> str:
    """Each person's opioid days as disjoint stretches (overlapping prescriptions merged; small)."""
    part = "PARTITION BY person_id ORDER BY start_date, end_date"
    return f"""
WITH o AS (
  SELECT person_id, start_date, end_date,
         max(end_date) OVER ({part} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
  FROM part_opioid
), i AS (
  SELECT person_id, start_date, end_date,
         SUM(CASE WHEN prev_end IS NULL OR start_date > prev_end THEN 1 ELSE 0 END)
           OVER ({part} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS island
  FROM o
)
SELECT person_id, MIN(start_date) AS start_date, MAX(end_date) AS end_date FROM i GROUP BY person_id, island
"""


def detail_episodes() -> str:
    """Episodes whose prescriptions are looked at one by one (small): two or more ingredients (`sweep`:
    segments), two or more prescribers (`several`: prescriber_peak), or an opioid stretch within the
    episode's span (opioid_days). Every other episode is done with episode_base alone."""
    sweep, several = "(g.ing_mask & (g.ing_mask - 1)) <> 0", "g.min_provider < g.max_provider"
    return f"""
WITH o AS (
  SELECT DISTINCT g.person_id, g.episode_no
  FROM episode_base g JOIN opioid_islands i ON i.person_id = g.person_id
       AND i.start_date <= g.episode_end AND i.end_date >= g.episode_start
)
SELECT g.person_id, g.episode_no, g.episode_start, g.episode_end,
       CASE WHEN {sweep} THEN 1 ELSE 0 END AS sweep, CASE WHEN {several} THEN 1 ELSE 0 END AS several
FROM episode_base g LEFT JOIN o ON o.person_id = g.person_id AND o.episode_no = g.episode_no
WHERE {sweep} OR {several} OR o.person_id IS NOT NULL
"""


def episode_rx() -> str:
    """The prescriptions of the detail episodes, with their episode and `eff_end`.

    (A person's episodes cover disjoint stretches of start days: the next one starts after every
    earlier end, so a prescription belongs to the episode whose first and last day hold its start.)
    """
    return """
SELECT r.person_id, g.episode_no, r.start_date, COALESCE(f.eff_end, r.eff_end) AS eff_end, r.daily_de, r.provider_id
FROM rx r
JOIN detail_episodes g ON g.person_id = r.person_id AND r.start_date >= g.episode_start
     AND r.start_date <= g.episode_end
LEFT JOIN fix_end f ON f.drug_exposure_id = r.drug_exposure_id
"""


def opioid_days(d: Dialect) -> str:
    """Days with a BZD and an opioid, per episode, where the episode's prescriptions never overlap.

    (One ingredient: once superseded its prescriptions are disjoint, as are the opioid stretches,
    so the days both cover add up pair by pair.)
    """
    first, last = "GREATEST(r.start_date, o.start_date)", "LEAST(r.eff_end, o.end_date)"
    return f"""
SELECT r.person_id, r.episode_no, SUM({d.days(first, last)} + 1) AS opioid_overlap_days
FROM episode_rx r JOIN opioid_islands o ON o.person_id = r.person_id
     AND o.start_date <= r.eff_end AND o.end_date >= r.start_date
WHERE r.eff_end >= r.start_date
GROUP BY r.person_id, r.episode_no
"""


def sweep_episodes() -> str:
    """Episodes whose day totals need the sweep: two or more ingredients (small).

    In every other episode the prescriptions never overlap once superseded, so the highest day
    total is the highest single daily dose, no day has two BZDs, and opioid days add up (opioid_days).
    """
    return "SELECT person_id, episode_no, episode_start, episode_end FROM detail_episodes WHERE sweep = 1"


def segments(d: Dialect) -> str:
    """Sweep over each `sweep_episodes` episode's start/stop events: stretches of days with their totals.

    Same-day events are not merged: stretches between them last 0 days and are dropped, and the
    last event of a day carries the day's totals.
    """
    part = "PARTITION BY person_id, episode_no ORDER BY day"
    run = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    return f"""
WITH b AS (
  SELECT r.person_id, r.episode_no, r.start_date, r.eff_end, COALESCE(r.daily_de, 0.0) AS de
  FROM episode_rx r JOIN sweep_episodes s ON s.person_id = r.person_id AND s.episode_no = r.episode_no
  WHERE r.eff_end >= r.start_date
), o AS (
  SELECT s.person_id, s.episode_no, o.start_date, o.end_date
  FROM part_opioid o JOIN sweep_episodes s ON s.person_id = o.person_id
       AND o.start_date <= s.episode_end AND o.end_date >= s.episode_start
), ev AS (
  SELECT person_id, episode_no, start_date AS day, de AS d_de, 1 AS d_b, 0 AS d_o FROM b
  UNION ALL SELECT person_id, episode_no, {d.add_days("eff_end", "1")}, -de, -1, 0 FROM b
  UNION ALL SELECT person_id, episode_no, start_date, 0.0, 0, 1 FROM o
  UNION ALL SELECT person_id, episode_no, {d.add_days("end_date", "1")}, 0.0, 0, -1 FROM o
), lv AS (
  SELECT person_id, episode_no, day, lead(day) OVER ({part}) AS next_day, SUM(d_de) OVER ({part} {run}) AS de,
         SUM(d_b) OVER ({part} {run}) AS nb, SUM(d_o) OVER ({part} {run}) AS n_o
  FROM ev
)
SELECT person_id, episode_no, {d.days("day", "next_day")} AS days, de, nb, n_o
FROM lv WHERE nb >= 1 AND next_day > day
"""


def prescriber_peak(s: CohortSettings, d: Dialect) -> str:
    """Distinct prescribers of an episode, and the most of them within any `prescriber_window_days` window.

    Each prescription keeps its prescriber 'active' for the window. A prescriber's active stretches
    are merged: a prescription opens one when the same prescriber's previous one is out of the
    window, and closes it when the next one is. A sweep counts how many are active at once (exact,
    no self-join). Only episodes with two or more prescribers are looked at.
    """
    w = s.prescriber_window_days
    part = "PARTITION BY person_id, episode_no, provider_id ORDER BY start_date"
    return f"""
WITH r AS (
  SELECT r.person_id, r.episode_no, r.provider_id, r.start_date
  FROM episode_rx r JOIN detail_episodes g ON g.person_id = r.person_id AND g.episode_no = r.episode_no
  WHERE r.provider_id IS NOT NULL AND g.several = 1
), p AS (
  SELECT r.*, lag(start_date) OVER ({part}) AS prev_start, lead(start_date) OVER ({part}) AS next_start FROM r
), ev AS (
  SELECT person_id, episode_no, start_date AS day, 1 AS delta, CASE WHEN prev_start IS NULL THEN 1 ELSE 0 END AS first
  FROM p WHERE prev_start IS NULL OR {d.days("prev_start", "start_date")} >= {w}
  UNION ALL
  SELECT person_id, episode_no, {d.add_days("start_date", str(w))}, -1, 0
  FROM p WHERE next_start IS NULL OR {d.days("start_date", "next_start")} >= {w}
), run AS (
  SELECT person_id, episode_no, first, SUM(delta) OVER (PARTITION BY person_id, episode_no ORDER BY day, delta
         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS active
  FROM ev
)
SELECT person_id, episode_no, SUM(first) AS prescribers, MAX(active) AS window_prescribers
FROM run GROUP BY person_id, episode_no
"""


def indicator_conditions(s: CohortSettings) -> dict[str, str]:
    """Each indicator (indicator_names order) as a condition on an episode's columns `g.`."""
    esc = (
        f"g.duration_days >= {s.escalation_min_days} AND g.dosed_prescriptions >= "
        f"{s.escalation_min_prescriptions} AND g.slope_per_day * 365.0 >= {s.escalation_per_year} * "
        f"(g.cumulative_de_mg / g.dosed_days)"
    )
    conditions = {
        **{f"long_term_{t.name}": f"g.duration_days > {t.days}" for t in s.long_term},
        "high_dose": f"g.max_daily_de_mg > {s.high_dose_de_mg}",
        "escalation": esc,
        "opioid_coprescription": "g.opioid_overlap_days > 0",
        "concurrent_bzd": "g.concurrent_days > 0",
        "multiple_prescribers": f"g.window_prescribers >= {s.min_prescribers}",
        "interdose_risk": "g.interdose_risk = 1",
    }
    assert list(conditions) == indicator_names(s)
    return conditions


def episodes(s: CohortSettings, d: Dialect) -> str:
    """One row per episode: span, doses, sweep results, prescribers, the person's birth year and sex,
    and the indicators as one bit mask `flags` (bit i: indicator_names(s)[i]), so that grouping takes
    one bit_or instead of a MAX per indicator and the table stays narrow (`episode_output` unpacks
    them, and names the ingredient set `ing_mask`)."""
    one = "g.min_provider = g.max_provider"
    prescribers = f"CASE WHEN g.min_provider IS NULL THEN 0 WHEN {one} THEN 1 ELSE pp.prescribers END"
    window = f"CASE WHEN g.min_provider IS NULL THEN 0 WHEN {one} THEN 1 ELSE pp.window_prescribers END"
    # the day total is rounded to 1 microgram so a dose of exactly 40 mg is not 40.00000000000001 on one engine
    peak = "CASE WHEN se.person_id IS NULL THEN g.single_max_de ELSE sw.max_daily_de_mg END"
    opioid = "CASE WHEN se.person_id IS NULL THEN od.opioid_overlap_days ELSE sw.opioid_overlap_days END"
    flags = " + ".join(
        f"CASE WHEN {c} THEN {1 << i} ELSE 0 END" for i, c in enumerate(indicator_conditions(s).values())
    )
    return f"""
WITH sw AS (
  SELECT person_id, episode_no, MAX(CASE WHEN de > {MIN_DE} THEN ROUND(de, 6) END) AS max_daily_de_mg,
         SUM(CASE WHEN nb >= 2 THEN days ELSE 0 END) AS concurrent_days,
         SUM(CASE WHEN n_o >= 1 THEN days ELSE 0 END) AS opioid_overlap_days
  FROM segments GROUP BY person_id, episode_no
), e AS (
  SELECT g.person_id, g.episode_no, g.person_episodes, g.episode_start, g.episode_end, g.duration_days,
         g.prescriptions, g.ing_mask, g.cumulative_de_mg, g.dosed_days, g.dosed_prescriptions, g.slope_per_day,
         g.interdose_risk,
         {peak} AS max_daily_de_mg, COALESCE(sw.concurrent_days, 0) AS concurrent_days,
         COALESCE({opioid}, 0) AS opioid_overlap_days, {prescribers} AS prescribers,
         {window} AS window_prescribers
  FROM episode_base g
  LEFT JOIN sweep_episodes se ON se.person_id = g.person_id AND se.episode_no = g.episode_no
  LEFT JOIN sw ON sw.person_id = g.person_id AND sw.episode_no = g.episode_no
  LEFT JOIN opioid_days od ON od.person_id = g.person_id AND od.episode_no = g.episode_no
  LEFT JOIN prescriber_peak pp ON pp.person_id = g.person_id AND pp.episode_no = g.episode_no
)
SELECT g.person_id, g.episode_no, g.episode_start, g.episode_end, g.duration_days, g.prescriptions, g.ing_mask,
       g.cumulative_de_mg, g.dosed_days, g.max_daily_de_mg,
       CASE WHEN g.dosed_days > 0 THEN g.cumulative_de_mg / g.dosed_days END AS mean_daily_de_mg,
       CASE WHEN g.dosed_prescriptions >= 2 AND g.dosed_days > 0 AND g.cumulative_de_mg > 0
            THEN g.slope_per_day * 365.0 / (g.cumulative_de_mg / g.dosed_days) END AS trend_per_year,
       g.concurrent_days, g.opioid_overlap_days, g.prescribers, g.window_prescribers, g.interdose_risk,
       {flags} AS flags, p.year_of_birth, p.gender_concept_id, g.person_episodes
FROM e g LEFT JOIN person p ON p.person_id = g.person_id
"""


def unpacked(s: CohortSettings, table: str, skip: tuple[str, ...] = ()) -> str:
    """The rows of `table` with each indicator as a 0/1 column, out of its `flags` bit mask (but `skip`)."""
    return f"SELECT t.*, {_unpack(s, 't.flags', skip=skip)} FROM {table} t"


def episode_output(s: CohortSettings, d: Dialect) -> str:
    """The episodes output: the columns of episode_columns, with the ingredient names of each set."""
    cols = ", ".join("n.ingredients" if c == "ingredients" else f"e.{c}" for c in episode_columns(s))
    return f"""
WITH m AS (SELECT DISTINCT ing_mask FROM episodes), names AS (
  SELECT m.ing_mask, {d.sorted_set("i.ingredient")} AS ingredients
  FROM m JOIN ingredient i ON (m.ing_mask & i.bit) <> 0 GROUP BY m.ing_mask
)
SELECT {cols} FROM ({unpacked(s, "episodes", skip=("interdose_risk",))}) e JOIN names n ON n.ing_mask = e.ing_mask
"""


def _unpack(s: CohortSettings, mask: str, agg: str = "", skip: tuple[str, ...] = ()) -> str:
    """The indicator columns out of a flag bit mask (`agg` SUM counts them over rows; `skip`: leave out)."""
    cols = []
    for i, f in enumerate(indicator_names(s)):
        one = f"CASE WHEN ({mask} & {1 << i}) <> 0 THEN 1 ELSE 0 END"
        if f not in skip:
            cols.append(f"{agg}({one}) AS {f}" if agg else f"{one} AS {f}")
    return ", ".join(cols)


def flag_sums(s: CohortSettings) -> str:
    """How many rows have each indicator (indicator_names order), from the `flags` bit mask."""
    return _unpack(s, "flags", agg="SUM")


def episode_columns(s: CohortSettings) -> list[str]:
    """The columns of the episodes output, in order."""
    return [
        "person_id", "episode_no", "episode_start", "episode_end", "duration_days", "prescriptions", "ingredients",
        "cumulative_de_mg", "dosed_days", "max_daily_de_mg", "mean_daily_de_mg", "trend_per_year", "concurrent_days",
        "opioid_overlap_days", "prescribers", "window_prescribers", "interdose_risk",
        *(f"long_term_{t.name}" for t in s.long_term),
        "high_dose", "escalation", "concurrent_bzd", "opioid_coprescription", "multiple_prescribers",
    ]  # fmt: skip


def indicator_names(s: CohortSettings) -> list[str]:
    """The 0/1 episode columns counted in the population tables, in report order."""
    return [
        *(f"long_term_{t.name}" for t in s.long_term),
        "high_dose",
        "escalation",
        "opioid_coprescription",
        "concurrent_bzd",
        "multiple_prescribers",
        "interdose_risk",
    ]


def person_histogram(bins: int) -> str:
    """Rows of drug_exposure per stretch of person_id (`bins` equal stretches from the lowest id to the highest;
    in DOUBLE, so that ids near the ends of BIGINT do not overflow the subtraction)."""
    return f"""
WITH r AS (SELECT MIN(person_id) AS lo, MAX(person_id) AS hi FROM drug_exposure)
SELECT r.lo, r.hi,
       LEAST(CAST(floor((CAST(e.person_id AS DOUBLE) - r.lo) * {bins} / (CAST(r.hi AS DOUBLE) - r.lo + 1)) AS BIGINT),
             {bins - 1}) AS bin,
       COUNT(*) AS n
FROM drug_exposure e CROSS JOIN r WHERE e.person_id IS NOT NULL GROUP BY r.lo, r.hi, 3
"""


def in_range(person: str, first: int | None, after: int | None) -> str:
    """Rows of one group of persons: person_id from `first` up to (not including) `after`.

    The first group (first is None) also takes rows without a person_id. Ranges, not a hash, so
    that a drug_exposure stored in person order is read only where the group's rows are.
    """
    conditions = [
        c for c in (first is not None and f"{person} >= {first}", after is not None and f"{person} < {after}") if c
    ]
    if first is None:
        return f"({' AND '.join(conditions) or 'TRUE'} OR {person} IS NULL)"
    return " AND ".join(conditions)


def _one_or_grouped(select_one: str, select_grouped: str, source: str, group: str) -> str:
    """Rows of persons with one episode as they are (`select_one`), the others grouped (`select_grouped`).

    Most users have one episode: for them a grouping by person would only copy each row through a
    hash table, so only the others are grouped (the two selects give the same columns and types).
    """
    return f"""
SELECT {select_one} FROM {source} WHERE e.person_episodes = 1
UNION ALL
SELECT {select_grouped} FROM {source} WHERE e.person_episodes > 1 GROUP BY {group}
"""


def person_years() -> str:
    """Each user's flags (bit mask) per calendar year, from every episode overlapping that year, the
    lowest and highest ingredient set of those episodes, and the user's birth year and sex.

    (`year_span` lists the years from y0 to y1 for every pair: an equi-join, not a range join.)
    """
    return _one_or_grouped(
        "e.person_id, y.year, e.flags, e.ing_mask AS min_mask, e.ing_mask AS max_mask, e.year_of_birth,"
        " e.gender_concept_id",
        "e.person_id, y.year, bit_or(e.flags) AS flags, MIN(e.ing_mask) AS min_mask, MAX(e.ing_mask) AS max_mask,"
        " MIN(e.year_of_birth) AS year_of_birth, MIN(e.gender_concept_id) AS gender_concept_id",
        "episodes_part e JOIN year_span y ON y.y0 = year(e.episode_start) AND y.y1 = year(e.episode_end)",
        "e.person_id, y.year",
    )


def person_summary() -> str:
    """One row per user: worst value of each indicator over all episodes (`flags`) and the latest episode."""
    one = (
        "e.person_id, e.year_of_birth, e.gender_concept_id, CAST(1 AS BIGINT) AS episodes,"
        " e.episode_start AS first_start, e.episode_end AS last_end, e.duration_days AS longest_episode_days,"
        " e.max_daily_de_mg, e.cumulative_de_mg, e.opioid_overlap_days, e.window_prescribers, e.trend_per_year,"
        " e.flags"
    )
    grouped = (
        "e.person_id, MIN(e.year_of_birth) AS year_of_birth, MIN(e.gender_concept_id) AS gender_concept_id,"
        " COUNT(*) AS episodes, MIN(e.episode_start) AS first_start, MAX(e.episode_end) AS last_end,"
        " MAX(e.duration_days) AS longest_episode_days, MAX(e.max_daily_de_mg) AS max_daily_de_mg,"
        " SUM(e.cumulative_de_mg) AS cumulative_de_mg, MAX(e.opioid_overlap_days) AS opioid_overlap_days,"
        " MAX(e.window_prescribers) AS window_prescribers, MAX(e.trend_per_year) AS trend_per_year,"
        " bit_or(e.flags) AS flags"
    )
    return _one_or_grouped(one, grouped, "episodes_part e", "e.person_id")


def _sex(male: int, female: int, column: str = "gender_concept_id") -> str:
    return f"CASE WHEN {column} = {male} THEN 'M' WHEN {column} = {female} THEN 'F' ELSE 'unknown' END"


def users_by_year_age_sex(s: CohortSettings, male: int, female: int) -> str:
    """Users and indicator counts per year x age band x sex, for the persons of one part (sums add up).

    (`age_band` names the band of every age: an equi-join.)
    """
    return f"""
SELECT py.year, b.label AS age_band, {_sex(male, female, "py.gender_concept_id")} AS sex, COUNT(*) AS users,
       {_unpack(s, "py.flags", agg="SUM")}
FROM person_years py JOIN age_band b ON b.age = py.year - py.year_of_birth
GROUP BY py.year, b.label, {_sex(male, female, "py.gender_concept_id")}
"""


def mixed_years() -> str:
    """The users' years whose episodes have more than one ingredient set (few; a table of its own so
    that the engine joins the episodes to it, not the other way round)."""
    return "SELECT person_id, year FROM person_years WHERE min_mask < max_mask"


def users_by_year_drug(s: CohortSettings) -> str:
    """Users of each ingredient per year and how many meet each indicator, for the persons of one part.

    Where all of a user's episodes in a year have the same ingredient set (the usual case) the
    user's flags for each of those ingredients are the year's flags (person_years); otherwise they
    come from the episodes with that ingredient.
    """
    return f"""
WITH mixed AS (
  SELECT e.person_id, y.year, m.ingredient, bit_or(e.flags) AS flags
  FROM mixed_years py JOIN episodes_part e ON e.person_id = py.person_id
  JOIN year_span y ON y.y0 = year(e.episode_start) AND y.y1 = year(e.episode_end) AND y.year = py.year
  JOIN mask_ingredient m ON m.ing_mask = e.ing_mask
  GROUP BY e.person_id, y.year, m.ingredient
), pyd AS (
  SELECT py.year, m.ingredient, py.flags FROM person_years py JOIN mask_ingredient m ON m.ing_mask = py.min_mask
  WHERE py.min_mask = py.max_mask
  UNION ALL
  SELECT year, ingredient, flags FROM mixed
)
SELECT year, ingredient AS drug, COUNT(*) AS users, {_unpack(s, "flags", agg="SUM")} FROM pyd GROUP BY year, ingredient
"""


def union_all(names: list[str]) -> str:
    """The rows of tables with the same columns, one after the other."""
    return " UNION ALL ".join(f"SELECT * FROM {n}" for n in names)


def by_year_age_sex(s: CohortSettings, male: int, female: int) -> str:
    """Users and indicator counts per year x age band x sex, with the population as denominator."""
    sums = ", ".join(f"SUM({f}) AS {f}" for f in indicator_names(s))
    zeros = ", ".join(f"COALESCE(u.{f}, 0) AS {f}" for f in indicator_names(s))
    sex = _sex(male, female)
    return f"""
WITH cohorts AS (
  SELECT year_of_birth, {sex} AS sex, COUNT(*) AS n FROM person GROUP BY year_of_birth, {sex}
), pop AS (
  SELECT y.year, b.label AS age_band, c.sex, SUM(c.n) AS population
  FROM cohorts c JOIN years y ON c.year_of_birth <= y.year
  JOIN age_band b ON b.age = y.year - c.year_of_birth
  GROUP BY y.year, b.label, c.sex
), users AS (
  SELECT year, age_band, sex, SUM(users) AS users, {sums} FROM users_age_sex GROUP BY year, age_band, sex
)
SELECT pop.year, pop.age_band, pop.sex, pop.population, COALESCE(u.users, 0) AS users, {zeros}
FROM pop LEFT JOIN users u ON u.year = pop.year AND u.age_band = pop.age_band AND u.sex = pop.sex
"""


def by_year_drug(s: CohortSettings) -> str:
    """Users of each ingredient per year and how many of them meet each indicator."""
    sums = ", ".join(f"SUM({f}) AS {f}" for f in indicator_names(s))
    return f"SELECT year, drug, SUM(users) AS users, {sums} FROM users_drug GROUP BY year, drug"


def _decode(column: str, names: tuple[str, ...]) -> str:
    whens = " ".join(f"WHEN {i} THEN '{n}'" for i, n in enumerate(names))
    return f"CASE {column} {whens} END"


def quality(d: Dialect) -> str:
    """How each in-scope row's duration and dose were found, by kind and route group (codes as names)."""

    def name(field: str, names: tuple[str, ...]) -> str:
        return _decode(code(d, field, "q.codes"), names)

    return f"""
SELECT {name("kind", KINDS)} AS kind, r.route_group, i.ingredient,
       {name("duration_rule", DURATION_RULES)} AS duration_rule, {name("dose_rule", DOSE_RULES)} AS dose_rule,
       {name("doses_rule", DOSES_RULES)} AS doses_rule, q.n AS rows
FROM quality_counts q JOIN route_group r ON r.route = {code(d, "route", "q.codes")} JOIN ingredient i ON i.ing = q.ing
"""
