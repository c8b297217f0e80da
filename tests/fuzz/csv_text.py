"""CSV text for the file fuzzes (levels, events): a table reshaped and rendered, and changes to the whole text."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable, Sequence

from hypothesis import strategies as st

NEWLINES = st.sampled_from(["\n", "\n", "\r\n", "\r"])
WHOLE_FILE = st.sampled_from(["none"] * 6 + ["bom", "blank", "semicolon", "nul", "quote", "truncate", "tabs"])


def table_from_seed(
    seed: int,
    required: Sequence[str],
    optional: Sequence[str],
    keep: float,
    valid_row: Callable[[random.Random, list[str]], dict[str, str]],
) -> tuple[list[str], list[list[str]]]:
    """A valid header (required columns, each optional one kept with probability `keep`, any order) and one to
    six rows, from a seed. Python's random builds the valid file (a draw per cell would cost more than the
    read itself); hypothesis draws the mutations, where its search pays."""
    rng = random.Random(seed)
    columns = [*required, *(c for c in optional if rng.random() < keep)]
    rng.shuffle(columns)
    rows = [valid_row(rng, columns) for _ in range(rng.randint(1, 6))]
    return columns, [[r[c] for c in columns] for r in rows]


MUTATIONS = ["cell", "cell", "cell", "drop", "dup", "extra", "short", "long"]


def reshape(
    kind: str,
    rng: random.Random,
    table: tuple[list[str], list[list[str]]],
    i: int,
    extra_columns: list[str],
    long_cells: list[str],
) -> tuple[list[str], list[list[str]]]:
    """One shape mutation of (columns, rows): a column dropped, repeated or added, row `i` cut or lengthened."""
    columns, body = table
    if kind == "drop" and len(columns) > 1:
        j = rng.randrange(len(columns))
        columns = columns[:j] + columns[j + 1 :]
        if rng.random() < 0.5:  # the cells too (else every row is one longer than the header)
            body = [r[:j] + r[j + 1 :] for r in body]
    elif kind in ("dup", "extra"):
        columns = [*columns, rng.choice(columns if kind == "dup" else extra_columns)]
        body = [[*r, rng.choice(["", "x", "1", *r[:1]])] for r in body]
    elif kind == "short":
        body[i] = body[i][: rng.randrange(len(body[i]) + 1)]
    elif kind == "long":
        body[i] = [*body[i], *rng.choices(long_cells, k=rng.randint(1, 3))]
    return columns, body


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
