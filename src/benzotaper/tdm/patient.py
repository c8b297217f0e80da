"""One patient's monitoring data: the doses taken, the PK model, and which model output each sample measures.

The dose history is the regimen taken since `since`; a sample's recorded `last_dose_at` moves the last
scheduled dose before it to that time (and drops scheduled doses between it and the sample), so a
late or missed morning dose is not mistaken for fast elimination.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

import numpy as np
from numpy.typing import NDArray

from benzotaper.errors import LevelsError
from benzotaper.knowledge import Knowledge
from benzotaper.pk import (
    ParameterSet,
    PKModel,
    Potency,
    Simulator,
    build_model,
    engine_doses,
    modal,
    potencies,
)
from benzotaper.pk.engine import Doses, concentrations_at, levels_at_times
from benzotaper.regimen import DoseEvents, Regimen, expand, parse_regimens
from benzotaper.tdm.samples import DEQ, Sample

FloatArray = NDArray[np.float64]
_HOUR = timedelta(hours=1)
DIRECT_LIMIT = 200_000  # patients x times x doses below which direct superposition beats the day recurrence


@dataclass(frozen=True)
class Patient:
    """Doses (engine form), model, samples, and per sample the analyte weights it measures (S, analytes)."""

    knowledge: Knowledge
    regimens: tuple[Regimen, ...]
    events: DoseEvents
    model: PKModel
    doses: Doses
    samples: tuple[Sample, ...]
    sample_h: FloatArray
    weights: FloatArray
    deq_weights: FloatArray
    potency: tuple[Potency, ...]
    notes: tuple[str, ...]

    @property
    def origin(self) -> datetime:
        """Time zero of the hours used throughout."""
        return self.events.origin

    @property
    def predictable(self) -> NDArray[np.bool_]:
        """Samples the model can predict (their analyte is simulated)."""
        return np.asarray(self.weights.sum(axis=1) > 0)

    def hours(self, moment: datetime) -> float:
        """Hours from the origin."""
        return (moment - self.origin) / _HOUR

    def simulator(self, params: ParameterSet) -> Simulator:
        """A simulator for these drugs with the given parameter sets."""
        return Simulator(self.knowledge, self.model, params, modal(self.model, params), self.potency)

    def levels(self, params: ParameterSet, times_h: FloatArray) -> FloatArray:
        """Levels (n, analytes, T) at the times (pre-dose at a dose instant)."""
        m = modal(self.model, params)
        if params.n * len(times_h) * len(self.doses.time) <= DIRECT_LIMIT:
            return concentrations_at(m, self.doses, times_h, include_simultaneous=False)
        return levels_at_times(m, self.doses, times_h, include_simultaneous=False)

    def predict(self, params: ParameterSet, times_h: FloatArray | None = None) -> FloatArray:
        """Predicted measured quantity (n, S): each sample's analyte, or the diazepam-equivalent sum."""
        times = self.sample_h if times_h is None else times_h
        conc = self.levels(params, times)
        return np.asarray(np.einsum("nis,si->ns", conc, self.weights), dtype=np.float64)


def _move_last_doses(events: DoseEvents, samples: tuple[Sample, ...]) -> DoseEvents:
    """Apply recorded last-dose times: the last scheduled dose moves there; doses after it up to the sample go."""
    t = events.time.copy()
    keep = np.ones(len(t), dtype=bool)
    for s in samples:
        if s.last_dose_at is None:
            continue
        t_s, t_l = (s.sampled_at - events.origin) / _HOUR, (s.last_dose_at - events.origin) / _HOUR
        before = np.flatnonzero(keep & (t <= t_s))
        if len(before):
            t[before[np.argmax(t[before])]] = t_l
        keep &= ~((t > t_l + 1e-9) & (t <= t_s))
    order = np.argsort(t[keep], kind="stable")
    drugs = tuple(d for d, k in zip(events.drug, keep, strict=True) if k)
    return DoseEvents(events.origin, t[keep][order], events.amt[keep][order], tuple(drugs[i] for i in order))


def regimen_history(
    knowledge: Knowledge, sig: str, since: date, until: datetime, samples: tuple[Sample, ...] = ()
) -> tuple[tuple[Regimen, ...], DoseEvents]:
    """The regimen taken every day from `since` up to `until`, as dose events (origin: midnight of `since`)."""
    regimens = tuple(parse_regimens(sig, knowledge, start=since))
    origin = datetime.combine(since, time())
    events = expand(regimens, origin, until)
    return regimens, _move_last_doses(events, samples)


def _weights(knowledge: Knowledge, model: PKModel, samples: tuple[Sample, ...], deq: FloatArray) -> FloatArray:
    ids = [a.id for a in model.analytes]
    w = np.zeros((len(samples), len(ids)))
    for j, s in enumerate(samples):
        if s.analyte == DEQ:
            w[j] = deq
        elif s.analyte in ids:
            w[j, ids.index(s.analyte)] = 1.0
    return w


def build_patient(
    knowledge: Knowledge,
    samples: list[Sample] | tuple[Sample, ...],
    sig: str,
    since: date,
    until: datetime | None = None,
    events: DoseEvents | None = None,
    extra_drugs: tuple[str, ...] = (),
) -> Patient:
    """Check the samples against the regimen and assemble the patient (events may be given directly).

    `extra_drugs` join the model without doses yet (a drug a plan may switch to: its parameters stay at the
    prior until levels of it are measured).
    """
    samples = tuple(samples)
    if not samples:
        raise LevelsError("no samples given")
    first = min(s.sampled_at for s in samples)
    if first.date() < since:
        raise LevelsError(
            f"levels row {min(samples, key=lambda s: s.sampled_at).row}: sampled {first:%Y-%m-%d %H:%M}, before "
            f"--since {since}; the regimen must cover the time before every sample"
        )
    end = until or max(s.sampled_at for s in samples)
    if events is None:
        regimens, events = regimen_history(knowledge, sig, since, end, samples)
    else:
        regimens = tuple(parse_regimens(sig, knowledge, start=since)) if sig else ()
    if not len(events.time):
        raise LevelsError("the regimen gives no doses before the samples; check --since and the regimen")
    model = build_model(knowledge, tuple(dict.fromkeys((*events.drugs, *extra_drugs))))
    potency = tuple(potencies(knowledge, model))
    deq = np.array([p.value for p in potency])
    notes = list(model.assumptions)
    ids = {a.id for a in model.analytes}
    for s in samples:
        if s.analyte != DEQ and s.analyte not in ids:
            name = knowledge.analytes[s.analyte].name
            notes.append(f"row {s.row}: {name} is not simulated for this regimen (no PK data or not formed by it)")
    sample_h = np.array([(s.sampled_at - events.origin) / _HOUR for s in samples])
    return Patient(
        knowledge,
        regimens,
        events,
        model,
        engine_doses(knowledge, model, events),
        samples,
        sample_h,
        _weights(knowledge, model, samples, deq),
        deq,
        potency,
        tuple(notes),
    )


def day_start(moment: datetime) -> datetime:
    """Midnight of the day."""
    return datetime.combine(moment.date(), time())


def with_events(patient: Patient, events: DoseEvents) -> Patient:
    """The same patient and model with another dose history (same origin required)."""
    if events.origin != patient.origin:
        raise LevelsError("dose histories must share the origin")
    return replace(patient, events=events, doses=engine_doses(patient.knowledge, patient.model, events))
