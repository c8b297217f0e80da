"""A patient timeline for the mirror analysis: drug history, symptoms, treatments (YAML or JSON).

The format is documented in docs/mirror.md. Validation happens here, at the edge: every error names
the field (e.g. `symptoms[3].severity`), the value received and what is accepted.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node

from benzotaper.errors import AssessmentError

SEVERITY_MAX = 10  # the timeline's severity scale is 0-10 (issue 5 format)
FIRST_YEAR, LAST_YEAR = 1900, 2100  # dates outside these years are typing slips (and overflow date arithmetic)
MAX_DEPTH = 20  # nesting levels a YAML/JSON timeline may have (the format needs 4)
_ISO_DAY = re.compile(r"\s*\d{4}-\d{2}-\d{2}")
_SHOWN = reprlib.Repr()  # a value quoted in a message, cut short when long or deep
_SHOWN.maxstring = _SHOWN.maxother = 80


def _calendar(value: Any, accepted: str) -> Any:
    """Before pydantic: a date is a date or ISO text, never a number (pydantic would read 2020 as 1970-01-01)."""
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DAY.match(value)):
        return value
    raise ValueError(f"expected {accepted}")


def _in_years(value: date) -> date:
    """After pydantic: within FIRST_YEAR-LAST_YEAR; a date-time keeps its clock time and drops a UTC offset."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"expected a date in the years {FIRST_YEAR}-{LAST_YEAR}")
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)  # the clock time as written, as the levels CSV does
    return value


Day = Annotated[date, BeforeValidator(lambda v: _calendar(v, "a date YYYY-MM-DD")), AfterValidator(_in_years)]
Moment = Annotated[
    datetime,
    BeforeValidator(lambda v: _calendar(v, "a date-time YYYY-MM-DDTHH:MM (or a date)")),
    AfterValidator(_in_years),
]


def _shown(value: Any) -> str:
    """A value as a message quotes it: dates in ISO form, anything long cut short."""
    return value.isoformat() if isinstance(value, date) else _SHOWN.repr(value)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True, allow_inf_nan=False)


class Patient(_Frozen):
    """Who the timeline is about (used for the report and crisis help by country)."""

    sex: Literal["F", "M", "X", "female", "male", "other"] | None = None
    birth_year: int | None = Field(default=None, ge=FIRST_YEAR, le=LAST_YEAR)
    country: str | None = None


class Indication(_Frozen):
    """The original reason for the benzodiazepine, with its own symptoms."""

    condition: str
    since: Day | None = None
    symptoms: tuple[str, ...] = ()


class BzdCourse(_Frozen):
    """One period of benzodiazepine use at one regimen (`dose` is a sig such as '2.5 mg tds')."""

    drug: str
    dose: str
    start: Day
    end: Day | None = None

    @model_validator(mode="after")
    def _ordered(self) -> BzdCourse:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class TakenDose(_Frozen):
    """A dose actually taken, with its time (a diary), overriding the schedule where present."""

    drug: str
    mg: float = Field(gt=0)
    at: Moment


class SymptomRecord(_Frozen):
    """A symptom: its onset (a date), or a timed severity record, or both; `resolved` when it went."""

    symptom: str
    onset: Day | None = None
    at: Moment | None = None
    severity: float | None = Field(default=None, ge=0, le=SEVERITY_MAX)
    resolved: Day | None = None
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
    start: Day | None = None
    end: Day | None = None
    effect: Literal["none", "partial", "good"] | None = None


class Detox(_Frozen):
    """A detoxification (taper) period; `end` is the last benzodiazepine dose."""

    start: Day
    end: Day | None = None
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
    assessed_on: Day | None = None

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
    shown = "" if isinstance(value, Mapping) else f" (got {_shown(value)})"
    message = first["msg"].removeprefix("Value error, ")
    if first.get("type") == "missing":
        message = "missing: this field must be given (see docs/mirror.md for the format)"
    elif first.get("type") == "int_parsing_size":  # a number past 64 bits: pydantic says only "exceeded maximum size"
        message = "the number is too large; expected a whole number in the field's range"
    elif not any(word in message for word in ("expect", "should", "must", "e.g.")):
        message += "; expected the format of docs/mirror.md"
    extra = f"; {len(exc.errors()) - 1} more problem(s)" if len(exc.errors()) > 1 else ""
    return f"timeline: {_field(tuple(first['loc']))}: {message}{shown}{extra}"


