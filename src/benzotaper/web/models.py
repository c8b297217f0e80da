"""Clinic records: care teams, patients and what is recorded about them, plans (versioned), diary, audit.

Records keep what the clinician typed (sig text, answers) next to what the core made of it, so a
page can always show the source of a number. Approved plans are never overwritten: a change is a new
version.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

ROLES = [("clinician", _("clinician")), ("patient", _("patient")), ("admin", _("admin"))]
INSTRUMENTS = [("ciwa_b", "CIWA-B"), ("bwsq", "BWSQ"), ("sds", "SDS")]


class CareTeam(models.Model):
    """A ward or practice: its clinicians see its patients and no others."""

    name = models.CharField(max_length=120, unique=True)

    def __str__(self) -> str:
        return self.name


class Profile(models.Model):
    """A user's role, care teams and interface language."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    role = models.CharField(max_length=12, choices=ROLES, default="clinician")
    teams = models.ManyToManyField(CareTeam, blank=True, related_name="members")
    language = models.CharField(max_length=5, choices=settings.LANGUAGES, default="en")

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.role})"


class Patient(models.Model):
    """A person being helped off benzodiazepines, in one care team; `user` is their own diary login."""

    team = models.ForeignKey(CareTeam, on_delete=models.PROTECT, related_name="patients")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="patient_record"
    )
    name = models.CharField(_("name"), max_length=120)
    identifier = models.CharField(_("record number"), max_length=40, blank=True)
    birth_year = models.PositiveSmallIntegerField(
        _("birth year"), null=True, blank=True, validators=[MinValueValidator(1900), MaxValueValidator(2100)]
    )
    sex = models.CharField(
        _("sex"), max_length=1, blank=True, choices=[("F", _("female")), ("M", _("male")), ("X", _("other"))]
    )
    country = models.CharField(_("country (for crisis lines)"), max_length=2, blank=True)
    indication = models.CharField(_("original indication"), max_length=200, blank=True)
    indication_since = models.DateField(_("indication since"), null=True, blank=True)
    indication_symptoms = models.CharField(_("symptoms of the indication"), max_length=300, blank=True)
    risk = models.JSONField(_("risk factors"), default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["team", "name"])]

    def __str__(self) -> str:
        return self.name


class Regimen(models.Model):
    """A period of benzodiazepine use at one regimen, as typed (sig) and as parsed by the core."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="regimens")
    sig = models.CharField(_("regimen"), max_length=300)
    start = models.DateField(_("from"))
    end = models.DateField(_("until"), null=True, blank=True)
    parsed = models.JSONField(default=dict)
    daily_de_mg = models.FloatField(default=0.0)

    class Meta:
        ordering = ["start", "id"]


class Level(models.Model):
    """A measured serum level in ng/mL (censored below `lloq` when `value` is empty)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="levels")
    analyte = models.CharField(_("analyte"), max_length=60)
    sampled_at = models.DateTimeField(_("sampled at"))
    value_ng_ml = models.FloatField(_("level (ng/mL)"), null=True, blank=True)
    lloq_ng_ml = models.FloatField(_("lower limit of quantification (ng/mL)"), null=True, blank=True)
    last_dose_at = models.DateTimeField(_("last dose at"), null=True, blank=True)
    lab = models.CharField(_("laboratory"), max_length=80, blank=True)
    method = models.CharField(_("method"), max_length=40, blank=True)

    class Meta:
        ordering = ["sampled_at", "id"]


