"""Fuzz: the levels CSV (issue 19 §1, surface "levels CSV"): `tdm.samples.read_samples` / `load_samples`.

Inputs start from valid files (the required columns and any of the optional ones, in any order, one to six
measured levels of the analytes a lab reports, in the units labs use, censored or not, with a last-dose time)
and are then mutated: cells replaced by odd text (empty, NaN, infinity, negative, huge, exponents, fractions,
Unicode digits, impossible or zoned dates, dates without a clock time, pint expressions as units), columns
dropped, duplicated or added, short and long rows, a BOM, CRLF or CR line endings, semicolons, stray quotes,
NUL bytes, truncation; plus raw text, and bytes in other encodings read from a file. The property
(tests/fuzz/contract.py): each file is read into checked samples, or refused with a LevelsError naming the
row (or line) and column, the value and what is accepted.

`test_levels_cli_fuzz` runs `benzotaper levels interpret | fit` on a smaller sample of the same files (each
call runs the PK model: about 0.1 s), under the surface "levels CSV (CLI)".
"""

from __future__ import annotations

import math
import random
import re
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benzotaper.errors import LevelsError
from benzotaper.knowledge import load_knowledge
from benzotaper.knowledge.tdm_rules import load_tdm_knowledge
from benzotaper.tdm.samples import OPTIONAL, REQUIRED, Sample, load_samples, read_samples
from tests.fuzz.contract import EXAMPLES, FUZZ, accepted_or_refused, cli
from tests.fuzz.csv_text import MUTATIONS, NEWLINES, WHOLE_FILE, render, reshape, table_from_seed, whole_file

SURFACE = "levels CSV"
CLI_SURFACE = "levels CSV (CLI)"
CLI_EXAMPLES = min(EXAMPLES, 150)  # one PK run per call: a sample of the library's inputs
K = load_knowledge()
MAX_PLAUSIBLE = load_tdm_knowledge().q("levels", "max_plausible").value
EXAMPLE = (Path(__file__).parents[2] / "docs/examples/levels_diazepam.csv").read_text(encoding="utf-8")
WORKDIR = Path(tempfile.mkdtemp(prefix="levels-fuzz-"))
# A refusal names where (row/line/column/header/file) and what is accepted.
WHERE = re.compile(r"levels (row \d+|file)")
ACCEPTED = ("expected", "needs", "required", "one row per", "the header")

# ---------------------------------------------------------------- valid files

ANALYTES = ["diazepam", "nordiazepam", "Diazepam", "alprazolam", "lorazepam", "clonazepam", "7-aminoclonazepam",
            "oxazepam", "temazepam", "desmethyldiazepam", "diazepam_equivalents", "Total benzodiazepines",
            "immunoassay", "zolpidem"]  # fmt: skip
UNITS = ["ng/mL", "ng/ml", "µg/L", "μg/L", "ug/L", "mcg/L", "mg/L", "nmol/L", "umol/L", "µmol/L", " ng/mL "]


def _time_text(rng: random.Random, moment: datetime) -> str:
    style = rng.choice(["T", " ", "seconds", "zulu"])
    text = moment.isoformat(sep=" " if style == " " else "T", timespec="seconds" if style == "seconds" else "minutes")
    return text + "Z" if style == "zulu" else text


def _number_text(rng: random.Random) -> str:
    x = rng.uniform(0.0, 40.0)  # plausible in every unit (40 mg/L is 40,000 ng/mL)
    return rng.choice([f"{x:g}", f"{x:.1f}", f"{x:.2f}".replace(".", ","), str(round(x))])


def valid_row(rng: random.Random, columns: list[str]) -> dict[str, str]:
    """One valid row (values plausible in any of the units, possibly censored)."""
    sampled = datetime(2020, 1, 1) + timedelta(minutes=rng.randrange(7 * 365 * 24 * 60))
    lloq = rng.choice(["", "", "1", "5", "0.5", "2,5"]) if "lloq" in columns else ""
    value = _number_text(rng) if rng.random() < 0.8 else "<5"
    if lloq and rng.random() < 0.5:
        value = rng.choice(["BLQ", "ND", "below LLOQ", value])
    last = "" if rng.random() < 0.5 else _time_text(rng, sampled - timedelta(hours=rng.randint(1, 48)))
    row = {
        "sampled_at": _time_text(rng, sampled),
        "analyte": rng.choice(ANALYTES),
        "value": value,
        "unit": rng.choice(UNITS),
        "lloq": lloq,
        "last_dose_at": last,
        "lab": rng.choice(["", "Central lab", "Labor Süd", "ラボ"]),
        "method": rng.choice(["", "LC-MS/MS", "immunoassay", "GC-MS"]),
    }
    return {c: row[c] for c in columns}


