"""Fuzz: FHIR R4 bundles given to `benzotaper fhir import` (issue 19 §1, surface "FHIR bundle").

Inputs are the bundles of tests/fixtures/fhir and one exported taper plan, with one to three mutations each
(elements deleted, values of the wrong type, huge, negative, NaN or infinite numbers, odd dates, units that are not
mg or ng/mL, references to resources that are not there, non-object entries, junk extensions, long arrays), plus
raw text and bytes. The property (tests/fuzz/contract.py): each bundle is imported, or refused with FhirError (a
BenzotaperError) naming the bundle entry; never another exception.

Validation with fhir.resources costs about 40 ms for a whole fixture bundle, so the 10,000 inputs of CI go through
`import_bundle` on small bundles (one resource of a fixture with its Patient, cut to the elements the importer reads,
and the Medications; a taper plan's CarePlan with its steps; each full Patient alone), about 3 ms each. Whole
fixture bundles, raw text and bytes through the CLI's file reader, and the command line itself (its knowledge base
loaded once) run on a hundredth, a twentieth and a two-hundredth of FUZZ_EXAMPLES.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

pytest.importorskip("fhir.resources.R4B")

from hypothesis import given, settings
from hypothesis import strategies as st

from benzotaper.errors import FhirError
from benzotaper.fhir import ImportResult, import_bundle
from benzotaper.fhir.codes import Coder
from benzotaper.fhir.exporter import PatientExport, export_patient_bundle
from benzotaper.fhir.plan_json import plan_from_json
from benzotaper.fhir_cli import read_json
from benzotaper.knowledge import load_knowledge
from benzotaper.knowledge.fhir_codes import load_fhir_codes
from tests.fuzz.contract import EXAMPLES, FUZZ, accepted_or_refused, cli

SURFACE = "FHIR bundle"
ROOT = Path(__file__).parent.parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "fhir"
BUNDLES = (
    "synthea_alprazolam.json",
    "ehr_dosage_forms_levels_scales.json",
    "malformed_dosage_date.json",
    "no_benzodiazepine.json",
)
K = load_knowledge()  # module level: hypothesis would print a fixture's huge repr on failure
CODER = Coder(K)
MENTIONS = ("entry", "bundle")  # every refusal names the bundle entry (or the bundle itself)

JsonPath = tuple[str | int, ...]

# ---------------------------------------------------------------- values a mutation writes

LOCAL_EXTENSIONS = [
    load_fhir_codes().local("StructureDefinition", n)
    for n in ("taper-plan", "taper-step", "dose-portion", "dose-position", "lloq", "last-dose", "reported-value")
]
# fmt: off
ODD_DATES = ["", "2026", "2026-02", "2026-02-30", "2026-13-01", "0000-01-01", "9999-12-31", "2026-03-01T25:61:00",
             "2026-03-01T08:00:00+25:00", "2026-03-01T08:00", "2026-03-01 08:00:00", "01/03/2026", "yesterday",
             "2026-03-01T08:00:00.123456789Z", "1900-01-01", "2100-01-01", "٢٠٢٦-٠٣-٠١"]
UNITS = ["mg", "MG", "mg ", "ng/mL", "ng/ml", "ug/L", "µg/L", "mcg/L", "ug", "µg", "mcg", "g", "kg", "[lb_av]",
         "mmol/L", "nmol/L", "umol/L", "pmol/mL", "mg/dL", "ng/dL", "%", "{tbl}", "tablet", "mL", "L", "10*3/uL",
         "mg/d", "mg/(24.h)", "1", "", " ", "m", "s", "h", "d", "wk", "a", "mo", "/d", "[IU]"]
REFERENCES = ["Patient/missing", "Patient/", "Patient", "#", "#nope", "urn:uuid:00000000-0000-0000-0000-000000000000",
              "Medication/missing", "Practitioner/1", "http://elsewhere.example/Patient/1", "Patient/a/_history/2", ""]
TYPES = ["Bundle", "Patient", "Medication", "MedicationRequest", "MedicationStatement", "Observation",
         "QuestionnaireResponse", "CarePlan", "Encounter", "Questionnaire", "NotAResource", "medicationrequest", "",
         "DomainResource", "Resource"]
STATUSES = ["active", "completed", "stopped", "on-hold", "draft", "unknown", "entered-in-error", "cancelled",
            "not-taken", "final", "amended", "preliminary", "registered", "in-progress", "bogus"]
STRINGS = ["", " ", "\t", "NaN", "-1", "1e309", "0x10", "10 mg", "½", "ünïcødé ☃ 𝄞", "\x00", "\u202e", "[/]",
           "[bold]x[/bold]", "line\nbreak", "a" * 3000, "diazepam", "alprazolam 0.5 mg", "null", "{}", "[]"]
NUMBERS: list[Any] = [0, -1, 1, -0.0, 0.5, 1e-300, 1e308, -1e308, 10**30, -(10**30), 2**63, float("nan"),
                      float("inf"), float("-inf"), True, False, 3.14159, 7.5, 24, 1000000]
DATE_KEYS = frozenset({"start", "end", "authoredOn", "effectiveDateTime", "effectiveInstant", "birthDate",
                       "authored", "valueDateTime", "dateAsserted", "issued", "date"})
NUMBER_KEYS = frozenset({"value", "valueDecimal", "valueInteger", "frequency", "period", "sequence", "count",
                         "duration", "frequencyMax", "periodMax"})
JSON_TEXTS = ["{", "[]", "null", "1", '"x"', '{"date": 1}', '{"date": "2026-02-30", "kind": "hold"}',
              '{"date": "2026-03-01", "kind": "hold", "days": "x", "instrument": "", "score": 0, "note": ""}']
HOT_KEYS = DATE_KEYS | NUMBER_KEYS | frozenset({
    "code", "unit", "periodUnit", "reference", "resourceType", "status", "url", "valueString", "valueCode",
    "timeOfDay", "when", "text", "linkId", "questionnaire", "comparator", "fullUrl", "id"})
# fmt: on

json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_any = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
generic = st.sampled_from(STRINGS) | st.sampled_from(NUMBERS) | json_any


@functools.cache  # one strategy per key: building strategies afresh for every draw costs more than the import
def value_for(key: str | int) -> st.SearchStrategy[Any]:
    """Values worth writing at `key`: targeted ones for dates, units, references, types and numbers, or any JSON."""
    targeted: list[Any] = []
    if key in DATE_KEYS:
        targeted = ODD_DATES
    elif key in ("code", "unit", "periodUnit"):
        targeted = UNITS
    elif key == "reference":
        targeted = REFERENCES
    elif key == "resourceType":
        targeted = TYPES
    elif key == "status":
        targeted = STATUSES
    elif key in NUMBER_KEYS:
        targeted = NUMBERS
    elif key == "url":
        targeted = LOCAL_EXTENSIONS
    elif key in ("valueString", "text"):
        targeted = STRINGS + JSON_TEXTS
    elif key in ("timeOfDay", "valueCode"):
        targeted = ["08:00:00", "24:00:00", "23:59:60", "8:00", "", "x", "mg", "tablet", "diazepam", "hold"]
    return st.sampled_from(targeted) | generic if targeted else generic


# ---------------------------------------------------------------- mutations of a JSON document


@dataclass(frozen=True)
class Base:
    """A valid document to mutate: its name, its JSON text, the document (never changed) and where to mutate it."""

    name: str
    text: str
    doc: Any  # mutations copy the containers on their path and share the rest: cheaper than parsing anew
    where: st.SearchStrategy[JsonPath]  # a path, half the time one to dates, numbers, units, codes, references

    @staticmethod
    def of(name: str, doc: Any, hot_keys: frozenset[str] = HOT_KEYS) -> Base:
        """A base from a parsed document; `hot_keys` name the elements mutated most often."""
        paths = all_paths(doc)
        hot = [p for p in paths if isinstance(p[-1], str) and p[-1] in hot_keys] or paths
        text = json.dumps(doc)
        return Base(name, text, json.loads(text), st.sampled_from(hot) | st.sampled_from(paths))


def all_paths(doc: Any, prefix: JsonPath = ()) -> list[JsonPath]:
    """The path of every element below the root, depth-first."""
    children: Sequence[tuple[str | int, Any]] = ()
    if isinstance(doc, dict):
        children = list(doc.items())
    elif isinstance(doc, list):
        children = list(enumerate(doc))
    out: list[JsonPath] = []
    for key, value in children:
        out.append((*prefix, key))
        out += all_paths(value, (*prefix, key))
    return out


def _copy(node: Any) -> Any:
    return dict(node) if isinstance(node, dict) else list(node) if isinstance(node, list) else node


def parent_of(doc: Any, path: JsonPath) -> tuple[Any, str | int] | None:
    """The container holding `path` and the key in it, or None when an earlier mutation removed it.

    Every container on the way is replaced by a copy, so the base document the mutated one shares the rest with
    is never changed.
    """
    node = doc
    for key in path[:-1]:
        try:
            node[key] = _copy(node[key])
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    key = path[-1]
    if isinstance(node, dict) and key in node:
        return node, key
    if isinstance(node, list) and isinstance(key, int) and key < len(node):
        return node, key
    return None


def _retype(old: Any) -> Any:
    if isinstance(old, list):
        return old[0] if old else {}
    if isinstance(old, dict):
        return next(iter(old.values()), [])
    if isinstance(old, bool) or old is None:
        return str(old).lower()
    return str(old) if isinstance(old, int | float) else [old]


def _renumber(old: Any, factor: float) -> Any:
    if isinstance(old, bool) or not isinstance(old, int | float):
        return old
    try:
        return old * factor
    except OverflowError:  # an int past a float's range (a mutated 10**400): its negation still tests the sign
        return -old


Values = Callable[[str | int], st.SearchStrategy[Any]]
EXT_VALUES = ("valueString", "valueDecimal", "valueInteger", "valueCode", "valueQuantity", "valueDateTime", "extension")
OPS = st.sampled_from(("delete", "replace", "replace", "replace", "retype", "wrap", "renumber", "renumber", "repeat",
                       "swap", "extra", "extension"))  # fmt: skip
FACTORS = st.sampled_from((-1.0, 0.0, 1e-9, 1e6, 1e300, float("nan"), float("inf")))
REPEATS = st.integers(1, 200)
NAMES = st.text(min_size=1, max_size=12)
EXT_URLS, EXT_KINDS = st.sampled_from(LOCAL_EXTENSIONS), st.sampled_from(EXT_VALUES)


@functools.cache
def index_below(n: int) -> st.SearchStrategy[int]:
    """An index into a list of `n`."""
    return st.integers(0, n - 1)


def mutate(draw: st.DrawFn, doc: Any, path: JsonPath, values: Values = value_for) -> None:
    """Apply one drawn mutation at `path` (nothing when the path is gone); `values` gives what a key may hold."""
    found = parent_of(doc, path)
    if found is None:
        return
    parent, key = found
    old = parent[key] = _copy(parent[key])
    op = draw(OPS)
    if op == "delete":
        del parent[key]
    elif op == "replace":
        parent[key] = draw(values(key))
    elif op == "retype":
        parent[key] = _retype(old)
    elif op == "wrap":
        parent[key] = [old]
    elif op == "renumber":
        parent[key] = _renumber(old, draw(FACTORS))
    elif op == "repeat" and isinstance(parent, list) and isinstance(key, int):
        parent[key:key] = [json.loads(json.dumps(old))] * draw(REPEATS)
    elif op == "swap" and isinstance(parent, list) and isinstance(key, int):
        other = draw(index_below(len(parent)))
        parent[key], parent[other] = parent[other], old
    elif op == "extra" and isinstance(old, dict):
        old[draw(NAMES)] = draw(generic)
    elif op == "extension" and isinstance(old, dict):
        junk = {"url": draw(EXT_URLS), draw(EXT_KINDS): draw(generic)}
        present = old.get("extension", [])
        old["extension"] = [*present, junk] if isinstance(present, list) else present


def mutated(bases: Sequence[Base], most: int = 3, values: Values = value_for) -> st.SearchStrategy[tuple[str, Any]]:
    """(base name, document) with 1 to `most` mutations."""
    pick, counts = st.sampled_from(bases), st.integers(1, most)

    @st.composite
    def build(draw: st.DrawFn) -> tuple[str, Any]:
        base = draw(pick)
        doc = _copy(base.doc)
        for _ in range(draw(counts)):
            mutate(draw, doc, draw(base.where), values)
        return base.name, doc

    return build()


# ---------------------------------------------------------------- the valid bundles mutated


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _plan_bundle() -> Any:
    """A short exported taper plan (CarePlan + step MedicationRequests), without the Questionnaires."""
    plan = json.loads((ROOT / "docs" / "examples" / "fhir" / "plan.json").read_text(encoding="utf-8"))
    plan["steps"] = [*plan["steps"][:3], plan["steps"][-1]]
    record = PatientExport("p-1", plan=plan_from_json(plan))
    return export_patient_bundle(K, record, include_questionnaires=False, coder=CODER)


PATIENT_KEYS = ("resourceType", "id", "gender", "birthDate", "name", "address")


def _lean(entry: Any) -> Any:
    """A Patient entry with only what the importer reads: its full form costs more to validate than the rest."""
    if entry["resource"]["resourceType"] != "Patient":
        return entry
    return {**entry, "resource": {k: v for k, v in entry["resource"].items() if k in PATIENT_KEYS}}


def small_bundles(name: str, bundle: Any) -> list[Base]:
    """Each resource alone with the (lean) Patients and the Medications, a CarePlan with its steps, each Patient."""
    entries = bundle["entry"]
    kinds = [e["resource"]["resourceType"] for e in entries]
    keep = [_lean(e) for e, k in zip(entries, kinds, strict=True) if k in ("Patient", "Medication")]
    plan = [e for e, k in zip(entries, kinds, strict=True) if k in ("CarePlan", "MedicationRequest")]
    steps = [i for i, e in enumerate(entries) if "groupIdentifier" in e["resource"]][1:]  # one step alone is enough
    out = [
        Base.of(f"{name} entry {i}", {**bundle, "entry": [*keep, e]})
        for i, (e, k) in enumerate(zip(entries, kinds, strict=True))
        if k not in ("Patient", "Medication") and i not in steps
    ]
    out += [Base.of(f"{name} patient {i}", {**bundle, "entry": [e]})
            for i, (e, k) in enumerate(zip(entries, kinds, strict=True)) if k == "Patient"]  # fmt: skip
    if any(k == "CarePlan" for k in kinds):
        out.append(Base.of(f"{name} plan", {**bundle, "entry": [*keep, *plan]}))
    return out


WHOLE = [Base.of(name, _load(name)) for name in BUNDLES] + [Base.of("exported plan", _plan_bundle())]
SMALL = [b for name in BUNDLES for b in small_bundles(name, _load(name))] + small_bundles("exported", _plan_bundle())


# ---------------------------------------------------------------- the property


def _import(doc: Any) -> Callable[[], ImportResult]:
    return lambda: import_bundle(doc, K, coder=CODER)


def check_accepted(outcome: object) -> None:
    """An import gives strict JSON (no NaN or infinity) and a one-line reason for every record not mapped."""
    if not isinstance(outcome, ImportResult):
        return
    payload = outcome.to_dict()
    json.dumps(payload, allow_nan=False, default=lambda v: v.isoformat() if isinstance(v, date) else str(v))
    for u in payload["unmapped"]:
        assert u["reason"].strip() and "\n" not in u["reason"], u
    for p in payload["patients"]:
        for m in p["medications"]:
            assert all(r["daily_mg"] > 0 or r["prn_mg"] for r in m["regimens"]), m
        assert all(math.isfinite(s["value_ng_ml"] or 0) and (s["value_ng_ml"] or 0) >= 0 for s in p["levels"]), p


@pytest.mark.slow
@FUZZ
@given(case=mutated(SMALL))
def test_small_bundles_are_imported_or_refused_with_the_entry_named(case: tuple[str, Any]) -> None:
    _, doc = case
    check_accepted(accepted_or_refused(SURFACE, _import(doc), MENTIONS))


@pytest.mark.slow
@settings(FUZZ, max_examples=max(EXAMPLES // 100, 10))
@given(case=mutated(WHOLE))
def test_whole_bundles_are_imported_or_refused_with_the_entry_named(case: tuple[str, Any]) -> None:
    _, doc = case
    check_accepted(accepted_or_refused(SURFACE, _import(doc), MENTIONS))


def _raw_variants(text: str) -> st.SearchStrategy[bytes]:
    data = text.encode("utf-8")
    return st.one_of(
        st.integers(0, len(data)).map(lambda n: data[:n]),  # truncated
        st.just(b"\xef\xbb\xbf" + data),  # BOM
        st.just(data.replace(b"\n", b"\r\n")),  # CRLF
        st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)).map(
            lambda p: data[: p[0]] + bytes([p[1]]) + data[p[0] + 1 :]
        ),  # one byte changed
        st.just(text.encode("utf-16")),
        st.just(text.encode("latin-1", errors="replace")),
    )


RAW = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.sampled_from(
        [
            "",
            "null",
            "[]",
            "{}",
            '{"resourceType": "Bundle"}',
            '{"resourceType": "Bundle", "entry": {}}',
            "[" * 100_000,
            '{"a":' * 50_000,
            "NaN",
            "1e999",
        ]
    ).map(str.encode),
    st.sampled_from(SMALL).flatmap(lambda b: _raw_variants(b.text)),
)


@pytest.mark.slow
@settings(FUZZ, max_examples=max(EXAMPLES // 20, 10))
@given(data=RAW)
def test_raw_files_are_imported_or_refused(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.getbasetemp() / "bundle.json"
    path.write_bytes(data)
    outcome = accepted_or_refused(
        SURFACE, lambda: import_bundle(read_json(path, "bundle"), K, coder=CODER), (*MENTIONS, "bundle.json")
    )
    check_accepted(outcome)


@pytest.mark.slow
@settings(FUZZ, max_examples=max(EXAMPLES // 200, 10))
@given(case=mutated(SMALL) | RAW.map(lambda b: ("raw", b)), as_json=st.booleans())
def test_the_command_line_exits_0_or_2_with_one_error_line(
    case: tuple[str, Any], as_json: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, doc = case
    path = tmp_path_factory.getbasetemp() / "cli_bundle.json"
    path.write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    with mock.patch("benzotaper.knowledge.load_knowledge", return_value=K):  # 0.6 s a load: the CLI reads it each run
        code, stdout, _ = cli(SURFACE, ["fhir", "import", str(path), *(["--json"] if as_json else [])])
    if code == 0 and as_json:
        json.loads(stdout)


# ---------------------------------------------------------------- regressions found by the fuzz
# Each was found by this file's fuzz (or, marked "by reading", in the code around a failure it found).


def small(name: str) -> Any:
    """A fresh copy of one of the small bundles; its last entry is the resource of interest."""
    return json.loads(next(b.text for b in SMALL if b.name == name))


EHR_REQUEST = "ehr_dosage_forms_levels_scales.json entry 1"  # diazepam 1 mg/mL solution, 5 mL at 08:00 and 20:00
SYNTHEA_REQUEST = "synthea_alprazolam.json entry 4"  # alprazolam with dispenseRequest.expectedSupplyDuration


def last(bundle: Any) -> Any:
    return bundle["entry"][-1]["resource"]


def refused(bundle: Any, message: str) -> None:
    with pytest.raises(FhirError, match=message) as caught:
        import_bundle(bundle, K, coder=CODER)
    assert "\n" not in str(caught.value)


def unmapped_reason(bundle: Any) -> str:
    result = import_bundle(bundle, K, coder=CODER)
    assert len(result.unmapped) == 1, result.unmapped
    return result.unmapped[0].reason


def test_a_full_url_that_is_not_text_is_refused() -> None:  # was TypeError: unhashable type: 'list'
    bundle = small(EHR_REQUEST)
    bundle["entry"][1]["fullUrl"] = [bundle["entry"][1]["fullUrl"]]
    refused(bundle, r"bundle entry\[1\]\.fullUrl: expected a URI string \(got \[")


def test_a_patient_without_id_is_found_by_its_full_url() -> None:  # was KeyError on the fullUrl
    bundle = small("exported plan")
    del bundle["entry"][0]["resource"]["id"]
    result = import_bundle(bundle, K, coder=CODER)
    assert [p.patient.id for p in result.patients] == [bundle["entry"][0]["fullUrl"]]
    assert len(result.patients[0].plans) == 1


def test_elements_given_as_json_text_are_read_as_the_models_read_them() -> None:
    # fhir.resources takes '{}' for a CodeableConcept: the reader got a str (AttributeError: no .get)
    bundle = small("ehr_dosage_forms_levels_scales.json entry 7")
    last(bundle)["category"] = [json.dumps(last(bundle)["category"][0])]
    last(bundle)["valueQuantity"]["value"] = "350"
    [patient] = import_bundle(bundle, K, coder=CODER).patients
    assert [s.value for s in patient.samples] == [350.0]


def test_a_validation_message_is_one_line_and_says_blank_in_words() -> None:  # pydantic's pattern held \r\n\t
    bundle = small(EHR_REQUEST)
    bundle["entry"][0]["resource"]["name"][0]["text"] = ""
    refused(bundle, r"Patient/eq81JpV0lvAD0EzYS1bT\.2A3 \(entry 0\): name\[0\]\.text: must not be empty")


def test_a_contained_resource_of_no_fhir_type_is_refused() -> None:  # was KeyError('R4. Type') inside fhir.resources
    bundle = small("ehr_dosage_forms_levels_scales.json entry 6")
    last(bundle)["contained"][0]["resourceType"] = " "
    refused(bundle, r"\(entry 1\): contained\[0\]\.resourceType: expected a FHIR R4 resource type \(got ' '\)")


def test_a_supply_past_the_calendar_is_listed_not_mapped() -> None:  # was OverflowError in timedelta
    bundle = small(SYNTHEA_REQUEST)
    last(bundle)["dispenseRequest"]["expectedSupplyDuration"]["value"] = 1e300
    assert "expectedSupplyDuration" in unmapped_reason(bundle)


def test_a_number_beyond_a_float_is_refused_with_its_field() -> None:  # was OverflowError: int too large for float
    bundle = small(EHR_REQUEST)
    last(bundle)["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 10**400
    refused(bundle, r"\(entry 1\): dosageInstruction\[0\]\.doseAndRate\[0\]\.doseQuantity\.value: a number is at most")


def test_decimal_text_with_a_huge_exponent_is_refused_at_once() -> None:  # fhir.resources wrote out 10 million digits
    bundle = small(EHR_REQUEST)
    last(bundle)["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = "1e10000000"
    started = time.perf_counter()
    refused(bundle, r"doseQuantity\.value: a number is at most 1e308 \(got '1e10000000'\)")
    assert time.perf_counter() - started < 1.0


def test_elements_nested_too_deep_are_refused() -> None:  # was RecursionError inside fhir.resources
    nested: Any = {"url": "urn:x", "valueString": "a"}
    for _ in range(300):
        nested = {"url": "urn:x", "extension": [nested]}
    bundle = small(EHR_REQUEST)
    last(bundle)["extension"] = [nested]
    refused(bundle, r"MedicationRequest/eDZsol1 \(entry 1\): elements nested too deep")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80", r"bundle\.json: not UTF-8 text \(byte 0"),  # was UnicodeDecodeError, a bare ValueError
        (b"1" * 5000, r"bundle\.json: not readable JSON \(a number has more than 4300 digits\)"),  # was ValueError
        (b"[" * 100_000, r"bundle\.json: not readable JSON \(arrays or objects nested too deep\)"),  # RecursionError
    ],
)
def test_unreadable_files_are_refused_with_the_file_named(data: bytes, message: str, tmp_path: Path) -> None:
    (tmp_path / "bundle.json").write_bytes(data)
    with pytest.raises(FhirError, match=message):
        read_json(tmp_path / "bundle.json", "bundle")


def test_a_byte_order_mark_is_read(tmp_path: Path) -> None:  # was "not valid JSON (Unexpected UTF-8 BOM)"
    with_bom = tmp_path / "bom.json"
    with_bom.write_bytes(b"\xef\xbb\xbf" + (FIXTURES / "no_benzodiazepine.json").read_bytes())
    assert read_json(with_bom, "bundle") == _load("no_benzodiazepine.json")


def _coded(bundle: Any, **repeat: Any) -> Any:
    """The EHR request with a coded 5 mg dose and these timing.repeat elements, and no text to fall back on."""
    dosage = last(bundle)["dosageInstruction"][0]
    dosage["doseAndRate"][0]["doseQuantity"] = {
        "value": 5,
        "unit": "mg",
        "system": "http://unitsofmeasure.org",
        "code": "mg",
    }
    dosage["timing"]["repeat"] = {"boundsPeriod": {"start": "2026-01-05"}, **repeat}
    del dosage["text"]
    return bundle


@pytest.mark.parametrize(
    ("repeat", "reason"),
    [
        ({"frequency": 2, "period": 0}, "a period must be more than 0"),  # by reading: ZeroDivisionError
        ({"frequency": 2**31 - 1, "period": 1e-300, "periodUnit": "h"}, "is not a number of doses a day"),  # inf
    ],
)
def test_timings_that_are_no_daily_schedule_are_listed_not_mapped(repeat: dict[str, Any], reason: str) -> None:
    assert reason in unmapped_reason(_coded(small(EHR_REQUEST), **repeat))


def test_an_as_needed_maximum_beyond_a_float_is_ignored() -> None:  # by reading: int(inf) in _max_per_day
    bundle = _coded(small(EHR_REQUEST), frequency=1, period=1)
    dosage = last(bundle)["dosageInstruction"][0]
    dosage["asNeededBoolean"] = True
    huge, tiny = {"value": 1e300, "code": "g"}, {"value": 1e-300, "code": "d"}
    dosage["maxDosePerPeriod"] = {"numerator": huge, "denominator": tiny}
    [patient] = import_bundle(bundle, K, coder=CODER).patients
    assert [r.prn_mg for r in patient.regimens] == [5.0]


def test_dosage_text_with_an_impossible_amount_is_listed_not_mapped() -> None:  # by reading: UnitError, no entry named
    bundle = small(EHR_REQUEST)
    dosage = last(bundle)["dosageInstruction"][0]
    del dosage["doseAndRate"]
    dosage["text"] = "Take 1/0 mL by mouth 2 times daily."
    assert "'1/0' mL is not an amount" in unmapped_reason(bundle)


@pytest.mark.parametrize(
    ("part", "value", "message"),
    [
        ("parameters", "{", r"part 'parameters': expected a JSON object as text \(got '\{'\)"),  # was JSONDecodeError
        ("tolerance", "x", r"part 'tolerance': expected a finite number \(got 'x'\)"),  # was ValueError from float()
        ("event", '{"date": "2026-03-01"}', r"part 'event'\.kind: expected text \(got None\)"),  # was KeyError
    ],
)
def test_taper_plan_extensions_of_the_wrong_kind_are_refused(part: str, value: str, message: str) -> None:
    bundle = small("exported plan")
    careplan = bundle["entry"][1]["resource"]
    parts = careplan["extension"][0]["extension"]
    parts[:] = [p for p in parts if p["url"] != part] + [{"url": part, "valueString": value}]
    refused(bundle, r"CarePlan/[0-9a-f-]+ \(entry 1\): extension 'https://[^']+taper-plan' " + message)


def test_a_line_break_in_a_code_is_shown_escaped() -> None:
    # found fuzzing this surface (10,000 inputs): a system 'line\nbreak' put a line break in the skip reason
    _, reason = CODER.analyte({"coding": [{"system": "line\nbreak", "code": "3548-5"}]})
    assert reason == "code not in value sets: line\\nbreak|3548-5"


@pytest.mark.parametrize("name", [[{"given": [None], "family": "Nowak"}], [{"given": [None]}]])
def test_a_patient_name_with_a_null_part_is_read_as_far_as_it_goes(name: Any) -> None:
    # found fuzzing this surface (random run at 10,000): 'given': [None] raised TypeError in the name join
    bundle = small(EHR_REQUEST)
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["name"] = name
    (imported,) = import_bundle(bundle, K, coder=CODER).patients
    assert imported.regimens


def test_the_fuzz_left_its_base_documents_as_they_were() -> None:  # mutations copy what they change (run last)
    assert all(json.loads(b.text) == b.doc for b in [*SMALL, *WHOLE])
