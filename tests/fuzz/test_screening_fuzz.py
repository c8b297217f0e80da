"""Fuzz: the screen answers and risk profile JSON of `benzotaper screen` and `benzotaper risk` (issue 19 §1,
surface "screening/risk JSON").

Screen answers are valid objects (sign ids or synonyms in any case, yes/no in every accepted form, an SDS total
with its cut-off or none) with up to three mutations: unknown signs, a sign repeated through a synonym or the same
key twice, answers that are not yes/no (2, 1.0, null, "maybe", NaN), JSON that is not an object, nothing to
screen. Risk profiles are valid objects (flags true/false/null, ages, doses and years, co-used substances,
findings with and without red flags, countries with crisis lines, EU members, aliases, codes without lines, a
regimen now and then) with up to three mutations: numbers negative, NaN, Infinity, 1e999, 400-digit, texts or
true/false; flags as 1, 0 or "yes"; lists as texts; unknown fields; a regimen and a dose both; a dose above the
plausible maximum; countries that are not ISO codes ('ß' upper-cases to 'SS'). Both get byte-level damage too
(BOM, CRLF, truncation, UTF-16, a stray byte), and any JSON, text or bytes.

The property (tests/fuzz/contract.py): accepted, or refused with the project's error naming the field, the key or
the file. Structured inputs carry their expected outcome: one that should be refused but is accepted (or the
reverse) fails, an accepted screen must find exactly the positive signs given, and every accepted answer must
serialise as strict JSON (no NaN or Infinity).

Library calls take well under a millisecond (a regimen's parse about 9 ms, so one profile in 25 has one), so the
10,000 inputs of CI go through `read_json` and the library; the command line (Typer's test runner costs 90 ms a
call) runs on a fiftieth of that.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from benzotaper.assess.dependence import RESULTS, DependenceScreen, screen_dependence
from benzotaper.assess.risk import SETTING_RANK, RiskAssessment, RiskProfile, assess_risk
from benzotaper.errors import AssessmentError, BenzotaperError
from benzotaper.knowledge import load_knowledge
from benzotaper.knowledge.instruments import load_instruments
from benzotaper.knowledge.safety_net import FLAGS, SUBSTANCES, load_safety_net
from benzotaper.screen_cli import read_json
from tests.fuzz.contract import EXAMPLES, FUZZ, accepted_or_refused, cli
from tests.fuzz.test_instruments_fuzz import SEEDS, Obj, Raw, choose, dump, json_any, upto

SURFACE = "screening/risk JSON"
K = load_knowledge()  # module level: hypothesis would print a fixture's huge repr on failure
NET = load_safety_net()
SDS = load_instruments()["sds"]
_DEFAULT_CUTOFF = SDS.cutoff()
assert _DEFAULT_CUTOFF is not None
SDS_CUTOFF = _DEFAULT_CUTOFF.value  # the SDS instrument's default cut-off, as `screen --sds-score` uses it
FILE = "in.json"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the module: hypothesis refuses function-scoped fixtures."""
    return tmp_path_factory.mktemp("screening")


@dataclass
class Case:
    """A JSON file for `screen` or `risk`, and what should become of it."""

    command: str  # "screen" or "risk"
    data: bytes = b""
    valid: bool | None = True  # True: must be accepted; False: must be refused; None: either
    mentions: list[str] = field(default_factory=list)
    sds_score: int | None = None  # screen: the SDS total given with the answers
    positive: set[str] | None = None  # screen: the signs answered yes, when known
    answered: set[str] | None = None  # screen: every sign answered, when known
    inpatient: bool = False  # risk: a flag that alone calls for inpatient care is true


def refuse(case: Case, *mentions: str) -> None:
    """This mutation makes the input bad: a refusal must name one of `mentions` (or another mutation's)."""
    case.valid = False if case.valid is True else case.valid
    case.mentions += mentions


def encoded(draw: st.DrawFn, text: str, case: Case) -> bytes:
    """UTF-8 bytes, with a BOM or CRLF (both read), or truncated, UTF-16 or a stray byte (refused)."""
    data = text.encode("utf-8")
    for op in draw(BYTE_OPS):
        if op == "bom" and not data.startswith(b"\xef\xbb\xbf"):
            data = b"\xef\xbb\xbf" + data
        elif op == "crlf" and b"\r\n" not in data:
            data = data.replace(b"\n", b"\r\n")
        elif op == "truncate":
            data = data[: upto(draw, len(data) - 1)] if data else data
            refuse(case, FILE)  # a cut object is bad JSON; a document that was not an object was refused anyway
        elif op == "utf16":
            data = text.encode("utf-16")
            refuse(case, FILE)
        elif op == "stray_byte":
            at = upto(draw, len(data))
            data = data[:at] + b"\xff" + data[at:]
            refuse(case, FILE)
    return data


