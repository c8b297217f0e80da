"""The thresholds one cohort run uses, from cohort.toml unless the analyst overrides them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from benzotaper.errors import CohortError

# The dates (and birth years) an input may hold. Not a plausibility rule (OHDSI's Data Quality
# Dashboard flags dates before 1950 and lets the analyst judge): the widest span in which every date
# plus the longest supply and window stays a date that each engine, Arrow and Python can hold, and
# the per-year tables (one row per year from the first episode to the last) stay small.
FIRST_DATE, LAST_DATE = date(1800, 1, 1), date(2199, 12, 31)


@dataclass(frozen=True)
class LongTerm:
    """One long-term-use indicator: an episode lasting more than `days` days."""

    name: str
    days: int
    source: str


@dataclass(frozen=True)
class CohortSettings:
    """Plain numbers (days, mg diazepam-equivalent per day) plus the source of each default."""

    gap_days: int
    long_term: tuple[LongTerm, ...]
    high_dose_de_mg: float
    min_prescribers: int
    prescriber_window_days: int
    escalation_min_days: int
    escalation_min_prescriptions: int
    escalation_per_year: float
    plausible_max_de_mg: float
    max_days_supply: int
    age_bands: tuple[int, ...]
    review_long_term: str
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks: list[tuple[str, Any, bool, str]] = [
            ("gap_days", self.gap_days, 0 <= self.gap_days <= 365, "a whole number of days from 0 to 365"),
            ("high_dose", self.high_dose_de_mg, 0 < self.high_dose_de_mg < 1000, "mg/day between 0 and 1000"),
            ("min_prescribers", self.min_prescribers, 2 <= self.min_prescribers <= 50, "2 to 50"),
            (
                "prescriber_window_days",
                self.prescriber_window_days,
                1 <= self.prescriber_window_days <= 3660,
                "1 to 3660 days",
            ),
            ("escalation_per_year", self.escalation_per_year, 0 < self.escalation_per_year < 100, "a fraction > 0"),
        ]
        for name, value, ok, accepted in checks:
            if not ok:
                raise CohortError(f"{name} must be {accepted} (got {value})")
        if list(self.age_bands) != sorted(set(self.age_bands)) or not self.age_bands or self.age_bands[0] != 0:
            raise CohortError(f"age bands must start at 0 and increase (got {list(self.age_bands)})")
        if self.review_long_term not in {t.name for t in self.long_term}:
            raise CohortError(f"review_long_term must name a long-term indicator (got {self.review_long_term!r})")

    def with_overrides(self, gap_days: int | None = None, high_dose: float | None = None) -> CohortSettings:
        """The same settings with the analyst's command-line overrides."""
        changed = self
        if gap_days is not None:
            changed = replace(changed, gap_days=gap_days)
        if high_dose is not None:
            changed = replace(changed, high_dose_de_mg=high_dose)
        return changed

    def age_band(self, age: int) -> str:
        """'18-44' style label of the band holding `age` (the last band is open: '80+')."""
        bands = self.age_bands
        for lo, hi in itertools.pairwise(bands):
            if lo <= age < hi:
                return f"{lo}-{hi - 1}"
        return f"{bands[-1]}+"

    def band_table(self) -> list[tuple[str, int, int]]:
        """(label, lowest age, highest age) for each band; the open band ends at 200."""
        bands = self.age_bands
        rows = [(f"{lo}-{hi - 1}", lo, hi - 1) for lo, hi in itertools.pairwise(bands)]
        return [*rows, (f"{bands[-1]}+", bands[-1], 200)]