def parse_timeline(raw: Any) -> Timeline:
    """Validate a decoded document (dict) into a Timeline; AssessmentError names the field."""
    if raw is None:
        raise AssessmentError("timeline: the document is empty; expected a mapping with bzd_history and symptoms")
    if not isinstance(raw, Mapping):
        raise AssessmentError(f"timeline: expected a mapping with bzd_history and symptoms (got {type(raw).__name__})")
    try:
        return Timeline.model_validate(raw)
    except ValidationError as exc:
        raise AssessmentError(_plain(exc)) from None
    except RecursionError:  # a value nested past the interpreter's limit (a JSON file can hold one)
        raise AssessmentError(
            f"timeline: nested more than {MAX_DEPTH} levels deep; expected the documented format"
        ) from None


class _Refused(ConstructorError):
    """A YAML construct that a timeline does not accept (an alias, a duplicate key, too deep)."""


class TimelineLoader(yaml.SafeLoader):
    """Safe YAML (tags that build Python objects are refused) with the gotchas of YAML 1.1 closed.

    Aliases are refused (a 'billion laughs' document expands exponentially as it is validated), so are
    duplicate keys (the second would silently win) and nesting deeper than MAX_DEPTH. `yes`/`no`/`on`/`off`
    stay text ('country: NO' is Norway); pydantic still reads them as booleans where a field is one. A value
    the YAML constructors cannot build (2020-13-45, a 5,000-digit number) is refused with its line and column.
    """

    _depth = 0

    def _mark(self) -> yaml.Mark:
        """Where the next event starts."""
        return self.peek_event().start_mark  # type: ignore[no-untyped-call,no-any-return]

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            raise _Refused(None, None, "aliases (*name) are not accepted; write the value out", self._mark())
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(None, None, f"nested more than {MAX_DEPTH} levels deep", self._mark())
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError) as exc:
            raise _Refused(None, None, f"{_SHOWN.repr(node.value)} cannot be read ({exc})", node.start_mark) from None

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):  # `!!map [a, b]`: a sequence tagged as a mapping
            problem = f"a {node.id} tagged {node.tag!r} is not a mapping; drop the tag"
            raise _Refused(None, None, problem, node.start_mark)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = key_node.value if key_node.tag == "tag:yaml.org,2002:str" else None
            if key is not None and key in seen:
                raise _Refused(None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


TimelineLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
TimelineLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: where (line, column) and what."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = "; ".join(str(p) for p in (exc.context, exc.problem) if p)
        return where + what
    if isinstance(exc, yaml.reader.ReaderError):
        return f"position {exc.position}: character {exc.character!r} is not accepted ({exc.reason})"
    return " ".join(str(exc).split())


def load_timeline_text(text: str, name: str = "timeline", as_json: bool = False) -> Timeline:
    """Decode YAML (or JSON) text and validate it; `name` is the file named in errors."""
    kind = "JSON" if as_json else "YAML"
    try:
        raw = json.loads(text) if as_json else yaml.load(text, Loader=TimelineLoader)  # TimelineLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise AssessmentError(
            f"timeline file {name}: not valid YAML: {_yaml_problem(exc)}; expected YAML or JSON as in docs/mirror.md"
        ) from None
    except json.JSONDecodeError as exc:
        raise AssessmentError(
            f"timeline file {name}: not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError) as exc:  # json: a number past the digit limit, nesting past the stack
        raise AssessmentError(f"timeline file {name}: not valid {kind}: {' '.join(str(exc).split())}") from None
    return parse_timeline(raw)


def read_timeline(path: Path) -> Timeline:
    """Read a YAML (or, with a .json suffix, JSON) timeline file (UTF-8)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AssessmentError(f"timeline file {str(path)!r} cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise AssessmentError(
            f"timeline file {path.name}: byte {exc.object[exc.start : exc.start + 1]!r} at position {exc.start} "
            "is not UTF-8; save the file as UTF-8 text"
        ) from None
    return load_timeline_text(text, path.name, path.suffix.lower() == ".json")