BYTE_OPS: st.SearchStrategy[list[str]] = st.lists(
    st.sampled_from(["bom", "crlf", "truncate", "utf16", "stray_byte"]), max_size=2
) | st.just([])
NOT_OBJECTS: list[Any] = [[], [{"craving": "yes"}], 0, 1.5, "craving", Raw("null"), True, Raw("NaN")]  # None: no doc

# ---------------------------------------------------------------- screen answers

YES: list[Any] = [True, "yes", "Yes", " y ", "TRUE", "true", "1", 1]
NO: list[Any] = [False, "no", "NO", "n", " false", "0", 0]
NOT_YES_NO: list[Any] = ["maybe", "", "ja", 2, -1, 1.0, 0.0, None, [], {}, ["yes"], 10**30, "yes please", "[/]",
                         Raw("NaN"), Raw("Infinity"), Raw("1" * 400)]  # fmt: skip
SIGN_KEYS = {s.id: [s.id, *s.synonyms] for s in NET.signs}
SCREEN_OPS: st.SearchStrategy[list[str]] = st.lists(
    st.sampled_from(["unknown", "synonym_twice", "same_key_twice", "bad_value", "bad_value", "not_object", "empty",
                     "bad_sds"]),
    max_size=3,
) | st.just([])  # fmt: skip


def _sign(key: str) -> str:
    """The sign a key names ('' for none)."""
    return next((s for s, keys in SIGN_KEYS.items() if key.strip().lower() in keys), "")


def _spelled(rng: random.Random, key: str) -> str:
    return rng.choice([key, key, key.upper(), key.title(), f" {key} "])


@st.composite
def screen_cases(draw: st.DrawFn) -> Case:
    """Valid screen answers (and an SDS total now and then), with zero to three mutations."""
    rng = random.Random(draw(SEEDS))  # one draw for every sign: a draw per sign costs more than the screen
    signs = [s for s in SIGN_KEYS if rng.random() < 0.5]
    answers = {sign: rng.random() < 0.5 for sign in signs}
    pairs: list[tuple[str, Any]] = [
        (_spelled(rng, rng.choice(SIGN_KEYS[s])), rng.choice(YES if yes else NO)) for s, yes in answers.items()
    ]
    case = Case("screen", positive={s for s, yes in answers.items() if yes}, answered=set(answers))
    if upto(draw, 3) == 0:
        case.sds_score = upto(draw, SDS.max_score)
    doc: Any = None
    for op in sorted(draw(SCREEN_OPS), key=lambda op: op != "empty"):  # emptied first, then mutated
        doc = _screen_mutation(draw, rng, op, pairs, case) if doc is None else doc
    if not pairs and case.sds_score is None and doc is None:
        refuse(case, "nothing to screen")
    text = dump(Obj(pairs) if doc is None else doc, choose(draw, [None, "  "]))
    case.data = encoded(draw, text, case)
    if case.valid is not True:
        case.positive = case.answered = None
    return case


def _screen_mutation(
    draw: st.DrawFn, rng: random.Random, op: str, pairs: list[tuple[str, Any]], case: Case
) -> Any | None:
    """One mutation of the answers (in place); a document that replaces them all, or None."""
    if op == "unknown":
        key = choose(draw, ["cravings!", "", "craving_", "sign", "[/]", ":smile:", "crâving", "a" * 300])
        pairs.append((key, "yes"))
        refuse(case, "unknown screen answer", "given twice")  # the same unknown key may be added twice
    elif op in ("synonym_twice", "same_key_twice") and (known := [p for p in pairs if _sign(p[0])]):
        key, value = known[upto(draw, len(known) - 1)]
        sign = _sign(key)
        twin = key if op == "same_key_twice" else rng.choice(SIGN_KEYS[sign])
        pairs.append((twin, value))
        refuse(case, "repeats the sign", "given twice")
    elif op == "bad_value" and pairs:
        i = upto(draw, len(pairs) - 1)
        pairs[i] = (pairs[i][0], choose(draw, NOT_YES_NO))
        refuse(case, repr(pairs[i][0]), "NaN", "Infinity")
    elif op == "not_object":
        refuse(case, "must be an object", "(got", "is not a JSON number")  # NaN, Infinity are among them
        return choose(draw, NOT_OBJECTS)
    elif op == "empty":
        pairs.clear()
        case.answered, case.positive = set(), set()
    elif op == "bad_sds":
        case.sds_score = choose(draw, [-1, -(10**20)])
        refuse(case, "SDS score")
    return None


