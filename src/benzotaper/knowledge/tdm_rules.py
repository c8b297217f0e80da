"""Serum-level monitoring settings as data: residual error, interval, eliminator labels, sampling, guided taper.

Read from knowledge/data/tdm.toml. The priors themselves are each analyte's clearance/volume `cv`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benzotaper.knowledge.loader import DATA_DIR, _Context, _read, quantity, read_sources
from benzotaper.knowledge.records import Quantity, Source

VERDICTS = ("consistent", "lower", "higher", "above_alert")
_SECTIONS: dict[str, tuple[str, ...]] = {
    "error": ("proportional", "lloq_cv"),
    "levels": ("max_plausible",),
    "fit": ("outlier_z",),
    "interpret": ("interval", "population_draws", "seed"),
    "eliminator": ("slow_below_centile", "fast_above_centile"),
    "sampling": ("settle_half_lives",),
    "guided": (
        "fall_per_week",
        "fall_per_week_limit",
        "slow_below_fraction",
        "slow_factor",
        "weekly_tolerance",
        "step",
        "hold_below",
        "samples_ahead",
    ),
}


@dataclass(frozen=True, slots=True)
class Reason:
    """One possible explanation of a verdict, with its source."""

    verdict: str
    text: str
    source: str


@dataclass(frozen=True)
class TdmKnowledge:
    """The settings of tdm.toml by section and name, each a sourced Quantity."""

    settings: Mapping[str, Mapping[str, Quantity]]
    reasons: tuple[Reason, ...]
    sampling_time: str
    sampling_source: str
    sources: Mapping[str, Source]

    def q(self, section: str, name: str) -> Quantity:
        """One setting, e.g. q('error', 'proportional')."""
        return self.settings[section][name]

    def value(self, section: str, name: str) -> float:
        """A setting's value in its canonical unit."""
        return self.settings[section][name].value

    def reasons_for(self, verdict: str) -> tuple[Reason, ...]:
        """The explanations stored for a verdict."""
        return tuple(r for r in self.reasons if r.verdict == verdict)


def _reason(ctx: _Context, raw: Any, where: str, sources: Mapping[str, Source]) -> Reason:
    if not isinstance(raw, dict) or not {"verdict", "text", "source"} <= set(raw):
        raise ctx.fail(where, "needs verdict, text and source")
    if raw["verdict"] not in VERDICTS:
        raise ctx.fail(where, f"verdict must be one of {list(VERDICTS)} (got {raw['verdict']!r})")
    if raw["source"] not in sources:
        raise ctx.fail(where, f"source {raw['source']!r} is not in sources.toml")
    return Reason(raw["verdict"], str(raw["text"]), raw["source"])


def read_tdm_knowledge(path: Path) -> TdmKnowledge:
    """Read and check tdm.toml: every setting present, every source known, fractions in (0, 1]."""
    others = [DATA_DIR / n for n in ("sources.toml", "policy.toml", "taper.toml")]
    sources = read_sources([*others, path])
    ctx = _Context(path, 1.0)
    doc = _read(path)
    settings: dict[str, dict[str, Quantity]] = {}
    for section, names in _SECTIONS.items():
        table = doc.get(section, {})
        missing = [n for n in names if n not in table]
        if missing:
            raise ctx.fail(section, f"missing {', '.join(missing)}")
        settings[section] = {n: quantity(ctx, f"{section}.{n}", table[n], sources) for n in names}
    for section, name in (("error", "proportional"), ("error", "lloq_cv"), ("interpret", "interval")):
        if not 0 < settings[section][name].value < 1:
            raise ctx.fail(f"{section}.{name}", "must be a fraction between 0 and 1")
    if settings["error"]["lloq_cv"].value < settings["error"]["proportional"].value:
        raise ctx.fail("error.lloq_cv", "the CV at the LLOQ cannot be below the proportional CV")
    sampling = doc.get("sampling", {})
    if sampling.get("time_source") not in sources:
        raise ctx.fail("sampling.time_source", "needs a known source")
    reasons = tuple(_reason(ctx, r, f"reason[{i}]", sources) for i, r in enumerate(doc.get("reason", [])))
    return TdmKnowledge(settings, reasons, str(sampling.get("time", "")), sampling["time_source"], sources)


@functools.cache
def load_tdm_knowledge() -> TdmKnowledge:
    """The packaged TDM settings (read once)."""
    return read_tdm_knowledge(DATA_DIR / "tdm.toml")
