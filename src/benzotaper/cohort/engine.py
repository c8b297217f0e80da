"""The thin engine layer: load OMOP tables, run one SQL text, fetch and write results.

Everything engine-specific lives here: how files are read, the handful of SQL functions whose
spelling differs (`Dialect`), how tables are materialised. The indicator SQL itself (queries.py)
is written once and runs unchanged on DuckDB and Spark.
"""

from __future__ import annotations

import csv
import os
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
    def load(self, name: str, path: Path, fmt: str) -> list[str]:
        """Expose a file (or folder) as view `name`; return its column names (lower case)."""

    @abstractmethod
    def load_database_table(self, name: str, database: Path, table: str) -> list[str] | None:
        """Expose a table of an existing database as view `name`; None when absent."""

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
        self.con = duckdb.connect(":memory:")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        if temp_dir:
            self.con.execute(f"SET temp_directory = '{temp_dir}'")
        self.con.execute("SET preserve_insertion_order = false")

    def load(self, name: str, path: Path, fmt: str) -> list[str]:
        where = f"{path}/*.parquet" if path.is_dir() else str(path)
        if fmt == "parquet":
            reader = f"read_parquet('{_quote(where)}')"
        else:
            reader = f"read_csv('{_quote(where)}', header = true, all_varchar = true)"
        self.view(name, f"SELECT * FROM {reader}")
        return [c.lower() for c in self.rows(f"SELECT * FROM {name} LIMIT 0")[0]]

    def load_database_table(self, name: str, database: Path, table: str) -> list[str] | None:
        if "srcdb" not in {r[0] for r in self.con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}:
            self.con.execute(f"ATTACH '{_quote(str(database))}' AS srcdb (READ_ONLY)")
        found = self.con.execute(
            "SELECT schema_name FROM duckdb_tables() WHERE database_name = 'srcdb' AND lower(table_name) = ?",
            [table],
        ).fetchall()
        if not found:
            return None
        self.view(name, f'SELECT * FROM srcdb."{found[0][0]}"."{table}"')
        return [c.lower() for c in self.rows(f"SELECT * FROM {name} LIMIT 0")[0]]

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

    def load(self, name: str, path: Path, fmt: str) -> list[str]:
        reader = self.spark.read
        df = reader.parquet(str(path)) if fmt == "parquet" else reader.option("header", "true").csv(str(path))
        df.createOrReplaceTempView(name)
        return [c.lower() for c in df.columns]

    def view(self, name: str, sql: str) -> None:
        self.spark.sql(sql).createOrReplaceTempView(name)

    def load_database_table(self, name: str, database: Path, table: str) -> list[str] | None:
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


def make_engine(name: str, threads: int | None = None, memory_limit: str | None = None) -> Engine:
    """`duckdb` (default) or `spark`; a clear error for anything else."""
    if name == "duckdb":
        return DuckDBEngine(threads=threads, memory_limit=memory_limit)
    if name == "spark":
        return SparkEngine(partitions=threads * 4 if threads else None)
    raise CohortError(f"--engine must be duckdb or spark (got {name!r})")