@st.composite
def raw_cases(draw: st.DrawFn, command: str) -> Case:
    """Any JSON value, text or bytes as the file."""
    kind = choose(draw, ["json", "json", "text", "bytes"])
    if kind == "json":
        data = json.dumps(draw(json_any)).encode()
    elif kind == "text":
        data = draw(st.text(max_size=80) | st.text(string.printable, max_size=80)).encode("utf-8", "surrogatepass")
    else:
        data = draw(st.binary(max_size=80))
    mentions = [FILE, "must be an object", "screen answer", "nothing to screen", "profile field", "(got"]
    mentions.append("is not a JSON number")
    return Case(command, data, None, mentions)


def _screen(case: Case, path: Path) -> DependenceScreen:
    cutoff = None if case.sds_score is None else SDS_CUTOFF
    return screen_dependence(read_json(path, "screen answers"), case.sds_score, cutoff, NET)


def check_screen(case: Case, folder: Path) -> None:
    """Screen the case's answers; the outcome and the signs found must be the expected ones."""
    path = folder / FILE
    path.write_bytes(case.data)
    note(f"file {case.data[:500]!r}, SDS {case.sds_score}, expected {case.valid}, mentions {case.mentions}")
    result = accepted_or_refused(SURFACE, lambda: _screen(case, path), case.mentions)
    if isinstance(result, BenzotaperError):
        assert case.valid is not True, f"refused: {result}"
        assert isinstance(result, AssessmentError)
        return
    assert case.valid is not False, f"accepted (expected a refusal naming {case.mentions})"
    assert result.result in RESULTS
    json.dumps(result.to_dict(NET), allow_nan=False)
    if case.positive is not None and case.answered is not None:
        assert {s.id for s in result.positive} == case.positive
        assert set(result.negative) == case.answered - case.positive
        assert set(result.unanswered) == set(SIGN_KEYS) - case.answered
        assert result.result == _expected_result(len(case.positive), case.sds_score)


def _expected_result(positive: int, sds: int | None) -> str:
    """docs/screening.md: likely from `likely_min_signs` signs or an SDS at the cut-off, possible from fewer."""
    rule = NET.dependence
    if (sds is not None and sds >= SDS_CUTOFF) or positive >= rule.likely_min_signs.value:
        return "likely"
    return "possible" if positive >= rule.possible_min_signs.value else "unlikely"


@pytest.mark.slow
@FUZZ
@given(case=st.one_of(screen_cases(), screen_cases(), screen_cases(), raw_cases("screen")))
def test_screen_answers_are_screened_or_refused_naming_the_key(case: Case, folder: Path) -> None:
    check_screen(case, folder)


# ---------------------------------------------------------------- risk profiles

NUMBERS = ("age", "diazepam_mg", "years_of_use")
TOP_DOSE = K.policy.plausible_max_daily_diazepam_equivalent.value
INPATIENT_FLAGS = {f.trigger.values[0] for f in NET.factors if f.trigger.kind == "flag" and f.setting == "inpatient"}
RED_FINDINGS = ["suicidal ideation", "Seizure", "self-harm", "hearing voices", "Confused", "slow breathing",
                "fits\nagain"]  # fmt: skip
OTHER_FINDINGS = ["no seizures", "denies suicidal thoughts", "tinnitus", "anxiety", "", "ünïcødé ☃", "[/]",
                  "a" * 1000, "insomnia", "misfits"]  # fmt: skip
COUNTRIES_OK = ["GB", "gb", " uk ", "PL", "US", "DK", "el", "", "IE"]  # "" is no country; DK: EU, 112
COUNTRIES_BAD = [" ", "ß", "GBR", "1A", "Ü", "G B", "ÅÅ", "ＧＢ", "g"]  # fmt: skip
COUNTRIES_WITHOUT_LINES = ["JP", "BR", "ZZ"]  # refused only when an alert needs the crisis lines
REGIMENS_OK = ["diazepam 5 mg tds", "alprazolam 0.5 mg bd", "lorazepam 1 mg nocte", "clonazepam 0.5 mg bd"]
REGIMENS_ODD = ["diazepam 2 nan", "diazepam -1 nan", "diazepam 1e9 mg tds", "", "  ", "5 mg tds", "tea 1 cup",
                "diazepam 5 mg tds + zolpidem 10 mg nocte", "[/]", "diazepam 0 mg", "diazepam ½ tab"]  # fmt: skip
