"""Measured serum levels: read a levels CSV into checked samples (ng/mL, censoring at the LLOQ).

Columns: `sampled_at` (ISO date-time), `analyte`, `value`, `unit`; optional `lloq`, `last_dose_at`,
`lab`, `method`. A value below the LLOQ ('<5', 'BLQ' with an lloq, or a number under the lloq) is
censored: it says 'below this limit', never 'zero'. Every error names the row, column and value.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
import reprlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from benzotaper.errors import BenzotaperError, LevelsError, UnknownDrugError
from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.tdm_rules import load_tdm_knowledge
from benzotaper.units import CONCENTRATION_UNITS, parse_number, to_ng_ml

DEQ = "diazepam_equivalents"
DEQ_NAMES = frozenset(
    {
        "diazepam_equivalents",
        "diazepam equivalents",
        "total benzodiazepines",
        "total_benzodiazepines",
        "benzodiazepines",
        "bzd",
        "immunoassay",
    }
)
REQUIRED = ("sampled_at", "analyte", "value", "unit")
OPTIONAL = ("lloq", "last_dose_at", "lab", "method")
_SHOWN = reprlib.Repr()  # a value quoted in a message, cut short when long
_SHOWN.maxstring = _SHOWN.maxother = 80
_EXTRA = "\x00extra"  # DictReader's key for values beyond the header's columns
_BLQ_WORDS = frozenset({"blq", "bql", "<lloq", "nd", "not detected", "below lloq"})
_LESS_THAN = re.compile(r"^\s*<\s*(?P<n>[\d.,]+)\s*$")


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured level. `value` is None when censored below `lloq` (both ng/mL)."""

    row: int
    sampled_at: datetime
    analyte: str
    value: float | None
    lloq: float | None
    last_dose_at: datetime | None = None
    lab: str = ""
    method: str = ""
    reported: str = ""

    @property
    def censored(self) -> bool:
        """True when the level is only known to be below the LLOQ."""
        return self.value is None

    @property
    def immunoassay(self) -> bool:
        """Total benzodiazepines as diazepam equivalents (semi-quantitative)."""
        return self.analyte == DEQ


def _fail(row: int, column: str, value: object, accepted: str) -> LevelsError:
    return LevelsError(f"levels row {row}, column {column!r}: {_SHOWN.repr(value)} is not valid; expected {accepted}")


def parse_time(text: str, row: int, column: str) -> datetime:
    """An ISO date-time with a clock time ('2026-03-01T08:00' or '2026-03-01 08:00')."""
    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise _fail(row, column, text, "an ISO date-time such as 2026-03-01T08:00") from exc
    if len(raw) <= 10:
        raise _fail(row, column, text, "a date WITH the clock time of sampling, e.g. 2026-03-01T08:00")
    return value.replace(tzinfo=None)


def analyte_id(knowledge: Knowledge, name: str) -> str:
    """Analyte id for a name: an analyte, a drug (its circulating analyte) or diazepam equivalents."""
    key = name.strip().lower()
    if key in DEQ_NAMES:
        return DEQ
    try:
        return knowledge.analyte(name).id
    except UnknownDrugError:
        return knowledge.drug(name).analyte


def _analyte(knowledge: Knowledge, text: str, row: int) -> str:
    try:
        return analyte_id(knowledge, text)
    except UnknownDrugError as exc:
        known = ", ".join(sorted(knowledge.analytes)[:3])
        raise LevelsError(
            f"levels row {row}, column 'analyte': {exc}; expected a drug or metabolite of the knowledge base "
            f"(such as {known}) or 'diazepam_equivalents'"
        ) from exc


@functools.lru_cache(maxsize=256)
def _per_unit(unit: str, molar_mass: float) -> float:
    """ng/mL in one `unit` of an analyte: the units library parses a unit text once, not once per row."""
    return to_ng_ml(1.0, unit, molar_mass)


def _concentration(knowledge: Knowledge, number: float, unit: str, analyte: str, row: int, column: str) -> float:
    mass = knowledge.analytes["diazepam" if analyte == DEQ else analyte].molar_mass.value
    try:
        finite = math.isfinite(number) and number >= 0
        value = number * _per_unit(unit, mass) if finite else to_ng_ml(number, unit, mass)  # the latter refuses
    except BenzotaperError as exc:
        raise _fail(row, column, f"{number:g} {unit}", f"a level in {list(CONCENTRATION_UNITS)} ({exc})") from exc
    limit = load_tdm_knowledge().q("levels", "max_plausible")
    if value > limit.value:
        raise LevelsError(
            f"levels row {row}, column {column!r}: {number:g} {unit} = {value:g} ng/mL is implausible; "
            f"expected at most {limit.value:g} ng/mL ({limit.note})"
        )
    return value


def _number(text: str, row: int, column: str) -> float:
    try:
        return parse_number(text)
    except BenzotaperError as exc:
        raise _fail(row, column, text, "a number such as 45 or 45.5") from exc


