"""Serves Plotly's JavaScript from the installed plotly package (no CDN, no copy in our tree)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly  # type: ignore[import-untyped]
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_DIR = Path(plotly.__file__).parent / "package_data"
NAME = "vendor/plotly.min.js"


class PlotlyFinder(BaseFinder):
    """A static-files finder that knows one file: vendor/plotly.min.js."""

    def check(self, **kwargs: Any) -> list[Any]:
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        hit = str(PLOTLY_DIR / "plotly.min.js") if path == NAME else None
        if find_all:
            return [hit] if hit else []
        return hit or []

    def list(self, ignore_patterns: Any) -> Any:
        storage = FileSystemStorage(location=str(PLOTLY_DIR))
        storage.prefix = "vendor"
        yield "plotly.min.js", storage
