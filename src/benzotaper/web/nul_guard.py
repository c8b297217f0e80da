"""Refuses text holding a NUL character (U+0000) before it reaches a view or the database.

PostgreSQL text cannot hold NUL, so a query string, form field or JSON string with one was a 500 there (found
by the API fuzz on PostgreSQL); SQLite stored it. Either way no clinical text needs it: the request is refused
with a 422 naming the field (API, FHIR) or a 400 naming it (a page's query string), on both engines alike;
a page's form fields are left to the form, which shows the refusal at the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict

NUL = "\x00"
JSON_PREFIXES = ("/api/", "/fhir", "/cds-services")
ACCEPTED = "text without the NUL control character (U+0000)"

GetResponse = Callable[[HttpRequest], HttpResponse]


class NulGuardMiddleware:
    """Answers a request whose path, query, cookies, token or body holds NUL with a refusal naming where."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = first_nul(request)
        if found is None:
            return self.get_response(request)
        loc, value = found
        message = f"{'.'.join(str(p) for p in loc)} {value!r} holds a NUL character; accepted: {ACCEPTED}"
        if request.path.startswith(JSON_PREFIXES):
            entry = {"type": "value_error", "loc": list(loc), "msg": message, "input": value}
            return JsonResponse({"detail": [entry]}, status=422)
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


def first_nul(request: HttpRequest) -> tuple[tuple[str | int, ...], str] | None:
    """Where the first NUL is (a loc like ninja's, e.g. ("query", "q")) and the text holding it, or None."""
    return next(_places(request), None)


def _places(request: HttpRequest) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if NUL in request.path:
        yield ("path",), request.path
    yield from _in_querydict("query", request.GET)
    for name, value in request.COOKIES.items():
        if NUL in name or NUL in value:
            yield ("cookie", name), value
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    if NUL in auth:
        yield ("header", "Authorization"), "[filtered]"
    if request.path.startswith(JSON_PREFIXES):
        yield from _in_body(request)  # a page's form refuses NUL at its field (Django's CharField)


def _in_querydict(where: str, data: QueryDict) -> Iterator[tuple[tuple[str | int, ...], str]]:
    for name, values in data.lists():
        for value in values:
            if NUL in name or NUL in value:
                yield (where, name), value


def _in_body(request: HttpRequest) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """NUL in a urlencoded form or a JSON body (uploads are left to their views: their forms refuse NUL)."""
    if request.method in ("GET", "HEAD", "OPTIONS") or not _small(request):
        return
    content_type = request.content_type or ""
    if content_type == "application/x-www-form-urlencoded":
        body = request.body
        if b"%00" in body or b"\x00" in body:
            yield from _in_querydict("body", QueryDict(body, encoding=request.encoding))
    elif content_type.endswith("json"):
        body = request.body
        if b"\\u0000" in body or b"\x00" in body:
            try:
                parsed = json.loads(body)
            except ValueError:
                return  # not JSON: the view answers that
            if isinstance(parsed, dict):  # any other body is refused by the view's schema, naming it; nothing saved
                yield from _in_json(("body",), parsed)


def _in_json(loc: tuple[str | int, ...], node: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(node, str):
        if NUL in node:
            yield loc, node
    elif isinstance(node, dict):
        for key, value in node.items():
            if NUL in key:
                yield (*loc, key), key
            yield from _in_json((*loc, key), value)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _in_json((*loc, i), value)


def _small(request: HttpRequest) -> bool:
    """A body small enough to read here (Django's in-memory limit); a bigger one is left to its view."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    length = request.META.get("CONTENT_LENGTH") or "0"
    return limit is None or (length.isdigit() and int(length) <= limit)
