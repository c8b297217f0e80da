"""The interface in English and Polish: translated pages, the saved language, a complete and compiled
catalogue, and locale formats (Polish dates and decimal commas in text, never inside form values)."""

from __future__ import annotations

import ast
import gettext
import re
import shutil
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone, translation

from benzotaper.web import clinic_clock, kb, plan_records
from benzotaper.web import models as m
from tests.web.conftest import Clinic, approve_running_plan

WEB = Path(kb.__file__).resolve().parent
PO = WEB / "locale" / "pl" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
TEMPLATES = WEB / "templates" / "web"


@pytest.fixture(autouse=True)
def _english_afterwards() -> Iterator[None]:
    """Requests activate the user's language in this thread; later tests must not inherit Polish."""
    yield
    translation.deactivate()


def _polish(*users: Any) -> None:
    m.Profile.objects.filter(user__in=users).update(language="pl")


def _page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return str(response.content.decode())


def _approve_running_plan(clinic: Clinic) -> dict[str, Any]:
    """An approved plan that started two days ago; returns today's step."""
    approve_running_plan(clinic, days_ago=2)
    step = plan_records.step_on(m.Plan.objects.get().plan, clinic_clock.today())
    assert step is not None and step["doses"]
    return step


# --- pages ----------------------------------------------------------------------------------------


def test_clinician_with_polish_profile_sees_polish_pages(clinic: Clinic) -> None:
    _polish(clinic.doctor)
    c = clinic.client(clinic.doctor)
    listing = _page(c, "/patients/")
    assert '<html lang="pl">' in listing
    for word in ("Pacjenci", "Nowy pacjent", "Szukaj", "Zespół", "Pomoc w kryzysie", "Wyloguj"):
        assert word in listing, word
    assert ">Patients<" not in listing and "Log out" not in listing
    page = _page(c, f"/patients/{clinic.patient.pk}/")
    for word in (
        "Aktualny schemat dawkowania",
        "ekwiwalentu diazepamu na dobę",
        "Historia dawkowania",
        "Stężenia w surowicy",
        "Kreator planu",
        "Dzienniczek pacjenta",
    ):
        assert word in page, word
    assert "Current regimen" not in page and "Regimen history" not in page


def test_patient_with_polish_profile_sees_polish_diary(clinic: Clinic) -> None:
    _polish(clinic.patient_user)
    _approve_running_plan(clinic)
    page = _page(clinic.client(clinic.patient_user), "/diary/")
    for word in ("Mój dzienniczek", "Dziś", "Dawki", "Przyjęto", "Jak się dziś czujesz?", "Zapisz samopoczucie"):
        assert word in page, word
    assert "How are you today?" not in page and "My diary" not in page


def test_login_page_follows_the_browser_language(db: Any) -> None:
    page = _page(Client(HTTP_ACCEPT_LANGUAGE="pl"), "/login/")
    assert '<html lang="pl">' in page
    assert "Zaloguj się" in page and "Numery pomocy w kryzysie" in page and "Log in" not in page
    assert "Hasło" in page  # Django's own Polish catalogue for the auth form's labels
    english = _page(Client(HTTP_ACCEPT_LANGUAGE="en"), "/login/")
    assert "Log in" in english and "Zaloguj się" not in english


def test_english_stays_the_default(clinic: Clinic) -> None:
    page = _page(clinic.client(clinic.doctor), f"/patients/{clinic.patient.pk}/")
    assert '<html lang="en">' in page and "Current regimen" in page and "Aktualny" not in page


def test_choosing_a_language_is_saved_in_the_profile(clinic: Clinic) -> None:
    c = clinic.client(clinic.doctor)
    response = c.post("/language/", {"language": "pl", "next": "/patients/"})
    assert response.status_code == 302 and response["Location"] == "/patients/"
    assert m.Profile.objects.get(user=clinic.doctor).language == "pl"
    # A new session (another device) gets the saved language too.
    assert "Pacjenci" in _page(clinic.client(clinic.doctor), "/patients/")
    c.post("/language/", {"language": "xx", "next": "/"})  # unknown codes are ignored
    assert m.Profile.objects.get(user=clinic.doctor).language == "pl"
    c.post("/language/", {"language": "en", "next": "/"})
    assert m.Profile.objects.get(user=clinic.doctor).language == "en"
    assert ">Patients<" in _page(c, "/patients/")


# --- dates and numbers ----------------------------------------------------------------------------


