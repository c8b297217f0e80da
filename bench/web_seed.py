"""Seed data for the web load benchmark: one care team, clinicians, N patients with a year of records each.

Run inside a configured Django (`benzotaper.web.server.setup()` + `migrate()`) whose data directory is a
fresh temporary folder. Everything is SYNTHETIC. Per patient, over the year before today:

* three regimen periods (two changes) from a small set of realistic sigs; the last one is current,
* an approved Ashton plan of the current regimen that started 2, 4 or 6 weeks ago (built with the core:
  `plan_records.build_plan` + `plan_records.plan_payload`, once per distinct (sig, start) and reused),
* 12 monthly trough levels of the drug taken at the time: the typical patient's trough (core
  simulation, once per sig) times a per-sample factor between 0.5 and 2,
* 52 weekly scales alternating CIWA-B and BWSQ, scored by the core (once per instrument and level),
* three symptoms and an indication, so the mirror analysis has something to read,
* 365 days of diary: one entry per dose taken (the regimen's doses, or the plan step's once the plan
  runs) and an evening check-in, with the BWSQ total once a week.

Rows are written with `bulk_create`, which skips the audit signals: the per-patient data version
(`page_cache.page_keys`, the newest audit entry) is then 0 for every patient, which the cache handles
like any other version. Accounts share one precomputed password hash (Argon2 is slow by design).
"""

from __future__ import annotations

import random
import time as clock
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np

PASSWORD = "bench-load-2026!"
TEAM = "Benchmark ward"
SIGS = ["alprazolam 1 mg tds", "lorazepam 1 mg bd", "diazepam 5 mg tds", "clonazepam 0.5 mg bd"]
SYMPTOMS = [
    "anxiety",
    "insomnia",
    "irritability",
    "tremor",
    "palpitations",
    "chronic headache",
    "panic attacks",
    "tinnitus",
    "sleep problems",
]
PLAN_STARTS = (14, 28, 42)  # days ago
SYNTHETIC = "load benchmark (synthetic)"


@dataclass
class Seeded:
    """What the load generator needs to know about the seeded clinic."""

    patient_ids: list[int]
    clinicians: list[str]
    patient_users: dict[int, str]  # patient id -> username
    today_doses: dict[int, list[dict[str, Any]]]  # patient id -> today's planned doses
    password: str = PASSWORD
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    plans_built: int = 0


