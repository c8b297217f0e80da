"""Withdrawal and dependence instruments as data: items, answers, scoring, bands, cut-offs and licence.

Read from knowledge/data/assess/instruments/*.toml (schema in docs/instruments.md); every item text, band and
cut-off names its source, so a score can say how far it can be trusted.
"""

from __future__ import annotations

import functools
import itertools
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benzotaper.errors import KnowledgeError
from benzotaper.knowledge.loader import DATA_DIR, _Context, _read, _require_unit, quantity, read_sources
from benzotaper.knowledge.records import Quantity, Source

INSTRUMENT_DIR = Path("assess") / "instruments"
WORDING = ("verified", "paraphrased")
RATERS = ("patient", "clinician")
SCORING_METHODS = ("sum",)
_TOP_KEYS = {
    "id", "name", "full_name", "purpose", "purpose_source", "administration", "time_frame", "items_source",
    "wording", "wording_note", "no_bands_reason", "sources", "licence", "option_sets", "item", "scoring",
    "band", "cutoff", "trend",
}  # fmt: skip
_ITEM_KEYS = {"id", "text", "rater", "options", "option_set", "wording", "wording_source", "note"}
_CUTOFF_KEYS = {
    "id", "value", "published_as", "population", "source", "default", "sensitivity", "specificity", "auc", "note",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Option:
    """One allowed answer to an item: its score and what it means."""

    value: int
    label: str


@dataclass(frozen=True, slots=True)
class Item:
    """One question or observation, with the answers it allows and how sure we are of its wording."""

    id: str
    number: int
    text: str
    rater: str
    options: tuple[Option, ...]
    wording: str
    wording_source: str
    note: str | None = None

    @property
    def values(self) -> tuple[int, ...]:
        """The allowed scores, lowest first."""
        return tuple(o.value for o in self.options)

    def label(self, value: int) -> str:
        """What an allowed score means."""
        return next(o.label for o in self.options if o.value == value)


@dataclass(frozen=True, slots=True)
class Band:
    """A labelled range of total scores (inclusive at both ends)."""

    min: int
    max: int
    label: str
    source: str


@dataclass(frozen=True, slots=True)
class Cutoff:
    """A published threshold: a total at or above `value` is positive in the population it was validated in."""

    id: str
    value: int
    published_as: str
    population: str
    source: str
    default: bool
    sensitivity: float | None = None
    specificity: float | None = None
    auc: float | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Licence:
    """What is known about the right to use and reproduce the instrument."""

    status: str
    permission_required: bool
    note: str
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Instrument:
    """A scored questionnaire or rating scale, exactly as far as the sources let us state it."""

    id: str
    name: str
    full_name: str
    purpose: str
    administration: str
    time_frame: str
    wording: str
    wording_note: str
    licence: Licence
    items: tuple[Item, ...]
    min_score: int
    max_score: int
    scoring_source: str
    items_source: str
    stable_within: Quantity
    sources: Mapping[str, Source]
    bands: tuple[Band, ...] = ()
    no_bands_reason: str | None = None
    cutoffs: tuple[Cutoff, ...] = ()

    def item(self, key: str) -> Item:
        """An item by id, in any case; KeyError if there is none."""
        wanted = key.strip().lower()
        for item in self.items:
            if item.id.lower() == wanted:
                return item
        raise KeyError(key)

    def band_for(self, total: int) -> Band | None:
        """The band holding this total, or None when the instrument has no bands."""
        return next((b for b in self.bands if b.min <= total <= b.max), None)

    def cutoff(self, cutoff_id: str | None = None) -> Cutoff | None:
        """A cut-off by id, or the default one; None when the instrument has none."""
        if cutoff_id is None:
            return next((c for c in self.cutoffs if c.default), None)
        return next((c for c in self.cutoffs if c.id == cutoff_id), None)


def load_instruments(extra_dirs: Iterable[Path] = ()) -> Mapping[str, Instrument]:
    """Every instrument under knowledge/data (plus clinic-local data directories), keyed by id."""
    extra = tuple(Path(d) for d in extra_dirs)
    return _load((DATA_DIR, *extra)) if extra else _default_instruments()


@functools.cache
def _default_instruments() -> Mapping[str, Instrument]:
    return _load((DATA_DIR,))


def _load(dirs: tuple[Path, ...]) -> Mapping[str, Instrument]:
    files = [p for d in dirs for p in sorted((d / INSTRUMENT_DIR).glob("*.toml"))]
    sources = read_sources([DATA_DIR / "sources.toml", DATA_DIR / "policy.toml", *files])
    out: dict[str, Instrument] = {}
    for path in files:
        instrument = read_instrument(path, sources)
        if instrument.id in out:
            raise KnowledgeError(f"{path.name}: id: instrument {instrument.id!r} is defined twice")
        out[instrument.id] = instrument
    return types.MappingProxyType(out)


def read_instrument(path: Path, sources: Mapping[str, Source]) -> Instrument:
    """Load and validate one instrument file; refuse it with a message naming the file and the field."""
    ctx = _Context(path, 1.0)
    doc = _read(path)
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise ctx.fail(unknown[0], f"unknown key (allowed: {sorted(_TOP_KEYS)})")
    if doc.get("id") != path.stem:
        raise ctx.fail("id", f"must equal the file name {path.stem!r} (got {doc.get('id')!r})")
    used: set[str] = set()
    option_sets = _option_sets(ctx, doc.get("option_sets", {}), sources, used)
    items = _items(ctx, doc.get("item", []), option_sets, sources, used)
    wording = _choice(ctx, doc, "wording", "wording", WORDING)
    if wording == "verified" and any(i.wording != "verified" for i in items):
        raise ctx.fail("wording", "is 'verified' but some items are 'paraphrased'")
    lo, hi, scoring_source = _scoring(ctx, doc.get("scoring", {}), items, sources, used)
    bands = _bands(ctx, doc.get("band", []), lo, hi, sources, used)
    no_bands = _text(ctx, doc, "no_bands_reason", "no_bands_reason") if not bands else None
    trend = doc.get("trend", {})
    stable = quantity(ctx, "trend.stable_within", trend.get("stable_within"), sources)
    _require_unit(ctx, "trend.stable_within", stable, [""])
    used.add(stable.source)
    used.add(_source(ctx, doc, "items_source", "items_source", sources))
    if "purpose_source" in doc:
        used.add(_source(ctx, doc, "purpose_source", "purpose_source", sources))
    licence = _licence(ctx, doc.get("licence"), sources, used)
    cutoffs = _cutoffs(ctx, doc.get("cutoff", []), lo, hi, sources, used)
    return Instrument(
        id=path.stem,
        name=_text(ctx, doc, "name", "name"),
        full_name=_text(ctx, doc, "full_name", "full_name"),
        purpose=_text(ctx, doc, "purpose", "purpose"),
        administration=_text(ctx, doc, "administration", "administration"),
        time_frame=_text(ctx, doc, "time_frame", "time_frame"),
        wording=wording,
        wording_note=_text(ctx, doc, "wording_note", "wording_note"),
        licence=licence,
        items=items,
        min_score=lo,
        max_score=hi,
        scoring_source=scoring_source,
        items_source=str(doc["items_source"]),
        stable_within=stable,
        bands=bands,
        no_bands_reason=no_bands,
        cutoffs=cutoffs,
        sources=types.MappingProxyType({k: sources[k] for k in sorted(used)}),
    )


def _text(ctx: _Context, raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ctx.fail(where, f"missing or empty (expected text, got {value!r})")
    return value


def _int(ctx: _Context, raw: Mapping[str, Any], key: str, where: str) -> int:
    value = raw.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ctx.fail(where, f"must be a whole number (got {value!r})")
    return value


def _choice(ctx: _Context, raw: Mapping[str, Any], key: str, where: str, allowed: tuple[str, ...]) -> str:
    value = raw.get(key)
    if value not in allowed:
        raise ctx.fail(where, f"must be one of {list(allowed)} (got {value!r})")
    return str(value)


def _source(ctx: _Context, raw: Mapping[str, Any], key: str, where: str, sources: Mapping[str, Source]) -> str:
    value = raw.get(key)
    if value is None:
        raise ctx.fail(where, "missing source (every item text, band and cut-off needs one)")
    if value not in sources:
        raise ctx.fail(where, f"source {value!r} is not in sources.toml or this file's [sources]")
    return str(value)


def _options(ctx: _Context, raw: Any, where: str) -> tuple[Option, ...]:
    if not isinstance(raw, list) or not raw:
        raise ctx.fail(where, "needs a non-empty list of {value, label}")
    options = []
    for j, opt in enumerate(raw):
        if not isinstance(opt, dict):
            raise ctx.fail(f"{where}[{j}]", f"expected {{value, label}} (got {opt!r})")
        value = _int(ctx, opt, "value", f"{where}[{j}].value")
        options.append(Option(value, _text(ctx, opt, "label", f"{where}[{j}].label")))
    for prev, nxt in itertools.pairwise(options):
        if nxt.value <= prev.value:
            raise ctx.fail(where, f"option values must increase (got {prev.value} then {nxt.value})")
    return tuple(options)


def _option_sets(
    ctx: _Context, raw: Mapping[str, Any], sources: Mapping[str, Source], used: set[str]
) -> dict[str, tuple[Option, ...]]:
    out = {}
    for name, table in raw.items():
        where = f"option_sets.{name}"
        if not isinstance(table, dict):
            raise ctx.fail(where, "expected a table {source, options}")
        used.add(_source(ctx, table, "source", f"{where}.source", sources))
        out[name] = _options(ctx, table.get("options"), f"{where}.options")
    return out


def _items(
    ctx: _Context, raw: Any, sets: Mapping[str, tuple[Option, ...]], sources: Mapping[str, Source], used: set[str]
) -> tuple[Item, ...]:
    if not isinstance(raw, list) or not raw:
        raise ctx.fail("item", "needs at least one [[item]]")
    items: list[Item] = []
    for i, entry in enumerate(raw):
        where = f"item[{i}]"
        if not isinstance(entry, dict):
            raise ctx.fail(where, "expected an [[item]] table")
        unknown = sorted(set(entry) - _ITEM_KEYS)
        if unknown:
            raise ctx.fail(f"{where}.{unknown[0]}", "unknown key")
        ident = _text(ctx, entry, "id", f"{where}.id")
        if any(it.id.lower() == ident.lower() for it in items):
            raise ctx.fail(f"{where}.id", f"{ident!r} is used twice (ids are compared in any case)")
        if ("options" in entry) == ("option_set" in entry):
            raise ctx.fail(where, "needs exactly one of 'options' or 'option_set'")
        if "option_set" in entry and entry["option_set"] not in sets:
            raise ctx.fail(f"{where}.option_set", f"{entry['option_set']!r} is not in [option_sets]")
        opts = sets.get(entry.get("option_set", "")) or _options(ctx, entry.get("options"), f"{where}.options")
        source = _source(ctx, entry, "wording_source", f"{where}.wording_source", sources)
        used.add(source)
        items.append(
            Item(
                id=ident,
                number=i + 1,
                text=_text(ctx, entry, "text", f"{where}.text"),
                rater=_choice(ctx, entry, "rater", f"{where}.rater", RATERS),
                options=opts,
                wording=_choice(ctx, entry, "wording", f"{where}.wording", WORDING),
                wording_source=source,
                note=entry.get("note"),
            )
        )
    return tuple(items)


def _scoring(
    ctx: _Context, raw: Mapping[str, Any], items: tuple[Item, ...], sources: Mapping[str, Source], used: set[str]
) -> tuple[int, int, str]:
    _choice(ctx, raw, "method", "scoring.method", SCORING_METHODS)
    lo, hi = _int(ctx, raw, "min", "scoring.min"), _int(ctx, raw, "max", "scoring.max")
    want_lo, want_hi = sum(i.values[0] for i in items), sum(i.values[-1] for i in items)
    if (lo, hi) != (want_lo, want_hi):
        raise ctx.fail("scoring", f"min/max {lo}-{hi} do not match the items' range {want_lo}-{want_hi}")
    source = _source(ctx, raw, "source", "scoring.source", sources)
    used.add(source)
    return lo, hi, source


def _bands(
    ctx: _Context, raw: Any, lo: int, hi: int, sources: Mapping[str, Source], used: set[str]
) -> tuple[Band, ...]:
    bands = []
    expected = lo
    for i, entry in enumerate(raw):
        where = f"band[{i}]"
        if not isinstance(entry, dict):
            raise ctx.fail(where, "expected a [[band]] table")
        band = Band(
            _int(ctx, entry, "min", f"{where}.min"),
            _int(ctx, entry, "max", f"{where}.max"),
            _text(ctx, entry, "label", f"{where}.label"),
            _source(ctx, entry, "source", f"{where}.source", sources),
        )
        if band.min > band.max:
            raise ctx.fail(where, f"min {band.min} is above max {band.max}")
        if band.min != expected:
            kind = "overlaps the band before" if band.min < expected else "leaves a gap before it"
            raise ctx.fail(f"{where}.min", f"{band.min} {kind} (expected {expected}; bands must cover {lo}-{hi})")
        expected = band.max + 1
        used.add(band.source)
        bands.append(band)
    if bands and expected != hi + 1:
        raise ctx.fail(f"band[{len(bands) - 1}].max", f"bands end at {expected - 1}, not at the maximum score {hi}")
    return tuple(bands)


def _cutoffs(
    ctx: _Context, raw: Any, lo: int, hi: int, sources: Mapping[str, Source], used: set[str]
) -> tuple[Cutoff, ...]:
    out: list[Cutoff] = []
    for i, entry in enumerate(raw):
        where = f"cutoff[{i}]"
        if not isinstance(entry, dict):
            raise ctx.fail(where, "expected a [[cutoff]] table")
        unknown = sorted(set(entry) - _CUTOFF_KEYS)
        if unknown:
            raise ctx.fail(f"{where}.{unknown[0]}", "unknown key")
        value = _int(ctx, entry, "value", f"{where}.value")
        if not lo < value <= hi:
            raise ctx.fail(f"{where}.value", f"{value} is outside the score range {lo}-{hi}")
        for key in ("sensitivity", "specificity", "auc"):
            stat = entry.get(key)
            if stat is not None and (isinstance(stat, bool) or not isinstance(stat, int | float) or not 0 <= stat <= 1):
                raise ctx.fail(f"{where}.{key}", f"must be a fraction between 0 and 1 (got {stat!r})")
        if not isinstance(entry.get("default"), bool):
            raise ctx.fail(f"{where}.default", f"must be true or false (got {entry.get('default')!r})")
        cutoff = Cutoff(
            id=_text(ctx, entry, "id", f"{where}.id"),
            value=value,
            published_as=_text(ctx, entry, "published_as", f"{where}.published_as"),
            population=_text(ctx, entry, "population", f"{where}.population"),
            source=_source(ctx, entry, "source", f"{where}.source", sources),
            default=entry["default"],
            sensitivity=_fraction(entry, "sensitivity"),
            specificity=_fraction(entry, "specificity"),
            auc=_fraction(entry, "auc"),
            note=entry.get("note"),
        )
        if any(c.id == cutoff.id for c in out):
            raise ctx.fail(f"{where}.id", f"{cutoff.id!r} is used twice")
        used.add(cutoff.source)
        out.append(cutoff)
    if out and sum(c.default for c in out) != 1:
        raise ctx.fail("cutoff", "exactly one cut-off must have default = true")
    return tuple(out)


def _fraction(raw: Mapping[str, Any], key: str) -> float | None:
    return None if raw.get(key) is None else float(raw[key])


def _licence(ctx: _Context, raw: Any, sources: Mapping[str, Source], used: set[str]) -> Licence:
    if not isinstance(raw, dict):
        raise ctx.fail("licence", "missing [licence] table {status, permission_required, note, source?}")
    if not isinstance(raw.get("permission_required"), bool):
        raise ctx.fail("licence.permission_required", f"must be true or false (got {raw.get('permission_required')!r})")
    source = _source(ctx, raw, "source", "licence.source", sources) if "source" in raw else None
    if source:
        used.add(source)
    return Licence(
        _text(ctx, raw, "status", "licence.status"),
        raw["permission_required"],
        _text(ctx, raw, "note", "licence.note"),
        source,
    )