def valid_table(seed: int) -> tuple[list[str], list[list[str]]]:
    """A valid file's header and rows from a seed (each optional column kept with probability 0.5)."""
    return table_from_seed(seed, REQUIRED, OPTIONAL, 0.5, valid_row)


seeds = st.integers(0, 2**32 - 1)




# ---------------------------------------------------------------- mutations

ODD_CELLS = ["", " ", "nan", "NaN", "inf", "-inf", "-5", "-0", "0", "1e400", "1e-400", "1e309", "1e-999999999",
             "1e999999999", "9" * 400, "9" * 5000, "1/0", "0/0", "½", "1 1/2", "2,5", "1,000.5", "١٢", "１２", "٣",
             "<", "<<5", "< 5", "<-5", "<1e400", ">5", "BLQ", "ND", "blq", "n/a", "NA", "-", "?", "0x10", "1_000",
             "45 ng/mL", "lots", "2026-02-30T08:00", "2026-03-01", "2026-03-01T25:00", "0001-01-01T00:00",
             "9999-12-31T23:59", "2026-03-01T08:00+25:00", "2026-03-01T08:00+05:30", "2026-W10-1T08:00",
             "20260301T0800", "tomorrow", "ng/mL**", "ng/mL**1e999", "1/0", "(", "kg/m^3", "mol", "%", "mg/dL",
             "furlongs", "ng/mL\x00", "\x00", "\ufeff", "\u200b", "diazepam\u0301", "DIAZEPAM", "valium",
             "diazepam;5", "'", '"', '""', "\t", "a\nb", "\r", "🧪", "x" * 1000, "ng//mL", "if/in", "lambda/L",
             "µmol", "NMOL/L", "ng / mL", "mmol/L", "mol/L", "g/L"]  # fmt: skip
odd_cells = st.one_of(st.sampled_from(ODD_CELLS), st.text(max_size=12), st.floats().map(str))
EXTRA_COLUMNS = ["", "comment", "value", "unit", "analyte", " sampled_at", "Sampled_At", "lloq", "\ufeffsampled_at"]


MUTATION_LISTS = st.lists(st.sampled_from(MUTATIONS), max_size=3)


@st.composite
def levels_files(draw: st.DrawFn) -> tuple[str, tuple[int, str] | None]:
    """CSV text, and the (line, column) of the single cell mutated when only one was (to check the message)."""
    seed = draw(seeds)
    columns, body = valid_table(seed)
    rng = random.Random(~seed)  # where the mutations land
    kinds = draw(MUTATION_LISTS)
    single: tuple[int, str] | None = None
    for kind in kinds:
        i = rng.randrange(len(body))
        if kind == "cell" and body[i]:
            j = rng.randrange(len(body[i]))
            body[i][j] = draw(odd_cells)
            single = (i + 2, columns[j]) if single is None and j < len(columns) and len(kinds) == 1 else (0, "")
            continue
        single = (0, "")
        columns, body = reshape(kind, rng, (columns, body), i, EXTRA_COLUMNS, ["", "x", "5", "ng/mL"])
    text = render(columns, body, draw(NEWLINES))
    text, changed = whole_file(draw(WHOLE_FILE), rng, text)
    if changed or any("\n" in c or "\r" in c or '"' in c for r in body for c in r):
        single = (0, "")  # line numbers move: check only the general form of the message
    return text, single






raw_texts = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=",\n\r\"'<;0123456789.-:Tngm/L ", max_size=300),
    st.text(max_size=200).map(lambda t: "sampled_at,analyte,value,unit\n" + t),
    st.sampled_from([EXAMPLE, EXAMPLE[:200], EXAMPLE.replace("\n", "\r\n"), "\ufeff" + EXAMPLE, "", "\n", ","]),
)

# ---------------------------------------------------------------- the property


