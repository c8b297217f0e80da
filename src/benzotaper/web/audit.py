"""The audit log: every create, change and delete of a clinical record, with who, when, before and after.

The acting user comes from the request (pages and API) through a context variable, so model code
needs no extra arguments and no change can slip past the log.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.forms.models import model_to_dict
from django.http import HttpRequest, HttpResponse

_actor: ContextVar[Any] = ContextVar("benzotaper_actor", default=None)
CLINICAL = ("Patient", "Regimen", "Level", "Assessment", "Symptom", "Treatment", "Hold", "Plan", "Replan", "DiaryEntry")


@contextmanager
def acting_as(user: Any) -> Iterator[None]:
    """Attribute the changes made inside the block to `user` (used by API, demo loader and tests)."""
    token = _actor.set(user if user is not None and getattr(user, "is_authenticated", False) else None)
    try:
        yield
    finally:
        _actor.reset(token)


class AuditUserMiddleware:
    """Sets the acting user for the duration of a request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with acting_as(getattr(request, "user", None)):
            return self.get_response(request)


def set_actor(user: Any) -> None:
    """Set the acting user for the rest of this request (token-authenticated API calls)."""
    _actor.set(user)


def snapshot(instance: models.Model) -> dict[str, Any]:
    """A JSON-safe copy of the record's fields."""
    raw = model_to_dict(instance)
    raw["id"] = instance.pk
    result: dict[str, Any] = json.loads(json.dumps(raw, cls=DjangoJSONEncoder, default=str))
    return result


def _patient_id(instance: models.Model) -> int | None:
    if type(instance).__name__ == "Patient":
        return int(instance.pk) if instance.pk is not None else None
    value = getattr(instance, "patient_id", None)
    return int(value) if value is not None else None


def _before(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    old = sender._default_manager.filter(pk=instance.pk).first() if instance.pk else None
    instance._audit_before = snapshot(old) if old is not None else None


def _after(sender: type[models.Model], instance: models.Model, created: bool, **_: Any) -> None:
    from benzotaper.web.models import AuditEntry

    before = getattr(instance, "_audit_before", None)
    after = snapshot(instance)
    if not created and before == after:
        return
    AuditEntry.objects.create(
        user=_actor.get(),
        action="create" if created else "update",
        model=sender.__name__,
        object_id=str(instance.pk),
        patient_id=_patient_id(instance),
        before=None if created else before,
        after=after,
    )


def _deleted(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    from benzotaper.web.models import AuditEntry

    AuditEntry.objects.create(
        user=_actor.get(),
        action="delete",
        model=sender.__name__,
        object_id=str(instance.pk),
        patient_id=_patient_id(instance),
        before=snapshot(instance),
        after=None,
    )


def _atomic_save(save: Callable[..., None]) -> Callable[..., None]:
    """A save that commits the record and its audit entry (post_save) together, or neither.

    Outside a transaction Django commits the row before post_save runs: a backup or a crash in between
    held a record without its audit entry (found by tests/web/test_backup.py). Deletes are atomic already.
    """

    @functools.wraps(save)
    def atomic_save(self: models.Model, *args: Any, **kwargs: Any) -> None:
        using = kwargs.get("using")
        if transaction.get_connection(using).in_atomic_block:  # the caller's transaction holds both
            save(self, *args, **kwargs)
            return
        with transaction.atomic(using=using):
            save(self, *args, **kwargs)

    atomic_save.audited = True  # type: ignore[attr-defined]
    return atomic_save


def connect() -> None:
    """Hook the audit signals to every clinical model, whose saves become atomic (once, from AppConfig.ready)."""
    from benzotaper.web import models as m

    for name in CLINICAL:
        model = getattr(m, name)
        if not getattr(model.save, "audited", False):
            model.save = _atomic_save(model.save)
        pre_save.connect(_before, sender=model, dispatch_uid=f"audit-before-{name}")
        post_save.connect(_after, sender=model, dispatch_uid=f"audit-after-{name}")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"audit-delete-{name}")
