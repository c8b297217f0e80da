"""Load benchmark of the clinic web app (issue 6 item 8): the real server under concurrent clinicians and patients.

Target: with 20 concurrent clients on 2 cores, patient page p95 under 150 ms, zero errors, zero lost writes.

1. Seed. A fresh temporary data folder (SQLite, WAL) or an empty PostgreSQL database (--database-url)
   gets one care team, clinicians and --patients patients with a year of records each (web_seed.py).
2. Serve. `benzotaper serve --port P --workers W --threads T` runs as a subprocess on loopback with the
   same data folder; the script waits for /healthz.
3. Load. --clients closed-loop clients (no think time unless --think-ms), each with its own keep-alive
   connection: --writers patient clients alternately POST a check-in (/diary/checkin/) or a dose
   (/diary/dose/) and then GET /diary/ as the browser follows the redirect; the other clients are
   clinicians reading random patient pages (/patients/{id}/). Every client first logs in (GET and POST
   /login/ with the CSRF token). Two phases, each on a freshly started server:
   * cold: the caches are empty. A patient page view is counted "first view" when no view of that
     patient had completed on the same gunicorn worker before it started (the cache is per worker
     process; the worker behind each connection is found with psutil), else "repeat view".
   * warm: first every patient page is read once on a connection held by each worker, then the same
     load runs again.
4. Baseline (same process, warm server): a single client reading /healthz (the cheapest endpoint)
   and then warm patient pages sequentially, and --clients clients hammering /healthz; the patient
   page under load is printed as a ratio of these.
5. Lost writes. Every successful diary POST (302 to /diary/) is counted per patient account; after the
   run the DiaryEntry rows created by each account (seed rows have no author) must equal that count.
Also reported: the server's CPU (gunicorn master and workers, psutil) as cores busy, what other
processes on the machine used meanwhile (figures are disturbed when that is more than ~0.2 cores;
with --database-url PostgreSQL's own processes are counted there too),
the server's RSS (at start, after warm-up, after logins, peak, end: Argon2 logins are memory-hard, so
the peak is the login burst), requests per worker, idle keep-alive connections the server had closed
(the client reconnects before sending, as browsers do; gunicorn's keepalive is 2 s), and this load
generator's own CPU (it shares the machine's cores).

--think-ms M gives clients a random pause (exponential, mean M ms) between requests: 0 saturates the
server (throughput-bound), 1000 is a busy but human ward. --cache tries another cache on the server only
(a settings module written into the data folder). --data-dir DIR keeps the seeded clinic and reuses it.
--profile adds an in-process profile of one warm patient page (Django test client, cProfile) with the
SQL queries and the size of the page and its figure JSON.

    .venv/bin/python bench/web_load.py --json > web_load.json     # the issue's run (about 8 minutes)
    .venv/bin/python bench/web_load.py --phases warm --think-ms 1000
    .venv/bin/python bench/web_load.py --patients 20 --seconds 10  # a quick check
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import psutil  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from web_seed import Seeded, seed  # noqa: E402

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
TIMEOUT_S = 60.0
SLOW_MS = 500.0  # a warm-phase patient page slower than this is listed (likely a cache miss)


def log(msg: str) -> None:
    sys.stderr.write(f"[web_load {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# --- the server --------------------------------------------------------------------------------------


class Server:
    """`benzotaper serve` as a subprocess in its own session (stopped by its pid, then its group)."""

    def __init__(self, env: dict[str, str], workers: int, threads: int, logfile: Path, keepalive: int = 2) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        exe = Path(sys.executable).parent / "benzotaper"
        cmd = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--workers", str(workers), "--threads", str(threads), "--keepalive", str(keepalive)]
        self.logfile = logfile
        self._log = logfile.open("ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=self._log, start_new_session=True)
        self.ps = psutil.Process(self.proc.pid)
        self.workers = workers

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                ok = conn.getresponse().status == 200
                conn.close()
                if ok and len(self.worker_pids()) >= self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{self.tail()}")

    def tree(self) -> list[psutil.Process]:
        try:
            return [self.ps, *self.ps.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def worker_pids(self) -> list[int]:
        try:
            return [c.pid for c in self.ps.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def worker_of(self, local_port: int) -> int:
        """The worker pid holding the server end of the client connection from `local_port` (0: unknown)."""
        for _ in range(20):
            for pid in self.worker_pids():
                try:
                    for c in psutil.Process(pid).net_connections(kind="tcp"):
                        if c.raddr and c.raddr.port == local_port and c.laddr.port == self.port:
                            return pid
                except psutil.Error:
                    continue
            time.sleep(0.01)
        return 0

    def cpu_seconds(self) -> dict[int, float]:
        out = {}
        for p in self.tree():
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        return out

    def rss(self) -> tuple[int, int]:
        """Total RSS of the tree and the largest single process, bytes."""
        sizes = []
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                sizes.append(p.memory_info().rss)
        return sum(sizes), max(sizes, default=0)

    def errors_logged(self) -> list[str]:
        text = self.logfile.read_text(errors="replace")
        return [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line or "[CRITICAL]" in line]

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


class Sampler(threading.Thread):
    """Samples the server tree's RSS every 0.25 s."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stop_event = threading.Event()
        self.peak_total = 0
        self.peak_one = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            total, one = self.server.rss()
            self.peak_total, self.peak_one = max(self.peak_total, total), max(self.peak_one, one)
            self.stop_event.wait(0.25)


