"""Shared fixtures: the knowledge base is loaded once per test session."""

from __future__ import annotations

import pytest

from benzotaper.knowledge import Knowledge, load_knowledge


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_knowledge()
