"""`{% idempotency_field %}`: a form's hidden key, new for each rendering, so a resent form records once."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from benzotaper.web.idempotency import FIELD, new_key

register = template.Library()


@register.simple_tag
def idempotency_field() -> str:
    """A hidden input carrying a fresh idempotency key."""
    return str(format_html('<input type="hidden" name="{}" value="{}">', FIELD, new_key()))
