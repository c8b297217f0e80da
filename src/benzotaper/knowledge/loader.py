"""Read knowledge/data/*.toml into validated records; refuse a bad file with a precise message."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pint

from benzotaper.errors import KnowledgeError
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
    SigVocabulary,
    Source,
)
from benzotaper.knowledge.unitreg import registry

DATA_DIR = Path(__file__).parent / "data"

# canonical unit for each dimensionality the files may use
_CANONICAL = {
    "[mass]": "mg",
    "[time]": "h",
    "1 / [time]": "1/h",
    "[length] ** 3": "L",
    "[length] ** 3 / [time]": "L/h",
    "[mass] / [length] ** 3": "ng/mL",
    "[substance] / [length] ** 3": "nmol/L",
    "[mass] / [substance]": "g/mol",
    "dimensionless": "",
}
_PER_KG = {"[length] ** 3 / [mass]": "L", "[length] ** 3 / [time] / [mass]": "L/h"}
_LIQUID_UNIT = "mg/mL"
DRUG_CLASSES = ("benzodiazepine", "z-drug", "other")
FORMS = (
    "tablet",
    "capsule",
    "oral_solution",
    "oral_suspension",
    "orodispersible_tablet",
    "modified_release_tablet",
    "modified_release_capsule",
    "sublingual_tablet",
    "oral_film",
)


class _Context:
    """Where we are in which file, so every error names both."""

    def __init__(self, path: Path, body_weight_kg: float) -> None:
        self.path = path
        self.body_weight_kg = body_weight_kg

    def fail(self, where: str, message: str) -> KnowledgeError:
        return KnowledgeError(f"{self.path.name}: {where}: {message}")


def _dimension_key(unit: pint.Unit) -> str:
    dims = registry().get_dimensionality(unit)
    return "dimensionless" if not dims else str(dims)


def _convert(ctx: _Context, where: str, value: float, unit: str) -> tuple[float, str]:
    """Convert to the canonical unit; per-kg values are scaled by the reference weight."""
    ureg = registry()
    if unit in ("", "1", "fraction"):
        return float(value), ""
    if unit == _LIQUID_UNIT:
        return float(value), _LIQUID_UNIT
    try:
        parsed = ureg.parse_units(unit)
    except (pint.errors.UndefinedUnitError, AttributeError, ValueError) as exc:
        raise ctx.fail(where, f"unit {unit!r} is not a unit pint understands ({exc})") from exc
    key = _dimension_key(parsed)
    if key in _PER_KG:
        q = ureg.Quantity(value, parsed) * ureg.Quantity(ctx.body_weight_kg, "kg")
        target = _PER_KG[key]
    elif key in _CANONICAL:
        q = ureg.Quantity(value, parsed)
        target = _CANONICAL[key]
    else:
        raise ctx.fail(where, f"unit {unit!r} has a dimension the knowledge base does not use")
    if target == "":
        return float(q.to("dimensionless").magnitude), ""
    return float(q.to(target).magnitude), target


def quantity(ctx: _Context, where: str, raw: Any, sources: Mapping[str, Source]) -> Quantity:
    """Build a Quantity from `{value, unit, source, ...}`, checking units and source keys."""
    if not isinstance(raw, dict):
        raise ctx.fail(where, f"expected a table {{value, unit, source}} (got {raw!r})")
    unknown = set(raw) - {"value", "unit", "source", "range", "range_source", "cv", "cv_source", "note"}
    if unknown:
        raise ctx.fail(where, f"unknown keys {sorted(unknown)}")
    for key in ("value", "unit", "source"):
        if key not in raw:
            raise ctx.fail(where, f"missing {key!r} (every number needs value, unit and source)")
    if not isinstance(raw["value"], int | float) or isinstance(raw["value"], bool):
        raise ctx.fail(where, f"value must be a number (got {raw['value']!r})")
    for key in ("source", "range_source", "cv_source"):
        if key in raw and raw[key] not in sources:
            raise ctx.fail(where, f"{key} {raw[key]!r} is not in sources.toml")
    value, unit = _convert(ctx, where, raw["value"], raw["unit"])
    rng = None
    if "range" in raw:
        lo_hi = raw["range"]
        if not isinstance(lo_hi, list) or len(lo_hi) != 2:
            raise ctx.fail(where, f"range must be [low, high] (got {lo_hi!r})")
        rng = (
            _convert(ctx, where, lo_hi[0], raw["unit"])[0],
            _convert(ctx, where, lo_hi[1], raw["unit"])[0],
        )
    try:
        return Quantity(
            value=value,
            unit=unit,
            source=raw["source"],
            range=rng,
            range_source=raw.get("range_source"),
            cv=raw.get("cv"),
            cv_source=raw.get("cv_source"),
            note=raw.get("note"),
        )
    except KnowledgeError as exc:
        raise ctx.fail(where, str(exc)) from exc


def _opt(
    ctx: _Context, table: Mapping[str, Any], key: str, prefix: str, sources: Mapping[str, Source]
) -> Quantity | None:
    return quantity(ctx, f"{prefix}.{key}", table[key], sources) if key in table else None


def _require_unit(ctx: _Context, where: str, q: Quantity | None, units: Iterable[str]) -> None:
    allowed = tuple(units)
    if q is not None and q.unit not in allowed:
        raise ctx.fail(where, f"unit must convert to one of {list(allowed)} (got {q.unit!r})")


def _strings(ctx: _Context, doc: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = doc.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ctx.fail(key, f"expected a list of strings (got {values!r})")
    return tuple(values)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise KnowledgeError(f"{path.name}: knowledge file is missing ({path})")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise KnowledgeError(f"{path.name}: not valid TOML: {exc}") from exc


def read_sources(paths: Iterable[Path]) -> dict[str, Source]:
    """Merge sources.toml with every file's own [sources] table; clashing keys are refused."""
    merged: dict[str, Source] = {}
    for path in paths:
        doc = _read(path)
        table = doc if path.name == "sources.toml" else doc.get("sources", {})
        for key, raw in table.items():
            if not isinstance(raw, dict) or "citation" not in raw:
                raise KnowledgeError(f"{path.name}: sources.{key}: needs a citation")
            source = Source(key, raw["citation"], raw.get("url"), raw.get("reliability", "primary"))
            if key in merged and merged[key] != source:
                raise KnowledgeError(f"{path.name}: sources.{key}: key already used by another source")
            merged[key] = source
    return merged


