"""Read one level against the regimen: the population's expected level with a 90% prediction interval.

The interval comes from virtual patients drawn from the population model (log-normal between-subject
variability where published) plus the residual error; the verdict says where the measured level
falls and what usually explains it (AGNP). The reference range and alert level are checked on the
sum the range is defined over (e.g. diazepam + nordiazepam).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from benzotaper.knowledge import Knowledge
from benzotaper.knowledge.records import ReferenceRange
from benzotaper.knowledge.tdm_rules import TdmKnowledge, load_tdm_knowledge
from benzotaper.pk import sample_population
from benzotaper.tdm.errormodel import error_model
from benzotaper.tdm.patient import Patient
from benzotaper.tdm.samples import Sample
from benzotaper.units import to_ng_ml

RANGE_PREFERENCE = ("therapeutic", "laboratory", "upper_limit_at_max_dose")


@dataclass(frozen=True, slots=True)
class Expected:
    """Population expectation for a sample (ng/mL): median and prediction interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class RangeCheck:
    """The sample (summed with its partners at the same time) against a published reference range."""

    kind: str
    analytes: tuple[str, ...]
    measured: float
    low: float | None
    high: float | None
    alert: float | None
    status: str
    source: str


@dataclass(frozen=True)
class Interpretation:
    """One sample's verdict with reasons and sources."""

    sample: Sample
    expected: Expected | None
    verdict: str
    reasons: tuple[str, ...]
    sources: tuple[str, ...]
    reference: RangeCheck | None
    hours_after_dose: float | None
    centile: float | None

    def to_dict(self) -> dict[str, Any]:
        """The CLI's JSON for one sample."""
        s, e, r = self.sample, self.expected, self.reference
        return {
            "row": s.row,
            "sampled_at": s.sampled_at.isoformat(timespec="minutes"),
            "analyte": s.analyte,
            "measured": {"value": s.value, "below_lloq": s.censored, "lloq": s.lloq, "unit": "ng/mL"},
            "expected": None if e is None else {"value": e.value, "low": e.low, "high": e.high, "unit": "ng/mL"},
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "centile": self.centile,
            "hours_after_dose": self.hours_after_dose,
            "reference_range": None
            if r is None
            else {
                "kind": r.kind,
                "analytes": list(r.analytes),
                "measured_sum": r.measured,
                "low": r.low,
                "high": r.high,
                "alert": r.alert,
                "unit": "ng/mL",
                "status": r.status,
                "source": r.source,
            },
            "sources": list(self.sources),
        }


def ng(value: float) -> str:
    """A level for people: 3 significant figures, no exponent (1570, 45.2, 0.812)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _range_ng(knowledge: Knowledge, rr: ReferenceRange) -> tuple[float | None, float | None, float | None]:
    mass = knowledge.analytes[rr.analytes[0]].molar_mass.value

    def conv(q: Any) -> float | None:
        return None if q is None else to_ng_ml(q.value, q.unit or "ng/mL", mass)

    return conv(rr.low), conv(rr.high), conv(rr.alert)


def _ranges_for(patient: Patient, analyte: str) -> list[ReferenceRange]:
    drugs = [patient.knowledge.drug(d) for d in patient.events.drugs]
    found = [rr for d in drugs for rr in d.reference_ranges if analyte in rr.analytes]
    return sorted(found, key=lambda rr: RANGE_PREFERENCE.index(rr.kind) if rr.kind in RANGE_PREFERENCE else 9)


def reference_check(patient: Patient, sample: Sample) -> RangeCheck | None:
    """The preferred published range for the sample's analyte, on the sum measured at the same time."""
    ranges = _ranges_for(patient, sample.analyte)
    if not ranges:
        return None
    rr = ranges[0]
    partners = [s for s in patient.samples if s.sampled_at == sample.sampled_at and s.analyte in rr.analytes]
    total = sum(s.value or 0.0 for s in partners)
    low, high, alert = _range_ng(patient.knowledge, rr)
    status = "within"
    if alert is not None and total > alert:
        status = "above_alert"
    elif high is not None and total > high:
        status = "above"
    elif low is not None and total < low:
        status = "below"
    q = rr.high or rr.low or rr.alert
    return RangeCheck(rr.kind, rr.analytes, total, low, high, alert, status, q.source if q else "")


def _hours_after_dose(patient: Patient, t_h: float) -> float | None:
    before = patient.events.time[patient.events.time < t_h]
    return float(t_h - before.max()) if len(before) else None


