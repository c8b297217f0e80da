"""Idempotent writes: a client's key makes a resent write record once and answer as the first time did.

API writes carry an `Idempotency-Key` header; the pages' forms a hidden `idempotency_key` field. The key, the
request's hash and the answer are stored in the write's own transaction, so neither survives without the other.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from benzotaper.web import models as m

HEADER = "Idempotency-Key"
FIELD = "idempotency_key"
MAX_LENGTH = 200
FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Answers that depend on who asks or on what exists now (a login, a team, a throttle), so a retry runs again.
NOT_KEPT = frozenset({401, 403, 404, 408, 429})

GetResponse = Callable[[HttpRequest], HttpResponse]


def new_key() -> str:
    """A fresh key for one rendered form (128 random bits)."""
    return secrets.token_urlsafe(16)


def key_of(request: HttpRequest) -> str | None:
    """The request's key: the header on any unsafe method, else a form post's hidden field; None without."""
    if request.method not in UNSAFE:
        return None
    header = request.headers.get(HEADER)
    if header is not None:
        return header
    if request.content_type not in FORMS or _too_big(request):
        return None
    _ = request.body  # read (and cached) first: the API hashes the body, and a form is parsed from it after
    field = request.POST.get(FIELD)
    return field if field else None


def _too_big(request: HttpRequest) -> bool:
    """A form too big to hold in memory (an upload): not keyed, so its stream is left to the view."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    length = request.META.get("CONTENT_LENGTH") or "0"
    return limit is not None and (not length.isdigit() or int(length) > limit)


def key_problem(key: str) -> str | None:
    """Why `key` is not acceptable, or None: 1 to 200 visible ASCII characters."""
    if 0 < len(key) <= MAX_LENGTH and all("!" <= ch <= "~" for ch in key):
        return None
    return f"Idempotency-Key {key[:40]!r} is not accepted: use 1 to {MAX_LENGTH} visible ASCII characters"


def request_hash(request: HttpRequest) -> str:
    """SHA-256 of what makes two requests the same write: method, path with query, and body.

    A form's body is its fields in order of name, without the CSRF token: a resent form may be encoded anew.
    """
    digest = hashlib.sha256(f"{request.method} {request.get_full_path()}\n".encode())
    if request.content_type in FORMS and request.headers.get(HEADER) is None:
        fields = sorted((k, v) for k, vs in request.POST.lists() if k != "csrfmiddlewaretoken" for v in vs)
        digest.update(json.dumps(fields).encode())
    else:
        digest.update(request.body)
    return digest.hexdigest()


def user_of(request: HttpRequest) -> Any:
    """Who the key belongs to: a valid bearer token's owner, else the session's user, else None."""
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer ") and request.path.startswith("/api/"):
        from benzotaper.web.api import token_digest, token_expires

        row = m.ApiToken.objects.select_related("user").filter(digest=token_digest(auth[7:].strip())).first()
        ok = row is not None and row.user.is_active and token_expires(row) > timezone.now()
        return row.user if ok and row is not None else None
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def refusal(message: str, key: str) -> HttpResponse:
    """A 422 in the API's shape naming the header, the value given and what is accepted."""
    entry = {"type": "value_error", "loc": ["header", HEADER], "msg": message, "input": key}
    return HttpResponse(json.dumps({"detail": [entry]}), status=422, content_type="application/json")


def replay(row: m.IdempotencyKey) -> HttpResponse:
    """The stored answer, as the first request got it."""
    response = HttpResponse(bytes(row.body), status=row.status, content_type=row.content_type or None)
    if row.location:
        response["Location"] = row.location
    response["Idempotent-Replayed"] = "true"
    return response


def keep(row: m.IdempotencyKey, response: HttpResponse) -> None:
    """Store the answer in the key's row (still inside the write's transaction)."""
    row.status = response.status_code
    row.content_type = response.get("Content-Type", "")[:100]
    row.body = response.content
    row.location = response.get("Location", "")[:400]
    row.save(update_fields=["status", "content_type", "body", "location"])


def once(request: HttpRequest, user: Any, key: str, get_response: GetResponse) -> HttpResponse:
    """Run the write with its key inserted first, in one transaction; a key already stored answers from it.

    A concurrent request with the same key waits on the unique index (or SQLite's write lock) until the
    first commits, then finds its row; if the first rolled back, it runs the write itself.
    """
    digest, path = request_hash(request), request.path[:400]
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = m.IdempotencyKey.objects.create(
                    user=user, key=key, method=request.method or "", path=path, body_sha256=digest, status=0
                )
        except IntegrityError:
            found = m.IdempotencyKey.objects.get(user=user, key=key)
            if found.body_sha256 != digest:
                message = (
                    f"Idempotency-Key {key[:40]!r} was used for a different request ({found.method} {found.path}"
                    " or another body): send a new key for a new write"
                )
                return refusal(message, key)
            return replay(found)
        response = get_response(request)
        if response.status_code >= 500 or response.status_code in NOT_KEPT:
            transaction.set_rollback(True)  # nothing recorded, so the same key may run again
        elif response.streaming:
            row.delete()  # the write stands; a streamed answer cannot be stored
        else:
            keep(row, response)
        return response


class IdempotencyMiddleware:
    """Every unsafe request with a key (header or form field) from a known user is recorded once."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = key_of(request)
        if key is None:
            return self.get_response(request)
        problem = key_problem(key)
        if problem is not None:
            return refusal(problem, key)
        user = user_of(request)
        if user is None:  # the view answers 401 or the login redirect; nothing is recorded
            return self.get_response(request)
        return once(request, user, key, self.get_response)