def read_policy(path: Path, sources: Mapping[str, Source]) -> Policy:
    """The product settings, with the reference weight needed to read per-kg values."""
    ctx = _Context(path, body_weight_kg=1.0)
    table = _read(path).get("policy", {})
    fields = {k: quantity(ctx, f"policy.{k}", v, sources) for k, v in table.items()}
    try:
        return Policy(**fields)
    except TypeError as exc:
        raise ctx.fail("policy", str(exc)) from exc


def read_occupancy(path: Path, sources: Mapping[str, Source]) -> Occupancy:
    """The Emax occupancy model."""
    ctx = _Context(path, 70.0)
    doc = _read(path)
    table = doc.get("occupancy")
    if not isinstance(table, dict):
        raise ctx.fail("occupancy", "missing [occupancy] table")
    parts = {k: quantity(ctx, f"occupancy.{k}", table[k], sources) for k in ("emax", "ec50", "hill")}
    _require_unit(ctx, "occupancy.ec50", parts["ec50"], ["ng/mL"])
    return Occupancy(**parts, gaps=_strings(ctx, doc, "gaps"))


def _disposition(ctx: _Context, raw: Any, sources: Mapping[str, Source]) -> Disposition:
    if not isinstance(raw, dict) or "volume" not in raw:
        raise ctx.fail("disposition", "needs at least volume and clearance or half_life")
    q = {
        k: _opt(ctx, raw, k, "disposition", sources)
        for k in ("clearance", "volume", "half_life", "q", "peripheral_volume", "protein_binding")
    }
    for key in ("clearance", "q"):
        _require_unit(ctx, f"disposition.{key}", q[key], ["L/h"])
    for key in ("volume", "peripheral_volume"):
        _require_unit(ctx, f"disposition.{key}", q[key], ["L"])
    _require_unit(ctx, "disposition.half_life", q["half_life"], ["h"])
    _require_unit(ctx, "disposition.protein_binding", q["protein_binding"], [""])
    volume = q.pop("volume")
    assert volume is not None
    try:
        return Disposition(
            model=raw.get("model", "one_compartment"), volume=volume, apparent=bool(raw.get("apparent", False)), **q
        )
    except KnowledgeError as exc:
        raise ctx.fail("disposition", str(exc)) from exc


def _metabolism(ctx: _Context, doc: Mapping[str, Any], sources: Mapping[str, Source]) -> tuple[MetabolismEdge, ...]:
    edges = []
    for i, raw in enumerate(doc.get("metabolism", [])):
        where = f"metabolism[{i}]"
        if "metabolite" not in raw or "fraction" not in raw:
            raise ctx.fail(where, "needs metabolite and fraction")
        fraction = quantity(ctx, f"{where}.fraction", raw["fraction"], sources)
        try:
            edges.append(MetabolismEdge(raw["metabolite"], fraction))
        except KnowledgeError as exc:
            raise ctx.fail(where, str(exc)) from exc
    return tuple(edges)


