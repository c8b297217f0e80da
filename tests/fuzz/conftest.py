"""Fuzz-run checks: each surface's main property really saw FUZZ_EXAMPLES inputs; the counts are printed.

Hypothesis' `max_examples` is an upper bound: a strategy that filters too much or runs out of distinct
inputs stops early and still passes. So every test using the shared FUZZ settings is held to the
count it asked for: the fixture wraps hypothesis' `inner_test` (reassignable for exactly such wrappers)
and counts the inputs the test body was called with.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from tests.fuzz.contract import EXAMPLES, report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = report()
    if lines:
        terminalreporter.section("fuzz: inputs per surface")
        for line in lines:
            terminalreporter.write_line(line)


_PASSED = pytest.StashKey[bool]()  # the call phase passed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Keep the call phase's outcome on the item, so the floor below is only checked on a passing run."""
    report_ = yield
    if report_.when == "call":
        item.stash[_PASSED] = report_.passed
    return report_



def _asked(function: Any) -> int | None:
    """max_examples of a hypothesis test run at the shared FUZZ settings, else None."""
    chosen = getattr(function, "_hypothesis_internal_use_settings", None)
    return EXAMPLES if chosen is not None and chosen.max_examples == EXAMPLES else None


@pytest.fixture(autouse=True)
def _saw_the_inputs_it_asked_for(request: pytest.FixtureRequest) -> Iterator[None]:
    function = getattr(request.node, "function", None)
    asked = _asked(function)
    if asked is None or function is None:
        yield
        return
    handle = function.hypothesis
    original = handle.inner_test
    calls = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    handle.inner_test = counted
    try:
        yield
    finally:
        handle.inner_test = original
    if request.node.stash.get(_PASSED, False):
        assert calls[0] >= asked, f"{request.node.name} ran {calls[0]} inputs, fewer than the {asked} it asked for"
