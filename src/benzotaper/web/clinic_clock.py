"""The clinic's clock: today's local date, and stored UTC times as the local times the core works in."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import timezone


def today() -> date:
    """The clinic's local date."""
    return timezone.localdate()


def local(moment: datetime) -> datetime:
    """A stored (UTC) time as the clinic's naive local time, which is what the core works in."""
    return timezone.localtime(moment).replace(tzinfo=None) if timezone.is_aware(moment) else moment
