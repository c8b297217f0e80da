"""Forms: each runs the core's own validation and shows its message next to the field it names."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from benzotaper.errors import BenzotaperError
from benzotaper.knowledge.safety_net import FLAGS, SUBSTANCES
from benzotaper.web import kb, level_records, plan_records, prescriptions, safety, scoring
from benzotaper.web import models as m
from benzotaper.web.guided import FALL

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")  # ISO: what a date input accepts
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
FLAG_LABELS = {f: f.replace("_", " ") for f in FLAGS}


class PatientForm(forms.ModelForm):
    """A patient's identity, indication and risk factors (risk kept as the core's RiskProfile fields)."""

    co_used = forms.MultipleChoiceField(
        label=_("also uses"),
        required=False,
        choices=[(s, s.replace("_", " ")) for s in SUBSTANCES],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = m.Patient
        fields = [
            "team",
            "name",
            "identifier",
            "birth_year",
            "sex",
            "country",
            "indication",
            "indication_since",
            "indication_symptoms",
        ]
        widgets = {"indication_since": DATE}

    def __init__(self, *args: Any, teams: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if teams is not None:
            self.fields["team"].queryset = teams
        for flag in FLAGS:
            self.fields[flag] = forms.BooleanField(label=FLAG_LABELS[flag], required=False)
        risk = self.instance.risk or {}
        for flag in FLAGS:
            self.initial.setdefault(flag, bool(risk.get(flag)))
        self.initial.setdefault("co_used", risk.get("co_used", []))

    def clean_country(self) -> str:
        code = (self.cleaned_data.get("country") or "").strip().upper()
        if code:
            try:
                safety.crisis_help_code(code)
            except BenzotaperError as exc:
                raise forms.ValidationError(str(exc)) from None
        return code

    def save(self, commit: bool = True) -> m.Patient:
        patient: m.Patient = super().save(commit=False)
        patient.risk = {
            **{f: bool(self.cleaned_data.get(f)) for f in FLAGS},
            "co_used": list(self.cleaned_data.get("co_used") or []),
        }
        if commit:
            patient.save()
        return patient


class RegimenForm(forms.Form):
    """A regimen as free text; the core's parse is shown back before it is saved."""

    sig = forms.CharField(
        label=_("regimen"),
        max_length=300,
        help_text=_("e.g. 'alprazolam 2 mg tds' or 'lorazepam 1 mg mane + 2 mg nocte'"),
    )
    start = forms.DateField(label=_("taken since"), widget=DATE)
    end = forms.DateField(label=_("until (empty: ongoing)"), widget=DATE, required=False)
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        if self.errors:
            return data
        if data.get("end") and data["end"] < data["start"]:
            self.add_error("end", _("the end date is before the start date"))
            return data
        try:
            data["preview"] = prescriptions.regimen_preview(data["sig"], data["start"], data.get("end"))
        except BenzotaperError as exc:
            self.add_error("sig", str(exc))
        return data


