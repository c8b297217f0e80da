"""The web app's one door to the core: records in, core objects and plain dicts out.

No clinical rule lives here; each function turns stored records into the core's inputs, calls the
core, and shapes its answer for a page, a chart or the API. Expensive results are cached per
patient and data version (the newest audit entry), so a page view after no change costs a lookup.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from benzotaper.assess.crisis import CrisisHelp, crisis_help, generic_help
from benzotaper.assess.instruments import score
from benzotaper.assess.mirror import analyse
from benzotaper.assess.redflags import red_flags
from benzotaper.assess.risk import RiskProfile, assess_risk
from benzotaper.assess.timeline import Timeline
from benzotaper.equivalence import diazepam_equivalent_mg
from benzotaper.errors import BenzotaperError
from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.knowledge.instruments import Instrument, load_instruments
from benzotaper.knowledge.mirror_rules import MirrorKnowledge, load_mirror_knowledge
from benzotaper.knowledge.safety_net import FLAGS, SUBSTANCES, SafetyNet, load_safety_net
from benzotaper.regimen import Regimen, parse_regimens
from benzotaper.simulate import simulate_sig
from benzotaper.taper.levels import plan_curves, step_levels
from benzotaper.taper.plan import Event, Plan
from benzotaper.taper.planner import PlanOptions
from benzotaper.taper.replan import replan
from benzotaper.tdm.samples import Sample
from benzotaper.tdm.service import interpret_levels, sampling_advice
from benzotaper.web import models as m

T = TypeVar("T")
STRATEGIES = ("ashton", "nice_cks", "jcpg", "maudsley", "deprescribing_org", "slow", "standard", "fast")
OUT_OF_RANGE = {"above_alert", "higher", "lower"}


@lru_cache(maxsize=1)
def knowledge() -> Knowledge:
    """The drug knowledge base, loaded once per process."""
    return load_knowledge()


@lru_cache(maxsize=1)
def instruments() -> Mapping[str, Instrument]:
    """CIWA-B, BWSQ and SDS by id."""
    return load_instruments()


@lru_cache(maxsize=1)
def safety_net() -> SafetyNet:
    """Risk factors, red flags and crisis lines."""
    return load_safety_net()


@lru_cache(maxsize=1)
def mirror_knowledge() -> MirrorKnowledge:
    """The mirror analysis' vocabulary and weights."""
    return load_mirror_knowledge()


def today() -> date:
    """The clinic's local date."""
    return timezone.localdate()


def local(moment: datetime) -> datetime:
    """A stored (UTC) time as the clinic's naive local time, which is what the core works in."""
    return timezone.localtime(moment).replace(tzinfo=None) if timezone.is_aware(moment) else moment


@dataclass(frozen=True)
class PageKeys:
    """Both cache-key parts of a patient page: clinical data only (`data`) and with the diary (`diary`)."""

    data: str
    diary: str


