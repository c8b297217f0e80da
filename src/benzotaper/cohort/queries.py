"""The indicator SQL, written once: every engine runs these texts (only `Dialect` calls differ).

Tables read: `drug_exposure`, `person` (typed views), and lookups built in Python: `product_map`,
`ingredient`, `route_map`, `route_words`, `sig_map`, `interdose`, `years`, `age_bands`.
Rules (docs/cohort.md): duration from days_supply, else the end date, else quantity / DDD, else
one day; daily dose = quantity x strength / duration; a newer prescription of the same ingredient
supersedes the older from its first day; doses of different ingredients add up.
"""

from __future__ import annotations

from benzotaper.cohort.engine import Dialect
from benzotaper.cohort.settings import CohortSettings

ORIGIN = "DATE '2000-01-01'"


def typed(table: str, columns: dict[str, str], present: set[str], dialect: Dialect) -> str:
    """Project a raw view onto the OMOP columns we use, with types; absent optional columns are NULL."""
    parts = []
    for name, portable in columns.items():
        kind = dialect.type(portable)
        expr = f"CAST({name} AS {kind})" if name in present else f"CAST(NULL AS {kind})"
        parts.append(f"{expr} AS {name}")
    return f"SELECT {', '.join(parts)} FROM {table}"


def product_keys() -> str:
    """Distinct (concept, source value) pairs and their row counts: mapped once, in Python."""
    return (
        "SELECT COALESCE(drug_concept_id, 0) AS drug_concept_id, COALESCE(drug_source_value, '') AS drug_source_value,"
        " COUNT(*) AS n FROM drug_exposure GROUP BY COALESCE(drug_concept_id, 0), COALESCE(drug_source_value, '')"
    )


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
        "WITH k AS (SELECT DISTINCT drug_concept_id FROM drug_exposure WHERE drug_concept_id IS NOT NULL"
        " AND drug_concept_id <> 0) "
        f"SELECT k.drug_concept_id, ca.ancestor_concept_id, {strength_cols}, {concept_cols} "
        f"FROM k {ancestor} {strength} {concept}"
    )


