"""CSV text for the file fuzzes (levels, events): a table rendered, and changes to the whole text."""

from __future__ import annotations

import csv
import io
import random

from hypothesis import strategies as st

NEWLINES = st.sampled_from(["\n", "\n", "\r\n", "\r"])
WHOLE_FILE = st.sampled_from(["none"] * 6 + ["bom", "blank", "semicolon", "nul", "quote", "truncate", "tabs"])


def render(columns: list[str], body: list[list[str]], newline: str = "\n") -> str:
    """The header and rows as CSV text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(columns)
    writer.writerows(body)
    return out.getvalue()


def whole_file(kind: str, rng: random.Random, text: str) -> tuple[str, bool]:
    """Changes to the whole text: BOM, blank lines, semicolons, NUL, stray quote, truncation, tabs.

    Returns the text and whether lines may have moved or merged.
    """
    at = rng.randrange(len(text) + 1)
    changed = {
        "bom": ("\ufeff" + text, False),  # a BOM moves no line
        "blank": (text + "\n\n  \n,,,\n", False),
        "semicolon": (text.replace(",", ";"), True),
        "nul": (text[:at] + "\x00" + text[at:], True),
        "quote": (text[:at] + '"' + text[at:], True),
        "truncate": (text[:at], True),
        "tabs": (text.replace(",", "\t"), True),
    }
    return changed.get(kind, (text, False))
