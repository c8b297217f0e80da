"""Validate FHIR resources (as dicts) with the R4 models of fhir.resources, in both directions.

fhir.resources 8 defaults to FHIR R5; the R4 (4.0/4.3) models live in the `fhir.resources.R4B` sub-package, which
is what FHIR R4 bundles are checked against here. A failure names the resource and the field.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from benzotaper.errors import FhirError
from benzotaper.fhir.elements import one_line, shown

INSTALL_HINT = "FHIR validation needs fhir.resources: pip install 'benzotaper[fhir]'"


@functools.cache
def _model_class(resource_type: str) -> Any:
    """The R4 model class of a resource type; None when FHIR R4 has no such resource."""
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError:  # pragma: no cover - the extra is installed in tests
        raise FhirError(INSTALL_HINT) from None
    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError):  # ValueError: "' ' is not a valid FHIR Model"
        return None


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BLANK = "must not be empty or only spaces (FHIR forbids empty values)"


def _field(loc: tuple[Any, ...]) -> str:
    """'dosageInstruction[0].timing'; a key that is not a plain name is quoted: ".'a\\nb'"."""
    text = ""
    for part in loc:
        name = str(part) if _NAME.match(str(part)) else repr(part)
        text += f"[{part}]" if isinstance(part, int) else (f".{name}" if text else name)
    return text or "(resource)"


def _problem(error: Mapping[str, Any]) -> str:
    """pydantic's message on one line; the blank-string pattern said in words."""
    kind = error.get("type")
    if kind == "string_pattern_mismatch" and not str(error.get("input", "x")).strip():
        return BLANK
    if kind == "json_invalid":  # text where an element (an object) belongs: the models try it as JSON
        return "expected an element (a JSON object), not text"
    if kind == "extra_forbidden":
        return "not an element FHIR R4 defines here"
    return one_line(str(error["msg"]).removeprefix("Value error, "))


def validate(resource: Mapping[str, Any], where: str) -> None:
    """Check one resource against its R4 model; FhirError '<where>: <field>: <problem> (got ...)' if it fails."""
    normalized(resource, where)


def normalized(resource: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The resource as its R4 model writes it back: every element of its FHIR type, or FhirError naming the field.

    The models are lenient (an object may come as a JSON string, a decimal as "3", a dateTime as a number of
    seconds); what they give back has the types of the specification, so readers can rely on them.
    """
    from pydantic import ValidationError

    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise FhirError(f"{where}: resourceType is missing")
    model = _model_class(resource_type)
    if model is None:
        raise FhirError(f"{where}: resourceType {resource_type!r} is not a FHIR R4 resource")
    _check_contained(resource, where)
    _check_numbers(resource, where)
    try:
        text = model.model_validate(dict(resource)).model_dump_json()
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f"; {len(exc.errors()) - 1} more problem(s)" if len(exc.errors()) > 1 else ""
        got = "" if isinstance(first.get("input"), Mapping) else f" (got {shown(first.get('input'))})"
        raise FhirError(f"{where}: {_field(tuple(first['loc']))}: {_problem(first)}{got}{more}") from None
    except (KeyError, TypeError, AttributeError) as exc:  # the models fail so on some malformed input, unnamed
        problem = f"{type(exc).__name__}: {one_line(str(exc))}"
        raise FhirError(f"{where}: not a valid FHIR R4 {resource_type} ({problem})") from None
    except RecursionError:
        raise FhirError(f"{where}: elements nested too deep to be a FHIR R4 {resource_type}") from None
    out: dict[str, Any] = json.loads(text)
    return out


_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")  # FHIR decimal
LARGEST = 308  # powers of ten beyond a float's range (1.8e308): FHIR readers read numbers as floats


def _check_numbers(resource: Mapping[str, Any], where: str) -> None:
    """No number beyond a float's range, as a number or as decimal text (the models spend minutes on '1e9999999')."""
    todo: list[tuple[tuple[Any, ...], Any]] = [((), resource)]
    while todo:  # a loop, not recursion: the input may be nested deeper than Python recurses
        loc, node = todo.pop()
        if isinstance(node, Mapping):
            todo += [((*loc, k), v) for k, v in node.items()]
        elif isinstance(node, list):
            todo += [((*loc, i), v) for i, v in enumerate(node)]
        elif _too_large(node):
            raise FhirError(f"{where}: {_field(loc)}: a number is at most 1e{LARGEST} (got {shown(node)})")


def _too_large(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() > 1023
    if isinstance(value, str) and len(value) < 1000 and _DECIMAL.match(value):
        return Decimal(value).adjusted() >= LARGEST
    return isinstance(value, str) and len(value) >= 1000 and bool(_DECIMAL.match(value))


def _check_contained(resource: Mapping[str, Any], where: str) -> None:
    """Each contained resource has a FHIR R4 resourceType (the models fail without naming it otherwise)."""
    contained = resource.get("contained")
    for i, inner in enumerate(contained if isinstance(contained, list) else []):
        kind = inner.get("resourceType") if isinstance(inner, Mapping) else None
        if not isinstance(kind, str) or _model_class(kind) is None:
            got = shown(kind)
            raise FhirError(f"{where}: contained[{i}].resourceType: expected a FHIR R4 resource type (got {got})")


def describe(resource: Mapping[str, Any], index: int | None = None) -> str:
    """'MedicationRequest/abc (entry 3)' - how errors and the unmapped list name a resource."""
    kind = one_line(str(resource.get("resourceType", "resource")))
    name = f"{kind}/{one_line(str(resource['id']))}" if resource.get("id") else kind
    return f"{name} (entry {index})" if index is not None else name
