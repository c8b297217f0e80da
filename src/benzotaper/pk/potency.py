"""Weights that turn analyte levels into one diazepam-equivalent level (ng/mL).

Diazepam counts 1 by definition. An analyte with a sourced relative potency uses it. A parent
drug without one gets the weight that makes its table-equivalent dose give the same steady-state
diazepam-equivalent exposure as 10 mg diazepam (its equivalence table and both drugs' PK). Every
weight says where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from benzotaper.knowledge import Drug, Knowledge
from benzotaper.pk.modal import modal
from benzotaper.pk.model import PKModel, build_model
from benzotaper.pk.parameters import typical

REFERENCE = "diazepam"


@dataclass(frozen=True, slots=True)
class Potency:
    """Weight per ng/mL relative to diazepam, and its basis."""

    value: float
    basis: str


def _exposure_per_mg(knowledge: Knowledge, drug: Drug) -> tuple[PKModel, list[float]]:
    model = build_model(knowledge, [drug.id])
    auc = modal(model, typical(model)).auc_per_mg()[0, :, 0]
    return model, [float(a) for a in auc]


def _known(knowledge: Knowledge, analyte: str) -> Potency | None:
    if analyte == REFERENCE:
        return Potency(1.0, "reference drug")
    record = knowledge.analytes[analyte].relative_potency
    if record is not None:
        return Potency(record.value, f"relative potency ({record.source})")
    return None


def potency(knowledge: Knowledge, analyte: str, _depth: int = 0) -> Potency:
    """The diazepam-equivalent weight of one analyte (0 with a reason when it cannot be had)."""
    known = _known(knowledge, analyte)
    if known is not None:
        return known
    drug = next((d for d in knowledge.drugs.values() if d.analyte == analyte and d.equivalence), None)
    if drug is None or drug.equivalence is None or _depth > 4:
        return Potency(0.0, "no relative potency or equivalence published: not counted")
    model, auc = _exposure_per_mg(knowledge, drug)
    ref_model, ref_auc = _exposure_per_mg(knowledge, knowledge.drug(REFERENCE))
    target = 10.0 * sum(
        potency(knowledge, a.id, _depth + 1).value * x for a, x in zip(ref_model.analytes, ref_auc, strict=True)
    )
    dose = drug.equivalence.used.value
    own = model.analyte_index(analyte)
    others = sum(
        potency(knowledge, a.id, _depth + 1).value * x * dose
        for i, (a, x) in enumerate(zip(model.analytes, auc, strict=True))
        if i != own
    )
    value = max((target - others) / (auc[own] * dose), 0.0)
    table = drug.equivalence.default_table
    return Potency(
        value,
        f"derived: {dose:g} mg {drug.name} = 10 mg diazepam ({table} table, "
        f"{drug.equivalence.used.source}) at equal steady-state exposure",
    )


def potencies(knowledge: Knowledge, model: PKModel) -> list[Potency]:
    """Weights for every analyte of a model, in model order."""
    return [potency(knowledge, a.id) for a in model.analytes]
