"""Taper rules as data: safety limits, the substitution method, reduction presets and hold rules.

Read from knowledge/data/taper.toml; every number keeps its source so a plan can cite it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benzotaper.knowledge.loader import _Context, _read, _require_unit, quantity
from benzotaper.knowledge.records import Quantity, Source

KINDS = ("bands", "proportional", "linear", "hyperbolic")
ACTIONS = ("hold", "return")
HOURS_PER_DAY = 24.0


def days(q: Quantity) -> int:
    """A duration quantity (stored in hours) as whole days."""
    return round(q.value / HOURS_PER_DAY)


@dataclass(frozen=True, slots=True)
class Band:
    """Reduction rule while the daily diazepam-equivalent dose is above `above` mg."""

    above: float
    step: Quantity | None = None
    fraction: Quantity | None = None

    @property
    def rule(self) -> Quantity:
        """The sourced number this band applies."""
        q = self.step or self.fraction
        assert q is not None
        return q


@dataclass(frozen=True, slots=True)
class Preset:
    """A named reduction method with its parameters, equivalence table and sources."""

    id: str
    name: str
    kind: str
    table: str
    substitute: bool
    interval: Quantity
    description: str
    fraction: Quantity | None = None
    amount: Quantity | None = None
    stop_from: Quantity | None = None
    near_end_fraction: Quantity | None = None
    near_end_below: Quantity | None = None
    bands: tuple[Band, ...] = ()

    @property
    def sources(self) -> tuple[str, ...]:
        """Every source key the preset's numbers rest on."""
        qs = [self.interval, self.fraction, self.amount, self.stop_from, self.near_end_fraction, self.near_end_below]
        keys = [k for q in qs if q is not None for k in q.sources]
        keys += [k for b in self.bands for k in b.rule.sources]
        return tuple(dict.fromkeys(keys))


@dataclass(frozen=True, slots=True)
class HoldRule:
    """A withdrawal score at or above `min_score` turns into a hold (or a step back) and maybe a slower pace."""

    instrument: str
    min_score: float
    action: str
    days: Quantity
    reason: str
    score_source: str
    slow_factor: Quantity | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """Safety limits and rounding settings every plan obeys."""

    max_reduction_fraction: Quantity
    reduction_window: Quantity
    stop_from_diazepam_equivalent: Quantity
    substitution_tolerance: Quantity
    rounding_tolerance: Quantity
    consolidate_below: Quantity
    liquid_resolution: Quantity
    min_liquid_volume: Quantity


@dataclass(frozen=True, slots=True)
class Substitution:
    """How a regimen is switched to a long-acting drug."""

    default_target: str
    targets: tuple[str, ...]
    direct_by_default: tuple[str, ...]
    first_dose: str
    step: Quantity
    chunk: Quantity
    max_single: Mapping[str, Quantity] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TaperRules:
    """Everything the planner needs from the knowledge base besides drugs."""

    limits: Limits
    substitution: Substitution
    presets: Mapping[str, Preset]
    hold_rules: tuple[HoldRule, ...]


def _q(ctx: _Context, raw: Mapping[str, Any], key: str, where: str, sources: Mapping[str, Source]) -> Quantity:
    if key not in raw:
        raise ctx.fail(f"{where}.{key}", "missing")
    return quantity(ctx, f"{where}.{key}", raw[key], sources)


def _opt(ctx: _Context, raw: Mapping[str, Any], key: str, where: str, sources: Mapping[str, Source]) -> Quantity | None:
    return _q(ctx, raw, key, where, sources) if key in raw else None


def _band(ctx: _Context, raw: Any, where: str, sources: Mapping[str, Source]) -> Band:
    if not isinstance(raw, dict) or "above" not in raw or ("step" in raw) == ("fraction" in raw):
        raise ctx.fail(where, "needs 'above' (mg) and exactly one of 'step' (mg) or 'fraction'")
    band = Band(float(raw["above"]), _opt(ctx, raw, "step", where, sources), _opt(ctx, raw, "fraction", where, sources))
    _require_unit(ctx, f"{where}.step", band.step, ["mg"])
    _require_unit(ctx, f"{where}.fraction", band.fraction, [""])
    return band


