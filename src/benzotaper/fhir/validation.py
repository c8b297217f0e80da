"""Validate FHIR resources (as dicts) with the R4 models of fhir.resources, in both directions.

fhir.resources 8 defaults to FHIR R5; the R4 (4.0/4.3) models live in the `fhir.resources.R4B` sub-package, which
is what FHIR R4 bundles are checked against here. A failure names the resource and the field.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from benzotaper.errors import FhirError

INSTALL_HINT = "FHIR validation needs fhir.resources: pip install 'benzotaper[fhir]'"


@functools.cache
def _model_class(resource_type: str) -> Callable[..., Any]:
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError:  # pragma: no cover - the extra is installed in tests
        raise FhirError(INSTALL_HINT) from None
    try:
        cls = get_fhir_model_class(resource_type)
    except KeyError:
        raise FhirError(f"resourceType {resource_type!r} is not a FHIR R4 resource") from None
    return cls.model_validate


def _field(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(resource)"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate(resource: Mapping[str, Any], where: str) -> None:
    """Check one resource against its R4 model; FhirError '<where>: <field>: <problem> (got ...)' if it fails."""
    from pydantic import ValidationError

    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise FhirError(f"{where}: resourceType is missing")
    check = _model_class(resource_type)
    try:
        check(dict(resource))
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f"; {len(exc.errors()) - 1} more problem(s)" if len(exc.errors()) > 1 else ""
        got = "" if isinstance(first.get("input"), Mapping) else f" (got {_shown(first.get('input'))})"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise FhirError(f"{where}: {_field(tuple(first['loc']))}: {message}{got}{more}") from None


def describe(resource: Mapping[str, Any], index: int | None = None) -> str:
    """'MedicationRequest/abc (entry 3)' - how errors and the unmapped list name a resource."""
    kind = resource.get("resourceType", "resource")
    name = f"{kind}/{resource['id']}" if resource.get("id") else str(kind)
    return f"{name} (entry {index})" if index is not None else name
