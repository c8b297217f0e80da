"""What the patient list flags: red flags, co-use, interdose withdrawal, levels out of range, samples overdue."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

from django.utils import timezone

from benzotaper.errors import BenzotaperError
from benzotaper.simulate import simulate_sig
from benzotaper.web import models as m
from benzotaper.web.clinic_clock import local, today
from benzotaper.web.kb import knowledge
from benzotaper.web.level_records import level_reading
from benzotaper.web.page_cache import cached
from benzotaper.web.plan_records import approved_plan
from benzotaper.web.prescriptions import current_sig
from benzotaper.web.safety import risk

OUT_OF_RANGE = {"above_alert", "higher", "lower"}


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


def interdose(sig: str) -> bool | None:
    """Whether the typical patient on this regimen dips below the interdose-withdrawal line (None: no regimen)."""
    return _interdose(sig, today()) if sig else None


@lru_cache(maxsize=2048)
def _interdose(sig: str, start: date) -> bool:
    return simulate_sig(knowledge(), sig, days=14, start=start, step_h=0.5).interdose_withdrawal


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
