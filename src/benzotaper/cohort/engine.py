"""The thin engine layer: load OMOP tables, run one SQL text, fetch and write results.

Everything engine-specific lives here: how files are read, the handful of SQL functions whose
spelling differs (`Dialect`), how tables are materialised. The indicator SQL itself (queries.py)
is written once and runs unchanged on DuckDB and Spark.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from benzotaper.errors import CohortError

Rows = list[tuple[Any, ...]]
Columns = Sequence[tuple[str, str]]  # (name, portable type: BIGINT, INT, DOUBLE, DATE, TEXT, BOOLEAN)
Types = dict[str, str]  # a loaded table's columns: lower-case name -> the engine's type name, in file order
DELIMITERS = (",", "\t", ";", "|")  # a CSV file's delimiter: the one its header line holds most often
HEADER_BYTES = 1 << 20  # a header line longer than this is not a header
CSV_FORM = "a CSV file (UTF-8, a header line, one field per header column)"
SMALL_CSV = 64 << 20  # bytes: a CSV file up to this size is parsed once (DuckDB reads it into a table)


@dataclass(frozen=True)
class Dialect:
    """The few SQL spellings that differ between engines; queries call these instead."""

    name: str

    def days(self, start: str, end: str) -> str:
        """Whole days from `start` to `end` (end - start)."""
        if self.name == "spark":
            return f"datediff({end}, {start})"
        return f"({end} - {start})"  # DATE - DATE: whole days (BIGINT), cheaper than date_diff

    def add_days(self, day: str, n: str) -> str:
        """`day` plus `n` days, a DATE."""
        if self.name == "spark":
            return f"date_add({day}, CAST({n} AS INT))"
        return f"CAST({day} + CAST({n} AS INTEGER) AS DATE)"

    def bits(self, column: str, shift: int | str, width: int) -> str:
        """The `width` bits of a whole number from bit `shift` (a number or an expression) up."""
        mask = (1 << width) - 1
        if self.name == "spark":
            return f"(shiftright({column}, {shift}) & {mask})"
        return f"(({column} >> {shift}) & {mask})"

    def sorted_set(self, column: str) -> str:
        """Distinct values of a text column, sorted, joined by commas (aggregate)."""
        if self.name == "spark":
            return f"array_join(array_sort(collect_set({column})), ',')"
        return f"array_to_string(list_sort(list_distinct(list({column}))), ',')"

    def type(self, portable: str) -> str:
        """Engine type name for a portable one."""
        if self.name == "spark":
            return {"TEXT": "STRING", "INT": "INT"}.get(portable, portable)
        return {"TEXT": "VARCHAR", "INT": "INTEGER"}.get(portable, portable)

    def try_cast(self, expr: str, portable: str) -> str:
        """`expr` as the portable type, NULL where it cannot be (Spark's CAST does that with ANSI off)."""
        if self.name == "spark":
            return f"CAST({expr} AS {self.type(portable)})"
        return f"TRY_CAST({expr} AS {self.type(portable)})"

    def finite(self, expr: str) -> str:
        """True when the DOUBLE `expr` is neither NaN nor infinite."""
        if self.name == "spark":
            return f"(({expr}) - ({expr}) = 0)"  # NaN - NaN and inf - inf are NaN
        return f"isfinite({expr})"


def _arrow_type(portable: str) -> pa.DataType:
    return {
        "BIGINT": pa.int64(),
        "INT": pa.int32(),
        "DOUBLE": pa.float64(),
        "DATE": pa.date32(),
        "TEXT": pa.string(),
        "BOOLEAN": pa.bool_(),
    }[portable]


def arrow_table(columns: Columns, rows: Rows) -> pa.Table:
    """A small Python table as Arrow with explicit types (engines then agree on them)."""
    arrays = [pa.array([r[i] for r in rows], type=_arrow_type(t)) for i, (_, t) in enumerate(columns)]
    return pa.Table.from_arrays(arrays, names=[n for n, _ in columns])


def find_table(source: Path, name: str) -> tuple[Path, str] | None:
    """`name`.parquet, a folder of Parquet files, `name`.csv or `name`.csv.gz inside `source`."""
    for candidate, fmt in (
        (source / f"{name}.parquet", "parquet"),
        (source / name, "parquet"),
        (source / f"{name}.csv", "csv"),
        (source / f"{name}.csv.gz", "csv"),
    ):
        if candidate.is_file() or (candidate.is_dir() and any(candidate.glob("*.parquet"))):
            return candidate, fmt
    return None


class Engine(ABC):
    """One SQL engine: DuckDB (embedded, default) or Spark."""

    dialect: Dialect

    @abstractmethod
    def load(self, name: str, path: Path, fmt: str) -> Types:
        """Expose a file (or folder) as view `name`; return its columns (lower-case names) and their types."""

    @abstractmethod
    def load_database_table(self, name: str, database: Path, table: str) -> Types | None:
        """Expose a table of an existing database as view `name`; None when absent."""

    def check(self, name: str, sql: str) -> tuple[list[str], Rows]:
        """Run the load-time check of view `name` (its first full read): a file that cannot be read
        raises a CohortError naming the file and the line."""
        return self.rows(sql)

    @abstractmethod
    def create(self, name: str, sql: str) -> None:
        """Materialise the result of `sql` as table `name` (replacing it)."""

    def view(self, name: str, sql: str) -> None:
        """Expose `sql` as `name` without computing it (input projections)."""
        self.create(name, sql)

    @abstractmethod
    def drop(self, name: str) -> None:
        """Forget table or view `name` and free its memory (an intermediate no later query reads)."""

    def parts(self, rows: int) -> int:
        """In how many groups of persons to derive episodes from `rows` prescriptions (1: all at once)."""
        return 1

    @abstractmethod
    def rows(self, sql: str) -> tuple[list[str], Rows]:
        """Run a query and return its column names and rows (for small results)."""

    @abstractmethod
    def put(self, name: str, table: pa.Table) -> None:
        """Register a small Arrow table (lookups built in Python) as table `name`."""

    @abstractmethod
    def arrow(self, sql: str) -> pa.Table:
        """Run a query and return it as Arrow (for writing outputs)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine."""

    def write(self, sql: str, path: Path, order: Sequence[tuple[str, str]] = ()) -> int:
        """Write a query result to `path` (.parquet or .csv) in one portable schema and order."""
        table = portable(self.arrow(sql))
        if order:
            table = table.sort_by(list(order))
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".parquet":
            pq.write_table(table, path)
        else:
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(table.column_names)
                writer.writerows(_csv_rows(table))
        return int(table.num_rows)


def portable(table: pa.Table) -> pa.Table:
    """One schema whatever the engine: whole numbers int64, reals float64, all columns nullable."""
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_integer(t) or (pa.types.is_decimal(t) and t.scale == 0):
            t = pa.int64()
        elif pa.types.is_floating(t) or pa.types.is_decimal(t):
            t = pa.float64()
        elif pa.types.is_large_string(t):
            t = pa.string()
        fields.append(pa.field(f.name, t, nullable=True))
    return table.cast(pa.schema(fields))


def _csv_rows(table: pa.Table) -> Iterator[list[object]]:
    for row in table.to_pylist():
        yield [_csv_value(v) for v in row.values()]


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 6))
    return value


