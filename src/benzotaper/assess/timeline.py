"""A patient timeline for the mirror analysis: drug history, symptoms, treatments (YAML or JSON).

The format is documented in docs/mirror.md. Validation happens here, at the edge: every error names
the field (e.g. `symptoms[3].severity`), the value received and what is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from benzotaper.errors import AssessmentError

SEVERITY_MAX = 10  # the timeline's severity scale is 0-10 (issue 5 format)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)


class Patient(_Frozen):
    """Who the timeline is about (used for the report and crisis help by country)."""

    sex: Literal["F", "M", "X", "female", "male", "other"] | None = None
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    country: str | None = None


class Indication(_Frozen):
    """The original reason for the benzodiazepine, with its own symptoms."""

    condition: str
    since: date | None = None
    symptoms: tuple[str, ...] = ()


class BzdCourse(_Frozen):
    """One period of benzodiazepine use at one regimen (`dose` is a sig such as '2.5 mg tds')."""

    drug: str
    dose: str
    start: date
    end: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> BzdCourse:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class TakenDose(_Frozen):
    """A dose actually taken, with its time (a diary), overriding the schedule where present."""

    drug: str
    mg: float = Field(gt=0)
    at: datetime


class SymptomRecord(_Frozen):
    """A symptom: its onset (a date), or a timed severity record, or both; `resolved` when it went."""

    symptom: str
    onset: date | None = None
    at: datetime | None = None
    severity: float | None = Field(default=None, ge=0, le=SEVERITY_MAX)
    resolved: date | None = None
    note: str | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _date_is_midnight(cls, value: Any) -> Any:
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime.combine(value, time())
        return value


class Treatment(_Frozen):
    """A non-benzodiazepine treatment aimed at a symptom, and whether it worked."""

    drug: str
    for_: str = Field(alias="for")
    start: date | None = None
    end: date | None = None
    effect: Literal["none", "partial", "good"] | None = None


class Detox(_Frozen):
    """A detoxification (taper) period; `end` is the last benzodiazepine dose."""

    start: date
    end: date | None = None
    serum_guided: bool = False


class Timeline(_Frozen):
    """The whole input of the mirror analysis."""

    patient: Patient = Patient()
    indication: Indication | None = None
    bzd_history: tuple[BzdCourse, ...] = Field(min_length=1)
    doses: tuple[TakenDose, ...] = ()
    symptoms: tuple[SymptomRecord, ...] = Field(min_length=1)
    treatments: tuple[Treatment, ...] = ()
    bzd_relief: tuple[str, ...] = ()
    bzd_no_relief: tuple[str, ...] = ()
    detox: Detox | None = None
    assessed_on: date | None = None

    @property
    def first_bzd(self) -> date:
        """The day benzodiazepine use began."""
        return min(c.start for c in self.bzd_history)


def _field(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "timeline"


def _plain(exc: ValidationError) -> str:
    """The first validation problem as one sentence naming field, value and what is accepted."""
    first = exc.errors()[0]
    value = first.get("input")
    shown = "" if isinstance(value, Mapping) else f" (got {value!r})"
    message = first["msg"].removeprefix("Value error, ")
    extra = f"; {len(exc.errors()) - 1} more problem(s)" if len(exc.errors()) > 1 else ""
    return f"timeline: {_field(tuple(first['loc']))}: {message}{shown}{extra}"


def parse_timeline(raw: Any) -> Timeline:
    """Validate a decoded document (dict) into a Timeline; AssessmentError names the field."""
    if not isinstance(raw, Mapping):
        raise AssessmentError(f"timeline: expected a mapping with bzd_history and symptoms (got {type(raw).__name__})")
    try:
        return Timeline.model_validate(raw)
    except ValidationError as exc:
        raise AssessmentError(_plain(exc)) from None


def read_timeline(path: Path) -> Timeline:
    """Read a YAML (or JSON) timeline file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AssessmentError(f"timeline file {str(path)!r} cannot be read ({exc.strerror})") from None
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise AssessmentError(
            f"timeline file {path.name}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({exc})"
        ) from None
    return parse_timeline(raw)