def test_polish_dates_are_day_month_year_with_dots(clinic: Clinic) -> None:
    at = timezone.make_aware(datetime(2026, 11, 21, 9, 5))
    m.DiaryEntry.objects.create(patient=clinic.patient, day=date(2026, 11, 21), at=at, kind="checkin", feeling=6)
    _polish(clinic.doctor, clinic.patient_user)
    page = _page(clinic.client(clinic.doctor), f"/patients/{clinic.patient.pk}/")
    assert "01.01.2025" in page  # regimen start, SHORT_DATE_FORMAT
    assert "21.11.2026 09:05" in page  # diary entry, SHORT_DATETIME_FORMAT
    diary = _page(clinic.client(clinic.patient_user), "/diary/")
    assert "21.11.2026 09:05" in diary
    m.Profile.objects.filter(user=clinic.doctor).update(language="en")
    english = _page(clinic.client(clinic.doctor), f"/patients/{clinic.patient.pk}/")
    assert "01/01/2025" in english and "01.01.2025" not in english


def test_polish_numbers_use_a_decimal_comma_in_text(clinic: Clinic) -> None:
    _polish(clinic.doctor)
    page = _page(clinic.client(clinic.doctor), f"/patients/{clinic.patient.pk}/")
    assert "60,0 mg ekw. diazepamu" in page  # the regimen history's daily diazepam equivalent
    assert "60.0 mg" not in page


def test_number_inputs_keep_a_decimal_point_in_polish(clinic: Clinic) -> None:
    _polish(clinic.doctor, clinic.patient_user)
    step = _approve_running_plan(clinic)
    diary = _page(clinic.client(clinic.patient_user), "/diary/")
    values = re.findall(r'<input type="number" name="taken_mg"[^>]*value="([^"]*)"', diary)
    assert values, "no dose input on the diary page"
    assert all(re.fullmatch(r"\d+(\.\d+)?", v) for v in values), values
    assert any("." in v for v in values)
    mg = step["doses"][0]["mg"]
    assert f"{mg} mg".replace(".", ",") in diary  # the same dose as text is Polish
    # A value the browser sends back with a dot is accepted under Polish.
    dose = step["doses"][0]
    r = clinic.client(clinic.patient_user).post(
        "/diary/dose/", {"drug": dose["drug"], "planned_mg": dose["mg"], "time": dose["time"], "taken_mg": "0.5"}
    )
    assert r.status_code == 302 and m.DiaryEntry.objects.get(kind="dose").taken_mg == pytest.approx(0.5)
    # The form's hidden inputs are not localised either.
    assert re.search(r'type="hidden" name="planned_mg" value="\d+\.\d+"', diary)


def test_date_inputs_keep_iso_values_in_polish(clinic: Clinic) -> None:
    _polish(clinic.doctor)
    page = _page(clinic.client(clinic.doctor), f"/patients/{clinic.patient.pk}/regimen/")
    values = re.findall(r'<input type="date" name="\w+" value="([^"]*)"', page)
    assert values and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) for v in values), values


# --- the catalogue ---------------------------------------------------------------------------------


def _unquote(line: str) -> str:
    value = ast.literal_eval(line.strip())
    assert isinstance(value, str)
    return value


def read_po(path: Path) -> list[dict[str, Any]]:
    """A .po file's entries (header included, obsolete '#~' ones left out): msgctxt, msgid, msgid_plural,
    msgstr (a list: one item, or one per plural form), flags and the python-format marker."""
    entries: list[dict[str, Any]] = []
    entry: dict[str, Any] = {}
    key: str | None = None

    def close() -> None:
        nonlocal entry, key
        if "msgid" in entry:
            entries.append(entry)
        entry, key = {}, None

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            close()
        elif line.startswith("#~"):
            continue
        elif line.startswith("#,"):
            if "msgid" in entry:
                close()
            entry.setdefault("flags", set()).update(f.strip() for f in line[2:].split(","))
        elif line.startswith("#"):
            if "msgid" in entry:
                close()
        elif line.startswith('"'):
            assert key is not None, f"stray string in {path}: {raw!r}"
            if key.startswith("msgstr"):
                entry["msgstr"][-1] += _unquote(line)
            else:
                entry[key] += _unquote(line)
        else:
            word, _, rest = line.partition(" ")
            if word in ("msgctxt", "msgid") and "msgid" in entry:
                close()
            if word.startswith("msgstr["):
                entry.setdefault("msgstr", []).append(_unquote(rest))
            elif word == "msgstr":
                entry["msgstr"] = [_unquote(rest)]
            else:
                entry[word] = _unquote(rest)
            key = word
    close()
    return entries


PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[sdifeEgGxXr%]|\{\w*\}")