def exposure(s: CohortSettings, d: Dialect) -> str:
    """Every in-scope row: ingredient, route group, duration and daily dose with the rule used."""
    start, end = "e.drug_exposure_start_date", "e.drug_exposure_end_date"
    ddd_days = f"CAST(floor(LEAST(e.quantity * p.unit_mg / i.ddd_mg, {s.max_days_supply}) + 0.5) AS INT)"
    duration = (
        f"CASE WHEN e.days_supply > 0 AND e.days_supply <= {s.max_days_supply} THEN e.days_supply"
        f" WHEN {end} > {start} AND {d.days(start, end)} < {s.max_days_supply} THEN {d.days(start, end)} + 1"
        f" WHEN e.quantity > 0 AND p.unit_mg > 0 AND i.ddd_mg > 0 AND {ddd_days} >= 1 THEN {ddd_days}"
        f" ELSE 1 END"
    )
    rule = (
        f"CASE WHEN e.days_supply > 0 AND e.days_supply <= {s.max_days_supply} THEN 'days_supply'"
        f" WHEN {end} > {start} AND {d.days(start, end)} < {s.max_days_supply} THEN 'end_date'"
        f" WHEN e.quantity > 0 AND p.unit_mg > 0 AND i.ddd_mg > 0 AND {ddd_days} >= 1 THEN 'quantity_over_ddd'"
        f" ELSE 'single_day' END"
    )
    route = "COALESCE(rm.route_group, rw.route_group, p.route_hint, 'unknown')"
    return f"""
WITH base AS (
  SELECT e.drug_exposure_id, e.person_id, p.ingredient, p.kind, {route} AS route_group,
         {start} AS start_date, {duration} AS duration, {rule} AS duration_rule,
         e.quantity, p.unit_mg, p.form, e.provider_id, e.sig, i.de_per_mg
  FROM drug_exposure e
  JOIN product_map p ON p.drug_concept_id = COALESCE(e.drug_concept_id, 0)
       AND p.drug_source_value = COALESCE(e.drug_source_value, '')
  LEFT JOIN ingredient i ON i.ingredient = p.ingredient
  LEFT JOIN route_map rm ON rm.route_concept_id = e.route_concept_id
  LEFT JOIN route_words rw ON rw.route_source_value = lower(trim(e.route_source_value))
  WHERE p.kind IN ('bzd', 'opioid')
), dosed AS (
  SELECT b.*, {d.add_days("b.start_date", "b.duration - 1")} AS end_date,
         CASE WHEN b.quantity > 0 AND b.unit_mg > 0 THEN b.quantity * b.unit_mg / b.duration END AS raw_mg
  FROM base b
)
SELECT x.drug_exposure_id, x.person_id, x.ingredient, x.kind, x.route_group, x.start_date, x.end_date,
       x.duration, x.duration_rule, x.provider_id,
       CASE WHEN x.raw_mg * x.de_per_mg > {s.plausible_max_de_mg} THEN NULL ELSE x.raw_mg END AS daily_mg,
       CASE WHEN x.raw_mg * x.de_per_mg > {s.plausible_max_de_mg} THEN NULL ELSE x.raw_mg * x.de_per_mg END AS daily_de,
       CASE WHEN x.kind = 'opioid' THEN 'not_applicable'
            WHEN x.quantity IS NULL OR x.quantity <= 0 THEN 'missing_quantity'
            WHEN x.unit_mg IS NULL THEN 'missing_strength'
            WHEN x.de_per_mg IS NULL THEN 'no_equivalence'
            WHEN x.raw_mg * x.de_per_mg > {s.plausible_max_de_mg} THEN 'implausible'
            ELSE 'computed' END AS dose_rule,
       COALESCE(sm.doses_per_day,
                CASE WHEN x.form = 'solid' AND x.quantity > 0 AND x.duration_rule IN ('days_supply', 'end_date')
                     THEN CAST(floor(x.quantity / x.duration + 0.5) AS INT) END) AS doses_per_day,
       CASE WHEN sm.doses_per_day IS NOT NULL THEN 'sig' WHEN x.form = 'solid' AND x.quantity > 0
            AND x.duration_rule IN ('days_supply', 'end_date') THEN 'units_per_day' ELSE 'unknown' END AS doses_rule
FROM dosed x
LEFT JOIN sig_map sm ON sm.sig = lower(trim(x.sig))
"""


def bzd_rx(s: CohortSettings, d: Dialect) -> str:
    """Oral BZD/Z-drug prescriptions with their episode number and superseded end (`eff_end`)."""
    order = "ORDER BY start_date, drug_exposure_id"
    prev_end = f"max(end_date) OVER (PARTITION BY person_id {order} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
    return f"""
WITH i AS (
  SELECT x.drug_exposure_id, x.person_id, x.ingredient, x.start_date, x.end_date, x.duration, x.daily_de,
         x.provider_id, COALESCE(ir.at_risk, 0) AS interdose
  FROM exposure x
  LEFT JOIN interdose ir ON ir.ingredient = x.ingredient AND ir.doses_per_day = x.doses_per_day
  WHERE x.kind = 'bzd' AND x.route_group IN ('oral', 'oromucosal')
), o AS (
  SELECT i.*, {prev_end} AS prev_end,
         lead(start_date) OVER (PARTITION BY person_id, ingredient {order}) AS next_same
  FROM i
), f AS (
  SELECT o.*, CASE WHEN prev_end IS NULL OR {d.days("prev_end", "start_date")} - 1 > {s.gap_days} THEN 1 ELSE 0 END
         AS is_start
  FROM o
)
SELECT f.drug_exposure_id, f.person_id, f.ingredient, f.start_date, f.end_date, f.duration, f.daily_de,
       f.provider_id, f.interdose, f.is_start,
       SUM(is_start) OVER (PARTITION BY person_id {order}
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS episode_no,
       CASE WHEN next_same IS NOT NULL AND next_same <= end_date THEN {d.add_days("next_same", "-1")}
            ELSE end_date END AS eff_end
FROM f
"""