def _timing_note(patient: Patient, t_h: float, after: float | None) -> str | None:
    times = np.unique(patient.events.time)
    if after is None or len(times) < 2:
        return None
    interval = float(np.median(np.diff(times)))
    if after < 0.5 * interval:
        return (
            f"drawn {after:.1f} h after a dose (dosing interval about {interval:.0f} h): not a trough sample; "
            "the expected level accounts for the time, but a trough sample is easier to compare"
        )
    return None


def _verdict(sample: Sample, lo: float, hi: float, ref: RangeCheck | None) -> str:
    if ref is not None and ref.status == "above_alert":
        return "above_alert"
    if sample.value is None:
        assert sample.lloq is not None
        return "lower" if lo > sample.lloq else "consistent"
    if sample.value < lo:
        return "lower"
    if sample.value > hi:
        return "higher"
    return "consistent"


def _reasons(
    tdm: TdmKnowledge, sample: Sample, verdict: str, exp: Expected, ref: RangeCheck | None, regimen: str
) -> tuple[list[str], list[str]]:
    pct = f"{tdm.value('interpret', 'interval'):.0%}"
    measured = (
        f"below the LLOQ of {ng(sample.lloq or 0)} ng/mL" if sample.value is None else f"{ng(sample.value)} ng/mL"
    )
    interval = f"{pct} interval {ng(exp.low)}-{ng(exp.high)}"
    head = f"measured {measured}; expected {ng(exp.value)} ng/mL ({interval}) on {regimen}"
    reasons = [head]
    sources = ["sheiner1979"]
    if verdict == "consistent":
        reasons.append("within what the population model predicts for this regimen and sampling time")
    for r in tdm.reasons_for(verdict):
        reasons.append(r.text)
        sources.append(r.source)
    if verdict == "above_alert" and exp.high < (sample.value or 0.0):
        for r in tdm.reasons_for("higher"):
            reasons.append(r.text)
    if ref is not None:
        bounds = f"{ng(ref.low or 0)}-{ng(ref.high)}" if ref.high is not None else f">= {ng(ref.low or 0)}"
        what = " + ".join(ref.analytes)
        reasons.append(
            f"{what} {ng(ref.measured)} ng/mL is {ref.status.replace('_', ' ')} the {ref.kind} range {bounds} ng/mL"
        )
        sources.append(ref.source)
    if sample.censored:
        sources.append("beal2001")
    return reasons, sources


def interpret(patient: Patient, regimen: str = "the regimen") -> list[Interpretation]:
    """Every sample's verdict against the population model (fixed seed: reproducible)."""
    tdm = load_tdm_knowledge()
    n = int(tdm.value("interpret", "population_draws"))
    rng = np.random.default_rng(int(tdm.value("interpret", "seed")))
    params = sample_population(patient.model, n, rng)
    predicted = patient.predict(params)
    err = error_model(tdm, [s.lloq for s in patient.samples])
    observed = err.draw(predicted, rng)
    tail = (1 - tdm.value("interpret", "interval")) / 2
    lows, meds, highs = np.quantile(observed, [tail, 0.5, 1 - tail], axis=0)
    out = []
    for j, sample in enumerate(patient.samples):
        t_h = float(patient.sample_h[j])
        after = _hours_after_dose(patient, t_h)
        ref = reference_check(patient, sample)
        if not patient.predictable[j]:
            why = f"{sample.analyte} is not simulated for this regimen, so no expected level can be given"
            verdict = "above_alert" if ref is not None and ref.status == "above_alert" else "not_assessed"
            out.append(Interpretation(sample, None, verdict, (why,), (), ref, after, None))
            continue
        exp = Expected(float(meds[j]), float(lows[j]), float(highs[j]))
        verdict = _verdict(sample, exp.low, exp.high, ref)
        reasons, sources = _reasons(tdm, sample, verdict, exp, ref, regimen)
        if sample.immunoassay:
            reasons.append(
                "immunoassay: cross-reactivity differs between benzodiazepines and is not modelled; the expected "
                "value is the potency-weighted diazepam-equivalent level, so read the verdict with caution"
            )
        note = _timing_note(patient, t_h, after)
        if note:
            reasons.append(note)
        value = sample.value if sample.value is not None else sample.lloq or 0.0
        centile = float(np.mean(observed[:, j] < value))
        out.append(
            Interpretation(sample, exp, verdict, tuple(reasons), tuple(dict.fromkeys(sources)), ref, after, centile)
        )
    return out


def variability_notes(patient: Patient) -> list[str]:
    """Which analytes have no published between-subject variability (their interval is assay error only)."""
    missing = [a.name for a in patient.model.analytes if a.cv_cl == 0 and a.cv_v == 0]
    if not missing:
        return []
    return [
        f"{', '.join(missing)}: no published between-subject variability, so the interval for levels of "
        "these analytes reflects assay error only and is too narrow"
    ]
