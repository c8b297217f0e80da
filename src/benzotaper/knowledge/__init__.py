"""Facts as data: drugs, analytes, formulations, sources and settings, validated on load."""

from benzotaper.knowledge.base import Knowledge, load_knowledge, normalise_name
from benzotaper.knowledge.records import (
    Absorption,
    Analyte,
    Disposition,
    Dosing,
    Drug,
    Equivalence,
    Formulation,
    MetabolismEdge,
    Occupancy,
    Policy,
    Quantity,
    ReferenceRange,
    Source,
)

__all__ = [
    "Absorption",
    "Analyte",
    "Disposition",
    "Dosing",
    "Drug",
    "Equivalence",
    "Formulation",
    "Knowledge",
    "MetabolismEdge",
    "Occupancy",
    "Policy",
    "Quantity",
    "ReferenceRange",
    "Source",
    "load_knowledge",
    "normalise_name",
]