def episode_base(d: Dialect) -> str:
    """Per episode: span, prescriptions, cumulative dose, dose trend, distinct prescribers."""
    x = d.days(ORIGIN, "start_date")
    return f"""
SELECT person_id, episode_no, MIN(start_date) AS episode_start, MAX(end_date) AS episode_end,
       {d.days("MIN(start_date)", "MAX(end_date)")} + 1 AS duration_days,
       COUNT(*) AS prescriptions, {d.sorted_set("ingredient")} AS ingredients,
       SUM(daily_de * duration) AS cumulative_de_mg,
       SUM(CASE WHEN daily_de IS NOT NULL THEN duration END) AS dosed_days,
       COUNT(daily_de) AS dosed_prescriptions,
       regr_slope(daily_de, {x}) AS slope_per_day,
       COUNT(DISTINCT provider_id) AS prescribers,
       MAX(interdose) AS interdose_risk
FROM bzd_rx GROUP BY person_id, episode_no
"""


def segments(d: Dialect) -> str:
    """Sweep over start/stop events: each stretch of days with its total daily dose and counts.

    Episode starts are events too, so the running count of them numbers each stretch's episode.
    Same-day events are not merged: stretches between them last 0 days and are dropped, and the
    last event of a day carries the day's totals.
    """
    bzd = "bzd_rx WHERE eff_end >= start_date"
    opioid = "exposure WHERE kind = 'opioid' AND route_group <> 'parenteral'"
    part = "PARTITION BY person_id ORDER BY day"
    run = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    return f"""
WITH ev AS (
  SELECT person_id, start_date AS day, COALESCE(daily_de, 0.0) AS d_de, 1 AS d_b, 0 AS d_o, 0 AS d_e FROM {bzd}
  UNION ALL SELECT person_id, {d.add_days("eff_end", "1")}, -COALESCE(daily_de, 0.0), -1, 0, 0 FROM {bzd}
  UNION ALL SELECT person_id, start_date, 0.0, 0, 0, 1 FROM bzd_rx WHERE is_start = 1
  UNION ALL SELECT person_id, start_date, 0.0, 0, 1, 0 FROM {opioid}
  UNION ALL SELECT person_id, {d.add_days("end_date", "1")}, 0.0, 0, -1, 0 FROM {opioid}
), lv AS (
  SELECT person_id, day, lead(day) OVER ({part}) AS next_day,
         SUM(d_de) OVER ({part} {run}) AS de, SUM(d_b) OVER ({part} {run}) AS nb,
         SUM(d_o) OVER ({part} {run}) AS n_o, SUM(d_e) OVER ({part} {run}) AS episode_no
  FROM ev
)
SELECT person_id, episode_no, {d.days("day", "next_day")} AS days, de, nb, n_o
FROM lv WHERE nb >= 1 AND next_day > day
"""


def prescriber_peak(s: CohortSettings, d: Dialect) -> str:
    """Most distinct prescribers within any `prescriber_window_days` window of an episode.

    Each prescription keeps its prescriber 'active' for the window; per prescriber the active
    stretches are merged, and a sweep counts how many are active at once (exact, no self-join).
    """
    w = s.prescriber_window_days
    order = "ORDER BY start_date, drug_exposure_id"
    key = "person_id, episode_no, provider_id"
    return f"""
WITH p AS (
  SELECT r.person_id, r.episode_no, r.provider_id, r.drug_exposure_id, r.start_date,
         MAX({d.add_days("start_date", str(w - 1))}) OVER (PARTITION BY {key} {order}
             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
  FROM bzd_rx r WHERE provider_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM episode_base g WHERE g.person_id = r.person_id AND g.episode_no = r.episode_no AND g.prescribers >= 2)
), isl AS (
  SELECT p.*, SUM(CASE WHEN prev_end IS NULL OR start_date > prev_end THEN 1 ELSE 0 END)
         OVER (PARTITION BY {key} {order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS island
  FROM p
), iv AS (
  SELECT person_id, episode_no, MIN(start_date) AS first_day, {d.add_days("MAX(start_date)", str(w))} AS after_day
  FROM isl GROUP BY person_id, episode_no, provider_id, island
), ev AS (
  SELECT person_id, episode_no, first_day AS day, 1 AS delta FROM iv
  UNION ALL SELECT person_id, episode_no, after_day AS day, -1 AS delta FROM iv
), agg AS (
  SELECT person_id, episode_no, day, SUM(delta) AS delta FROM ev GROUP BY person_id, episode_no, day
), run AS (
  SELECT person_id, episode_no, SUM(delta) OVER (PARTITION BY person_id, episode_no ORDER BY day
         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS active FROM agg
)
SELECT person_id, episode_no, MAX(active) AS window_prescribers FROM run GROUP BY person_id, episode_no
"""