class DuckDBEngine(Engine):
    """DuckDB, embedded; spills to a temporary folder beyond `memory_limit`."""

    PART_ROWS = 25_000_000

    def __init__(self, threads: int | None = None, memory_limit: str | None = None, temp_dir: Path | None = None):
        import duckdb

        self.dialect = Dialect("duckdb")
        self._views: set[str] = set()
        self._files: dict[str, Path] = {}  # view -> the file it reads (for load-time error messages)
        self.con = duckdb.connect(":memory:")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        if temp_dir:
            self.con.execute(f"SET temp_directory = '{temp_dir}'")
        self.con.execute("SET preserve_insertion_order = false")

    def load(self, name: str, path: Path, fmt: str) -> Types:
        """Parquet as it is; CSV as text, with the header and delimiter read here (no sniffing: the
        same file always reads the same way, and a malformed row is an error naming its line)."""
        import duckdb

        where = f"{path}/*.parquet" if path.is_dir() else str(path)
        self._files[name] = path
        if fmt == "csv":
            names, delim = csv_header(path)
            columns = ", ".join(f"'{_quote(n)}': 'VARCHAR'" for n in names)
            reader = (
                f"read_csv('{_quote(where)}', auto_detect = false, header = true, delim = '{_quote(delim)}',"
                f" quote = '\"', escape = '\"', columns = {{{columns}}})"
            )
            try:  # a small file is read once, into a table; a large one on every query that reads it
                (self.create if path.stat().st_size <= SMALL_CSV else self.view)(name, f"SELECT * FROM {reader}")
            except duckdb.Error as exc:
                raise CohortError(file_problem(path, str(exc), CSV_FORM)) from None
            return dict.fromkeys(names, "VARCHAR")
        try:
            self.view(name, f"SELECT * FROM read_parquet('{_quote(where)}')")
            return self._types(name)
        except duckdb.Error as exc:
            raise CohortError(file_problem(path, str(exc), "a Parquet file")) from None

    def check(self, name: str, sql: str) -> tuple[list[str], Rows]:
        import duckdb

        try:
            return self.rows(sql)
        except duckdb.Error as exc:
            path = self._files.get(name)
            if path is None:
                raise
            raise CohortError(file_problem(path, str(exc), CSV_FORM if _is_csv(path) else "a Parquet file")) from None

    def _types(self, name: str) -> Types:
        return {str(r[0]).lower(): str(r[1]) for r in self.con.execute(f"DESCRIBE {name}").fetchall()}

    def load_database_table(self, name: str, database: Path, table: str) -> Types | None:
        if "srcdb" not in {r[0] for r in self.con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}:
            self.con.execute(f"ATTACH '{_quote(str(database))}' AS srcdb (READ_ONLY)")
        found = self.con.execute(
            "SELECT schema_name FROM duckdb_tables() WHERE database_name = 'srcdb' AND lower(table_name) = ?",
            [table],
        ).fetchall()
        if not found:
            return None
        self.view(name, f'SELECT * FROM srcdb."{found[0][0]}"."{table}"')
        return self._types(name)

    def create(self, name: str, sql: str) -> None:
        if name in self._views:
            self.drop(name)
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")

    def view(self, name: str, sql: str) -> None:
        if name not in self._views:
            self.drop(name)
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
        self._views.add(name)

    def drop(self, name: str) -> None:
        kind = "VIEW" if name in self._views else "TABLE"
        self._views.discard(name)
        self.con.execute(f"DROP {kind} IF EXISTS {name}")

    def parts(self, rows: int) -> int:
        """Groups of at most PART_ROWS prescriptions: each group's joins and windows stay in memory."""
        return max(1, -(-rows // self.PART_ROWS))

    def write(self, sql: str, path: Path, order: Sequence[tuple[str, str]] = ()) -> int:
        """Parquet straight from DuckDB (COPY), never through Python memory; CSV via the common path."""
        if path.suffix != ".parquet":
            return super().write(sql, path, order)
        path.parent.mkdir(parents=True, exist_ok=True)
        described = self.con.execute(f"DESCRIBE SELECT * FROM ({sql}) q").fetchall()
        cols = ", ".join(f'CAST("{name}" AS {_portable_duck(kind)}) AS "{name}"' for name, kind, *_ in described)
        keys = ", ".join(f'"{k}" {"DESC" if d == "descending" else "ASC"}' for k, d in order)
        ordered = f" ORDER BY {keys}" if keys else ""
        self.con.execute(
            f"COPY (SELECT {cols} FROM ({sql}) q{ordered}) TO '{_quote(str(path))}' (FORMAT parquet)"
        ).fetchall()
        return int(self.con.execute(f"SELECT COUNT(*) FROM read_parquet('{_quote(str(path))}')").fetchall()[0][0])

    def rows(self, sql: str) -> tuple[list[str], Rows]:
        cur = self.con.execute(sql)
        cols = [d[0] for d in cur.description or []]
        return cols, [tuple(r) for r in cur.fetchall()]

    def put(self, name: str, table: pa.Table) -> None:
        self.con.register(f"{name}_arrow", table)
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name}_arrow")
        self.con.unregister(f"{name}_arrow")

    def arrow(self, sql: str) -> pa.Table:
        rel = self.con.sql(sql)
        fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
        result = fetch()
        return result if isinstance(result, pa.Table) else pa.table(result)

    def close(self) -> None:
        self.con.close()


class SparkEngine(Engine):
    """PySpark: `local[*]` by default; any cluster through `master` or SPARK_MASTER."""

    def __init__(self, master: str | None = None, driver_memory: str = "4g", partitions: int | None = None):
        from pyspark.sql import SparkSession

        self.dialect = Dialect("spark")
        master = master or os.environ.get("SPARK_MASTER", "local[*]")
        builder = (
            SparkSession.builder.master(master)
            .appName("benzotaper-cohort")
            .config("spark.driver.memory", driver_memory)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.ansi.enabled", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.driver.extraJavaOptions", "-Dderby.system.home=/tmp")
        )
        local = master.startswith("local")
        builder = builder.config("spark.sql.shuffle.partitions", str(partitions or (8 if local else 200)))
        self.spark = builder.getOrCreate()
        self.spark.sparkContext.setLogLevel("ERROR")
        self._cached: dict[str, Any] = {}

    def load(self, name: str, path: Path, fmt: str) -> Types:
        reader = self.spark.read
        df = reader.parquet(str(path)) if fmt == "parquet" else reader.option("header", "true").csv(str(path))
        df.createOrReplaceTempView(name)
        return {c.lower(): t for c, t in df.dtypes}

    def view(self, name: str, sql: str) -> None:
        self.spark.sql(sql).createOrReplaceTempView(name)

    def load_database_table(self, name: str, database: Path, table: str) -> Types | None:
        raise CohortError(
            f"--engine spark reads Parquet or CSV, not a DuckDB database (got {database}); "
            "export the tables with DuckDB's COPY ... TO 'x.parquet' first"
        )

    def create(self, name: str, sql: str) -> None:
        """Computed now and kept as a local checkpoint (memory, then disk): later queries read the rows
        themselves, not a cached plan (Spark does not look cached plans up inside WITH clauses)."""
        df = self.spark.sql(sql).localCheckpoint(eager=True)
        df.createOrReplaceTempView(name)
        self._cached[name] = df

    def drop(self, name: str) -> None:
        self._cached.pop(name, None)  # its blocks go when Spark's cleaner finds them unreferenced
        self.spark.catalog.dropTempView(name)

    def rows(self, sql: str) -> tuple[list[str], Rows]:
        df = self.spark.sql(sql)
        return list(df.columns), [tuple(r) for r in df.collect()]

    def put(self, name: str, table: pa.Table) -> None:
        rows = [tuple(r.values()) for r in table.to_pylist()]
        df = self.spark.createDataFrame(rows, self._schema(table))
        df.createOrReplaceTempView(name)
        self._cached[name] = df

    def _schema(self, table: pa.Table) -> Any:
        from pyspark.sql.types import (
            BooleanType,
            DateType,
            DoubleType,
            IntegerType,
            LongType,
            StringType,
            StructField,
            StructType,
        )

        kinds = {
            pa.int64(): LongType(),
            pa.int32(): IntegerType(),
            pa.float64(): DoubleType(),
            pa.date32(): DateType(),
            pa.string(): StringType(),
            pa.bool_(): BooleanType(),
        }
        return StructType([StructField(f.name, kinds[f.type], True) for f in table.schema])

    def arrow(self, sql: str) -> pa.Table:
        df = self.spark.sql(sql)
        return df.toArrow()

    def close(self) -> None:
        self._cached.clear()
        jvm = self.spark.sparkContext._jvm
        if jvm is not None:
            jvm.System.gc()  # Spark's cleaner then frees the checkpoints' blocks