class LevelForm(forms.Form):
    """A measured serum level, read by the core's levels reader (unit converted, implausible refused)."""

    analyte = forms.ChoiceField(label=_("analyte"))
    sampled_at = forms.DateTimeField(label=_("sampled at"), widget=DATETIME)
    value = forms.CharField(label=_("value"), max_length=20, help_text=_("a number, or '<5' when below the limit"))
    unit = forms.ChoiceField(label=_("unit"), choices=[(u, u) for u in ("ng/mL", "ug/L", "nmol/L", "umol/L", "mg/L")])
    lloq = forms.CharField(label=_("lower limit of quantification"), max_length=20, required=False)
    last_dose_at = forms.DateTimeField(label=_("last dose at"), widget=DATETIME, required=False)
    lab = forms.CharField(label=_("laboratory"), max_length=80, required=False)
    method = forms.CharField(label=_("method"), max_length=40, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["analyte"].choices = level_records.analyte_choices()

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        if self.errors:
            return data
        local = {
            k: timezone.localtime(v).replace(tzinfo=None) if v else None
            for k, v in (("sampled_at", data["sampled_at"]), ("last_dose_at", data.get("last_dose_at")))
        }
        if local["sampled_at"] and local["sampled_at"] > timezone.localtime().replace(tzinfo=None):
            self.add_error("sampled_at", _("the sample time is in the future"))
            return data
        fields = {
            "sampled_at": local["sampled_at"].isoformat(timespec="minutes") if local["sampled_at"] else "",
            "analyte": data["analyte"],
            "value": data["value"],
            "unit": data["unit"],
            "lloq": data.get("lloq") or "",
            "last_dose_at": local["last_dose_at"].isoformat(timespec="minutes") if local["last_dose_at"] else "",
            "lab": data.get("lab") or "",
            "method": data.get("method") or "",
        }
        try:
            data["sample"] = level_records.read_level(fields)
        except BenzotaperError as exc:
            self.add_error(_field_named(str(exc), self.fields), str(exc))
        return data


def _field_named(message: str, fields: dict[str, Any]) -> str | None:
    """The form field a core message names ("column 'value'"), else a form-wide error."""
    hit = re.search(r"column '?\"?(\w+)", message)
    return hit.group(1) if hit and hit.group(1) in fields else None


class AssessmentForm(forms.Form):
    """A CIWA-B, BWSQ or SDS: one choice field per item, built from the instrument's data."""

    taken_at = forms.DateTimeField(label=_("taken at"), widget=DATETIME)

    def __init__(self, instrument: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instrument = kb.instruments()[instrument]
        for item in self.instrument.items:
            choices = [(o.value, f"{o.value} {o.label}".strip()) for o in item.options]
            self.fields[f"item_{item.id}"] = forms.TypedChoiceField(
                label=item.text, choices=choices, coerce=int, widget=forms.RadioSelect
            )

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        if self.errors:
            return data
        answers = {item.id: data[f"item_{item.id}"] for item in self.instrument.items}
        try:
            data["result"] = scoring.score_answers(self.instrument.id, answers)
            data["answers"] = answers
        except BenzotaperError as exc:
            self.add_error(None, str(exc))
        return data


class SymptomForm(forms.ModelForm):
    """A symptom for the mirror analysis (names from the core's vocabulary are matched by it)."""

    class Meta:
        model = m.Symptom
        fields = ["symptom", "onset", "severity", "resolved", "note"]
        widgets = {"onset": DATE, "resolved": DATE}

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        if data.get("onset") and data.get("resolved") and data["resolved"] < data["onset"]:
            self.add_error("resolved", _("resolved before the onset"))
        return data


class HoldForm(forms.ModelForm):
    """A hold (pause) or a return to the previous step, with the reason."""

    class Meta:
        model = m.Hold
        fields = ["day", "kind", "days", "reason"]
        widgets = {"day": DATE}


def _market_field() -> forms.ChoiceField:
    return forms.ChoiceField(
        label=_("products of"), required=False, choices=[("", _("any")), ("UK", "UK"), ("US", "US"), ("PL", "PL")]
    )


def _override_field() -> forms.CharField:
    return forms.CharField(label=_("clinician's reason to lift the rate limit"), required=False, max_length=300)


def json_options(cleaned: dict[str, Any]) -> dict[str, Any]:
    """Cleaned form choices as JSON-safe plan options (dates as ISO text, empty ones left out)."""
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in cleaned.items() if v not in (None, "")}


class PlanForm(forms.Form):
    """The plan builder's choices; the core checks them (rate limits, override reasons, deadlines)."""

    strategy = forms.ChoiceField(label=_("strategy"), choices=[(s, s) for s in plan_records.STRATEGIES])
    start = forms.DateField(label=_("first day"), widget=DATE)
    to = forms.ChoiceField(
        label=_("switch to"),
        required=False,
        choices=[
            ("", _("preset's choice (diazepam)")),
            ("diazepam", "diazepam"),
            ("clonazepam", "clonazepam"),
            ("chlordiazepoxide", "chlordiazepoxide"),
        ],
    )
    switch = forms.ChoiceField(
        label=_("substitution"), choices=[(s, s) for s in ("auto", "stepwise", "direct", "none")]
    )
    interval_days = forms.IntegerField(label=_("days between reductions"), required=False, min_value=1, max_value=90)
    fraction = forms.FloatField(label=_("reduction fraction (e.g. 0.1)"), required=False, min_value=0.01, max_value=0.5)
    end_by = forms.DateField(label=_("finish by"), widget=DATE, required=False)
    market = _market_field()
    override_reason = _override_field()

    def options(self) -> dict[str, Any]:
        """The cleaned choices as JSON-safe plan options."""
        return json_options(self.cleaned_data)


class DoseForm(forms.Form):
    """The patient confirms a planned dose or records what was taken instead."""

    drug = forms.CharField(max_length=40, widget=forms.HiddenInput)
    planned_mg = forms.FloatField(widget=forms.HiddenInput)
    time = forms.CharField(max_length=5, widget=forms.HiddenInput)
    taken_mg = forms.FloatField(label=_("taken (mg)"), min_value=0, max_value=1000)


class CheckinForm(forms.Form):
    """The daily check-in: how the patient feels, the BWSQ if they wish, and a note."""

    feeling = forms.IntegerField(
        label=_("how do you feel today? (0 = very bad, 10 = very well)"), min_value=0, max_value=10
    )
    note = forms.CharField(label=_("note"), required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class GuidedPlanForm(forms.Form):
    """A plan paced by this patient's levels: the core's weekly fall, trajectory and the usual safety limits."""

    start = forms.DateField(label=_("first day"), widget=DATE)
    level_fall = forms.FloatField(
        label=_("target fall per week (%)"),
        min_value=round(100 * FALL.lowest, 2),  # tdm.toml: fall_per_week's range and fall_per_week_limit
        max_value=round(100 * FALL.highest, 2),
        initial=round(100 * FALL.default, 2),
        help_text=_("how fast this patient's trough level (or occupancy) should fall"),
    )
    trajectory = forms.ChoiceField(
        label=_("guide"), choices=[("occupancy", _("predicted receptor occupancy")), ("level", _("trough level"))]
    )
    switch = forms.ChoiceField(
        label=_("substitution"),
        choices=[
            ("later", _("keep the drug; switch only when its tablets get too coarse")),
            ("none", _("never switch")),
            ("auto", _("switch to a long-acting drug first")),
        ],
    )
    strategy = forms.ChoiceField(
        label=_("preset after a switch"), choices=[(s, s) for s in plan_records.STRATEGIES], initial="ashton"
    )
    market = _market_field()
    override_reason = _override_field()

    def options(self) -> dict[str, Any]:
        """The cleaned choices as JSON-safe plan options (the weekly fall in percent)."""
        return json_options(self.cleaned_data)
