"""The command line: output shapes other programs rely on, and exit code 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benzotaper.cli import app

runner = CliRunner()


def _json(args: list[str]) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_drugs_lists_every_drug_with_sources() -> None:
    rows = _json(["drugs"])["drugs"]
    assert len(rows) >= 23
    alpra = next(r for r in rows if r["drug"] == "alprazolam")
    assert alpra["equivalent_to_10mg_diazepam_mg"] == 0.5 and alpra["sources"]


def test_convert_reports_value_range_and_sources() -> None:
    data = _json(["convert", "6", "mg", "alprazolam", "--to", "diazepam"])
    assert data["from"] == {"drug": "alprazolam", "mg": 6.0}
    # Ashton: 0.5 mg alprazolam = 10 mg diazepam -> 120 mg; VA/DoD 1 mg = 10 mg -> 60 mg (S1)
    assert data["to"]["drug"] == "diazepam" and data["to"]["mg"] == 120.0
    assert data["to"]["range_mg"] == [60.0, 120.0]
    assert any("Joint Clinical Practice Guideline" in s["citation"] for s in data["sources"])


def test_convert_accepts_micrograms() -> None:
    assert _json(["convert", "500", "mcg", "alprazolam"])["to"]["mg"] == 10.0


def test_simulate_gives_metrics_and_flags_alprazolam_interdose_withdrawal(tmp_path: Path) -> None:
    png = tmp_path / "curve.png"
    data = _json(["simulate", "alprazolam 2 mg tds", "--days", "14", "--start", "2026-01-01", "--plot", str(png)])
    a = data["analytes"]["alprazolam"]
    assert set(a) >= {"cmax_ng_ml", "tmax_h", "trough_ng_ml", "half_life_h"}
    assert data["interdose_withdrawal"] is True
    assert len(data["days"]) == 14
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_simulate_does_not_flag_diazepam() -> None:
    data = _json(["simulate", "diazepam 10 mg tds", "--days", "21", "--start", "2026-01-01"])
    assert data["interdose_withdrawal"] is False
    assert set(data["analytes"]) == {"diazepam", "nordiazepam"}


@pytest.mark.parametrize(
    "args",
    [
        ["convert", "6", "mg", "alprazolm"],
        ["convert", "6", "mL", "alprazolam"],
        ["convert", "-6", "mg", "alprazolam"],
        ["convert", "6", "mg", "eszopiclone"],
        ["simulate", "alprazolam 200 mg tds"],
        ["simulate", "alprazolam 2 mg sometimes"],
        ["simulate", "estazolam 1 mg nocte"],
        ["simulate", "alprazolam 2 mg tds", "--start", "yesterday"],
        ["simulate", "alprazolam 2 mg tds", "--days", "0"],
    ],
)
def test_bad_input_exits_2_with_a_message(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "error" in result.stderr.lower()


def test_demo_runs_the_worked_case() -> None:
    data = _json(["demo"])
    assert data["conversion"]["to"]["mg"] == 120.0
    assert data["alprazolam"]["interdose_withdrawal"] is True
    assert data["diazepam"]["interdose_withdrawal"] is False
