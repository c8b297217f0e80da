"""Read a FHIR R4 Bundle (JSON) into the core types, patient by patient.

Read: Patient; MedicationRequest and MedicationStatement (dosage coded or free text, through the core's sig
parser); Observation (serum levels); QuestionnaireResponse (CIWA-B, BWSQ, SDS); benzotaper taper plans (CarePlan +
step MedicationRequests). A record that cannot be mapped is listed with the reason, never dropped; resource types
that are not read (Encounter, Condition, vital signs, ...) are counted. A malformed bundle raises FhirError naming
the entry, the resource and the field.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from pydantic import ValidationError

from benzotaper.assess.timeline import Patient
from benzotaper.errors import FhirError
from benzotaper.fhir.codes import BZD, NONE, OPIOID, Coder, MedicationMatch, one_line
from benzotaper.fhir.dosage import DosageReader
from benzotaper.fhir.elements import Json, Refusal, code_in, concept_text, parse_date, shown
from benzotaper.fhir.levels import sample_from
from benzotaper.fhir.questionnaires import result_from
from benzotaper.fhir.records import (
    CoMedication,
    ImportResult,
    MedicationRecord,
    PatientInfo,
    PatientRecord,
    ScaleResult,
    Unmapped,
)
from benzotaper.fhir.taper_plan import is_plan, is_step, plan_from_resources
from benzotaper.fhir.validation import describe, normalized
from benzotaper.knowledge import Knowledge
from benzotaper.taper.plan import Plan
from benzotaper.tdm.samples import Sample

READ_TYPES = ("Patient", "MedicationRequest", "MedicationStatement", "Medication", "Observation",
              "QuestionnaireResponse", "CarePlan")  # fmt: skip
NOT_USED = {
    "MedicationRequest": ("entered-in-error", "cancelled"),
    "MedicationStatement": ("entered-in-error", "not-taken"),
}
SUPPLY_DAYS = {"d": 1, "wk": 7}
READ_CATEGORIES = ("laboratory",)


def import_bundle(bundle: Any, knowledge: Knowledge, *, check: bool = True, coder: Coder | None = None) -> ImportResult:
    """Map a Bundle; `check` validates every read resource against the R4 models first (FhirError if malformed).

    With `check`, the resources read are those the models give back (elements of the types FHIR defines).
    """
    entries = _entries(bundle)
    if check:
        entries = [(i, url, normalized(r, describe(r, i)) if r["resourceType"] in READ_TYPES else r)
                   for i, url, r in entries]  # fmt: skip
    return _Reader(knowledge, coder or Coder(knowledge), entries).run()


def _entries(bundle: Any) -> list[tuple[int, str | None, Json]]:
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        got = bundle.get("resourceType") if isinstance(bundle, Mapping) else type(bundle).__name__
        raise FhirError(f"bundle: resourceType must be 'Bundle' (got {got!r})")
    raw = bundle.get("entry", [])
    if not isinstance(raw, list):
        raise FhirError(f"bundle: entry must be a list (got {type(raw).__name__})")
    out = []
    for i, entry in enumerate(raw):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
            raise FhirError(f"bundle entry[{i}].resource: expected a resource with a resourceType")
        url = entry.get("fullUrl")
        if url is not None and not isinstance(url, str):
            raise FhirError(f"bundle entry[{i}].fullUrl: expected a URI string (got {shown(url)})")
        out.append((i, url, dict(resource)))
    return out


class _Reader:
    """One pass over the entries; collects per-patient records, unmapped records and counts of the rest."""

    def __init__(self, knowledge: Knowledge, coder: Coder, entries: list[tuple[int, str | None, Json]]):
        self.knowledge, self.coder, self.entries = knowledge, coder, entries
        self.by_url: dict[str, Json] = {}
        for _, url, r in entries:
            if url:
                self.by_url[url] = r
            if r.get("id"):
                self.by_url[f"{r['resourceType']}/{r['id']}"] = r
        self.patients: dict[str, PatientInfo] = {}
        self.records: dict[str, dict[str, list[Any]]] = {}
        self.unmapped: list[Unmapped] = []
        self.ignored: Counter[str] = Counter()
        self.plan_keys: set[str | None] = set()

    def run(self) -> ImportResult:
        for i, url, r in self.entries:
            if r["resourceType"] == "Patient":
                self._add_patient(_patient_info(r, describe(r, i), url))
        handlers = {
            "MedicationRequest": self._medication,
            "MedicationStatement": self._medication,
            "Observation": self._observation,
            "QuestionnaireResponse": self._response,
            "CarePlan": self._careplan,
        }
        for i, _, r in self.entries:
            kind = r["resourceType"]
            if kind in handlers:
                handlers[kind](i, r)
            elif kind not in ("Patient", "Medication"):
                self.ignored[kind] += 1
        for i, _, r in self.entries:
            key = (r.get("groupIdentifier") or {}).get("value")
            if r["resourceType"] == "MedicationRequest" and is_step(r, self.coder.codes) and key not in self.plan_keys:
                self._skip(i, r, "taper step without its CarePlan (groupIdentifier) in the bundle")
        return ImportResult(tuple(self._records()), tuple(self.unmapped), dict(sorted(self.ignored.items())))

    # ---------------------------------------------------------------- patients and subjects

    def _add_patient(self, info: PatientInfo) -> None:
        self.patients.setdefault(info.id, info)
        self.records.setdefault(info.id, {k: [] for k in ("medications", "co", "samples", "scores", "plans")})

    def _records(self) -> list[PatientRecord]:
        out = []
        for pid, info in self.patients.items():
            rec = self.records[pid]
            out.append(
                PatientRecord(
                    info,
                    tuple(rec["medications"]),
                    tuple(rec["co"]),
                    tuple(sorted(rec["samples"], key=lambda s: (s.sampled_at, s.row))),
                    tuple(sorted(rec["scores"], key=lambda s: s.authored)),
                    tuple(rec["plans"]),
                )
            )
        return out

    def _subject(self, i: int, r: Json) -> str | None:
        ref = r.get("subject") or r.get("patient")
        if not isinstance(ref, Mapping) or not ref.get("reference"):
            if len(self.patients) == 1:
                return next(iter(self.patients))
            self._skip(i, r, "no subject: the patient it belongs to is not given")
            return None
        text = str(ref["reference"])
        target = self.by_url.get(text)
        if target is not None and target.get("resourceType") == "Patient":
            return str(target.get("id") or text)
        tail = text.rsplit("/", 2)
        if len(tail) >= 2 and tail[-2] == "Patient" and not text.startswith("#"):
            self._add_patient(PatientInfo(tail[-1], Patient()))
            return tail[-1]
        self._skip(i, r, f"subject {text!r} is not a Patient in the bundle or a Patient/<id> reference")
        return None

    def _skip(self, i: int, r: Json, reason: str) -> None:
        self.unmapped.append(Unmapped(i, describe(r), reason))

    # ---------------------------------------------------------------- medications

    def _medication(self, i: int, r: Json) -> None:
        kind = r["resourceType"]
        if kind == "MedicationRequest" and is_step(r, self.coder.codes):
            return  # read with its CarePlan
        pid = self._subject(i, r)
        if pid is None:
            return
        where = describe(r, i)
        status = str(r.get("status", ""))
        if status in NOT_USED[kind]:
            self._skip(i, r, f"status {status}: not a medication the patient takes")
            return
        if r.get("doNotPerform"):
            self._skip(i, r, "doNotPerform: an order not to give the medication")
            return
        try:
            match = self._match(r, where)
            if match.kind == OPIOID:
                start, end = self._dates(r, where)
                co = CoMedication(describe(r), str(match.ingredient), "opioid", status, start, end)
                self.records[pid]["co"].append(co)
                return
            self.records[pid]["medications"].append(self._record(r, match, status, where))
        except Refusal as why:
            self._skip(i, r, str(why))

    def _match(self, r: Json, where: str) -> MedicationMatch:
        concept, strength = self._concept(r, where)
        match = self.coder.medication(concept)
        if strength is not None:
            match = replace(match, strength=strength)
        if match.kind == NONE:
            rx = code_in(concept, self.coder.codes.system("rxnorm"))
            named = concept_text(concept) or "no name"
            detail = one_line(f"code not in value sets: RxNorm {rx} ({named})") if rx else f"{named!r}"
            raise Refusal(f"no benzodiazepine or Z-drug: {detail}")
        if match.kind != BZD and match.kind != OPIOID:
            raise Refusal(
                f"{match.ingredient}: a benzodiazepine the knowledge base does not cover (no equivalence or PK data)"
            )
        return match

    def _concept(self, r: Json, where: str) -> tuple[Any, tuple[float, str] | None]:
        if "medicationCodeableConcept" in r:
            return r["medicationCodeableConcept"], None
        ref = str((r.get("medicationReference") or {}).get("reference", ""))
        if ref.startswith("#"):
            med = next((c for c in r.get("contained", []) if c.get("id") == ref[1:]), None)
        else:
            med = self.by_url.get(ref)
        if med is None or med.get("resourceType") != "Medication":
            raise FhirError(f"{where}.medicationReference: {ref!r} is not a Medication in the bundle or contained")
        return med.get("code"), _strength(med)

    def _dates(self, r: Json, where: str) -> tuple[date | None, date | None]:
        if r["resourceType"] == "MedicationStatement":
            period = r.get("effectivePeriod") or {}
            first = period.get("start") or r.get("effectiveDateTime") or r.get("dateAsserted")
            start = parse_date(first, f"{where}.effective[x]") if first else None
            end = parse_date(period["end"], f"{where}.effectivePeriod.end") if period.get("end") else None
            return start, end
        dispense = r.get("dispenseRequest") or {}
        first = r.get("authoredOn") or (dispense.get("validityPeriod") or {}).get("start")
        start = parse_date(first, f"{where}.authoredOn") if first else None
        supply = dispense.get("expectedSupplyDuration") or {}
        unit = str(supply.get("code") or supply.get("unit") or "")
        if start is not None and supply.get("value") is not None and unit in SUPPLY_DAYS:
            return start, _supply_end(start, supply["value"], unit)
        return start, None

    def _record(self, r: Json, match: MedicationMatch, status: str, where: str) -> MedicationRecord:
        drug = self.knowledge.drug(str(match.ingredient))
        reader = DosageReader(self.knowledge, self.coder.codes, self.coder.cohort.omop.route_words, drug, match)
        start, end = self._dates(r, where)
        dosages = r.get("dosageInstruction") if r["resourceType"] == "MedicationRequest" else r.get("dosage")
        regimens, sig, notes = reader.regimens(dosages or [], start, end, where)
        if match.note:
            notes.append(match.note)
        if end is None and status in ("completed", "stopped"):
            notes.append(f"status {status} without an end date: read as ongoing from {start}")
        return MedicationRecord(describe(r), r["resourceType"], status, r.get("intent"), drug.id, match.product,
                                sig, tuple(regimens), tuple(notes))  # fmt: skip

    # ---------------------------------------------------------------- levels, scores, plans

    def _observation(self, i: int, r: Json) -> None:
        categories = {c.get("code") for cat in r.get("category", []) for c in cat.get("coding", [])}
        if categories and not categories & set(READ_CATEGORIES):
            self.ignored[f"Observation ({', '.join(sorted(str(c) for c in categories))})"] += 1
            return
        pid = self._subject(i, r)
        if pid is None:
            return
        try:
            sample: Sample = sample_from(r, self.knowledge, self.coder, i, describe(r, i))
        except Refusal as why:
            self._skip(i, r, str(why))
            return
        self.records[pid]["samples"].append(sample)

    def _response(self, i: int, r: Json) -> None:
        pid = self._subject(i, r)
        if pid is None:
            return
        try:
            result: ScaleResult = result_from(r, self.coder.codes, describe(r, i))
        except Refusal as why:
            self._skip(i, r, str(why))
            return
        self.records[pid]["scores"].append(replace(result, source=describe(r)))

    def _careplan(self, i: int, r: Json) -> None:
        codes = self.coder.codes
        if not is_plan(r, codes):
            self.ignored["CarePlan"] += 1
            return
        pid = self._subject(i, r)
        if pid is None:
            return
        key = next((str(x.get("value")) for x in r.get("identifier", [])), None)
        steps = [
            (describe(m, j), m)
            for j, _, m in self.entries
            if m["resourceType"] == "MedicationRequest" and is_step(m, codes)
            and (m.get("groupIdentifier") or {}).get("value") == key
        ]  # fmt: skip
        if not steps:
            self._skip(i, r, "taper plan without any step MedicationRequest (groupIdentifier) in the bundle")
            return
        plan: Plan = plan_from_resources(r, steps, codes, describe(r, i))
        self.plan_keys.add(key)
        self.records[pid]["plans"].append(plan)


def _supply_end(start: date, value: Any, unit: str) -> date:
    """Last day of a supply of `value` `unit` (d or wk) from `start`; Refusal when that is past the calendar."""
    try:
        return start + timedelta(days=max(round(float(value) * SUPPLY_DAYS[unit]), 1) - 1)
    except (OverflowError, ValueError):
        raise Refusal(f"dispenseRequest.expectedSupplyDuration {shown(value)} {unit}: ends after {date.max}") from None


def _strength(med: Json) -> tuple[float, str] | None:
    """mg per tablet ('solid') or per mL ('liquid') from Medication.ingredient[0].strength, when given in mg."""
    ingredients = med.get("ingredient") or []
    strength = ingredients[0].get("strength") if ingredients else None
    if not isinstance(strength, Mapping):
        return None
    num, den = strength.get("numerator") or {}, strength.get("denominator") or {}
    if str(num.get("code") or num.get("unit")) != "mg" or num.get("value") is None:
        return None
    per = str(den.get("code") or den.get("unit") or "1").lower()
    amount = float(num["value"]) / float(den.get("value") or 1)
    if not 0 < amount < math.inf:
        return None  # not a strength: the dose then needs one, and the record is listed with that reason
    return (amount, "liquid") if per in ("ml", "milliliter") else (amount, "solid")


def _patient_info(r: Json, where: str, url: str | None) -> PatientInfo:
    """The Patient's id (else its fullUrl, which references to it use, else `where`), sex, birth year, country."""
    birth = r.get("birthDate")
    birth_date = parse_date(birth, f"{where}.birthDate") if isinstance(birth, str) and len(birth) >= 10 else None
    sex = r.get("gender") if r.get("gender") in ("female", "male", "other") else None
    address = _first(r.get("address"))
    try:
        patient = Patient(sex=sex, birth_year=int(birth[:4]) if isinstance(birth, str) else None,
                          country=address.get("country"))  # fmt: skip
    except ValidationError as exc:
        raise FhirError(f"{where}: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
    return PatientInfo(str(r.get("id") or url or where), patient, birth_date, _name(r.get("name")))


def _first(value: Any) -> Json:
    """The first element of a FHIR list when it is an object, else an empty one."""
    return value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else {}


def _name(value: Any) -> str | None:
    """The Patient's display name: its first HumanName's text, else given and family names (text parts only)."""
    first = _first(value)
    text = first.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip()
    given = first.get("given")
    parts = [p for p in [*(given if isinstance(given, list) else []), first.get("family")] if isinstance(p, str)]
    return " ".join(parts).strip() or None
