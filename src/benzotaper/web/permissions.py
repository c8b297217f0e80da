"""Who may see what: clinicians their care teams' patients, patients their own record, admins everything.

Every page and API route gets its patient through `patient_for`, so a refusal is one rule, not many.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from benzotaper.web.models import Patient


def role(user: Any) -> str:
    """'admin', 'clinician', 'patient' or '' (anonymous or no profile)."""
    if not getattr(user, "is_authenticated", False):
        return ""
    if user.is_superuser:
        return "admin"
    profile = getattr(user, "profile", None)
    return profile.role if profile is not None else ""


def visible_patients(user: Any) -> QuerySet[Patient]:
    """The patients this user may see."""
    r = role(user)
    if r == "admin":
        return Patient.objects.all()
    if r == "clinician":
        return Patient.objects.filter(team__members=user.profile).distinct()
    if r == "patient":
        return Patient.objects.filter(user=user)
    return Patient.objects.none()


def patient_for(user: Any, patient_id: int, write: str = "") -> Patient:
    """The patient if this user may see it (404 otherwise, so ids are not probed); `write` checks a change.

    Patients may write only their diary (`write="diary"`); clinicians and admins may write everything.
    """
    patient = visible_patients(user).filter(pk=patient_id).first()
    if patient is None:
        raise Http404("no such patient")
    if write and role(user) == "patient" and write != "diary":
        raise PermissionDenied("patients may write only their own diary")
    return patient


def require_clinician(user: Any) -> None:
    """Refuse anyone who is not a clinician or admin."""
    if role(user) not in ("clinician", "admin"):
        raise PermissionDenied("clinicians only")
