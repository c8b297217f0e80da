"""Which drug, product or analyte a FHIR CodeableConcept names, and the codes benzotaper writes.

Medications: an RxNorm ingredient code (vocabulary.toml), an RxNorm product code of the CDC value sets
(rxnorm_products.csv), the local drug code system, then names (generic, brand, synonym) in the text - the same
order and the same name index as the OMOP product mapping (cohort/mapping.py). Levels: LOINC codes of fhir.toml,
the local analyte code system, then the analyte's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benzotaper.cohort.mapping import name_index, product_codes, route_hint, strength_in
from benzotaper.errors import UnknownDrugError
from benzotaper.fhir.elements import Json, code_in, coding, codings, concept, concept_text
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.cohort_rules import CohortKnowledge, load_cohort_knowledge
from benzotaper.knowledge.fhir_codes import FhirCodes, load_fhir_codes
from benzotaper.tdm.samples import DEQ, analyte_id

BZD, OPIOID, UNSUPPORTED, NONE = "bzd", "opioid", "unsupported", "none"


@dataclass(frozen=True, slots=True)
class MedicationMatch:
    """What a medication concept is: kind (bzd, opioid, unsupported, none), ingredient, product and how we know."""

    kind: str
    ingredient: str | None
    product: str | None
    strength: tuple[float, str] | None  # (mg per tablet, 'solid') or (mg per mL, 'liquid')
    route: str | None  # route group the product name implies
    method: str
    note: str | None = None


class Coder:
    """Lookups over the knowledge base and fhir.toml; build one per import or export."""

    def __init__(self, knowledge: Knowledge, cohort: CohortKnowledge | None = None, codes: FhirCodes | None = None):
        self.knowledge = knowledge
        self.cohort = cohort or load_cohort_knowledge()
        self.codes = codes or load_fhir_codes()
        self.names = name_index(knowledge, self.cohort)
        self.products = product_codes(self.cohort)
        self.rxnorm_ingredient = {c.rxnorm: k for k, c in self.cohort.ingredients.items() if c.rxnorm}
        self.rxnorm_opioid = {c.rxnorm: k for k, c in self.cohort.opioids.items() if c.rxnorm}

    # ---------------------------------------------------------------- medications

    def medication(self, value: Any) -> MedicationMatch:
        """Identify a medication CodeableConcept (resolve medicationReference before calling)."""
        rx = code_in(value, self.codes.system("rxnorm"))
        local = code_in(value, self.codes.local("CodeSystem", "drug"))
        text = concept_text(value)
        if local is not None and local in self.knowledge.drugs:
            return MedicationMatch(BZD, local, text or None, None, None, "local drug code")
        if rx is not None and rx in self.rxnorm_ingredient:
            return MedicationMatch(BZD, self.rxnorm_ingredient[rx], text or None, None, None, "RxNorm ingredient")
        if rx is not None and rx in self.rxnorm_opioid:
            return MedicationMatch(OPIOID, self.rxnorm_opioid[rx], text or None, None, None, "RxNorm ingredient")
        if rx is not None and rx in self.products:
            ingredient, display = self.products[rx].split(" | ", 1)
            return self._named(display, "RxNorm product (CDC value set)", None, ingredient)
        note = f"RxNorm {rx} is not in the value sets; matched by name" if rx is not None else None
        return self._named(text, "name", note)

    def _named(self, text: str, method: str, note: str | None, ingredient: str | None = None) -> MedicationMatch:
        found = self.names.find(text) if text else None
        if ingredient is None:
            if found is None:
                return MedicationMatch(NONE, None, text or None, None, None, method, note)
            ingredient, kind, end = found
        else:
            kind, end = "bzd", found[2] if found and found[0] == ingredient else 0
        if kind in ("bzd", "unsupported"):
            kind = BZD if ingredient in self.knowledge.drugs else UNSUPPORTED
        strength = strength_in(text, end) if text else None
        route = route_hint(text, self.cohort.omop.route_words) if text else None
        return MedicationMatch(kind, ingredient, text or None, strength, route, method, note)

    def drug_concept(self, drug: str) -> Json:
        """The CodeableConcept written for a drug: RxNorm ingredient (when verified) and the local drug code."""
        d = self.knowledge.drug(drug)
        codes = self.cohort.ingredients.get(d.id)
        out = [coding(self.codes.system("rxnorm"), codes.rxnorm, d.name)] if codes and codes.rxnorm else []
        out.append(coding(self.codes.local("CodeSystem", "drug"), d.id, d.name))
        return concept(out, d.name)

    # ---------------------------------------------------------------- analytes

    def analyte(self, value: Any) -> tuple[str | None, str]:
        """(analyte id, '') for a level's code, or (None, reason) when it is not a level the model can read."""
        loinc = code_in(value, self.codes.system("loinc"))
        if loinc is not None:
            entry = self.codes.loinc_for(loinc)
            if entry is None:
                named = f" ({one_line(concept_text(value))})" if concept_text(value) else ""
                return None, f"code not in value sets: LOINC {loinc}{named}"
            if len(entry.analytes) > 1:
                parts = " + ".join(entry.analytes)
                return None, f"LOINC {loinc} is a sum ({parts}); the levels model reads each analyte on its own"
            return entry.analytes[0], ""
        local = code_in(value, self.codes.local("CodeSystem", "analyte"))
        if local is not None and (local in self.knowledge.analytes or local == DEQ):
            return local, ""
        text = concept_text(value)
        if text:
            try:
                return analyte_id(self.knowledge, text), ""
            except UnknownDrugError:
                pass
        shown = ", ".join(f"{c.get('system', '?')}|{c.get('code', '?')}" for c in codings(value)) or text
        return None, f"code not in value sets: {one_line(shown) or 'no code'}"

    def analyte_concept(self, analyte: str) -> Json:
        """LOINC code when verified (fhir.toml), always the local analyte code."""
        loinc = self.codes.loinc_of(analyte)
        name = "diazepam equivalents (immunoassay)" if analyte == DEQ else self.knowledge.analytes[analyte].name
        out = [coding(self.codes.system("loinc"), loinc.code, loinc.display)] if loinc else []
        out.append(coding(self.codes.local("CodeSystem", "analyte"), analyte, name))
        return concept(out, name)


def one_line(text: str) -> str:
    """`text` with line breaks shown as \\n and \\r: a reason is one line in the report and on the terminal."""
    return text.replace("\r", "\\r").replace("\n", "\\n")
