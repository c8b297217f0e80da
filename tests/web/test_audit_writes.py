"""Every write path (pages and API) leaves exactly one audit entry per clinical record it changes.

The write paths are derived, not listed by hand: every non-GET API operation the resolver knows and every
page whose view handles a POST (read from its source). WRITES says what each must change; the check itself
is generic: the clinical rows before and after the request are compared, and each row that changed must have
exactly one entry with who, what, when and the before/after values, and no entry may exist for anything else.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from django.utils import timezone

from benzotaper.web import models as m
from benzotaper.web.audit import CLINICAL, snapshot
from tests.web.conftest import Clinic
from tests.web.test_permission_matrix import (
    BODIES,
    MATRIX,
    PERSONAS,
    World,
    all_routes,
    build_world,
    is_write,
    outcome,
    request,
    rolled_back,
)

ACCOUNT = ()  # an account or a stateless answer, not a clinical record: no audit entry (and no clinical change)

# (route, method) -> the (model, action) the write must make; side effects (a re-plan drafted after a level,
# the drafts it supersedes) are not listed here but are held to the same rule: one entry per changed row.
WRITES: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("login/", "POST"): ACCOUNT,  # a failed login is a LoginFailure row (throttling)
    ("logout/", "POST"): ACCOUNT,
    ("language/", "POST"): ACCOUNT,  # the interface language in the user's profile
    ("patients/new/", "POST"): (("Patient", "create"),),
    ("patients/<int:pid>/edit/", "POST"): (("Patient", "update"),),
    ("patients/<int:pid>/regimen/", "POST"): (("Regimen", "create"),),
    ("patients/<int:pid>/levels/new/", "POST"): (("Level", "create"),),
    ("patients/<int:pid>/assess/<str:instrument>/", "POST"): (("Assessment", "create"),),
    ("patients/<int:pid>/symptoms/new/", "POST"): (("Symptom", "create"),),
    ("patients/<int:pid>/holds/new/", "POST"): (("Hold", "create"),),
    ("patients/<int:pid>/plan/", "POST"): (("Plan", "create"),),
    ("patients/<int:pid>/plan/guided/", "POST"): (("Plan", "create"),),
    ("patients/<int:pid>/replans/<int:rid>/", "POST"): (("Plan", "create"), ("Replan", "update")),
    ("diary/dose/", "POST"): (("DiaryEntry", "create"),),
    ("diary/checkin/", "POST"): (("DiaryEntry", "create"),),
    ("diary/bwsq/", "POST"): (("Assessment", "create"),),
    ("api/patients", "POST"): (("Patient", "create"),),
    ("api/patients/<patient_id>/regimens", "POST"): (("Regimen", "create"),),
    ("api/patients/<patient_id>/levels", "POST"): (("Level", "create"),),
    ("api/patients/<patient_id>/assessments", "POST"): (("Assessment", "create"),),
    ("api/patients/<patient_id>/plans", "POST"): (("Plan", "create"),),
    ("api/patients/<patient_id>/diary", "POST"): (("DiaryEntry", "create"),),
    ("api/patients/<patient_id>/plans/guided", "POST"): (("Plan", "create"),),
    ("api/replans/<replan_id>/approve", "POST"): (("Plan", "create"), ("Replan", "update")),
    ("api/replans/<replan_id>/discard", "POST"): (("Replan", "update"),),
    ("api/tokens", "POST"): ACCOUNT,  # the user's own API token
    ("api/tokens/<token_id>", "DELETE"): ACCOUNT,
    ("fhir", "POST"): (("Patient", "create"), ("Regimen", "create")),  # and the bundle's levels and scores
    ("cds-services/<service_id>", "POST"): ACCOUNT,  # cards computed from the request; nothing stored
}


@pytest.fixture
def world(clinic: Clinic) -> World:
    return build_world(clinic)


# --- which page views handle a POST ---------------------------------------------------------------------


def _functions(fn: Any, seen: set[int]) -> Iterator[Any]:
    """The view, what it wraps (decorators, closures) and the project functions it calls by name."""
    if isinstance(fn, functools.partial):
        fn = fn.func
    if not inspect.isfunction(fn) or id(fn) in seen or not fn.__module__.startswith("benzotaper."):
        return
    seen.add(id(fn))
    yield fn
    inner = [getattr(fn, "__wrapped__", None)] + [c.cell_contents for c in fn.__closure__ or ()]
    inner += [fn.__globals__.get(name) for name in fn.__code__.co_names]
    for other in inner:
        yield from _functions(other, seen)


def handles_post(view: Any) -> bool:
    """A class-based view with `post`, or a function view (or a helper it calls) that reads request.POST."""
    cls = getattr(view, "view_class", None)
    if cls is not None:
        return hasattr(cls, "post")
    return any(
        "request.POST" in (src := inspect.getsource(f)) or "require_POST" in src for f in _functions(view, set())
    )


def derived_writes() -> set[tuple[str, str]]:
    """Every API operation but GET, and every page POST whose view handles it."""
    out = set()
    for route in all_routes():
        for method in route.methods:
            if method != "GET" and (route.api or handles_post(route.view)):
                out.add((route.template, method))
    return out


def test_every_write_path_is_in_the_table(db: Any) -> None:
    derived = derived_writes()
    assert len(derived) >= 25
    missing = derived - set(WRITES)
    assert not missing, f"write paths missing from WRITES in {__file__}: {sorted(missing)}"
    matrix_writes = {(r.template, meth) for r in all_routes() for meth in r.methods if is_write(r, meth)}
    assert matrix_writes <= set(WRITES), sorted(matrix_writes - set(WRITES))
    page_posts_with_bodies = {k for k in derived if not k[0].startswith(("api/", "fhir", "cds-"))}
    assert page_posts_with_bodies <= set(BODIES), "a page that handles POST needs a valid body in BODIES"


def test_the_post_reader_tells_a_form_from_a_page() -> None:
    from benzotaper.web import diary, views

    assert handles_post(views.regimen_new) and handles_post(diary.diary_bwsq)  # the latter through _assessment
    assert not handles_post(views.patient_page) and not handles_post(views.audit_trail)


# --- the check ------------------------------------------------------------------------------------------


def instants(value: Any) -> Any:
    """The snapshot with its date-times as instants: the log keeps the zone it was given, the database UTC."""
    if isinstance(value, dict):
        return {k: instants(v) for k, v in value.items()}
    if isinstance(value, list):
        return [instants(v) for v in value]
    if isinstance(value, str) and DATETIME.fullmatch(value):
        return datetime.fromisoformat(value)
    return value


DATETIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:\d\d|Z)")


def clinical_rows() -> dict[tuple[str, str], dict[str, Any]]:
    """Every clinical record's snapshot, by (model, id)."""
    return {
        (name, str(row.pk)): instants(snapshot(row))
        for name in CLINICAL
        for row in getattr(m, name)._default_manager.all()
    }


