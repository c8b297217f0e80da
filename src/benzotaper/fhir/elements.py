"""Small builders and readers for FHIR JSON (plain dicts): codings, quantities, references, dates and extensions."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any, TypeVar

from benzotaper.errors import FhirError

Json = dict[str, Any]
T = TypeVar("T")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


class Refusal(Exception):
    """A record that is well formed but cannot be mapped; the message is the reason shown to the user."""


def one_line(text: str) -> str:
    """`text` with line breaks, tabs and other unprintable characters written as escapes ('\\n'): one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shown(value: Any) -> str:
    """A value as messages show it: its repr on one line, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def coding(system: str, code: str, display: str | None = None) -> Json:
    """A Coding."""
    out: Json = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(codings: Sequence[Json], text: str | None = None) -> Json:
    """A CodeableConcept."""
    out: Json = {}
    if codings:
        out["coding"] = list(codings)
    if text:
        out["text"] = text
    return out


def reference(url: str, display: str | None = None) -> Json:
    """A Reference."""
    return {"reference": url, "display": display} if display else {"reference": url}


def fhir_datetime(value: datetime, offset: str) -> str:
    """A FHIR dateTime with seconds; a naive (wall-clock) time gets `offset` ('+00:00', '+01:00', 'Z')."""
    text = value.replace(tzinfo=None).isoformat(timespec="seconds")
    return text + ("Z" if offset in ("Z", "+00:00") else offset)


def fhir_time(value: time) -> str:
    """A FHIR time 'HH:MM:SS'."""
    return value.strftime("%H:%M:%S")


def uid(*parts: str) -> str:
    """A deterministic UUID for a resource: the same inputs give the same id (stable exports)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def extension(url: str, **value: Any) -> Json:
    """An extension {url, value[x]} with exactly one value: extension(url, valueString='x')."""
    return {"url": url, **value}


def complex_extension(url: str, parts: Sequence[tuple[str, str, Any]]) -> Json:
    """A complex extension from (name, value type, value) triples; None values are left out."""
    return {"url": url, "extension": [{"url": n, t: v} for n, t, v in parts if v is not None]}


def extensions(element: Mapping[str, Any], url: str) -> list[Json]:
    """The extensions of an element with this url."""
    return [e for e in element.get("extension", []) if isinstance(e, dict) and e.get("url") == url]


def sub_values(ext: Mapping[str, Any], name: str) -> list[Any]:
    """The values of a complex extension's parts called `name` (any value[x])."""
    out = []
    for part in ext.get("extension", []):
        if part.get("url") == name:
            out += [v for k, v in part.items() if k.startswith("value")]
    return out


def sub_value(ext: Mapping[str, Any], name: str, where: str, required: bool = True) -> Any:
    """The single value of a part of a complex extension; FhirError names the field when it is missing."""
    values = sub_values(ext, name)
    if not values:
        if required:
            raise FhirError(f"{where}: extension {ext.get('url')!r} has no {name!r} part")
        return None
    return values[0]


def decimal(value: Any) -> float:
    """A finite number (not a boolean); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a number")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError("too large") from None
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def whole(value: Any) -> int:
    """A whole number (7 or 7.0, not a boolean); ValueError otherwise."""
    if decimal(value) != int(value):
        raise ValueError("not a whole number")
    return int(value)


def text(value: Any) -> str:
    """A string; ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError("not text")
    return value


def json_object(value: Any) -> dict[str, Any]:
    """A JSON object written as text ('{"a": 1}'); ValueError otherwise."""
    try:
        out = json.loads(text(value))
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    if not isinstance(out, dict):
        raise ValueError("not a JSON object")
    return out


ACCEPTED: dict[Callable[[Any], Any], str] = {
    decimal: "a finite number",
    whole: "a whole number",
    text: "text",
    json_object: "a JSON object as text",
}


def part(ext: Mapping[str, Any], name: str, where: str, kind: Callable[[Any], T]) -> T:
    """The single value of a complex extension's part `name` read as `kind`; FhirError naming the part otherwise."""
    value = sub_value(ext, name, where)
    try:
        return kind(value)
    except ValueError:
        raise FhirError(
            f"{where}: extension {ext.get('url')!r} part {name!r}: expected {ACCEPTED[kind]} (got {shown(value)})"
        ) from None


def codings(value: Any) -> list[Json]:
    """The codings of a CodeableConcept (an empty list when there is none)."""
    if not isinstance(value, Mapping):
        return []
    return [c for c in value.get("coding", []) if isinstance(c, dict)]


def code_in(value: Any, system: str) -> str | None:
    """The first code of `system` in a CodeableConcept."""
    return next((str(c["code"]) for c in codings(value) if c.get("system") == system and "code" in c), None)


def concept_text(value: Any) -> str:
    """What a CodeableConcept says in words: its text, else its codings' displays."""
    if not isinstance(value, Mapping):
        return ""
    if value.get("text"):
        return str(value["text"])
    return " / ".join(str(c["display"]) for c in codings(value) if c.get("display"))


def parse_date(text: Any, where: str) -> date:
    """A FHIR date or dateTime as a date (the date part as written)."""
    if isinstance(text, str) and _DATE.match(text):
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            pass
    raise FhirError(f"{where}: expected a date YYYY-MM-DD (got {text!r})")


def parse_datetime(text: Any, where: str) -> datetime:
    """A FHIR dateTime as a naive wall-clock datetime (the offset is dropped, the clock time kept)."""
    if not isinstance(text, str):
        raise FhirError(f"{where}: expected a dateTime (got {text!r})")
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FhirError(f"{where}: expected a dateTime such as 2026-03-01T08:00:00+01:00 (got {text!r})") from None
    return value.replace(tzinfo=None)


def has_clock_time(text: Any) -> bool:
    """Whether a FHIR dateTime carries a time of day (not only a date)."""
    return isinstance(text, str) and "T" in text


def walk_items(items: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Questionnaire(Response) items depth-first, groups opened."""
    for item in items:
        yield item
        yield from walk_items(item.get("item", []))
        for answer in item.get("answer", []):
            yield from walk_items(answer.get("item", []))
