"""The safety net as data: crisis lines, risk factors, co-use warnings, red flags, dependence signs, pathways.

Read from knowledge/data/assess/{crisis,risk,dependence,pathways}.toml; every item keeps its source keys so
the app can cite them. A malformed file is refused with a KnowledgeError naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from benzotaper.knowledge.loader import DATA_DIR, _Context, _read, quantity, read_sources
from benzotaper.knowledge.records import Quantity, Source
from benzotaper.knowledge.safety_records import (
    CountryHelp,
    CoUseWarning,
    CrisisData,
    CrisisLine,
    DependenceRule,
    DependenceSign,
    EmergencyNumber,
    Pathway,
    RedFlag,
    RiskFactor,
    SafetyNet,
    SettingRule,
    Trigger,
)
from benzotaper.knowledge.unitreg import registry

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "FILES",
    "FLAGS",
    "LINE_KINDS",
    "NUMBERS",
    "RELIABILITY",
    "SETTINGS",
    "SUBSTANCES",
    "TRIGGERS",
    "CoUseWarning",
    "CountryHelp",
    "CrisisData",
    "CrisisLine",
    "DependenceRule",
    "DependenceSign",
    "EmergencyNumber",
    "Pathway",
    "RedFlag",
    "RiskFactor",
    "SafetyNet",
    "SettingRule",
    "Trigger",
    "in_canonical",
    "load_safety_net",
    "read_safety_net",
]

FILES = ("crisis.toml", "risk.toml", "dependence.toml", "pathways.toml")
RELIABILITY = ("primary", "secondary", "weak", "policy")
LINE_KINDS = ("crisis", "suicide", "emergency", "health_advice")
SETTINGS = ("inpatient", "specialist", "caution")
ACTIONS = ("crisis", "emergency")
CATEGORIES = ("detox", "monitoring", "setting", "psychological", "support", "aftercare", "safety")
FLAGS = (
    "seizure_history",
    "previous_complicated_withdrawal",
    "alcohol_dependence",
    "polysubstance_dependence",
    "unstable_medical_illness",
    "unstable_psychiatric_illness",
    "no_support",
    "pregnant",
)
NUMBERS = {"diazepam_mg": "mg", "age": "year", "years_of_use": "year", "drug_count": ""}  # profile field -> unit
SUBSTANCES = ("opioids", "alcohol", "gabapentinoids", "other_cns_depressants", "stimulants")
TRIGGERS = ("flag", "above", "at_least", "co_use", "finding", "drug")


class _Reader:
    """Typed field access with errors that name file and field."""

    def __init__(self, path: Path, sources: Mapping[str, Source]) -> None:
        self.ctx = _Context(path, 70.0)
        self.sources = sources
        self.doc = _read(path)

    def text(self, raw: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str) or (default is None and not value.strip()):
            raise self.ctx.fail(f"{where}.{key}", f"needs a non-empty text (got {value!r})")
        return value

    def texts(self, raw: Mapping[str, Any], key: str, where: str, required: bool = False) -> tuple[str, ...]:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or (required and not value):
            raise self.ctx.fail(f"{where}.{key}", f"needs a list of texts (got {value!r})")
        return tuple(value)

    def choice(self, raw: Mapping[str, Any], key: str, where: str, choices: Iterable[str]) -> str:
        allowed = tuple(choices)
        if raw.get(key) not in allowed:
            raise self.ctx.fail(f"{where}.{key}", f"must be one of {list(allowed)} (got {raw.get(key)!r})")
        return str(raw[key])

    def keys(self, raw: Mapping[str, Any], where: str, key: str = "sources") -> tuple[str, ...]:
        keys = self.texts(raw, key, where, required=True)
        for k in keys:
            if k not in self.sources:
                raise self.ctx.fail(f"{where}.{key}", f"{k!r} is not a known source")
        return keys

    def table(self, raw: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = raw.get(key)
        if not isinstance(value, dict):
            raise self.ctx.fail(key, "missing table")
        return value

    def tables(self, key: str) -> list[dict[str, Any]]:
        value = self.doc.get(key, [])
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            raise self.ctx.fail(key, "needs at least one [[" + key + "]] table")
        return value

    def unique(self, items: Iterable[str], what: str) -> None:
        seen: set[str] = set()
        for item in items:
            if item in seen:
                raise self.ctx.fail(what, f"{item!r} is used twice")
            seen.add(item)


def _emergency(r: _Reader, raw: Any, where: str) -> EmergencyNumber:
    if not isinstance(raw, dict):
        raise r.ctx.fail(where, "needs { number, name, sources }")
    return EmergencyNumber(
        r.text(raw, "number", where), r.text(raw, "name", where), r.keys(raw, where), r.text(raw, "note", where, "")
    )


def _line(r: _Reader, raw: Mapping[str, Any], where: str) -> CrisisLine:
    return CrisisLine(
        name=r.text(raw, "name", where),
        operator=r.text(raw, "operator", where),
        number=r.text(raw, "number", where),
        kind=r.choice(raw, "kind", where, LINE_KINDS),
        hours=r.text(raw, "hours", where, ""),
        languages=r.texts(raw, "languages", where),
        channels=r.texts(raw, "channels", where),
        url=r.text(raw, "url", where, ""),
        sources=r.keys(raw, where),
        note=r.text(raw, "note", where, ""),
    )


def _crisis(r: _Reader) -> CrisisData:
    countries = {}
    for code, raw in r.table(r.doc, "country").items():
        where = f"country.{code}"
        if len(code) != 2 or not code.isupper() or not isinstance(raw, dict):
            raise r.ctx.fail(where, "country codes are ISO 3166 alpha-2 in capitals, e.g. 'PL'")
        lines = raw.get("line", [])
        if not isinstance(lines, list) or not lines:
            raise r.ctx.fail(f"{where}.line", "needs at least one [[country.XX.line]]")
        countries[code] = CountryHelp(
            code,
            r.text(raw, "name", where),
            _emergency(r, raw.get("emergency"), f"{where}.emergency"),
            tuple(_line(r, ln, f"{where}.line[{i}]") for i, ln in enumerate(lines)),
        )
    fallback, advice = r.table(r.doc, "eu_fallback"), r.table(r.doc, "advice")
    aliases = {str(k): str(v) for k, v in r.doc.get("aliases", {}).items()}
    for alias, target in aliases.items():
        if target not in countries and target not in fallback.get("members", []):
            raise r.ctx.fail(f"aliases.{alias}", f"points to {target!r}, which is neither a country nor an EU member")
    return CrisisData(
        countries=countries,
        aliases=aliases,
        eu_members=frozenset(r.texts(fallback, "members", "eu_fallback", required=True)),
        eu_emergency=_emergency(r, fallback, "eu_fallback"),
        advice=r.text(advice, "emergency", "advice"),
        advice_sources=r.keys(advice, "advice"),
        generic_advice=r.text(advice, "generic", "advice"),
    )


def _trigger(r: _Reader, raw: Any, where: str, thresholds: Mapping[str, Quantity]) -> Trigger:
    if not isinstance(raw, dict) or len(set(raw) & set(TRIGGERS)) != 1:
        raise r.ctx.fail(where, f"needs exactly one of {list(TRIGGERS)}")
    kind = next(k for k in TRIGGERS if k in raw)
    if kind == "flag":
        return Trigger(kind, (r.choice(raw, "flag", where, FLAGS),))
    if kind in ("above", "at_least"):
        name, field = r.choice(raw, kind, where, thresholds), r.choice(raw, "field", where, NUMBERS)
        canonical = "h" if NUMBERS[field] == "year" else NUMBERS[field]
        if thresholds[name].unit != canonical:
            raise r.ctx.fail(
                where, f"threshold {name!r} is in {thresholds[name].unit!r}, field {field!r} needs {canonical!r}"
            )
        return Trigger(kind, (name,), field)
    values = r.texts(raw, kind, where, required=True)
    vocab = {"co_use": SUBSTANCES, "finding": None, "drug": None}[kind]
    if vocab is not None and not set(values) <= set(vocab):
        raise r.ctx.fail(f"{where}.{kind}", f"must be among {list(vocab)} (got {list(values)})")
    return Trigger(kind, values)


def _risk(
    r: _Reader,
) -> tuple[dict[str, Quantity], tuple[RiskFactor, ...], dict[str, CoUseWarning], tuple[RedFlag, ...], SettingRule]:
    thresholds = {k: quantity(r.ctx, f"thresholds.{k}", v, r.sources) for k, v in r.table(r.doc, "thresholds").items()}
    factors = tuple(
        RiskFactor(
            r.text(f, "id", w),
            r.text(f, "name", w),
            r.choice(f, "setting", w, SETTINGS),
            _trigger(r, f.get("trigger"), f"{w}.trigger", thresholds),
            r.text(f, "reason", w),
            r.choice(f, "reliability", w, RELIABILITY[:3]),
            r.keys(f, w),
            r.text(f, "note", w, ""),
        )
        for w, f in ((f"factor[{i}]", f) for i, f in enumerate(r.tables("factor")))
    )
    co_use = {}
    for i, c in enumerate(r.tables("co_use")):
        w = f"co_use[{i}]"
        sub = r.choice(c, "substance", w, SUBSTANCES)
        co_use[sub] = CoUseWarning(
            sub, r.text(c, "title", w), r.text(c, "message", w), r.text(c, "advice", w), r.keys(c, w)
        )
    flags = tuple(
        RedFlag(
            r.text(f, "id", w),
            r.text(f, "name", w),
            tuple(s.lower() for s in r.texts(f, "synonyms", w, True)),
            r.choice(f, "action", w, ACTIONS),
            r.text(f, "message", w),
            r.keys(f, w),
        )
        for w, f in ((f"red_flag[{i}]", f) for i, f in enumerate(r.tables("red_flag")))
    )
    r.unique((f.id for f in factors), "factor.id")
    r.unique((f.id for f in flags), "red_flag.id")
    known = {f.id for f in flags}
    for i, f in enumerate(factors):
        if f.trigger.kind == "finding" and not set(f.trigger.values) <= known:
            raise r.ctx.fail(f"factor[{i}].trigger.finding", f"unknown red flag in {list(f.trigger.values)}")
    s = r.table(r.doc, "setting")
    setting = SettingRule(
        r.text(s, "default_reason", "setting"),
        r.text(s, "inpatient_reason", "setting"),
        r.text(s, "specialist_reason", "setting"),
        r.text(s, "rule", "setting"),
        r.keys(s, "setting"),
        r.text(s, "never_abrupt", "setting"),
        r.keys(s, "setting", "never_abrupt_sources"),
    )
    return thresholds, factors, co_use, flags, setting


def _dependence(r: _Reader) -> tuple[tuple[DependenceSign, ...], DependenceRule]:
    signs = tuple(
        DependenceSign(
            r.text(s, "id", w),
            r.text(s, "question", w),
            r.text(s, "meaning", w),
            r.texts(s, "synonyms", w),
            r.choice(s, "reliability", w, RELIABILITY[:3]),
            r.keys(s, w),
        )
        for w, s in ((f"sign[{i}]", s) for i, s in enumerate(r.tables("sign")))
    )
    r.unique((k for s in signs for k in (s.id, *s.synonyms)), "sign.id/synonyms")
    raw = r.table(r.doc, "rule")
    qs = {k: quantity(r.ctx, f"rule.{k}", raw.get(k), r.sources) for k in ("likely_min_signs", "possible_min_signs")}
    for k, q in qs.items():
        if q.unit != "" or q.value < 0:
            raise r.ctx.fail(f"rule.{k}", f"must be a non-negative count without unit (got {q.value} {q.unit!r})")
    if qs["possible_min_signs"].value > qs["likely_min_signs"].value:
        raise r.ctx.fail("rule.possible_min_signs", "must not exceed likely_min_signs")
    return signs, DependenceRule(**qs, sds_note=r.text(raw, "sds_note", "rule"))


def _pathways(r: _Reader) -> tuple[Pathway, ...]:
    items = tuple(
        Pathway(
            r.text(p, "id", w),
            r.text(p, "name", w),
            r.choice(p, "category", w, CATEGORIES),
            r.text(p, "description", w),
            r.choice(p, "reliability", w, RELIABILITY[:3]),
            r.keys(p, w),
            r.text(p, "note", w, ""),
        )
        for w, p in ((f"pathway[{i}]", p) for i, p in enumerate(r.tables("pathway")))
    )
    r.unique((p.id for p in items), "pathway.id")
    return items


def _check_reliability(paths: Iterable[Path]) -> None:
    for path in paths:
        for key, raw in _read(path).get("sources", {}).items():
            if raw.get("reliability") not in RELIABILITY:
                raise _Context(path, 70.0).fail(f"sources.{key}.reliability", f"must be one of {list(RELIABILITY)}")


def _paths(extra_dirs: Iterable[Path]) -> list[Path]:
    """Each file from the last directory that has it: a clinic directory overrides a whole file."""
    dirs = [DATA_DIR, *map(Path, extra_dirs)]
    paths = []
    for name in FILES:
        found = [d / "assess" / name for d in dirs if (d / "assess" / name).exists()]
        paths.append(found[-1] if found else DATA_DIR / "assess" / name)
    return paths


def read_safety_net(extra_dirs: Iterable[Path] = ()) -> SafetyNet:
    """Load and validate the four safety-net files (plus clinic overrides) without caching."""
    paths = _paths(extra_dirs)
    _check_reliability(paths)
    sources = read_sources([DATA_DIR / n for n in ("sources.toml", "policy.toml", "taper.toml")] + paths)
    crisis, risk, dep, path = (_Reader(p, sources) for p in paths)
    thresholds, factors, co_use, flags, setting = _risk(risk)
    signs, rule = _dependence(dep)
    return SafetyNet(
        sources, _crisis(crisis), thresholds, factors, co_use, flags, setting, signs, rule, _pathways(path)
    )


@cache
def _default() -> SafetyNet:
    return read_safety_net()


def load_safety_net(extra_dirs: Iterable[Path] = ()) -> SafetyNet:
    """The safety net; the default (no clinic directories) is loaded once and cached."""
    dirs = tuple(extra_dirs)
    return read_safety_net(dirs) if dirs else _default()


def in_canonical(field: str, value: float) -> float:
    """A profile number in the canonical unit its thresholds use (years become hours)."""
    unit = NUMBERS[field]
    return float(registry().Quantity(value, unit).to("h").magnitude) if unit == "year" else float(value)
