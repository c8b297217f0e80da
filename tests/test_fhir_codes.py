"""fhir.toml: codes checked against their own check digits, references into the knowledge base, and the loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from benzotaper.errors import KnowledgeError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.fhir_codes import load_fhir_codes, read_fhir_codes

# Verhoeff tables (SNOMED CT identifiers end in a Verhoeff check digit).
_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]  # fmt: skip
_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]  # fmt: skip


def verhoeff_ok(number: str) -> bool:
    c = 0
    for i, digit in enumerate(reversed(number)):
        c = _D[c][_P[i % 8][int(digit)]]
    return c == 0


def loinc_check_digit(number: str) -> int:
    """LOINC's mod-10 check digit (the Luhn scheme: double every other digit from the right, starting there)."""
    total = 0
    for i, digit in enumerate(reversed(number)):
        d = int(digit) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return (10 - total % 10) % 10


def test_the_check_digit_schemes_work_on_known_codes() -> None:
    assert loinc_check_digit("12345") == 5  # the worked example of the LOINC users' guide (12345-5)
    assert verhoeff_ok("236") and not verhoeff_ok("237")  # textbook Verhoeff example: 23 -> check digit 6


def test_every_loinc_code_has_a_valid_check_digit() -> None:
    for entry in load_fhir_codes().loinc:
        number, check = entry.code.split("-")
        assert loinc_check_digit(number) == int(check), entry.code


def test_every_snomed_route_code_has_a_valid_verhoeff_digit() -> None:
    for code in load_fhir_codes().routes:
        assert verhoeff_ok(code), code


def test_loinc_analytes_and_event_phrases_exist_in_the_knowledge(knowledge: Knowledge) -> None:
    codes = load_fhir_codes()
    for entry in codes.loinc:
        assert set(entry.analytes) <= set(knowledge.analytes), entry.code
        assert entry.source in codes.sources
    for phrase in codes.event_timing.values():
        assert phrase in knowledge.sig.frequencies


def test_only_oral_and_oromucosal_use_is_analysed() -> None:
    codes = load_fhir_codes()
    assert codes.analysed_routes == ("oral", "oromucosal")
    assert codes.routes["26643006"] == "oral"  # HL7 medrx0303: 'Oral Route'


def test_a_broken_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    text = (Path(__file__).parent.parent / "src/benzotaper/knowledge/data/fhir.toml").read_text(encoding="utf-8")
    bad = tmp_path / "fhir.toml"
    bad.write_text(text.replace('code = "3548-5"', 'code = "3548"'), encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"fhir.toml: loinc\[0\].code: not a LOINC code \(got '3548'\)"):
        read_fhir_codes(bad)
    bad.write_text(text.replace('opioid = "critical"', 'opioid = "urgent"'), encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"cds.indicator: indicators must be one of"):
        read_fhir_codes(bad)
