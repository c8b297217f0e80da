"""Mirror-analysis knowledge: the symptom vocabulary and the clues as likelihoods, read from data.

Files: knowledge/data/assess/symptoms.toml and mirror.toml (schema in docs/mirror.md). A clue's
outcome probabilities must each sum to one per hypothesis, so a weight can never be made up of thin air.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benzotaper.knowledge.loader import DATA_DIR, _Context, _read, quantity, read_sources
from benzotaper.knowledge.records import Quantity, Source

ASSESS_DIR = DATA_DIR / "assess"
KINDS = (
    "psychological",
    "sleep",
    "motor",
    "pain",
    "autonomic",
    "sensory",
    "cognitive",
    "gastrointestinal",
    "respiratory",
    "neurological",
    "other",
)
SETTINGS = (
    "prior",
    "withdrawal_at",
    "primary_at",
    "escalation_ratio",
    "initial_relief",
    "reduction_window_from",
    "reduction_window_to",
    "level_min_records",
    "level_min_variation",
    "level_rho",
    "level_alpha",
    "detox_persistence",
)
_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class Action:
    """A benzodiazepine action and the 'mirror' its shortage produces."""

    id: str
    label: str
    mirror: str
    source: str


@dataclass(frozen=True, slots=True)
class SymptomTerm:
    """A symptom the analysis understands: names, the action it mirrors, withdrawal-set membership."""

    id: str
    label: str
    synonyms: tuple[str, ...]
    kind: str
    mirrors: str | None
    withdrawal_set: bool
    sensory_specific: bool
    red_flag: bool
    source: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One answer to a clue with its probability under each hypothesis."""

    name: str
    p_withdrawal: float
    p_primary: float

    @property
    def likelihood_ratio(self) -> float:
        """How much more likely this answer is if the symptom is withdrawal-driven."""
        return self.p_withdrawal / self.p_primary


@dataclass(frozen=True, slots=True)
class Clue:
    """A question from domain.md section 2 whose answer shifts the odds of withdrawal."""

    id: str
    question: str
    source: str
    rationale: str
    outcomes: Mapping[str, Outcome]

    def outcome(self, name: str) -> Outcome:
        """The outcome called `name` (a programming error if absent)."""
        return self.outcomes[name]


@dataclass(frozen=True, slots=True)
class MirrorKnowledge:
    """Everything the mirror analysis reads: actions, vocabulary, clues, settings and their sources."""

    actions: Mapping[str, Action]
    symptoms: Mapping[str, SymptomTerm]
    clues: Mapping[str, Clue]
    settings: Mapping[str, Quantity]
    sources: Mapping[str, Source]
    _names: Mapping[str, str]

    def setting(self, name: str) -> float:
        """A setting's value in its canonical unit (durations in hours)."""
        return self.settings[name].value

    def lookup(self, name: str) -> SymptomTerm | None:
        """The vocabulary term for a symptom name or synonym (case and spacing ignored), or None."""
        key = self._names.get(normalise_symptom(name))
        return self.symptoms[key] if key else None


