"""Diazepam-equivalent mg per mg of each drug in a plan, from the preset's own equivalence table.

A preset names the table of its source (Ashton's plan converts with Ashton's table). A drug the
table does not list falls back to the drug's default table, and the plan says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from benzotaper.errors import PlanError
from benzotaper.knowledge import Knowledge

REFERENCE_MG = 10.0  # every table gives the dose equivalent to 10 mg oral diazepam


@dataclass(frozen=True)
class Factors:
    """deq[drug] = diazepam-equivalent mg per mg; table[drug] = the table that number came from."""

    deq: dict[str, float]
    table: dict[str, str]
    sources: tuple[str, ...]
    warnings: tuple[str, ...]

    def of(self, drug: str, mg: float) -> float:
        """Diazepam-equivalent mg of `mg` of `drug`."""
        return mg * self.deq[drug]

    def to_mg(self, drug: str, deq_mg: float) -> float:
        """mg of `drug` equivalent to `deq_mg` diazepam."""
        return deq_mg / self.deq[drug]


def factors(knowledge: Knowledge, drugs: Iterable[str], table: str) -> Factors:
    """Conversion factors for `drugs` using `table` ('' = each drug's default table)."""
    deq: dict[str, float] = {}
    used: dict[str, str] = {}
    sources: list[str] = []
    warnings: list[str] = []
    for name in dict.fromkeys(drugs):
        drug = knowledge.drug(name)
        if drug.equivalence is None:
            raise PlanError(
                f"{drug.name}: no published dose equivalence to diazepam in the knowledge base, so it cannot be "
                "converted or tapered by diazepam-equivalent steps; taper it on its own by a clinician-set schedule"
            )
        chosen = table if table in drug.equivalence.tables else drug.equivalence.default_table
        if table and chosen != table:
            warnings.append(
                f"the {table!r} equivalence table has no entry for {drug.name}; used the {chosen!r} table instead"
            )
        q = drug.equivalence.tables[chosen]
        deq[drug.id] = REFERENCE_MG / q.value
        used[drug.id] = chosen
        sources += list(q.sources)
    return Factors(deq, used, tuple(dict.fromkeys(sources)), tuple(warnings))
