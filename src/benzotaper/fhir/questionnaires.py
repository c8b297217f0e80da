"""CIWA-B, BWSQ and SDS as FHIR Questionnaires built from the instrument data, and scores as QuestionnaireResponses.

Each item is a 'choice' item whose answer options are Codings (code = the score as text, display = the label)
carrying the score in the ordinalValue extension; a read-only 'total' item holds the sum. Responses are scored by
the core (assess.instruments.score), so a response with an answer outside the item's options is refused with the
core's message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benzotaper.assess.instruments import score
from benzotaper.errors import AssessmentError
from benzotaper.fhir.context import ExportContext
from benzotaper.fhir.elements import Json, Refusal, coding, extensions, fhir_datetime, parse_datetime, walk_items
from benzotaper.fhir.records import ScaleResult
from benzotaper.knowledge.fhir_codes import FhirCodes
from benzotaper.knowledge.instruments import Instrument, Item, load_instruments

TOTAL = "total"
READ_STATUSES = ("completed", "amended")


def canonical(codes: FhirCodes, instrument: Instrument) -> str:
    """Canonical URL of an instrument's Questionnaire."""
    return codes.local("Questionnaire", instrument.id.replace("_", "-"))


def answer_system(codes: FhirCodes, instrument: Instrument) -> str:
    """Code system of an instrument's answers (code = score)."""
    return codes.local("CodeSystem", f"{instrument.id.replace('_', '-')}-answers")


def questionnaire(codes: FhirCodes, instrument: Instrument) -> Json:
    """The Questionnaire of one instrument: items in order, options with their scores, a read-only total."""
    items: list[Json] = [_item(codes, instrument, it) for it in instrument.items]
    items.append(
        {"linkId": TOTAL, "text": f"{instrument.name} total score ({instrument.min_score}-{instrument.max_score})",
         "type": "integer", "readOnly": True}
    )  # fmt: skip
    status = "active" if instrument.wording == "verified" else "draft"
    out: Json = {
        "resourceType": "Questionnaire",
        "id": instrument.id.replace("_", "-"),
        "url": canonical(codes, instrument),
        "name": instrument.name.replace("-", "_"),
        "title": f"{instrument.full_name} ({instrument.name})",
        "status": status,
        "description": f"{instrument.purpose} Wording: {instrument.wording_note}",
        "purpose": instrument.time_frame,
        "copyright": instrument.licence.note,
        "item": items,
    }
    return out


def _item(codes: FhirCodes, instrument: Instrument, item: Item) -> Json:
    system = answer_system(codes, instrument)
    return {
        "linkId": item.id,
        "prefix": str(item.number),
        "text": item.text,
        "type": "choice",
        "required": True,
        "answerOption": [
            {
                "valueCoding": coding(system, str(o.value), o.label),
                "extension": [{"url": codes.system("ordinal_value"), "valueDecimal": o.value}],
            }
            for o in item.options
        ],
    }


def questionnaires(codes: FhirCodes) -> list[Json]:
    """Questionnaires of every packaged instrument (CIWA-B, BWSQ, SDS)."""
    return [questionnaire(codes, i) for i in load_instruments().values()]


def response(result: ScaleResult, ctx: ExportContext) -> Json:
    """A scored instrument as a completed QuestionnaireResponse."""
    instrument = load_instruments()[result.instrument]
    system = answer_system(ctx.codes, instrument)
    items: list[Json] = [
        {
            "linkId": v.id,
            "text": instrument.item(v.id).text,
            "answer": [{"valueCoding": coding(system, str(v.value), v.label)}],
        }
        for v in result.score.items
    ]
    items.append({"linkId": TOTAL, "answer": [{"valueInteger": result.score.total}]})
    url = ctx.url("QuestionnaireResponse", result.instrument, result.authored.isoformat())
    return {
        "resourceType": "QuestionnaireResponse",
        "id": ctx.resource_id(url),
        "questionnaire": canonical(ctx.codes, instrument),
        "status": "completed",
        "subject": ctx.subject(),
        "authored": fhir_datetime(result.authored, ctx.offset),
        "item": items,
    }


def instrument_of(codes: FhirCodes, qr: Mapping[str, Any]) -> Instrument | None:
    """The instrument a response answers (by our canonical URL, or a Questionnaire id/name we publish)."""
    wanted = str(qr.get("questionnaire", "")).split("|")[0]
    for instrument in load_instruments().values():
        names = {canonical(codes, instrument), f"Questionnaire/{instrument.id.replace('_', '-')}"}
        if wanted in names:
            return instrument
    return None


def result_from(qr: Json, codes: FhirCodes, where: str) -> ScaleResult:
    """Score a QuestionnaireResponse; Refusal with the reason when it cannot be scored."""
    instrument = instrument_of(codes, qr)
    if instrument is None:
        raise Refusal(f"questionnaire {qr.get('questionnaire')!r} is not in value sets (CIWA-B, BWSQ, SDS)")
    if qr.get("status") not in READ_STATUSES:
        raise Refusal(f"status {qr.get('status')!r}: only completed responses are scored")
    if not qr.get("authored"):
        raise Refusal("no authored date: a score needs the time it was taken")
    authored = parse_datetime(qr["authored"], f"{where}.authored")
    answers: dict[str, int] = {}
    given_total: int | None = None
    for item in walk_items(qr.get("item", [])):
        values = [_answer_value(codes, a) for a in item.get("answer", [])]
        if item.get("linkId") == TOTAL:
            given_total = values[0] if values else None
        elif values:
            answers[str(item.get("linkId"))] = values[0]
    try:
        scored = score(instrument, answers)
    except AssessmentError as exc:
        raise Refusal(str(exc)) from None
    if given_total is not None and given_total != scored.total:
        raise Refusal(
            f"{instrument.name} total {given_total} does not match the item answers (they add up to {scored.total})"
        )
    return ScaleResult(instrument.id, authored, scored, where)


def _answer_value(codes: FhirCodes, answer: Mapping[str, Any]) -> int:
    if "valueInteger" in answer:
        return int(answer["valueInteger"])
    value = answer.get("valueCoding") or {}
    ordinal = [e.get("valueDecimal") for e in extensions(value, codes.system("ordinal_value"))]
    if ordinal and ordinal[0] is not None and float(ordinal[0]).is_integer():
        return int(ordinal[0])
    code = str(value.get("code", ""))
    if code.lstrip("-").isdigit():
        return int(code)
    raise Refusal(f"answer {value or answer!r} carries no score (code = score, ordinalValue or valueInteger)")