def _changes(before: dict[Any, Any], after: dict[Any, Any]) -> dict[tuple[str, str], str]:
    made = {k: "create" for k in after.keys() - before.keys()}
    made |= {k: "delete" for k in before.keys() - after.keys()}
    made |= {k: "update" for k in before.keys() & after.keys() if before[k] != after[k]}
    return made


def _write(world: World, persona: str, template: str, method: str) -> list[str]:
    """Make the write and return what is wrong with its audit trail ([] when nothing)."""
    user = world.user(persona)
    rows, mark, started = clinical_rows(), m.AuditEntry.objects.order_by("-id").values_list("id", flat=True), None
    newest = mark.first() or 0
    started = timezone.now()
    response = request(world, persona, template, method)
    ended = timezone.now()
    if outcome(response, method) != "ok":
        return [f"answered {response.status_code}, not ok"]
    now = clinical_rows()
    changes = _changes(rows, now)
    entries = list(m.AuditEntry.objects.filter(id__gt=newest).order_by("id"))
    wrong = []
    per_row = Counter((e.model, e.object_id) for e in entries)
    for key, action in changes.items():
        if per_row[key] != 1:
            wrong.append(f"{action} of {key}: {per_row[key]} audit entries, not 1")
    wrong += [f"an audit entry for {k}, which did not change" for k in per_row if k not in changes]
    for e in entries:
        key = (e.model, e.object_id)
        if key not in changes or per_row[key] != 1:
            continue
        expected_before = None if changes[key] == "create" else rows[key]
        expected_after = None if changes[key] == "delete" else now[key]
        record = expected_after or expected_before or {}
        patient = int(record["id"]) if e.model == "Patient" else record.get("patient")
        if (e.action, instants(e.before), instants(e.after)) != (changes[key], expected_before, expected_after):
            wrong.append(f"{key}: entry says {e.action} {e.before} -> {e.after}")
        if e.user_id != user.pk or not started <= e.at <= ended or e.patient_id != patient:
            wrong.append(f"{key}: by {e.user_id} at {e.at} for patient {e.patient_id}")
    expected = Counter(WRITES[(template, method)])
    made = Counter((k[0], a) for k, a in changes.items())
    if expected - made:
        wrong.append(f"expected {sorted(expected.elements())}, the database shows {sorted(made.elements())}")
    if not expected and changes:
        wrong.append(f"a write listed as not clinical changed {sorted(changes)}")
    return wrong


def test_every_write_leaves_one_audit_entry_per_changed_record(world: World) -> None:
    wrong, made = [], 0
    for template, method in sorted(WRITES):
        row = MATRIX[template][method].split()
        for persona, result in zip(PERSONAS, row, strict=True):
            if result != "ok":
                continue
            problems = rolled_back(_write, world, persona, template, method)
            made += 1
            wrong += [f"{method} /{template} as {persona}: {p}" for p in problems]
    assert not wrong, "\n".join(wrong)
    assert made >= 60


def test_the_audit_check_sees_a_write_without_an_entry(world: World) -> None:
    from django.db.models.signals import post_save

    from benzotaper.web import audit

    post_save.disconnect(dispatch_uid="audit-after-Level", sender=m.Level)
    try:
        problems = rolled_back(_write, world, "team_clinician", "patients/<int:pid>/levels/new/", "POST")
    finally:
        post_save.connect(audit._after, sender=m.Level, dispatch_uid="audit-after-Level")
    assert any("Level" in p and "0 audit entries" in p for p in problems), problems
