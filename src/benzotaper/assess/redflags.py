"""Red flags: findings (suicidal thoughts, a seizure, confusion...) that trigger an urgent message with crisis help.

A finding matches a red flag when one of its phrases appears in it as whole words, in any case and spelling of
spaces, hyphens or underscores ("Suicidal ideation", "suicidal_thoughts"). A finding that starts with a
negation ("no seizures", "denies suicidal thoughts") does not match.

>>> [a.flag for a in red_flags(["suicidal ideation", "tinnitus"], country="GB")]
['suicidal_thoughts']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from benzotaper.assess.crisis import CrisisHelp, crisis_help, generic_help, source_list
from benzotaper.knowledge.safety_net import RedFlag, SafetyNet, load_safety_net

SEVERITY = "urgent"
NEGATIONS = ("no", "not", "denies", "denied", "without", "never", "none")


@dataclass(frozen=True, slots=True)
class Alert:
    """An urgent message for one red flag, with the crisis help of the patient's country."""

    flag: str
    name: str
    severity: str
    action: str
    message: str
    finding: str
    help: CrisisHelp
    sources: tuple[str, ...]

    def to_dict(self, net: SafetyNet) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "flag": self.flag,
            "name": self.name,
            "severity": self.severity,
            "action": self.action,
            "message": self.message,
            "finding": self.finding,
            "help": self.help.to_dict(net),
            "sources": source_list(net, self.sources),
        }


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9']+", " ", text.lower()).split())


def _negated(words: str) -> bool:
    return words.split(" ", 1)[0] in NEGATIONS


def matching_flag(finding: str, net: SafetyNet) -> RedFlag | None:
    """The first red flag a finding names, or None."""
    words = _words(finding)
    if not words or _negated(words):
        return None
    padded = f" {words} "
    for flag in net.red_flags:
        if any(f" {_words(p)} " in padded for p in (flag.id, *flag.synonyms)):
            return flag
    return None


def red_flags(findings: Iterable[str], net: SafetyNet | None = None, country: str | None = None) -> list[Alert]:
    """One urgent alert per red flag named in the findings, in the order they first appear.

    `country` (ISO alpha-2) adds that country's crisis lines; without it the alert carries generic emergency
    advice. An unknown country is refused (see crisis_help) rather than guessed.
    """
    net = net or load_safety_net()
    found: dict[str, tuple[RedFlag, str]] = {}
    for finding in findings:
        flag = matching_flag(finding, net)
        if flag is not None and flag.id not in found:
            found[flag.id] = (flag, finding)
    if not found:
        return []
    help_ = crisis_help(country, net) if country else generic_help(net)
    return [
        Alert(flag.id, flag.name, SEVERITY, flag.action, flag.message, finding, help_, (*flag.sources, *help_.sources))
        for flag, finding in found.values()
    ]