def page_keys(patient: m.Patient) -> PageKeys:
    """Both cache-key parts from one look at the audit log.

    Plain SQL: this runs on every page view, and building the same query through the ORM cost more
    than running it. Each MAX is answered from an index (AuditEntry.Meta.indexes), so the cost does not
    grow with the patient's diary: the clinical version reads only the clinical models' entries.
    """
    from benzotaper.web.audit import CLINICAL

    clinical_models = [name for name in CLINICAL if name != "DiaryEntry"]
    table = connection.ops.quote_name(m.AuditEntry._meta.db_table)
    marks = ", ".join(["%s"] * len(clinical_models))
    sql = (
        f"SELECT (SELECT MAX(id) FROM {table} WHERE patient_id = %s AND model IN ({marks})),"
        f" (SELECT MAX(id) FROM {table} WHERE patient_id = %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [patient.pk, *clinical_models, patient.pk])
        clinical, every = cursor.fetchone()
    day = today().isoformat()
    return PageKeys(f"{clinical or 0}:{day}", f"{every or 0}:{day}")


def data_key(patient: m.Patient) -> str:
    """The cache key part for this patient's clinical data: data version and today's date."""
    return page_keys(patient).data


def cached(kind: str, patient: m.Patient, compute: Callable[[], T], key: str | None = None) -> T:
    """`compute()` cached under the patient's data version, so any change to their records refreshes it.

    `key` is the data key when the caller already has it (saves a query).
    """
    key = f"bt:{kind}:{patient.pk}:{key or data_key(patient)}"
    hit = cache.get(key)
    if hit is None:
        hit = compute()
        cache.set(key, hit, 3600)
    return hit


# --- regimens -------------------------------------------------------------------------------------


def parse_sig(sig: str, start: date, end: date | None = None) -> list[Regimen]:
    """The core's parse of a free-text regimen (raises BenzotaperError with a clear message)."""
    return parse_regimens(sig, knowledge(), start=start, end=end)


def regimen_preview(sig: str, start: date, end: date | None = None) -> dict[str, Any]:
    """What the parser understood, to show back before saving: per drug the doses, mg/day and diazepam-eq."""
    k = knowledge()
    drugs: list[dict[str, Any]] = []
    for r in parse_sig(sig, start, end):
        drugs.append(
            {
                "drug": r.drug,
                "name": k.drug(r.drug).name,
                "doses": [{"time": d.at.strftime("%H:%M"), "mg": d.mg} for d in r.doses],
                "daily_mg": round(r.daily_mg, 4),
                "prn_mg": r.prn_mg,
                "prn_max_per_day": r.prn_max_per_day,
                "diazepam_mg": round(diazepam_equivalent_mg(k, r.drug, r.daily_mg), 2),
            }
        )
    return {"sig": sig, "drugs": drugs, "diazepam_mg": round(sum(d["diazepam_mg"] for d in drugs), 2)}


def active_regimens(patient: m.Patient, day: date | None = None) -> list[m.Regimen]:
    """The regimen records running on `day` (default today)."""
    day = day or today()
    return [r for r in patient.regimens.all() if r.start <= day and (r.end is None or r.end >= day)]


def current_sig(patient: m.Patient) -> str:
    """Today's regimen as one sig ('a + b'), or '' when none is recorded."""
    return " + ".join(r.sig for r in active_regimens(patient))


def current_since(patient: m.Patient) -> date | None:
    """When the current regimen began (the latest start among the active records)."""
    active = active_regimens(patient)
    return max(r.start for r in active) if active else None


# --- plans ----------------------------------------------------------------------------------------


def plan_options(raw: dict[str, Any]) -> PlanOptions:
    """PlanOptions from stored or submitted values (dates as ISO text)."""

    def day(key: str) -> date | None:
        value = raw.get(key)
        return date.fromisoformat(value) if value else None

    return PlanOptions(
        start=day("start") or today(),
        strategy=str(raw.get("strategy") or "ashton"),
        to=raw.get("to") or None,
        switch=str(raw.get("switch") or "auto"),
        market=raw.get("market") or None,
        quarters=bool(raw.get("quarters")),
        interval_days=int(raw["interval_days"]) if raw.get("interval_days") else None,
        fraction=float(raw["fraction"]) if raw.get("fraction") else None,
        end_by=day("end_by"),
        override_reason=raw.get("override_reason") or None,
        first_dose=str(raw.get("first_dose") or "evening"),
    )


def hold_events(patient: m.Patient) -> list[Event]:
    """The patient's holds and returns as the planner's events."""
    return [Event(day=h.day, kind=h.kind, days=h.days, note=h.reason) for h in patient.holds.all()]


def build_plan(sig: str, options: dict[str, Any], events: Iterable[Event] = ()) -> Plan:
    """A taper plan from a regimen and options, with holds applied (the CLI's `plan` path)."""
    opts = plan_options(options)
    regimens = parse_sig(sig, opts.start)
    return replan(knowledge(), regimens, opts, list(events), sig)


def stored_plan(record: m.Plan) -> Plan:
    """Rebuild a saved plan from its inputs (the core is deterministic) for PDF, ICS and CSV files."""
    from benzotaper.web import guided

    if guided.is_guided(record.options) or record.options.get("replanned"):
        return guided.stored_guided_plan(record)
    events = [
        Event(day=date.fromisoformat(e["date"]), kind=e["kind"], days=e["days"], note=e.get("note", ""))
        for e in record.options.get("events", [])
    ]
    return build_plan(record.sig, record.options, events)


def plan_payload(plan: Plan) -> dict[str, Any]:
    """The plan's JSON with the typical patient's settled level and occupancy per step."""
    payload = plan.to_dict()
    curves = plan_curves(knowledge(), plan)
    payload["levels"] = [
        {
            "step": s.index,
            "trough_ng_ml": round(s.trough_ng_ml, 1),
            "mean_ng_ml": round(s.mean_ng_ml, 1),
            "occupancy": round(s.occupancy, 4),
        }
        for s in step_levels(plan, curves)
    ]
    payload["sampling"] = sampling_advice(plan)
    return payload


def approved_plan(patient: m.Patient) -> m.Plan | None:
    """The newest approved plan version."""
    return patient.plans.filter(status="approved").order_by("-version").first()


def todays_plan(patient: m.Patient, key: str | None = None) -> dict[str, Any] | None:
    """The approved plan's version and today's step (cached: parsing a long plan costs ~1 ms), or None."""

    def compute() -> dict[str, Any] | None:
        record = approved_plan(patient)
        return None if record is None else {"version": record.version, "step": step_on(record.plan, today())}

    return cached("today-plan", patient, compute, key)


def step_on(plan_json: dict[str, Any], day: date) -> dict[str, Any] | None:
    """The plan step running on `day`, or None before the start / after the end."""
    iso = day.isoformat()
    for step in plan_json.get("steps", []):
        if step["start"] <= iso <= step["end"]:
            return dict(step)
    return None


def plan_files(record: m.Plan, kind: str, crisis: str | None) -> tuple[bytes, str]:
    """A saved plan as PDF calendar, iCalendar or CSV bytes, with its content type."""
    from benzotaper.report.plan_csv import write_csv
    from benzotaper.report.plan_ics import write_ics
    from benzotaper.report.plan_pdf import write_pdf

    plan = stored_plan(record)
    writers: dict[str, tuple[Callable[[Path], Any], str]] = {
        "pdf": (lambda p: write_pdf(plan, p, crisis_text=crisis), "application/pdf"),
        "ics": (lambda p: write_ics(plan, p), "text/calendar"),
        "csv": (lambda p: write_csv(plan, p), "text/csv"),
    }
    write, content_type = writers[kind]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"plan.{kind}"
        write(path)
        return path.read_bytes(), content_type


# --- crisis, risk, red flags -------------------------------------------------------------------------


def crisis_for(patient: m.Patient | None) -> CrisisHelp:
    """Crisis lines of the patient's country, else generic emergency advice (help is never withheld)."""
    country = patient.country if patient is not None else ""
    if country:
        try:
            return crisis_help(country, safety_net())
        except BenzotaperError:
            pass
    return generic_help(safety_net())


def crisis_help_code(code: str) -> CrisisHelp:
    """Crisis help for a country code; an unknown code is refused with the list of known ones."""
    return crisis_help(code, safety_net())


def crisis_text(patient: m.Patient) -> str:
    """One line of help for a printed plan."""
    help_ = crisis_for(patient)
    lines = "; ".join(f"{line.name} {line.number}" for line in help_.lines)
    emergency = f"; emergency {help_.emergency.number}" if help_.emergency else ""
    return (
        "If you have a seizure, confusion, thoughts of harming yourself or feel very unwell, get help now. "
        f"{help_.name}: {lines}{emergency}."
    )


def risk_profile(patient: m.Patient) -> RiskProfile:
    """The patient's risk profile from the stored factors, today's regimen and age."""
    raw = patient.risk or {}
    flags = {f: raw[f] for f in FLAGS if f in raw}
    co_used = frozenset(s for s in raw.get("co_used", []) if s in SUBSTANCES)
    findings = tuple(raw.get("findings", [])) + tuple(s.symptom for s in patient.symptoms.all() if not s.resolved)
    sig = current_sig(patient)
    age = today().year - patient.birth_year if patient.birth_year else None
    first = patient.regimens.order_by("start").first()
    years = round((today() - first.start).days / 365.25, 1) if first else None
    return RiskProfile(
        age=age,
        regimen=sig or None,
        years_of_use=years,
        co_used=co_used,
        findings=findings,
        country=patient.country or None,
        **flags,
    )


def risk(patient: m.Patient) -> dict[str, Any]:
    """Risk factors, setting with reasons, co-use warnings and red-flag alerts (cached per data version)."""

    def compute() -> dict[str, Any]:
        return assess_risk(risk_profile(patient), knowledge(), safety_net()).to_dict(safety_net())

    return cached("risk", patient, compute)


def interdose(sig: str) -> bool | None:
    """Whether the typical patient on this regimen dips below the interdose-withdrawal line (None: no regimen)."""
    return _interdose(sig, today()) if sig else None


@lru_cache(maxsize=2048)
def _interdose(sig: str, start: date) -> bool:
    return simulate_sig(knowledge(), sig, days=14, start=start, step_h=0.5).interdose_withdrawal


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


def alerts(patient: m.Patient) -> list[dict[str, str]]:
    """What the patient list flags: red flags, co-use, interdose withdrawal, levels out of range, overdue samples."""

    def compute() -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        r = risk(patient)
        for alert in r["alerts"]:
            out.append(
                {"kind": "red_flag", "severity": alert["severity"], "text": f"{alert['name']}: {alert['action']}"}
            )
        for warning in r["co_use_warnings"]:
            out.append({"kind": "co_use", "severity": "warning", "text": warning["title"]})
        sig = current_sig(patient)
        try:
            if interdose(sig):
                out.append(
                    {
                        "kind": "interdose",
                        "severity": "warning",
                        "text": "interdose withdrawal likely: the level dips between doses of this regimen",
                    }
                )
        except BenzotaperError as exc:
            out.append({"kind": "regimen", "severity": "warning", "text": str(exc)})
        reading = level_reading(patient)
        for row in (reading or {}).get("samples", []):
            if row["verdict"] in OUT_OF_RANGE:
                out.append(
                    {
                        "kind": "level",
                        "severity": "critical" if row["verdict"] == "above_alert" else "warning",
                        "text": f"{row['analyte']} {row['sampled_at'][:10]}: {row['verdict'].replace('_', ' ')}",
                    }
                )
        out.extend(overdue_samples(patient))
        return out

    return cached("alerts", patient, compute)


def overdue_samples(patient: m.Patient) -> list[dict[str, str]]:
    """Advised trough samples whose time has passed with no level recorded since."""
    record = approved_plan(patient)
    if record is None:
        return []
    now = timezone.localtime().replace(tzinfo=None)
    last = patient.levels.order_by("-sampled_at").first()
    last_at = local(last.sampled_at) if last else datetime.min
    out = []
    for advice in record.plan.get("sampling", []):
        due = datetime.fromisoformat(advice["at"])
        if due < now and last_at < due - timedelta(days=1):
            out.append(
                {"kind": "overdue_sample", "severity": "warning", "text": f"level due {advice['at'][:10]} not recorded"}
            )
            break
    return out


# --- assessments and mirror -------------------------------------------------------------------------


def score_answers(instrument: str, answers: list[int] | dict[str, int]) -> dict[str, Any]:
    """Score a scale with the core (raises AssessmentError naming the item)."""
    if instrument not in instruments():
        raise BenzotaperError(f"instrument {instrument!r} unknown; use one of {', '.join(sorted(instruments()))}")
    result = score(instruments()[instrument], answers)
    return {
        "total": result.total,
        "band": result.band or "",
        "dependent": result.dependent,
        "warnings": list(result.warnings),
    }


def timeline(patient: m.Patient) -> Timeline | None:
    """The mirror analysis' input from the records (None without a regimen or a symptom)."""
    regs, symptoms = list(patient.regimens.all()), list(patient.symptoms.all())
    if not regs or not symptoms:
        return None
    courses = []
    for r in regs:
        drug = (r.parsed.get("drugs") or [{"drug": r.sig.split()[0]}])[0]["drug"]
        courses.append({"drug": drug, "dose": r.sig, "start": r.start, "end": r.end})
    indication = None
    if patient.indication:
        indication = {
            "condition": patient.indication,
            "since": patient.indication_since,
            "symptoms": [s.strip() for s in patient.indication_symptoms.split(",") if s.strip()],
        }
    return Timeline.model_validate(
        {
            "patient": {
                "sex": patient.sex or None,
                "birth_year": patient.birth_year,
                "country": patient.country or None,
            },
            "indication": indication,
            "bzd_history": courses,
            "symptoms": [
                {
                    "symptom": s.symptom,
                    "onset": s.onset,
                    "at": local(s.at) if s.at else None,
                    "severity": s.severity,
                    "resolved": s.resolved,
                    "note": s.note or None,
                }
                for s in symptoms
            ],
            "treatments": [
                {"drug": t.drug, "for": t.target, "start": t.start, "end": t.end, "effect": t.effect or None}
                for t in patient.treatments.all()
            ],
            "assessed_on": today(),
        }
    )


def mirror(patient: m.Patient) -> dict[str, Any] | None:
    """Verdict per symptom (withdrawal, primary, undetermined) with evidence, or None without data."""

    def compute() -> dict[str, Any] | None:
        tl = timeline(patient)
        if tl is None:
            return None
        try:
            return analyse(knowledge(), tl, mirror_knowledge()).to_dict()
        except BenzotaperError as exc:
            return {"error": str(exc)}

    return cached("mirror", patient, compute)


def symptom_alerts(patient: m.Patient) -> list[dict[str, Any]]:
    """Red flags among the recorded symptoms, with the crisis help of the patient's country."""
    names = [s.symptom for s in patient.symptoms.all() if not s.resolved]
    return [a.to_dict(safety_net()) for a in red_flags(names, safety_net(), patient.country or None)]


# --- summary and chart --------------------------------------------------------------------------------


def summary(patient: m.Patient) -> dict[str, Any]:
    """Today's regimen with its diazepam-equivalent dose, the active plan and today's step."""
    sig = current_sig(patient)
    preview = None
    error = None
    if sig:
        try:
            preview = regimen_preview(sig, current_since(patient) or today())
        except BenzotaperError as exc:
            error = str(exc)
    record = approved_plan(patient)
    step = step_on(record.plan, today()) if record else None
    return {"sig": sig, "preview": preview, "error": error, "plan": record, "step": step}


def _days(start: date, n: int) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range(n)]


