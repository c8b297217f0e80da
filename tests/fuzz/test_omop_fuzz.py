"""Fuzz: OMOP folders given to `benzotaper cohort run` (issue 19 §1, surface "OMOP folder").

Inputs are the tables the cohort analysis reads (person, drug_exposure, concept, concept_ancestor,
drug_strength), close to real files and then broken: columns dropped, renamed, repeated, reordered or
added; cells with text in a date or number column, floats for ids, NaN and infinity, huge, negative,
blank, out-of-range and malformed dates, Unicode, quotes, delimiters and line breaks inside fields;
rows repeated or with too many or too few fields; files empty, header-only, truncated, with a byte
order mark, CRLF line ends, another delimiter, invalid UTF-8, gzip-compressed, or Parquet with wrong
column types; tables missing. The property (tests/fuzz/contract.py): every table is loaded, or refused
with a CohortError naming the table (and the column, the value or the line) and what is accepted;
no DuckDB exception escapes, and a table that is accepted can be read in full.

DuckDB only: the Spark engine takes seconds per input. One full `run_cohort` takes about half a
second here, so the table-loading and validation step (`load_table`, which every run goes through
first) takes the 10,000 inputs, and the whole pipeline and the command line a smaller sample
(PIPELINE_EXAMPLES, CLI_EXAMPLES) of whole folders built the same way.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import random
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from benzotaper.cli import app
from benzotaper.cohort.engine import DuckDBEngine
from benzotaper.cohort.generate import build_vocabulary, vocabulary_tables
from benzotaper.cohort.pipeline import default_settings, run_cohort
from benzotaper.cohort.settings import FIRST_DATE, LAST_DATE
from benzotaper.cohort.tables import COLUMNS, REQUIRED, load_table, load_tables
from benzotaper.errors import BenzotaperError, CohortError
from benzotaper.knowledge import load_knowledge
from benzotaper.knowledge.cohort_rules import load_cohort_knowledge
from tests.fuzz.contract import EXAMPLES, FUZZ, accepted_or_refused, cli

SURFACE = "OMOP folder"
PIPELINE_SURFACE = "OMOP folder: whole run"
CLI_SURFACE = "OMOP folder: command line"
PIPELINE_EXAMPLES = min(EXAMPLES, 30)  # one run_cohort each (about 0.3 s on an idle machine)
CLI_EXAMPLES = min(EXAMPLES, 8)  # one `benzotaper cohort run` each (about 0.7 s: a new engine and knowledge)
K = load_knowledge()
SETTINGS = default_settings(K)

# ---------------------------------------------------------------- cell values

PRODUCTS = ["diazepam 5 mg tablet", "Diazepam 2mg tablets", "DIAZEPAM 5MG TAB", "Xanax 0.5 mg", "alprazolam 0.25 MG",
            "lorazepam 1 mg", "clonazepam 500 mcg tablets", "zopiclone 7.5 mg", "diazepam 2 mg/5 ml oral solution",
            "oxycodone 5 mg", "paracetamol 500 mg", "RxNorm:197589", "197589", "quazepam 15 mg", ""]  # fmt: skip
SIGS = ["1 tab tid", "take 1 tablet three times daily", "1 tablet at night", "1 tab qid prn", "as directed", "bd"]
ROUTES = ["oral", "Oral", " PO ", "intravenous", "rectal", "nasal", "unknown"]
CONCEPTS = [0, 723013, 19076374, 1310149, 8532, 8507, 4132161, 4171047, 999999999]
ODD_CELLS = ["", " ", "  ", "NA", "NULL", "null", "None", "NaN", "nan", "-nan", "inf", "-inf", "Infinity", "1.5",
             "1.0", "2.", ".5", "1e3", "1E3", "1e400", "-1e400", "1e-400", "-1", "-0", "0", "0x1F", "1_000", "+7",
             " 7 ", "\t7", "007", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
             "-9223372036854775809", "2147483647", "2147483648", "-2147483649", "99999999999999999999", "1,5",
             "1 000", "abc", "true", "false", "t", "2024-02-30", "2024-13-01", "2024-00-10", "0000-01-01",
             "0001-01-01", "1799-12-31", "1800-01-01", "2199-12-31", "2200-01-01", "9999-12-31", "10000-01-01",
             "294247-01-10", "5881580-07-11", "-2024-01-01", "2024-01-01 (BC)", "infinity", "-infinity", "epoch",
             "20240101", "01/02/2024", "2024/01/02", "2024-1-2", "2024-01-01T10:00:00Z", "2024-01-01 10:00:00",
             "2024-01-01 25:00", "Jan 1 2024", "é", "日本語", "\u2028", "\u00a0", "a\nb", "a\r\nb", 'say "hi"',
             '"', "a,b", "a;b", "a\tb", "a|b", "[/bold]", "[red]x", ":pill:", "💊", "\x00", "\x1b[31m", "'; DROP",
             "\\", "\\N"]  # fmt: skip
LONG = "x" * 5000


WORDS = ["", "x", "Tablet", "mg", "ml", "é", "日本", "a b", "S", "RxNorm", "Ingredient", "Clinical Drug"]
FLOATS = [math.nan, math.inf, -math.inf, 1e308, 5e-324, -0.0, 0.1 + 0.2, 1e15 + 0.5]


def valid_cell(rng: random.Random, portable: str, column: str) -> str:
    """A value a real OMOP file would hold in `column`."""
    if column in ("drug_source_value", "concept_name"):
        return rng.choice(PRODUCTS)
    if column == "sig":
        return rng.choice(SIGS)
    if column == "route_source_value":
        return rng.choice(ROUTES)
    if column.endswith("concept_id"):
        return str(rng.choice(CONCEPTS))
    if portable == "BIGINT":
        return str(rng.randint(1, 6))
    if portable == "INT":
        return str(rng.randint(1920, 2020) if column == "year_of_birth" else rng.randint(0, 120))
    if portable == "DOUBLE":
        return str(rng.randint(0, 200)) if rng.random() < 0.5 else f"{rng.uniform(0.01, 500):g}"
    if portable == "DATE":
        return (date(2018, 1, 1) + timedelta(days=rng.randint(0, 2900))).isoformat()
    return rng.choice(WORDS)


def odd_cell(rng: random.Random) -> str:
    """A value no column of its type should take as it is (or an edge one that it should)."""
    pick = rng.randint(0, 9)
    if pick == 0:
        return str(rng.randint(-(2**70), 2**70))
    if pick == 1:
        return repr(rng.choice([*FLOATS, rng.uniform(-1e6, 1e6)]))
    if pick == 2:
        return (date(1, 1, 1) + timedelta(days=rng.randint(0, 3_652_058))).isoformat()
    if pick == 3:
        return "".join(chr(rng.choice([rng.randint(1, 0xD7FF), rng.randint(0xE000, 0x10FFFF)])) for _ in range(4))
    if pick == 4 and rng.random() < 0.05:
        return LONG
    return rng.choice(ODD_CELLS)


odd_cells = st.one_of(
    st.sampled_from(ODD_CELLS),
    st.integers(-(2**70), 2**70).map(str),
    st.floats().map(repr),
    st.dates(date(1, 1, 1), date(9999, 12, 31)).map(date.isoformat),
    st.text(max_size=10),
)


# ---------------------------------------------------------------- a table file


@dataclass
class Case:
    """One generated table file: what it holds and how it was spoiled."""

    table: str
    fmt: str  # csv, csv.gz, parquet, missing
    header: list[str]
    rows: list[list[str]]
    data: bytes = b""
    arrow: pa.Table | None = None
    clean: bool = True  # the file is the rows as written (no byte-level damage)
    notes: list[str] = field(default_factory=list)


HEADER_CHANGES = st.sampled_from(("drop", "rename", "upper", "repeat", "extra", "shuffle", "space"))
RENAMES = st.sampled_from(["{}_x", "{}s", "", "Ünïcode", '"q"', "{}\u200b"])
EXTRAS = st.sampled_from(["drug_type_concept_id", "race_concept_id", "x", "notes", "column0"])
SEEDS = st.integers(0, 2**32 - 1)
SMALL = st.integers(0, 4)


def headers(draw: st.DrawFn, rng: random.Random, table: str) -> tuple[list[str], list[str]]:
    """The header a file has (columns left out, then changed) and, per header column, the OMOP column
    whose values it holds ('extra' for none)."""
    keep = 1.0 if rng.random() < 0.5 else 0.7
    names = [c for c in COLUMNS[table] if c in REQUIRED.get(table, ()) or rng.random() < keep]
    kinds = list(names)
    for _ in range(draw(st.integers(0, 2))):
        change = draw(HEADER_CHANGES)
        i = rng.randrange(len(names)) if names else 0
        if change == "extra":
            names.insert(i, draw(EXTRAS))
            kinds.insert(i, "extra")
        elif not names:
            continue
        elif change == "drop":
            del names[i], kinds[i]
        elif change == "rename":
            names[i] = draw(RENAMES).format(names[i])
        elif change == "upper":
            names[i] = names[i].upper()
        elif change == "space":
            names[i] = f" {names[i]} "
        elif change == "repeat":
            names.insert(i, names[i])
            kinds.insert(i, kinds[i])
        elif change == "shuffle":
            order = list(range(len(names)))
            rng.shuffle(order)
            names, kinds = [names[j] for j in order], [kinds[j] for j in order]
    return names, kinds


ODD_RATES = st.sampled_from([0.0, 0.0, 0.05, 0.15, 0.4])
ONE_IN = {n: st.integers(0, n - 1) for n in (2, 4, 5)}


def rows_for(draw: st.DrawFn, rng: random.Random, table: str, kinds: list[str]) -> list[list[str]]:
    """0 to 4 rows of cells: real values with odd ones at a drawn rate (cells from the drawn seed: cheap),
    one odd cell of hypothesis's own choosing, and now and then a repeated or a ragged row."""
    odd = draw(ODD_RATES)
    types = COLUMNS[table]
    rows = [
        [odd_cell(rng) if rng.random() < odd else valid_cell(rng, types.get(k, "TEXT"), k) for k in kinds]
        for _ in range(draw(SMALL))
    ]
    if rows and kinds and draw(ONE_IN[4]) == 0:
        rows[rng.randrange(len(rows))][rng.randrange(len(kinds))] = draw(odd_cells)
    if rows and rng.random() < 0.1:
        rows.append(list(rng.choice(rows)))  # a repeated row
    if rows and rng.random() < 0.07:
        i = rng.randrange(len(rows))
        rows[i] = [*rows[i], "extra"] if rng.random() < 0.5 else rows[i][:-1]  # a ragged row
    return rows


