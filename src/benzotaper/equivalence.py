"""Convert a dose of one drug to its approximate equivalent of another, with the published spread.

Every conversion goes through 10 mg oral diazepam, using the knowledge base's equivalence tables.
The value uses each drug's default table; the range spans every table that lists both drugs.
"""

from __future__ import annotations

from dataclasses import dataclass

from benzotaper.errors import ImplausibleValueError, ModelError
from benzotaper.knowledge import Drug, Knowledge, Quantity

REFERENCE = "diazepam"


@dataclass(frozen=True, slots=True)
class Conversion:
    """mg of `to_drug` roughly equivalent to `mg` of `from_drug`."""

    from_drug: str
    mg: float
    to_drug: str
    to_mg: float
    range_mg: tuple[float, float]
    table: str
    per_table_mg: dict[str, float]
    sources: tuple[str, ...]


def _candidates(q: Quantity, is_reference: bool) -> list[float]:
    """A table entry's value and, except for the reference drug (10 mg by definition), its range."""
    if is_reference or q.range is None:
        return [q.value]
    return [q.value, *q.range]


def _require(drug: Drug) -> None:
    if drug.equivalence is None:
        raise ModelError(
            f"{drug.name}: no published dose equivalence to diazepam in the knowledge base, so it cannot be converted"
        )


def convert(
    knowledge: Knowledge, mg: float, from_drug: str, to_drug: str = REFERENCE, table: str | None = None
) -> Conversion:
    """Equivalent dose with range and sources; `table` forces one table (e.g. 'ashton')."""
    if not mg > 0:
        raise ImplausibleValueError(f"dose must be more than 0 mg (got {mg:g} mg)")
    src, dst = knowledge.drug(from_drug), knowledge.drug(to_drug)
    _require(src)
    _require(dst)
    assert src.equivalence is not None and dst.equivalence is not None
    if table is not None:
        for d in (src, dst):
            assert d.equivalence is not None
            if table not in d.equivalence.tables:
                raise ModelError(f"{d.name}: the {table!r} table has no entry (it has {sorted(d.equivalence.tables)})")
    q_from = src.equivalence.tables[table] if table else src.equivalence.used
    q_to = dst.equivalence.tables[table] if table else dst.equivalence.used
    value = mg * q_to.value / q_from.value
    shared = sorted(set(src.equivalence.tables) & set(dst.equivalence.tables))
    per_table: dict[str, float] = {}
    spread = [value]
    sources = [q_from.source, q_to.source]
    for name in shared:
        a, b = src.equivalence.tables[name], dst.equivalence.tables[name]
        per_table[name] = mg * b.value / a.value
        spread += [mg * t / f for t in _candidates(b, dst.id == REFERENCE) for f in _candidates(a, src.id == REFERENCE)]
        sources += [a.source, b.source]
    used_table = table or (src.equivalence.default_table if src.id != REFERENCE else dst.equivalence.default_table)
    return Conversion(
        src.id, mg, dst.id, value, (min(spread), max(spread)), used_table, per_table, tuple(dict.fromkeys(sources))
    )


def diazepam_equivalent_mg(knowledge: Knowledge, drug: str, mg: float, table: str | None = None) -> float:
    """mg of oral diazepam equivalent to `mg` of `drug`."""
    return convert(knowledge, mg, drug, REFERENCE, table).to_mg
