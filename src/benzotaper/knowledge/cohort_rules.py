"""Population drug-utilisation facts as data: thresholds, vocabulary ids, DDDs, RxNorm product codes.

Read from knowledge/data/cohort.toml, vocabulary.toml, ddd.toml, omop.toml and rxnorm_products.csv.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benzotaper.knowledge.loader import DATA_DIR, _Context, _read, quantity, read_sources
from benzotaper.knowledge.records import Quantity, Source
from benzotaper.knowledge.taper_rules import days

ROUTE_GROUPS = ("oral", "oromucosal", "parenteral", "rectal", "nasal", "transdermal", "topical")


@dataclass(frozen=True, slots=True)
class Codes:
    """An ingredient's RxNorm code and OMOP concept id (either may be unknown), with sources."""

    id: str
    rxnorm: str | None
    omop_concept_id: int | None
    names: tuple[str, ...]
    sources: tuple[str, ...]
    gaps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProductCode:
    """An RxNorm product code from the CDC value sets, with its ingredient and display name."""

    rxnorm: str
    display: str
    ingredient: str


@dataclass(frozen=True)
class OmopIds:
    """Route, unit and gender concept ids used to read drug_exposure and person."""

    routes: Mapping[int, str]
    route_words: Mapping[str, tuple[str, ...]]
    analysed_with_oral: tuple[str, ...]
    units: Mapping[str, int]
    male: int
    female: int


@dataclass(frozen=True)
class CohortKnowledge:
    """Everything a cohort run reads from the knowledge base besides the drug records."""

    episode_gap: Quantity
    long_term: tuple[tuple[str, Quantity], ...]
    high_dose: Quantity
    min_prescribers: Quantity
    prescriber_window: Quantity
    escalation: Mapping[str, Quantity]
    max_days_supply: Quantity
    age_bands: tuple[int, ...]
    age_bands_source: str
    review_long_term: str
    ingredients: Mapping[str, Codes]
    opioids: Mapping[str, Codes]
    ddd: Mapping[str, Quantity]
    products: tuple[ProductCode, ...]
    omop: OmopIds
    sources: Mapping[str, Source]


def _codes(ctx: _Context, key: str, raw: Any) -> Codes:
    if not isinstance(raw, dict):
        raise ctx.fail(key, "expected a table")
    sources: list[str] = []
    rxnorm = None
    if "rxnorm" in raw:
        rxnorm = str(raw["rxnorm"]["code"])
        sources.append(raw["rxnorm"]["source"])
    omop = None
    if "omop_concept_id" in raw:
        omop = int(raw["omop_concept_id"]["value"])
        sources.append(raw["omop_concept_id"]["source"])
    names = tuple(str(n).lower() for n in raw.get("names", []))
    return Codes(key.split(".")[-1], rxnorm, omop, names, tuple(sources), tuple(raw.get("gaps", [])))


def _products(path: Path) -> tuple[ProductCode, ...]:
    with path.open(encoding="utf-8") as handle:
        return tuple(ProductCode(r["rxnorm_code"], r["display"], r["ingredient"]) for r in csv.DictReader(handle))


def _omop_ids(ctx: _Context, doc: Mapping[str, Any]) -> OmopIds:
    routes_doc = doc.get("routes", {})
    routes: dict[int, str] = {}
    for group in ROUTE_GROUPS:
        for cid in routes_doc.get(group, []):
            routes[int(cid)] = group
    words = {g: tuple(w.lower() for w in ws) for g, ws in routes_doc.get("words", {}).items()}
    unknown = set(words) - set(ROUTE_GROUPS)
    if unknown:
        raise ctx.fail("routes.words", f"unknown route groups {sorted(unknown)}; accepted: {list(ROUTE_GROUPS)}")
    units = {k: int(v) for k, v in doc.get("units", {}).items() if k != "source"}
    gender = doc.get("gender", {})
    return OmopIds(
        routes,
        words,
        tuple(routes_doc.get("analysed_with_oral", ["oral"])),
        units,
        int(gender["male"]),
        int(gender["female"]),
    )


def read_cohort_knowledge(data: Path = DATA_DIR) -> CohortKnowledge:
    """Read and check the cohort files; every number has a known source."""
    files = [data / n for n in ("cohort.toml", "vocabulary.toml", "ddd.toml", "omop.toml")]
    sources = read_sources([data / "sources.toml", data / "policy.toml", *files])
    cohort_path, vocab_path, ddd_path, omop_path = files
    ctx = _Context(cohort_path, 1.0)
    doc = _read(cohort_path)
    q = functools.partial(quantity, ctx, sources=sources)
    long_term = tuple((str(t["name"]), q(f"long_term.{t['name']}", t["days"])) for t in doc.get("long_term", []))
    if not long_term:
        raise ctx.fail("long_term", "needs at least one [[long_term]] threshold")
    escalation = {k: q(f"escalation.{k}", v) for k, v in doc.get("escalation", {}).items()}
    for needed in ("min_days", "min_prescriptions", "per_year"):
        if needed not in escalation:
            raise ctx.fail("escalation", f"missing {needed}")
    bands = doc.get("age_bands", {})
    vctx = _Context(vocab_path, 1.0)
    vocab = _read(vocab_path)
    ingredients = {k: _codes(vctx, f"ingredients.{k}", v) for k, v in vocab.get("ingredients", {}).items()}
    opioids = {k: _codes(vctx, f"opioids.{k}", v) for k, v in vocab.get("opioids", {}).items()}
    dctx = _Context(ddd_path, 1.0)
    ddd = {k: quantity(dctx, f"ddd.{k}", v, sources) for k, v in _read(ddd_path).get("ddd", {}).items()}
    omop = _omop_ids(_Context(omop_path, 1.0), _read(omop_path))
    return CohortKnowledge(
        episode_gap=q("episode.gap_days", doc["episode"]["gap_days"]),
        long_term=long_term,
        high_dose=q("high_dose.diazepam_equivalent_mg_per_day", doc["high_dose"]["diazepam_equivalent_mg_per_day"]),
        min_prescribers=q("multiple_prescribers.min_prescribers", doc["multiple_prescribers"]["min_prescribers"]),
        prescriber_window=q("multiple_prescribers.window_days", doc["multiple_prescribers"]["window_days"]),
        escalation=escalation,
        max_days_supply=q("quality.max_days_supply", doc["quality"]["max_days_supply"]),
        age_bands=tuple(int(b) for b in bands.get("lower_bounds", [0])),
        age_bands_source=str(bands.get("source", "")),
        review_long_term=str(doc.get("review", {}).get("long_term", long_term[0][0])),
        ingredients=ingredients,
        opioids=opioids,
        ddd=ddd,
        products=_products(data / "rxnorm_products.csv"),
        omop=omop,
        sources=sources,
    )


@functools.cache
def load_cohort_knowledge() -> CohortKnowledge:
    """The packaged cohort knowledge (read once)."""
    return read_cohort_knowledge()


def whole_days(q: Quantity) -> int:
    """A duration Quantity (stored in hours) as whole days."""
    return round(days(q))
