"""`benzotaper backup` and `restore` on the configured engine (SQLite, or PostgreSQL when DATABASE_URL is set).

The end-to-end test backs up a clinic while `benzotaper serve` takes API writes, restores into a fresh data
folder (and, on PostgreSQL, a fresh database), and checks every write acknowledged before the backup began
is there, none made after it ended is, and the audit chain is the source's, entry for entry.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import pytest

from benzotaper.errors import BackupError
from benzotaper.web import models as m
from benzotaper.web.backup import PG_MAGIC, SQLITE_MAGIC, inspect

ENGINE = "postgresql" if os.environ.get("DATABASE_URL") else "sqlite"
BIN = Path(sys.executable).with_name("benzotaper")
TOKEN = "backup-test-" + "t" * 32
CLI_TIMEOUT_S = 120

# Run in a fresh data folder: migrate, a care team, a clinician with an API token, three audited patients.
SEED = """
import json, sys
from benzotaper.web import server
server.setup(); server.migrate()
from django.contrib.auth.models import User
from benzotaper.web import models as m
from benzotaper.web.api import token_digest
from benzotaper.web.audit import acting_as
team = m.CareTeam.objects.create(name="Backup ward")
user = User.objects.create_user("backup-clin", password=None)
m.Profile.objects.create(user=user, role="clinician").teams.add(team)
m.ApiToken.objects.create(user=user, digest=token_digest(sys.argv[1]), name="test")
with acting_as(user):
    ids = [m.Patient.objects.create(team=team, name=f"Backup {i}", birth_year=1960 + i).pk for i in range(3)]