def csv_bytes(header: list[str], rows: list[list[str]], delim: str, quoting: int, newline: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delim, quoting=quoting, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


DAMAGE = st.sampled_from(("none", "none", "none", "none", "bom", "no_final_newline", "truncate", "bad_utf8",
                          "blank_lines", "empty", "header_only", "nul_byte", "raw_text", "raw_bytes",
                          "unclosed_quote"))  # fmt: skip
BAD_BYTES = [b"\xff", b"\xc3", b"\xe9", b"\x80\x80", b"\xed\xa0\x80"]
RAW_TEXT, RAW_BYTES = st.text(max_size=60), st.binary(max_size=60)


def damaged(draw: st.DrawFn, rng: random.Random, data: bytes) -> tuple[bytes, bool, str]:
    """The file's bytes after one kind of damage (or none); whether they are still the rows as written."""
    kind = draw(DAMAGE)
    at = rng.randint(0, len(data))
    if kind == "bom":
        return b"\xef\xbb\xbf" + data, True, kind
    if kind == "no_final_newline":
        return data.rstrip(b"\r\n"), True, kind
    if kind == "truncate" and data:
        return data[: rng.randrange(len(data))], False, kind
    if kind == "bad_utf8":
        return data[:at] + rng.choice(BAD_BYTES) + data[at:], False, kind
    if kind == "blank_lines":
        return data.replace(b"\n", b"\n\n", 1) + b"\n\n", True, kind
    if kind == "empty":
        return b"", False, kind
    if kind == "header_only":
        return data.split(b"\n", 1)[0] + b"\n", False, kind
    if kind == "nul_byte":
        return data[:at] + b"\x00" + data[at:], False, kind
    if kind == "raw_text":
        return draw(RAW_TEXT).encode("utf-8"), False, kind
    if kind == "raw_bytes":
        return draw(RAW_BYTES), False, kind
    if kind == "unclosed_quote" and data:
        return data.rstrip(b"\r\n") + b',"open\n', False, kind
    return data, True, "none"


PARQUET_TYPES = st.sampled_from(("as_used", "as_used", "as_used", "string", "float", "int", "date", "timestamp",
                                 "bool"))  # fmt: skip
USED_TYPE = {"BIGINT": "int", "INT": "int32", "DOUBLE": "float", "DATE": "date", "TEXT": "string"}
ARROW_TYPES = {"int": pa.int64(), "int32": pa.int32(), "float": pa.float64(), "date": pa.date32(),
               "timestamp": pa.timestamp("us"), "string": pa.string(), "bool": pa.bool_()}  # fmt: skip


def parquet_value(rng: random.Random, kind: str) -> object:
    """One value of a Parquet column of `kind`: mostly plausible, sometimes an edge of the type."""
    edge = rng.random() < 0.3
    if rng.random() < 0.1:
        return None
    if kind == "int":
        return rng.choice([-(2**63), 2**63 - 1, 0, -1]) if edge else rng.randint(1, 6)
    if kind == "int32":
        return rng.choice([-(2**31), 2**31 - 1, 0, 1799, 2200]) if edge else rng.randint(1900, 2030)
    if kind == "float":
        return rng.choice([*FLOATS, 1.5, -3.0]) if edge else rng.uniform(0, 100)
    if kind == "date":
        span = (date(1, 1, 1), 3_652_058) if edge else (date(2018, 1, 1), 2900)
        return span[0] + timedelta(days=rng.randint(0, span[1]))
    if kind == "timestamp":
        return datetime(1700, 1, 1) + timedelta(seconds=rng.randint(0, 600 * 365 * 86400))
    if kind == "string":
        return odd_cell(rng) if edge else str(rng.randint(1, 6))
    return rng.random() < 0.5


def parquet_table(draw: st.DrawFn, rng: random.Random, table: str, header: list[str]) -> pa.Table:
    """0 to 4 rows; each column of the type used or of another (a date as a number, an id as text)."""
    n = draw(SMALL)
    names = list(dict.fromkeys(header))  # Parquet columns are unique
    arrays = []
    for name in names:
        kind = draw(PARQUET_TYPES)
        kind = USED_TYPE[COLUMNS[table].get(name.strip().lower(), "TEXT")] if kind == "as_used" else kind
        arrays.append(pa.array([parquet_value(rng, kind) for _ in range(n)], type=ARROW_TYPES[kind]))
    return pa.Table.from_arrays(arrays, names=names)


TABLES = st.sampled_from(list(COLUMNS))
FORMATS = st.sampled_from(["csv"] * 12 + ["csv.gz", "parquet", "missing"])
DELIMS = [",", ",", ",", "\t", ";", "|"]
QUOTING = [csv.QUOTE_MINIMAL, csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]
NEWLINES = ["\n", "\n", "\r\n"]


@st.composite
def table_case(draw: st.DrawFn, table: str | None = None) -> Case:
    """One table file: CSV (most), gzipped CSV, Parquet, or no file at all."""
    table = table or draw(TABLES)
    rng = random.Random(draw(SEEDS))
    header, kinds = headers(draw, rng, table)
    fmt = draw(FORMATS)
    if fmt == "missing":
        return Case(table, fmt, header, [])
    if fmt == "parquet":
        arrow = parquet_table(draw, rng, table, header)
        return Case(table, fmt, arrow.column_names, [], arrow=arrow)
    rows = rows_for(draw, rng, table, kinds)
    delim = rng.choice(DELIMS)
    data = csv_bytes(header, rows, delim, rng.choice(QUOTING), rng.choice(NEWLINES))
    data, clean, damage = damaged(draw, rng, data)
    ragged = any(len(r) != len(header) for r in rows)
    return Case(table, fmt, header, rows, data=data, clean=clean and not ragged, notes=[damage, repr(delim)])


def write_case(folder: Path, case: Case, clear: bool = True) -> None:
    """Write the table's file into `folder` (with `clear`, the only file there)."""
    for old in folder.iterdir() if clear else ():
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    path = folder / f"{case.table}.{case.fmt}"
    if case.fmt == "csv":
        path.write_bytes(case.data)
    elif case.fmt == "csv.gz":
        path.write_bytes(gzip.compress(case.data, compresslevel=1))
    elif case.fmt == "parquet":
        assert case.arrow is not None
        pq.write_table(case.arrow, path)


# ---------------------------------------------------------------- what an accepted table must not hold


def _refusable(portable: str, cell: str) -> bool:
    """A cell Python itself reads as a value the table's type does not accept (so it must be refused)."""
    text = cell.strip()
    if not text:
        return False
    if portable in ("BIGINT", "INT", "DOUBLE"):
        try:
            number = float(text)
        except ValueError:
            return False  # DuckDB may read forms Python does not (e.g. 0x1F is refused by both: see below)
        if not math.isfinite(number):
            return True
        return portable != "DOUBLE" and not number.is_integer()
    if portable == "DATE" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return True  # 2024-02-30
        return not FIRST_DATE <= day <= LAST_DATE
    return False


def must_refuse(case: Case) -> list[tuple[str, str]]:
    """(column, cell) pairs of a clean CSV case that the table's checks must refuse."""
    if case.fmt not in ("csv", "csv.gz") or not case.clean:
        return []
    found = []
    seen: set[str] = set()
    for i, name in enumerate(case.header):
        column = name.strip().lower()
        if column in seen or column not in COLUMNS[case.table]:
            continue
        seen.add(column)
        found += [(column, r[i]) for r in case.rows if _refusable(COLUMNS[case.table][column], r[i])]
    return found


# ---------------------------------------------------------------- the property: table by table


@pytest.fixture(scope="module")
def engine() -> Iterator[DuckDBEngine]:
    eng = DuckDBEngine(threads=1)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("omop_fuzz")


def mentions(case: Case) -> list[str]:
    """What a refusal of this table must name: the table (or its file)."""
    return [f"table {case.table}", f"{case.table}.{case.fmt}"]


def check_refusal(case: Case, error: BenzotaperError) -> None:
    """A refusal says what is accepted, and a column it names is one of the file's."""
    message = str(error)
    assert isinstance(error, CohortError), message
    assert "\n" not in message and "expected" in message, message
    named = re.match(rf"table {case.table}, column ([^:]+):", message)
    if named:
        assert named.group(1) in {h.strip().lower() for h in case.header}, message


def load_and_read(engine: DuckDBEngine, folder: Path, case: Case) -> bool:
    """Load the table; when it is accepted, read every row of the typed view (every conversion done)."""
    if not load_table(engine, folder, case.table):
        return False
    engine.rows(f"SELECT * FROM {case.table}")
    return True


@pytest.mark.slow
@FUZZ
@given(case=table_case())
def test_each_table_is_loaded_or_refused(engine: DuckDBEngine, folder: Path, case: Case) -> None:
    write_case(folder, case)
    result = accepted_or_refused(SURFACE, lambda: load_and_read(engine, folder, case), mentions(case))
    if isinstance(result, BenzotaperError):
        check_refusal(case, result)
        return
    if case.fmt == "missing":
        assert case.table not in REQUIRED and result is False
    refusable = must_refuse(case)
    assert not refusable, f"{case.table}: accepted {refusable[:3]} ({case.notes})"


# ---------------------------------------------------------------- the whole run, on whole folders

CK = load_cohort_knowledge()
VOCAB = vocabulary_tables(build_vocabulary(K, CK))  # the generator's concept, concept_ancestor, drug_strength
CONCEPT_ROWS = VOCAB["concept"].to_pylist()
DRUG_IDS = [int(r["concept_id"]) for r in CONCEPT_ROWS if r["concept_class_id"] != "Ingredient"]
ROUTE_IDS = sorted(CK.omop.routes)
BIG = 2**63 - 1


def _pick(rng: random.Random, edge: float, usual: object, edges: list[object]) -> object:
    return rng.choice(edges) if rng.random() < edge else usual


def exposure_row(rng: random.Random, edge: float, i: int) -> dict[str, object]:
    """One drug_exposure row of accepted values: most usual, some at the edges of what is accepted."""
    start = _pick(rng, edge, date(2018, 1, 1) + timedelta(days=rng.randint(0, 2900)), [FIRST_DATE, LAST_DATE,
                  LAST_DATE - timedelta(days=10), None])  # fmt: skip
    end = None
    if isinstance(start, date) and rng.random() < 0.6:
        end = min(LAST_DATE, max(FIRST_DATE, start + timedelta(days=rng.randint(-30, 400))))
    end = _pick(rng, edge, end, [FIRST_DATE, LAST_DATE, None])
    return {
        "drug_exposure_id": _pick(rng, edge, i, [-BIG - 1, BIG, 1, None]),
        "person_id": _pick(rng, edge, rng.randint(1, 6), [-BIG - 1, BIG, 0, None]),
        "drug_concept_id": rng.choice([*DRUG_IDS, 0, 0, 999_999_999, None]),
        "drug_exposure_start_date": start,
        "drug_exposure_end_date": end,
        "quantity": _pick(
            rng,
            edge,
            rng.choice([rng.randint(1, 120), round(rng.uniform(0.1, 90), 2)]),
            [0.0, -5.0, 5e-324, 1e-300, 1e300, 1.7976931348623157e308, -1e300, None],
        ),
        "days_supply": _pick(rng, edge, rng.randint(1, 90), [0, -1, 365, 366, 2**31 - 1, -(2**31), None]),
        "sig": rng.choice([*SIGS, None, "".join(rng.choice("tid bd qds 1 tab") for _ in range(6))]),
        "route_concept_id": rng.choice([*ROUTE_IDS, 0, None]),
        "provider_id": _pick(rng, edge, rng.randint(1, 5), [-BIG - 1, BIG, None]),
        "drug_source_value": rng.choice(PRODUCTS),
        "route_source_value": rng.choice([*ROUTES, None]),
    }


def person_row(rng: random.Random, edge: float, pid: int) -> dict[str, object]:
    return {
        "person_id": pid,
        "gender_concept_id": rng.choice([8507, 8532, 0, None]),
        "year_of_birth": _pick(rng, edge, rng.randint(1930, 2015), [FIRST_DATE.year, LAST_DATE.year, None]),
    }


def table_of(rows: list[dict[str, object]], table: str) -> pa.Table:
    """Rows as an Arrow table with the types the analysis uses."""
    kinds = {"BIGINT": pa.int64(), "INT": pa.int32(), "DOUBLE": pa.float64(), "DATE": pa.date32(), "TEXT": pa.string()}
    return pa.table({c: pa.array([r[c] for r in rows], kinds[t]) for c, t in COLUMNS[table].items()})


def csv_of(table: pa.Table) -> bytes:
    """A table as the CSV file an export tool writes (empty fields for NULL, floats in full)."""
    columns = table.column_names
    lines = [",".join(columns)]
    for row in table.to_pylist():
        lines.append(",".join("" if row[c] is None else (repr(row[c]) if isinstance(row[c], float) else str(row[c]))
                              for c in columns))  # fmt: skip
    return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass
class Site:
    """A whole OMOP folder: each table as Arrow, written as CSV or Parquet, or a broken table file."""

    tables: dict[str, pa.Table]
    formats: dict[str, str]
    broken: Case | None
    part_rows: int


@st.composite
def sites(draw: st.DrawFn, broken_one_in: int = 5) -> Site:
    """Mostly well-formed folders (persons, prescriptions with edge values that are accepted, the
    vocabulary now and then); one in `broken_one_in` with one table from `table_case` (often refused)."""
    rng = random.Random(draw(SEEDS))
    edge = draw(ODD_RATES)
    persons = [person_row(rng, edge, pid) for pid in range(1, draw(st.integers(0, 6)) + 1)]
    rows = [exposure_row(rng, edge, i) for i in range(1, draw(st.integers(0, 12)) + 1)]
    tables = {"person": table_of(persons, "person"), "drug_exposure": table_of(rows, "drug_exposure")}
    if draw(ONE_IN[4]) != 0:
        tables.update(VOCAB)
    formats = {name: draw(st.sampled_from(["csv", "parquet"])) for name in tables}
    broken = draw(table_case()) if draw(ONE_IN[broken_one_in]) == 0 else None
    return Site(tables, formats, broken, draw(st.sampled_from([DuckDBEngine.PART_ROWS, 2, 5])))


def write_site(folder: Path, site: Site) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, table in site.tables.items():
        if site.broken is not None and site.broken.table == name:
            continue
        if site.formats[name] == "csv":
            (folder / f"{name}.csv").write_bytes(csv_of(table))
        else:
            pq.write_table(table, folder / f"{name}.parquet")
    if site.broken is not None:
        write_case(folder, site.broken, clear=False)
    (folder / "observation.csv").write_text("observation_id,person_id\n1,1\n")  # an extra table, ignored


@pytest.fixture(scope="module")
def warm(engine: DuckDBEngine, tmp_path_factory: pytest.TempPathFactory) -> None:
    """One valid run first: the interdose rule is simulated once per process (seconds), not per input."""
    site = tmp_path_factory.mktemp("warm")
    (site / "person.csv").write_text("person_id,gender_concept_id,year_of_birth\n1,8532,1960\n")
    (site / "drug_exposure.csv").write_text(
        "drug_exposure_id,person_id,drug_exposure_start_date,quantity,days_supply,drug_source_value\n"
        + "".join(f"{i},1,2024-0{i}-01,30,30,{p}\n" for i, p in enumerate(PRODUCTS[:9], start=1))
    )
    run_cohort(site, site / "out", engine, settings=SETTINGS, knowledge=K)


def whole_run(engine: DuckDBEngine, site_dir: Path, out: Path, site: Site, fmt: str) -> Any:
    engine.PART_ROWS = site.part_rows  # type: ignore[misc]  # small: persons in groups (person_histogram)
    try:
        return run_cohort(site_dir, out, engine, settings=SETTINGS, knowledge=K, fmt=fmt)
    finally:
        engine.PART_ROWS = DuckDBEngine.PART_ROWS  # type: ignore[misc]


@pytest.mark.slow
@settings(FUZZ, max_examples=PIPELINE_EXAMPLES)
@given(site=sites(), fmt=st.sampled_from(["parquet", "csv"]))
def test_whole_runs_finish_or_refuse(engine: DuckDBEngine, folder: Path, warm: None, site: Site, fmt: str) -> None:
    site_dir = folder / "site"
    write_site(site_dir, site)
    event(f"one table broken: {site.broken is not None}")
    names = [f"table {t}" for t in COLUMNS] + [f"{t}.{f}" for t in COLUMNS for f in ("csv", "csv.gz", "parquet")]
    result = accepted_or_refused(
        PIPELINE_SURFACE, lambda: whole_run(engine, site_dir, folder / "out", site, fmt), names
    )
    if isinstance(result, BenzotaperError):
        assert "expected" in str(result), str(result)
        assert site.broken is not None, f"a well-formed folder was refused: {result}"
        return
    written = result.summary["drug_exposure_rows"]
    expected = (
        site.tables["drug_exposure"].num_rows
        if site.broken is None or site.broken.table != "drug_exposure"
        else written
    )
    assert written == expected
    assert sum(m["rows"] for m in result.summary["mapping"]) == written  # no row dropped unseen


@pytest.mark.slow
@settings(FUZZ, max_examples=CLI_EXAMPLES, deadline=timedelta(seconds=10))
@given(site=sites(broken_one_in=2))
def test_command_line_exits_0_or_2(folder: Path, warm: None, site: Site) -> None:
    site_dir = folder / "cli"
    write_site(site_dir, site)
    cli(CLI_SURFACE, ["cohort", "run", str(site_dir), "--out", str(folder / "cli_out"), "--json"])


# ---------------------------------------------------------------- regressions found by the fuzz
# Each was found by these inputs (and checked against the code before the fix); "before" says what happened.

HEADER = "drug_exposure_id,person_id,drug_exposure_start_date,drug_exposure_end_date,quantity,days_supply"
HEADER += ",drug_source_value\n"
PERSON = "person_id,gender_concept_id,year_of_birth\n1,8532,1960\n"
TABLET = "diazepam 5 mg tablet"


def _site(tmp: Path, person: str, exposures: str | bytes) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "person.csv").write_text(person)
    data = exposures if isinstance(exposures, bytes) else exposures.encode("utf-8")
    (tmp / "drug_exposure.csv").write_bytes(data)
    return tmp


