"""Structure of a linear PK model built from the knowledge base: depots, analytes, metabolite edges.

Three nouns as in mrgsolve: this module is the model (structure and typical parameters); the
population module draws parameter sets; the engine simulates dose events on a time grid.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scipy.optimize import brentq

from benzotaper.errors import ModelError
from benzotaper.knowledge import Analyte, Drug, Knowledge, Quantity


@dataclass(frozen=True, slots=True)
class AnalyteSpec:
    """One circulating analyte: disposition per 70 kg and its variability (CV, log-normal)."""

    id: str
    name: str
    molar_mass: float
    cl: float
    v: float
    q: float
    vp: float
    cv_cl: float
    cv_v: float
    two_compartment: bool
    half_life_published: Quantity | None


@dataclass(frozen=True, slots=True)
class DepotSpec:
    """Oral input of one drug into its analyte's central compartment."""

    drug: str
    analyte: int
    ka: float
    bioavailability: float
    mass_factor: float
    lag: float
    cv_ka: float


@dataclass(frozen=True, slots=True)
class EdgeSpec:
    """Analyte `source` forms analyte `target` with `fraction` of its clearance (mass-converted)."""

    source: int
    target: int
    fraction: float
    mass_ratio: float


@dataclass(frozen=True, slots=True)
class PKModel:
    """The compartments for a set of drugs, in a fixed order: depots, then analytes."""

    depots: tuple[DepotSpec, ...]
    analytes: tuple[AnalyteSpec, ...]
    edges: tuple[EdgeSpec, ...]
    assumptions: tuple[str, ...]

    @property
    def n_compartments(self) -> int:
        """Depots + one central per analyte + one peripheral per two-compartment analyte."""
        return len(self.depots) + len(self.analytes) + sum(a.two_compartment for a in self.analytes)

    def central(self, i: int) -> int:
        """State index of analyte i's central compartment."""
        return len(self.depots) + i

    def peripheral(self, i: int) -> int:
        """State index of analyte i's peripheral compartment (two-compartment analytes only)."""
        extra = sum(a.two_compartment for a in self.analytes[:i])
        return len(self.depots) + len(self.analytes) + extra

    def depot_of(self, drug: str) -> int:
        """Index of the depot fed by `drug`."""
        for d, depot in enumerate(self.depots):
            if depot.drug == drug:
                return d
        raise ModelError(f"drug {drug!r} is not part of this model (has {[d.drug for d in self.depots]})")

    def analyte_index(self, analyte: str) -> int:
        """Index of an analyte id."""
        for i, spec in enumerate(self.analytes):
            if spec.id == analyte:
                return i
        raise ModelError(f"analyte {analyte!r} is not in this model")


def _analyte_spec(analyte: Analyte) -> AnalyteSpec:
    disp = analyte.disposition
    assert disp is not None
    cl = disp.clearance_l_h
    cv_cl = disp.clearance.cv if disp.clearance and disp.clearance.cv else 0.0
    two = disp.model == "two_compartment"
    return AnalyteSpec(
        id=analyte.id,
        name=analyte.name,
        molar_mass=analyte.molar_mass.value,
        cl=cl,
        v=disp.volume.value,
        q=disp.q.value if two and disp.q else 0.0,
        vp=disp.peripheral_volume.value if two and disp.peripheral_volume else 0.0,
        cv_cl=cv_cl,
        cv_v=disp.volume.cv or 0.0,
        two_compartment=two,
        half_life_published=disp.half_life,
    )


def _collect_analytes(knowledge: Knowledge, roots: Iterable[str], notes: list[str]) -> list[Analyte]:
    """Analytes reachable from the drugs' analytes through metabolism, in discovery order."""
    order: list[Analyte] = []
    pending = list(roots)
    while pending:
        ident = pending.pop(0)
        if any(a.id == ident for a in order):
            continue
        analyte = knowledge.analytes[ident]
        if analyte.disposition is None:
            notes.append(f"{analyte.name}: no disposition data, so it is not simulated")
            continue
        order.append(analyte)
        pending.extend(e.metabolite for e in analyte.metabolism)
    return order


def _ka_from_tmax(tmax: float, k: float) -> float:
    """Solve Tmax = ln(ka/k)/(ka - k) for ka > k (one-compartment oral model)."""
    if tmax * k >= 1:
        raise ModelError(f"Tmax {tmax} h is too late for an elimination rate of {k:.3g}/h")
    f = lambda ka: math.log(ka / k) / (ka - k) - tmax
    return float(brentq(f, k * (1 + 1e-9), 1e4))


def _depot_spec(drug: Drug, analyte_index: int, spec: AnalyteSpec, apparent: bool, notes: list[str]) -> DepotSpec:
    absorption = drug.absorption
    if absorption.ka is not None:
        ka = absorption.ka.value
        cv_ka = absorption.ka.cv or 0.0
    elif absorption.tmax is not None:
        ka = _ka_from_tmax(absorption.tmax.value, spec.cl / (spec.v + spec.vp))
        cv_ka = 0.0
        notes.append(f"{drug.name}: absorption rate derived from Tmax {absorption.tmax.value:g} h")
    else:
        raise ModelError(f"{drug.name}: the knowledge base has no absorption rate or Tmax")
    if apparent:
        f = 1.0
    elif absorption.bioavailability is not None:
        f = absorption.bioavailability.value
    else:
        f = 1.0
        notes.append(f"{drug.name}: oral bioavailability not published; assumed complete (1.0)")
    lag = absorption.lag.value if absorption.lag else 0.0
    return DepotSpec(drug.id, analyte_index, ka, f, drug.analyte_mass_per_mg, lag, cv_ka)


def build_model(knowledge: Knowledge, drugs: Sequence[str]) -> PKModel:
    """The linear model for a regimen's drugs: refuses a drug without PK data, naming what is missing."""
    drug_records = [knowledge.drug(d) for d in dict.fromkeys(drugs)]
    notes: list[str] = []
    for drug in drug_records:
        if knowledge.analytes[drug.analyte].disposition is None:
            raise ModelError(
                f"{drug.name}: the knowledge base has no clearance/volume for {drug.analyte}; it cannot be simulated"
            )
    analytes = _collect_analytes(knowledge, [d.analyte for d in drug_records], notes)
    specs = [_analyte_spec(a) for a in analytes]
    index = {a.id: i for i, a in enumerate(analytes)}
    depots = []
    for drug in drug_records:
        i = index[drug.analyte]
        disp = analytes[i].disposition
        assert disp is not None
        depots.append(_depot_spec(drug, i, specs[i], disp.apparent, notes))
    edges = [
        EdgeSpec(
            index[a.id],
            index[e.metabolite],
            e.fraction.value,
            specs[index[e.metabolite]].molar_mass / specs[index[a.id]].molar_mass,
        )
        for a in analytes
        for e in a.metabolism
        if e.metabolite in index
    ]
    return PKModel(tuple(depots), tuple(specs), tuple(edges), tuple(notes))