def _preset(ctx: _Context, raw: Mapping[str, Any], i: int, sources: Mapping[str, Source]) -> Preset:
    where = f"preset[{i}]"
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ctx.fail(f"{where}.kind", f"must be one of {list(KINDS)} (got {kind!r})")
    opt = {k: _opt(ctx, raw, k, where, sources) for k in ("fraction", "amount", "stop_from", "near_end_fraction")}
    bands = tuple(_band(ctx, b, f"{where}.bands[{j}]", sources) for j, b in enumerate(raw.get("bands", [])))
    if kind == "bands" and not bands:
        raise ctx.fail(f"{where}.bands", "a 'bands' preset needs at least one band")
    if kind in ("proportional", "hyperbolic") and opt["fraction"] is None:
        raise ctx.fail(f"{where}.fraction", f"a {kind!r} preset needs a fraction")
    interval = _q(ctx, raw, "interval", where, sources)
    _require_unit(ctx, f"{where}.interval", interval, ["h"])
    return Preset(
        id=str(raw.get("id")),
        name=str(raw.get("name", raw.get("id"))),
        kind=kind,
        table=str(raw.get("table", "")),
        substitute=bool(raw.get("substitute", True)),
        interval=interval,
        description=str(raw.get("description", "")),
        near_end_below=_opt(ctx, raw, "near_end_below", where, sources),
        bands=tuple(sorted(bands, key=lambda b: -b.above)),
        **opt,
    )


def _hold_rule(ctx: _Context, raw: Mapping[str, Any], i: int, sources: Mapping[str, Source]) -> HoldRule:
    where = f"hold_rule[{i}]"
    if raw.get("action") not in ACTIONS:
        raise ctx.fail(f"{where}.action", f"must be one of {list(ACTIONS)} (got {raw.get('action')!r})")
    if raw.get("score_source") not in sources:
        raise ctx.fail(f"{where}.score_source", f"{raw.get('score_source')!r} is not a known source")
    return HoldRule(
        instrument=str(raw["instrument"]),
        min_score=float(raw["min_score"]),
        action=raw["action"],
        days=_q(ctx, raw, "days", where, sources),
        reason=str(raw.get("reason", "")),
        score_source=raw["score_source"],
        slow_factor=_opt(ctx, raw, "slow_factor", where, sources),
    )


def read_taper_rules(path: Path, sources: Mapping[str, Source]) -> TaperRules:
    """Load and validate taper.toml."""
    ctx = _Context(path, 70.0)
    doc = _read(path)
    lim_raw = doc.get("limits", {})
    limits = Limits(**{f: _q(ctx, lim_raw, f, "limits", sources) for f in Limits.__dataclass_fields__})
    sub_raw = doc.get("substitution", {})
    max_single = {
        k: quantity(ctx, f"substitution.max_single.{k}", v, sources) for k, v in sub_raw.get("max_single", {}).items()
    }
    substitution = Substitution(
        default_target=str(sub_raw.get("default_target", "diazepam")),
        targets=tuple(sub_raw.get("targets", ["diazepam"])),
        direct_by_default=tuple(sub_raw.get("direct_by_default", [])),
        first_dose=str(sub_raw.get("first_dose", "evening")),
        step=_q(ctx, sub_raw, "step", "substitution", sources),
        chunk=_q(ctx, sub_raw, "chunk", "substitution", sources),
        max_single=max_single,
    )
    presets = {}
    for i, raw in enumerate(doc.get("preset", [])):
        preset = _preset(ctx, raw, i, sources)
        if preset.id in presets:
            raise ctx.fail(f"preset[{i}].id", f"{preset.id!r} is used twice")
        presets[preset.id] = preset
    holds = tuple(_hold_rule(ctx, raw, i, sources) for i, raw in enumerate(doc.get("hold_rule", [])))
    return TaperRules(limits, substitution, presets, tuple(sorted(holds, key=lambda r: -r.min_score)))
