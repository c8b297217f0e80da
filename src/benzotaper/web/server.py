"""Start the site: configure Django, migrate, optionally load the demo, then serve with gunicorn.

gunicorn runs threaded workers (2 processes x 8 threads by default): the core's heavy results and the
rendered page fragments are cached per patient and data version, so a small pool serves a ward on 2
cores (docs/web.md, "Performance design").
"""

from __future__ import annotations

import os
import sys
from typing import Any

# How long a thread may hold the GIL before another runnable thread gets it (Python's default: 5 ms).
# A page view is a few ms of Python between short database calls, each of which gives the GIL up and
# then waits to get it back; at 5 ms those waits dominated the latency of 8 threads per worker. At
# 1 ms, 20 busy clients: patient page p95 161 -> 125 ms and 227 -> 262 requests/s (bench/web_load.py);
# 0.5 ms was no better.
GIL_SWITCH_S = 0.001


def setup() -> None:
    """Configure Django for benzotaper (idempotent)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benzotaper.web.settings")
    import django

    django.setup()


def migrate(verbosity: int = 0) -> None:
    """Apply database migrations."""
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=verbosity)


def serve(host: str, port: int, workers: int, threads: int, demo: bool, keepalive: int = 2) -> dict[str, Any]:
    """Migrate, load the demo clinic if asked, and run gunicorn in the foreground."""
    setup()
    migrate()
    info: dict[str, Any] = {"url": f"http://{host}:{port}/", "health": f"http://{host}:{port}/healthz"}
    if demo:
        from benzotaper.web.demo import load_demo

        info["demo"] = load_demo()
    from django.conf import settings

    info["database"] = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    _announce(info)
    from django.db import connections

    # Connections are kept per thread (CONN_MAX_AGE); none may cross the fork into the workers.
    connections.close_all()
    sys.setswitchinterval(GIL_SWITCH_S)  # inherited by the forked workers
    _gunicorn(host, port, workers, threads, keepalive)
    return info


def _announce(info: dict[str, Any]) -> None:
    import sys

    lines = [f"benzotaper clinic on {info['url']} (database: {info['database']})"]
    if "demo" in info:
        demo = info["demo"]
        lines.append(f"demo accounts {', '.join(demo['users'])}; password: {demo['password']}")
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def _gunicorn(host: str, port: int, workers: int, threads: int, keepalive: int) -> None:
    from gunicorn.app.base import BaseApplication

    from benzotaper.web.wsgi import application

    class _App(BaseApplication):  # gunicorn ships no type hints
        def load_config(self) -> None:
            options = {
                "bind": f"{host}:{port}",
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "accesslog": None,
                "errorlog": "-",
                "loglevel": "warning",
                "timeout": 60,
                "keepalive": keepalive,
                "preload_app": True,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    _App().run()


def create_user(username: str, password: str, role: str, team: str | None, patient_id: int | None) -> dict[str, Any]:
    """Create an account with a role; clinicians join a care team (made if new), patients link to a record."""
    setup()
    migrate()
    from django.contrib.auth.models import User
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError
    from django.db import transaction

    from benzotaper.errors import BenzotaperError
    from benzotaper.web.models import CareTeam, Patient, Profile

    if role not in ("clinician", "patient", "admin"):
        raise BenzotaperError(f"--role must be clinician, patient or admin (got {role!r})")
    if User.objects.filter(username=username).exists():
        raise BenzotaperError(f"user {username!r} already exists")
    if role == "patient" and patient_id is None:
        raise BenzotaperError("a patient account needs --patient-id (the record it may see)")
    try:
        validate_password(password, User(username=username))
    except ValidationError as exc:
        raise BenzotaperError("password: " + " ".join(exc.messages)) from None
    with transaction.atomic():
        user = User.objects.create_user(
            username, password=password, is_superuser=role == "admin", is_staff=role == "admin"
        )
        profile = Profile.objects.create(user=user, role=role)
        if team:
            profile.teams.add(CareTeam.objects.get_or_create(name=team)[0])
        if patient_id is not None:
            patient = Patient.objects.filter(pk=patient_id).first()
            if patient is None:
                raise BenzotaperError(f"--patient-id {patient_id}: no such patient")
            if patient.user_id is not None:
                raise BenzotaperError(f"--patient-id {patient_id}: that record already has an account")
            patient.user = user
            patient.save()
    return {"username": username, "role": role, "team": team, "patient_id": patient_id}
