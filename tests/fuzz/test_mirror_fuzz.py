"""Fuzz: the mirror timeline (issue 19 §1, surface "mirror YAML"): `assess.timeline` into `assess.mirror.analyse`.

Inputs start from valid timelines (a patient, an indication, one to three courses of a benzodiazepine or
Z-drug, symptoms of the vocabulary and others with onsets and timed severities, treatments, relief lists,
a detox, a dose diary), written as YAML in block or flow style, or as JSON, and are then mutated: a field
replaced by a value of the wrong type (numbers as strings, strings as numbers, dates as numbers or as
impossible dates, out-of-range years, NaN, infinity, booleans, nulls, lists, mappings, huge text), a
required field deleted, extra fields, a top level that is not a mapping; and in the text the YAML gotchas:
anchors and aliases (a 'billion laughs' document must be refused at once, not expanded), tags that build
Python objects (refused: safe loading), other tags, duplicate keys, yes/no/on/off, sexagesimal and octal
numbers, several documents, deep nesting, tabs, BOM, CRLF, NUL, truncation; plus raw text. The property
(tests/fuzz/contract.py): each timeline is analysed, or refused with the project's error whose message
names the field (or line and column), the value and what is accepted.

`test_mirror_cli_fuzz` runs `benzotaper mirror FILE [--json]` on a smaller sample (surface "mirror YAML
(CLI)"), a few with `--html` to check that the report escapes what the timeline says.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from benzotaper.assess.mirror import VERDICTS, analyse
from benzotaper.assess.timeline import load_timeline_text
from benzotaper.errors import AssessmentError, BenzotaperError
from benzotaper.knowledge import load_knowledge
from benzotaper.knowledge.mirror_rules import load_mirror_knowledge
from tests.fuzz.contract import EXAMPLES, FUZZ, accepted_or_refused, cli

SURFACE = "mirror YAML"
CLI_SURFACE = "mirror YAML (CLI)"
CLI_EXAMPLES = min(EXAMPLES, 150)
K = load_knowledge()
MK = load_mirror_knowledge()
CASES = sorted((Path(__file__).parents[2] / "src/benzotaper/knowledge/data/cases").glob("*.yaml"))
CASE_TEXTS = [p.read_text(encoding="utf-8") for p in CASES]
WORKDIR = Path(tempfile.mkdtemp(prefix="mirror-fuzz-"))
ACCEPTED = ("expected", "should", "accepted", "must", "needs", "is before", "e.g.", "write the value out")
ACCEPTED += ("did you mean",)  # a suggestion is what is accepted

# ---------------------------------------------------------------- valid timelines

COURSES = [("diazepam", "5 mg tds"), ("lorazepam", "1 mg bid"), ("alprazolam", "0.5 mg tds"),
           ("clonazepam", "0.5 mg bd"), ("zolpidem", "10 mg nocte"), ("oxazepam", "15 mg tds"),
           ("temazepam", "10 mg nocte"), ("Valium", "2 mg tds")]  # fmt: skip
SYMPTOMS = [name for t in MK.symptoms.values() for name in (t.label, *t.synonyms[:1])] + [
    "weird feeling", "Kopfschmerz", "fourmillements", "ból pleców", "[/]", "<b>pain</b>"]  # fmt: skip
COUNTRIES = [None, "PL", "GB", "US", "NO", "DE", "ZZ", "pl"]


def _day(rng: random.Random, low: date, high: date) -> date:
    return low + timedelta(days=rng.randrange(max((high - low).days, 1)))


def valid_timeline(seed: int) -> dict[str, Any]:
    """A valid timeline from a seed (Python's random builds it: cheaper than a draw per field)."""
    rng = random.Random(seed)
    start = _day(rng, date(1990, 1, 1), date(2022, 1, 1))
    courses, day = [], start
    for i in range(rng.randint(1, 3)):
        drug, dose = rng.choice(COURSES)
        course: dict[str, Any] = {"drug": drug, "dose": dose, "start": day}
        day += timedelta(days=rng.randint(30, 2000))
        if i < 2 and rng.random() < 0.7:
            course["end"] = day - timedelta(days=1)
        courses.append(course)
    last = day
    names = rng.sample(SYMPTOMS, rng.randint(1, 5))
    doc: dict[str, Any] = {"bzd_history": courses, "symptoms": [_symptom(rng, n, start, last) for n in names]}
    extras = {
        "patient": lambda: {
            "sex": rng.choice(["F", "M", "X"]),
            "birth_year": rng.randint(1930, 2000),
            "country": rng.choice(COUNTRIES),
        },
        "indication": lambda: {
            "condition": "anxiety disorder",
            "since": start - timedelta(days=rng.randint(0, 900)),
            "symptoms": names[:1],
        },
        "treatments": lambda: [
            {
                "drug": "sertraline",
                "for": rng.choice(names),
                "start": start,
                "effect": rng.choice(["none", "partial", "good"]),
            }
        ],
        "bzd_relief": lambda: names[: rng.randint(0, len(names))],
        "bzd_no_relief": lambda: names[len(names) - 1 :],
        "detox": lambda: {"start": last - timedelta(days=10), "serum_guided": rng.random() < 0.5},
        "assessed_on": lambda: last,
        "doses": lambda: [
            {
                "drug": courses[-1]["drug"],
                "mg": 2.0,
                "at": datetime.combine(last - timedelta(days=2), datetime.min.time()) + timedelta(hours=8),
            }
        ],
    }
    for key, make in extras.items():
        if rng.random() < 0.5:
            doc[key] = make()
    return doc


def _symptom(rng: random.Random, name: str, start: date, last: date) -> dict[str, Any]:
    record: dict[str, Any] = {"symptom": name}
    if rng.random() < 0.6:
        record["onset"] = _day(rng, start - timedelta(days=3000), last)
    if "onset" not in record or rng.random() < 0.3:
        at = datetime.combine(_day(rng, start, last), datetime.min.time()) + timedelta(minutes=rng.randrange(1440))
        record |= {"at": at, "severity": rng.choice([0, 3, 7.5, 10])}
    if rng.random() < 0.2:
        record["resolved"] = last
    return record


def render(doc: Any, style: int) -> tuple[str, bool]:
    """(text, as_json): YAML block, YAML flow, YAML mixed, or JSON."""
    if style == 3:
        return json.dumps(doc, default=str, ensure_ascii=False), True
    flow = (False, True, None)[style]
    text = yaml.dump(doc, Dumper=_NoAliases, default_flow_style=flow, allow_unicode=True, sort_keys=False)
    return text, False


class _NoAliases(yaml.SafeDumper):
    """Writes a value used twice out twice: the timeline reader refuses aliases (a billion-laughs guard)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


# ---------------------------------------------------------------- mutations of the document

ODD_VALUES: list[Any] = ["", " ", "2020-13-45", "2020-02-30", "2020", 2020, "1700000000", 0, -1, 11, 10.5, "7",
                         "7.5", "seven", math.nan, math.inf, -math.inf, True, False, "yes", "NO", "off", None, [],
                         {}, [1, 2], {"a": 1}, "0001-01-01", "9999-12-31", "1899-12-31", "2101-01-01",
                         "2020-01-01T25:00", "2020-01-01T07:00+05:00", "2020-01-01T07:00Z", "2020-01-01 07:00",
                         date(1, 1, 1), date(9999, 12, 31), datetime(2020, 1, 1, 7, 30), "x" * 10_000, "\x00",
                         "🧠", "[/x]", "[bold]", "<script>alert(1)</script>", "F", "female", "f", "great", "partial",
                         "diazepam", "foobarzepam", "1e9 mg tds", "0 mg", "-5 mg tds", "5", 5, "5 mg prn",
                         10**30, -(10**30), 1e300, 1e-300]  # fmt: skip
odd_values = st.one_of(
    # a copy each time: the lists and dicts above are put into documents that later mutations change (shared,
    # one could come to hold itself: a cycle whose paths filled 24 GB)
    st.sampled_from(ODD_VALUES).map(copy.deepcopy),
    st.text(max_size=20),
    st.integers(),
    st.floats(),
    st.dates(),
    st.datetimes(),
    st.lists(st.integers(), max_size=3),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in the document, to a depth of 100 (a deep-nesting mutation goes far deeper)."""
    out = [prefix] if prefix else []
    if len(prefix) >= 100:
        return out
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> None:
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


DOC_MUTATIONS = st.lists(st.sampled_from(["replace", "replace", "replace", "delete", "extra", "wrap"]), max_size=3)


@st.composite
def mutated_docs(draw: st.DrawFn) -> tuple[Any, str | None]:
    """A valid timeline with mutations, and the top-level key changed when only one mutation was made."""
    seed = draw(st.integers(0, 2**32 - 1))
    doc: Any = valid_timeline(seed)
    rng = random.Random(~seed)
    kinds = draw(DOC_MUTATIONS)
    for kind in kinds:
        paths = _paths(doc)
        if not paths:
            break
        path = rng.choice(paths)
        if kind == "replace":
            _set(doc, path, draw(odd_values))
        elif kind == "delete":
            _set(doc, path, None, delete=True)
        elif kind == "extra":
            doc[rng.choice(["extra", "notes", "bzd_histroy", "symptom"])] = draw(odd_values)
        else:
            parent = doc
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = [parent[path[-1]]] if rng.random() < 0.5 else {"value": parent[path[-1]]}
    top = (str(path[0]) if kinds and kinds[0] in ("replace", "delete", "wrap") else None) if len(kinds) == 1 else None
    if draw(st.integers(0, 30)) == 15:
        doc = rng.choice([[doc], "a timeline", 42, None, doc.get("bzd_history", []) if isinstance(doc, dict) else []])
        top = None
    return doc, top


# ---------------------------------------------------------------- mutations of the text (the YAML gotchas)

BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{b}: &{b} [{','.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
) + "symptoms: *i\nbzd_history: *i\n"  # fmt: skip
TAGGED = ["!!python/object/apply:os.system ['true']", "!!python/object:object {}", "!!python/name:os.system",
          "!!python/module:os", "!!python/tuple [1, 2]", "!!binary aGVsbG8=", "!!binary ***", "!!set {a, b}",
          "!!timestamp foo", "!!timestamp 2020-01-01", "!!int abc", "!!int ''", "!!float x", "!!bool maybe",
          "!foo bar", "!!str 2020-01-01", "!!null x", "!!map [1]", "!!seq {a: 1}", "!!omap [a: 1]",
          "!!pairs [a: 1]", "!!merge x", "!<tag:yaml.org,2002:python/object/new:os.system> [true]", "*undefined",
          "&anchor 1", "[*a]", "2020-13-45", "2020-01-01 25:00:00", "9" * 5000, "0x_", "1:30", "0o17", "010",
          ".inf", "-.nan", "~", "yes", "On", "NO", "{<<: {a: 1}}", "[" * 60 + "]" * 60, "{a: " * 40 + "1" + "}" * 40,
          "'unterminated", '"\\x00"', "|\n  block", ">-\n  folded", "? complex\n: key", "@reserved", "`tick",
          "%YAML 1.2", "- - -", "\t1", "'it''s'"]  # fmt: skip
SLOT = "__FUZZ_SLOT__"
TEXT_MUTATIONS = ["none"] * 8 + ["slot", "slot", "slot", "prepend_alias", "duplicate", "multi_doc", "tabs", "bom",
                                 "crlf", "nul", "truncate", "laughs", "comment", "directive"]  # fmt: skip


@st.composite
def timeline_texts(draw: st.DrawFn) -> tuple[str, bool, str | None]:
    """(text, as_json, top-level key the refusal must name or None)."""
    doc, top = draw(mutated_docs())
    kind = draw(st.sampled_from(TEXT_MUTATIONS))
    rng = random.Random(draw(st.integers(0, 2**16)))
    if kind == "slot" and isinstance(doc, dict):
        paths = _paths(doc)
        _set(doc, rng.choice(paths), SLOT)
    text, as_json = render(doc, draw(st.integers(0, 3)))
    if kind == "none":
        return text, as_json, top
    return _text_mutation(kind, text, rng, draw), False, None


def _text_mutation(kind: str, text: str, rng: random.Random, draw: st.DrawFn) -> str:
    at = rng.randrange(len(text) + 1)
    if kind == "slot":
        return re.sub(rf"['\"]?{SLOT}['\"]?", lambda _: draw(st.sampled_from(TAGGED)), text, count=1)
    mutated = {
        "prepend_alias": "base: &base {drug: diazepam}\nalso: *base\n" + text,
        "duplicate": text + "\nsymptoms: []\n",
        "multi_doc": text + "\n---\nbzd_history: []\n",
        "tabs": text.replace("  ", "\t"),
        "bom": "\ufeff" + text,
        "crlf": text.replace("\n", "\r\n"),
        "nul": text[:at] + "\x00" + text[at:],
        "truncate": text[:at],
        "laughs": BILLION_LAUGHS,
        "comment": "# a comment\n" + text.replace("\n", "  # note\n", 1),
        "directive": "%YAML 1.1\n---\n" + text,
    }
    return mutated.get(kind, text)


raw_texts = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="{}[]:,-&*!|>'\"#%@` \n\tabc0123456789", max_size=200),
    st.sampled_from(CASE_TEXTS).flatmap(lambda t: st.integers(0, len(t)).map(lambda n: t[:n])),
)

