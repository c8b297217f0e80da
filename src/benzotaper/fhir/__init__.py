"""FHIR R4 in and out, and the logic of a CDS Hooks service (no HTTP here; the web app serves it).

Resources are built and read as plain JSON dicts and validated with the R4 models of fhir.resources
(`fhir.resources.R4B`: fhir.resources 8 defaults to R5). Public entry points:

- `import_bundle(bundle, knowledge)` -> ImportResult: patients, regimens, levels, scale scores, taper plans,
  and every record that could not be mapped, with the reason.
- `export_patient_bundle(knowledge, record)` -> a Bundle (type collection) for one patient.
- `discovery()`, `order_sign(request)`, `order_select(request)`: CDS Hooks 2.0 service logic.
"""

from benzotaper.fhir.cds_hooks import discovery, order_select, order_sign
from benzotaper.fhir.exporter import PatientExport, export_patient_bundle
from benzotaper.fhir.importer import import_bundle
from benzotaper.fhir.plan_json import plan_from_json
from benzotaper.fhir.records import (
    CoMedication,
    ImportResult,
    MedicationRecord,
    PatientInfo,
    PatientRecord,
    ScaleResult,
    Unmapped,
)

__all__ = [
    "CoMedication",
    "ImportResult",
    "MedicationRecord",
    "PatientExport",
    "PatientInfo",
    "PatientRecord",
    "ScaleResult",
    "Unmapped",
    "discovery",
    "export_patient_bundle",
    "import_bundle",
    "order_select",
    "order_sign",
    "plan_from_json",
]