def _portable_duck(kind: str) -> str:
    """DuckDB column type -> the portable output type (as `portable` does for Arrow)."""
    upper = kind.upper()
    if upper in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER"):
        return "BIGINT"
    if upper.startswith("DECIMAL") and upper.endswith(",0)"):
        return "BIGINT"
    if upper in ("FLOAT", "DOUBLE", "REAL") or upper.startswith("DECIMAL"):
        return "DOUBLE"
    return kind


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _is_csv(path: Path) -> bool:
    return path.name.endswith((".csv", ".csv.gz"))


def csv_header(path: Path) -> tuple[list[str], str]:
    """The column names on a CSV file's first line (lower case, blanks and repeats given a name of
    their own) and its delimiter: the one of DELIMITERS the line holds most often (comma on a tie)."""
    line = _first_line(path)
    if not line.strip():
        raise CohortError(f"{path.name} line 1 is empty: expected a header line naming the columns (OMOP CDM v5.4)")
    delim = max(DELIMITERS, key=line.count)
    try:
        fields = next(csv.reader([line], delimiter=delim))
    except (csv.Error, StopIteration) as exc:
        raise CohortError(f"{path.name} line 1 is not a CSV header ({exc}): expected column names") from None
    names: list[str] = []
    for i, field in enumerate(fields):
        base = field.strip().lower() or f"column{i}"
        name, n = base, 0
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names, delim


