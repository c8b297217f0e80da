"""Prints the fuzz counts per surface at the end of the run (the figures of docs/reliability.md §1)."""

from __future__ import annotations

from typing import Any

from tests.fuzz.contract import report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = report()
    if lines:
        terminalreporter.section("fuzz: inputs per surface")
        for line in lines:
            terminalreporter.write_line(line)