def _refusal(site: Path) -> str:
    with pytest.raises(CohortError) as refused:
        run_cohort(site, site / "out", settings=SETTINGS, knowledge=K)
    message = str(refused.value)
    assert "\n" not in message and "expected" in message
    return message


@pytest.mark.parametrize(
    ("person", "row", "named"),
    [
        # before: DuckDB's ConversionException escaped (from the first query that read the column)
        (PERSON.replace("\n1,", "\nabc,"), f"1,1,2024-01-01,,30,30,{TABLET}", "column person_id: 'abc'"),
        (PERSON, f"1,1,01/02/2024x,,30,30,{TABLET}", "column drug_exposure_start_date: '01/02/2024x'"),
        (PERSON, f"1,1,2024-01-01,,30,3000000000,{TABLET}", "column days_supply: '3000000000'"),
        (PERSON, f"1,1,2024-01-01,,nan,30,{TABLET}", "column quantity: 'nan'"),  # NaN: cast to INT failed
        # before: accepted, read as person 2 (DuckDB rounds '1.5' to a whole number)
        (PERSON.replace("\n1,", "\n1.5,"), f"1,2,2024-01-01,,30,30,{TABLET}", "column person_id: '1.5'"),
        # before: DuckDB's OutOfRangeException (2024 - year_of_birth overflowed an INT)
        (PERSON.replace("1960", "-2147483648"), f"1,1,2024-01-01,,30,30,{TABLET}", "column year_of_birth"),
        # before: no answer after minutes (a lookup of every pair of years from year 1 to 9999)
        (PERSON, f"1,1,0001-01-01,,30,30,{TABLET}\n2,1,9999-01-01,,30,30,{TABLET}", "'0001-01-01'"),
        # before: Python's OverflowError (the episode ends after 9999-12-31)
        (PERSON, f"1,1,9999-12-20,,30,30,{TABLET}", "'9999-12-20'"),
        # before: accepted, and the person's every episode was written twice
        (PERSON + "1,8507,1970\n", f"1,1,2024-01-01,,30,30,{TABLET}", "column person_id: '1' is on 2 rows"),
    ],
)
def test_a_value_that_cannot_be_used_is_refused_by_name(tmp_path: Path, person: str, row: str, named: str) -> None:
    message = _refusal(_site(tmp_path, person, HEADER + row + "\n"))
    assert named in message and "table " in message