# ---------------------------------------------------------------- the property


def mirror(text: str, as_json: bool) -> dict[str, Any]:
    """What `benzotaper mirror` does with a file's text: read, validate, analyse."""
    return analyse(K, load_timeline_text(text, "t.json" if as_json else "t.yaml", as_json), MK).to_dict()


def _check_analysis(doc: dict[str, Any]) -> None:
    """An accepted timeline gives a verdict per symptom, a probability, strict JSON (no NaN)."""
    json.dumps(doc, allow_nan=False, default=str)
    assert doc["symptoms"]
    for name, s in doc["symptoms"].items():
        assert s["verdict"] in VERDICTS, (name, s)
        assert 0 <= s["score"] <= 1, (name, s)


def _check_refusal(exc: BenzotaperError, top: str | None) -> None:
    message = str(exc)
    assert "\n" not in message and "\r" not in message, repr(message)
    assert message.startswith("timeline"), f"{message!r} does not say it is the timeline"
    assert any(word in message for word in ACCEPTED), f"{message!r} says nothing of what is accepted"
    assert len(message) < 2000, f"a {len(message)}-character message: {message[:200]!r}"
    if top is not None:  # one field of a valid timeline changed: the refusal names where
        assert top in message, f"{message!r} does not name {top!r}"


def check(text: str, as_json: bool, top: str | None = None) -> None:
    result = accepted_or_refused(SURFACE, lambda: mirror(text, as_json), ["timeline"])
    if isinstance(result, BenzotaperError):
        _check_refusal(result, top)
    else:
        _check_analysis(result)