def _check_samples(samples: list[Sample]) -> None:
    """What an accepted file promises: finite levels in range, censoring with a limit, time order."""
    assert samples
    for s in samples:
        assert isinstance(s.sampled_at, datetime) and s.sampled_at.tzinfo is None
        assert s.value is None or (math.isfinite(s.value) and 0 <= s.value <= MAX_PLAUSIBLE), s
        assert s.lloq is None or (math.isfinite(s.lloq) and 0 <= s.lloq <= MAX_PLAUSIBLE), s
        assert not s.censored or s.lloq is not None, s
        assert s.analyte == "diazepam_equivalents" or s.analyte in K.analytes, s
        assert s.last_dose_at is None or s.last_dose_at < s.sampled_at, s
    assert [s.sampled_at for s in samples] == sorted(s.sampled_at for s in samples)


def _check_refusal(exc: LevelsError, single: tuple[int, str] | None) -> None:
    message = str(exc)
    assert "\n" not in message and "\r" not in message, repr(message)
    assert WHERE.search(message), f"{message!r} names no row, line or file"
    assert any(word in message for word in ACCEPTED), f"{message!r} says nothing of what is accepted"
    if single and single[0]:  # one cell changed in a valid file: the refusal names its row
        assert f"row {single[0]}" in message, f"{message!r} does not name row {single[0]} (column {single[1]!r})"


def read_checked(
    text: str, single: tuple[int, str] | None = None, call: Callable[[], list[Sample]] | None = None
) -> Any:
    """Read the text (or run `call`) under the contract and check the outcome."""
    result = accepted_or_refused(SURFACE, call or (lambda: read_samples(K, text)), ["levels"])
    if isinstance(result, LevelsError):
        _check_refusal(result, single)
    else:
        assert isinstance(result, list)
        _check_samples(result)
    return result


@settings(FUZZ, max_examples=min(EXAMPLES, 300))
@given(seeds)
def test_the_valid_files_are_accepted(seed: int) -> None:
    """The generator's starting point is valid: so a refusal after one mutation is that mutation's."""
    _check_samples(read_samples(K, render(*valid_table(seed))))


@pytest.mark.slow
@FUZZ
@given(st.one_of(levels_files(), levels_files(), levels_files(), raw_texts.map(lambda t: (t, None))))
def test_levels_csv_fuzz(case: tuple[str, tuple[int, str] | None]) -> None:
    text, single = case
    read_checked(text, single)


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]


