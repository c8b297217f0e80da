"""Back up and restore the clinic's database: SQLite's online backup API, or pg_dump/pg_restore for PostgreSQL.

A backup is one file: a SQLite database, or a pg_dump custom-format archive. Both commands report what
the file holds (rows per table), and a restore refuses to replace a database that holds records unless forced.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benzotaper.errors import BackupError

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"
ENGINES = {"sqlite3": "sqlite", "postgresql": "postgresql"}
SUMMARY = {
    "auth_user": "users",
    "clinic_careteam": "care teams",
    "clinic_patient": "patients",
    "clinic_regimen": "regimens",
    "clinic_plan": "plans",
    "clinic_level": "levels",
    "clinic_assessment": "assessments",
    "clinic_diaryentry": "diary entries",
    "clinic_auditentry": "audit entries",
}
COPY_HEADER = re.compile(r"^COPY (?:\"?[\w]+\"?\.)?\"?(\w+)\"? \(([^)]*)\) FROM stdin;$")


@dataclass(frozen=True, slots=True)
class Contents:
    """What a backup file holds: its engine, rows per table and the migrations applied to it."""

    engine: str
    counts: dict[str, int]
    migrations: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def summary(self) -> dict[str, int]:
        """The clinic's main counts under plain names (patients, plans, levels, audit entries...)."""
        return {label: self.counts.get(table, 0) for table, label in SUMMARY.items()}


def describe(counts: dict[str, int]) -> str:
    """One line such as '3 patients, 2 plans, 40 audit entries' from counts per table."""
    return ", ".join(f"{counts.get(table, 0)} {label}" for table, label in SUMMARY.items())


# --- the clinic's database ------------------------------------------------------------------------------


def clinic_database() -> dict[str, Any]:
    """Django's settings of the clinic's database (the data folder's SQLite, or DATABASE_URL)."""
    from benzotaper.web import server

    server.setup()
    from django.db import connections

    return dict(connections["default"].settings_dict)


def clinic_engine() -> str:
    """The engine of the clinic's database: 'sqlite' or 'postgresql'."""
    return engine_of(clinic_database())


def engine_of(db: dict[str, Any]) -> str:
    """'sqlite' or 'postgresql' for Django database settings."""
    return ENGINES[str(db["ENGINE"]).rsplit(".", 1)[-1]]


def record_counts() -> dict[str, int]:
    """Rows per table of the clinic's database that hold records (users and clinic tables), via Django."""
    from django.db import connection

    tables = [t for t in connection.introspection.table_names() if t == "auth_user" or t.startswith("clinic_")]
    with connection.cursor() as cursor:
        return {t: _count(cursor, connection.ops.quote_name(t)) for t in tables}


def _count(cursor: Any, quoted: str) -> int:
    cursor.execute(f"SELECT COUNT(*) FROM {quoted}")  # a quoted table name, never user text
    return int(cursor.fetchone()[0])


# --- backup -------------------------------------------------------------------------------------------


