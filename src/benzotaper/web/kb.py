"""The core's knowledge bases (drugs, instruments, safety net, mirror rules, TDM), loaded once per process."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.knowledge.instruments import Instrument, load_instruments
from benzotaper.knowledge.mirror_rules import MirrorKnowledge, load_mirror_knowledge
from benzotaper.knowledge.records import Source
from benzotaper.knowledge.safety_net import SafetyNet, load_safety_net
from benzotaper.knowledge.tdm_rules import load_tdm_knowledge


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


@lru_cache(maxsize=1)
def sources() -> Mapping[str, Source]:
    """Every source the app can cite, by key: each knowledge base keeps its own list beside the shared one.

    The pages link a rule's or a number's source to the sources page; a key only the TDM, scale, safety
    net or mirror files define (e.g. `sheiner1979` behind the fit) must be found there too.
    """
    merged = dict(knowledge().sources)
    others = [load_tdm_knowledge().sources, safety_net().sources, mirror_knowledge().sources]
    others += [instrument.sources for instrument in instruments().values()]
    for more in others:
        for key, source in more.items():
            merged.setdefault(key, source)
    return dict(sorted(merged.items()))
