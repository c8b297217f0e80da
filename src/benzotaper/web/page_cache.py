"""Per-patient caching under the data version (the newest audit entry), so a view after no change is a lookup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.core.cache import cache
from django.db import connection

from benzotaper.web import models as m
from benzotaper.web.clinic_clock import today

T = TypeVar("T")


@dataclass(frozen=True)
class PageKeys:
    """Both cache-key parts of a patient page: clinical data only (`data`) and with the diary (`diary`)."""

    data: str
    diary: str


def page_keys(patient: m.Patient) -> PageKeys:
    """Both cache-key parts from one look at the audit log.

    Plain SQL: this runs on every page view, and building the same query through the ORM cost more
    than running it. Each MAX is answered from an index (AuditEntry.Meta.indexes), so the cost does not
    grow with the patient's diary: the clinical version reads only the clinical models' entries.
    """
    from benzotaper.web.audit import CLINICAL

    clinical_models = [name for name in CLINICAL if name != "DiaryEntry"]
    table = connection.ops.quote_name(m.AuditEntry._meta.db_table)
    marks = ", ".join(["%s"] * len(clinical_models))
    sql = (
        f"SELECT (SELECT MAX(id) FROM {table} WHERE patient_id = %s AND model IN ({marks})),"
        f" (SELECT MAX(id) FROM {table} WHERE patient_id = %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [patient.pk, *clinical_models, patient.pk])
        clinical, every = cursor.fetchone()
    day = today().isoformat()
    return PageKeys(f"{clinical or 0}:{day}", f"{every or 0}:{day}")


def data_key(patient: m.Patient) -> str:
    """The cache key part for this patient's clinical data: data version and today's date."""
    return page_keys(patient).data


def cached(kind: str, patient: m.Patient, compute: Callable[[], T], key: str | None = None) -> T:
    """`compute()` cached under the patient's data version, so any change to their records refreshes it.

    `key` is the data key when the caller already has it (saves a query).
    """
    key = f"bt:{kind}:{patient.pk}:{key or data_key(patient)}"
    hit = cache.get(key)
    if hit is None:
        hit = compute()
        cache.set(key, hit, 3600)
    return hit
