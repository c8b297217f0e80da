"""`{{ key|source_link }}`: a knowledge-base source key as a link to its citation on the sources page."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.html import format_html

from benzotaper.web import kb

register = template.Library()


@register.filter
def source_link(key: object) -> str:
    """A link to the source's entry (its citation as the title); unknown keys stay plain text."""
    text = str(key)
    found = kb.sources().get(text)
    if found is None:
        return text
    return str(format_html('<a href="{}#src-{}" title="{}">{}</a>', reverse("sources"), text, found.citation, text))