def test_a_broken_csv_row_is_refused_with_its_line(tmp_path: Path) -> None:
    # before: a row with a field too many made DuckDB's sniffer take that row as the header (then
    # "missing column(s)" named every column); a byte that is not UTF-8 raised its InvalidInputException
    site = _site(tmp_path / "ragged", PERSON, HEADER + f"1,1,2024-01-01,,30,30,{TABLET},extra\n")
    assert "drug_exposure.csv line 2: 8 fields where the header has 7" in _refusal(site)
    site = _site(tmp_path / "utf8", PERSON, (HEADER + "1,1,2024-01-01,,30,30,diaz").encode() + b"\xffepam\n")
    assert "drug_exposure.csv line 2: not UTF-8 text" in _refusal(site)


def test_huge_quantities_and_the_ends_of_the_date_span_are_computed(tmp_path: Path) -> None:
    # before: DuckDB's ConversionException (tablets a day, quantity / duration, overflowed an INT)
    rows = f"1,1,{FIRST_DATE},,1e12,1,{TABLET}\n2,1,{LAST_DATE},,1e300,365,{TABLET}\n3,1,2024-01-01,,-5,0,{TABLET}\n"
    site = _site(tmp_path, PERSON.replace("1960", str(FIRST_DATE.year)), HEADER + rows)
    result = run_cohort(site, site / "out", settings=SETTINGS, knowledge=K, fmt="csv")
    assert result.summary["episodes"] == 3


