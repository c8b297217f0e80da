"""Measured serum levels between the records and the core: samples, their reading, one level read in."""

from __future__ import annotations

from typing import Any

from benzotaper.errors import BenzotaperError
from benzotaper.tdm.samples import Sample
from benzotaper.tdm.service import interpret_levels
from benzotaper.web import models as m
from benzotaper.web.clinic_clock import local
from benzotaper.web.kb import knowledge
from benzotaper.web.page_cache import cached
from benzotaper.web.prescriptions import current_sig, current_since


def samples(patient: m.Patient) -> list[Sample]:
    """The patient's levels as the core's samples (ng/mL)."""
    return [
        Sample(
            row=i + 1,
            sampled_at=local(lv.sampled_at),
            analyte=lv.analyte,
            value=lv.value_ng_ml,
            lloq=lv.lloq_ng_ml,
            last_dose_at=local(lv.last_dose_at) if lv.last_dose_at else None,
            lab=lv.lab,
            method=lv.method,
        )
        for i, lv in enumerate(patient.levels.all())
    ]


def level_reading(patient: m.Patient) -> dict[str, Any] | None:
    """Each measured level read against the model for the current regimen (None when not computable)."""

    def compute() -> dict[str, Any] | None:
        sig, since = current_sig(patient), current_since(patient)
        rows = [s for s in samples(patient) if since is not None and s.sampled_at.date() >= since]
        if not sig or since is None or not rows:
            return None
        try:
            return interpret_levels(knowledge(), rows, sig, since)
        except BenzotaperError as exc:
            return {"error": str(exc), "samples": []}

    return cached("levels", patient, compute)


def read_level(fields: dict[str, str]) -> Sample:
    """One level through the core's levels reader (units converted to ng/mL, implausible values refused)."""
    import csv
    import io

    from benzotaper.tdm.samples import OPTIONAL, REQUIRED, read_samples

    columns = [*REQUIRED, *OPTIONAL]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerow({c: fields.get(c, "") for c in columns})
    return read_samples(knowledge(), buffer.getvalue())[0]


def analyte_choices() -> list[tuple[str, str]]:
    """Analytes a level can be recorded for, plus diazepam equivalents (immunoassay)."""
    names = sorted((a.id, a.name) for a in knowledge().analytes.values())
    return [*names, ("diazepam_equivalents", "diazepam equivalents (immunoassay)")]