def seed(n_patients: int = 200, n_clinicians: int = 5, rng_seed: int = 2026) -> Seeded:
    """Create the clinic. Returns ids, user names and row counts."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.db import transaction
    from django.utils import timezone

    from benzotaper.simulate import simulate_sig
    from benzotaper.web import clinic_clock, kb, plan_records, prescriptions, scoring
    from benzotaper.web import models as m

    t0 = clock.perf_counter()
    rng = random.Random(rng_seed)
    today = clinic_clock.today()
    tz = timezone.get_current_timezone()

    def aware(day: date, at: time) -> datetime:
        result: datetime = timezone.make_aware(datetime.combine(day, at), tz)
        return result

    # --- what the core computes, once per distinct input --------------------------------------------
    previews = {sig: prescriptions.regimen_preview(sig, today) for sig in SIGS}
    troughs: dict[str, tuple[str, float, time]] = {}
    for sig in SIGS:
        start = today - timedelta(days=14)
        report = simulate_sig(kb.knowledge(), sig, days=14, start=start, step_h=0.25)
        reg = report.regimens[0]
        analyte = kb.knowledge().drug(reg.drug).analyte
        curve = report.curves.analyte(analyte)[0]
        first = min(d.at for d in reg.doses)
        when = datetime.combine(today - timedelta(days=1), first) - timedelta(minutes=30)
        hours = (when - datetime.combine(start, time())).total_seconds() / 3600
        troughs[sig] = (analyte, float(np.interp(hours, report.curves.times_h, curve)), first)
    plans: dict[tuple[str, int], dict[str, Any]] = {}
    scores: dict[tuple[str, int], tuple[dict[str, int], dict[str, Any]]] = {}
    for code in ("ciwa_b", "bwsq"):
        inst = kb.instruments()[code]
        for level in range(3):
            answers = {item.id: min(level, max(o.value for o in item.options)) for item in inst.items}
            scores[(code, level)] = (answers, scoring.score_answers(code, answers))

    def plan_for(sig: str, days_ago: int) -> dict[str, Any]:
        key = (sig, days_ago)
        if key not in plans:
            options = {"strategy": "ashton", "start": (today - timedelta(days=days_ago)).isoformat(), "switch": "auto"}
            payload = plan_records.plan_payload(plan_records.build_plan(sig, options))
            plans[key] = {"options": dict(options, events=[]), "payload": payload}
        return plans[key]

    # --- accounts --------------------------------------------------------------------------------------
    hashed = make_password(PASSWORD)
    with transaction.atomic():
        team = m.CareTeam.objects.create(name=TEAM)
        clinicians = [f"bench-clin-{i + 1}" for i in range(n_clinicians)]
        User.objects.bulk_create([User(username=u, password=hashed) for u in clinicians])
        clin_users = list(User.objects.filter(username__in=clinicians).order_by("id"))
        profiles = m.Profile.objects.bulk_create([m.Profile(user=u, role="clinician") for u in clin_users])
        team.members.add(*profiles)
        pt_names = [f"bench-pt-{i + 1:04d}" for i in range(n_patients)]
        User.objects.bulk_create([User(username=u, password=hashed) for u in pt_names])
        pt_users = {u.username: u for u in User.objects.filter(username__in=pt_names)}
        m.Profile.objects.bulk_create([m.Profile(user=u, role="patient") for u in pt_users.values()])

        # --- patients ----------------------------------------------------------------------------------
        patients = m.Patient.objects.bulk_create(
            [
                m.Patient(
                    team=team,
                    user=pt_users[pt_names[i]],
                    name=f"Load Test {i + 1:04d}",
                    identifier=f"BENCH-{i + 1:04d}",
                    birth_year=rng.randint(1945, 2000),
                    sex=rng.choice("FMX"),
                    country=rng.choice(["PL", "GB", ""]),
                    indication="anxiety disorder",
                    indication_since=today - timedelta(days=rng.randint(3 * 365, 15 * 365)),
                    indication_symptoms="anxiety",
                    risk={"co_used": rng.choice([[], [], ["alcohol"]])},
                )
                for i in range(n_patients)
            ]
        )
        regimens: list[Any] = []
        levels: list[Any] = []
        assessments: list[Any] = []
        symptoms: list[Any] = []
        plan_rows: list[Any] = []
        diary: list[Any] = []
        today_doses: dict[int, list[dict[str, Any]]] = {}
        approver = clin_users[0]
        year_ago = today - timedelta(days=365)
        for p in patients:
            sigs = [rng.choice(SIGS)]
            while len(sigs) < 3:
                sigs.append(rng.choice([s for s in SIGS if s != sigs[-1]]))
            bounds = [year_ago, today - timedelta(days=245), today - timedelta(days=120)]
            periods = []
            for k, sig in enumerate(sigs):
                end = bounds[k + 1] - timedelta(days=1) if k + 1 < len(bounds) else None
                periods.append((sig, bounds[k], end))
                preview = previews[sig]
                regimens.append(
                    m.Regimen(
                        patient=p, sig=sig, start=bounds[k], end=end, parsed=preview, daily_de_mg=preview["diazepam_mg"]
                    )
                )
            current = sigs[-1]
            days_ago = rng.choice(PLAN_STARTS)
            built = plan_for(current, days_ago)
            plan_start = today - timedelta(days=days_ago)
            plan_rows.append(
                m.Plan(
                    patient=p,
                    version=1,
                    status="approved",
                    sig=current,
                    options=built["options"],
                    plan=built["payload"],
                    approved_by=approver,
                    approved_at=aware(plan_start - timedelta(days=1), time(12)),
                )
            )

            def sig_on(day: date, periods: list[Any] = periods) -> str:
                for sig, start, end in periods:
                    if start <= day and (end is None or day <= end):
                        return str(sig)
                return str(periods[-1][0])

            for month in range(12):
                day = today - timedelta(days=365 - 15 - 30 * month)
                sig = sig_on(day)
                analyte, trough, first = troughs[sig]
                sampled = aware(day, first) - timedelta(minutes=30)
                levels.append(
                    m.Level(
                        patient=p,
                        analyte=analyte,
                        sampled_at=sampled,
                        value_ng_ml=round(trough * rng.uniform(0.5, 2.0), 1),
                        last_dose_at=sampled - timedelta(hours=10),
                        lab=SYNTHETIC,
                        method="LC-MS/MS",
                    )
                )
            for week in range(52):
                code = "ciwa_b" if week % 2 == 0 else "bwsq"
                answers, result = scores[(code, rng.randint(0, 2))]
                assessments.append(
                    m.Assessment(
                        patient=p,
                        instrument=code,
                        taken_at=aware(year_ago + timedelta(days=7 * week + 3), time(10)),
                        answers=answers,
                        total=result["total"],
                        band=result["band"],
                        source="clinic",
                    )
                )
            for name in rng.sample(SYMPTOMS, 3):
                onset = today - timedelta(days=rng.randint(60, 3 * 365))
                symptoms.append(m.Symptom(patient=p, symptom=name, onset=onset, note=SYNTHETIC))
            for n in range(365, 0, -1):
                day = today - timedelta(days=n)
                step = plan_records.step_on(built["payload"], day) if day >= plan_start else None
                doses = (
                    step["doses"]
                    if step
                    else [
                        {"drug": d["drug"], "time": x["time"], "mg": x["mg"]}
                        for d in previews[sig_on(day)]["drugs"]
                        for x in d["doses"]
                    ]
                )
                for dose in doses:
                    taken = dose["mg"] if rng.random() > 0.05 else round(dose["mg"] * 1.5, 3)
                    diary.append(
                        m.DiaryEntry(
                            patient=p,
                            day=day,
                            at=aware(day, time.fromisoformat(dose["time"])),
                            kind="dose",
                            drug=dose["drug"],
                            planned_mg=dose["mg"],
                            taken_mg=taken,
                        )
                    )
                weekly = n % 7 == 0
                bwsq_answers, bwsq_result = scores[("bwsq", rng.randint(0, 2))]
                diary.append(
                    m.DiaryEntry(
                        patient=p,
                        day=day,
                        at=aware(day, time(21)),
                        kind="checkin",
                        feeling=rng.randint(2, 9),
                        bwsq=bwsq_answers if weekly else None,
                        bwsq_total=bwsq_result["total"] if weekly else None,
                        note="",
                    )
                )
            step = plan_records.step_on(built["payload"], today) or {"doses": []}
            today_doses[p.pk] = [{"drug": d["drug"], "time": d["time"], "mg": d["mg"]} for d in step["doses"]]
        m.Regimen.objects.bulk_create(regimens, batch_size=2000)
        m.Plan.objects.bulk_create(plan_rows, batch_size=200)
        m.Level.objects.bulk_create(levels, batch_size=2000)
        m.Assessment.objects.bulk_create(assessments, batch_size=2000)
        m.Symptom.objects.bulk_create(symptoms, batch_size=2000)
        m.DiaryEntry.objects.bulk_create(diary, batch_size=5000)
    counts = {
        "patients": len(patients),
        "regimens": len(regimens),
        "plans": len(plan_rows),
        "levels": len(levels),
        "assessments": len(assessments),
        "symptoms": len(symptoms),
        "diary_entries": len(diary),
    }
    return Seeded(
        patient_ids=[p.pk for p in patients],
        clinicians=clinicians,
        patient_users={p.pk: p.user.username for p in patients},
        today_doses=today_doses,
        counts=counts,
        seconds=clock.perf_counter() - t0,
        plans_built=len(plans),
    )