NOT_NUMBERS: list[Any] = [-1, -0.5, "40", True, False, [], {}, [40], Raw("NaN"), Raw("Infinity"), Raw("-Infinity"),
                          Raw("1e999"), Raw("9" * 400)]  # fmt: skip
NOT_FLAGS: list[Any] = ["yes", "true", 1, 0, 1.0, [], {}, "", Raw("NaN")]
NOT_LISTS: list[Any] = ["opioids", None, 1, {"opioids": True}, [1], [None], [["alcohol"]]]
RISK_OPS: st.SearchStrategy[list[str]] = st.lists(
    st.sampled_from(["number", "number", "flag", "co_used", "findings", "unknown", "both", "text_field",
                     "not_object", "substance", "too_much"]),
    max_size=3,
) | st.just([])  # fmt: skip


@st.composite
def risk_cases(draw: st.DrawFn) -> Case:
    """A valid risk profile, with zero to three mutations recorded with their outcome."""
    rng = random.Random(draw(SEEDS))  # one draw for the fields: a draw per field costs more than the assessment
    raw: dict[str, Any] = {f: rng.choice([True, False, None]) for f in FLAGS if rng.random() < 0.6}
    raw.update(_numbers(rng))
    if rng.random() < 0.5:
        raw["co_used"] = [rng.choice(SUBSTANCES) for _ in range(rng.randrange(4))]
    findings = [rng.choice(RED_FINDINGS + OTHER_FINDINGS * 2) for _ in range(rng.randrange(4))]
    if findings or rng.random() < 0.3:
        raw["findings"] = findings
    case = Case("risk", inpatient=any(raw.get(f) is True for f in INPATIENT_FLAGS))
    _country(rng, raw, case)
    if upto(draw, 24) == 0:  # a regimen's parse costs 9 ms: one profile in 25
        raw.pop("diazepam_mg", None)
        raw["regimen"] = choose(draw, REGIMENS_OK + REGIMENS_ODD)
        case.valid = case.valid if raw["regimen"] in REGIMENS_OK else None
        case.mentions.append("regimen")
    pairs = list(raw.items())
    doc: Any = None
    for op in draw(RISK_OPS):
        doc = _risk_mutation(draw, op, pairs, case) if doc is None else doc
    case.data = encoded(draw, dump(Obj(pairs) if doc is None else doc, choose(draw, [None, "  "])), case)
    return case