def backup(path: Path) -> dict[str, Any]:
    """Write a consistent copy of the clinic's database to `path` (atomically) and report what it holds."""
    db = clinic_database()
    engine = engine_of(db)
    target = _backup_target(path, db)
    partial = target.with_name(target.name + ".partial")
    started = time.perf_counter()
    try:
        _sqlite_backup(Path(db["NAME"]), partial) if engine == "sqlite" else _pg_dump(db, partial)
        contents = inspect(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return _report(target, contents, time.perf_counter() - started)


def _backup_target(path: Path, db: dict[str, Any]) -> Path:
    target = path.expanduser().resolve()
    if target.is_dir():
        raise BackupError(f"backup FILE {str(path)!r} is a folder; give a file name such as clinic.backup")
    if not target.parent.is_dir():
        raise BackupError(f"backup FILE {str(path)!r}: folder {str(target.parent)!r} does not exist")
    if engine_of(db) == "sqlite":
        source = Path(db["NAME"]).resolve()
        if not source.is_file():
            raise BackupError(f"no clinic database at {str(source)!r} (check BENZOTAPER_DATA_DIR); nothing to back up")
        if target == source:
            raise BackupError(f"backup FILE {str(path)!r} is the clinic's database itself; choose another file")
    return target


def _sqlite_backup(source: Path, target: Path) -> None:
    """SQLite's online backup, in one step: a snapshot that writers (WAL) need not wait for."""
    target.unlink(missing_ok=True)
    with closing(sqlite3.connect(source, timeout=30)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it


def _pg_dump(db: dict[str, Any], target: Path) -> None:
    _run_pg("pg_dump", ["--format=custom", "--no-owner", "--no-privileges", f"--file={target}"], db)


def _report(path: Path, contents: Contents, seconds: float) -> dict[str, Any]:
    return {
        "file": str(path),
        "engine": contents.engine,
        "bytes": path.stat().st_size,
        "seconds": round(seconds, 3),
        "counts": contents.counts,
        "summary": contents.summary(),
    }


# --- what a backup holds ------------------------------------------------------------------------------


def inspect(path: Path, engine: str | None = None) -> Contents:
    """Read a backup file through: its engine, rows per table and migrations; refused if not of `engine`."""
    kind = file_engine(path)
    if engine is not None:
        _refuse_mismatch(path, kind, engine)
    return _inspect_sqlite(path) if kind == "sqlite" else _inspect_pg(path)


def file_engine(path: Path) -> str:
    """'sqlite' or 'postgresql' from the file's first bytes; a clear error for anything else."""
    magic = _magic(path)
    if magic.startswith(SQLITE_MAGIC):
        return "sqlite"
    if magic.startswith(PG_MAGIC):
        return "postgresql"
    raise BackupError(
        f"backup FILE {str(path)!r} is not a benzotaper backup "
        "(accepted: a SQLite database or a pg_dump custom-format archive made by `benzotaper backup`)"
    )


def _magic(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise BackupError(f"backup FILE {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise BackupError(f"backup FILE {str(path)!r} is a folder, not a backup file") from None


def _inspect_sqlite(path: Path) -> Contents:
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)) as con:
            check = con.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"backup FILE {str(path)!r} is damaged (SQLite quick_check: {check})")
            names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            counts = {n: _count(con.cursor(), f'"{n}"') for n in sorted(names) if not n.startswith("sqlite_")}
            done = _sqlite_migrations(con) if "django_migrations" in counts else frozenset()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"backup FILE {str(path)!r} is damaged or not a SQLite database ({exc})") from None
    return _checked(path, Contents("sqlite", counts, done))


def _sqlite_migrations(con: sqlite3.Connection) -> frozenset[tuple[str, str]]:
    return frozenset((str(a), str(n)) for a, n in con.execute("SELECT app, name FROM django_migrations"))


def _inspect_pg(path: Path) -> Contents:
    """Stream the archive's data (pg_restore to stdout) and count rows per table: reads the whole file."""
    counts: dict[str, int] = {}
    done: set[tuple[str, str]] = set()
    for table, columns, row in _pg_rows(path):
        counts[table] = counts.get(table, 0) + (row is not None)
        if table == "django_migrations" and row is not None:
            values = dict(zip(columns, row.split("\t"), strict=False))
            done.add((values.get("app", ""), values.get("name", "")))
    return _checked(path, Contents("postgresql", dict(sorted(counts.items())), frozenset(done)))


def _pg_rows(path: Path) -> Iterator[tuple[str, list[str], str | None]]:
    """(table, columns, None) for each table's COPY data in a custom-format archive, then (table, columns, row)."""
    proc = _popen_pg("pg_restore", ["--data-only", "--file=-", str(path)])
    assert proc.stdout is not None
    table: str | None = None
    columns: list[str] = []
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        if table is None:
            match = COPY_HEADER.match(line)
            if match:
                table, columns = match.group(1), [c.strip().strip('"') for c in match.group(2).split(",")]
                yield table, columns, None
        elif line == "\\.":
            table = None
        else:
            yield table, columns, line
    _finish(proc, f"backup FILE {str(path)!r} is damaged")


def _checked(path: Path, contents: Contents) -> Contents:
    if "django_migrations" not in contents.counts or "clinic_patient" not in contents.counts:
        raise BackupError(
            f"backup FILE {str(path)!r} is a {contents.engine} database but not a benzotaper clinic "
            "(no django_migrations or clinic_patient table)"
        )
    return contents


# --- restore ------------------------------------------------------------------------------------------