def _dose_history(patient: m.Patient) -> dict[str, Any]:
    """Daily diazepam-equivalent dose from the regimen records (a step line)."""
    xs: list[str] = []
    ys: list[float] = []
    for r in patient.regimens.all():
        end = r.end or today()
        xs += [r.start.isoformat(), end.isoformat(), None]  # type: ignore[list-item]
        ys += [r.daily_de_mg, r.daily_de_mg, None]  # type: ignore[list-item]
    return {"x": xs, "y": ys}


def diary_traces(patient: m.Patient) -> list[dict[str, Any]]:
    """The diary part of the chart, read fresh on every view: doses taken per day and check-ins.

    Summed per day and drug in the database (a year of diary is ~1,500 rows per patient); each drug's
    diazepam-equivalent factor is looked up once (the conversion is linear in mg).
    """
    from django.db.models import Sum

    k = knowledge()
    factors: dict[str, float | None] = {}
    taken: dict[str, float] = {}
    sums = (
        patient.diary.filter(kind="dose", taken_mg__isnull=False)
        .values_list("day", "drug")
        .annotate(mg=Sum("taken_mg"))
        .order_by("day")
    )
    for day, drug, mg in sums:
        if drug not in factors:
            try:
                factors[drug] = diazepam_equivalent_mg(k, drug, 1.0)
            except BenzotaperError:
                factors[drug] = None
        factor = factors[drug]
        if factor is not None and mg is not None:
            taken[day.isoformat()] = taken.get(day.isoformat(), 0.0) + mg * factor
    feelings = list(
        patient.diary.filter(kind="checkin", feeling__isnull=False).order_by("day").values_list("day", "feeling")
    )
    traces: list[dict[str, Any]] = []
    if taken:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "taken (diary, diazepam-eq mg/day)",
                "x": list(taken),
                "y": [round(v, 2) for v in taken.values()],
                "xaxis": "x",
                "yaxis": "y",
                "marker": {"symbol": "diamond", "size": 6},
            }
        )
    if feelings:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "feeling (diary, 0-10)",
                "x": [d.isoformat() for d, _ in feelings],
                "y": [f for _, f in feelings],
                "xaxis": "x",
                "yaxis": "y3",
                "marker": {"symbol": "circle-open"},
            }
        )
    return traces


