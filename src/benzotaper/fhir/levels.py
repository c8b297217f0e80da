"""Serum levels: tdm Sample <-> FHIR Observation (LOINC where verified, UCUM units, '<' for values below the LLOQ).

Import goes through the levels reader of the core (tdm.samples.read_samples): the same unit conversion (ng/mL,
µg/L, nmol/L with the analyte's molar mass), censoring and plausibility limit as a levels CSV.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from typing import Any

from benzotaper.errors import BenzotaperError
from benzotaper.fhir.codes import Coder
from benzotaper.fhir.context import ExportContext
from benzotaper.fhir.elements import (
    Json,
    Refusal,
    coding,
    concept,
    extension,
    extensions,
    fhir_datetime,
    has_clock_time,
    parse_datetime,
)
from benzotaper.knowledge import Knowledge
from benzotaper.tdm.samples import DEQ, Sample, read_samples
from benzotaper.units import CONCENTRATION_UNITS, from_ng_ml, to_ng_ml

READ_STATUSES = ("final", "amended", "corrected", "preliminary")
NG_ML = "ng/mL"
_STRING_VALUE = re.compile(r"^\s*(?P<cmp><=?|>=?)?\s*(?P<n>\d+(?:[.,]\d+)?)\s*(?P<unit>\S+)\s*$")


def observation(sample: Sample, ctx: ExportContext) -> Json:
    """One level as an Observation; a censored level is '<' the LLOQ."""
    codes = ctx.codes
    value = sample.value if sample.value is not None else sample.lloq
    quantity: Json = {"value": value, "unit": NG_ML, "system": codes.system("ucum"), "code": NG_ML}
    if sample.value is None:
        quantity = {"comparator": "<", **quantity}
    extra = []
    if sample.lloq is not None and sample.value is not None:
        lloq = {"value": sample.lloq, "unit": NG_ML, "system": codes.system("ucum"), "code": NG_ML}
        extra.append(extension(ctx.ext("lloq"), valueQuantity=lloq))
    if sample.last_dose_at is not None:
        extra.append(extension(ctx.ext("last-dose"), valueDateTime=fhir_datetime(sample.last_dose_at, ctx.offset)))
    if sample.reported:
        extra.append(extension(ctx.ext("reported-value"), valueString=sample.reported))
    key = f"{sample.analyte}/{sample.sampled_at.isoformat()}"
    obs: Json = {
        "resourceType": "Observation",
        "id": ctx.resource_id(ctx.url("Observation", key)),
        "status": "final",
        "category": [concept([coding(codes.system("observation_category"), "laboratory", "Laboratory")])],
        "code": ctx.coder.analyte_concept(sample.analyte),
        "subject": ctx.subject(),
        "effectiveDateTime": fhir_datetime(sample.sampled_at, ctx.offset),
        "valueQuantity": quantity,
    }
    if extra:
        obs["extension"] = extra
    if sample.method:
        obs["method"] = {"text": sample.method}
    if sample.lab:
        obs["performer"] = [{"display": sample.lab}]
    return obs


def sample_from(obs: Json, knowledge: Knowledge, coder: Coder, entry: int, where: str) -> Sample:
    """Read an Observation into a Sample (row = bundle entry index); Refusal with the reason when it cannot be."""
    status = obs.get("status")
    if status not in READ_STATUSES:
        raise Refusal(f"status {status!r} is not a result to use (read: {', '.join(READ_STATUSES)})")
    analyte, reason = coder.analyte(obs.get("code"))
    if analyte is None:
        raise Refusal(reason)
    when = (
        obs.get("effectiveDateTime") or (obs.get("effectivePeriod") or {}).get("start") or obs.get("effectiveInstant")
    )
    if not has_clock_time(when):
        raise Refusal("sampling time has no clock time (effectiveDateTime with the time of the draw is needed)")
    value, unit = _value(obs)
    lloq = _lloq(obs, coder, knowledge, analyte, unit)
    last = next(
        (e.get("valueDateTime") for e in extensions(obs, coder.codes.local("StructureDefinition", "last-dose"))), None
    )
    row = {
        "sampled_at": parse_datetime(when, f"{where}.effectiveDateTime").isoformat(timespec="seconds"),
        "analyte": analyte,
        "value": value,
        "unit": unit,
        "lloq": lloq,
        "last_dose_at": parse_datetime(last, f"{where}.extension[last-dose]").isoformat() if last else "",
        "lab": " ".join(str(p.get("display", "")) for p in obs.get("performer", [])).strip(),
        "method": str((obs.get("method") or {}).get("text", "")),
    }
    sample = _read_row(knowledge, row)
    reported = next(
        (e.get("valueString") for e in extensions(obs, coder.codes.local("StructureDefinition", "reported-value"))),
        None,
    )
    return replace(sample, row=entry, reported=reported or f"{value} {unit}")


def _value(obs: Json) -> tuple[str, str]:
    quantity = obs.get("valueQuantity")
    if isinstance(quantity, dict):
        comparator = quantity.get("comparator")
        number = quantity.get("value")
        unit = str(quantity.get("code") or quantity.get("unit") or "")
        if number is None or not unit:
            raise Refusal("unit not accepted: the value needs a number and a unit (UCUM code or unit)")
        _check_unit(unit)
        return _with_comparator(comparator, _number_text(float(number))), unit
    text = obs.get("valueString")
    if isinstance(text, str):
        m = _STRING_VALUE.match(text)
        if m is None:
            raise Refusal(f"value {text!r} is not a number with a unit such as '45 ng/mL' or '<5 ng/mL'")
        _check_unit(m["unit"])
        return _with_comparator(m["cmp"], m["n"].replace(",", ".")), m["unit"]
    raise Refusal("no value: a level needs valueQuantity (or valueString '45 ng/mL')")


def _number_text(x: float) -> str:
    """The shortest text that reads back as exactly this float ('350', '243.63899999999995')."""
    short = format(x, ".15g")
    return short if float(short) == x else repr(x)


def _check_unit(unit: str) -> None:
    """Refuse a unit that is not a concentration (mass or amount per volume), naming the accepted ones."""
    try:
        to_ng_ml(1.0, unit, 1.0)
    except BenzotaperError:
        accepted = ", ".join(CONCENTRATION_UNITS)
        molar = "molar units with the analyte's molar mass"
        raise Refusal(f"unit not accepted: {unit!r} (accepted: {accepted}; {molar})") from None


def _with_comparator(comparator: Any, number: str) -> str:
    if comparator in (">", ">="):
        raise Refusal(f"value {comparator}{number} is above the measuring range; it cannot be used as a level")
    return f"<{number}" if comparator in ("<", "<=") else number


def _lloq(obs: Json, coder: Coder, knowledge: Knowledge, analyte: str, unit: str) -> str:
    found = next(
        (e.get("valueQuantity") for e in extensions(obs, coder.codes.local("StructureDefinition", "lloq"))), None
    )
    if not isinstance(found, dict) or found.get("value") is None:
        return ""
    mass = knowledge.analytes["diazepam" if analyte == DEQ else analyte].molar_mass.value
    try:
        ng = to_ng_ml(float(found["value"]), str(found.get("code") or found.get("unit")), mass)
        return repr(from_ng_ml(ng, unit, mass)) if unit != found.get("code") else repr(float(found["value"]))
    except BenzotaperError as exc:
        raise Refusal(f"unit not accepted for the LLOQ: {exc}") from None


def _read_row(knowledge: Knowledge, row: dict[str, str]) -> Sample:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(row), lineterminator="\n")
    writer.writeheader()
    writer.writerow(row)
    try:
        return read_samples(knowledge, out.getvalue())[0]
    except BenzotaperError as exc:
        message = re.sub(r"^levels row \d+, column '(\w+)'", r"\1", str(exc))
        if "concentration unit" in message or "needs the analyte's molar mass" in message:
            message = f"unit not accepted: {message}"
        raise Refusal(message) from None