def restore(path: Path, force: bool, contents: Contents | None = None) -> dict[str, Any]:
    """Replace the clinic's database with the backup, check the rows arrived, then apply newer migrations."""
    db = clinic_database()
    engine = engine_of(db)
    source = path.expanduser().resolve()
    contents = contents or inspect(source, engine)
    _refuse_mismatch(path, contents.engine, engine)
    _refuse_newer(path, contents)
    existing = record_counts()
    if not force and any(existing.values()):
        raise BackupError(
            f"the clinic's database already holds records ({describe(existing)}); "
            f"restoring {str(path)!r} would replace them: add --force to overwrite"
        )
    from django.db import connections

    connections.close_all()
    started = time.perf_counter()
    _sqlite_restore(source, Path(db["NAME"])) if engine == "sqlite" else _pg_restore(db, source)
    _verify(contents)
    from benzotaper.web import server

    server.migrate()
    report = _report(source, contents, time.perf_counter() - started)
    report["replaced"] = existing
    return report


def _refuse_mismatch(path: Path, kind: str, engine: str) -> None:
    if kind == engine:
        return
    uses = "PostgreSQL (DATABASE_URL is set)" if engine == "postgresql" else "SQLite (DATABASE_URL is not set)"
    raise BackupError(
        f"backup FILE {str(path)!r} is a {kind} backup but this clinic uses {uses}; "
        f"restore it into a clinic on {kind}"
    )


def _refuse_newer(path: Path, contents: Contents) -> None:
    from django.db.migrations.loader import MigrationLoader

    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    unknown = sorted(f"{app}.{name}" for app, name in contents.migrations - known)
    if unknown:
        raise BackupError(
            f"backup FILE {str(path)!r} was made by a newer benzotaper (migrations unknown here: "
            f"{', '.join(unknown[:5])}); upgrade benzotaper before restoring it"
        )


def _sqlite_restore(source: Path, target: Path) -> None:
    """Copy the backup's pages into the clinic's database file (other connections see the new content)."""
    backup_file = sqlite3.connect(f"file:{source}?mode=ro&immutable=1", uri=True)
    with closing(backup_file) as src, closing(sqlite3.connect(target, timeout=30)) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")


def _pg_restore(db: dict[str, Any], source: Path) -> None:
    """pg_restore in one transaction: the database is replaced entirely or left as it was."""
    options = ["--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"]
    _run_pg("pg_restore", [*options, str(source)], db)


def _verify(contents: Contents) -> None:
    """Every table of the backup has, after the restore, the rows the backup holds."""
    from django.db import connection

    with connection.cursor() as cursor:
        found = {t: _count(cursor, connection.ops.quote_name(t)) for t in contents.counts}
    wrong = {t: (n, found[t]) for t, n in contents.counts.items() if found[t] != n}
    if wrong:
        table, (want, got) = next(iter(wrong.items()))
        raise BackupError(f"restore incomplete: table {table} holds {got} rows, the backup {want}")


# --- PostgreSQL client programs -------------------------------------------------------------------------


def pg_program(name: str) -> str:
    """The newest installed pg_dump/pg_restore: Debian's versioned folders, then pg_config's, then PATH."""
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major, reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        folders.append(found.stdout.strip())
    for folder in [os.environ.get("BENZOTAPER_PG_BINDIR", ""), *folders]:
        candidate = Path(folder) / name
        if folder and candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise BackupError(f"{name} not found (install the PostgreSQL client programs, or set BENZOTAPER_PG_BINDIR)")


def _major(folder: str) -> float:
    version = Path(folder).parent.name
    return float(version) if re.fullmatch(r"\d+(\.\d+)?", version) else 0.0


def _pg_env(db: dict[str, Any]) -> dict[str, str]:
    """libpq's environment for the clinic's database: the password never appears on a command line."""
    env = dict(os.environ)
    values = {"PGHOST": db.get("HOST"), "PGPORT": db.get("PORT"), "PGUSER": db.get("USER")}
    values |= {"PGPASSWORD": db.get("PASSWORD"), "PGDATABASE": db.get("NAME"), "PGCONNECT_TIMEOUT": "10"}
    env.update({k: str(v) for k, v in values.items() if v})
    return env


def _run_pg(name: str, args: list[str], db: dict[str, Any]) -> None:
    program = pg_program(name)
    extra = [f"--dbname={db['NAME']}"]
    done = subprocess.run([program, *args, *extra], env=_pg_env(db), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{name} failed (exit {done.returncode}): {_first_error(done.stderr)}")


def _popen_pg(name: str, args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [pg_program(name), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
    )


def _finish(proc: subprocess.Popen[str], what: str) -> None:
    assert proc.stderr is not None
    message = proc.stderr.read()
    if proc.wait() != 0:
        raise BackupError(f"{what}: {_first_error(message)}")


def _first_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no message"])[0]