def diary_json(patient: m.Patient) -> str:
    """The diary chart traces as a ready-to-embed JSON block (`diary-data`)."""
    from django.utils.html import json_script

    return str(json_script(diary_traces(patient), "diary-data"))


def page_data(patient: m.Patient, key: str | None = None) -> dict[str, Any]:
    """Everything heavy on the patient page, computed by the core once per data version and day.

    The figure is kept as ready-to-embed JSON text, so a cached view does no serialising.
    """
    from django.utils.html import json_script

    def compute() -> dict[str, Any]:
        s = summary(patient)
        record = s.pop("plan")
        s["plan"] = (
            None
            if record is None
            else {
                "version": record.version,
                "strategy_name": record.plan.get("strategy_name", ""),
                "end_date": record.plan.get("end_date", ""),
            }
        )
        from benzotaper.web.patient_model import patient_fit, samples_due

        fit = patient_fit(patient, key)
        heavy = _chart_heavy(patient, fit)
        return {
            "fit": fit,
            "samples_due": samples_due(patient, fit),
            "replans": [
                {"id": r.pk, "reason": r.reason, "changes": len(r.changes)}
                for r in patient.replans.filter(status="waiting")
            ],
            "summary": s,
            "alerts": alerts(patient),
            "risk": risk(patient),
            "mirror": mirror(patient),
            "levels": level_reading(patient),
            "figure_json": str(json_script(heavy, "figure-data")),
            "help": crisis_for(patient).to_dict(safety_net()),
        }

    return cached("page", patient, compute, key)


