"""Crash safety of writes (issue 19 section 4): concurrent API writers while the server is SIGKILLed and restarted.

1. A fresh data folder (SQLite, WAL) or an EMPTY PostgreSQL database (--database-url) gets a care team,
   --writers clinicians with an API token each and --patients patients.
2. `benzotaper serve` runs on loopback in its own process group. --writers threads each send writes in a
   closed loop, cycling diary doses, levels and scores (POST /api/patients/{id}/diary, /levels, /assessments),
   every write with its own Idempotency-Key and a marker in its body (diary note, level lab, score time).
   A write that meets a connection error, a timeout or a 5xx is sent again with the SAME key and body until
   it is acknowledged (2xx) or --give-up-s passes. Every --double-every'th write is sent twice at once on
   two connections (a double tap), which must also record once.
3. --kills times, evenly spread over --seconds, the whole process group (gunicorn master and workers) is
   killed with SIGKILL; the server is started again on the same port at once.
4. After the run the server is stopped and the database read directly: per write, how many records carry
   its marker. Printed: writes attempted, acknowledged, found, duplicated (more than one record), lost
   (acknowledged, no record), recorded without an acknowledgement (the run ended first), retries, replays
   (answers marked Idempotent-Replayed), kills, time.

    .venv/bin/python bench/web_crash.py --json                          # SQLite, the documented run
    bash scripts/with-postgres.sh sh -c '.venv/bin/python bench/web_crash.py --database-url "$DATABASE_URL"'
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).with_name("benzotaper")
KINDS = ("diary", "levels", "assessments")
BASE_TIME = datetime(2020, 1, 1)  # score times are BASE_TIME + a write's number in seconds: its marker


def log(msg: str) -> None:
    sys.stderr.write(f"[web_crash {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# --- the clinic -------------------------------------------------------------------------------------------


def env_for(folder: Path, url: str | None) -> dict[str, str]:
    """The environment `benzotaper serve` and this process share: data folder and database."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env |= {"BENZOTAPER_DATA_DIR": str(folder), "BENZOTAPER_ALLOWED_HOSTS": "127.0.0.1"}
    if url:
        env["DATABASE_URL"] = url
    return env


def seed(writers: int, patients: int) -> tuple[list[str], list[int]]:
    """A team, one clinician and token per writer, and patients; returns the tokens and patient ids."""
    from benzotaper.web import server

    server.setup()
    server.migrate()
    from django.contrib.auth.models import User

    from benzotaper.web import models as m
    from benzotaper.web.api import token_digest
    from benzotaper.web.audit import acting_as

    team = m.CareTeam.objects.create(name="Crash ward")
    tokens = []
    for i in range(writers):
        user = User.objects.create_user(f"crash-clin-{i}", password=secrets.token_hex(16))
        m.Profile.objects.create(user=user, role="clinician").teams.add(team)
        token = secrets.token_urlsafe(24)
        m.ApiToken.objects.create(user=user, digest=token_digest(token), name="crash")
        tokens.append(token)
    with acting_as(User.objects.get(username="crash-clin-0")):
        ids = [m.Patient.objects.create(team=team, name=f"Crash {i:03d}").pk for i in range(patients)]
    return tokens, ids


# --- the server ---------------------------------------------------------------------------------------------


