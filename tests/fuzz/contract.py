"""The fuzz contract shared by every input surface (issue 19 §1).

An input is accepted, or refused with the project's own error (a `BenzotaperError`) whose message is one
non-empty line; any other exception, or an input slower than the time bound, fails the property. At the
command line the same input ends with exit code 0, or 2 with exactly one `error:` line on stderr and no
traceback. Every call is counted per surface, and the counts are printed at the end of the run.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

from benzotaper.cli import app
from benzotaper.errors import BenzotaperError

T = TypeVar("T")

# At least 10,000 generated inputs per surface in CI (FUZZ_EXAMPLES lowers it for a quick local look).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10000"))
TIME_BOUND_S = 2.0  # per input: a parse, a fit or an import that takes longer is a hang
# CI draws the same inputs every run (hypothesis derives the seed from each test's code), so a red CI is the
# change's and reproducible; FUZZ_RANDOM=1 explores new inputs (how the failures in docs/reliability.md were found).
RANDOM = bool(os.environ.get("FUZZ_RANDOM"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=not RANDOM,
    deadline=timedelta(seconds=TIME_BOUND_S),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,  # CI's clean clone has none
)


@dataclass
class Tally:
    """How many inputs a surface saw and what became of them."""

    inputs: int = 0
    accepted: int = 0
    refused: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # refusals by error class


TALLIES: dict[str, Tally] = {}


def tally(surface: str) -> Tally:
    return TALLIES.setdefault(surface, Tally())


def accepted_or_refused(surface: str, call: Callable[[], T], mentions: Sequence[str] = ()) -> T | BenzotaperError:
    """Run `call`; return its result, or the project's error it raised after checking the message.

    `mentions`: strings at least one of which the refusal must name (the field, the line, the value).
    Any exception that is not a BenzotaperError propagates and fails the property.
    """
    count = tally(surface)
    count.inputs += 1
    started = time.perf_counter()
    try:
        result = call()
    except BenzotaperError as exc:
        count.refused += 1
        count.errors[type(exc).__name__] += 1
        check_message(str(exc), mentions)
        return exc
    finally:
        elapsed = time.perf_counter() - started
        assert elapsed < TIME_BOUND_S, f"{surface}: one input took {elapsed:.2f} s (bound {TIME_BOUND_S} s)"
    count.accepted += 1
    return result


def check_message(message: str, mentions: Sequence[str] = ()) -> None:
    """A refusal is one non-empty line, names one of `mentions` if given, and is not a raw library message."""
    assert message.strip(), "a refusal with an empty message"
    assert "Traceback" not in message, message
    if mentions:
        assert any(m in message for m in mentions), f"{message!r} names none of {list(mentions)}"


_runner = CliRunner()


def cli(surface: str, args: list[str]) -> tuple[int, str, str]:
    """Run `benzotaper ARGS`; assert exit 0, or exit 2 with one `error:` line on stderr. Returns the three."""
    count = tally(surface)
    count.inputs += 1
    result = _runner.invoke(app, args, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"benzotaper {args!r} raised {result.exception!r}") from result.exception
    assert result.exit_code in (0, 2), f"benzotaper {args!r}: exit {result.exit_code}, stderr {result.stderr!r}"
    if result.exit_code == 0:
        count.accepted += 1
    else:
        count.refused += 1
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), f"benzotaper {args!r}: stderr {result.stderr!r}"
        assert "Traceback" not in result.stderr
    return result.exit_code, result.stdout, result.stderr


def report() -> list[str]:
    """One line per surface: inputs, accepted, refused (by error class)."""
    lines = []
    for name, t in sorted(TALLIES.items()):
        kinds = ", ".join(f"{k} {v}" for k, v in t.errors.most_common())
        lines.append(f"{name}: {t.inputs} inputs, {t.accepted} accepted, {t.refused} refused ({kinds or 'none'})")
    return lines


def any_of(values: Sequence[Any]) -> list[str]:
    """Text forms of `values` a message may name (str and repr)."""
    return [s for v in values for s in (str(v), repr(v))]