@settings(FUZZ, max_examples=min(EXAMPLES, 300))
@given(st.integers(0, 2**32 - 1), st.integers(0, 3))
def test_the_valid_timelines_are_accepted(seed: int, style: int) -> None:
    """The generator's starting point is valid: so a refusal after one mutation is that mutation's."""
    _check_analysis(mirror(*render(valid_timeline(seed), style)))


@pytest.mark.slow
@FUZZ
@given(st.one_of(timeline_texts(), timeline_texts(), timeline_texts(), raw_texts.map(lambda t: (t, False, None))))
def test_mirror_timeline_fuzz(case: tuple[str, bool, str | None]) -> None:
    check(*case)


# ---------------------------------------------------------------- the command line

SCRIPT = "<script>alert(1)</script>"


@st.composite
def cli_cases(draw: st.DrawFn) -> tuple[list[str], Path | None]:
    text, as_json, _ = draw(timeline_texts()) if draw(st.integers(0, 2)) == 1 else (None, False, None)
    if text is None:  # a valid timeline whose symptom carries markup for the terminal and the HTML report
        doc = valid_timeline(draw(st.integers(0, 2**32 - 1)))
        doc["symptoms"][0]["symptom"] = draw(st.sampled_from(["[/x]", "[bold red]x[/]", SCRIPT, "a & b"]))
        text, as_json = render(doc, draw(st.integers(0, 3)))
    path = WORKDIR / ("t.json" if as_json else "t.yaml")
    path.write_text(text, encoding="utf-8")
    html = WORKDIR / "report.html" if draw(st.integers(0, 9)) == 5 else None
    args = ["mirror", str(path), *draw(st.sampled_from([[], ["--json"]]))]
    return ([*args, "--html", str(html)] if html else args), html