def _chart_heavy(patient: m.Patient, fit: dict[str, Any] | None = None) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    history = _dose_history(patient)
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "dose (diazepam-eq mg/day)",
            **history,
            "xaxis": "x",
            "yaxis": "y",
            "line": {"shape": "hv"},
        }
    )
    record = approved_plan(patient)
    if record is not None:
        data += _plan_traces(record)
    data += _measured_traces(patient)
    if fit is not None:
        from benzotaper.web.patient_model import forecast_traces

        data += forecast_traces(fit)
    for code in ("ciwa_b", "bwsq", "sds"):
        rows = [(a.taken_at.date().isoformat(), a.total) for a in patient.assessments.all() if a.instrument == code]
        if rows:
            xs, ys = zip(*rows, strict=True)
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": instruments()[code].name,
                    "x": list(xs),
                    "y": list(ys),
                    "xaxis": "x",
                    "yaxis": "y3",
                }
            )
    layout: dict[str, Any] = {
        "height": 620,
        "margin": {"l": 60, "r": 60, "t": 20, "b": 40},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.08},
        # Open on the recent past and the plan ahead; the whole history is a zoom-out away.
        "xaxis": {"type": "date", "anchor": "y3", "range": _recent_range(patient)},
        "yaxis": {"title": {"text": "mg/day"}, "domain": [0.70, 1.0]},
        "yaxis2": {"title": {"text": "ng/mL (log)"}, "domain": [0.36, 0.66], "type": "log"},
        "yaxis4": {
            "title": {"text": "occupancy"},
            "overlaying": "y2",
            "side": "right",
            "range": [0, 1],
            "tickformat": ".0%",
            "dtick": 0.25,
        },
        "yaxis3": {"title": {"text": "score"}, "domain": [0.0, 0.30]},
    }
    for key in ("yaxis2", "yaxis4"):
        layout[key]["anchor"] = "x"
    return {"data": data, "layout": layout}


