"""Writes survive a SIGKILL of the server: a short bench/web_crash.py run on the configured engine.

SQLite by default; PostgreSQL when DATABASE_URL is set (CI runs tests/web again under scripts/with-postgres.sh),
in a database made for this test and dropped after it. The control run without keys must show duplicates,
so the check is known to see them.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "web_crash.py"
ADMIN_URL = os.environ.get("DATABASE_URL")

pytestmark = pytest.mark.slow


def _pg_admin(sql: str) -> None:
    import psycopg

    assert ADMIN_URL is not None
    with psycopg.connect(ADMIN_URL, autocommit=True) as con:
        con.execute(sql)  # a database name made by this test


@pytest.fixture
def clinic_url() -> Iterator[Any]:
    """Makes a fresh empty database per call on PostgreSQL (None on SQLite); drops them afterwards."""
    made: list[str] = []

    def make() -> str | None:
        if ADMIN_URL is None:
            return None
        name = f"bt_crash_{secrets.token_hex(4)}"
        _pg_admin(f"CREATE DATABASE {name}")
        made.append(name)
        return urlunparse(urlparse(ADMIN_URL)._replace(path="/" + name))

    yield make
    for name in made:
        _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _crash_run(tmp_path: Path, url: str | None, *extra: str) -> dict[str, Any]:
    folder = tmp_path / secrets.token_hex(4)
    folder.mkdir()
    args = [sys.executable, str(BENCH), "--json", "--writers", "20", "--seconds", "8", "--kills", "1"]
    args += ["--data-dir", str(folder), *extra] + (["--database-url", url] if url else [])
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.stdout.strip(), done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_acknowledged_writes_survive_sigkill_once_each(tmp_path: Path, clinic_url: Any) -> None:
    url = clinic_url()
    result = _crash_run(tmp_path, url, *(["--seconds", "16"] if url else []))  # PostgreSQL restarts slowly
    assert result["engine"] == ("postgresql" if ADMIN_URL else "sqlite")
    # PostgreSQL's server restarts take ~11 s of the 8 s run's tail: fewer writes there (51 on a loaded machine)
    assert result["kills"] == 1 and result["acknowledged"] > (30 if ADMIN_URL else 100)
    assert result["found"] == result["acknowledged"] and result["lost"] == 0
    assert result["duplicated"] == 0 and result["answers_differing"] == 0 and result["unknown_records"] == 0
    assert result["refused"] == 0
    # the kill dropped connections and the writers resent (whether a resend finds its write already committed,
    # a replay, depends on where the kill lands: test_idempotency.py checks replays directly)
    assert result["retries"] > 0


def test_the_check_sees_duplicates_when_writes_carry_no_key(tmp_path: Path, clinic_url: Any) -> None:
    # Every 2nd write a double tap (each writer's 10th was too rare in 4 s on a loaded machine: 0 duplicates).
    result = _crash_run(tmp_path, clinic_url(), "--no-key", "--kills", "0", "--seconds", "6", "--double-every", "2")
    assert result["idempotency_key"] is False and result["replays"] == 0
    assert result["duplicated"] > 0 and result["lost"] == 0