def _first_line(path: Path) -> str:
    """The first line of a CSV file (gzipped when its name ends in .gz), without a byte order mark."""
    try:
        with gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb") as handle:
            head = handle.read(HEADER_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        expected = "a gzip-compressed CSV file" if path.name.endswith(".gz") else "a CSV file"
        raise CohortError(f"{path.name} cannot be read ({exc}): expected {expected}") from None
    first, newline, _ = head.partition(b"\n")
    if not newline and len(head) == HEADER_BYTES:
        raise CohortError(f"{path.name} line 1 is over {HEADER_BYTES:,} bytes: expected a header line of column names")
    try:
        return first.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise CohortError(
            f"{path.name} line 1 is not UTF-8 text (byte {exc.start + 1}): expected a UTF-8 CSV file"
        ) from None


_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_CSV_FIELDS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def file_problem(path: Path, message: str, expected: str) -> str:
    """One line for a file the engine could not read: the file, the line when known, what is wrong
    and what is accepted (from DuckDB's message, whose own wording names no accepted form)."""
    line = _CSV_LINE.search(message)
    where = f"{path.name} line {line.group(1)}" if line else path.name
    fields = _CSV_FIELDS.search(message)
    if fields:
        return (
            f"{where}: {fields.group(2)} fields where the header has {fields.group(1)}: expected one field per "
            "header column (quote a field that holds the delimiter, a quote or a line break)"
        )
    if "Invalid unicode" in message:
        return f"{where}: not UTF-8 text: expected {expected} saved as UTF-8"
    if "unterminated quote" in message:
        return f"{where}: a quote is opened and never closed: expected a quoted field to end with a quote"
    reason = next((ln for ln in message.splitlines() if ln.strip() and not ln.startswith("Original Line")), message)
    reason = reason.split(": ", 1)[-1] if reason.split(": ", 1)[0].endswith("Error") else reason
    return f"{where} cannot be read ({reason.strip()[:200]}): expected {expected}"


def make_engine(name: str, threads: int | None = None, memory_limit: str | None = None) -> Engine:
    """`duckdb` (default) or `spark`; a clear error for anything else."""
    if name == "duckdb":
        return DuckDBEngine(threads=threads, memory_limit=memory_limit)
    if name == "spark":
        return SparkEngine(partitions=threads * 4 if threads else None)
    raise CohortError(f"--engine must be duckdb or spark (got {name!r})")