class Server:
    """`benzotaper serve` in its own session on a fixed port; `kill` SIGKILLs the whole process group."""

    def __init__(self, env: dict[str, str], logfile: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.env, self.logfile = env, logfile
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> float:
        """Start and wait for /healthz; returns the seconds it took."""
        t0 = time.monotonic()
        cmd = [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.logfile.open("ab") as out:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=out, start_new_session=True)
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}); see {self.logfile}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return time.monotonic() - t0
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout:.0f} s; see {self.logfile}")

    def kill(self) -> None:
        """SIGKILL to the master and every worker at once (its process group), then reap the master."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# --- the writers --------------------------------------------------------------------------------------------


@dataclass
class Write:
    """One logical write: its key, where it goes, its marker and what came back."""

    number: int
    kind: str
    patient: int
    key: str
    body: dict[str, Any]
    acked: bool = False
    answers: list[tuple[int, str]] = field(default_factory=list)  # (status, body) of each 2xx


@dataclass
class Tally:
    retries: int = 0
    replays: int = 0
    refused: int = 0  # 4xx answers (none expected: every body is valid)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


def body_for(kind: str, number: int) -> dict[str, Any]:
    """A valid body carrying the write's marker."""
    marker = f"crash-{number}"
    if kind == "diary":
        return {"kind": "dose", "drug": "diazepam", "planned_mg": 5, "taken_mg": 5, "note": marker}
    if kind == "levels":
        sampled = (BASE_TIME + timedelta(hours=number % 5000)).isoformat()
        return {"analyte": "diazepam", "sampled_at": sampled, "value": "150", "lab": marker}
    return {
        "instrument": "sds",
        "answers": [1, 0, 1, 0, 1],
        "taken_at": f"{(BASE_TIME + timedelta(seconds=number)).isoformat()}+00:00",
    }


def send_once(port: int, token: str, write: Write, timeout: float) -> tuple[int, str, bool]:
    """One attempt: (status, body, replayed); raises OSError on a dropped connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if write.key:
            headers["Idempotency-Key"] = write.key
        conn.request("POST", f"/api/patients/{write.patient}/{write.kind}", json.dumps(write.body), headers)
        response = conn.getresponse()
        return response.status, response.read().decode(), response.getheader("Idempotent-Replayed") == "true"
    finally:
        conn.close()


def deliver(port: int, token: str, write: Write, tally: Tally, give_up: float, timeout: float) -> None:
    """Send until acknowledged, the same key and body each time (or give up at `give_up`, monotonic)."""
    first = True
    while time.monotonic() < give_up:
        if not first:
            tally.add("retries")
            time.sleep(0.1)
        first = False
        try:
            status, text, replayed = send_once(port, token, write, timeout)
        except (OSError, http.client.HTTPException):
            continue
        if status >= 500:
            continue
        if replayed:
            tally.add("replays")
        if 200 <= status < 300:
            write.acked = True
            write.answers.append((status, text))
        else:
            tally.add("refused")
            log(f"write {write.number} refused {status}: {text[:200]}")
        return


def writer(
    index: int, token: str, patients: list[int], port: Callable[[], int], stop: threading.Event, args: Any
) -> tuple[list[Write], Tally]:
    """One closed-loop client; returns its writes."""
    writes: list[Write] = []
    tally = Tally()
    n = 0
    while not stop.is_set():
        number = index * 1_000_000 + n
        kind = KINDS[n % len(KINDS)]
        write = Write(
            number,
            kind,
            patients[(index + n) % len(patients)],
            "" if args.no_key else secrets.token_urlsafe(16),
            body_for(kind, number),
        )
        give_up = time.monotonic() + args.give_up_s
        if args.double_every and n % args.double_every == args.double_every - 1:
            twin = threading.Thread(target=deliver, args=(port(), token, write, tally, give_up, args.timeout_s))
            twin.start()
            deliver(port(), token, write, tally, give_up, args.timeout_s)
            twin.join()
        else:
            deliver(port(), token, write, tally, give_up, args.timeout_s)
        writes.append(write)
        n += 1
    return writes, tally


# --- the check --------------------------------------------------------------------------------------------


def records_per_write(writes: list[Write]) -> dict[int, int]:
    """How many rows carry each write's marker, read from the database after the run."""
    from django.db import connections

    from benzotaper.web import models as m

    connections.close_all()
    counts: dict[int, int] = {w.number: 0 for w in writes}
    for note in m.DiaryEntry.objects.filter(note__startswith="crash-").values_list("note", flat=True):
        counts[int(note[6:])] = counts.get(int(note[6:]), 0) + 1
    for lab in m.Level.objects.filter(lab__startswith="crash-").values_list("lab", flat=True):
        counts[int(lab[6:])] = counts.get(int(lab[6:]), 0) + 1
    for taken in m.Assessment.objects.filter(instrument="sds").values_list("taken_at", flat=True):
        number = int((taken.astimezone(UTC).replace(tzinfo=None) - BASE_TIME).total_seconds())
        counts[number] = counts.get(number, 0) + 1
    return counts


