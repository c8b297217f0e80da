"""The safety net's records: crisis lines, risk factors, co-use warnings, red flags, dependence signs, pathways.

Pure frozen dataclasses; reading and validating them from TOML lives in benzotaper.knowledge.safety_net.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from benzotaper.knowledge.records import Quantity, Source


@dataclass(frozen=True, slots=True)
class CrisisLine:
    """A phone line people in crisis can call, with its operator and source."""

    name: str
    operator: str
    number: str
    kind: str
    hours: str
    languages: tuple[str, ...]
    channels: tuple[str, ...]
    url: str
    sources: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class EmergencyNumber:
    """The number for immediate danger (ambulance, police, fire)."""

    number: str
    name: str
    sources: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class CountryHelp:
    """Crisis lines and the emergency number of one country (ISO 3166 alpha-2 code)."""

    code: str
    name: str
    emergency: EmergencyNumber
    lines: tuple[CrisisLine, ...]


@dataclass(frozen=True, slots=True)
class CrisisData:
    """Every country's help, the EU 112 fallback and the emergency advice shown with them."""

    countries: Mapping[str, CountryHelp]
    aliases: Mapping[str, str]
    eu_members: frozenset[str]
    eu_emergency: EmergencyNumber
    advice: str
    advice_sources: tuple[str, ...]
    generic_advice: str


@dataclass(frozen=True, slots=True)
class Trigger:
    """When a risk factor is present: a profile flag, a number over a threshold, a co-used substance..."""

    kind: str
    values: tuple[str, ...]
    field: str = ""


@dataclass(frozen=True, slots=True)
class RiskFactor:
    """A risk factor for complicated withdrawal and what it does to the setting."""

    id: str
    name: str
    setting: str
    trigger: Trigger
    reason: str
    reliability: str
    sources: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class CoUseWarning:
    """Why a substance taken with a benzodiazepine is dangerous, and what to do."""

    substance: str
    title: str
    message: str
    advice: str
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RedFlag:
    """A finding that needs urgent help, the phrases that name it and the message shown."""

    id: str
    name: str
    synonyms: tuple[str, ...]
    action: str
    message: str
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SettingRule:
    """Texts and sources of the inpatient/outpatient rule, and the never-stop-abruptly advice."""

    default_reason: str
    inpatient_reason: str
    specialist_reason: str
    rule: str
    sources: tuple[str, ...]
    never_abrupt: str
    never_abrupt_sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DependenceSign:
    """A sign of dependence the screen asks about (answer key = id or a synonym)."""

    id: str
    question: str
    meaning: str
    synonyms: tuple[str, ...]
    reliability: str
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DependenceRule:
    """How many positive signs make dependence likely or possible, and how the SDS adds to them."""

    likely_min_signs: Quantity
    possible_min_signs: Quantity
    sds_note: str


@dataclass(frozen=True, slots=True)
class Pathway:
    """A treatment, support or aftercare option the app can show."""

    id: str
    name: str
    category: str
    description: str
    reliability: str
    sources: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class SafetyNet:
    """Everything the screen, risk, red-flag and crisis modules need; pass it explicitly."""

    sources: Mapping[str, Source]
    crisis: CrisisData
    thresholds: Mapping[str, Quantity]
    factors: tuple[RiskFactor, ...]
    co_use: Mapping[str, CoUseWarning]
    red_flags: tuple[RedFlag, ...]
    setting: SettingRule
    signs: tuple[DependenceSign, ...]
    dependence: DependenceRule
    pathways: tuple[Pathway, ...]