def _potency(ctx: _Context, doc: Mapping[str, Any], sources: Mapping[str, Source]) -> Quantity | None:
    disp = doc.get("disposition", {})
    raw = disp.get("relative_potency", doc.get("relative_potency"))
    return None if raw is None else quantity(ctx, "relative_potency", raw, sources)


def read_analyte(path: Path, sources: Mapping[str, Source], weight_kg: float) -> Analyte:
    """A metabolite-only analyte (metabolites/<id>.toml)."""
    ctx = _Context(path, weight_kg)
    doc = _read(path)
    ident = _ident(ctx, doc, path)
    disp = _disposition(ctx, doc["disposition"], sources) if "disposition" in doc else None
    return Analyte(
        id=ident,
        name=doc.get("name", ident),
        molar_mass=_molar_mass(ctx, doc, sources),
        disposition=disp,
        metabolism=_metabolism(ctx, doc, sources),
        relative_potency=_potency(ctx, doc, sources),
        synonyms=_strings(ctx, doc, "synonyms"),
        gaps=_strings(ctx, doc, "gaps"),
    )


def _ident(ctx: _Context, doc: Mapping[str, Any], path: Path) -> str:
    ident = doc.get("id")
    if ident != path.stem:
        raise ctx.fail("id", f"must equal the file name {path.stem!r} (got {ident!r})")
    return str(ident)


def _molar_mass(ctx: _Context, doc: Mapping[str, Any], sources: Mapping[str, Source]) -> Quantity:
    if "molar_mass" not in doc:
        raise ctx.fail("molar_mass", "missing (needed to convert nmol/L)")
    mm = quantity(ctx, "molar_mass", doc["molar_mass"], sources)
    _require_unit(ctx, "molar_mass", mm, ["g/mol"])
    return mm


def _equivalence(ctx: _Context, doc: Mapping[str, Any], sources: Mapping[str, Source]) -> Equivalence | None:
    raw = doc.get("equivalence")
    if raw is None:
        return None
    tables = {
        name: quantity(ctx, f"equivalence.tables.{name}", q, sources) for name, q in raw.get("tables", {}).items()
    }
    for name, q in tables.items():
        _require_unit(ctx, f"equivalence.tables.{name}", q, ["mg"])
        if q.value <= 0:
            raise ctx.fail(f"equivalence.tables.{name}", f"must be positive (got {q.value})")
    try:
        return Equivalence(tables=tables, default_table=raw.get("default_table", ""))
    except KnowledgeError as exc:
        raise ctx.fail("equivalence", str(exc)) from exc


def _absorption(ctx: _Context, doc: Mapping[str, Any], sources: Mapping[str, Source]) -> Absorption:
    raw = doc.get("absorption", {})
    parts = {k: _opt(ctx, raw, k, "absorption", sources) for k in ("bioavailability", "ka", "tmax", "lag")}
    _require_unit(ctx, "absorption.bioavailability", parts["bioavailability"], [""])
    f = parts["bioavailability"]
    if f is not None and not 0 < f.value <= 1:
        raise ctx.fail("absorption.bioavailability", f"must be in (0, 1] (got {f.value})")
    _require_unit(ctx, "absorption.ka", parts["ka"], ["1/h"])
    _require_unit(ctx, "absorption.tmax", parts["tmax"], ["h"])
    _require_unit(ctx, "absorption.lag", parts["lag"], ["h"])
    return Absorption(**parts)


def _reference_ranges(
    ctx: _Context, doc: Mapping[str, Any], sources: Mapping[str, Source]
) -> tuple[ReferenceRange, ...]:
    out = []
    for i, raw in enumerate(doc.get("reference_range", [])):
        where = f"reference_range[{i}]"
        bounds = {k: _opt(ctx, raw, k, where, sources) for k in ("low", "high", "alert")}
        for k, q in bounds.items():
            _require_unit(ctx, f"{where}.{k}", q, ["ng/mL", "nmol/L"])
        if not raw.get("analytes"):
            raise ctx.fail(where, "needs analytes (a list of analyte ids)")
        out.append(
            ReferenceRange(
                kind=raw.get("kind", "therapeutic"),
                analytes=tuple(raw["analytes"]),
                sampling=raw.get("sampling", "trough"),
                note=raw.get("note"),
                **bounds,
            )
        )
    return tuple(out)


