"""Synthetic OMOP CDM data with known truth: realistic prescribing patterns at any size.

A pool of template persons is drawn in Python, each from an archetype (short course, long-term
stable, escalating, high dose, switcher, doctor shopping, tapering, intermittent) with the data
gaps real sites have (no days_supply, quantity only, name-only or code-only products, IV doses,
unrelated and unknown drugs). Each template carries its ground truth, built from its own design
(not by running the analysis). Large outputs replicate templates with new ids and shifted dates in
NumPy, chunk by chunk, so 100 million rows never sit in memory at once.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benzotaper.cohort.mapping import strength_in
from benzotaper.equivalence import diazepam_equivalent_mg
from benzotaper.errors import CohortError
from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.knowledge.cohort_rules import CohortKnowledge, load_cohort_knowledge

EPOCH = date(1970, 1, 1)
BASE = date(2016, 1, 1)
LOCAL_IDS = 2_000_000_000  # OMOP reserves concept ids above 2 billion for local concepts
GAP_MAX = 20  # refill delays stay well inside the 30-day episode gap
NEW_EPISODE_GAP = 60  # intermittent courses are further apart than the gap
ARCHETYPES = {
    "short_course": 0.38,
    "intermittent": 0.10,
    "long_stable": 0.22,
    "escalating": 0.06,
    "high_dose": 0.04,
    "switcher": 0.06,
    "doctor_shopping": 0.04,
    "tapering": 0.10,
}
LONG_DRUGS = ("diazepam", "alprazolam", "lorazepam", "clonazepam", "temazepam", "oxazepam", "zolpidem", "zopiclone")
SHORT_DRUGS = ("zolpidem", "zopiclone", "temazepam", "diazepam", "lorazepam", "oxazepam", "alprazolam")
OPIOIDS = (("oxycodone", 5.0), ("tramadol", 50.0), ("codeine", 30.0), ("morphine", 10.0))
OTHER_DRUGS = ("metformin 500 MG Oral Tablet", "sertraline 50 MG Oral Tablet", "amlodipine 5 MG Oral Tablet")
SIGS = {1: "1 tablet at night", 2: "1 tablet twice daily", 3: "take 1 tablet three times daily", 4: "1 tab qid"}


@dataclass(frozen=True)
class GenProduct:
    """A product the generator prescribes, as the vocabulary will describe it."""

    concept_id: int
    name: str
    ingredient: str
    kind: str  # bzd | opioid | other
    strength_mg: float
    code: str
    vocabulary: str
    route: int


@dataclass
class Vocabulary:
    """Concept, ancestor and strength rows for the generated products."""

    products: dict[tuple[str, float], GenProduct]
    ingredient_ids: dict[str, int]
    others: list[GenProduct]
    iv: dict[str, GenProduct]


@dataclass
class Template:
    """One synthetic person: rows relative to day 0 (= BASE) and the truth of their episodes."""

    sex: int
    year_of_birth: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    episodes: list[dict[str, Any]] = field(default_factory=list)
    archetype: str = ""


def _solid_products(ck: CohortKnowledge) -> list[tuple[str, str, str, float]]:
    """(ingredient, rxnorm code, display, mg) of single-ingredient generic oral tablets/capsules."""
    out = []
    for p in ck.products:
        d = p.display
        if "/" in d or "[" in d or "{" in d or not ("Oral Tablet" in d or "Oral Capsule" in d):
            continue
        strength = strength_in(d)
        if strength and strength[1] == "solid":
            out.append((p.ingredient, p.rxnorm, d, strength[0]))
    return out


def build_vocabulary(knowledge: Knowledge, ck: CohortKnowledge) -> Vocabulary:
    """Products for every generated drug: real RxNorm codes where the value sets have them."""
    ids: dict[str, int] = {}
    next_local = LOCAL_IDS + 1

    def ingredient_id(name: str, known: int | None) -> int:
        nonlocal next_local
        if name not in ids:
            if known is not None:
                ids[name] = known
            else:
                ids[name] = next_local
                next_local += 1
        return ids[name]

    oral = ck.omop.routes
    oral_id = next(c for c, g in oral.items() if g == "oral")
    iv_id = next(c for c, g in oral.items() if g == "parenteral")
    products: dict[tuple[str, float], GenProduct] = {}
    pid = LOCAL_IDS + 100_001
    for ing, code, display, mg in _solid_products(ck):
        drug = knowledge.drugs.get(ing)
        if drug is not None and drug.equivalence is not None and (ing, mg) not in products:
            codes = ck.ingredients.get(ing)
            ingredient_id(ing, codes.omop_concept_id if codes else None)
            products[(ing, mg)] = GenProduct(pid, display, ing, "bzd", mg, code, "RxNorm", oral_id)
            pid += 1
    for mg in (3.75, 7.5):  # zopiclone is not in the US value sets: an RxNorm Extension-style local product
        ingredient_id("zopiclone", ck.ingredients["zopiclone"].omop_concept_id)
        products[("zopiclone", mg)] = GenProduct(
            pid, f"zopiclone {mg:g} MG Oral Tablet", "zopiclone", "bzd", mg, f"OMOP{pid}", "RxNorm Extension", oral_id
        )
        pid += 1
    for name, mg in OPIOIDS:
        ingredient_id(name, ck.opioids[name].omop_concept_id)
        products[(name, mg)] = GenProduct(
            pid, f"{name} {mg:g} MG Oral Tablet", name, "opioid", mg, f"SYN{pid}", "Synthetic", oral_id
        )
        pid += 1
    others = []
    for display in OTHER_DRUGS:
        others.append(GenProduct(pid, display, display.split()[0], "other", 0.0, f"SYN{pid}", "Synthetic", oral_id))
        pid += 1
    iv = {}
    for ing, conc in (("midazolam", 5.0), ("lorazepam", 2.0)):
        iv[ing] = GenProduct(
            pid, f"{ing} {conc:g} MG/ML Injectable Solution", ing, "bzd", conc, f"SYN{pid}", "Synthetic", iv_id
        )
        pid += 1
    return Vocabulary(products, ids, others, iv)


def vocabulary_tables(vocab: Vocabulary) -> dict[str, pa.Table]:
    """concept, concept_ancestor and drug_strength for the generated products (mg = 8576, mL = 8587)."""
    concept: list[tuple[Any, ...]] = []
    for name, cid in vocab.ingredient_ids.items():
        concept.append((cid, name, "RxNorm", "Ingredient", "S", f"ING-{name}"))
    every = [*vocab.products.values(), *vocab.others, *vocab.iv.values()]
    for p in every:
        concept.append((p.concept_id, p.name, p.vocabulary, "Clinical Drug", "S", p.code))
    ancestor = [(cid, cid) for cid in vocab.ingredient_ids.values()]
    strength: list[tuple[Any, ...]] = []
    for p in [*vocab.products.values(), *vocab.iv.values()]:
        ing = vocab.ingredient_ids[p.ingredient]
        ancestor.append((ing, p.concept_id))
        if p.route == next(iter(vocab.iv.values())).route:
            strength.append((p.concept_id, ing, None, None, p.strength_mg, 8576, 1.0, 8587))
        else:
            strength.append((p.concept_id, ing, p.strength_mg, 8576, None, None, None, None))
    cols = ["concept_id", "concept_name", "vocabulary_id", "concept_class_id", "standard_concept", "concept_code"]
    s_cols = [
        "drug_concept_id",
        "ingredient_concept_id",
        "amount_value",
        "amount_unit_concept_id",
        "numerator_value",
        "numerator_unit_concept_id",
        "denominator_value",
        "denominator_unit_concept_id",
    ]
    s_types = [pa.int64(), pa.int64(), pa.float64(), pa.int64(), pa.float64(), pa.int64(), pa.float64(), pa.int64()]
    return {
        "concept": pa.table({c: [r[i] for r in concept] for i, c in enumerate(cols)}),
        "concept_ancestor": pa.table(
            {
                "ancestor_concept_id": pa.array([a for a, _ in ancestor], pa.int64()),
                "descendant_concept_id": pa.array([d for _, d in ancestor], pa.int64()),
            }
        ),
        "drug_strength": pa.table(
            {c: pa.array([r[i] for r in strength], t) for i, (c, t) in enumerate(zip(s_cols, s_types, strict=True))}
        ),
    }


class _Maker:
    """Draws template persons; every design choice is recorded in the template's truth."""

    def __init__(self, knowledge: Knowledge, ck: CohortKnowledge, vocab: Vocabulary, rng: random.Random):
        self.k, self.ck, self.v, self.rng = knowledge, ck, vocab, rng
        self.de = {
            d: diazepam_equivalent_mg(knowledge, d, 1.0)
            for d in {p.ingredient for p in vocab.products.values() if p.kind == "bzd"}
        }
        self.ddd = {d: q.value for d, q in ck.ddd.items()}
        self.strengths: dict[str, list[float]] = {}
        for ing, mg in vocab.products:
            self.strengths.setdefault(ing, []).append(mg)
        for v in self.strengths.values():
            v.sort()

    # --- rows ---------------------------------------------------------------------------------
    def rx(
        self, t: Template, ing: str, mg: float, per_day: int, start: int, days: int, provider: int, **kw: Any
    ) -> dict[str, Any]:
        """One dispensing with the site's usual fields; `kw` can blank or replace some."""
        p = self.v.products[(ing, mg)]
        row: dict[str, Any] = {
            "concept": p.concept_id,
            "start": start,
            "end": start + days - 1,
            "quantity": float(per_day * days),
            "days_supply": days,
            "sig": None,
            "route": p.route,
            "provider": provider,
            "source": p.name,
            "route_source": "oral",
            "ingredient": ing,
            "daily_de": per_day * mg * self.de.get(ing, 0.0),
            "kind": p.kind,
            "per_day": per_day,
            "mg": mg,
        }
        self._noise(row, p)
        row.update(kw)
        t.rows.append(row)
        return row

    def _noise(self, row: dict[str, Any], p: GenProduct) -> None:
        r = self.rng.random()
        if r < 0.15:
            row["days_supply"] = None  # end date still says how long
        elif r < 0.20:
            row["concept"], row["source"] = 0, p.code if p.vocabulary == "RxNorm" else p.name.upper()
        elif r < 0.25:
            brands = self.k.drugs[p.ingredient].brands if p.ingredient in self.k.drugs else ()
            name = brands[0] if brands else p.ingredient
            row["concept"], row["source"] = 0, f"{name.upper()} {p.strength_mg:g}MG TABLETS"
        elif r < 0.35 and row["per_day"] in SIGS:
            row["sig"] = SIGS[row["per_day"]]
        if self.rng.random() < 0.05:
            row["route"], row["route_source"] = 0, "PO"

    # --- courses ------------------------------------------------------------------------------
    def course(
        self, t: Template, ing: str, doses: list[tuple[float, int]], start: int, rx_days: int, providers: list[int]
    ) -> list[dict[str, Any]]:
        """Back-to-back prescriptions (refills up to 5 days early or 20 days late), one per dose."""
        rows, day = [], start
        for i, (mg, per_day) in enumerate(doses):
            rows.append(self.rx(t, ing, mg, per_day, day, rx_days, providers[i % len(providers)]))
            day += rx_days + self.rng.randint(-5, GAP_MAX)
        return rows

    def dose(self, ing: str, low_de: float, high_de: float) -> tuple[float, int]:
        """A tablet strength and tablets per day giving a diazepam-equivalent dose in [low, high]."""
        options = [
            (mg, n)
            for mg in self.strengths[ing]
            for n in (1, 2, 3)
            if low_de <= mg * n * self.de[ing] <= high_de and abs(mg * n * self.de[ing] - 40.0) > 1e-6
        ]
        if not options:
            mg = self.strengths[ing][0]
            return mg, 1
        return self.rng.choice(options)

    def episode_truth(self, t: Template, rows: list[dict[str, Any]], **extra: Any) -> None:
        """Truth of one episode from its own rows (spans, doses, prescribers): computed by design."""
        start = min(r["start"] for r in rows)
        end = max(r["end"] for r in rows)
        dosed = [r["quantity"] * r["mg"] * self.de[r["ingredient"]] for r in rows if r["quantity"] is not None]
        cumulative = sum(dosed) if dosed else None
        truth = {
            "start": start,
            "end": end,
            "duration_days": end - start + 1,
            "prescriptions": len(rows),
            "ingredients": ",".join(sorted({r["ingredient"] for r in rows})),
            "cumulative_de_mg": cumulative,
            "max_daily_de_mg": max((r["daily_de"] for r in rows if r["quantity"] is not None), default=None),
            "window_prescribers": _window_prescribers(rows, self.ck),
            "interdose_risk": int(any(_interdose(self.k, r["ingredient"], r["per_day"]) for r in rows)),
            "concurrent_days": 0,
            "opioid_overlap_days": 0,
            "escalation": 0,
        }
        truth.update(extra)
        t.episodes.append(truth)

    # --- archetypes ---------------------------------------------------------------------------
    def person(self, archetype: str) -> Template:
        rng = self.rng
        t = Template(rng.choice((8507, 8532)), rng.randint(1930, 2004), archetype=archetype)
        getattr(self, f"_{archetype}")(t)
        if rng.random() < 0.03:  # an inpatient IV dose: kept apart from oral use
            ing = rng.choice(sorted(self.v.iv))
            p = self.v.iv[ing]
            day = rng.randint(0, 2500)
            t.rows.append(self._plain(p, day, 0, quantity=rng.choice((1.0, 2.0)), route_source="IV"))
        if rng.random() < 0.2:
            p = rng.choice(self.v.others)
            t.rows.append(self._plain(p, rng.randint(0, 2500), 29, quantity=30.0))
        if rng.random() < 0.01:
            t.rows.append(self._plain(None, rng.randint(0, 2500), 27, quantity=28.0, source="UNKNOWN PREPARATION"))
        return t

    def _plain(self, p: GenProduct | None, day: int, length: int, **kw: Any) -> dict[str, Any]:
        row = {
            "concept": p.concept_id if p else 0,
            "start": day,
            "end": day + length,
            "quantity": None,
            "days_supply": length + 1 if p and p.kind == "other" else None,
            "sig": None,
            "route": p.route if p else 0,
            "provider": 9,
            "source": p.name if p else "",
            "route_source": "oral",
            "ingredient": p.ingredient if p else "",
            "daily_de": 0.0,
            "kind": p.kind if p else "unknown",
            "per_day": 0,
            "mg": 0.0,
        }
        row.update(kw)
        return row

    def _short_course(self, t: Template) -> None:
        ing = self.rng.choice(SHORT_DRUGS)
        mg, n = self.dose(ing, 2, 20)
        days = self.rng.choice((7, 14, 21, 28, 28, 42, 56))
        start = self.rng.randint(0, 2500)
        r = self.rng.random()
        if r < 0.08 and self._quantity_only(t, ing, start, days):
            return
        if r < 0.12:
            row = self.rx(t, ing, mg, n, start, days, 1, quantity=None, sig=None)
            self.episode_truth(t, [row], max_daily_de_mg=None, interdose_risk=0)
            return
        row = self.rx(t, ing, mg, n, start, days, 1)
        self.episode_truth(t, [row])
        self._maybe_opioid(t, row, 0.05)

    def _quantity_only(self, t: Template, ing: str, start: int, days: int) -> bool:
        """A row with a quantity but no days_supply and end = start: the DDD rule gives `days`."""
        ddd = self.ddd.get(ing)
        for mg in self.strengths[ing]:
            if ddd and (ddd / mg).is_integer() and ddd / mg <= 4:
                per_day = int(ddd / mg)
                row = self.rx(t, ing, mg, per_day, start, days, 1)
                row.update(days_supply=None, sig=None, concept=self.v.products[(ing, mg)].concept_id)
                row["end"] = start  # what the site recorded
                self.episode_truth(t, [row], start=start, end=start + days - 1, duration_days=days, interdose_risk=0)
                return True
        return False

    def _intermittent(self, t: Template) -> None:
        ing = self.rng.choice(SHORT_DRUGS)
        day = self.rng.randint(0, 1200)
        for _ in range(self.rng.randint(2, 4)):
            mg, n = self.dose(ing, 2, 20)
            days = self.rng.choice((14, 28))
            row = self.rx(t, ing, mg, n, day, days, 1)
            self.episode_truth(t, [row])
            day += days + NEW_EPISODE_GAP + self.rng.randint(0, 300)

    def _long(
        self, t: Template, doses: list[tuple[float, int]], ing: str, providers: list[int], **extra: Any
    ) -> list[dict[str, Any]]:
        start = self.rng.randint(0, 1500)
        rows = self.course(t, ing, doses, start, self.rng.choice((28, 30)), providers)
        self.episode_truth(t, rows, **extra)
        self._maybe_opioid(t, rows[self.rng.randrange(len(rows) - 1)], 0.2, rows)
        return rows

    def _long_stable(self, t: Template) -> None:
        ing = self.rng.choice(LONG_DRUGS)
        dose = self.dose(ing, 5, 35)
        n_rx = self.rng.randint(4, 40)
        self._long(t, [dose] * n_rx, ing, [1] if self.rng.random() < 0.7 else [1, 2])

    def _high_dose(self, t: Template) -> None:
        ing = self.rng.choice(("alprazolam", "lorazepam", "clonazepam", "diazepam"))
        dose = self.dose(ing, 41, 150)
        self._long(t, [dose] * self.rng.randint(6, 30), ing, [1])

    def _escalating(self, t: Template) -> None:
        ing = self.rng.choice(("alprazolam", "lorazepam", "diazepam", "clonazepam", "zolpidem"))
        mg = self.strengths[ing][0]
        steps = self.rng.randint(6, 12)  # monthly: 1 -> 4 tablets a day within 5 to 20 months
        doses = [(mg, 1 + (3 * i) // (steps - 1)) for i in range(steps)]
        self._long(t, doses, ing, [1], escalation=1)

    def _tapering(self, t: Template) -> None:
        ing = self.rng.choice(("diazepam", "alprazolam", "lorazepam", "clonazepam"))
        mg = self.strengths[ing][0]
        doses = [(mg, 3)] * 3 + [(mg, 2)] * 3 + [(mg, 1)] * 3
        self._long(t, doses, ing, [1])

    def _doctor_shopping(self, t: Template) -> None:
        ing = self.rng.choice(("alprazolam", "lorazepam", "diazepam", "clonazepam"))
        dose = self.dose(ing, 10, 35)
        k = self.rng.randint(4, 6)
        self._long(t, [dose] * self.rng.randint(k + 2, 20), ing, list(range(1, k + 1)))

    def _switcher(self, t: Template) -> None:
        a = self.rng.choice(("alprazolam", "lorazepam", "temazepam"))
        dose_a = self.dose(a, 10, 30)
        dose_b = self.dose("diazepam", 5, dose_a[0] * dose_a[1] * self.de[a])  # no dose rise at the switch
        start = self.rng.randint(0, 1500)
        rows_a = self.course(t, a, [dose_a] * self.rng.randint(3, 8), start, 28, [1])
        overlap = self.rng.randint(0, 14)
        last = rows_a[-1]
        b_start = last["end"] - overlap + 1
        rows_b = self.course(t, "diazepam", [dose_b] * self.rng.randint(3, 8), b_start, 28, [1])
        both = last["daily_de"] + rows_b[0]["daily_de"] if overlap else 0.0
        rows = rows_a + rows_b
        peak = max(max(r["daily_de"] for r in rows), both)
        self.episode_truth(t, rows, concurrent_days=overlap, max_daily_de_mg=peak)

    def _maybe_opioid(
        self, t: Template, host: dict[str, Any], chance: float, course: list[dict[str, Any]] | None = None
    ) -> None:
        """An opioid course inside one BZD prescription's own days (not cut short by a refill)."""
        if self.rng.random() >= chance:
            return
        end = host["end"]
        if course is not None:
            later = [r["start"] for r in course if r["start"] > host["start"]]
            if later:
                end = min(end, min(later) - 1)
        span = end - host["start"] + 1
        if span < 3:
            return
        length = self.rng.randint(1, min(span, 20))
        first = host["start"] + self.rng.randint(0, span - length)
        name, mg = self.rng.choice(OPIOIDS)
        p = self.v.products[(name, mg)]
        t.rows.append(self._plain(p, first, length - 1, quantity=float(length * 2), days_supply=length, provider=7))
        t.episodes[-1]["opioid_overlap_days"] = length


def _window_prescribers(rows: list[dict[str, Any]], ck: CohortKnowledge) -> int:
    window = round(ck.prescriber_window.value / 24)
    best = 0
    for r in rows:
        seen = {x["provider"] for x in rows if r["start"] - window < x["start"] <= r["start"]}
        best = max(best, len(seen))
    return best


def _interdose_table(knowledge: Knowledge) -> dict[tuple[str, int], int]:
    from benzotaper.cohort.pipeline import interdose_rows

    return {(d, n): r for d, n, r in interdose_rows(knowledge)}


def _interdose(knowledge: Knowledge, ingredient: str, per_day: int) -> bool:
    return bool(_interdose_table(knowledge).get((ingredient, per_day), 0))


def make_templates(n: int, seed: int, knowledge: Knowledge, ck: CohortKnowledge, vocab: Vocabulary) -> list[Template]:
    """`n` template persons, archetypes in the ARCHETYPES proportions."""
    rng = random.Random(seed)
    maker = _Maker(knowledge, ck, vocab, rng)
    names, weights = zip(*ARCHETYPES.items(), strict=True)
    return [maker.person(rng.choices(names, weights)[0]) for _ in range(n)]


@dataclass(frozen=True)
class Generated:
    """What `generate` wrote: counts and where."""

    rows: int
    persons: int
    users: int
    files: int
    out_dir: Path


class _Pool:
    """Templates flattened into NumPy arrays, so chunks are made by fancy indexing."""

    def __init__(self, templates: list[Template]):
        counts = np.array([len(t.rows) for t in templates], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.counts = counts
        rows = [r for t in templates for r in t.rows]
        self.concept = np.array([r["concept"] for r in rows], dtype=np.int64)
        self.start = np.array([r["start"] for r in rows], dtype=np.int64)
        self.end = np.array([r["end"] for r in rows], dtype=np.int64)
        self.quantity = pa.array([r["quantity"] for r in rows], pa.float64())
        self.days = pa.array([r["days_supply"] for r in rows], pa.int32())
        self.sig = pa.array([r["sig"] for r in rows], pa.string())
        self.route = np.array([r["route"] for r in rows], dtype=np.int64)
        self.provider = np.array([r["provider"] for r in rows], dtype=np.int64)
        self.source = pa.array([r["source"] for r in rows], pa.string())
        self.route_source = pa.array([r["route_source"] for r in rows], pa.string())
        self.sex = np.array([t.sex for t in templates], dtype=np.int64)
        self.yob = np.array([t.year_of_birth for t in templates], dtype=np.int32)
        self.templates = templates


def _dates(days: np.ndarray) -> pa.Array:
    base = (BASE - EPOCH).days
    return pa.array((days + base).astype("int32"), pa.date32())


def generate(
    out_dir: Path,
    rows: int,
    seed: int = 7,
    templates: int = 20_000,
    chunk_rows: int = 5_000_000,
    non_users_per_user: float = 1.5,
    progress: Callable[[int], None] | None = None,
    knowledge: Knowledge | None = None,
) -> Generated:
    """Write person/, drug_exposure/, concept*.parquet and truth/ to `out_dir` (about `rows` rows)."""
    if not 1 <= rows <= 2_000_000_000:
        raise CohortError(f"--rows must be between 1 and 2,000,000,000 (got {rows})")
    knowledge = knowledge or load_knowledge()
    ck = load_cohort_knowledge()
    vocab = build_vocabulary(knowledge, ck)
    pool = _Pool(make_templates(max(1, min(templates, rows)), seed, knowledge, ck, vocab))
    rng = np.random.default_rng(seed)
    for sub in ("person", "drug_exposure", "truth"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    for name, table in vocabulary_tables(vocab).items():
        pq.write_table(table, out_dir / f"{name}.parquet")
    written = persons = users = files = 0
    next_person = 1
    mean_rows = float(pool.counts.mean())
    while written < rows:
        want = rows - written
        n_people = max(1, min(int(chunk_rows / mean_rows), math.ceil(want / mean_rows)))
        pick = rng.integers(0, len(pool.counts), n_people)
        cum = np.cumsum(pool.counts[pick])
        if cum[-1] > want:  # stop at the person who reaches the target
            n_people = int(np.searchsorted(cum, want) + 1)
            pick = pick[:n_people]
        shift = rng.integers(-365, 366, n_people)
        ids = np.arange(next_person, next_person + n_people, dtype=np.int64)
        n_rows = _write_chunk(out_dir, files, pool, pick, ids, shift, written)
        non_users = round(n_people * non_users_per_user)
        _write_people(out_dir, files, pool, pick, ids, rng, non_users, next_person + n_people)
        _write_truth(out_dir, files, pool, pick, ids, shift)
        next_person += n_people + non_users
        written += n_rows
        users += n_people
        persons += n_people + non_users
        files += 1
        if progress:
            progress(n_rows)
    meta = {"rows": written, "persons": persons, "users": users, "seed": seed, "templates": len(pool.counts)}
    (out_dir / "generated.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return Generated(written, persons, users, files, out_dir)


def _write_chunk(
    out_dir: Path, part: int, pool: _Pool, pick: np.ndarray, ids: np.ndarray, shift: np.ndarray, first_id: int
) -> int:
    counts = pool.counts[pick]
    total = int(counts.sum())
    person = np.repeat(ids, counts)
    day_shift = np.repeat(shift, counts)
    starts = np.repeat(pool.offsets[pick], counts)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    idx = starts + within
    take = pa.array(idx)
    provider = pool.provider[idx] + np.repeat((ids % 100_000) * 10, counts)
    table = pa.table(
        {
            "drug_exposure_id": pa.array(np.arange(first_id + 1, first_id + total + 1, dtype=np.int64)),
            "person_id": pa.array(person),
            "drug_concept_id": pa.array(pool.concept[idx]),
            "drug_exposure_start_date": _dates(pool.start[idx] + day_shift),
            "drug_exposure_end_date": _dates(pool.end[idx] + day_shift),
            "drug_type_concept_id": pa.array(np.full(total, 38000177, dtype=np.int64)),
            "quantity": pool.quantity.take(take),
            "days_supply": pool.days.take(take),
            "sig": pool.sig.take(take),
            "route_concept_id": pa.array(pool.route[idx]),
            "provider_id": pa.array(provider),
            "drug_source_value": pool.source.take(take),
            "route_source_value": pool.route_source.take(take),
        }
    )
    pq.write_table(table, out_dir / "drug_exposure" / f"part-{part:05d}.parquet", row_group_size=1_000_000)
    return total


def _write_people(
    out_dir: Path,
    part: int,
    pool: _Pool,
    pick: np.ndarray,
    ids: np.ndarray,
    rng: np.random.Generator,
    non_users: int,
    first_non_user: int,
) -> None:
    other = np.arange(first_non_user, first_non_user + non_users, dtype=np.int64)
    table = pa.table(
        {
            "person_id": pa.array(np.concatenate([ids, other])),
            "gender_concept_id": pa.array(np.concatenate([pool.sex[pick], rng.choice([8507, 8532], non_users)])),
            "year_of_birth": pa.array(
                np.concatenate([pool.yob[pick], rng.integers(1930, 2020, non_users)]).astype("int32")
            ),
            "race_concept_id": pa.array(np.zeros(len(ids) + non_users, dtype=np.int64)),
            "ethnicity_concept_id": pa.array(np.zeros(len(ids) + non_users, dtype=np.int64)),
        }
    )
    pq.write_table(table, out_dir / "person" / f"part-{part:05d}.parquet")


TRUTH_FIELDS = (
    "duration_days",
    "prescriptions",
    "cumulative_de_mg",
    "max_daily_de_mg",
    "window_prescribers",
    "interdose_risk",
    "concurrent_days",
    "opioid_overlap_days",
    "escalation",
)


def _write_truth(out_dir: Path, part: int, pool: _Pool, pick: np.ndarray, ids: np.ndarray, shift: np.ndarray) -> None:
    ep_counts = np.array([len(t.episodes) for t in pool.templates], dtype=np.int64)
    ep_offsets = np.concatenate([[0], np.cumsum(ep_counts)])
    eps = [e for t in pool.templates for e in t.episodes]
    counts = ep_counts[pick]
    total = int(counts.sum())
    idx = np.repeat(ep_offsets[pick], counts) + (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts))
    day_shift = np.repeat(shift, counts)
    take = pa.array(idx)
    cols: dict[str, Any] = {
        "person_id": pa.array(np.repeat(ids, counts)),
        "archetype": pa.array([t.archetype for t in pool.templates], pa.string()).take(
            pa.array(np.repeat(pick, counts))
        ),
        "episode_start": _dates(np.array([e["start"] for e in eps], dtype=np.int64)[idx] + day_shift),
        "episode_end": _dates(np.array([e["end"] for e in eps], dtype=np.int64)[idx] + day_shift),
        "ingredients": pa.array([e["ingredients"] for e in eps], pa.string()).take(take),
    }
    for f in TRUTH_FIELDS:
        kind = pa.float64() if f.endswith("_mg") else pa.int64()
        cols[f] = pa.array([e[f] for e in eps], kind).take(take)
    pq.write_table(pa.table(cols), out_dir / "truth" / f"episodes-{part:05d}.parquet")
