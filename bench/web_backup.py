"""Backup and restore of a realistic clinic: times, sizes and counts (issue 19 section 5).

Seeds --patients patients with a year of records each (web_seed.py) into a fresh data folder (SQLite) or
an EMPTY PostgreSQL database (--database-url), runs `benzotaper backup FILE --json`, then
`benzotaper restore FILE --json` into a second fresh data folder (or the EMPTY --restore-url database),
and prints the wall time of each command (Django start included), the time the command itself reports,
the backup's size and the tables whose counts the restore verified (it fails on any difference).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).with_name("benzotaper")


def _env(folder: Path, url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env["BENZOTAPER_DATA_DIR"] = str(folder)
    if url:
        env["DATABASE_URL"] = url
    return env


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run([str(BIN), *args, "--json"], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed: {done.stderr.strip()}")
    return wall, json.loads(done.stdout)


def _seed(folder: Path, url: str | None, patients: int) -> dict[str, Any]:
    os.environ.update(_env(folder, url))
    if not url:
        os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(Path(__file__).parent))
    from benzotaper.web import server
    from web_seed import seed

    server.setup()
    server.migrate()
    seeded = seed(n_patients=patients)
    return {"seconds": round(seeded.seconds, 1), "counts": seeded.counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--database-url", default=None, help="an EMPTY PostgreSQL database for the clinic")
    ap.add_argument("--restore-url", default=None, help="an EMPTY PostgreSQL database to restore into")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="benzotaper-backup-"))
    (root / "source").mkdir()
    (root / "target").mkdir()
    seeded = _seed(root / "source", args.database_url, args.patients)
    result: dict[str, Any] = {"patients": args.patients, "seed": seeded}
    file = root / "clinic.backup"
    wall, made = _timed(["backup", str(file)], _env(root / "source", args.database_url))
    result["backup"] = {"wall_s": round(wall, 2), "command_s": made["seconds"], "bytes": made["bytes"]}
    wall, restored = _timed(["restore", str(file)], _env(root / "target", args.restore_url))
    result["restore"] = {"wall_s": round(wall, 2), "command_s": restored["seconds"]}
    result["engine"] = made["engine"]
    result["summary"] = made["summary"]
    result["tables_checked"] = len(made["counts"])
    result["rows_checked"] = sum(made["counts"].values())
    # restore exits non-zero unless every table, counted after the restore, holds the backup's rows
    result["restore"]["tables_verified"] = len(restored["counts"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
