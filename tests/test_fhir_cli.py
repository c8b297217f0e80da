"""`benzotaper fhir ...`: the commands of docs/fhir.md on the files in docs/examples/fhir/, and bad input (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("fhir.resources.R4B")

from typer.testing import CliRunner

from benzotaper.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).parent.parent / "docs" / "examples" / "fhir"


def test_import_prints_patients_regimens_and_the_unmapped_list() -> None:
    result = runner.invoke(app, ["fhir", "import", str(EXAMPLES / "synthea_alprazolam.json"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (patient,) = data["patients"]
    assert [m["regimens"][0]["daily_mg"] for m in patient["medications"]] == [1.5, 1.5, 2.0, 3.0]
    assert [u["reason"] for u in data["unmapped"]] == [
        "no benzodiazepine or Z-drug: code not in value sets: RxNorm 4493 (fluoxetine)"
    ]
    assert data["not_read"]["Encounter"] == 1


def test_import_text_output_groups_the_reasons() -> None:
    result = runner.invoke(app, ["fhir", "import", str(EXAMPLES / "ehr_dosage_forms_levels_scales.json")])
    assert result.exit_code == 0, result.output
    assert "route rectal is not modelled" in result.stdout
    assert "ciwa_b 2026-02-16T09:30: total 24 (moderate)" in result.stdout


def test_export_writes_a_bundle_that_imports_back(tmp_path: Path) -> None:
    args = ["fhir", "export", "--plan", str(EXAMPLES / "plan.json"), "--patient-id", "p-0001",
            "--levels", str(EXAMPLES / "levels.csv"),
            "--score", f"ciwa-b:{EXAMPLES / 'ciwa_b_answers.json'}@2026-04-27T09:00"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    plan = json.loads((EXAMPLES / "plan.json").read_text())
    assert kinds.count("Observation") == 3 and kinds.count("QuestionnaireResponse") == 1
    path = tmp_path / "bundle.json"
    path.write_text(result.stdout)
    back = json.loads(runner.invoke(app, ["fhir", "import", str(path), "--json"]).stdout)
    (imported,) = back["patients"][0]["plans"]
    assert (imported["start"], imported["end_date"], imported["steps"]) == (
        plan["start"],
        plan["end_date"],
        len(plan["steps"]),
    )
    assert back["patients"][0]["scores"][0]["total"] == 16  # the answers file adds up to 16


def test_cds_order_sign_offline() -> None:
    result = runner.invoke(
        app, ["fhir", "cds", "order-sign", str(EXAMPLES / "cds_order_sign_alprazolam.json"), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["cards"]) == 5


def test_cds_discovery() -> None:
    result = runner.invoke(app, ["fhir", "cds", "discovery"])
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)["services"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fhir", "import", "missing.json"], "bundle 'missing.json' cannot be read"),
        (["fhir", "export", "--plan", str(EXAMPLES / "levels.csv")], "levels.csv: not valid JSON"),
        (["fhir", "export", "--status", "final"], "status must be one of ['draft', 'active']"),
        (["fhir", "cds", "order-sign", str(EXAMPLES / "synthea_alprazolam.json")], "hook: expected 'order-sign'"),
        (["fhir", "export", "--score", "ciwa-b"], "--score must look like ciwa-b:answers.json@"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
