"""WSGI entry point (used by `benzotaper serve` and any WSGI server)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benzotaper.web.settings")
application = get_wsgi_application()