def episodes(s: CohortSettings) -> str:
    """One row per episode: span, doses, sweep results, prescribers, and the indicator flags."""
    flags = ",\n       ".join(
        f"CASE WHEN g.duration_days > {t.days} THEN 1 ELSE 0 END AS long_term_{t.name}" for t in s.long_term
    )
    esc = (
        f"CASE WHEN g.duration_days >= {s.escalation_min_days} AND g.dosed_prescriptions >= "
        f"{s.escalation_min_prescriptions} AND g.slope_per_day * 365.0 >= {s.escalation_per_year} * "
        f"(g.cumulative_de_mg / g.dosed_days) THEN 1 ELSE 0 END"
    )
    # the running sum is rounded to 1 microgram so a dose of exactly 40 mg is not 40.00000000000001 on one engine
    window = "CASE WHEN g.prescribers <= 1 THEN g.prescribers ELSE COALESCE(pp.window_prescribers, 0) END"
    return f"""
WITH sw AS (
  SELECT person_id, episode_no, MAX(CASE WHEN de > 1e-9 THEN ROUND(de, 6) END) AS max_daily_de_mg,
         SUM(CASE WHEN nb >= 2 THEN days ELSE 0 END) AS concurrent_days,
         SUM(CASE WHEN n_o >= 1 THEN days ELSE 0 END) AS opioid_overlap_days
  FROM segments GROUP BY person_id, episode_no
)
SELECT g.person_id, g.episode_no, g.episode_start, g.episode_end, g.duration_days, g.prescriptions, g.ingredients,
       g.cumulative_de_mg, g.dosed_days, sw.max_daily_de_mg,
       CASE WHEN g.dosed_days > 0 THEN g.cumulative_de_mg / g.dosed_days END AS mean_daily_de_mg,
       CASE WHEN g.dosed_prescriptions >= 2 AND g.dosed_days > 0 AND g.cumulative_de_mg > 0
            THEN g.slope_per_day * 365.0 / (g.cumulative_de_mg / g.dosed_days) END AS trend_per_year,
       COALESCE(sw.concurrent_days, 0) AS concurrent_days, COALESCE(sw.opioid_overlap_days, 0) AS opioid_overlap_days,
       g.prescribers, {window} AS window_prescribers, g.interdose_risk,
       {flags},
       CASE WHEN sw.max_daily_de_mg > {s.high_dose_de_mg} THEN 1 ELSE 0 END AS high_dose,
       {esc} AS escalation,
       CASE WHEN COALESCE(sw.concurrent_days, 0) > 0 THEN 1 ELSE 0 END AS concurrent_bzd,
       CASE WHEN COALESCE(sw.opioid_overlap_days, 0) > 0 THEN 1 ELSE 0 END AS opioid_coprescription,
       CASE WHEN {window} >= {s.min_prescribers} THEN 1 ELSE 0 END AS multiple_prescribers
FROM episode_base g LEFT JOIN sw ON sw.person_id = g.person_id AND sw.episode_no = g.episode_no
LEFT JOIN prescriber_peak pp ON pp.person_id = g.person_id AND pp.episode_no = g.episode_no
"""


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


def person_years(s: CohortSettings) -> str:
    """Each user's flags per calendar year, from every episode overlapping that year."""
    flags = ", ".join(f"MAX(e.{f}) AS {f}" for f in indicator_names(s))
    return f"""
SELECT e.person_id, y.year, {flags}
FROM episodes e JOIN years y ON y.year BETWEEN year(e.episode_start) AND year(e.episode_end)
GROUP BY e.person_id, y.year
"""