print(json.dumps(ids))
"""


@dataclass
class Site:
    """One clinic: a data folder and its database (the folder's SQLite file, or its own PostgreSQL database)."""

    folder: Path
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
        """The benzotaper CLI (or a Python snippet) in this clinic's environment."""
        cmd = [sys.executable, "-c", code, *args] if code else [str(BIN), *args]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows straight from the database, without Django."""
        if self.url is None:
            with sqlite3.connect(self.folder / "clinic.sqlite3") as con:
                return list(con.execute(sql))
        import psycopg

        with psycopg.connect(self.url) as con:
            return list(con.execute(sql))  # a literal test query


def _admin_url() -> str:
    return os.environ["DATABASE_URL"]


def _with_db(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path="/" + name))


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(_admin_url(), autocommit=True) as con:
        con.execute(sql)  # a database name made by this test


@pytest.fixture
def make_site(tmp_path: Path) -> Iterator[Any]:
    """Makes fresh clinics (a data folder, and on PostgreSQL an empty database), dropped afterwards."""
    made: list[str] = []

    def make(name: str) -> Site:
        folder = tmp_path / name
        folder.mkdir()
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env |= {"BENZOTAPER_DATA_DIR": str(folder), "BENZOTAPER_ALLOWED_HOSTS": "127.0.0.1"}
        url = None
        if ENGINE == "postgresql":
            db = f"bt_backup_{name}_{secrets.token_hex(4)}"
            _pg_admin(f"CREATE DATABASE {db}")
            made.append(db)
            url = env["DATABASE_URL"] = _with_db(_admin_url(), db)
        return Site(folder, url, env)

    yield make
    for db in made:
        _pg_admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


# --- a server taking writes ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`benzotaper serve` on loopback in its own process group, stopped by its pid."""

    def __init__(self, site: Site) -> None:
        self.port = _free_port()
        args = [str(BIN), "serve", "--port", str(self.port), "--workers", "1", "--threads", "4"]
        self.log = (site.folder / "serve.log").open("w")
        self.proc = subprocess.Popen(args, env=site.env, stdout=self.log, stderr=self.log, start_new_session=True)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "benzotaper serve exited early"
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("benzotaper serve did not answer /healthz in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.log.close()


@dataclass
class Ack:
    """One write the server acknowledged (201): which table, its marker, when it was sent and answered."""

    table: str
    marker: str
    sent: float
    acked: float


def _write(server: Server, patient: int, n: int, worker: int) -> Ack:
    """A diary dose or a serum level (alternately), each carrying a unique marker."""
    marker = f"bk-{worker}-{n}"
    sent = time.monotonic()
    if n % 2:
        body = {"kind": "dose", "drug": "diazepam", "taken_mg": 5, "note": marker}
        status, _ = server.request("POST", f"/api/patients/{patient}/diary", body)
        table = "diary"
    else:
        at = f"2026-0{1 + n % 9}-{1 + n % 28:02d}T{n % 24:02d}:{worker:02d}:00"
        body = {"analyte": "diazepam", "sampled_at": at, "value": 250 + n % 50, "lab": marker}
        status, _ = server.request("POST", f"/api/patients/{patient}/levels", body)
        table = "level"
    assert status == 201, f"write {marker} answered {status}"
    return Ack(table, marker, sent, time.monotonic())


def _writer(server: Server, patients: list[int], worker: int, stop: threading.Event, acks: list[Ack]) -> None:
    for n in range(5000):  # bounded: ends long before this when the test stops it
        if stop.is_set():
            return
        acks.append(_write(server, patients[n % len(patients)], n, worker))


@dataclass
class LoadRun:
    """What happened during a backup under write load."""

    backup: dict[str, Any]
    acks: list[Ack]
    started: float
    ended: float
    errors: list[BaseException]


def _backup_under_load(site: Site, server: Server, patients: list[int], file: Path) -> LoadRun:
    acks: list[Ack] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def work(worker: int) -> None:
        try:
            _writer(server, patients, worker, stop, acks)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    while len(acks) < 100 and not stop.is_set():
        time.sleep(0.05)
    started = time.monotonic()
    done = site.run("backup", str(file), "--json")
    ended = time.monotonic()
    time.sleep(0.3)  # writes go on after the backup too: none of them may be in it
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert done.returncode == 0, done.stderr
    return LoadRun(json.loads(done.stdout), list(acks), started, ended, errors)


# --- reading the databases --------------------------------------------------------------------------


def _audit(site: Site) -> list[tuple[Any, ...]]:
    """The audit chain in id order, JSON columns decoded the same way on both engines."""
    rows = site.query("SELECT id, at, action, model, object_id, before, after FROM clinic_auditentry ORDER BY id")
    return [(*row[:5], _json(row[5]), _json(row[6])) for row in rows]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _markers(site: Site) -> set[tuple[str, str]]:
    diary = {("diary", r[0]) for r in site.query("SELECT note FROM clinic_diaryentry WHERE note LIKE 'bk-%'")}
    return diary | {("level", r[0]) for r in site.query("SELECT lab FROM clinic_level WHERE lab LIKE 'bk-%'")}


def _records(site: Site) -> set[tuple[str, str]]:
    """(model, id) of every patient, diary entry and level."""
    found: set[tuple[str, str]] = set()
    for model, table in (("Patient", "clinic_patient"), ("DiaryEntry", "clinic_diaryentry"), ("Level", "clinic_level")):
        found |= {(model, str(r[0])) for r in site.query(f"SELECT id FROM {table}")}
    return found


# --- the tests ----------------------------------------------------------------------------------------


def _sqlite_file(path: Path, tables: tuple[str, ...]) -> Path:
    with closing(sqlite3.connect(path)) as con:
        for table in tables:
            con.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
        con.commit()
    return path


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.backup", None, "does not exist"),
        ("notes.txt", b"patients: 3\n", "is not a benzotaper backup (accepted: a SQLite database or a pg_dump"),
        ("cut.backup", SQLITE_MAGIC + b"\x10\x00" * 60, "is damaged or not a SQLite database"),
        ("other.sqlite3", "tables", "is a sqlite database but not a benzotaper clinic"),
    ],
)
def test_a_file_that_is_not_a_clinic_backup_is_refused_by_name(
    tmp_path: Path, name: str, content: bytes | str | None, message: str
) -> None:
    path = tmp_path / name
    if content == "tables":
        _sqlite_file(path, ("notes",))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(BackupError, match=re.escape(f"backup FILE {str(path)!r}")) as caught:
        inspect(path, "sqlite")
    assert message in str(caught.value)


def test_a_backup_of_the_other_engine_is_refused_before_it_is_read(tmp_path: Path) -> None:
    if ENGINE == "sqlite":
        path, kind = tmp_path / "clinic.pgdump", "postgresql"
        path.write_bytes(PG_MAGIC + b"\x01\x0e\x00" + b"\x00" * 64)  # a header only: never read further
    else:
        path, kind = _sqlite_file(tmp_path / "clinic.sqlite3", ("django_migrations", "clinic_patient")), "sqlite"
    with pytest.raises(BackupError, match=f"is a {kind} backup but this clinic uses") as caught:
        inspect(path, ENGINE)
    assert "DATABASE_URL" in str(caught.value)


