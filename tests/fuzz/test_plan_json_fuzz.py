"""Fuzz: plan JSON given to `benzotaper fhir export --plan` (issue 19 §1, surface "plan JSON").

Inputs are two valid plan.json files, the output of `benzotaper plan "diazepam 10 mg bd" --json` made here and
docs/examples/fhir/plan.json (alprazolam switched to diazepam), whole and cut to four steps, with one to three
mutations each (keys deleted, values of the wrong type, negative, NaN, infinite or huge numbers, odd dates and
times, steps swapped or repeated, unknown drugs), plus raw text and bytes. The property (tests/fuzz/contract.py):
the plan is exported, or refused with PlanError or FhirError naming the field; never another exception. An
exported plan is strict JSON and imports back as the same plan.

`plan_from_json` and the exporter's taper-plan resources take about a millisecond; validating the bundle with
fhir.resources takes 5 to 40 ms more. So the 10,000 inputs of CI go through `plan_from_json` and `plan_entries`
(2 ms each with hypothesis); the whole export with validation and the import back run on a fortieth of
FUZZ_EXAMPLES, the command line (its knowledge base loaded once) on a two-hundredth.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

pytest.importorskip("fhir.resources.R4B")

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import benzotaper.cli  # noqa: F401 - registers every command on the app
from benzotaper.clitools import app
from benzotaper.errors import BenzotaperError, FhirError, PlanError
from benzotaper.fhir import PatientExport, export_patient_bundle, import_bundle, plan_from_json
from benzotaper.fhir.context import ExportContext
from benzotaper.fhir.taper_plan import plan_entries
from benzotaper.taper.plan import Plan
from tests.fuzz.contract import EXAMPLES, FUZZ, accepted_or_refused, cli
from tests.fuzz.test_fhir_fuzz import CODER, JSON_TEXTS, NUMBERS, ODD_DATES, STRINGS, Base, K, generic, mutated

SURFACE = "plan JSON"
ROOT = Path(__file__).parent.parent.parent
MENTIONS = ("plan.json", "plan step", "entry")  # the JSON field, the plan step, or the FHIR resource and field


def _cli_plan() -> Any:
    """What `benzotaper plan "diazepam 10 mg bd" --json` prints (made once)."""
    result = CliRunner().invoke(app, ["plan", "diazepam 10 mg bd", "--json", "--start", "2026-03-02"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _cut(plan: Any) -> Any:
    """The first three steps and the drug-free last one (no overlap; the gap between is allowed)."""
    return {**plan, "steps": [*plan["steps"][:3], plan["steps"][-1]]}


PLAN_KEYS = frozenset(
    {
        "mg",
        "strength",
        "count",
        "ml",
        "days",
        "index",
        "diazepam_equivalent_mg",
        "score",
        "substitution_tolerance",
        "start",
        "end",
        "end_date",
        "date",
        "time",
        "drug",
        "target_drug",
        "phase",
        "kind",
        "strategy",
        "unit",
        "form",
        "parameters",
        "steps",
        "doses",
    }
)
DRUGS = ["diazepam", "alprazolam", "Valium", "diazepan", "morphine", "", " ", "DIAZEPAM", "zolpidem", "x" * 500]
TIMES = ["08:00", "8:00", "24:00", "23:59:59", "08:00:00.5", "08", "0800", "noon", "", "08:00+01:00"]
PLAN_NUMBERS = {
    "mg",
    "strength",
    "count",
    "ml",
    "diazepam_equivalent_mg",
    "score",
    "substitution_tolerance",
    "days",
    "index",
}


@functools.cache
def plan_values(key: str | int) -> st.SearchStrategy[Any]:
    """Values worth writing at a plan.json key."""
    targeted: list[Any] = []
    if key in PLAN_NUMBERS:
        targeted = [*NUMBERS, "5", "1e400", 10**400, 0.0001, -0.5]
    elif key in ("start", "end", "end_date", "date"):
        targeted = [*ODD_DATES, "2026-03-02", "2025-03-02", "2030-01-01", "20260302", "2026-W10-1"]
    elif key == "time":
        targeted = TIMES
    elif key in ("drug", "target_drug"):
        targeted = DRUGS
    elif key == "parameters":
        targeted = [{}, [], None, {"stop_mg_diazepam_equivalent": float("nan")}, JSON_TEXTS[0]]
    elif key in ("phase", "kind", "strategy", "unit", "form"):
        targeted = [*STRINGS[:12], "hold", "reduction", "mg/mL", "tablet", "oral_solution"]
    return st.sampled_from(targeted) | generic if targeted else generic


EXAMPLE_PLAN = json.loads((ROOT / "docs" / "examples" / "fhir" / "plan.json").read_text(encoding="utf-8"))
FULL_BASES = [Base.of("diazepam plan", _cli_plan(), PLAN_KEYS), Base.of("alprazolam plan", EXAMPLE_PLAN, PLAN_KEYS)]
CUT_BASES = [Base.of(f"{b.name}, 4 steps", _cut(json.loads(b.text)), PLAN_KEYS) for b in FULL_BASES]
plans = mutated([*FULL_BASES, *CUT_BASES, *CUT_BASES], values=plan_values)  # cut plans twice as often: faster
short_plans = mutated(CUT_BASES, values=plan_values)


def _entries(doc: Any) -> Callable[[], Any]:
    def call() -> Any:
        return plan_entries(plan_from_json(doc), ExportContext(CODER, "p-1"), "draft", "taper")

    return call


def _export(doc: Any) -> Callable[[], tuple[Plan, Any]]:
    def call() -> tuple[Plan, Any]:
        plan = plan_from_json(doc)
        record = PatientExport("p-1", plan=plan)
        return plan, export_patient_bundle(K, record, include_questionnaires=False, coder=CODER)

    return call


@pytest.mark.slow
@FUZZ
@given(case=plans)
def test_plan_json_is_read_and_made_into_resources_or_refused(case: tuple[str, Any]) -> None:
    _, doc = case
    accepted_or_refused(SURFACE, _entries(doc), MENTIONS)


@pytest.mark.slow
@settings(FUZZ, max_examples=max(EXAMPLES // 40, 10))
@given(case=short_plans)
def test_exported_plans_are_strict_json_and_import_back_the_same(case: tuple[str, Any]) -> None:
    _, doc = case
    outcome = accepted_or_refused(SURFACE, _export(doc), MENTIONS)
    if isinstance(outcome, BenzotaperError):
        return
    plan, bundle = outcome
    back = import_bundle(json.loads(json.dumps(bundle, allow_nan=False)), K, coder=CODER)
    (again,) = back.patients[0].plans
    assert again == plan, _differences(again, plan) or back.unmapped


def _differences(a: Any, b: Any, path: str = "plan") -> list[str]:
    """Where two plans (dataclasses, tuples, dicts) differ, as paths with both values."""
    if hasattr(a, "__dataclass_fields__") and type(a) is type(b):
        return [d for f in a.__dataclass_fields__ for d in _differences(getattr(a, f), getattr(b, f), f"{path}.{f}")]
    if isinstance(a, tuple | list) and isinstance(b, tuple | list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")]
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return [d for k in a for d in _differences(a[k], b[k], f"{path}[{k!r}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


RAW = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(CUT_BASES).flatmap(
        lambda b: st.integers(0, len(b.text)).map(lambda n: b.text[:n].encode())  # truncated
    ),
    st.sampled_from(CUT_BASES).map(lambda b: b"\xef\xbb\xbf" + b.text.replace("\n", "\r\n").encode()),  # BOM, CRLF
)


@pytest.mark.slow
@settings(FUZZ, max_examples=max(EXAMPLES // 200, 10))
@given(case=short_plans | RAW.map(lambda b: ("raw", b)))
def test_the_command_line_exits_0_or_2_with_one_error_line(
    case: tuple[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, doc = case
    path = tmp_path_factory.getbasetemp() / "plan.json"
    path.write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    with mock.patch("benzotaper.knowledge.load_knowledge", return_value=K):  # 0.6 s a load: the CLI reads it each run
        code, stdout, _ = cli(SURFACE, ["fhir", "export", "--plan", str(path)])
    if code == 0:
        assert json.loads(stdout)["resourceType"] == "Bundle"


# ---------------------------------------------------------------- regressions found by the fuzz


def _plan() -> Any:
    return json.loads(CUT_BASES[0].text)  # diazepam 10 mg bd: 8 mg at 08:00 + 10 mg at 20:00 in step 1


def _dose(plan: Any) -> Any:
    return plan["steps"][0]["doses"][0]


def _event(plan: Any, **fields: Any) -> None:
    plan["events"] = [{"date": "2026-03-09", "kind": "hold", **fields}]


REGRESSIONS = [
    pytest.param(
        lambda p: p["parameters"].update(stop_mg_diazepam_equivalent=float("nan")),
        PlanError,
        r"plan\.json: parameters\.stop_mg_diazepam_equivalent: expected a finite number \(got nan\)",
        id="accepted: NaN in a parameter (exported, it imported back unequal)",
    ),
    # crashes of the code before the fuzz (the error it raised)
    pytest.param(
        lambda p: p["steps"].insert(0, 5),
        PlanError,
        r"plan\.json: steps\[0\]: expected an object \(got 5\)",
        id="AttributeError: a step that is not an object",
    ),
    pytest.param(
        lambda p: p["steps"][0].update(index=float("inf")),
        PlanError,
        r"steps\[0\]\.index: expected a whole number",
        id="OverflowError: index inf",
    ),
    pytest.param(
        lambda p: _dose(p)["portions"][0].update(count=float("nan")),
        PlanError,
        r"\.count: expected a finite number",
        id="ValueError: count NaN (in the tablet label)",
    ),
    pytest.param(
        lambda p: _event(p, days="x"),
        PlanError,
        r"events\[0\]\.days: expected a whole number \(got 'x'\)",
        id="ValueError: event days 'x'",
    ),
    pytest.param(
        lambda p: p["steps"][0].update(days=10**30),
        PlanError,
        r"steps\[0\]\.days: 1000000000000000000000000000000 ",
        id="OverflowError: days past the calendar",
    ),
    pytest.param(
        lambda p: _dose(p).update(drug="morphine"),
        FhirError,
        r"plan step 1, dose 1: drug 'morphine' is not a drug id",
        id="UnknownDrugError naming no field",
    ),
    # accepted before, and exported as FHIR
    pytest.param(
        lambda p: _dose(p).update(mg=-5),
        PlanError,
        r"doses\[0\]\.mg: expected a number more than 0 \(got -5\)",
        id="negative dose",
    ),
    pytest.param(
        lambda p: _dose(p).update(mg="8"), PlanError, r"doses\[0\]\.mg: expected a number \(got '8'\)", id="mg as text"
    ),
    pytest.param(
        lambda p: _dose(p).update(mg=80),
        PlanError,
        r"doses\[0\]\.mg: 80 mg, but its portions make 8 mg",
        id="dose and its tablets disagree",
    ),
    pytest.param(
        lambda p: p["steps"].reverse(),
        PlanError,
        r"steps\[1\]\.start: \d{4}-\d\d-\d\d is not after the step before it",
        id="steps out of date order",
    ),
    pytest.param(
        lambda p: p["steps"][0].update(end="2026-03-01"),
        PlanError,
        r"steps\[0\]\.end: 2026-03-01 does not agree",
        id="end against start and days",
    ),
    pytest.param(
        lambda p: p["phases"][0].update(end="2026-03-01"),
        PlanError,
        r"phases\[0\]\.end: 2026-03-01 is before",
        id="phase ends before it starts",
    ),
    pytest.param(
        lambda p: _dose(p).update(time="24:00"),
        PlanError,
        r"doses\[0\]\.time: expected a time of day HH:MM",
        id="time 24:00",
    ),
]


@pytest.mark.parametrize(("mutate", "error", "message"), REGRESSIONS)
def test_regressions(mutate: Callable[[Any], Any], error: type[Exception], message: str) -> None:
    plan = _plan()
    mutate(plan)
    with pytest.raises(error, match=message):
        plan_entries(plan_from_json(plan), ExportContext(CODER, "p-1"), "draft", "taper")


def test_the_valid_plans_are_exported_and_import_back() -> None:  # the bases themselves: the fuzz starts from these
    for base in FULL_BASES + CUT_BASES:
        plan, bundle = _export(json.loads(base.text))()
        assert import_bundle(bundle, K, coder=CODER).patients[0].plans == (plan,)


def test_the_fuzz_left_its_base_documents_as_they_were() -> None:  # mutations copy what they change (run last)
    assert all(json.loads(b.text) == b.doc for b in [*FULL_BASES, *CUT_BASES])
