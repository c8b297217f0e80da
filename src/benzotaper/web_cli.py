"""`benzotaper serve`, `createuser`, `backup` and `restore`: the clinic web app from the command line.

Django is imported only when a command runs, so the rest of the CLI works without the web extra.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from benzotaper.clitools import JsonOpt, _emit, _fail, _guard, app, out

Opt = typer.Option


@app.command("serve")
def serve_command(
    port: Annotated[int, Opt("--port", help="Port to listen on")] = 8000,
    host: Annotated[str, Opt("--host", help="Address to bind (loopback by default)")] = "127.0.0.1",
    demo: Annotated[bool, Opt("--demo", help="Load the demo clinic (the two worked cases) first")] = False,
    workers: Annotated[int, Opt("--workers", help="Worker processes")] = 2,
    threads: Annotated[int, Opt("--threads", help="Threads per worker")] = 8,
    keepalive: Annotated[
        int, Opt("--keepalive", help="Seconds an idle connection is kept open (0: one request per connection)")
    ] = 2,
) -> None:
    """Start the clinic web app (applies migrations; SQLite in the data folder unless DATABASE_URL is set)."""
    if not 1 <= port <= 65535:
        _fail(f"--port must be 1-65535 (got {port})")
    if not 1 <= workers <= 64 or not 1 <= threads <= 64:
        _fail(f"--workers and --threads must be 1-64 (got {workers} and {threads})")
    if not 0 <= keepalive <= 300:
        _fail(f"--keepalive must be 0-300 seconds (got {keepalive})")
    from benzotaper.web import server

    _guard(lambda: server.serve(host, port, workers, threads, demo, keepalive))


@app.command("createuser")
def createuser_command(
    username: Annotated[str, typer.Argument(help="Login name")],
    role: Annotated[str, Opt("--role", help="clinician, patient or admin")] = "clinician",
    team: Annotated[str | None, Opt("--team", help="Care team (clinicians see its patients)")] = None,
    patient_id: Annotated[int | None, Opt("--patient-id", help="For a patient account: their record id")] = None,
    password_stdin: Annotated[bool, Opt("--password-stdin", help="Read the password from standard input")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Create a user account (the password is asked for, or read from stdin / BENZOTAPER_PASSWORD)."""
    from benzotaper.web import server

    password = os.environ.get("BENZOTAPER_PASSWORD", "")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif not password:
        password = getpass.getpass("Password: ")
    result = _guard(lambda: server.create_user(username, password, role, team, patient_id))
    if json_out:
        _emit(result)
        return
    out.print(f"created {result['role']} {result['username']}" + (f" in {team}" if team else ""))


@app.command("backup")
def backup_command(
    file: Annotated[Path, typer.Argument(help="The backup file to write (replaced atomically if it exists)")],
    json_out: JsonOpt = False,
) -> None:
    """Back up the clinic's database (SQLite online backup, or pg_dump) and print what the backup holds."""
    from benzotaper.web import backup

    result = _guard(lambda: backup.backup(file))
    if json_out:
        _emit(result)
        return
    size = result["bytes"] / 1e6
    out.print(f"backed up the clinic ({result['engine']}) to {result['file']}: {size:.1f} MB in {result['seconds']} s")
    out.print("it holds " + backup.describe(result["counts"]), highlight=False, soft_wrap=True)


@app.command("restore")
def restore_command(
    file: Annotated[Path, typer.Argument(help="A file written by `benzotaper backup`")],
    force: Annotated[bool, Opt("--force", help="Replace a database that already holds records")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Restore the clinic's database from a backup (refuses a database with records unless --force)."""
    from benzotaper.web import backup

    contents = _guard(lambda: backup.inspect(file, backup.clinic_engine()))
    if not json_out:
        out.print(
            f"{file} ({contents.engine}) holds " + backup.describe(contents.counts), highlight=False, soft_wrap=True
        )
    result = _guard(lambda: backup.restore(file, force, contents))
    if json_out:
        _emit(result)
        return
    out.print(f"restored in {result['seconds']} s; migrations are current")
