"""Frozen records for the facts in knowledge/data: each refuses bad values when built."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from benzotaper.errors import KnowledgeError


@dataclass(frozen=True, slots=True)
class Source:
    """A bibliography entry that facts point to."""

    key: str
    citation: str
    url: str | None = None
    reliability: str = "primary"


@dataclass(frozen=True, slots=True)
class Quantity:
    """A sourced number in a canonical unit (mg, h, L, L/h, 1/h, ng/mL, nmol/L, g/mol, '')."""

    value: float
    unit: str
    source: str
    range: tuple[float, float] | None = None
    range_source: str | None = None
    cv: float | None = None
    cv_source: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.value):
            raise KnowledgeError(f"value must be a finite number (got {self.value})")
        if self.range is not None:
            lo, hi = self.range
            tol = 1e-9 * max(abs(lo), abs(hi), 1.0)
            if not lo <= hi or not lo - tol <= self.value <= hi + tol:
                raise KnowledgeError(
                    f"range must be [low, high] containing value {self.value} (got {list(self.range)})"
                )
        if self.cv is not None and not 0 < self.cv < 5:
            raise KnowledgeError(f"cv must be a fraction between 0 and 5 (got {self.cv})")

    @property
    def sources(self) -> tuple[str, ...]:
        """Every source key this number rests on."""
        keys = [self.source, self.range_source, self.cv_source]
        return tuple(dict.fromkeys(k for k in keys if k))


@dataclass(frozen=True, slots=True)
class Equivalence:
    """Oral dose (mg) roughly equivalent to 10 mg oral diazepam, per published table."""

    tables: Mapping[str, Quantity]
    default_table: str

    def __post_init__(self) -> None:
        if self.default_table not in self.tables:
            raise KnowledgeError(f"default_table must be one of {sorted(self.tables)} (got {self.default_table!r})")

    @property
    def used(self) -> Quantity:
        """The value the product uses unless a table is named."""
        return self.tables[self.default_table]

    def published_range(self) -> tuple[float, float]:
        """Lowest and highest value over every table, including each table's own range."""
        values: list[float] = []
        for q in self.tables.values():
            values.append(q.value)
            if q.range:
                values.extend(q.range)
        return min(values), max(values)


@dataclass(frozen=True, slots=True)
class Absorption:
    """Oral absorption: bioavailability, first-order rate (or Tmax) and lag."""

    bioavailability: Quantity | None = None
    ka: Quantity | None = None
    tmax: Quantity | None = None
    lag: Quantity | None = None


@dataclass(frozen=True, slots=True)
class Disposition:
    """Distribution and elimination of one analyte (per 70 kg)."""

    model: str
    volume: Quantity
    clearance: Quantity | None = None
    half_life: Quantity | None = None
    q: Quantity | None = None
    peripheral_volume: Quantity | None = None
    protein_binding: Quantity | None = None
    apparent: bool = False

    def __post_init__(self) -> None:
        if self.model not in ("one_compartment", "two_compartment"):
            raise KnowledgeError(f"model must be one_compartment or two_compartment (got {self.model!r})")
        if self.clearance is None and self.half_life is None:
            raise KnowledgeError("disposition needs clearance or half_life (got neither)")
        if self.model == "two_compartment" and (self.q is None or self.peripheral_volume is None):
            raise KnowledgeError("two_compartment disposition needs q and peripheral_volume")

    @property
    def clearance_l_h(self) -> float:
        """Clearance in L/h, from the half-life and volume when no clearance is published."""
        if self.clearance is not None:
            return self.clearance.value
        assert self.half_life is not None
        return math.log(2) * self.total_volume_l / self.half_life.value

    @property
    def total_volume_l(self) -> float:
        """Central plus peripheral volume."""
        peripheral = self.peripheral_volume.value if self.peripheral_volume else 0.0
        return self.volume.value + peripheral


@dataclass(frozen=True, slots=True)
class MetabolismEdge:
    """The precursor analyte forms `metabolite` with `fraction` of its clearance."""

    metabolite: str
    fraction: Quantity

    def __post_init__(self) -> None:
        if not 0 < self.fraction.value <= 1:
            raise KnowledgeError(f"metabolism fraction must be in (0, 1] (got {self.fraction.value})")


@dataclass(frozen=True, slots=True)
class Analyte:
    """Something measured in serum: a parent drug or an active metabolite."""

    id: str
    name: str
    molar_mass: Quantity
    disposition: Disposition | None
    metabolism: tuple[MetabolismEdge, ...] = ()
    relative_potency: Quantity | None = None
    synonyms: tuple[str, ...] = ()
    gaps: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReferenceRange:
    """A serum reference range over the sum of `analytes`."""

    kind: str
    analytes: tuple[str, ...]
    sampling: str
    low: Quantity | None = None
    high: Quantity | None = None
    alert: Quantity | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Dosing:
    """Label dose limits used for plausibility and splitting doses."""

    usual_max_daily: Quantity | None = None
    usual_max_single: Quantity | None = None


@dataclass(frozen=True, slots=True)
class Formulation:
    """An oral product on a market: solid strength in mg, liquid in mg/mL."""

    form: str
    strength: Quantity
    markets: tuple[str, ...]
    scored: bool | None = None

    @property
    def is_liquid(self) -> bool:
        """Liquids are dosed by volume."""
        return self.strength.unit == "mg/mL"


@dataclass(frozen=True, slots=True)
class Drug:
    """A benzodiazepine, Z-drug or clomethiazole as the knowledge base knows it."""

    id: str
    name: str
    drug_class: str
    atc: tuple[str, ...]
    brands: tuple[str, ...]
    synonyms: tuple[str, ...]
    molar_mass: Quantity
    analyte: str
    equivalence: Equivalence | None
    absorption: Absorption
    dosing: Dosing
    formulations: tuple[Formulation, ...] = ()
    reference_ranges: tuple[ReferenceRange, ...] = ()
    dosed_as_name: str | None = None
    dosed_as_molar_mass: Quantity | None = None
    analyte_molar_mass: float = 0.0
    gaps: tuple[str, ...] = ()

    @property
    def analyte_mass_per_mg(self) -> float:
        """mg of circulating analyte per mg dosed (salts and prodrugs such as clorazepate)."""
        dosed = self.dosed_as_molar_mass.value if self.dosed_as_molar_mass else None
        if dosed is None:
            return 1.0
        return (self.analyte_molar_mass or self.molar_mass.value) / dosed


@dataclass(frozen=True, slots=True)
class Occupancy:
    """GABA-A receptor occupancy as an Emax function of the diazepam-equivalent level."""

    emax: Quantity
    ec50: Quantity
    hill: Quantity
    gaps: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    """Product settings with a stated rationale (not clinical facts)."""

    reference_body_weight: Quantity
    plausible_max_daily_multiple: Quantity
    plausible_max_daily_diazepam_equivalent: Quantity
    interdose_trough_fraction: Quantity
    steady_state_fraction: Quantity
    plausible_min_dose_fraction: Quantity


@dataclass(frozen=True, slots=True)
class SigVocabulary:
    """Frequency phrases -> clock times ("HH:MM"), divided-dose times, as-needed phrases."""

    frequencies: Mapping[str, tuple[str, ...]]
    divided: Mapping[int, tuple[str, ...]]
    as_needed: tuple[str, ...]