def verdict(writes: list[Write], counts: dict[int, int]) -> dict[str, int]:
    """The figures: attempted, acknowledged, found, duplicated, lost, recorded without acknowledgement."""
    acked = [w for w in writes if w.acked]
    return {
        "attempted": len(writes),
        "acknowledged": len(acked),
        "found": sum(1 for w in acked if counts.get(w.number, 0) >= 1),
        "duplicated": sum(1 for w in writes if counts.get(w.number, 0) > 1),
        "lost": sum(1 for w in acked if counts.get(w.number, 0) == 0),
        "recorded_unacknowledged": sum(1 for w in writes if not w.acked and counts.get(w.number, 0) >= 1),
        "unknown_records": sum(n for k, n in counts.items() if k not in {w.number for w in writes}),
        "answers_differing": sum(1 for w in writes if len({a for a in w.answers}) > 1),
    }


# --- the run ------------------------------------------------------------------------------------------------


def run(args: Any) -> dict[str, Any]:
    """Seed, serve, write while killing, then count."""
    folder = Path(args.data_dir or tempfile.mkdtemp(prefix="benzotaper-crash-"))
    env = env_for(folder, args.database_url)
    os.environ.update(env)
    if not args.database_url:
        os.environ.pop("DATABASE_URL", None)
    tokens, patients = seed(args.writers, args.patients)
    from django.db import connections

    connections.close_all()
    server = Server(env, folder / "serve.log")
    starts = [server.start()]
    stop = threading.Event()
    results: list[tuple[list[Write], Tally]] = [([], Tally()) for _ in tokens]

    def work(i: int) -> None:
        results[i] = writer(i, tokens[i], patients, lambda: server.port, stop, args)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(tokens))]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    kills = 0
    try:
        for k in range(args.kills):
            time.sleep(max(0.0, t0 + args.seconds * (k + 1) / (args.kills + 1) - time.monotonic()))
            server.kill()
            kills += 1
            log(f"killed the server (SIGKILL to its process group), kill {kills}")
            starts.append(server.start())
        time.sleep(max(0.0, t0 + args.seconds - time.monotonic()))
    finally:
        stop.set()
        for t in threads:
            t.join(args.give_up_s + 30)
        wall = time.monotonic() - t0
        server.stop()
    writes = [w for ws, _ in results for w in ws]
    tallies = [t for _, t in results]
    figures = verdict(writes, records_per_write(writes))
    from benzotaper.web.backup import clinic_engine

    return {
        "engine": clinic_engine(),
        "writers": args.writers,
        "idempotency_key": not args.no_key,
        **figures,
        "retries": sum(t.retries for t in tallies),
        "replays": sum(t.replays for t in tallies),
        "refused": sum(t.refused for t in tallies),
        "kills": kills,
        "seconds": round(wall, 1),
        "restart_s": [round(s, 1) for s in starts[1:]],
        "writes_per_s": round(len(writes) / wall, 1),
    }


def parse(argv: list[str] | None = None) -> Any:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writers", type=int, default=20)
    ap.add_argument("--patients", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--double-every", type=int, default=10, help="every Nth write is sent twice at once (0: never)")
    ap.add_argument("--give-up-s", type=float, default=90.0, help="stop retrying one write after this long")
    ap.add_argument("--timeout-s", type=float, default=15.0, help="one request's socket timeout")
    ap.add_argument("--database-url", default=None, help="an EMPTY PostgreSQL database (default: SQLite)")
    ap.add_argument("--data-dir", default=None, help="a fresh data folder (default: a new temporary one)")
    ap.add_argument("--no-key", action="store_true", help="the control: send no Idempotency-Key (duplicates)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    return ap.parse_args(argv)


def main() -> None:
    args = parse()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, value in result.items():
            print(f"{name:>24}: {value}")
    if result["lost"] or result["answers_differing"] or (result["duplicated"] and not args.no_key):
        sys.exit(1)


if __name__ == "__main__":
    main()