@pytest.mark.slow
@settings(FUZZ, max_examples=CLI_EXAMPLES)
@given(cli_cases())
def test_mirror_cli_fuzz(case: tuple[list[str], Path | None]) -> None:
    args, html = case
    if html is not None:
        html.unlink(missing_ok=True)
    with mock.patch("benzotaper.mirror_cli.load_knowledge", return_value=K):  # loaded once, not per call
        code, stdout, _ = cli(CLI_SURFACE, args)
    if code == 0 and "--json" in args:
        json.loads(stdout)
    if code == 0 and html is not None:
        assert SCRIPT not in html.read_text(encoding="utf-8"), "the HTML report shows the timeline's text unescaped"


# ---------------------------------------------------------------- failures found fuzzing this surface (regressions)


def _refused(text: str, as_json: bool = False) -> str:
    with pytest.raises(AssessmentError) as caught:
        mirror(text, as_json)
    return str(caught.value)


BASE = (
    "bzd_history: [{drug: diazepam, dose: 5 mg tds, start: 2020-01-01}]\n"
    "symptoms: [{symptom: anxiety, onset: 2021-01-01}]\n"
)


def test_a_billion_laughs_document_is_refused_at_once() -> None:
    # found fuzzing this surface: safe_load shares the aliased lists, but the refusal quoted the value and its
    # repr expanded 9**8 strings (10 s and hundreds of MB); aliases are now refused as the document is composed
    assert "aliases (*name) are not accepted" in _refused(BILLION_LAUGHS)