# --- one client ----------------------------------------------------------------------------------------


@dataclass
class Sample:
    kind: str
    t0: float  # seconds since the phase started
    ms: float
    status: int
    ok: bool
    worker: int
    error: str = ""


class Client:
    """A browser-like client: one keep-alive connection, cookies, the CSRF token."""

    def __init__(self, server: Server, record: Any) -> None:
        self.server = server
        self._record = record
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None
        self.worker = 0
        self.requests_on_conn = 0
        self.last: Sample | None = None
        self.last_done = 0.0
        self.stale_reconnects = 0

    def _dropped(self) -> bool:
        """Whether the idle connection was closed by the server (readable with nothing to read means EOF)."""
        assert self.conn is not None and self.conn.sock is not None
        readable, _, _ = select.select([self.conn.sock], [], [], 0)
        return bool(readable)

    def _connect(self) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=TIMEOUT_S)
        self.conn.connect()
        assert self.conn.sock is not None
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.worker = self.server.worker_of(self.conn.sock.getsockname()[1])
        self.requests_on_conn = 0

    def record(self, sample: Sample) -> None:
        self.last = sample
        self._record(sample)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(
        self, kind: str, method: str, path: str, form: dict[str, str] | None = None, expect: tuple[int, ...] = (200,)
    ) -> tuple[int, dict[str, str], bytes]:
        """One request, timed from send to the last body byte; recorded as a sample of `kind`."""
        headers = {"Host": f"127.0.0.1:{self.server.port}", "Connection": "keep-alive"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (0, 1):
            if self.conn is not None and self.conn.sock is not None and self._dropped():
                # The server closed this idle keep-alive connection (gunicorn's keepalive is 2 s): reconnect
                # first, as browsers and urllib3 do, instead of sending into a closed socket.
                self.close()
                self.stale_reconnects += 1
            t0 = time.perf_counter()  # a new connection's set-up counts in the request's time
            if self.conn is None or self.conn.sock is None:
                self._connect()
            reused = self.requests_on_conn > 0
            try:
                assert self.conn is not None
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                # A keep-alive connection the server closed while idle: a browser retries an idempotent
                # request once on a new connection. A POST is never retried (it might have been applied).
                if attempt == 0 and reused and method == "GET":
                    continue
                idle = f"{t0 - self.last_done:.2f} s" if reused else "new connection"
                detail = f"{exc!r} on {method} (connection idle {idle}, {self.requests_on_conn} requests on it)"
                self.record(Sample(kind, t0, 1000 * (time.perf_counter() - t0), 0, False, self.worker, detail))
                return 0, {}, b""
            except Exception as exc:  # any failure is an error sample
                self.close()
                self.record(Sample(kind, t0, 1000 * (time.perf_counter() - t0), 0, False, self.worker, repr(exc)))
                return 0, {}, b""
            self.last_done = time.perf_counter()
            ms = 1000 * (self.last_done - t0)
            self.requests_on_conn += 1
            for raw in resp.headers.get_all("Set-Cookie") or []:
                name, _, rest = raw.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            ok = resp.status in expect
            self.record(Sample(kind, t0, ms, resp.status, ok, self.worker, "" if ok else f"HTTP {resp.status}"))
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        raise AssertionError("unreachable")

    def login(self, username: str, password: str) -> bool:
        status, _, page = self.request("login page", "GET", "/login/")
        match = TOKEN.search(page.decode(errors="replace"))
        if status != 200 or match is None:
            return False
        form = {"csrfmiddlewaretoken": match.group(1), "username": username, "password": password, "next": ""}
        status, _, _ = self.request("login", "POST", "/login/", form, expect=(302,))
        return status == 302 and "sessionid" in self.cookies

    def csrf(self) -> str:
        return self.cookies.get("csrftoken", "")


# --- a load phase ------------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    writes_ok: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    writes_failed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    cpu_s: float = 0.0
    cpu_by_pid: dict[int, float] = field(default_factory=dict)
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    machine_busy_s: float = 0.0
    peak_rss: int = 0
    rss_after_logins: int = 0
    rss_at_end: int = 0
    peak_rss_one: int = 0
    server_errors: list[str] = field(default_factory=list)
    stale_reconnects: list[int] = field(default_factory=list)


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: list[Sample] = []
        self.t_zero = time.perf_counter()
        self.done: dict[tuple[int, int], float] = {}  # (worker, patient) -> first completion (perf_counter)

    def __call__(self, s: Sample) -> None:
        s.t0 -= self.t_zero
        with self.lock:
            self.samples.append(s)

    def patient_done(self, worker: int, pid: int, t_end: float) -> None:
        with self.lock:
            self.done.setdefault((worker, pid), t_end)

    def first_view(self, worker: int, pid: int, t_start: float) -> bool:
        with self.lock:
            done = self.done.get((worker, pid))
        return done is None or done > t_start


def run_load(
    server: Server,
    seeded: Seeded,
    phase: Phase,
    clients: int,
    writers: int,
    think_ms: float,
    rec: Recorder,
    rng_seed: int,
) -> None:
    """`clients` threads for `phase.seconds`; logins happen before the clock starts (and are recorded)."""
    writers = min(writers, clients, len(seeded.patient_ids))
    readers = clients - writers
    writer_pids = random.Random(rng_seed).sample(seeded.patient_ids, writers)
    stop_at = [0.0]
    t_start = [0.0]
    before: dict[str, Any] = {}

    def go() -> None:  # runs once, when every client has logged in, before any is released
        before["cpu"], before["ru"] = server.cpu_seconds(), resource.getrusage(resource.RUSAGE_SELF)
        before["machine"] = psutil.cpu_times()
        before["rss_after_logins"] = server.rss()[0]
        t_start[0] = rec.t_zero = time.perf_counter()
        stop_at[0] = t_start[0] + phase.seconds

    barrier = threading.Barrier(clients + 1, action=go)
    errors: list[str] = []

    def reader(i: int) -> None:
        rng = random.Random(rng_seed * 1000 + i)
        c = Client(server, rec)
        ok = c.login(seeded.clinicians[i % len(seeded.clinicians)], seeded.password)
        barrier.wait()
        if not ok:
            errors.append(f"reader {i}: login failed")
            return
        while time.perf_counter() < stop_at[0]:
            pid = rng.choice(seeded.patient_ids)
            t0 = time.perf_counter()
            status, _, _ = c.request("patient page (repeat)", "GET", f"/patients/{pid}/")
            if status == 200 and c.last is not None:
                if rec.first_view(c.last.worker, pid, t0):
                    c.last.kind = "patient page (first view)"
                rec.patient_done(c.last.worker, pid, time.perf_counter())
            if think_ms:
                time.sleep(rng.expovariate(1000 / think_ms))
        phase.stale_reconnects.append(c.stale_reconnects)
        c.close()

    def writer(i: int) -> None:
        rng = random.Random(rng_seed * 1000 + 500 + i)
        pid = writer_pids[i]
        user = seeded.patient_users[pid]
        doses = seeded.today_doses.get(pid) or [{"drug": "diazepam", "time": "08:00", "mg": 5.0}]
        c = Client(server, rec)
        ok = c.login(user, seeded.password)
        barrier.wait()
        if not ok:
            errors.append(f"writer {i}: login failed")
            return
        n = 0
        while time.perf_counter() < stop_at[0]:
            if n % 2 == 0:
                form = {"csrfmiddlewaretoken": c.csrf(), "feeling": str(rng.randint(0, 10)), "note": f"load test {n}"}
                path = "/diary/checkin/"
            else:
                d = rng.choice(doses)
                form = {
                    "csrfmiddlewaretoken": c.csrf(),
                    "drug": d["drug"],
                    "planned_mg": str(d["mg"]),
                    "time": d["time"],
                    "taken_mg": str(d["mg"]),
                }
                path = "/diary/dose/"
            status, headers, _ = c.request("diary write", "POST", path, form, expect=(302,))
            if status == 302 and headers.get("location", "").rstrip("/").endswith("/diary"):
                phase.writes_ok[user] += 1
                c.request("diary page", "GET", "/diary/")
            else:
                phase.writes_failed[user] += 1
                if status == 302:
                    errors.append(f"writer {i}: POST {path} redirected to {headers.get('location')}")
            n += 1
            if think_ms:
                time.sleep(rng.expovariate(1000 / think_ms))
        phase.stale_reconnects.append(c.stale_reconnects)
        c.close()

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(readers)]
    threads += [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(writers)]
    for t in threads:
        t.start()
    sampler = Sampler(server)
    sampler.start()
    barrier.wait()
    for t in threads:
        t.join()
    phase.wall_s = time.perf_counter() - t_start[0]
    cpu0, ru0 = before["cpu"], before["ru"]
    m0, m1 = before["machine"], psutil.cpu_times()
    phase.machine_busy_s = (m1.user + m1.system + m1.nice + getattr(m1, "irq", 0) + getattr(m1, "softirq", 0)) - (
        m0.user + m0.system + m0.nice + getattr(m0, "irq", 0) + getattr(m0, "softirq", 0)
    )
    sampler.stop_event.set()
    sampler.join()
    cpu1, ru1 = server.cpu_seconds(), resource.getrusage(resource.RUSAGE_SELF)
    phase.cpu_by_pid = {pid: cpu1[pid] - cpu0.get(pid, 0.0) for pid in cpu1}
    phase.cpu_s = sum(phase.cpu_by_pid.values())
    phase.client_cpu_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    phase.peak_rss, phase.peak_rss_one = sampler.peak_total, sampler.peak_one
    phase.rss_after_logins, phase.rss_at_end = before["rss_after_logins"], server.rss()[0]
    phase.samples = list(rec.samples)
    phase.server_errors = errors