def _recent_range(patient: m.Patient) -> list[str]:
    """The chart's opening window: 120 days back to the end of the approved plan (at least 60 days ahead)."""
    record = approved_plan(patient)
    end = today() + timedelta(days=60)
    if record is not None and record.plan.get("end_date"):
        end = max(end, date.fromisoformat(record.plan["end_date"]) + timedelta(days=14))
    return [(today() - timedelta(days=120)).isoformat(), end.isoformat()]


def _plan_traces(record: m.Plan) -> list[dict[str, Any]]:
    plan = stored_plan(record)
    k = knowledge()
    xs, ys = _plan_steps_xy(plan)
    curves = plan_curves(k, plan, step_h=6.0)
    grid = _time_axis(datetime.combine(plan.start, time()), curves.times_h)
    traces = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"plan v{record.version} (diazepam-eq mg/day)",
            "x": xs,
            "y": ys,
            "xaxis": "x",
            "yaxis": "y",
            "line": {"dash": "dot", "shape": "hv"},
        },
        # One predicted curve per analyte, so a measured level is read against the same analyte.
        *(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{analyte} predicted (typical patient, ng/mL)",
                **grid,
                "y": np.round(curves.analyte(analyte)[0], 2).tolist(),
                "xaxis": "x",
                "yaxis": "y2",
            }
            for analyte in curves.analytes
        ),
        {
            "type": "scatter",
            "mode": "lines",
            "name": "GABA-A occupancy",
            **grid,
            "y": np.round(curves.occupancy[0], 3).tolist(),
            "xaxis": "x",
            "yaxis": "y4",
            "line": {"dash": "dash"},
        },
    ]
    return traces


