"""The single pint registry of the package (it already reads mcg, µg and ug)."""

from __future__ import annotations

from functools import lru_cache

import pint


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:  # type: ignore[type-arg]
    """Build the registry once; pint's start-up costs ~0.1 s."""
    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
