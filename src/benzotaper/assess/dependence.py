"""Dependence screen: the signs of knowledge/data/assess/dependence.toml plus the SDS, as a result with reasons.

Answers are yes/no per sign (the sign id or one of its synonyms as the key). The SDS score and its cut-off
come from the caller (the SDS instrument scores the answers). A screen is not a diagnosis, and a "likely"
result asks for a clinical assessment and a planned taper, never for stopping abruptly.

>>> screen_dependence({"craving": "yes", "several_prescribers": True}, None, None).result
'likely'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benzotaper.assess.crisis import source_list
from benzotaper.assess.instruments import shown
from benzotaper.errors import AssessmentError
from benzotaper.knowledge.safety_net import DependenceSign, SafetyNet, load_safety_net

RESULTS = ("likely", "possible", "unlikely")
_YES = ("yes", "y", "true", "1")
_NO = ("no", "n", "false", "0")


@dataclass(frozen=True, slots=True)
class DependenceScreen:
    """The result, why, and what was not asked."""

    result: str
    reasons: tuple[str, ...]
    positive: tuple[DependenceSign, ...]
    negative: tuple[str, ...]
    unanswered: tuple[str, ...]
    sds_score: int | None
    sds_cutoff: int | None
    sources: tuple[str, ...]

    def to_dict(self, net: SafetyNet) -> dict[str, Any]:
        """JSON-ready form: each positive sign with its sources, then the bibliography."""
        return {
            "result": self.result,
            "reasons": list(self.reasons),
            "positive_signs": [
                {"sign": s.id, "meaning": s.meaning, "reliability": s.reliability, "sources": list(s.sources)}
                for s in self.positive
            ],
            "negative_signs": list(self.negative),
            "unanswered": list(self.unanswered),
            "sds": {"score": self.sds_score, "cutoff": self.sds_cutoff} if self.sds_score is not None else None,
            "note": "A screen, not a diagnosis. Never stop a benzodiazepine abruptly after regular use.",
            "sources": source_list(net, self.sources),
        }


def answer_value(key: str, value: object) -> bool:
    """A yes/no answer: true/false, yes/no, y/n or 1/0; anything else is refused naming the key."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else None
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise AssessmentError(f"answer {shown(key)} must be yes or no (got {shown(value)})")


def _by_key(net: SafetyNet) -> dict[str, DependenceSign]:
    return {k.lower(): s for s in net.signs for k in (s.id, *s.synonyms)}


def _read_answers(answers: Mapping[str, object], net: SafetyNet) -> dict[str, bool]:
    known = ", ".join(s.id for s in net.signs)
    if not isinstance(answers, Mapping):
        raise AssessmentError(f"screen answers must be an object of sign: yes/no (got {type(answers).__name__})")
    index = _by_key(net)
    out: dict[str, bool] = {}
    for key, value in answers.items():
        sign = index.get(key.strip().lower()) if isinstance(key, str) else None
        if sign is None:
            raise AssessmentError(f"unknown screen answer {shown(key)}; the signs are: {known}")
        if sign.id in out:
            raise AssessmentError(f"screen answer {shown(key)} repeats the sign {sign.id!r}")
        out[sign.id] = answer_value(key, value)
    return out


def _check_sds(sds_score: int | None, sds_cutoff: int | None) -> None:
    for name, v in (("SDS score", sds_score), ("SDS cut-off", sds_cutoff)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise AssessmentError(f"{name} must be a whole number of 0 or more (got {shown(v)})")
    if sds_score is not None and sds_cutoff is None:
        raise AssessmentError("an SDS score needs its cut-off (from the SDS instrument)")


def screen_dependence(
    answers: Mapping[str, object], sds_score: int | None, sds_cutoff: int | None, net: SafetyNet | None = None
) -> DependenceScreen:
    """'likely', 'possible' or 'unlikely' with a reason for each positive sign and for the SDS."""
    net = net or load_safety_net()
    _check_sds(sds_score, sds_cutoff)
    given = _read_answers(answers, net)
    if not given and sds_score is None:
        raise AssessmentError("nothing to screen: give at least one sign answer or an SDS score")
    positive = tuple(s for s in net.signs if given.get(s.id))
    reasons = [f"positive sign: {s.meaning} ({', '.join(s.sources)})" for s in positive]
    sds_positive = sds_score is not None and sds_cutoff is not None and sds_score >= sds_cutoff
    if sds_score is not None:
        verdict = "at or above" if sds_positive else "below"
        reasons.append(f"SDS {sds_score} is {verdict} the cut-off {sds_cutoff}. {net.dependence.sds_note}")
    rule = net.dependence
    if sds_positive or len(positive) >= rule.likely_min_signs.value:
        result = "likely"
    elif len(positive) >= rule.possible_min_signs.value:
        result = "possible"
    else:
        result = "unlikely"
    reasons.append(
        f"{len(positive)} of {len(given)} answered signs positive; 'likely' from {rule.likely_min_signs.value:g} signs "
        f"or an SDS at the cut-off, 'possible' from {rule.possible_min_signs.value:g} ({rule.likely_min_signs.source})"
    )
    keys = [k for s in positive for k in s.sources] + [rule.likely_min_signs.source]
    return DependenceScreen(
        result=result,
        reasons=tuple(reasons),
        positive=positive,
        negative=tuple(s.id for s in net.signs if given.get(s.id) is False),
        unanswered=tuple(s.id for s in net.signs if s.id not in given),
        sds_score=sds_score,
        sds_cutoff=sds_cutoff,
        sources=tuple(dict.fromkeys(keys)),
    )
