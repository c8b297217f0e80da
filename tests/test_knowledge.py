"""The knowledge base: complete for the required drugs, every number sourced, bad files refused."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from benzotaper.errors import KnowledgeError, UnknownDrugError
from benzotaper.knowledge import Knowledge, Quantity, load_knowledge
from benzotaper.knowledge.loader import DATA_DIR

REQUIRED = [
    "alprazolam",
    "bromazepam",
    "chlordiazepoxide",
    "clobazam",
    "clonazepam",
    "clorazepate",
    "diazepam",
    "estazolam",
    "flunitrazepam",
    "flurazepam",
    "loprazolam",
    "lorazepam",
    "lormetazepam",
    "midazolam",
    "nitrazepam",
    "oxazepam",
    "temazepam",
    "triazolam",
    "zolpidem",
    "zopiclone",
    "eszopiclone",
    "zaleplon",
    "clomethiazole",
]


def _quantities(obj: object) -> list[Quantity]:
    found: list[Quantity] = []
    if isinstance(obj, Quantity):
        return [obj]
    if isinstance(obj, dict):
        for v in obj.values():
            found += _quantities(v)
    elif isinstance(obj, tuple | list):
        for v in obj:
            found += _quantities(v)
    elif hasattr(obj, "__dataclass_fields__"):
        for name in obj.__dataclass_fields__:
            found += _quantities(getattr(obj, name))
    return found


def test_it_knows_every_required_drug(knowledge: Knowledge) -> None:
    missing = [d for d in REQUIRED if d not in knowledge.drugs]
    assert missing == []


def test_every_number_points_to_a_known_source(knowledge: Knowledge) -> None:
    records = [*knowledge.drugs.values(), *knowledge.analytes.values(), knowledge.policy, knowledge.occupancy]
    quantities = [q for r in records for q in _quantities(r)]
    assert len(quantities) > 200
    for q in quantities:
        for key in q.sources:
            assert key in knowledge.sources, key


@pytest.mark.parametrize("drug", REQUIRED)
def test_each_drug_has_codes_names_and_oral_products(knowledge: Knowledge, drug: str) -> None:
    record = knowledge.drug(drug)
    assert record.atc and all(len(code) == 7 for code in record.atc)
    assert 100 < record.molar_mass.value < 600
    assert record.formulations, f"{drug} has no oral formulation"


def test_equivalence_value_lies_in_its_published_range(knowledge: Knowledge) -> None:
    for drug in knowledge.drugs.values():
        if drug.equivalence:
            lo, hi = drug.equivalence.published_range()
            assert lo <= drug.equivalence.used.value <= hi


def test_disagreeing_tables_are_kept_as_a_range(knowledge: Knowledge) -> None:
    # Ashton 0.5 mg vs VA/DoD 1 mg alprazolam (pk_facts §1, Joint Guideline Table 7)
    assert knowledge.drug("alprazolam").equivalence.published_range() == (0.5, 1.0)
    assert knowledge.drug("lorazepam").equivalence.published_range() == (1.0, 2.0)


def test_per_kg_values_are_scaled_to_the_reference_weight(knowledge: Knowledge) -> None:
    # nordiazepam CL 0.24 mL/min/kg (S43) x 70 kg x 60 min/h / 1000 = 1.008 L/h (hand calculation)
    disp = knowledge.analytes["nordiazepam"].disposition
    assert disp is not None
    assert math.isclose(disp.clearance_l_h, 1.008, rel_tol=1e-9)


def test_model_half_life_agrees_with_the_published_range(knowledge: Knowledge) -> None:
    from benzotaper.pk import Simulator, model_half_life

    for analyte in knowledge.analytes.values():
        disp = analyte.disposition
        if disp is None or disp.half_life is None or disp.clearance is None:
            continue
        drug = next((d for d in knowledge.drugs.values() if d.analyte == analyte.id and d.absorption.ka), None)
        if drug is None:
            continue
        sim = Simulator.for_drugs(knowledge, (drug.id,))
        t_half = model_half_life(sim, sim.model.analyte_index(analyte.id))
        lo, hi = disp.half_life.range or (disp.half_life.value, disp.half_life.value)
        assert 0.6 * lo <= t_half <= 1.5 * hi, (analyte.id, t_half, lo, hi)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Xanax", "alprazolam"),
        ("valium", "diazepam"),
        ("Klonopin", "clonazepam"),
        ("ATIVAN", "lorazepam"),
        ("Relanium", "diazepam"),
    ],
)
def test_brand_names_find_the_generic(knowledge: Knowledge, name: str, expected: str) -> None:
    assert knowledge.drug(name).id == expected


def test_an_unknown_drug_gets_a_suggestion(knowledge: Knowledge) -> None:
    with pytest.raises(UnknownDrugError, match="did you mean 'alprazolam'"):
        knowledge.drug("alprazolm")


def _copy_data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def test_a_number_without_a_source_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _copy_data(tmp_path)
    path = data / "drugs" / "diazepam.toml"
    path.write_text(
        path.read_text().replace(
            'bioavailability = { value = 0.97, unit = "", source = "S30",',
            'bioavailability = { value = 0.97, unit = "",',
        )
    )
    monkeypatch.setattr("benzotaper.knowledge.base.DATA_DIR", data)
    with pytest.raises(KnowledgeError, match=r"diazepam.toml: absorption.bioavailability: missing 'source'"):
        load_knowledge()


def test_a_wrong_unit_is_refused_with_the_field_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _copy_data(tmp_path)
    path = data / "drugs" / "diazepam.toml"
    path.write_text(path.read_text().replace('ka = { value = 2.19, unit = "1/h"', 'ka = { value = 2.19, unit = "mg"'))
    monkeypatch.setattr("benzotaper.knowledge.base.DATA_DIR", data)
    with pytest.raises(KnowledgeError, match=r"absorption.ka: unit must convert to one of \['1/h'\]"):
        load_knowledge()


def test_a_value_outside_its_own_range_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _copy_data(tmp_path)
    path = data / "metabolites" / "nordiazepam.toml"
    path.write_text(path.read_text().replace("range = [36, 200]", "range = [70, 200]"))
    monkeypatch.setattr("benzotaper.knowledge.base.DATA_DIR", data)
    with pytest.raises(KnowledgeError, match="nordiazepam.toml: disposition.half_life: range"):
        load_knowledge()


def test_a_clinic_can_add_a_local_drug(tmp_path: Path) -> None:
    local = tmp_path / "clinic"
    (local / "drugs").mkdir(parents=True)
    (local / "drugs" / "prazepam.toml").write_text(
        'id = "prazepam"\nname = "prazepam"\ndrug_class = "benzodiazepine"\natc = ["N05BA11"]\n'
        'analyte = "nordiazepam"\nmolar_mass = { value = 324.8, unit = "g/mol", source = "pubchem" }\n'
        '[[formulation]]\nform = "tablet"\nstrength = { value = 10, unit = "mg", source = "pubchem" }\n'
        'markets = ["local"]\n'
    )
    k = load_knowledge(extra_dirs=[local])
    assert k.drug("prazepam").analyte == "nordiazepam"
