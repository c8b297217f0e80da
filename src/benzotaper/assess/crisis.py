"""Crisis help for a country: its crisis lines, its emergency number and what to do now, each with sources.

Country codes are ISO 3166 alpha-2, any case ("UK" is read as GB). An EU member with no stored line gets the
European emergency number 112 and the emergency advice; any other unknown code is refused with the list of
known codes, because a wrong number in a crisis is worse than none.

>>> help = crisis_help("pl")
>>> [line.number for line in help.lines]
['116 123', '800 70 2222']
>>> help.emergency.number if help.emergency else None
'112 (999 ambulance)'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benzotaper.assess.instruments import shown
from benzotaper.errors import AssessmentError
from benzotaper.knowledge.safety_net import CrisisLine, EmergencyNumber, SafetyNet, load_safety_net


@dataclass(frozen=True, slots=True)
class CrisisHelp:
    """What to show a person at risk: crisis lines, the emergency number, advice and their sources."""

    country: str
    name: str
    lines: tuple[CrisisLine, ...]
    emergency: EmergencyNumber | None
    advice: str
    fallback: bool
    sources: tuple[str, ...]

    def help_line(self) -> str:
        """One line of help for a printed plan: when to get help, the crisis lines and the emergency number."""
        lines = "; ".join(f"{line.name} {line.number}" for line in self.lines)
        emergency = f"; emergency {self.emergency.number}" if self.emergency else ""
        return (
            "If you have a seizure, confusion, thoughts of harming yourself or feel very unwell, get help now. "
            f"{self.name}: {lines}{emergency}."
        )

    def to_dict(self, net: SafetyNet) -> dict[str, Any]:
        """JSON-ready form; every source key is expanded with its citation."""
        return {
            "country": self.country or None,
            "name": self.name,
            "lines": [_line_dict(line) for line in self.lines],
            "emergency": _emergency_dict(self.emergency),
            "advice": self.advice,
            "fallback": self.fallback,
            "sources": source_list(net, self.sources),
        }


def _line_dict(line: CrisisLine) -> dict[str, Any]:
    return {
        "name": line.name,
        "number": line.number,
        "hours": line.hours or None,
        "kind": line.kind,
        "url": line.url or None,
        "source": line.sources[0],
        "operator": line.operator,
        "languages": list(line.languages),
        "channels": list(line.channels),
        "note": line.note or None,
        "sources": list(line.sources),
    }


def _emergency_dict(emergency: EmergencyNumber | None) -> dict[str, Any] | None:
    if emergency is None:
        return None
    return {"number": emergency.number, "name": emergency.name, "source": emergency.sources[0]}


def source_list(net: SafetyNet, keys: tuple[str, ...] | list[str]) -> list[dict[str, str | None]]:
    """Source keys (duplicates dropped, order kept) with citation, URL and reliability."""
    return [
        {
            "key": k,
            "citation": net.sources[k].citation,
            "url": net.sources[k].url,
            "reliability": net.sources[k].reliability,
        }
        for k in dict.fromkeys(keys)
    ]


def known_countries(net: SafetyNet) -> list[str]:
    """Codes with stored crisis lines, sorted."""
    return sorted(net.crisis.countries)


def country_code(country: str, net: SafetyNet) -> str:
    """Normalise a country code (case, spaces, aliases such as UK); refuse anything that is not two letters."""
    # ASCII before upper-casing: 'ß'.upper() is 'SS' (South Sudan), and other scripts' letters are no code.
    code = country.strip().upper() if isinstance(country, str) and country.isascii() else ""
    code = net.crisis.aliases.get(code, code)
    if len(code) != 2 or not code.isalpha():
        raise AssessmentError(f"country {shown(country)} is not an ISO 3166 alpha-2 code (e.g. PL, GB, US)")
    return code


def crisis_help(country: str, net: SafetyNet | None = None) -> CrisisHelp:
    """Crisis lines and emergency number for a country; EU members without lines fall back to 112."""
    net = net or load_safety_net()
    code = country_code(country, net)
    data = net.crisis
    if code in data.countries:
        c = data.countries[code]
        keys = (*(k for line in c.lines for k in line.sources), *c.emergency.sources, *data.advice_sources)
        return CrisisHelp(code, c.name, c.lines, c.emergency, data.advice, False, tuple(dict.fromkeys(keys)))
    if code in data.eu_members:
        advice = f"{data.generic_advice} {data.advice}"
        keys = (*data.eu_emergency.sources, *data.advice_sources)
        return CrisisHelp(code, "EU member", (), data.eu_emergency, advice, True, tuple(dict.fromkeys(keys)))
    known = ", ".join(known_countries(net))
    raise AssessmentError(f"no verified crisis lines for country {code!r}; known: {known} (other EU members: 112)")


def generic_help(net: SafetyNet | None = None) -> CrisisHelp:
    """Advice without a country: call the local emergency number (no lines, no number)."""
    net = net or load_safety_net()
    advice = f"{net.crisis.generic_advice} {net.crisis.advice}"
    return CrisisHelp("", "", (), None, advice, True, net.crisis.advice_sources)
