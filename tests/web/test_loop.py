"""The ward loop in the app: levels -> this patient's fit -> guided plan -> approve -> re-plan draft -> diary.

The three troughs are written from a hand calculation, not from the app: alprazolam 2 mg at 08:00, 14:00
and 20:00 (sig.toml 'tds'), one-compartment oral model with the knowledge base's typical values for 70 kg
(F 0.88, ka 1.1/h, CL 0.05 L/h/kg = 3.5 L/h, V 0.7 L/kg = 49 L). At steady state the level just before the
08:00 dose sums the three daily doses given 12, 18 and 24 h earlier:
    C = F*D*ka / (V*(ka-k)) * sum_d [e^(-k d)/(1-e^(-24k)) - e^(-ka d)/(1-e^(-24 ka))],   k = CL/V.
Typical (k = 0.0714/h): 41.3 ng/mL. A patient clearing alprazolam twice as fast (k = 0.1429/h): 12.3 ng/mL.
Three troughs of 12.3 ng/mL put this patient's clearance at about 2x typical, beyond the population's
80th centile (CV 40%: 80th centile = exp(0.84 * 0.385) = 1.38x), so the fit must say `fast`.
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from benzotaper.web import clinic_clock, plan_records, replans
from benzotaper.web import models as m
from benzotaper.web.audit import acting_as
from tests.web.conftest import Clinic

SIG = "alprazolam 2 mg tds"


def trough_ng_ml(clearance_ratio: float) -> float:
    """The hand calculation of the module docstring."""
    f, dose, ka, cl, v = 0.88, 2.0, 1.1, 3.5, 49.0
    k = cl * clearance_ratio / v
    a = f * dose * ka / (v * (ka - k)) * 1000
    return sum(
        a * (math.exp(-k * d) / (1 - math.exp(-24 * k)) - math.exp(-ka * d) / (1 - math.exp(-24 * ka)))
        for d in (12, 18, 24)
    )


def test_the_hand_calculation_gives_the_documented_troughs() -> None:
    assert round(trough_ng_ml(1.0), 1) == 41.3
    assert round(trough_ng_ml(2.0), 1) == 12.3


def _setup(clinic: Clinic) -> m.Patient:
    today = clinic_clock.today()
    tz = timezone.get_current_timezone()
    m.Patient.objects.filter(pk=clinic.other_patient.pk).update(user=None)  # their login becomes this patient's
    with acting_as(clinic.doctor):
        patient = m.Patient.objects.create(
            team=clinic.team, name="Fast Example", country="GB", user=clinic.other_patient_user
        )
        m.Regimen.objects.create(
            patient=patient,
            sig=SIG,
            start=today - timedelta(days=7),
            parsed={"drugs": [{"drug": "alprazolam"}]},
            daily_de_mg=120.0,
        )
        for days_ago in (3, 2, 1):
            at = datetime.combine(today - timedelta(days=days_ago), time(7, 55))
            m.Level.objects.create(
                patient=patient,
                analyte="alprazolam",
                sampled_at=timezone.make_aware(at, tz),
                value_ng_ml=round(trough_ng_ml(2.0), 1),
            )
    return patient


def _api(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def fast(clinic: Clinic) -> m.Patient:
    return _setup(clinic)


def test_the_fit_says_fast_with_the_samples_and_a_forecast_band(clinic: Clinic, fast: m.Patient) -> None:
    body = _api(clinic.doctor).get(f"/api/patients/{fast.pk}/fit").json()
    assert body["eliminator"] == "fast"
    assert 1.5 < body["clearance_ratio"] < 2.6  # about 2x typical, shrunk a little toward the prior
    assert len(body["samples_used"]) == 3 and body["samples_excluded"] == []
    rows = [r for r in body["forecast"] if r["analyte"] == "alprazolam"]
    assert len(rows) == 28
    assert all(r["low_ng_ml"] <= r["mid_ng_ml"] <= r["high_ng_ml"] for r in rows)
    # Same regimen, so the forecast trough stays at the measured steady state (within the band's width).
    assert rows[0]["low_ng_ml"] < 12.3 * 1.2 and rows[0]["high_ng_ml"] > 12.3 * 0.8
    assert body["next_sample"]["at"] and "trough" in body["next_sample"]["when"]


def test_without_levels_the_fit_says_why_and_which_sample_to_take(clinic: Clinic) -> None:
    body = _api(clinic.doctor).get(f"/api/patients/{clinic.patient.pk}/fit").json()
    assert body["eliminator"] is None and "no level" in body["reason"]
    # Regimen since 2025-01-01: long settled, so the next trough is the next morning's pre-dose time.
    assert body["next_sample"]["at"].endswith("08:00")


def test_the_fit_is_another_teams_secret(clinic: Clinic, fast: m.Patient) -> None:
    assert _api(clinic.stranger).get(f"/api/patients/{fast.pk}/fit").status_code == 404
    assert Client().get(f"/api/patients/{fast.pk}/fit").status_code == 401


def _guided(client: Client, pid: int, **extra: Any) -> Any:
    body = {"start": clinic_clock.today().isoformat(), "level_fall": 5, "trajectory": "occupancy", **extra}
    return client.post(f"/api/patients/{pid}/plans/guided", body, content_type="application/json")


def test_a_guided_plan_preview_has_the_comparison_and_sample_dates(clinic: Clinic, fast: m.Patient) -> None:
    r = _guided(_api(clinic.doctor), fast.pk)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "draft" and body["version"] is None
    who = {(row["patient"], row["plan"].split(" ")[0]) for row in body["comparison"]}
    assert who == {(p, k) for p in ("fast", "this patient", "slow") for k in ("fixed", "guided")}
    assert len(body["sample_dates"]) >= 1
    steps = body["plan"]["steps"]
    assert steps[-1]["doses"] == []  # ends drug-free, never abruptly: every cut within 25% in 14 days
    deq = [s["diazepam_equivalent_mg"] for s in steps[:-1]]
    assert all(b >= a * 0.75 - 1e-6 for a, b in itertools.pairwise(deq))
    assert m.Plan.objects.filter(patient=fast).count() == 0  # a preview saves nothing


def test_bad_guided_options_are_refused_naming_the_field(clinic: Clinic, fast: m.Patient) -> None:
    r = _guided(_api(clinic.doctor), fast.pk, level_fall=90)
    assert r.status_code == 422 and "level_fall" in str(r.json()["detail"][0]["loc"])


def _approve_guided(clinic: Clinic, patient: m.Patient) -> dict[str, Any]:
    r = _guided(_api(clinic.doctor), patient.pk, approve=True)
    assert r.status_code == 201, r.content
    return r.json()


def _ciwa(client: Client, pid: int, total_per_item: int) -> Any:
    answers = [total_per_item] * 20
    return client.post(
        f"/api/patients/{pid}/assessments",
        {"instrument": "ciwa_b", "answers": answers},
        content_type="application/json",
    )


def test_a_high_ciwa_b_drafts_a_replan_that_changes_nothing_until_approved(clinic: Clinic, fast: m.Patient) -> None:
    approved = _approve_guided(clinic, fast)
    client = _api(clinic.doctor)
    assert _ciwa(client, fast.pk, 0).status_code == 201  # a score of 0 reaches no hold rule: no draft
    assert client.get(f"/api/patients/{fast.pk}/replans").json() == []
    assert _ciwa(client, fast.pk, 1).status_code == 201  # 20 x 1 = 20: still below the moderate band (21)
    assert client.get(f"/api/patients/{fast.pk}/replans").json() == []
    assert _ciwa(client, fast.pk, 2).status_code == 201  # 20 x 2 = 40: moderate band -> hold
    drafts = client.get(f"/api/patients/{fast.pk}/replans").json()
    assert len(drafts) == 1
    draft = drafts[0]
    assert draft["based_on_version"] == approved["version"] and "CIWA-B 40" in draft["reason"]
    assert draft["changes"] and {"from_date", "drug", "before_mg", "after_mg"} <= set(draft["changes"][0])
    # The first change holds today's dose instead of the approved next cut (it starts at or after today).
    first = draft["changes"][0]
    assert first["from_date"] >= clinic_clock.today().isoformat() and first["after_mg"] >= first["before_mg"]
    assert plan_records.approved_plan(fast).version == approved["version"]  # nothing applied yet
    r = client.post(f"/api/replans/{draft['id']}/approve")
    assert r.status_code == 201, r.content
    assert r.json()["version"] == approved["version"] + 1
    assert plan_records.approved_plan(fast).plan == draft["plan"]
    assert m.AuditEntry.objects.filter(model="Replan", object_id=str(draft["id"]), action="update").exists()
    again = client.post(f"/api/replans/{draft['id']}/approve")
    assert again.status_code == 409 and "already approved" in again.json()["detail"]


def test_approving_a_stale_draft_is_refused_and_loses_nothing(clinic: Clinic, fast: m.Patient) -> None:
    _approve_guided(clinic, fast)
    client = _api(clinic.doctor)
    _ciwa(client, fast.pk, 2)
    draft = client.get(f"/api/patients/{fast.pk}/replans").json()[0]
    with acting_as(clinic.doctor):  # the data change after drafting: a symptom is recorded
        m.Symptom.objects.create(patient=fast, symptom="anxiety", onset=clinic_clock.today())
    r = client.post(f"/api/replans/{draft['id']}/approve")
    assert r.status_code == 409 and "changed after this re-plan was drafted" in r.json()["detail"]
    assert m.Plan.objects.filter(patient=fast).count() == 1
    assert m.Replan.objects.get(pk=draft["id"]).status == "waiting"


def test_a_new_draft_supersedes_the_waiting_one_and_discard_keeps_the_plan(clinic: Clinic, fast: m.Patient) -> None:
    _approve_guided(clinic, fast)
    client = _api(clinic.doctor)
    _ciwa(client, fast.pk, 2)
    _ciwa(client, fast.pk, 3)  # 60: severe band -> return to the previous step, slower afterwards
    drafts = client.get(f"/api/patients/{fast.pk}/replans?status=all").json()
    assert [d["status"] for d in drafts] == ["waiting", "superseded"]
    r = client.post(f"/api/replans/{drafts[0]['id']}/discard")
    assert r.status_code == 200 and r.json()["status"] == "discarded"
    assert m.Plan.objects.filter(patient=fast).count() == 1
    assert client.post(f"/api/replans/{drafts[1]['id']}/approve").status_code == 409


def test_replans_belong_to_the_care_team(clinic: Clinic, fast: m.Patient) -> None:
    _approve_guided(clinic, fast)
    _ciwa(_api(clinic.doctor), fast.pk, 2)
    rid = m.Replan.objects.get(patient=fast).pk
    assert _api(clinic.stranger).post(f"/api/replans/{rid}/approve").status_code == 404
    assert _api(clinic.stranger).get(f"/api/patients/{fast.pk}/replans").status_code == 404
    assert _api(clinic.other_patient_user).post(f"/api/replans/{rid}/approve").status_code == 403


def test_the_worklist_lists_the_waiting_replan_and_the_red_flags_by_urgency(clinic: Clinic, fast: m.Patient) -> None:
    _approve_guided(clinic, fast)
    _ciwa(_api(clinic.doctor), fast.pk, 2)
    with acting_as(clinic.doctor):
        fast.risk = {"seizure_history": True, "co_used": ["opioids"]}
        fast.save()
    items = _api(clinic.doctor).get("/api/worklist").json()
    mine = [i for i in items if i["patient_id"] == fast.pk]
    kinds = [i["kind"] for i in mine]
    assert "replan_waiting" in kinds and "red_flag" in kinds
    assert [i["urgency"] for i in items] == sorted((i["urgency"] for i in items), reverse=True)
    waiting = next(i for i in mine if i["kind"] == "replan_waiting")
    assert _api(clinic.doctor).get(waiting["url"]).status_code == 200
    assert all(i["patient_id"] != fast.pk for i in _api(clinic.stranger).get("/api/worklist").json())


def test_pages_show_fit_guided_builder_replan_and_worklist(clinic: Clinic, fast: m.Patient) -> None:
    client = _api(clinic.doctor)
    page = client.get(f"/patients/{fast.pk}/").content.decode()
    assert 'id="eliminator">fast<' in page and "forecast" in page
    r = client.post(
        f"/patients/{fast.pk}/plan/guided/",
        {
            "start": clinic_clock.today().isoformat(),
            "level_fall": "5",
            "trajectory": "occupancy",
            "switch": "later",
            "strategy": "ashton",
            "action": "preview",
        },
    )
    html = r.content.decode()
    assert r.status_code == 200 and 'id="comparison"' in html and "this patient" in html
    r = client.post(
        f"/patients/{fast.pk}/plan/guided/",
        {
            "start": clinic_clock.today().isoformat(),
            "level_fall": "5",
            "trajectory": "occupancy",
            "switch": "later",
            "strategy": "ashton",
            "action": "approve",
        },
    )
    assert r.status_code == 302
    _ciwa(client, fast.pk, 2)
    draft = m.Replan.objects.get(patient=fast, status="waiting")
    html = client.get(f"/patients/{fast.pk}/replans/{draft.pk}/").content.decode()
    assert 'id="changes"' in html and "CIWA-B" in html
    assert client.get("/").url == "/worklist/"
    assert 'data-kind="replan_waiting"' in client.get("/worklist/").content.decode()
    r = client.post(f"/patients/{fast.pk}/replans/{draft.pk}/", {"action": "approve"})
    assert r.status_code == 302 and plan_records.approved_plan(fast).version == 2


def test_the_worklist_speaks_polish(clinic: Clinic, fast: m.Patient) -> None:
    _approve_guided(clinic, fast)
    _ciwa(_api(clinic.doctor), fast.pk, 2)
    m.Profile.objects.filter(user=clinic.doctor).update(language="pl")
    html = _api(clinic.doctor).get("/worklist/").content.decode()
    assert "Lista zadań na dziś" in html and "zmiana planu czeka" in html


def _level(client: Client, pid: int, value: str, unit: str, days_ago: int = 1) -> Any:
    # Yesterday before the evening dose: in the past whatever the time of day the test runs.
    at = datetime.combine(clinic_clock.today() - timedelta(days=days_ago), time(19, 55))
    body = {"analyte": "alprazolam", "sampled_at": at.isoformat(), "value": value, "unit": unit}
    return client.post(f"/api/patients/{pid}/levels", body, content_type="application/json")


def test_a_new_trough_drafts_a_replan_from_every_level(clinic: Clinic, fast: m.Patient) -> None:
    _approve_guided(clinic, fast)
    client = _api(clinic.doctor)
    assert _level(client, fast.pk, "6", "ng/mL").status_code == 201  # lower than forecast: the fit moves
    drafts = client.get(f"/api/patients/{fast.pk}/replans").json()
    assert len(drafts) == 1 and drafts[0]["trigger"]["kind"] == "level" and "6 ng/mL" in drafts[0]["reason"]
    assert len(client.get(f"/api/patients/{fast.pk}/fit").json()["samples_used"]) == 4


def test_a_refused_level_names_the_field_saves_nothing_and_drafts_nothing(clinic: Clinic, fast: m.Patient) -> None:
    _approve_guided(clinic, fast)
    client = _api(clinic.doctor)
    levels = m.Level.objects.filter(patient=fast).count()
    wrong_unit = _level(client, fast.pk, "12", "ng/L")
    assert wrong_unit.status_code == 422 and "unit" in str(wrong_unit.json()["detail"][0]["loc"])
    implausible = _level(client, fast.pk, "900000", "ng/mL")
    assert implausible.status_code == 422 and "value" in str(implausible.json()["detail"])
    assert m.Level.objects.filter(patient=fast).count() == levels
    assert client.get(f"/api/patients/{fast.pk}/replans").json() == []


def test_the_demo_clinic_has_guided_plans_and_one_current_replan_to_review(db: Any) -> None:
    from benzotaper.web.demo import load_demo

    load_demo()
    plans = m.Plan.objects.filter(status="approved", version=1)
    assert plans.count() == 2 and all("guided" in p.options for p in plans)
    drafts = list(m.Replan.objects.filter(status="waiting"))
    assert len(drafts) == 1 and "CIWA-B 24" in drafts[0].reason
    assert replans.stale_reason(drafts[0]) is None  # drafted last: nothing changed after it
    # At first start, both worked cases answer /fit with an eliminator, and their pages show it.
    client = _api(User.objects.get(username="demo-clinician"))
    patients = client.get("/api/patients").json()["items"]
    assert len(patients) == 2
    for row in patients:
        fit = client.get(f"/api/patients/{row['id']}/fit").json()
        assert fit["eliminator"] in ("fast", "typical", "slow"), fit
        assert fit["samples_used"] and fit["forecast"]
        page = client.get(f"/patients/{row['id']}/").content.decode()
        assert f'id="eliminator">{fit["eliminator"]}<' in page


def test_a_guided_plan_starting_years_ahead_is_refused_naming_start(clinic: Clinic, fast: m.Patient) -> None:
    # Found by the API fuzz: start 7204-08-03 was simulated for 607 s before answering.
    r = _api(clinic.doctor).post(
        f"/api/patients/{fast.pk}/plans/guided",
        {"start": "7204-08-03", "level_fall": 5, "trajectory": "occupancy"},
        content_type="application/json",
    )
    assert r.status_code == 422
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["body", "start"] and "7204-08-03" in detail["msg"]


def test_the_comparison_chart_plots_each_rows_daily_trough(clinic: Clinic, fast: m.Patient) -> None:
    from benzotaper.web.charts import DAY_MS, comparison_figure

    r = _guided(_api(clinic.doctor), fast.pk)
    assert r.status_code == 200, r.content
    rows = r.json()["comparison"]
    assert all({"start_date", "daily_trough_ng_ml"} <= set(row) for row in rows)
    figure = comparison_figure(rows)
    traces = figure["data"]
    assert len(traces) == 6
    for t, row in zip(traces, rows, strict=True):
        assert t["y"] == row["daily_trough_ng_ml"] and t["x0"] == row["start_date"]
    assert all(t["dx"] == DAY_MS == 24 * 3600 * 1000 for t in traces)  # one point a day
    assert {t["line"]["dash"] for t in traces} == {"solid", "dot"}
    assert len({t["line"]["color"] for t in traces}) == 3
    # One colour per person, shared by both of their plans.
    for who in ("fast", "this patient", "slow"):
        assert len({t["line"]["color"] for t in traces if t["legendgroup"] == who}) == 1
    assert figure["layout"]["yaxis"]["title"]["text"] == "predicted trough (diazepam-eq ng/mL)"
    # A row without the daily series (an older JSON) is skipped, not an error.
    old = [{k: v for k, v in row.items() if k != "daily_trough_ng_ml"} for row in rows[:2]]
    assert len(comparison_figure(old + rows)["data"]) == 6


def test_the_weekly_fall_offered_is_the_knowledge_bases(clinic: Clinic) -> None:
    """Form, API schema and core read one set of bounds from tdm.toml (no second copy of the numbers in web/)."""
    import tomllib

    from benzotaper.knowledge.loader import DATA_DIR
    from benzotaper.tdm.guided import default_trajectory
    from benzotaper.web.forms import GuidedPlanForm

    guided_toml = tomllib.loads((DATA_DIR / "tdm.toml").read_text())["guided"]
    fall = guided_toml["fall_per_week"]
    lowest, default = 100 * fall["range"][0], 100 * fall["value"]
    highest = 100 * guided_toml["fall_per_week_limit"]["value"]
    field = GuidedPlanForm().fields["level_fall"]
    assert (field.min_value, field.initial, field.max_value) == pytest.approx((lowest, default, highest))
    schema = Client().get("/api/openapi.json").json()["components"]["schemas"]["GuidedIn"]["properties"]["level_fall"]
    assert (schema["minimum"], schema["default"], schema["maximum"]) == pytest.approx((lowest, default, highest))
    default_trajectory("level", highest / 100)  # the limit itself is accepted by the core
    with pytest.raises(Exception, match=f"at most {highest:g}%"):
        default_trajectory("level", highest / 100 + 0.001)
    r = _guided(_api(clinic.doctor), _setup(clinic).pk, level_fall=highest + 0.5)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "level_fall"]
