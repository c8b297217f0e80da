"""The HTML forms fed with hypothesis-generated form data through Django's test client, logged in.

Each form's data is generated from the form's own fields (so a field added later is fuzzed too), mixed
with values a clinic really types. The properties: no 5xx and no exception; a refused submission is
never saved and re-shows the form with each error next to its field (the diary, built for a phone,
redirects and shows each error as a message naming the field); and an accepted one saves at most one row.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from benzotaper.web import forms as f
from benzotaper.web import kb
from benzotaper.web import models as m
from benzotaper.web.audit import acting_as
from tests.web.conftest import Clinic, approve_running_plan

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# Submissions per form; BENZOTAPER_FORM_FUZZ sets another number (a quick local run). CI's second pass of the
# web tests, on PostgreSQL, sends a third of them.
PER_FORM = int(os.environ.get("BENZOTAPER_FORM_FUZZ", "120"))
FORM_SECONDS = 8.0  # time given to one form; a slow one (a plan with its chart) sends fewer
REQUEST_SECONDS = 10.0  # a page slower than this holds a server worker too long: a failure
CHUNK = 25

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)  # no lone surrogates: not encodable
JUNK = st.one_of(TEXT, st.sampled_from(["", " ", "nan", "inf", "-1", "1e400", "0x10", "٣", "<script>", "'; --"]))
HINTS: dict[str, list[str]] = {  # what a clinic types, by field name, next to the generated values
    "sig": ["diazepam 10 mg tds", "alprazolam 0.5 mg mane, 1 mg nocte", "lorazepam 1 mg bd + zolpidem 10 mg nocte",
            "diazepam 1e9 mg tds", "diazepam 2 nan", "xanax 2 mg", "clonazepam 0.25 mg prn max 3/day"],
    "value": ["12.5", "<5", "0", "-3", "250", "1e400", "3,5"],
    "lloq": ["5", "0", "-1", "abc"],
    "symptom": ["anxiety", "insomnia", "tinnitus", "headache", "not-a-symptom"],
    "country": ["GB", "PL", "US", "gb", "ZZ", "XYZ"],
    "reason": ["patient asked to slow down", ""],
    "override_reason": ["patient is in hospital and monitored", "short", ""],
    "drug": ["alprazolam", "diazepam", "unknownium", ""],
    "time": ["08:00", "22:00", "25:61", "8", ""],
}


def _dates(with_time: bool) -> st.SearchStrategy[str]:
    today = timezone.localdate()
    day = st.one_of(st.dates(min_value=today.replace(year=1900), max_value=today.replace(year=2100)),
                    st.integers(-1000, 30).map(lambda n: today + timedelta(days=n)))  # mostly near today
    if not with_time:
        return day.map(lambda d: d.isoformat())
    return st.tuples(day, st.integers(0, 23), st.integers(0, 59)).map(lambda t: f"{t[0]:%Y-%m-%d}T{t[1]:02}:{t[2]:02}")


def _value(name: str, fld: forms.Field) -> st.SearchStrategy[Any]:
    """Values for one form field: its valid kinds near and past its limits, junk, and clinic hints."""
    hint = [st.sampled_from(HINTS[name])] if name in HINTS else []
    if isinstance(fld, forms.MultipleChoiceField):
        codes = [str(c) for c, _ in fld.choices]
        return st.lists(st.sampled_from([*codes, "bogus"]), max_size=3)
    if isinstance(fld, forms.ChoiceField | forms.ModelChoiceField):
        codes = [str(c) for c, _ in fld.choices]
        return st.one_of(st.sampled_from(codes or [""]), st.sampled_from(codes or [""]), JUNK, *hint)
    if isinstance(fld, forms.BooleanField):
        return st.sampled_from(["on", "", "false", "1"])
    if isinstance(fld, forms.IntegerField | forms.FloatField):
        low, high = getattr(fld, "min_value", None), getattr(fld, "max_value", None)
        inside = (st.integers(int(low if low is not None else 0), int(high if high is not None else 400))
                  if isinstance(fld, forms.IntegerField) else
                  st.floats(low if low is not None else 0, high if high is not None else 400))
        numbers = st.one_of(inside, inside, st.integers(-(10**20), 10**20), st.floats())
        return st.one_of(numbers.map(str), numbers.map(str), JUNK, *hint)
    if isinstance(fld, forms.DateTimeField):
        return st.one_of(_dates(True), _dates(True), JUNK, *hint)
    if isinstance(fld, forms.DateField):
        return st.one_of(_dates(False), _dates(False), JUNK, *hint)
    length = getattr(fld, "max_length", None) or 60
    return st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=length + 5), JUNK, *hint,
                     *hint)


def _first_choices(form: forms.BaseForm) -> dict[str, str]:
    """A valid answer for every choice field (its first non-empty choice), e.g. each item of a scale."""
    return {name: str(next((c for c, _ in fld.choices if c != ""), ""))
            for name, fld in form.fields.items() if isinstance(fld, forms.ChoiceField)}


def form_data(page: Page) -> st.SearchStrategy[dict[str, Any]]:
    """POST data for the page's form: all fields generated, or a valid submission with some fields generated."""
    form = page.form()
    generated = {name: st.one_of(st.none(), *[_value(name, fld)] * 3) for name, fld in form.fields.items()}
    valid = {**_first_choices(form), **page.valid}
    near = {name: st.one_of(*[st.just(valid[name])] * 8, strat) if name in valid else strat
            for name, strat in generated.items()}
    data = st.one_of(st.fixed_dictionaries(generated), st.fixed_dictionaries(near))
    if page.extra:
        data = st.tuples(data, st.fixed_dictionaries(page.extra)).map(lambda t: {**t[0], **t[1]})
    return data.map(lambda d: {k: v for k, v in d.items() if v is not None})