class Assessment(models.Model):
    """A CIWA-B, BWSQ or SDS result: the answers as given and the core's score and band."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="assessments")
    instrument = models.CharField(max_length=8, choices=INSTRUMENTS)
    taken_at = models.DateTimeField(_("taken at"))
    answers = models.JSONField(default=list)
    total = models.IntegerField()
    band = models.CharField(max_length=80, blank=True)
    source = models.CharField(max_length=12, default="clinic")

    class Meta:
        ordering = ["taken_at", "id"]


class Symptom(models.Model):
    """A symptom record for the mirror analysis: onset, or a timed severity (0-10), or both."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="symptoms")
    symptom = models.CharField(_("symptom"), max_length=80)
    onset = models.DateField(_("onset"), null=True, blank=True)
    at = models.DateTimeField(_("at"), null=True, blank=True)
    severity = models.FloatField(
        _("severity (0-10)"), null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(10)]
    )
    resolved = models.DateField(_("resolved"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        ordering = ["onset", "at", "id"]


class Treatment(models.Model):
    """A non-benzodiazepine treatment aimed at a symptom, and whether it helped (mirror-analysis evidence)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="treatments")
    drug = models.CharField(max_length=80)
    target = models.CharField(max_length=80)
    start = models.DateField(null=True, blank=True)
    end = models.DateField(null=True, blank=True)
    effect = models.CharField(
        max_length=8, blank=True, choices=[("none", "none"), ("partial", "partial"), ("good", "good")]
    )


class Hold(models.Model):
    """A pause (hold) or a return to an earlier step during the taper, with the reason."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="holds")
    day = models.DateField(_("from"))
    kind = models.CharField(max_length=8, choices=[("hold", _("hold")), ("return", _("return to previous step"))])
    days = models.PositiveIntegerField(_("days"), default=7, validators=[MaxValueValidator(365)])
    reason = models.CharField(_("reason"), max_length=300)

    class Meta:
        ordering = ["day", "id"]


class Plan(models.Model):
    """One version of a patient's taper plan. Approved versions are frozen; changes make a new version."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="plans")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=[("draft", _("draft")), ("approved", _("approved"))])
    sig = models.CharField(max_length=300)
    options = models.JSONField(default=dict)
    plan = models.JSONField()
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["patient", "version"], name="one_plan_per_version")]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk and Plan.objects.filter(pk=self.pk, status="approved").exists():
            raise ValueError("an approved plan is never changed: approve a new version instead")
        super().save(*args, **kwargs)


class Replan(models.Model):
    """A re-planned schedule drafted after new data (a level, a score, a hold) while a plan is approved.

    Never applied by itself: a clinician approves it (it becomes the next frozen plan version) or
    discards it. `audit_mark` is the newest audit entry of the patient's data when it was drafted, so an
    approval after the data changed again is refused as stale.
    """

    STATUSES = [
        ("waiting", _("waiting")),
        ("approved", _("approved")),
        ("discarded", _("discarded")),
        ("superseded", _("superseded")),
    ]
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="replans")
    based_on_version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=STATUSES, default="waiting")
    reason = models.CharField(max_length=500)
    trigger = models.JSONField(default=dict)
    options = models.JSONField(default=dict)
    plan = models.JSONField()
    changes = models.JSONField(default=list)
    audit_mark = models.BigIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["patient", "status"])]


class DiaryEntry(models.Model):
    """What the patient reports: a dose taken (as planned or changed), a daily check-in, or a note."""

    KINDS = [("dose", _("dose")), ("checkin", _("check-in")), ("note", _("note"))]
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="diary")
    day = models.DateField(_("day"))
    at = models.DateTimeField(_("at"))
    kind = models.CharField(max_length=8, choices=KINDS)
    drug = models.CharField(max_length=40, blank=True)
    planned_mg = models.FloatField(null=True, blank=True)
    taken_mg = models.FloatField(
        _("taken (mg)"), null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1000)]
    )
    bwsq = models.JSONField(null=True, blank=True)
    bwsq_total = models.IntegerField(null=True, blank=True)
    feeling = models.PositiveSmallIntegerField(
        _("how do you feel (0-10)"), null=True, blank=True, validators=[MaxValueValidator(10)]
    )
    note = models.TextField(_("note"), blank=True, max_length=2000)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["at", "id"]
        # (patient, day): today's doses and the chart's daily sums; (patient, at): the newest entries first.
        indexes = [models.Index(fields=["patient", "day"]), models.Index(fields=["patient", "at"])]


class AuditEntry(models.Model):
    """Who changed which clinical record when, with the values before and after."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=8)
    model = models.CharField(max_length=40)
    object_id = models.CharField(max_length=40)
    patient_id = models.BigIntegerField(null=True, db_index=True)
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)

    class Meta:
        ordering = ["-at", "-id"]
        # The page's data versions (page_cache.page_keys): the newest entry per patient, and per patient and
        # clinical model, found in the index without reading a patient's (many) diary entries.
        indexes = [models.Index(fields=["patient_id", "id"]), models.Index(fields=["patient_id", "model", "id"])]


class LoginFailure(models.Model):
    """A failed login, kept to throttle guessing per account and per client address (never the password)."""

    username = models.CharField(max_length=150, db_index=True)
    address = models.CharField(max_length=45, blank=True, db_index=True)
    at = models.DateTimeField(auto_now_add=True)


class ApiToken(models.Model):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=80, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)


class IdempotencyKey(models.Model):
    """A client's key for one write, with the answer it got, so a resend records once and answers the same."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=400)
    body_sha256 = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField()
    location = models.CharField(max_length=400, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_per_user")]
