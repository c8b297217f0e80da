"""The core's knowledge bases (drugs, instruments, safety net, mirror rules), loaded once per process."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.knowledge.instruments import Instrument, load_instruments
from benzotaper.knowledge.mirror_rules import MirrorKnowledge, load_mirror_knowledge
from benzotaper.knowledge.safety_net import SafetyNet, load_safety_net


@lru_cache(maxsize=1)
def knowledge() -> Knowledge:
    """The drug knowledge base, loaded once per process."""
    return load_knowledge()


@lru_cache(maxsize=1)
def instruments() -> Mapping[str, Instrument]:
    """CIWA-B, BWSQ and SDS by id."""
    return load_instruments()


@lru_cache(maxsize=1)
def safety_net() -> SafetyNet:
    """Risk factors, red flags and crisis lines."""
    return load_safety_net()


@lru_cache(maxsize=1)
def mirror_knowledge() -> MirrorKnowledge:
    """The mirror analysis' vocabulary and weights."""
    return load_mirror_knowledge()