# --- warming and baselines ------------------------------------------------------------------------------


def warm_every_worker(server: Server, seeded: Seeded, rec: Recorder) -> dict[str, Any]:
    """Read every patient page once on a connection held by each worker (the cache is per process)."""
    login = Client(server, rec)
    assert login.login(seeded.clinicians[0], seeded.password), "warm-up login failed"
    pinned: dict[int, Client] = {}
    spare: list[Client] = []
    for _ in range(200):
        c = Client(server, rec)
        c.cookies = dict(login.cookies)
        c._connect()
        if c.worker and c.worker not in pinned:
            pinned[c.worker] = c
        else:
            spare.append(c)
        if len(pinned) >= server.workers:
            break
    for c in spare:
        c.close()
    times: dict[int, list[float]] = {}

    def walk(worker: int, c: Client) -> None:
        out = times.setdefault(worker, [])
        for pid in seeded.patient_ids:
            t0 = time.perf_counter()
            status, _, _ = c.request("warm-up page", "GET", f"/patients/{pid}/")
            out.append(1000 * (time.perf_counter() - t0))
            if status == 200 and c.worker == worker:
                rec.patient_done(worker, pid, time.perf_counter())

    t0 = time.perf_counter()
    threads = [threading.Thread(target=walk, args=(w, c)) for w, c in pinned.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in pinned.values():
        c.close()
    login.close()
    all_ms = [x for v in times.values() for x in v]
    return {
        "workers_warmed": len(pinned),
        "pages": len(all_ms),
        "seconds": round(time.perf_counter() - t0, 1),
        "first_view_ms": stats(all_ms),
    }


def single_client(server: Server, seeded: Seeded, rec: Recorder, n: int) -> dict[str, Any]:
    """One client, sequential: /healthz then warm patient pages (n each)."""
    c = Client(server, rec)
    assert c.login(seeded.clinicians[0], seeded.password)
    rng = random.Random(7)
    out: dict[str, Any] = {}
    for kind, paths in (
        ("healthz", ["/healthz"] * n),
        ("patient page", [f"/patients/{rng.choice(seeded.patient_ids)}/" for _ in range(n)]),
    ):
        ms = []
        for path in paths:
            t0 = time.perf_counter()
            status, _, _ = c.request(f"baseline {kind}", "GET", path)
            if status == 200:
                ms.append(1000 * (time.perf_counter() - t0))
        out[kind] = stats(ms)
    c.close()
    return out


def healthz_load(server: Server, clients: int, seconds: float, rec: Recorder) -> dict[str, Any]:
    """`clients` clients reading /healthz as fast as they can (the server's floor under the same concurrency)."""
    stop_at = time.perf_counter() + seconds
    ms: list[list[float]] = [[] for _ in range(clients)]
    bad = [0]

    def loop(i: int) -> None:
        c = Client(server, lambda s: None)
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            status, _, _ = c.request("healthz", "GET", "/healthz")
            if status == 200:
                ms[i].append(1000 * (time.perf_counter() - t0))
            else:
                bad[0] += 1
        c.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    flat = [x for v in ms for x in v]
    return {"clients": clients, "rps": round(len(flat) / wall, 1), "errors": bad[0], **stats(flat)}


# --- figures ---------------------------------------------------------------------------------------------------


def stats(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"count": 0}
    a = np.asarray(ms)
    return {
        "count": len(ms),
        "p50": round(float(np.percentile(a, 50)), 1),
        "p95": round(float(np.percentile(a, 95)), 1),
        "p99": round(float(np.percentile(a, 99)), 1),
        "max": round(float(a.max()), 1),
    }


KINDS = [
    "patient page (all)",
    "patient page (first view)",
    "patient page (repeat)",
    "diary write",
    "diary page",
    "login",
    "login page",
]


def summarise(phase: Phase, warmup_s: float) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    timed = [s for s in phase.samples if s.kind not in ("login", "login page")]
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in phase.samples:
        groups[s.kind].append(s)
        if s.kind.startswith("patient page"):
            groups["patient page (all)"].append(s)
            if s.t0 >= warmup_s:
                groups[f"patient page (after {warmup_s:g} s)"].append(s)
    for kind in [*KINDS, f"patient page (after {warmup_s:g} s)"]:
        items = groups.get(kind, [])
        if not items:
            continue
        ok = [s.ms for s in items if s.ok]
        wall = phase.wall_s if kind not in ("login", "login page") else None
        if kind.startswith("patient page (after"):
            wall = max(phase.wall_s - warmup_s, 1e-9)
        rows[kind] = {
            **stats(ok),
            "count": len(items),
            "rps": round(len(items) / wall, 1) if wall else None,
            "errors": sum(not s.ok for s in items),
        }
    by_worker: dict[int, int] = defaultdict(int)
    for s in timed:
        by_worker[s.worker] += 1
    errors = [f"{s.kind}: {s.error}" for s in phase.samples if not s.ok]
    return {
        "seconds": round(phase.wall_s, 1),
        "requests": len(timed),
        "rps": round(len(timed) / phase.wall_s, 1) if phase.wall_s else 0.0,
        "kinds": rows,
        "errors": len(errors) + len(phase.server_errors),
        "error_examples": sorted(set(errors))[:5] + phase.server_errors[:5],
        "server_cpu_cores": round(phase.cpu_s / phase.wall_s, 2) if phase.wall_s else 0.0,
        "server_cpu_by_process": {str(k): round(v / phase.wall_s, 2) for k, v in phase.cpu_by_pid.items()},
        "client_cpu_cores": round(phase.client_cpu_s / phase.wall_s, 2) if phase.wall_s else 0.0,
        # what other processes on the machine used meanwhile (test suites...): figures are disturbed if > ~0.2
        "other_processes_cpu_cores": round(
            max(0.0, phase.machine_busy_s - phase.cpu_s - phase.client_cpu_s) / phase.wall_s, 2
        )
        if phase.wall_s
        else 0.0,
        "server_peak_rss_mb": round(phase.peak_rss / 2**20),
        "largest_process_rss_mb": round(phase.peak_rss_one / 2**20),
        "requests_by_worker": {str(k): v for k, v in sorted(by_worker.items())},
        "slow_patient_pages_over_500ms": sum(
            1 for s in phase.samples if s.kind.startswith("patient page") and s.ms > SLOW_MS
        ),
        "stale_keepalive_reconnects": sum(phase.stale_reconnects),
        "writes_ok": sum(phase.writes_ok.values()),
        "writes_failed": sum(phase.writes_failed.values()),
    }


def diary_rows_by_author() -> dict[str, int]:
    """DiaryEntry rows per author account (seed rows have none)."""
    from django.db.models import Count

    from benzotaper.web import models as m

    rows = m.DiaryEntry.objects.filter(created_by__isnull=False).values("created_by__username").annotate(n=Count("id"))
    return {r["created_by__username"]: r["n"] for r in rows}


def lost_writes(phases: list[Phase], before_total: int, before_by_author: dict[str, int]) -> dict[str, Any]:
    """Successful diary POSTs against the DiaryEntry rows each account created (and the table's growth)."""
    from django.db import connection

    from benzotaper.web import models as m

    connection.close()
    ok: dict[str, int] = defaultdict(int)
    failed = 0
    for ph in phases:
        for user, n in ph.writes_ok.items():
            ok[user] += n
        failed += sum(ph.writes_failed.values())
    after = diary_rows_by_author()
    new_by_author = {u: after.get(u, 0) - before_by_author.get(u, 0) for u in set(after) | set(ok)}
    after_total = m.DiaryEntry.objects.count()
    connection.close()
    mismatched = {u: {"posted": ok.get(u, 0), "rows": n} for u, n in new_by_author.items() if ok.get(u, 0) != n}
    return {
        "successful_posts": sum(ok.values()),
        "failed_posts": failed,
        "new_rows": after_total - before_total,
        "new_rows_by_writing_accounts": sum(new_by_author.values()),
        "lost": sum(max(0, ok.get(u, 0) - n) for u, n in new_by_author.items()),
        "unexpected": sum(max(0, n - ok.get(u, 0)) for u, n in new_by_author.items()),
        "mismatched_accounts": mismatched,
    }


# --- in-process profile --------------------------------------------------------------------------------------------


def profile_page(seeded: Seeded, top: int = 25) -> dict[str, Any]:
    """One patient page through Django's test client: cold and warm times, SQL queries, sizes, cProfile top."""
    import cProfile
    import io
    import pstats

    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    connection.close()
    c = DjangoClient()
    c.force_login(User.objects.get(username=seeded.clinicians[0]))
    pid = seeded.patient_ids[len(seeded.patient_ids) // 2]
    t0 = time.perf_counter()
    r = c.get(f"/patients/{pid}/")
    cold_ms = 1000 * (time.perf_counter() - t0)
    warm = []
    for _ in range(10):
        t0 = time.perf_counter()
        c.get(f"/patients/{pid}/")
        warm.append(1000 * (time.perf_counter() - t0))
    with CaptureQueriesContext(connection) as queries:
        r = c.get(f"/patients/{pid}/")
    sql = [(q["sql"][:140], q["time"]) for q in queries.captured_queries]
    html = r.content.decode()
    fig = re.search(r'<script id="figure-data" type="application/json">(.*?)</script>', html, re.S)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(5):
        c.get(f"/patients/{pid}/")
    prof.disable()
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats("cumulative").print_stats(top)
    st.sort_stats("tottime").print_stats(top)
    connection.close()
    return {
        "patient": pid,
        "cold_ms": round(cold_ms, 1),
        "warm_ms": stats(warm),
        "queries": len(sql),
        "query_list": sql,
        "page_bytes": len(r.content),
        "figure_json_bytes": len(fig.group(1)) if fig else None,
        "cprofile_5_views": buf.getvalue(),
    }


# --- output ---------------------------------------------------------------------------------------------------------


def table(name: str, summary: dict[str, Any]) -> str:
    lines = [
        f"\n== {name}: {summary['seconds']} s, {summary['requests']} requests, {summary['rps']} req/s, "
        f"errors {summary['errors']}, server CPU {summary['server_cpu_cores']} cores "
        f"(load generator {summary['client_cpu_cores']}, other processes {summary['other_processes_cpu_cores']}), "
        f"server peak RSS {summary['server_peak_rss_mb']} MB "
        f"(largest process {summary['largest_process_rss_mb']} MB)",
        f"{'kind':34} {'count':>6} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6}",
    ]
    for kind, r in summary["kinds"].items():
        rps = "" if r.get("rps") is None else f"{r['rps']:.1f}"
        cells = [f"{r.get(k, float('nan')):8.1f}" for k in ("p50", "p95", "p99", "max")]
        lines.append(f"{kind:34} {r['count']:6d} {rps:>7} {' '.join(cells)} {r['errors']:6d}")
    lines.append(
        f"requests by worker pid {summary['requests_by_worker']}; patient pages over {SLOW_MS:g} ms: "
        f"{summary['slow_patient_pages_over_500ms']}; idle keep-alive connections the server had closed "
        f"(reconnected before sending): {summary['stale_keepalive_reconnects']}"
    )
    if "server_rss_mb" in summary:
        lines.append(f"server RSS (MB, master + workers): {summary['server_rss_mb']}")
    for e in summary["error_examples"]:
        lines.append(f"  error: {e}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--clinicians", type=int, default=5)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--writers", type=int, default=5, help="how many of the clients are patients writing a diary")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each load phase")
    ap.add_argument("--warmup", type=float, default=10.0, help="cold phase: also report patient pages after this")
    ap.add_argument("--think-ms", type=float, default=0.0, help="mean pause between a client's requests (0: none)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--keepalive", type=int, default=2, help="server keep-alive seconds (0: a connection per request)")
    ap.add_argument("--baseline-requests", type=int, default=100)
    ap.add_argument("--database-url", default=None, help="an EMPTY PostgreSQL database (default: fresh SQLite)")
    ap.add_argument("--phases", default="cold,warm", help="which phases to run: cold, warm or both")
    ap.add_argument("--profile", action="store_true", help="add an in-process profile of one warm patient page")
    ap.add_argument(
        "--cache",
        choices=["default", "locmem-big", "file"],
        default="default",
        help="server cache: the app's settings (default), or what-ifs: per-process LocMemCache with 100000\n"
        "entries (locmem-big), or a FileBasedCache in the data folder shared by the workers (file)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the data folder (and the server log)")
    ap.add_argument(
        "--data-dir", default=None, help="seed into this folder and keep it; reuse the clinic if it was seeded before"
    )
    ap.add_argument("--json", action="store_true", help="print the results as JSON (the tables go to stderr)")
    args = ap.parse_args()

    reuse = args.data_dir is not None
    data_dir = Path(args.data_dir) if reuse else Path(tempfile.mkdtemp(prefix="benzotaper-webload-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    for var in ("BENZOTAPER_DEBUG", "BENZOTAPER_HTTPS", "DATABASE_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(var, None)
        os.environ.pop(var, None)
    env["BENZOTAPER_DATA_DIR"] = os.environ["BENZOTAPER_DATA_DIR"] = str(data_dir)
    env["BENZOTAPER_ALLOWED_HOSTS"] = os.environ["BENZOTAPER_ALLOWED_HOSTS"] = "127.0.0.1,testserver"
    if args.database_url:
        env["DATABASE_URL"] = os.environ["DATABASE_URL"] = args.database_url
    if args.cache != "default":
        # A what-if for the server only: the app's settings with another cache (written into the data folder).
        caches = {
            "locmem-big": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "OPTIONS": {"MAX_ENTRIES": 100_000},
            },
            "file": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(data_dir / "cache"),
                "OPTIONS": {"MAX_ENTRIES": 100_000},
            },
        }
        (data_dir / "bench_settings.py").write_text(
            f"from benzotaper.web.settings import *  # noqa: F403\n\nCACHES = {{'default': {caches[args.cache]!r}}}\n"
        )
        env["DJANGO_SETTINGS_MODULE"] = "bench_settings"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(data_dir), env.get("PYTHONPATH", "")]))
    result: dict[str, Any] = {
        "config": {k: v for k, v in vars(args).items() if k not in ("json", "database_url")},
        "database": "postgresql" if args.database_url else "sqlite (WAL)",
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
    }
    try:
        from benzotaper.web import server as web_server

        web_server.setup()
        web_server.migrate()
        from django.db import connection

        from benzotaper.web import models as m

        saved = data_dir / "seed.json"
        if reuse and saved.exists():
            seeded = Seeded(**json.loads(saved.read_text()))
            seeded.patient_users = {int(k): v for k, v in seeded.patient_users.items()}
            seeded.today_doses = {int(k): v for k, v in seeded.today_doses.items()}
            log(f"reusing the clinic seeded in {data_dir}: {seeded.counts}")
        else:
            if m.Patient.objects.exists():
                raise SystemExit("the database is not empty: give a fresh --database-url")
            log(f"seeding {args.patients} patients into {data_dir} ...")
            seeded = seed(args.patients, args.clinicians)
            saved.write_text(json.dumps(asdict(seeded)))
            log(f"seeded in {seeded.seconds:.1f} s: {seeded.counts}")
        result["seed"] = {"seconds": round(seeded.seconds, 1), "plans_built": seeded.plans_built, **seeded.counts}
        before_total = m.DiaryEntry.objects.count()
        before_by_author = diary_rows_by_author()
        connection.close()

        phases: list[Phase] = []
        wanted = [p.strip() for p in args.phases.split(",") if p.strip()]
        for name in wanted:
            phase = Phase(name, args.seconds)
            shutil.rmtree(data_dir / "cache", ignore_errors=True)  # each phase starts with empty caches
            server = Server(env, args.workers, args.threads, data_dir / f"server-{name}.log", args.keepalive)
            try:
                server.wait_ready()
                log(f"{name}: server on port {server.port}, workers {server.worker_pids()}")
                rss_mb = {"at_ready": round(server.rss()[0] / 2**20)}
                rec = Recorder()
                if name == "warm":
                    log("warm: reading every patient page once on each worker ...")
                    result["warm_up"] = warm_every_worker(server, seeded, rec)
                    log(f"warm-up done: {result['warm_up']}")
                    rss_mb["after_warm_up"] = round(server.rss()[0] / 2**20)
                    result["baseline_single_client"] = single_client(server, seeded, rec, args.baseline_requests)
                    log(f"baseline single client: {result['baseline_single_client']}")
                rec.samples.clear()
                log(f"{name}: {args.clients} clients ({args.writers} writers) for {args.seconds:g} s ...")
                run_load(server, seeded, phase, args.clients, args.writers, args.think_ms, rec, len(phases) + 1)
                phases.append(phase)
                if name == "warm":
                    result["baseline_healthz_load"] = healthz_load(server, args.clients, min(10.0, args.seconds), rec)
                    log(f"baseline /healthz under load: {result['baseline_healthz_load']}")
            finally:
                server.stop()
                phase_errors = server.errors_logged()
            s = summarise(phase, args.warmup)
            s["server_rss_mb"] = {
                **rss_mb,
                "after_logins": round(phase.rss_after_logins / 2**20),
                "peak_during_logins_and_load": s["server_peak_rss_mb"],
                "at_end": round(phase.rss_at_end / 2**20),
            }
            s["server_log_errors"] = len(phase_errors)
            s["errors"] += len(phase_errors)
            s["error_examples"] += phase_errors[:5]
            result[name] = s
            sys.stderr.write(table(name, s) + "\n")

        result["lost_writes"] = lost_writes(phases, before_total, before_by_author)
        lw = result["lost_writes"]
        sys.stderr.write(
            f"\nwrites: {lw['successful_posts']} successful diary POSTs, {lw['new_rows']} new DiaryEntry rows "
            f"({lw['new_rows_by_writing_accounts']} by the writing accounts); "
            f"lost {lw['lost']}, unexpected {lw['unexpected']}, failed POSTs {lw['failed_posts']}\n"
        )
        if "warm" in result:
            page = result["warm"]["kinds"].get("patient page (all)", {})
            single = result["baseline_single_client"]
            hz = result["baseline_healthz_load"]
            result["ratios"] = {
                "warm_p95_over_single_client_p50": round(page.get("p95", 0) / single["patient page"]["p50"], 1),
                "single_client_page_p50_over_healthz_p50": round(
                    single["patient page"]["p50"] / single["healthz"]["p50"], 1
                ),
                "warm_page_p95_over_healthz_p95_under_load": round(page.get("p95", 0) / hz["p95"], 1),
            }
            r = result["ratios"]
            sys.stderr.write(
                f"baseline (same process): single client /healthz p50 {single['healthz']['p50']} ms, warm patient "
                f"page p50 {single['patient page']['p50']} ms (x{r['single_client_page_p50_over_healthz_p50']}); "
                f"{hz['clients']} clients on /healthz: {hz['rps']} req/s, p95 {hz['p95']} ms; warm patient page p95 "
                f"under load = x{r['warm_p95_over_single_client_p50']} the single-client p50, "
                f"x{r['warm_page_p95_over_healthz_p95_under_load']} /healthz p95 under load\n"
            )
            p95 = page.get("p95", float("inf"))
            errors = sum(result[p]["errors"] for p in wanted)
            result["target"] = {
                "patient_page_p95_ms": p95,
                "p95_under_150ms": p95 < 150,
                "zero_errors": errors == 0,
                "zero_lost_writes": lw["lost"] == lw["unexpected"] == 0 and lw["new_rows"] == lw["successful_posts"],
            }
            result["target"]["met"] = all(v for k, v in result["target"].items() if k != "patient_page_p95_ms")
            sys.stderr.write(f"target (warm): {result['target']}\n")
        result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        if args.profile:
            log("profiling one warm patient page in-process ...")
            result["profile"] = profile_page(seeded)
            p = result["profile"]
            sys.stderr.write(
                f"\nprofile: patient {p['patient']} cold {p['cold_ms']} ms, warm {p['warm_ms']}, {p['queries']} "
                f"SQL queries, page {p['page_bytes']} bytes, figure JSON {p['figure_json_bytes']} bytes\n"
            )
            for q, t in p["query_list"]:
                sys.stderr.write(f"  {t}s {q}\n")
            sys.stderr.write(p["cprofile_5_views"] + "\n")
    finally:
        if args.keep or reuse:
            log(f"data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