def test_a_record_and_its_audit_entry_commit_together(transactional_db: Any, monkeypatch: Any) -> None:
    """Outside a transaction, a record whose audit entry cannot be written is not kept (a backup never holds one)."""
    team = m.CareTeam.objects.create(name="Ward T")

    def audit_store_down(**_: Any) -> None:
        raise RuntimeError("audit store down")

    monkeypatch.setattr(m.AuditEntry.objects, "create", audit_store_down)
    with pytest.raises(RuntimeError, match="audit store down"):
        m.Patient.objects.create(team=team, name="Never Kept")
    assert not m.Patient.objects.filter(name="Never Kept").exists()


@pytest.mark.slow
def test_a_backup_under_write_load_restores_every_acknowledged_write_and_the_audit_chain(
    make_site: Any, tmp_path: Path
) -> None:
    source = make_site("source")
    seeded = source.run(TOKEN, code=SEED)
    assert seeded.returncode == 0, seeded.stderr
    patients = json.loads(seeded.stdout)
    server = Server(source)
    try:
        server.wait_ready()
        file = tmp_path / "clinic.backup"
        run = _backup_under_load(source, server, patients, file)
    finally:
        server.stop()
    assert not run.errors, run.errors
    before = {(a.table, a.marker) for a in run.acks if a.acked < run.started}
    after = {(a.table, a.marker) for a in run.acks if a.sent > run.ended}
    assert len(before) >= 100 and after, "the load must run before, during and after the backup"

    target = make_site("target")
    restored = target.run("restore", str(file), "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["counts"] == run.backup["counts"]

    found = _markers(target)
    assert before <= found, f"acknowledged before the backup but not restored: {sorted(before - found)[:5]}"
    assert not after & found, "writes made after the backup ended are in it"
    assert run.backup["summary"]["patients"] == 3
    assert run.backup["summary"]["diary entries"] + run.backup["summary"]["levels"] == len(found)

    chain, origin = _audit(target), {row[0]: row for row in _audit(source)}
    assert all(origin[row[0]] == row for row in chain), "a restored audit entry differs from the source's"
    created = {(row[3], row[4]) for row in chain if row[2] == "create"}
    assert _records(target) <= created, f"restored records without an audit entry: {sorted(_records(target) - created)}"
    acked_ids = _ids_of(source, before)
    missing = [row for row in origin.values() if row[0] < chain[-1][0] and row[0] not in {r[0] for r in chain}]
    assert not [row for row in missing if (row[3], row[4]) in acked_ids], "an acknowledged write's audit entry is lost"
    if ENGINE == "sqlite":  # writes are serialised: the restored chain is exactly a prefix of the source's
        assert [row[0] for row in chain] == sorted(origin)[: len(chain)]
    diary_rows = target.query(f"SELECT COUNT(*) FROM clinic_diaryentry WHERE patient_id = {patients[0]}")[0][0]
    _check_serves(target, patients[0], diary_rows)
    print(f"backup figures: {len(before)} acknowledged before, {len(found)} restored, {len(after)} after; {run.backup}")
    _check_refuses_without_force(target, file)


def _check_serves(site: Site, patient: int, diary_rows: int) -> None:
    """`benzotaper serve` starts on the restored database (migrations current) and the token still works."""
    server = Server(site)
    try:
        server.wait_ready()
        status, body = server.request("GET", f"/api/patients/{patient}/diary?limit=1000")
    finally:
        server.stop()
    assert status == 200, body[:200]
    assert json.loads(body)["count"] == diary_rows


def _check_refuses_without_force(site: Site, file: Path) -> None:
    refused = site.run("restore", str(file))
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "--force" in lines[0] and "patients" in lines[0], refused.stderr
    forced = site.run("restore", str(file), "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["replaced"]["clinic_patient"] == 3


def _ids_of(site: Site, markers: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """(model, id) of the records carrying the given markers, and of the seeded patients."""
    ids = {("Patient", str(r[0])) for r in site.query("SELECT id FROM clinic_patient")}
    for row in site.query("SELECT id, note FROM clinic_diaryentry"):
        if ("diary", row[1]) in markers:
            ids.add(("DiaryEntry", str(row[0])))
    for row in site.query("SELECT id, lab FROM clinic_level"):
        if ("level", row[1]) in markers:
            ids.add(("Level", str(row[0])))
    return ids