def test_tags_that_build_python_objects_are_refused_on_one_line() -> None:
    # found fuzzing this surface: the refusal was PyYAML's multi-line message (two lines on stderr)
    message = _refused(BASE + "patient: !!python/object/apply:os.system ['true']\n")
    assert "line 3, column 10" in message and "\n" not in message


def test_an_impossible_date_is_refused_with_its_line() -> None:
    # found fuzzing this surface: 2020-13-45 escaped PyYAML's date constructor as a bare ValueError
    assert "line 1" in _refused(BASE.replace("2020-01-01", "2020-13-45"))


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, BASE + "x: " + "{a: " * 3000 + "1" + "}" * 3000])
def test_deep_nesting_is_refused_not_a_recursion_error(text: str) -> None:
    # found fuzzing this surface: 5,000 nested lists raised RecursionError (after 4 s)
    assert "nested more than" in _refused(text)


def test_a_json_number_past_the_digit_limit_is_refused() -> None:
    # found fuzzing this surface: json.loads raised a bare ValueError (Python's 4,300-digit limit)
    assert "not valid JSON" in _refused('{"bzd_history": ' + "9" * 5000 + "}", as_json=True)


def test_a_number_is_not_read_as_a_date() -> None:
    # found fuzzing this surface: pydantic read `start: 0` as 1970-01-01 (seconds since the epoch) and accepted it
    assert "bzd_history[0].start: expected a date YYYY-MM-DD (got 0)" in _refused(BASE.replace("2020-01-01", "0"))


def test_a_zoned_time_beside_a_plain_one_is_analysed() -> None:
    # found fuzzing this surface: an `at` with a UTC offset beside one without raised TypeError in the analysis
    zoned = (
        "bzd_history: [{drug: diazepam, dose: 5 mg tds, start: 2020-01-01}]\n"
        "symptoms:\n"
        "  - {symptom: anxiety, at: 2021-01-01 07:00:00+01:00, severity: 5}\n"
        "  - {symptom: anxiety, at: 2021-01-02 07:00:00, severity: 4}\n"
    )
    _check_analysis(mirror(zoned, False))


def test_a_year_out_of_range_is_refused_not_an_overflow() -> None:
    # found fuzzing this surface: a timed record in year 1 raised OverflowError in the PK lead-in
    assert "years 1900-2100" in _refused(BASE.replace("2021-01-01", "0001-01-01"))


def test_country_no_is_norway_not_false() -> None:
    # found fuzzing this surface: YAML 1.1 read `country: NO` as False, refused as "not a valid string"
    mirror(BASE + "patient: {country: NO}\n", False)


def test_an_infinite_diary_dose_is_refused() -> None:
    # found fuzzing this surface: `mg: .inf` was accepted (pydantic allows inf with gt=0); 1e300 overflowed numpy
    assert "doses[0].mg" in _refused(BASE + "doses: [{drug: diazepam, mg: .inf, at: 2021-01-01T08:00}]\n")
    assert "doses[0].mg" in _refused(BASE + "doses: [{drug: diazepam, mg: 1e300, at: 2021-01-01T08:00}]\n")


def test_an_unknown_diary_drug_names_the_field() -> None:
    # found fuzzing this surface: UnknownDrugError without the field (doses[0].drug)
    assert "doses[0].drug" in _refused(BASE + "doses: [{drug: foo, mg: 1, at: 2021-01-01T08:00}]\n")


@pytest.mark.parametrize("tagged", ["!!map [a, b]", "!!set [a]", "!!map foo"])
def test_a_sequence_or_scalar_tagged_as_a_mapping_is_refused(tagged: str) -> None:
    # found fuzzing this surface (10,000 inputs): `!!map [a, b]` raised TypeError in the duplicate-key check
    message = _refused(BASE + f"x: {tagged}\n")
    assert "is not a mapping; drop the tag" in message and "line" in message


def test_an_unknown_drug_without_suggestions_says_what_is_accepted() -> None:
    # found fuzzing this surface (10,000 inputs): "unknown drug '2020-01-01'" said nothing of what is accepted
    message = _refused(BASE.replace("drug: diazepam", "drug: '2020-01-01'"))
    assert "unknown drug '2020-01-01'; expected a drug name such as 'diazepam'" in message


def test_a_birth_year_past_64_bits_says_what_is_accepted() -> None:
    # found fuzzing this surface (random run at 10,000): pydantic's "exceeded maximum size" said nothing accepted
    message = _refused(BASE + "patient: {birth_year: 9223372036854775808.0}\n")
    assert "patient.birth_year: the number is too large; expected a whole number" in message
