"""Template context shared by every page: the user's role and the languages on offer."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from benzotaper.web.permissions import role


def site(request: HttpRequest) -> dict[str, Any]:
    """Role and language choices for the page frame."""
    return {"role": role(getattr(request, "user", None)), "languages": settings.LANGUAGES}
