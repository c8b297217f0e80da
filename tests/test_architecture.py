"""Imports go down only: knowledge <- units/regimen <- pk <- interfaces; web frameworks only inside web/."""

from __future__ import annotations

import ast
from pathlib import Path

import benzotaper

ROOT = Path(benzotaper.__file__).parent
LAYER = {
    "knowledge": 0,
    "errors": 0,
    "units": 1,
    "regimen": 1,
    "equivalence": 1,
    "pk": 2,
    "simulate": 3,
    "taper": 3,
    "assess": 3,
    "tdm": 3,
    "cohort": 3,
    "report": 4,
    "cli": 4,
    "clitools": 4,
    "plan_cli": 4,
    "assess_cli": 4,
    "screen_cli": 4,
    "mirror_cli": 4,
    "levels_cli": 4,
    "cohort_cli": 4,
    "fhir": 4,
    "fhir_cli": 4,
    "web": 4,
    "web_cli": 4,
}
FORBIDDEN = ("django", "pyspark", "ninja")
ENGINE_LAYER = Path("cohort") / "engine.py"  # the one module allowed to speak to Spark


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def test_modules_import_only_lower_layers() -> None:
    for path in ROOT.rglob("*.py"):
        own = path.relative_to(ROOT).parts[0].removesuffix(".py")
        if own not in LAYER:
            continue
        for name in _imports(path):
            if name.startswith("benzotaper."):
                target = name.split(".")[1]
                assert LAYER.get(target, 0) <= LAYER[own], f"{path.name} imports {name}"
            allowed = name.startswith("pyspark") and path.relative_to(ROOT) == ENGINE_LAYER
            allowed = allowed or (own == "web" and name.startswith(("django", "ninja")))
            assert allowed or not name.startswith(FORBIDDEN), f"{path.name} imports {name}"