def test_ids_at_the_ends_of_bigint_split_into_groups_of_persons(tmp_path: Path) -> None:
    # before: DuckDB's OutOfRangeException in the histogram of person ids (hi - lo overflowed a BIGINT)
    low, high = -(2**63), 2**63 - 1
    person = f"person_id,gender_concept_id,year_of_birth\n{low},8532,1960\n{high},8507,1970\n"
    rows = f"1,{low},2024-01-01,,30,30,{TABLET}\n2,{high},2024-01-01,,30,30,{TABLET}\n3,{high},2024-06-01,,1,1,x\n"
    engine = DuckDBEngine(threads=1)
    engine.PART_ROWS = 1  # type: ignore[misc]  # one group per few rows, as a large input is taken
    try:
        result = run_cohort(_site(tmp_path, person, HEADER + rows), tmp_path / "out", engine, SETTINGS, K)
    finally:
        engine.close()
    assert result.summary["episodes"] == 2 and result.summary["users"] == 2


def test_tables_with_no_rows_or_none_of_the_columns_used_load(tmp_path: Path) -> None:
    # found by the fuzz in the new checks: a Parquet table of the used types (nothing to convert) and a
    # table holding none of the columns used made the check query invalid SQL (DuckDB's errors)
    pq.write_table(table_of([], "drug_exposure"), tmp_path / "drug_exposure.parquet")
    (tmp_path / "concept_ancestor.csv").write_text("x,y\n1,2\n")
    (tmp_path / "person.csv").write_text(PERSON)
    engine = DuckDBEngine(threads=1)
    try:
        assert load_tables(engine, tmp_path) == {"person", "drug_exposure", "concept_ancestor"}
        assert engine.rows("SELECT COUNT(*) FROM concept_ancestor")[1] == [(1,)]
    finally:
        engine.close()


def test_a_refusal_quoting_rich_markup_is_one_line_at_the_command_line(tmp_path: Path) -> None:
    # found by the command-line fuzz: clitools._fail prints the message as Rich markup, so a quoted
    # value such as '[/bold]' raised Rich's MarkupError (a traceback, exit 1)
    site = _site(tmp_path, PERSON.replace("\n1,", "\n[/bold],"), HEADER + f"1,1,2024-01-01,,30,30,{TABLET}\n")
    result = CliRunner().invoke(app, ["cohort", "run", str(site), "--out", str(tmp_path / "out")])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:") and "'[/bold]'" in lines[0]


def test_a_missing_required_table_is_named(tmp_path: Path) -> None:
    """load_tables on a folder (the fuzz loads one table at a time) names a missing required table."""
    with pytest.raises(CohortError, match="table person is missing"):
        load_tables(DuckDBEngine(threads=1), tmp_path)