def _plan_steps_xy(plan: Plan) -> tuple[list[Any], list[Any]]:
    """The plan's daily diazepam-equivalent dose as a step line (x, y with gaps between steps)."""
    k = knowledge()
    xs: list[Any] = []
    ys: list[Any] = []
    for s in plan.steps:
        de = round(sum(diazepam_equivalent_mg(k, drug, mg) for drug, mg in s.daily_mg.items()), 2)
        xs += [s.start.isoformat(), s.end.isoformat(), None]
        ys += [de, de, None]
    return xs, ys


def _time_axis(start: datetime, hours: np.ndarray) -> dict[str, Any]:
    """Plotly x values for a curve sampled at `hours` after `start`.

    An evenly spaced grid is sent as a start and a step (`x0`, `dx` in ms on a date axis), which halves
    the page's chart data; an uneven one as explicit times.
    """
    steps = np.diff(hours)
    if len(hours) > 1 and np.allclose(steps, steps[0]):
        first = start + timedelta(hours=float(hours[0]))
        return {"x0": first.isoformat(timespec="minutes"), "dx": float(steps[0]) * 3_600_000.0}
    return {"x": [(start + timedelta(hours=float(h))).isoformat(timespec="minutes") for h in hours]}


def _measured_traces(patient: m.Patient) -> list[dict[str, Any]]:
    """Measured levels per analyte, and beside them the model's expected value with its 90% range."""
    reading = level_reading(patient) or {}
    traces: list[dict[str, Any]] = []
    by_analyte: dict[str, list[m.Level]] = {}
    for lv in patient.levels.all():
        by_analyte.setdefault(lv.analyte, []).append(lv)
    for analyte, rows in by_analyte.items():
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{analyte} measured",
                "x": [local(lv.sampled_at).isoformat(timespec="minutes") for lv in rows],
                "y": [lv.value_ng_ml for lv in rows],
                "xaxis": "x",
                "yaxis": "y2",
                "marker": {"size": 10},
            }
        )
    rows_exp = [r for r in reading.get("samples", []) if r.get("expected")]
    if rows_exp:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "expected (model, range)",
                "x": [r["sampled_at"] for r in rows_exp],
                "y": [r["expected"]["value"] for r in rows_exp],
                "xaxis": "x",
                "yaxis": "y2",
                "marker": {"symbol": "line-ew-open", "size": 14},
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [r["expected"]["high"] - r["expected"]["value"] for r in rows_exp],
                    "arrayminus": [r["expected"]["value"] - r["expected"]["low"] for r in rows_exp],
                },
            }
        )
    return traces


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


def plan_figure(plan: Plan, version_label: str = "draft") -> dict[str, Any]:
    """A draft plan's chart for the plan builder: daily dose steps, predicted level and occupancy."""
    xs, ys = _plan_steps_xy(plan)
    curves = plan_curves(knowledge(), plan, step_h=6.0)
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{version_label}: diazepam-eq mg/day",
                "x": xs,
                "y": ys,
                "line": {"shape": "hv"},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "predicted level (ng/mL, typical patient)",
                **_time_axis(datetime.combine(plan.start, time()), curves.times_h),
                "y": np.round(curves.deq[0], 1).tolist(),
                "yaxis": "y2",
            },
        ],
        "layout": {
            "height": 360,
            "margin": {"l": 60, "r": 60, "t": 10, "b": 40},
            "legend": {"orientation": "h", "y": -0.15},
            "xaxis": {"type": "date"},
            "yaxis": {"title": {"text": "mg/day"}},
            "yaxis2": {"title": {"text": "ng/mL"}, "overlaying": "y", "side": "right"},
        },
    }