def _numbers(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rng.random() < 0.6:
        out["age"] = rng.choice([rng.randint(0, 110), round(rng.uniform(16, 100), 1), 0, 10**30, None])
    if rng.random() < 0.6:
        out["diazepam_mg"] = rng.choice([rng.randint(0, 100), round(rng.uniform(0, TOP_DOSE), 3), 0.0, TOP_DOSE])
    if rng.random() < 0.6:
        out["years_of_use"] = rng.choice([round(rng.uniform(0, 40), 2), 0, 1e300, None])
    return out


def _country(rng: random.Random, raw: dict[str, Any], case: Case) -> None:
    """A country: with crisis lines, an EU member (112), none; without lines or not a code at all."""
    pick = rng.random()
    if pick < 0.5:
        return
    if pick < 0.8:
        raw["country"] = rng.choice(COUNTRIES_OK)
    elif pick < 0.9:
        raw["country"] = rng.choice(COUNTRIES_WITHOUT_LINES)
        alerts = any(f in RED_FINDINGS for f in raw.get("findings", []))
        if alerts:  # the alert needs the country's crisis lines, and there are none stored
            refuse(case, "no verified crisis lines")
    else:
        raw["country"] = rng.choice(COUNTRIES_BAD)
        refuse(case, "is not an ISO 3166 alpha-2 code")


def _risk_mutation(draw: st.DrawFn, op: str, pairs: list[tuple[str, Any]], case: Case) -> Any | None:
    """One mutation of the profile's fields (in place); a document that replaces them all, or None."""
    if op == "number":
        name = choose(draw, NUMBERS)
        pairs.append((name, choose(draw, NOT_NUMBERS)))
        refuse(case, name, "given twice", "NaN", "Infinity", "1e999")
    elif op == "too_much":
        pairs.append(("diazepam_mg", TOP_DOSE * choose(draw, [1.01, 2, 1e6])))
        refuse(case, "diazepam_mg", "given twice")
    elif op == "flag":
        name = choose(draw, FLAGS)
        pairs.append((name, choose(draw, NOT_FLAGS)))
        refuse(case, name, "given twice", "NaN")
    elif op in ("co_used", "findings"):
        pairs.append((op, choose(draw, NOT_LISTS)))
        refuse(case, op)
    elif op == "substance":
        pairs.append(("co_used", [choose(draw, ["tea", "Opioids", "", "[/]", "opioids "])]))
        refuse(case, "co_used")
    elif op == "text_field":
        name = choose(draw, ["regimen", "country"])
        pairs.append((name, choose(draw, [5, [], {}, True])))
        refuse(case, name)
    elif op == "unknown":
        pairs.append((choose(draw, ["agee", "Age", "", "[/]", "dose", "seizures", "ü"]), True))
        refuse(case, "unknown profile field", "given twice")  # the same unknown key may be added twice
    elif op == "both":
        pairs += [("regimen", "diazepam 5 mg tds"), ("diazepam_mg", 15)]
        refuse(case, "not both", "given twice")
    elif op == "not_object":
        refuse(case, "must be an object", "is not a JSON number")
        return choose(draw, NOT_OBJECTS)
    return None


def _risk(path: Path, country: str | None = None) -> RiskAssessment:
    raw = read_json(path, "profile")
    if country is not None and isinstance(raw, dict):
        raw["country"] = country
    return assess_risk(RiskProfile.from_mapping(raw), K, NET)


def check_risk(case: Case, folder: Path) -> None:
    """Assess the case's profile; the outcome must be the expected one and the answer strict JSON."""
    path = folder / FILE
    path.write_bytes(case.data)
    note(f"file {case.data[:500]!r}, expected {case.valid}, mentions {case.mentions}")
    result = accepted_or_refused(SURFACE, lambda: _risk(path), case.mentions)
    if isinstance(result, BenzotaperError):
        assert case.valid is not True, f"refused: {result}"
        return
    assert case.valid is not False, f"accepted (expected a refusal naming {case.mentions})"
    assert result.setting in SETTING_RANK
    assert not case.inpatient or result.setting == "inpatient"
    json.dumps(result.to_dict(NET), allow_nan=False)


@pytest.mark.slow
@FUZZ
@given(case=st.one_of(risk_cases(), risk_cases(), risk_cases(), raw_cases("risk")))
def test_risk_profiles_are_assessed_or_refused_naming_the_field(case: Case, folder: Path) -> None:
    check_risk(case, folder)


# ---------------------------------------------------------------- the command line, on a sample


@pytest.fixture(scope="module")
def known_knowledge() -> Iterator[None]:
    """`risk` loads the knowledge base afresh each call (0.5 s); the loaded one is the same data."""
    with mock.patch("benzotaper.screen_cli.load_knowledge", return_value=K):
        yield


def _library_refusal(case: Case, path: Path, country: str | None) -> str | None:
    """What the command should print after 'error: ', from the library; None when it accepts the file."""
    try:
        raw = read_json(path, "screen answers" if case.command == "screen" else "profile")
        if not isinstance(raw, dict):
            what = "sign: yes/no" if case.command == "screen" else "profile fields"
            return f"{FILE}: must be a JSON object of {what}"
        _screen(case, path) if case.command == "screen" else _risk(path, country)
    except BenzotaperError as exc:
        return str(exc)
    return None


@pytest.mark.slow
@settings(FUZZ, max_examples=max(EXAMPLES // 50, 10))
@given(
    case=st.one_of(screen_cases(), risk_cases(), raw_cases("screen"), raw_cases("risk")),
    country=st.none() | st.sampled_from(COUNTRIES_OK + COUNTRIES_BAD + COUNTRIES_WITHOUT_LINES),
    as_json=st.booleans(),
)
def test_the_command_line_exits_0_or_2_with_the_refusal_on_one_line(
    case: Case, country: str | None, as_json: bool, folder: Path, known_knowledge: None
) -> None:
    path = folder / FILE
    path.write_bytes(case.data)
    if case.command == "screen":
        sds = [] if case.sds_score is None or case.sds_score < 0 else ["--sds-score", str(case.sds_score)]
        args = ["screen", "--answers", str(path), *sds]
        case.sds_score = None if not sds else case.sds_score
        country = None
    else:
        args = ["risk", str(path), *([] if country is None else ["--country", country])]
    note(f"file {case.data[:500]!r}, args {args[2:]}")
    refusal = _library_refusal(case, path, country)
    code, stdout, stderr = cli(SURFACE, [*args, *(["--json"] if as_json else [])])
    assert (code == 2) == (refusal is not None), stderr
    if refusal is not None:  # the library's message, word for word: no markup or emoji codes read into it
        assert stderr == f"error: {refusal}\n"
    elif as_json:
        json.loads(stdout)


# ---------------------------------------------------------------- regressions found by the fuzz
