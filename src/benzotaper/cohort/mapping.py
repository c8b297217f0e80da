"""Map drug_exposure's distinct products to an ingredient and a strength, once, in Python.

Order of evidence: the vocabulary (concept_ancestor to a known ingredient, drug_strength), then the
product's RxNorm code (CDC value sets), then the ingredient's name in the concept name or in
drug_source_value (strength read from the text). Every distinct key gets a status and a method,
so nothing is dropped unseen: `mapped`, `unsupported_ingredient`, `out_of_scope`, `unmapped`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.base import normalise_name
from benzotaper.knowledge.cohort_rules import CohortKnowledge

_STRENGTH = re.compile(
    r"(\d+(?:\.\d+)?)\s*(mg|mcg|µg|ug|g)\b(?:\s*(?:/|per)\s*(\d+(?:\.\d+)?)?\s*(ml)\b)?", re.IGNORECASE
)
_TO_MG = {"mg": 1.0, "mcg": 0.001, "µg": 0.001, "ug": 0.001, "g": 1000.0}
_LIQUID_WORDS = ("solution", "suspension", "elixir", "syrup", "oral liquid", "concentrate", "drops")
PRODUCT_COLUMNS = (
    ("drug_concept_id", "BIGINT"),
    ("drug_source_value", "TEXT"),
    ("ingredient", "TEXT"),
    ("kind", "TEXT"),
    ("unit_mg", "DOUBLE"),
    ("form", "TEXT"),
    ("route_hint", "TEXT"),
    ("method", "TEXT"),
    ("status", "TEXT"),
)


@dataclass(frozen=True, slots=True)
class Product:
    """What one (drug_concept_id, drug_source_value) key is: ingredient, mg per unit, form, how we know."""

    ingredient: str | None
    kind: str | None  # 'bzd' | 'opioid' | None
    unit_mg: float | None
    form: str | None  # 'solid' (mg per tablet/capsule) | 'liquid' (mg per mL)
    route_hint: str | None
    method: str
    status: str


@dataclass(frozen=True, slots=True)
class VocabRow:
    """One row of the vocabulary lookup query for a drug concept."""

    drug_concept_id: int
    ancestor_concept_id: int | None
    amount_value: float | None
    amount_unit: int | None
    numerator_value: float | None
    numerator_unit: int | None
    denominator_value: float | None
    denominator_unit: int | None
    concept_name: str | None
    vocabulary_id: str | None
    concept_code: str | None


class NameIndex:
    """Ingredient, brand and synonym names found as whole words in free text (longest first)."""

    def __init__(self, names: Mapping[str, tuple[str, str]]):
        self.names = names  # lower-case name -> (ingredient, kind)
        ordered = sorted(names, key=len, reverse=True)
        self.pattern = re.compile(r"(?<![a-z0-9])(" + "|".join(re.escape(n) for n in ordered) + r")(?![a-z0-9])")

    def find(self, text: str) -> tuple[str, str, int] | None:
        """(ingredient, kind, end position of the name) of the first name in `text`, or None."""
        match = self.pattern.search(text.lower())
        if match is None:
            return None
        ingredient, kind = self.names[match.group(1)]
        return ingredient, kind, match.end()


def name_index(knowledge: Knowledge, ck: CohortKnowledge) -> NameIndex:
    """Every BZD/Z-drug name (generic, brands, synonyms), every opioid name, and value-set-only BZDs."""
    names: dict[str, tuple[str, str]] = {}
    for product in ck.products:
        if product.ingredient not in knowledge.drugs:
            names.setdefault(product.ingredient.lower(), (product.ingredient, "unsupported"))
    for oid, codes in ck.opioids.items():
        for n in (oid, *codes.names):
            names[n.lower()] = (oid, "opioid")
    for drug in knowledge.drugs.values():
        for n in (drug.id, drug.name, *drug.brands, *drug.synonyms):
            if len(n) >= 4:
                names[n.lower()] = (drug.id, "bzd")
    return NameIndex(names)


def strength_in(text: str, after: int = 0) -> tuple[float, str] | None:
    """First strength written after position `after`: (mg per unit, 'solid') or (mg per mL, 'liquid')."""
    if "pack" in text.lower() and "{" in text:
        return None  # a pack of several products: no single strength
    match = _STRENGTH.search(text, after) or _STRENGTH.search(text)
    if match is None:
        return None
    mg = float(match.group(1)) * _TO_MG[match.group(2).lower()]
    if match.group(4):
        volume = float(match.group(3)) if match.group(3) else 1.0
        return mg / volume, "liquid"
    if any(w in text.lower() for w in _LIQUID_WORDS):
        return None  # an amount without a volume for a liquid: not a per-unit strength
    return mg, "solid"


def route_hint(text: str, words: Mapping[str, tuple[str, ...]]) -> str | None:
    """The route a product name implies ('Oral Tablet' -> oral, 'Injectable' -> parenteral)."""
    lower = text.lower()
    found = None
    for group, group_words in words.items():
        for w in group_words:
            if re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", lower) and (found is None or group != "oral"):
                found = group
    return found


def _from_vocab(row: VocabRow, ingredient_ids: Mapping[int, tuple[str, str]], units: Mapping[str, int]) -> Product:
    ingredient, kind = ingredient_ids[row.ancestor_concept_id or row.drug_concept_id]
    to_mg = {units["mg"]: 1.0, units["microgram"]: 0.001, units["g"]: 1000.0}
    unit_mg: float | None = None
    form: str | None = None
    if row.amount_value is not None and row.amount_unit in to_mg:
        unit_mg, form = row.amount_value * to_mg[row.amount_unit], "solid"
    elif row.numerator_value is not None and row.numerator_unit in to_mg and row.denominator_unit == units["ml"]:
        unit_mg, form = row.numerator_value * to_mg[row.numerator_unit] / (row.denominator_value or 1.0), "liquid"
    return Product(ingredient, kind, unit_mg, form, None, "concept_ancestor", "mapped")


def _from_text(text: str, names: NameIndex, method: str) -> Product | None:
    found = names.find(text)
    if found is None:
        return None
    ingredient, kind, end = found
    if kind == "unsupported":
        return Product(ingredient, None, None, None, None, method, "unsupported_ingredient")
    strength = strength_in(text, end)
    unit_mg, form = strength if strength else (None, None)
    return Product(ingredient, kind, unit_mg, form, None, method, "mapped")


def map_product(
    concept_id: int,
    source_value: str,
    vocab: Sequence[VocabRow],
    ingredient_ids: Mapping[int, tuple[str, str]],
    codes: Mapping[str, str],
    names: NameIndex,
    ck: CohortKnowledge,
) -> Product:
    """Decide what one distinct product key is (see the module docstring for the order)."""
    words = ck.omop.route_words
    hits = [r for r in vocab if (r.ancestor_concept_id or r.drug_concept_id) in ingredient_ids]
    concept_name = next((r.concept_name for r in vocab if r.concept_name), None)
    hint_text = " ".join(t for t in (concept_name, source_value) if t)
    hint = route_hint(hint_text, words) if hint_text else None
    product: Product | None = None
    if hits:
        product = _from_vocab(hits[0], ingredient_ids, ck.omop.units)
        if product.unit_mg is None and concept_name:
            named = _from_text(concept_name, names, "concept_ancestor")
            if named and named.ingredient == product.ingredient:
                product = Product(
                    product.ingredient, product.kind, named.unit_mg, named.form, None, "concept_ancestor", "mapped"
                )
    code = next((r.concept_code for r in vocab if r.vocabulary_id == "RxNorm" and r.concept_code in codes), None)
    source_code = source_value.strip().removeprefix("RxNorm:").strip()
    if product is None and code is not None:
        product = _from_text(codes[code], names, "rxnorm_code")
    if product is None and concept_name:
        product = _from_text(concept_name, names, "concept_name")
    if product is None and source_code in codes:
        product = _from_text(codes[source_code], names, "source_rxnorm_code")
    if product is None and source_value:
        product = _from_text(source_value, names, "source_name")
    if product is None:
        status = "out_of_scope" if concept_name else "unmapped"
        return Product(None, None, None, None, hint, "none", status)
    if hint is None and product.form == "solid":
        hint = "oral"  # tablets and capsules with no route recorded are taken by mouth
    return Product(
        product.ingredient, product.kind, product.unit_mg, product.form, hint, product.method, product.status
    )


def ingredient_ids(
    knowledge: Knowledge, ck: CohortKnowledge, site_ingredients: Iterable[tuple[int, str]] = ()
) -> dict[int, tuple[str, str]]:
    """OMOP ingredient concept ids -> (ingredient, kind): the knowledge base's, plus the site's by name."""
    ids: dict[int, tuple[str, str]] = {}
    for did, codes in ck.ingredients.items():
        if codes.omop_concept_id is not None and did in knowledge.drugs:
            ids[codes.omop_concept_id] = (did, "bzd")
    for oid, codes in ck.opioids.items():
        if codes.omop_concept_id is not None:
            ids[codes.omop_concept_id] = (oid, "opioid")
    by_name = {normalise_name(d.name): (d.id, "bzd") for d in knowledge.drugs.values()}
    by_name.update({normalise_name(o): (o, "opioid") for o in ck.opioids})
    for cid, name in site_ingredients:
        hit = by_name.get(normalise_name(name))
        if hit is not None:
            ids.setdefault(int(cid), hit)
    return ids


def product_codes(ck: CohortKnowledge) -> dict[str, str]:
    """RxNorm product code -> its display name (for reading strength and ingredient)."""
    return {p.rxnorm: f"{p.ingredient} | {p.display}" for p in ck.products}