@dataclass
class Page:
    """One form page: where it posts, who submits, the form it shows, what a save creates."""

    name: str
    url: str
    form: Callable[[], forms.BaseForm]
    model: type[Model]
    valid: dict[str, str] = field(default_factory=dict)  # a submission the page accepts (choices: the first)
    user: str = "doctor"
    extra: dict[str, st.SearchStrategy[Any]] = field(default_factory=dict)
    redirects_on_error: bool = False  # the diary: errors come back as messages on the diary page


def pages(clinic: Clinic) -> list[Page]:
    """Every form a clinician or a patient submits (clinic.patient has a regimen, a level and a running plan)."""
    pid = clinic.patient.pk
    teams = m.CareTeam.objects.filter(pk=clinic.team.pk)
    today = timezone.localdate().isoformat()
    now = (timezone.localtime() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    person = {"team": str(clinic.team.pk), "name": "Eve New", "sex": "F", "country": "GB", "birth_year": "1980"}
    plan = {"strategy": "ashton", "start": today, "switch": "auto"}
    guided = {"start": today, "level_fall": "5", "trajectory": "occupancy", "switch": "later", "strategy": "ashton"}
    action = {"action": st.sampled_from(["preview", "save", "approve", ""])}
    out = [
        Page("patient new", reverse("patient_new"), lambda: f.PatientForm(teams=teams), m.Patient, person),
        Page("patient edit", reverse("patient_edit", args=[pid]), lambda: f.PatientForm(teams=teams), m.Patient,
             person),
        Page("regimen", reverse("regimen_new", args=[pid]), f.RegimenForm, m.Regimen,
             {"sig": "diazepam 5 mg tds", "start": "2025-06-01"}, extra=action),
        Page("level", reverse("level_new", args=[pid]), f.LevelForm, m.Level,
             {"analyte": "alprazolam", "sampled_at": now, "value": "15", "unit": "ng/mL"}),
        Page("symptom", reverse("symptom_new", args=[pid]), f.SymptomForm, m.Symptom,
             {"symptom": "anxiety", "onset": "2025-03-01", "severity": "5"}),
        Page("hold", reverse("hold_new", args=[pid]), f.HoldForm, m.Hold,
             {"day": today, "kind": "hold", "days": "7", "reason": "patient asked for a pause"}),
        Page("plan builder", reverse("plan_builder", args=[pid]), f.PlanForm, m.Plan, plan, extra=action),
        Page("guided plan builder", reverse("guided_builder", args=[pid]), f.GuidedPlanForm, m.Plan, guided,
             extra=action),
        Page("diary dose", reverse("diary_dose"), f.DoseForm, m.DiaryEntry,
             {"drug": "alprazolam", "planned_mg": "1", "time": "08:00", "taken_mg": "1"}, "patient",
             redirects_on_error=True),
        Page("diary check-in", reverse("diary_checkin"), f.CheckinForm, m.DiaryEntry, {"feeling": "6"}, "patient",
             redirects_on_error=True),
        Page("diary BWSQ", reverse("diary_bwsq"), lambda: f.AssessmentForm("bwsq"), m.Assessment,
             {"taken_at": now}, "patient"),
    ]
    for code in kb.instruments():
        out.append(Page(f"scale {code}", reverse("assessment_new", args=[pid, code]),
                        lambda code=code: f.AssessmentForm(code), m.Assessment, {"taken_at": now}))
    return out


def shown_errors_problem(response: Any) -> str | None:
    """What is missing from a re-shown form: each field's error next to it, form-wide errors at the top."""
    form = (response.context or {}).get("form") if response.context is not None else None
    if form is None:
        return "a refused submission answered 200 without the form"
    html = response.content.decode()
    for name, errors in form.errors.items():
        where = 'class="errors"' if name == "__all__" else f'id="error-{name}"'
        if name != "__all__" and name not in form.fields:
            return f"error on {name!r}, which the form does not show"
        if form.fields.get(name) is not None and form.fields[name].widget.is_hidden:
            return f"error on the hidden field {name!r}, which the page cannot show"
        if where not in html or not all(escape(e) in html for e in errors):
            return f"error of {name!r} not shown next to it: {errors}"
    return None


def diary_message_problem(client: Client, page: Page, data: dict[str, Any]) -> str | None:
    """A refused diary form: the diary page shows a message naming each refused field by its label."""
    form = page.form().__class__(data)
    if form.is_valid():
        return None
    response = client.get(reverse("diary"))
    shown = " ".join(str(msg) for msg in get_messages(response.wsgi_request)) + response.content.decode()
    for name in form.errors:
        label = str(form.fields[name].label or name) if name in form.fields else name
        if escape(label) not in shown and label not in shown:
            return f"refused field {name!r} ({label}) not named in the diary's messages"
    return None


@dataclass
class FormTally:
    sent: dict[str, dict[str, int]] = field(default_factory=dict)
    slowest: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def count(self, page: str, outcome: str, seconds: float) -> None:
        by = self.sent.setdefault(page, {})
        by[outcome] = by.get(outcome, 0) + 1
        self.slowest[page] = max(self.slowest.get(page, 0.0), seconds)

    def total(self) -> int:
        return sum(sum(by.values()) for by in self.sent.values())

    def report(self) -> str:
        lines = [f"{self.total()} form submissions over {len(self.sent)} forms"]
        for page, by in sorted(self.sent.items()):
            outcomes = ", ".join(f"{k}: {n}" for k, n in sorted(by.items()))
            lines.append(f"  {page}: {sum(by.values())} ({outcomes}), slowest {self.slowest[page]:.2f} s")
        return "\n".join(lines)


def submit(client: Client, page: Page, data: dict[str, Any], tally: FormTally) -> None:
    """One POST in a rolled-back transaction, checked against the properties (a failure is noted in `tally`)."""
    if page.name in tally.failures:  # hypothesis replays a failing example: report it without resending it
        raise AssertionError(tally.failures[page.name])
    try:
        _submit(client, page, data, tally)
    except (Exception, BaseExceptionGroup) as exc:
        tally.failures[page.name] = f"{type(exc).__name__}: {exc}"[:3000]
        raise


def _submit(client: Client, page: Page, data: dict[str, Any], tally: FormTally) -> None:
    began = time.perf_counter()
    with transaction.atomic():
        rows = page.model._default_manager.count()
        try:  # the test client re-raises a view's exception (a 5xx): reported with the submission
            response = client.post(page.url, data)
        except Exception as exc:
            raise AssertionError(f"{type(exc).__name__}: {exc} for POST {page.url} {data!r}"[:1500]) from exc
        added = page.model._default_manager.count() - rows
        problem = None
        if response.status_code == 302 and page.redirects_on_error:
            problem = diary_message_problem(client, page, data) if added == 0 else None
        transaction.set_rollback(True)
    cache.clear()  # rolled-back ids are reused: cached pages must not outlive their rows
    took = time.perf_counter() - began
    outcome = "saved" if added else ("re-shown" if response.status_code == 200 else str(response.status_code))
    tally.count(page.name, outcome, took)
    request = f"POST {page.url} {json.dumps(data, ensure_ascii=False)[:600]}"
    assert response.status_code < 500, f"{response.status_code} for {request}"
    assert added <= 1, f"{added} rows saved by {request}"
    if response.status_code == 200 and not added:
        ctx_form = (response.context or {}).get("form")
        if ctx_form is not None and ctx_form.errors:
            problem = shown_errors_problem(response)
    assert problem is None, f"{problem}\n{request}"
    assert took < REQUEST_SECONDS, f"answered in {took:.1f} s (bound {REQUEST_SECONDS} s): {request}"


def fuzz_page(clinic: Clinic, page: Page, tally: FormTally) -> None:
    """Chunks of generated submissions until PER_FORM are sent or FORM_SECONDS pass."""
    client = clinic.client(clinic.doctor if page.user == "doctor" else clinic.patient_user)
    wanted = PER_FORM if connection.vendor == "sqlite" else math.ceil(PER_FORM / 3)
    started = time.perf_counter()
    while sum(tally.sent.get(page.name, {}).values()) < wanted and time.perf_counter() - started < FORM_SECONDS:
        run = settings(max_examples=CHUNK, deadline=None, database=None, phases=[Phase.generate],
                       suppress_health_check=list(HealthCheck))
        try:
            run(given(form_data(page))(lambda data: submit(client, page, data, tally)))()
        except (Exception, BaseExceptionGroup) as exc:  # kept, so every form runs and all failures are listed
            tally.failures.setdefault(page.name, f"{type(exc).__name__}: {exc}"[:3000])
            return


def ready_clinic(clinic: Clinic) -> Clinic:
    """clinic.patient with a level on the current regimen and a running plan (for the guided builder, the diary)."""
    approve_running_plan(clinic)
    with acting_as(clinic.doctor):
        m.Level.objects.create(patient=clinic.patient, analyte="alprazolam", value_ng_ml=20.0,
                               sampled_at=timezone.now() - timedelta(days=3))
    return clinic


def test_every_form_answers_without_5xx_and_shows_each_refusal_next_to_its_field(clinic: Clinic) -> None:
    tally = FormTally()
    for page in pages(ready_clinic(clinic)):
        fuzz_page(clinic, page, tally)
    print("\n" + tally.report())
    assert not tally.failures, "\n\n".join(f"{k}:\n{v}" for k, v in tally.failures.items())
    refused = {p for p, by in tally.sent.items() if "re-shown" in by or "302" in by}
    assert refused == set(tally.sent), f"forms never refused a submission: {sorted(set(tally.sent) - refused)}"


def test_a_hidden_or_missing_error_is_reported(clinic: Clinic) -> None:
    """The re-shown-form property itself can fail: an error the page does not show is caught."""
    client = clinic.client(clinic.doctor)
    response = client.post(reverse("level_new", args=[clinic.patient.pk]), {"value": "12"})
    assert response.status_code == 200 and response.context["form"].errors
    assert shown_errors_problem(response) is None
    response.context["form"].add_error(None, "a form-wide error the template never saw")
    assert shown_errors_problem(response) is not None
