"""The OMOP tables a cohort run reads: their columns and types, and the checks every value passes first.

Each table is exposed twice: `raw_<table>` as its file holds it (a CSV file as text) and `<table>`,
the typed projection the queries read (absent optional columns are NULL). Before the typed view
exists one scan checks every value of the columns used: a whole number where an id or a count is
expected, a finite number, a date within FIRST_DATE..LAST_DATE. A value that fails is refused with
the table, the column, the value, a row holding it and what is accepted, so no conversion can fail
later inside a query. The checks are plain SQL (`Dialect` spells the two functions that differ),
and a column whose file type is already the one used (a typed Parquet file) skips the scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benzotaper.cohort.engine import Dialect, Engine, Types, find_table
from benzotaper.cohort.settings import FIRST_DATE, LAST_DATE
from benzotaper.errors import CohortError

COLUMNS: dict[str, dict[str, str]] = {
    "person": {"person_id": "BIGINT", "gender_concept_id": "BIGINT", "year_of_birth": "INT"},
    "drug_exposure": {
        "drug_exposure_id": "BIGINT",
        "person_id": "BIGINT",
        "drug_concept_id": "BIGINT",
        "drug_exposure_start_date": "DATE",
        "drug_exposure_end_date": "DATE",
        "quantity": "DOUBLE",
        "days_supply": "INT",
        "sig": "TEXT",
        "route_concept_id": "BIGINT",
        "provider_id": "BIGINT",
        "drug_source_value": "TEXT",
        "route_source_value": "TEXT",
    },
    "concept": {
        "concept_id": "BIGINT",
        "concept_name": "TEXT",
        "vocabulary_id": "TEXT",
        "concept_class_id": "TEXT",
        "standard_concept": "TEXT",
        "concept_code": "TEXT",
    },
    "concept_ancestor": {"ancestor_concept_id": "BIGINT", "descendant_concept_id": "BIGINT"},
    "drug_strength": {
        "drug_concept_id": "BIGINT",
        "ingredient_concept_id": "BIGINT",
        "amount_value": "DOUBLE",
        "amount_unit_concept_id": "BIGINT",
        "numerator_value": "DOUBLE",
        "numerator_unit_concept_id": "BIGINT",
        "denominator_value": "DOUBLE",
        "denominator_unit_concept_id": "BIGINT",
    },
}
REQUIRED = {
    "person": ("person_id", "year_of_birth"),
    "drug_exposure": ("drug_exposure_id", "person_id", "drug_exposure_start_date"),
}
KEYS = {"person": "person_id", "drug_exposure": "drug_exposure_id", "concept": "concept_id"}  # named in refusals
UNIQUE = {"person": "person_id"}  # one row per key: a repeated person would repeat each of their episodes
RANGES = {("person", "year_of_birth"): (FIRST_DATE.year, LAST_DATE.year)}  # whole numbers with bounds
INT_RANGE = (-(2**31), 2**31 - 1)  # an INT column (32 bits on every engine)
UNKNOWN = ", or an empty field when unknown"
# The types a file may store for each type used (text is read as the value it spells).
FILE_KINDS = {
    "BIGINT": {"text", "integer", "real", "null"},
    "INT": {"text", "integer", "real", "null"},
    "DOUBLE": {"text", "integer", "real", "null"},
    "DATE": {"text", "date", "null"},
    "TEXT": {"text", "integer", "real", "date", "boolean", "null", "other"},
}
_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER"}
_INTEGERS |= {"UBIGINT", "UHUGEINT", "INT1", "INT2", "INT4", "INT8", "LONG", "SHORT", "BYTE"}


def file_kind(engine_type: str) -> str:
    """What an engine type holds: text, integer, real, date, boolean, null or other."""
    t = engine_type.upper()
    if t in ("VARCHAR", "STRING", "TEXT") or t.startswith(("VARCHAR(", "CHAR")):
        return "text"
    if t in _INTEGERS:
        return "integer"
    if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return "real"
    if t == "DATE" or t.startswith("TIMESTAMP"):
        return "date"
    return {"BOOLEAN": "boolean", "NULL": "null", "VOID": "null"}.get(t, "other")


@dataclass(frozen=True)
class Column:
    """One column used, as its file stores it: the SQL of its value, its typed value and its check.

    The check is written over three names the check query computes once per row (`Checks`): `v` the
    stored value (text trimmed), `t` the value in the type used and `d` the value as a DOUBLE. (One
    expression per column over those is several times quicker for DuckDB to plan than the same test
    spelled out in full, which matters for the many small files of the fuzz tests.)
    """

    table: str
    name: str
    portable: str
    file_type: str
    d: Dialect

    @property
    def text(self) -> bool:
        return file_kind(self.file_type) == "text"

    @property
    def value(self) -> str:
        """The stored value (text trimmed: blank text is an empty field, as is NULL)."""
        return f"trim({self.name})" if self.text else self.name

    @property
    def native(self) -> bool:
        """The file already stores the type used: no conversion."""
        return self.file_type.upper() == self.d.type(self.portable).upper()

    def typed(self, v: str | None = None) -> str:
        """The value in the type used (the check has refused every value that would not convert)."""
        if self.native:
            return v or self.name
        return self.d.try_cast(v or self.value, self.portable)

    @property
    def whole(self) -> bool:
        """A whole number converted from another type: its check compares it with the DOUBLE read (`d`)."""
        return self.portable in ("BIGINT", "INT") and not self.native

    @property
    def bounds(self) -> tuple[int, int] | None:
        if (self.table, self.name) in RANGES:
            return RANGES[(self.table, self.name)]
        return INT_RANGE if self.portable == "INT" and not self.native else None

    def bad(self, v: str, t: str, d: str) -> str | None:
        """SQL true on a refused value (given its stored value `v`, typed `t` and DOUBLE `d`); None when
        every value the file can store is accepted."""
        if self.portable in ("BIGINT", "INT"):
            tests = [f"{t} IS NULL", f"{d} IS DISTINCT FROM CAST({t} AS DOUBLE)"] if self.whole else []  # 1.5
            if (self.table, self.name) in RANGES:
                lo, hi = RANGES[(self.table, self.name)]
                tests += [f"{t} < {lo}", f"{t} > {hi}"]
        elif self.portable == "DOUBLE":
            tests = [f"{t} IS NULL", f"NOT {self.d.finite(t)}"]
        elif self.portable == "DATE":
            tests = [f"{t} IS NULL", f"{t} < DATE '{FIRST_DATE}'", f"{t} > DATE '{LAST_DATE}'"]
        else:
            return None
        if not tests:
            return None
        present = f"{v} <> ''" if self.text else f"{v} IS NOT NULL"
        return f"{present} AND ({' OR '.join(tests)})"

    @property
    def accepted(self) -> str:
        """The values accepted, in words."""
        if self.portable in ("BIGINT", "INT"):
            bounds = self.bounds
            words = f"a whole number from {bounds[0]} to {bounds[1]}" if bounds else "a whole number"
        elif self.portable == "DOUBLE":
            words = "a finite number such as 30 or 2.5"
        elif self.portable == "DATE":
            words = f"a date such as 2024-01-31, from {FIRST_DATE} to {LAST_DATE}"
        else:
            words = "text"
        return words + UNKNOWN


@dataclass(frozen=True)
class Checks:
    """The check of a raw view's columns as one query: per row, `b<i>` is true when column i's value
    is refused; `s<i>` (the value as text) and `k` (the row's key) ride along for the refusal."""

    raw: str
    columns: list[Column]  # those with a check
    key: str | None
    d: Dialect

    def rows(self, keep: Sequence[str] = (), detail: bool = False) -> str:
        """A subquery with the flags `b<i>`, the columns `keep` and, with `detail`, `s<i>` and `k`."""
        text = self.d.type("TEXT")
        cols = list(enumerate(self.columns))
        passed = [*keep, *(f"s{i}" for i, _ in cols), "k", "one"] if detail else [*keep, "one"]
        first = [f"{c.value} AS v{i}" for i, c in cols] + list(keep) + ["1 AS one"]  # never an empty list
        if detail:
            first += [f"CAST({c.name} AS {text}) AS s{i}" for i, c in cols]
            first.append(f"CAST({self.key} AS {text}) AS k" if self.key else "NULL AS k")
        second = [f"v{i}, {c.typed(f'v{i}')} AS t{i}" for i, c in cols]
        second += [f"{self.d.try_cast(f'v{i}', 'DOUBLE')} AS d{i}" for i, c in cols if c.whole]
        flags = [f"({c.bad(f'v{i}', f't{i}', f'd{i}')}) AS b{i}" for i, c in cols]
        a = f"SELECT {', '.join(first)} FROM {self.raw}"
        b = f"SELECT {', '.join(second + passed)} FROM ({a}) a"
        return f"SELECT {', '.join(flags + passed)} FROM ({b}) b"


def load_tables(engine: Engine, source: Path) -> set[str]:
    """Expose the OMOP tables of a folder or DuckDB file as typed views, every value checked; return those present."""
    if not source.exists():
        raise CohortError(f"input {source} does not exist (expected a folder of Parquet/CSV files or a DuckDB file)")
    return {table for table in COLUMNS if load_table(engine, source, table)}


def load_table(engine: Engine, source: Path, table: str) -> bool:
    """Expose one table as view `table` after checking its columns and values; False when it is absent
    (and optional)."""
    types = _open(engine, source, table)
    if types is None:
        if table in REQUIRED:
            raise CohortError(
                f"table {table} is missing from {source}: expected {table}.parquet, {table}/ (Parquet files), "
                f"{table}.csv or a table in the DuckDB file"
            )
        return False
    missing = [c for c in REQUIRED.get(table, ()) if c not in types]
    if table == "drug_exposure" and "drug_concept_id" not in types and "drug_source_value" not in types:
        missing.append("drug_concept_id or drug_source_value")
    if missing:
        found = shown(", ".join(types), limit=120)
        raise CohortError(
            f"table {table}: missing column(s) {', '.join(missing)}: expected OMOP CDM v5.4 column names in the"
            f" header (found {found})"
        )
    columns = [Column(table, n, p, types[n], engine.dialect) for n, p in COLUMNS[table].items() if n in types]
    _check_kinds(columns)
    _check_values(engine, table, columns)
    engine.view(table, typed_sql(f"raw_{table}", table, columns, engine.dialect))
    if table in UNIQUE:
        _check_unique(engine, table, UNIQUE[table])
    return True


def _open(engine: Engine, source: Path, table: str) -> Types | None:
    if not source.is_dir():
        return engine.load_database_table(f"raw_{table}", source, table)
    found = find_table(source, table)
    return engine.load(f"raw_{table}", *found) if found else None


def _check_kinds(columns: list[Column]) -> None:
    """A column stored as a type that cannot hold the values used (a date as a number, an id as a date)."""
    for c in columns:
        if file_kind(c.file_type) not in FILE_KINDS[c.portable]:
            raise CohortError(f"table {c.table}, column {c.name}: stored as {c.file_type}: expected {c.accepted}")


def _check_values(engine: Engine, table: str, columns: list[Column]) -> None:
    """One scan flagging the refused values of each column (and reading every text column and row, so
    that a file that cannot be read fails here); on a refusal, a second query finds an example."""
    raw, key = f"raw_{table}", KEYS.get(table)
    checks = Checks(raw, [c for c in columns if c.bad("v", "t", "d") is not None], key, engine.dialect)
    reads = [c.name for c in columns if c.text and c not in checks.columns]
    flags = [f"bool_or(b{i})" for i in range(len(checks.columns))]
    counts = [f"COUNT({name})" for name in reads]
    found = engine.check(raw, f"SELECT {', '.join([*flags, *counts, 'COUNT(*)'])} FROM ({checks.rows(reads)}) c")
    for i, (c, refused) in enumerate(zip(checks.columns, found[1][0], strict=False)):
        if refused:
            n, value, example = engine.check(
                raw, f"SELECT COUNT(*), MIN(s{i}), min_by(k, s{i}) FROM ({checks.rows(detail=True)}) c WHERE b{i}"
            )[1][0]
            rows = f"{int(n)} row{'s' if n > 1 else ''}"
            where = f"the row with {key} {shown(example)}; {rows} in all" if example and key != c.name else rows
            raise CohortError(
                f"table {c.table}, column {c.name}: {shown(value)} ({where}) is not accepted: "
                f"expected {c.accepted}"
            )


def _check_unique(engine: Engine, table: str, key: str) -> None:
    text = engine.dialect.type("TEXT")
    found = engine.check(
        f"raw_{table}",
        f"SELECT CAST({key} AS {text}), COUNT(*) FROM {table} WHERE {key} IS NOT NULL GROUP BY {key} "
        "HAVING COUNT(*) > 1 ORDER BY 2 DESC, 1 LIMIT 1",
    )[1]
    if found:
        value, n = found[0]
        raise CohortError(
            f"table {table}, column {key}: {shown(value)} is on {int(n)} rows: expected one row per {key} (the key)"
        )


def typed_sql(raw: str, table: str, columns: list[Column], d: Dialect) -> str:
    """The typed projection of a raw view: every column of COLUMNS[table], NULL where the file lacks it."""
    present = {c.name: c for c in columns}
    parts = []
    for name, portable in COLUMNS[table].items():
        expr = present[name].typed() if name in present else f"CAST(NULL AS {d.type(portable)})"
        parts.append(f"{expr} AS {name}")
    return f"SELECT {', '.join(parts)} FROM {raw}"


def shown(value: object, limit: int = 40) -> str:
    """A value as a refusal quotes it: on one line (repr), cut after `limit` characters."""
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")