def normalise_symptom(name: str) -> str:
    """Lower case, single spaces, underscores and hyphens read as spaces."""
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def _str(ctx: _Context, raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ctx.fail(f"{where}.{key}", f"expected a non-empty text (got {value!r})")
    return value


def _source(ctx: _Context, raw: Mapping[str, Any], where: str, sources: Mapping[str, Source]) -> str:
    key = _str(ctx, raw, "source", where)
    if key not in sources:
        raise ctx.fail(f"{where}.source", f"{key!r} is not a known source")
    return key


def _symptom(
    ctx: _Context, raw: Mapping[str, Any], where: str, known: Mapping[str, Any], sources: Mapping[str, Source]
) -> SymptomTerm:
    kind = _str(ctx, raw, "kind", where)
    if kind not in KINDS:
        raise ctx.fail(f"{where}.kind", f"must be one of {', '.join(KINDS)} (got {kind!r})")
    mirrors = raw.get("mirrors")
    if mirrors is not None and mirrors not in known:
        raise ctx.fail(f"{where}.mirrors", f"must be one of {', '.join(known)} (got {mirrors!r})")
    if not isinstance(raw.get("withdrawal_set"), bool):
        raise ctx.fail(f"{where}.withdrawal_set", f"expected true or false (got {raw.get('withdrawal_set')!r})")
    return SymptomTerm(
        id=_str(ctx, raw, "id", where),
        label=_str(ctx, raw, "label", where),
        synonyms=tuple(str(s) for s in raw.get("synonyms", [])),
        kind=kind,
        mirrors=mirrors,
        withdrawal_set=raw["withdrawal_set"],
        sensory_specific=bool(raw.get("sensory_specific", False)),
        red_flag=bool(raw.get("red_flag", False)),
        source=_source(ctx, raw, where, sources),
        note=raw.get("note"),
    )


def _outcomes(ctx: _Context, raw: Mapping[str, Any], where: str) -> dict[str, Outcome]:
    outcomes = {}
    for name, probs in raw.items():
        p_w, p_p = probs.get("withdrawal"), probs.get("primary")
        if not all(isinstance(p, int | float) and 0 < p < 1 for p in (p_w, p_p)):
            raise ctx.fail(f"{where}.{name}", f"withdrawal and primary must be probabilities in (0, 1) (got {probs!r})")
        outcomes[name] = Outcome(name, float(p_w), float(p_p))
    for column in ("p_withdrawal", "p_primary"):
        total = sum(getattr(o, column) for o in outcomes.values())
        if len(outcomes) < 2 or not math.isclose(total, 1.0, abs_tol=_SUM_TOLERANCE):
            raise ctx.fail(
                where, f"{column.removeprefix('p_')} probabilities must sum to 1 over 2+ outcomes (got {total:g})"
            )
    return outcomes


def _clue(ctx: _Context, raw: Mapping[str, Any], where: str, sources: Mapping[str, Source]) -> Clue:
    return Clue(
        id=_str(ctx, raw, "id", where),
        question=_str(ctx, raw, "question", where),
        source=_source(ctx, raw, where, sources),
        rationale=_str(ctx, raw, "rationale", where),
        outcomes=_outcomes(ctx, raw.get("outcomes", {}), f"{where}.outcomes"),
    )


def _name_index(ctx: _Context, symptoms: Iterable[SymptomTerm]) -> dict[str, str]:
    index: dict[str, str] = {}
    for term in symptoms:
        for name in (term.id, term.label, *term.synonyms):
            key = normalise_symptom(name)
            if index.get(key, term.id) != term.id:
                raise ctx.fail(f"symptom {term.id}", f"name {name!r} is already used by {index[key]!r}")
            index[key] = term.id
    return index


def read_mirror_knowledge(symptoms_path: Path, mirror_path: Path) -> MirrorKnowledge:
    """Read and check the vocabulary and the clue file."""
    sources = read_sources([DATA_DIR / "sources.toml", symptoms_path, mirror_path])
    vctx, mctx = _Context(symptoms_path, 1.0), _Context(mirror_path, 1.0)
    vdoc, mdoc = _read(symptoms_path), _read(mirror_path)
    actions = {
        k: Action(
            k,
            _str(vctx, a, "label", f"actions.{k}"),
            _str(vctx, a, "mirror", f"actions.{k}"),
            _source(vctx, a, f"actions.{k}", sources),
        )
        for k, a in vdoc.get("actions", {}).items()
    }
    terms = [_symptom(vctx, s, f"symptom[{i}]", actions, sources) for i, s in enumerate(vdoc.get("symptom", []))]
    raw_settings = mdoc.get("settings", {})
    missing = [k for k in SETTINGS if k not in raw_settings]
    if missing:
        raise mctx.fail("settings", f"missing {', '.join(missing)}")
    settings = {k: quantity(mctx, f"settings.{k}", raw_settings[k], sources) for k in SETTINGS}
    clues = [_clue(mctx, c, f"clue[{i}]", sources) for i, c in enumerate(mdoc.get("clue", []))]
    return MirrorKnowledge(
        actions=actions,
        symptoms={t.id: t for t in terms},
        clues={c.id: c for c in clues},
        settings=settings,
        sources=sources,
        _names=_name_index(vctx, terms),
    )


@functools.cache
def load_mirror_knowledge() -> MirrorKnowledge:
    """The packaged vocabulary and clues (read once)."""
    return read_mirror_knowledge(ASSESS_DIR / "symptoms.toml", ASSESS_DIR / "mirror.toml")