def test_catalogue_is_complete_with_no_fuzzy_entries_and_the_same_placeholders() -> None:
    entries = read_po(PO)
    header, messages = entries[0], entries[1:]
    assert header["msgid"] == "" and "fuzzy" not in header.get("flags", set())
    assert "Language: pl\n" in header["msgstr"][0]
    assert "nplurals=4" in header["msgstr"][0]
    assert len(messages) >= 150
    untranslated = [e["msgid"] for e in messages if not all(s.strip() for s in e["msgstr"])]
    fuzzy = [e["msgid"] for e in messages if "fuzzy" in e.get("flags", set())]
    assert not untranslated, untranslated
    assert not fuzzy, fuzzy
    for e in messages:
        if "msgid_plural" in e:
            assert len(e["msgstr"]) == 4, e["msgid"]  # Polish: one, few, many, other
        sources = [e["msgid"], e.get("msgid_plural", e["msgid"])]
        wanted = {p for s in sources for p in PLACEHOLDER.findall(s)}
        for s in e["msgstr"]:
            if "python-format" in e.get("flags", set()) or wanted:
                assert set(PLACEHOLDER.findall(s)) == wanted, (e["msgid"], s)


def test_compiled_catalogue_matches_the_po_file() -> None:
    assert MO.exists(), "run compilemessages (see docs/i18n.md)"
    with MO.open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    catalog: dict[Any, str] = compiled._catalog  # type: ignore[attr-defined]
    expected: dict[Any, str] = {}
    for e in read_po(PO)[1:]:
        key = f"{e['msgctxt']}\x04{e['msgid']}" if "msgctxt" in e else e["msgid"]
        if "msgid_plural" in e:
            expected.update({(key, i): s for i, s in enumerate(e["msgstr"])})
        else:
            expected[key] = e["msgstr"][0]
    compiled_messages = {k: v for k, v in catalog.items() if k != ""}
    assert compiled_messages == expected, "django.mo is stale: run compilemessages (see docs/i18n.md)"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext (xgettext) is not installed")
def test_catalogue_has_every_marked_string_of_the_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """makemessages on a copy of the app finds exactly the strings the committed catalogue has."""
    copy = tmp_path / "web"
    shutil.copytree(WEB, copy, ignore=shutil.ignore_patterns("__pycache__", "static", "migrations", "*.mo"))
    monkeypatch.chdir(copy)
    with override_settings(LOCALE_PATHS=[copy / "locale"]):
        call_command("makemessages", locale=["pl"], add_location="file", verbosity=0)
    fresh = {(e.get("msgctxt"), e["msgid"]) for e in read_po(copy / "locale" / "pl" / "LC_MESSAGES" / "django.po")}
    committed = {(e.get("msgctxt"), e["msgid"]) for e in read_po(PO)}
    assert not fresh - committed, f"new strings to translate (see docs/i18n.md): {sorted(fresh - committed)}"
    assert not committed - fresh, f"strings no longer in the app: {sorted(committed - fresh)}"


# makemessages finds calls to `_` and the gettext functions by their own names only.
EXTRACTED = {"_", "gettext", "gettext_lazy", "gettext_noop", "ngettext", "ngettext_lazy", "pgettext", "pgettext_lazy"}


def test_translation_functions_go_by_names_makemessages_extracts() -> None:
    """An alias such as `gettext_lazy as _lazy` hides its strings from the catalogue (the worklist's kinds were)."""
    hidden = []
    for path in sorted(WEB.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "django.utils.translation":
                names = [a for a in node.names if (a.asname or a.name) not in EXTRACTED]
                hidden += [f"{path.name}: {a.name} as {a.asname}" for a in names]
    assert not hidden, hidden


def test_every_worklist_kind_has_a_polish_label() -> None:
    from benzotaper.web.worklist import LABELS

    with translation.override("en"):
        english = {kind: str(label) for kind, label in LABELS.items()}
    with translation.override("pl"):
        polish = {kind: str(label) for kind, label in LABELS.items()}
    assert set(LABELS) == {"red_flag", "sample_overdue", "replan_waiting", "missed_doses", "sample_due", "step_starts"}
    untranslated = [english[k] for k in LABELS if polish[k] == english[k]]
    assert not untranslated, untranslated


def test_templates_have_no_unmarked_text() -> None:
    """Visible text and text attributes in the templates go through {% trans %} (names and units aside)."""
    allowed = {"benzotaper", "mg", "ng", "mL", "iCalendar", "CSV"}
    problems = []
    for path in sorted(TEMPLATES.glob("*.html")):
        source = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", path.read_text(encoding="utf-8"), flags=re.S)
        for attr, value in re.findall(r'\b(aria-label|placeholder|title|alt)="([^"]*)"', source):
            if re.search(r"[A-Za-z]{2,}", value):
                problems.append(f"{path.name}: {attr}={value!r}")
        text = re.sub(r"<script.*?</script>|<[^>]*>|&\w+;", " ", source, flags=re.S)
        problems += [f"{path.name}: {w!r}" for w in re.findall(r"[A-Za-z][A-Za-z'-]+", text) if w not in allowed]
    assert not problems, problems