def _value(knowledge: Knowledge, rec: dict[str, str], analyte: str, row: int) -> tuple[float | None, float | None]:
    """(value, lloq) in ng/mL; value None when censored."""
    unit = rec["unit"].strip()
    lloq_text = (rec.get("lloq") or "").strip()
    lloq = _concentration(knowledge, _number(lloq_text, row, "lloq"), unit, analyte, row, "lloq") if lloq_text else None
    raw = rec["value"].strip()
    less = _LESS_THAN.match(raw)
    if less:
        limit = _concentration(knowledge, _number(less["n"], row, "value"), unit, analyte, row, "value")
        return None, max(limit, lloq or 0.0)  # '<5' says only 'below 5', whatever the lloq column says
    if raw.lower() in _BLQ_WORDS:
        if lloq is None:
            raise _fail(row, "lloq", "", "the lower limit of quantification when the value is reported as below it")
        return None, lloq
    value = _concentration(knowledge, _number(raw, row, "value"), unit, analyte, row, "value")
    if lloq is not None and value < lloq:
        return None, lloq
    return value, lloq


def _sample(knowledge: Knowledge, rec: dict[str, str], row: int) -> Sample:
    for column in REQUIRED:
        if not (rec.get(column) or "").strip():
            raise _fail(row, column, rec.get(column, ""), f"a value (required columns: {', '.join(REQUIRED)})")
    analyte = _analyte(knowledge, rec["analyte"], row)
    sampled = parse_time(rec["sampled_at"], row, "sampled_at")
    last_text = (rec.get("last_dose_at") or "").strip()
    last = parse_time(last_text, row, "last_dose_at") if last_text else None
    if last is not None and not 0 < (sampled - last).total_seconds() <= 7 * 86400:
        raise _fail(row, "last_dose_at", last_text, "a time before sampled_at, within the 7 days before it")
    value, lloq = _value(knowledge, rec, analyte, row)
    return Sample(
        row,
        sampled,
        analyte,
        value,
        lloq,
        last,
        (rec.get("lab") or "").strip(),
        (rec.get("method") or "").strip(),
        f"{rec['value'].strip()} {rec['unit'].strip()}",
    )


def _header(fieldnames: Sequence[str] | None) -> list[str]:
    """The stripped column names; refuses a missing required column or a column named twice."""
    header = [(h or "").strip() for h in fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise LevelsError(f"levels file: missing column(s) {missing}; the header needs {list(REQUIRED)} (got {header})")
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise LevelsError(f"levels file, line 1: column(s) {twice} appear more than once; expected each column once")
    return header


def _records(reader: csv.DictReader[str], width: int) -> list[tuple[dict[str, str], int]]:
    """(record, line) per row, stripped keys; a value beyond the header's columns is refused."""
    rows = []
    for rec in reader:
        extra = [v for v in rec.pop(_EXTRA, None) or [] if v.strip()]
        if extra:
            raise LevelsError(
                f"levels row {reader.line_num}: {width + len(extra)} or more values {extra[:3]!r} beyond the "
                f"header's {width} columns; expected one value per column of the header"
            )
        rows.append(({(k or "").strip(): (v or "") for k, v in rec.items()}, reader.line_num))
    return rows


def read_samples(knowledge: Knowledge, text: str) -> list[Sample]:
    """Samples from CSV text, in time order; the header must name the required columns."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=None), restkey=_EXTRA)
    try:
        header = _header(reader.fieldnames)
        rows = _records(reader, len(header))
    except csv.Error as exc:
        raise LevelsError(
            f"levels file, after line {reader.line_num}: {exc}; expected comma-separated values"
        ) from None
    samples = [_sample(knowledge, rec, line) for rec, line in rows if any(v.strip() for v in rec.values())]
    if not samples:
        raise LevelsError("levels file: no samples (one row per measured level)")
    return sorted(samples, key=lambda s: (s.sampled_at, s.row))


def load_samples(knowledge: Knowledge, path: Path) -> list[Sample]:
    """Samples from a CSV file (UTF-8)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LevelsError(f"levels file {str(path)!r} cannot be read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start : exc.start + 1]
        raise LevelsError(
            f"levels file {str(path)!r}: byte {byte!r} at position {exc.start} is not UTF-8; expected UTF-8 text"
        ) from None
    return read_samples(knowledge, text)


def samples_csv(samples: Iterable[Sample]) -> str:
    """Write samples back as a levels CSV in ng/mL (used by the simulated-patient generator)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*REQUIRED, "lloq", "last_dose_at"])
    for s in samples:
        value = f"<{s.lloq:g}" if s.value is None else f"{s.value:.4g}"
        last = s.last_dose_at.isoformat(timespec="minutes") if s.last_dose_at else ""
        lloq = f"{s.lloq:g}" if s.lloq is not None else ""
        writer.writerow([s.sampled_at.isoformat(timespec="minutes"), s.analyte, value, "ng/mL", lloq, last])
    return out.getvalue()