def _formulations(ctx: _Context, doc: Mapping[str, Any], sources: Mapping[str, Source]) -> tuple[Formulation, ...]:
    out = []
    for i, raw in enumerate(doc.get("formulation", [])):
        where = f"formulation[{i}]"
        form = raw.get("form")
        if form not in FORMS:
            raise ctx.fail(f"{where}.form", f"must be one of {list(FORMS)} (got {form!r})")
        strength = quantity(ctx, f"{where}.strength", raw.get("strength"), sources)
        liquid = form in ("oral_solution", "oral_suspension")
        _require_unit(ctx, f"{where}.strength", strength, ["mg/mL"] if liquid else ["mg"])
        if strength.value <= 0:
            raise ctx.fail(f"{where}.strength", f"must be positive (got {strength.value})")
        scored = raw.get("scored")
        if scored is not None and not isinstance(scored, bool):
            raise ctx.fail(f"{where}.scored", f"must be true or false (got {scored!r})")
        markets = tuple(raw.get("markets", []))
        if not markets:
            raise ctx.fail(f"{where}.markets", "needs at least one market, e.g. ['UK', 'US']")
        out.append(Formulation(form, strength, markets, scored))
    return tuple(out)


def read_drug(path: Path, sources: Mapping[str, Source], weight_kg: float) -> tuple[Drug, Analyte | None]:
    """A drug file: the Drug and, when it has [disposition], its parent Analyte."""
    ctx = _Context(path, weight_kg)
    doc = _read(path)
    ident = _ident(ctx, doc, path)
    if doc.get("drug_class") not in DRUG_CLASSES:
        raise ctx.fail("drug_class", f"must be one of {list(DRUG_CLASSES)} (got {doc.get('drug_class')!r})")
    dosing_raw = doc.get("dosing", {})
    dosing = Dosing(*(_opt(ctx, dosing_raw, k, "dosing", sources) for k in ("usual_max_daily", "usual_max_single")))
    _require_unit(ctx, "dosing.usual_max_daily", dosing.usual_max_daily, ["mg"])
    _require_unit(ctx, "dosing.usual_max_single", dosing.usual_max_single, ["mg"])
    dosed_as = doc.get("dosed_as", {})
    drug = Drug(
        id=ident,
        name=doc.get("name", ident),
        drug_class=doc["drug_class"],
        atc=_strings(ctx, doc, "atc"),
        brands=_strings(ctx, doc, "brands"),
        synonyms=_strings(ctx, doc, "synonyms"),
        molar_mass=_molar_mass(ctx, doc, sources),
        analyte=doc.get("analyte", ident),
        equivalence=_equivalence(ctx, doc, sources),
        absorption=_absorption(ctx, doc, sources),
        dosing=dosing,
        formulations=_formulations(ctx, doc, sources),
        reference_ranges=_reference_ranges(ctx, doc, sources),
        dosed_as_name=dosed_as.get("name"),
        dosed_as_molar_mass=_opt(ctx, dosed_as, "molar_mass", "dosed_as", sources),
        gaps=_strings(ctx, doc, "gaps"),
    )
    analyte = None
    if "disposition" in doc or drug.analyte == drug.id:
        analyte = Analyte(
            id=drug.analyte,
            name=drug.name,
            molar_mass=drug.molar_mass,
            disposition=_disposition(ctx, doc["disposition"], sources) if "disposition" in doc else None,
            metabolism=_metabolism(ctx, doc, sources),
            relative_potency=_potency(ctx, doc, sources),
            synonyms=drug.synonyms,
        )
    return drug, analyte


_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def read_sig_vocabulary(path: Path) -> SigVocabulary:
    """Frequency abbreviations and their default clock times."""
    doc = _read(path)
    freqs: dict[str, tuple[str, ...]] = {}
    for i, entry in enumerate(doc.get("frequency", [])):
        times = tuple(entry.get("times", []))
        if not times or not all(_CLOCK.fullmatch(t) for t in times):
            raise KnowledgeError(f"{path.name}: frequency[{i}].times must be 'HH:MM' strings (got {times!r})")
        for phrase in entry.get("phrases", []):
            key = phrase.lower().replace(".", "")
            if key in freqs and freqs[key] != times:
                raise KnowledgeError(f"{path.name}: phrase {phrase!r} is listed twice with other times")
            freqs[key] = times
    divided = {int(k): tuple(v) for k, v in doc.get("divided", {}).items()}
    as_needed = tuple(p.lower() for p in doc.get("as_needed", {}).get("phrases", []))
    return SigVocabulary(freqs, divided, as_needed)