@pytest.mark.slow
@settings(FUZZ, max_examples=max(EXAMPLES // 10, 100))
@given(levels_files(), st.sampled_from(ENCODINGS), st.binary(max_size=8))
def test_levels_file_fuzz(case: tuple[str, tuple[int, str] | None], encoding: str, junk: bytes) -> None:
    """load_samples: the same files as bytes in other encodings, with junk bytes appended."""
    path = WORKDIR / "levels.csv"
    path.write_bytes(case[0].encode(encoding, errors="replace") + junk)
    read_checked("", None, lambda: load_samples(K, path))


# ---------------------------------------------------------------- the command line

REGIMENS = {  # the regimen for a file that names the analyte (diazepam's for the rest)
    "alprazolam": "alprazolam 0.5 mg tds",
    "lorazepam": "lorazepam 1 mg bd",
    "clonazepam": "clonazepam 0.5 mg bd",
    "diazepam": "diazepam 5 mg tds",
}
ODD_SINCE = ["", "yesterday", "2026-13-01", "2026-02-30", "0001-01-01", "9999-12-31", "2026-1-1", "20260101"]


VALID_FILES = seeds.map(lambda seed: render(*valid_table(seed)))
FIT_OPTIONS = st.sampled_from([[], [], ["--days", "7"], ["--days", "0"], ["--target", "50"], ["--target", "nan"]])
PROPOSALS = st.sampled_from([[], [], ["--propose", "diazepam 2 mg tds"], ["--propose-from", "0001-01-01"]])


def _sometimes(draw: st.DrawFn, usual: Any, odd: st.SearchStrategy[Any]) -> Any:
    """`usual` about four times in five, else a draw from `odd`: most calls reach the model, some test options.

    (The odd branch is a middle value: hypothesis favours the ends of a range.)
    """
    return draw(odd) if draw(st.integers(0, 4)) == 2 else usual


@st.composite
def cli_cases(draw: st.DrawFn) -> list[str]:
    """Arguments of `levels interpret | fit` on a file: valid two times in three, else mutated."""
    text = draw(levels_files())[0] if draw(st.integers(0, 2)) == 1 else draw(VALID_FILES)
    path = WORKDIR / "cli.csv"
    path.write_text(text, encoding="utf-8")
    first = _first_time(text)
    back = timedelta(days=draw(st.integers(0, 60)))
    since = (first.date() - back).isoformat() if first and first.year > 1 else "2026-01-01"
    since = _sometimes(draw, since, st.sampled_from(ODD_SINCE))
    usual = next((sig for name, sig in REGIMENS.items() if name in text.lower()), REGIMENS["diazepam"])
    regimen = _sometimes(draw, usual, st.sampled_from(["", "diazepam", "x 5 mg", *REGIMENS.values()]))
    command = draw(st.sampled_from(["interpret", "fit"]))
    args = ["levels", command, str(path), "--since", since, "--regimen", regimen]
    if command == "fit":
        args += draw(FIT_OPTIONS) + draw(PROPOSALS)
    return args + draw(st.sampled_from([[], ["--json"]]))


def _first_time(text: str) -> datetime | None:
    """The earliest readable sampled_at in the text, to start the regimen a little before it."""
    found = []
    for match in re.finditer(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d", text):
        try:
            found.append(datetime.fromisoformat(match.group().replace(" ", "T")))
        except ValueError:
            continue
    return min(found) if found else None


@pytest.mark.slow
@settings(FUZZ, max_examples=CLI_EXAMPLES)
@given(cli_cases())
def test_levels_cli_fuzz(args: list[str]) -> None:
    with mock.patch("benzotaper.levels_cli.load_knowledge", return_value=K):  # loaded once, not per call
        cli(CLI_SURFACE, args)


# ---------------------------------------------------------------- failures the fuzz found (regressions)


def _refused(text: str) -> str:
    with pytest.raises(LevelsError) as caught:
        read_samples(K, text)
    return str(caught.value)


HEAD = "sampled_at,analyte,value,unit,lloq\n"


def test_a_value_beyond_the_header_is_refused_not_a_crash() -> None:
    # found fuzzing this surface: a row whose only text was past the header's columns raised AttributeError (list.strip)
    assert "beyond the header's 5 columns" in _refused(HEAD + ",,,,,x\n")


def test_a_carriage_return_line_ending_is_read() -> None:
    # found fuzzing this surface: old-Mac CR line endings raised csv.Error ("new-line character seen in unquoted field")
    (s,) = read_samples(K, HEAD.replace("\n", "\r") + "2026-03-31T07:30,diazepam,100,ng/mL,5\r")
    assert s.value == 100


def test_a_field_past_the_csv_limit_is_refused_naming_the_line() -> None:
    # found fuzzing this surface: a 200,000-character field raised csv.Error
    assert "after line" in _refused(HEAD + '"' + "x" * 200_000 + '"\n')


@pytest.mark.parametrize("unit", ["ng/mL**", "1/0", "(", "ng/mL^ng", "ng / mL"])
def test_a_unit_the_units_parser_choked_on_is_refused(unit: str) -> None:
    # found fuzzing this surface: pint raised AssertionError, ZeroDivisionError, TokenError and TypeError on
    # these (fixed in units.py by the dose/unit surface's fuzz; checked here on the levels path)
    message = _refused(HEAD + f"2026-03-31T07:30,diazepam,100,{unit},\n")
    assert "row 2, column 'value'" in message and unit in message and "ng/mL" in message


def test_a_huge_exponent_is_refused_at_once() -> None:
    # found fuzzing this surface: '1e-999999999' made the exact fraction parser expand 10**999999999 (minutes;
    # fixed in units.parse_number by the dose/unit surface's fuzz)
    assert "row 2, column 'value'" in _refused(HEAD + "2026-03-31T07:30,diazepam,1e-999999999,ng/mL,\n")


def test_a_duplicated_column_is_refused() -> None:
    # found fuzzing this surface: a header naming 'value' twice silently read the second (empty) one
    assert "['value'] appear more than once" in _refused(
        "sampled_at,analyte,value,unit,value\n2026-03-31T07:30,x,1,ng/mL,\n"
    )


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    # found fuzzing this surface: a cp1252 file ('µg/L' as byte 0xb5) raised a bare UnicodeDecodeError
    path = tmp_path / "levels.csv"
    path.write_bytes((HEAD + "2026-03-31T07:30,diazepam,100,µg/L,\n").encode("cp1252"))
    with pytest.raises(LevelsError, match=r"byte b'\\xb5' at position \d+ is not UTF-8"):
        load_samples(K, path)