def by_year_age_sex(s: CohortSettings, male: int, female: int) -> str:
    """Users and indicator counts per year x age band x sex, with the population as denominator."""
    counts = ", ".join(f"SUM(py.{f}) AS {f}" for f in indicator_names(s))
    zeros = ", ".join(f"COALESCE(u.{f}, 0) AS {f}" for f in indicator_names(s))
    band = "b.label"
    return f"""
WITH people AS (
  SELECT person_id, year_of_birth, CASE WHEN gender_concept_id = {male} THEN 'M'
         WHEN gender_concept_id = {female} THEN 'F' ELSE 'unknown' END AS sex FROM person
), cohorts AS (
  SELECT year_of_birth, sex, COUNT(*) AS n FROM people GROUP BY year_of_birth, sex
), pop AS (
  SELECT y.year, {band} AS age_band, c.sex, SUM(c.n) AS population
  FROM cohorts c JOIN years y ON c.year_of_birth <= y.year
  JOIN age_bands b ON y.year - c.year_of_birth BETWEEN b.lo AND b.hi
  GROUP BY y.year, {band}, c.sex
), users AS (
  SELECT py.year, {band} AS age_band, p.sex, COUNT(*) AS users, {counts}
  FROM person_years py JOIN people p ON p.person_id = py.person_id
  JOIN age_bands b ON py.year - p.year_of_birth BETWEEN b.lo AND b.hi
  GROUP BY py.year, {band}, p.sex
)
SELECT pop.year, pop.age_band, pop.sex, pop.population, COALESCE(u.users, 0) AS users, {zeros}
FROM pop LEFT JOIN users u ON u.year = pop.year AND u.age_band = pop.age_band AND u.sex = pop.sex
"""


def by_year_drug(s: CohortSettings) -> str:
    """Users of each ingredient per year and how many of them meet each indicator."""
    names = indicator_names(s)
    flags = ", ".join(f"MAX(e.{f}) AS {f}" for f in names)
    sums = ", ".join(f"SUM({f}) AS {f}" for f in names)
    return f"""
WITH used AS (SELECT DISTINCT person_id, episode_no, ingredient FROM bzd_rx),
pyd AS (
  SELECT u.person_id, y.year, u.ingredient, {flags}
  FROM used u JOIN episodes e ON e.person_id = u.person_id AND e.episode_no = u.episode_no
  JOIN years y ON y.year BETWEEN year(e.episode_start) AND year(e.episode_end)
  GROUP BY u.person_id, y.year, u.ingredient
)
SELECT year, ingredient AS drug, COUNT(*) AS users, {sums} FROM pyd GROUP BY year, ingredient
"""


def person_summary(s: CohortSettings) -> str:
    """One row per user: worst value of each indicator over all episodes and the latest episode."""
    flags = ", ".join(f"MAX({f}) AS {f}" for f in indicator_names(s))
    return f"""
SELECT e.person_id, p.year_of_birth, p.gender_concept_id, COUNT(*) AS episodes,
       MIN(e.episode_start) AS first_start, MAX(e.episode_end) AS last_end,
       MAX(e.duration_days) AS longest_episode_days, MAX(e.max_daily_de_mg) AS max_daily_de_mg,
       SUM(e.cumulative_de_mg) AS cumulative_de_mg, MAX(e.opioid_overlap_days) AS opioid_overlap_days,
       MAX(e.window_prescribers) AS window_prescribers, MAX(e.trend_per_year) AS trend_per_year, {flags}
FROM episodes e LEFT JOIN person p ON p.person_id = e.person_id
GROUP BY e.person_id, p.year_of_birth, p.gender_concept_id
"""


def quality(d: Dialect) -> str:
    """How each in-scope row's duration and dose were found, by kind and route group."""
    return """
SELECT kind, route_group, ingredient, duration_rule, dose_rule, doses_rule, COUNT(*) AS rows
FROM exposure GROUP BY kind, route_group, ingredient, duration_rule, dose_rule, doses_rule
"""
