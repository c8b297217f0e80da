"""The Knowledge object: every fact, loaded once, looked up by any name a clinician writes."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benzotaper.errors import KnowledgeError, UnknownDrugError
from benzotaper.knowledge.loader import (
    DATA_DIR,
    read_analyte,
    read_drug,
    read_occupancy,
    read_policy,
    read_sig_vocabulary,
    read_sources,
)
from benzotaper.knowledge.records import Analyte, Drug, Occupancy, Policy, SigVocabulary, Source
from benzotaper.knowledge.taper_rules import TaperRules, read_taper_rules


def normalise_name(name: str) -> str:
    """Lower-case, no accents of spacing or punctuation: 'Alprazolam ' -> 'alprazolam'."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class Knowledge:
    """All drugs, analytes, sources and settings; pass it explicitly, never as a global."""

    drugs: Mapping[str, Drug]
    analytes: Mapping[str, Analyte]
    sources: Mapping[str, Source]
    policy: Policy
    occupancy: Occupancy
    sig: SigVocabulary
    taper: TaperRules
    _names: Mapping[str, str] = field(default_factory=dict, repr=False)

    def drug(self, name: str) -> Drug:
        """Find a drug by generic name, brand or other spelling; suggest close names if unknown."""
        key = normalise_name(name)
        if key in self._names:
            return self.drugs[self._names[key]]
        close = difflib.get_close_matches(key, list(self._names), n=3, cutoff=0.6)
        suggestions = list(dict.fromkeys(self.drugs[self._names[c]].name for c in close))
        raise UnknownDrugError(name, suggestions)

    def analyte(self, name: str) -> Analyte:
        """Find an analyte (drug or metabolite) by id or synonym."""
        key = normalise_name(name)
        for analyte in self.analytes.values():
            if key in {
                normalise_name(analyte.id),
                normalise_name(analyte.name),
                *map(normalise_name, analyte.synonyms),
            }:
                return analyte
        close = difflib.get_close_matches(key, [normalise_name(a) for a in self.analytes], n=3)
        raise UnknownDrugError(name, close)

    def source(self, key: str) -> Source:
        """The bibliography entry for a source key."""
        return self.sources[key]


def _name_index(drugs: Mapping[str, Drug]) -> dict[str, str]:
    index: dict[str, str] = {}
    for drug in drugs.values():
        for alias in (drug.id, drug.name, *drug.brands, *drug.synonyms):
            key = normalise_name(alias)
            if key in index and index[key] != drug.id:
                raise KnowledgeError(f"{drug.id}.toml: the name {alias!r} is also used by {index[key]}.toml")
            index[key] = drug.id
    return index


def _check_references(drugs: Mapping[str, Drug], analytes: Mapping[str, Analyte]) -> None:
    for drug in drugs.values():
        if drug.analyte not in analytes:
            raise KnowledgeError(f"{drug.id}.toml: analyte {drug.analyte!r} is not defined")
        for rr in drug.reference_ranges:
            missing = [a for a in rr.analytes if a not in analytes]
            if missing:
                raise KnowledgeError(f"{drug.id}.toml: reference_range analytes {missing} are not defined")
    for analyte in analytes.values():
        for edge in analyte.metabolism:
            if edge.metabolite not in analytes:
                raise KnowledgeError(
                    f"{analyte.id}: metabolite {edge.metabolite!r} is not defined "
                    "(add metabolites/<id>.toml or a drug file)"
                )
        total = sum(e.fraction.value for e in analyte.metabolism)
        if total > 1 + 1e-9:
            raise KnowledgeError(f"{analyte.id}: metabolism fractions add up to {total:.3f} > 1")
    _check_acyclic(analytes)


def _check_acyclic(analytes: Mapping[str, Analyte]) -> None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 1:
            raise KnowledgeError(f"metabolism forms a cycle: {' -> '.join([*path, node])}")
        if state.get(node) == 2:
            return
        state[node] = 1
        for edge in analytes[node].metabolism:
            visit(edge.metabolite, [*path, node])
        state[node] = 2

    for node in analytes:
        visit(node, [])


def load_knowledge(extra_dirs: Iterable[Path] = ()) -> Knowledge:
    """Load and validate every file under knowledge/data (plus clinic-local directories)."""
    dirs = [DATA_DIR, *map(Path, extra_dirs)]
    drug_files = sorted(p for d in dirs for p in (d / "drugs").glob("*.toml"))
    metabolite_files = sorted(p for d in dirs for p in (d / "metabolites").glob("*.toml"))
    others = [DATA_DIR / name for name in ("policy.toml", "pharmacodynamics.toml", "taper.toml")]
    sources = read_sources([DATA_DIR / "sources.toml", *drug_files, *metabolite_files, *others])
    policy = read_policy(DATA_DIR / "policy.toml", sources)
    weight = policy.reference_body_weight.value / 1e6  # mg -> kg
    drugs: dict[str, Drug] = {}
    analytes: dict[str, Analyte] = {}
    for path in metabolite_files:
        metabolite = read_analyte(path, sources, weight)
        analytes[metabolite.id] = metabolite
    for path in drug_files:
        drug, analyte = read_drug(path, sources, weight)
        drugs[drug.id] = drug
        if analyte is not None:
            if analyte.id in analytes:
                raise KnowledgeError(f"{path.name}: analyte {analyte.id!r} is defined twice")
            analytes[analyte.id] = analyte
    drugs = {k: _with_analyte_mass(d, analytes) for k, d in drugs.items()}
    _check_references(drugs, analytes)
    return Knowledge(
        drugs=drugs,
        analytes=analytes,
        sources=sources,
        policy=policy,
        occupancy=read_occupancy(DATA_DIR / "pharmacodynamics.toml", sources),
        sig=read_sig_vocabulary(DATA_DIR / "sig.toml"),
        taper=read_taper_rules(DATA_DIR / "taper.toml", sources),
        _names=_name_index(drugs),
    )


def _with_analyte_mass(drug: Drug, analytes: Mapping[str, Analyte]) -> Drug:
    from dataclasses import replace

    analyte = analytes.get(drug.analyte)
    mass = analyte.molar_mass.value if analyte else drug.molar_mass.value
    return replace(drug, analyte_molar_mass=mass)
