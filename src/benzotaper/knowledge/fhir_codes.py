"""FHIR codes and settings as data: code-system URLs, LOINC codes of serum levels, SNOMED routes, local namespace.

Read from knowledge/data/fhir.toml (schema at the top of that file). Every code names the source it was read in.
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benzotaper.knowledge.loader import DATA_DIR, _Context, _read, read_sources
from benzotaper.knowledge.records import Source

SYSTEMS = ("snomed", "rxnorm", "loinc", "ucum", "dose_rate_type", "ordinal_value")
INDICATORS = ("info", "warning", "critical")
ROUTE_GROUPS = ("oral", "oromucosal", "rectal", "parenteral", "nasal", "transdermal", "topical")


@dataclass(frozen=True, slots=True)
class LoincCode:
    """A LOINC code of a serum or plasma level: the analytes it measures (several = a sum)."""

    code: str
    display: str
    analytes: tuple[str, ...]
    source: str
    note: str | None = None


@dataclass(frozen=True)
class FhirCodes:
    """Everything fhir.toml holds, checked on load."""

    systems: Mapping[str, str]
    local_base: str
    loinc: tuple[LoincCode, ...]
    routes: Mapping[str, str]  # SNOMED code -> route group
    analysed_routes: tuple[str, ...]
    event_timing: Mapping[str, str]
    drop_words: tuple[str, ...]
    drop_patterns: tuple[re.Pattern[str], ...]
    severity: Mapping[str, str]
    cds_indicator: Mapping[str, str]
    cds_title: str
    sources: Mapping[str, Source]

    def system(self, name: str) -> str:
        """A code-system or extension URL by its short name (snomed, rxnorm, loinc, ucum, ...)."""
        return self.systems[name]

    def local(self, kind: str, name: str) -> str:
        """A local URL: local('CodeSystem', 'analyte') -> '<base>/CodeSystem/analyte'."""
        return f"{self.local_base}/{kind}/{name}"

    def loinc_for(self, code: str) -> LoincCode | None:
        """The LOINC entry for a code, or None when the code is not in the value set."""
        return next((c for c in self.loinc if c.code == code), None)

    def loinc_of(self, analyte: str) -> LoincCode | None:
        """The LOINC code written for one analyte (the first single-analyte entry), or None."""
        return next((c for c in self.loinc if c.analytes == (analyte,)), None)

    def route_code(self, group: str) -> str:
        """The SNOMED code written for a route group (the first listed)."""
        return next(code for code, g in self.routes.items() if g == group)


def _source(ctx: _Context, raw: Mapping[str, Any], where: str, sources: Mapping[str, Source]) -> str:
    key = raw.get("source")
    if key not in sources:
        raise ctx.fail(where, f"source {key!r} is not in sources.toml or this file's [sources]")
    return str(key)


def _systems(ctx: _Context, doc: Mapping[str, Any], sources: Mapping[str, Source]) -> dict[str, str]:
    raw = doc.get("systems", {})
    missing = [s for s in SYSTEMS if s not in raw]
    if missing:
        raise ctx.fail("systems", f"missing {missing}")
    out = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or not str(entry.get("url", "")).startswith(("http://", "https://")):
            raise ctx.fail(f"systems.{name}", "needs {url = 'http(s)://...', source}")
        _source(ctx, entry, f"systems.{name}", sources)
        out[name] = str(entry["url"])
    return out


def _loinc(ctx: _Context, raw: Any, sources: Mapping[str, Source]) -> tuple[LoincCode, ...]:
    out: list[LoincCode] = []
    for i, entry in enumerate(raw or []):
        where = f"loinc[{i}]"
        code = str(entry.get("code", ""))
        if not re.fullmatch(r"\d{1,7}-\d", code):
            raise ctx.fail(f"{where}.code", f"not a LOINC code (got {code!r})")
        if any(c.code == code for c in out):
            raise ctx.fail(f"{where}.code", f"{code} is listed twice")
        analytes = entry.get("analytes")
        if not isinstance(analytes, list) or not analytes:
            raise ctx.fail(f"{where}.analytes", "needs a non-empty list of analyte ids")
        source = _source(ctx, entry, where, sources)
        out.append(LoincCode(code, str(entry.get("display", "")), tuple(analytes), source, entry.get("note")))
    return tuple(out)


def _routes(
    ctx: _Context, raw: Mapping[str, Any], sources: Mapping[str, Source]
) -> tuple[dict[str, str], tuple[str, ...]]:
    routes: dict[str, str] = {}
    for group in ROUTE_GROUPS:
        entry = raw.get(group)
        if not isinstance(entry, dict):
            raise ctx.fail(f"routes.{group}", "needs {snomed = [codes], source}")
        _source(ctx, entry, f"routes.{group}", sources)
        for code in entry.get("snomed", []):
            routes[str(code)] = group
    analysed = tuple(raw.get("analysed", []))
    if not analysed or set(analysed) - set(ROUTE_GROUPS):
        raise ctx.fail("routes.analysed", f"must list route groups from {list(ROUTE_GROUPS)} (got {list(analysed)})")
    return routes, analysed


def read_fhir_codes(path: Path = DATA_DIR / "fhir.toml") -> FhirCodes:
    """Read and check fhir.toml."""
    sources = read_sources([DATA_DIR / "sources.toml", path])
    ctx = _Context(path, 1.0)
    doc = _read(path)
    local = doc.get("local", {})
    base = str(local.get("base", "")).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ctx.fail("local.base", f"must be an http(s) URL (got {base!r})")
    _source(ctx, local, "local", sources)
    routes, analysed = _routes(ctx, doc.get("routes", {}), sources)
    timing = doc.get("event_timing", {})
    _source(ctx, timing, "event_timing", sources)
    text = doc.get("dosage_text", {})
    _source(ctx, text, "dosage_text", sources)
    issue = doc.get("detected_issue", {})
    _source(ctx, issue, "detected_issue", sources)
    cds = doc.get("cds", {})
    _source(ctx, cds, "cds", sources)
    indicator = {str(k): str(v) for k, v in cds.get("indicator", {}).items()}
    bad = sorted(v for v in indicator.values() if v not in INDICATORS)
    if bad:
        raise ctx.fail("cds.indicator", f"indicators must be one of {list(INDICATORS)} (got {bad})")
    return FhirCodes(
        systems=types.MappingProxyType(_systems(ctx, doc, sources)),
        local_base=base,
        loinc=_loinc(ctx, doc.get("loinc"), sources),
        routes=types.MappingProxyType(routes),
        analysed_routes=analysed,
        event_timing=types.MappingProxyType({str(k): str(v) for k, v in timing.get("codes", {}).items()}),
        drop_words=tuple(str(w).lower() for w in text.get("drop", [])),
        drop_patterns=tuple(re.compile(p, re.IGNORECASE) for p in text.get("drop_patterns", [])),
        severity=types.MappingProxyType({str(k): str(v) for k, v in issue.get("severity", {}).items()}),
        cds_indicator=types.MappingProxyType(indicator),
        cds_title=str(cds.get("service_title", "benzotaper")),
        sources=types.MappingProxyType(sources),
    )


@functools.cache
def load_fhir_codes() -> FhirCodes:
    """The packaged fhir.toml (read once)."""
    return read_fhir_codes()
