"""Rating scales scored by the core."""

from __future__ import annotations

from typing import Any

from benzotaper.assess.instruments import score
from benzotaper.errors import BenzotaperError
from benzotaper.web.kb import instruments


def score_answers(instrument: str, answers: list[int] | dict[str, int]) -> dict[str, Any]:
    """Score a scale with the core (raises AssessmentError naming the item)."""
    if instrument not in instruments():
        raise BenzotaperError(f"instrument {instrument!r} unknown; use one of {', '.join(sorted(instruments()))}")
    result = score(instruments()[instrument], answers)
    return {
        "total": result.total,
        "band": result.band or "",
        "dependent": result.dependent,
        "warnings": list(result.warnings),
    }
