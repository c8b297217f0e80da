"""Serum-level monitoring: reading levels, interpreting them, the Bayesian fit, eliminator labels, recovery.

Expectations are independent of the code under test where possible: unit conversions by hand, a
steady-state trough from the one-compartment formula, true parameters chosen or drawn by the test,
and statistical targets (bias, coverage) fixed before looking at the results.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benzotaper.errors import LevelsError
from benzotaper.knowledge import Knowledge, load_knowledge
from benzotaper.pk import typical
from benzotaper.tdm import validation as V
from benzotaper.tdm.eliminator import classify
from benzotaper.tdm.fit import Fit, fit, free_parameters, parameters_for
from benzotaper.tdm.interpret import Interpretation, interpret
from benzotaper.tdm.patient import Patient, build_patient
from benzotaper.tdm.samples import DEQ, Sample, read_samples, samples_csv

KNOWLEDGE: Knowledge = load_knowledge()
SINCE = date(2026, 1, 1)
DIAZEPAM = "diazepam 10 mg tds"
ALPRAZOLAM = "alprazolam 1 mg tds"
TROUGH = datetime(2026, 3, 31, 7, 30)  # day 90, before the 08:00 dose (tds: 08:00, 14:00, 20:00)
HEAD = "sampled_at,analyte,value,unit,lloq\n"


def _csv(*rows: str) -> list[Sample]:
    return read_samples(KNOWLEDGE, HEAD + "".join(r + "\n" for r in rows))


def _patient(sig: str, values: dict[str, float | None], at: datetime = TROUGH, lloq: float | None = None) -> Patient:
    samples = [Sample(i + 2, at, a, y, lloq) for i, (a, y) in enumerate(values.items())]
    return build_patient(KNOWLEDGE, samples, sig, SINCE)


def _typical_levels(sig: str, analytes: list[str], at: datetime = TROUGH) -> dict[str, float]:
    p = _patient(sig, dict.fromkeys(analytes, 1.0), at)
    pred = p.predict(typical(p.model))[0]
    return {a: float(y) for a, y in zip(analytes, pred, strict=True)}


def _noiseless(sig: str, times: list[datetime], analytes: list[str], eta: list[float]) -> Fit:
    """Fit levels equal to the true model prediction for these etas (no residual error)."""
    design = V.design(KNOWLEDGE, sig, SINCE, times, analytes)
    truth = design.predict(parameters_for(design.model, free_parameters(design), np.array(eta)))[0]
    return fit(build_patient(KNOWLEDGE, V.samples_from(design, truth), sig, SINCE))


def _by_analyte(result: list[Interpretation]) -> dict[str, Interpretation]:
    return {i.sample.analyte: i for i in result}


# --- reading a levels CSV --------------------------------------------------------------------------


def test_nmol_per_litre_converts_with_the_molar_mass() -> None:
    # diazepam C16H13ClN2O: 284.74 g/mol, so 1000 nmol/L = 1 umol/L = 284.74 ug/L = 284.74 ng/mL
    (s,) = _csv("2026-03-31T07:30,diazepam,1000,nmol/L,")
    assert s.value == pytest.approx(284.74, rel=1e-3)
    assert s.analyte == "diazepam" and not s.censored


def test_mass_units_convert_without_molar_mass() -> None:
    (s,) = _csv("2026-03-31T07:30,diazepam,0.45,mg/L,")
    assert s.value == pytest.approx(450.0)


@pytest.mark.parametrize(
    ("value", "lloq", "expected_lloq"),
    [("<5", "", 5.0), ("BLQ", "2", 2.0), ("nd", "3", 3.0), ("3", "5", 5.0), ("4.99", "5", 5.0)],
)
def test_levels_below_the_lloq_are_censored(value: str, lloq: str, expected_lloq: float) -> None:
    (s,) = _csv(f"2026-03-31T07:30,diazepam,{value},ng/mL,{lloq}")
    assert s.censored and s.value is None
    assert s.lloq == pytest.approx(expected_lloq)


def test_a_level_at_the_lloq_is_a_value() -> None:
    (s,) = _csv("2026-03-31T07:30,diazepam,5,ng/mL,5")
    assert s.value == 5.0 and s.lloq == 5.0


def test_blq_without_an_lloq_is_refused() -> None:
    with pytest.raises(LevelsError, match=r"row 2, column 'lloq'"):
        _csv("2026-03-31T07:30,diazepam,BLQ,ng/mL,")


def test_missing_column_is_named() -> None:
    with pytest.raises(LevelsError, match=r"missing column.*'unit'"):
        read_samples(KNOWLEDGE, "sampled_at,analyte,value\n2026-03-31T07:30,diazepam,500\n")


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("2026-03-31,diazepam,500,ng/mL,", "sampled_at"),  # a date without the clock time
        ("2026-03-31T07:30,foobarzepam,500,ng/mL,", "analyte"),
        ("2026-03-31T07:30,diazepam,90000,ng/mL,", "value"),  # 90 mg/L: a unit slip
        ("2026-03-31T07:30,diazepam,lots,ng/mL,", "value"),
        ("2026-03-31T07:30,diazepam,500,furlongs,", "value"),
        ("2026-03-31T07:30,diazepam,,ng/mL,", "value"),
    ],
)
def test_bad_rows_name_the_row_and_column(row: str, column: str) -> None:
    with pytest.raises(LevelsError, match=rf"row 3, column '{column}'"):
        _csv("2026-03-30T07:30,diazepam,480,ng/mL,", row)


def test_an_implausible_level_says_why() -> None:
    with pytest.raises(LevelsError, match="implausible"):
        _csv("2026-03-31T07:30,diazepam,90000,ng/mL,")


@pytest.mark.parametrize("name", ["diazepam_equivalents", "Total benzodiazepines", "immunoassay"])
def test_diazepam_equivalents_are_accepted(name: str) -> None:
    (s,) = _csv(f"2026-03-31T07:30,{name},800,ng/mL,")
    assert s.analyte == DEQ and s.immunoassay


def test_seven_aminoclonazepam_is_read_but_not_assessed() -> None:
    samples = _csv("2026-03-31T07:30,7-aminoclonazepam,30,ng/mL,", "2026-03-31T07:30,clonazepam,10,ng/mL,")
    assert {s.analyte for s in samples} == {"aminoclonazepam", "clonazepam"}
    patient = build_patient(KNOWLEDGE, samples, "clonazepam 1 mg bd", SINCE)
    verdicts = _by_analyte(interpret(patient))
    assert verdicts["aminoclonazepam"].verdict == "not_assessed"
    assert verdicts["aminoclonazepam"].expected is None
    assert verdicts["clonazepam"].verdict != "not_assessed"


def test_samples_are_returned_in_time_order() -> None:
    samples = _csv("2026-03-31T07:30,diazepam,500,ng/mL,", "2026-03-29T07:30,diazepam,480,ng/mL,")
    assert [s.row for s in samples] == [3, 2]


# --- interpretation --------------------------------------------------------------------------------


def test_a_level_at_the_typical_prediction_is_consistent_and_inside_the_interval() -> None:
    typ = _typical_levels(DIAZEPAM, ["diazepam", "nordiazepam"])
    result = _by_analyte(interpret(_patient(DIAZEPAM, dict(typ))))
    for analyte, level in typ.items():
        r = result[analyte]
        assert r.verdict == "consistent"
        assert r.expected is not None
        assert r.expected.low < level < r.expected.high
        assert r.centile is not None and 0.25 < r.centile < 0.75


@pytest.mark.parametrize(("factor", "verdict"), [(5.0, "higher"), (0.2, "lower")])
def test_a_level_five_fold_off_the_typical_is_flagged(factor: float, verdict: str) -> None:
    typ = _typical_levels(ALPRAZOLAM, ["alprazolam"])
    (r,) = interpret(_patient(ALPRAZOLAM, {"alprazolam": factor * typ["alprazolam"]}))
    assert r.verdict == verdict
    assert any(s == "hiemke2018" for s in r.sources)


def test_censored_level_well_below_the_interval_is_lower() -> None:
    typ = _typical_levels(ALPRAZOLAM, ["alprazolam"])["alprazolam"]
    (r,) = interpret(_patient(ALPRAZOLAM, {"alprazolam": None}, lloq=typ / 10))
    assert r.verdict == "lower"
    (r,) = interpret(_patient(ALPRAZOLAM, {"alprazolam": None}, lloq=typ * 2))
    assert r.verdict == "consistent"


def test_diazepam_plus_nordiazepam_above_3000_is_above_alert() -> None:
    # AGNP alert level 3000 ng/mL for the sum (diazepam.toml); neither analyte alone is above it
    above = interpret(_patient(DIAZEPAM, {"diazepam": 1600.0, "nordiazepam": 1600.0}))
    assert [r.verdict for r in above] == ["above_alert", "above_alert"]
    ref = above[0].reference
    assert ref is not None and ref.measured == pytest.approx(3200.0) and ref.alert == pytest.approx(3000.0)
    below = interpret(_patient(DIAZEPAM, {"diazepam": 1400.0, "nordiazepam": 1400.0}))
    assert all(r.verdict != "above_alert" for r in below)
    assert below[0].reference is not None and below[0].reference.status == "above"  # above the 2500 high


def test_levels_at_different_times_are_not_summed_for_the_alert() -> None:
    samples = [
        Sample(2, TROUGH - timedelta(days=1), "diazepam", 1600.0, None),
        Sample(3, TROUGH, "nordiazepam", 1600.0, None),
    ]
    result = interpret(build_patient(KNOWLEDGE, samples, DIAZEPAM, SINCE))
    assert all(r.verdict != "above_alert" for r in result)


def _one_compartment_steady_trough(mg: float, cl: float, v: float, ka: float, hours_since: list[float]) -> float:
    """Superposed one-compartment oral doses repeated every 24 h, at steady state (ng/mL; mg, L, 1/h)."""
    k = cl / v
    total = 0.0
    for dt in hours_since:
        total += (
            mg
            * 1000.0
            / v
            * ka
            / (ka - k)
            * (math.exp(-k * dt) / (1 - math.exp(-24 * k)) - math.exp(-ka * dt) / (1 - math.exp(-24 * ka)))
        )
    return total


def test_alprazolam_expected_trough_matches_the_steady_state_formula() -> None:
    disp = KNOWLEDGE.analytes["alprazolam"].disposition
    assert disp is not None and disp.model == "one_compartment"
    assert disp.apparent  # CL/F and V/F: the formula takes F = 1
    cl, v = disp.clearance_l_h, disp.volume.value
    ka_q = KNOWLEDGE.drug("alprazolam").absorption.ka
    assert ka_q is not None
    assert (cl, v) == pytest.approx((3.5, 49.0))  # 0.05 L/h/kg and 0.7 L/kg at 70 kg
    # 07:30 trough: 23.5 h after the 08:00 dose, 17.5 h after 14:00, 11.5 h after 20:00 of the day before
    hand = _one_compartment_steady_trough(1.0, cl, v, ka_q.value, [23.5, 17.5, 11.5])
    average = 3 * 1.0 * 1000.0 / (cl * 24)  # Css,avg = daily dose / (CL x 24 h) = 35.7 ng/mL
    assert 0.5 * average < hand < average  # sanity of the formula itself: a trough, 11.5 h after the last dose
    assert _typical_levels(ALPRAZOLAM, ["alprazolam"])["alprazolam"] == pytest.approx(hand, rel=1e-3)
    (r,) = interpret(_patient(ALPRAZOLAM, {"alprazolam": hand}))
    assert r.expected is not None
    # the population median is the typical level (monotone in CL) plus symmetric assay noise: Monte Carlo 5%
    assert r.expected.value == pytest.approx(hand, rel=0.05)
    assert r.verdict == "consistent"


def test_immunoassay_is_interpreted_with_a_caution() -> None:
    patient = build_patient(KNOWLEDGE, [Sample(2, TROUGH, DEQ, 900.0, None)], DIAZEPAM, SINCE)
    (r,) = interpret(patient)
    assert r.expected is not None and r.expected.value > 0
    assert any("immunoassay" in reason for reason in r.reasons)


def test_a_sample_an_hour_after_a_dose_gets_a_timing_note() -> None:
    (r,) = interpret(_patient(ALPRAZOLAM, {"alprazolam": 20.0}, at=datetime(2026, 3, 31, 9, 0)))
    assert any("not a trough sample" in reason for reason in r.reasons)


# --- the Bayesian fit ------------------------------------------------------------------------------


def test_noiseless_levels_recover_the_true_clearances() -> None:
    times = [datetime(2026, 3, 20 + d, h, 30) for d in range(10) for h in (7, 11)]
    f = _noiseless(DIAZEPAM, times, ["diazepam", "nordiazepam"], [0.5, -0.3])
    true_cl = [1.596 * math.exp(0.5), 1.008 * math.exp(-0.3)]  # typical CL (diazepam.toml, nordiazepam.toml)
    est = f.params().cl[0].tolist()
    # exact data are atypical for a model with proportional error: MAP sits ~sigma^2 (2%) off, not 0
    assert est == pytest.approx(true_cl, rel=0.05)
    for j, cl in enumerate(true_cl):
        lo, hi = f.interval(j, 0.90)
        assert lo < cl < hi
    assert f.converged and not f.notes


@pytest.mark.parametrize("eta_true", [0.8, -0.8])
def test_one_level_moves_the_estimate_part_way_from_the_prior(eta_true: float) -> None:
    f = _noiseless(DIAZEPAM, [TROUGH], ["diazepam"], [eta_true, 0.0])
    eta = float(f.eta[0])
    assert 0 < eta / eta_true < 1  # between the prior (0) and the truth
    assert eta / eta_true > 0.5  # a trough at steady state is informative
    lo, hi = f.interval(0, 0.90)
    assert 0 < lo < hi < math.inf
    # nordiazepam was not measured: its estimate and interval stay at the prior
    assert abs(f.eta[1]) < 1e-6
    assert f.cov[1, 1] == pytest.approx(f.free[1].omega ** 2, rel=1e-3)


@pytest.mark.parametrize("lloq", [50.0, 200.0, 400.0])
def test_a_level_below_the_lloq_says_fast(lloq: float) -> None:
    # typical diazepam trough ~650 ng/mL; no sample at all would leave eta at its prior mode, 0
    patient = _patient(DIAZEPAM, {"diazepam": None}, lloq=lloq)
    f = fit(patient)
    assert f.eta[0] > 0.3
    assert classify(f).label == "fast"
    lo, _ = f.interval(0, 0.90)
    assert lo > f.free[0].typical


def test_a_lower_lloq_pulls_clearance_higher() -> None:
    etas = [fit(_patient(DIAZEPAM, {"diazepam": None}, lloq=q)).eta[0] for q in (1000.0, 400.0, 100.0)]
    assert 0 < etas[0] < etas[1] < etas[2]


def test_a_ten_fold_outlier_stays_within_the_bounds_and_is_flagged() -> None:
    typ = _typical_levels(DIAZEPAM, ["diazepam", "nordiazepam"])
    times = V.trough_times(n=5)
    samples = [
        Sample(2 + 2 * k + i, t, a, typ[a] * (10.0 if k == 4 else 1.0), None)
        for k, t in enumerate(times)
        for i, a in enumerate(("diazepam", "nordiazepam"))
    ]
    patient = build_patient(KNOWLEDGE, samples, DIAZEPAM, SINCE)
    f = fit(patient)
    omegas = np.array([p.omega for p in f.free])
    assert np.all(np.abs(f.eta) <= 5 * omegas + 1e-9)
    assert np.all(np.isfinite(f.cov)) and np.all(np.diag(f.cov) > 0)
    assert any("far from the fitted model" in note for note in f.notes)
    verdicts = [r.verdict for r in interpret(patient)]
    assert verdicts[-2:] == ["above_alert", "above_alert"]  # the outlier itself is flagged
    assert set(verdicts[:-2]) == {"consistent"}


def test_more_levels_give_narrower_intervals_and_smaller_errors() -> None:
    one = V.recovery(KNOWLEDGE, DIAZEPAM, SINCE, V.trough_times(n=1), n=50, seed=11)
    five = V.recovery(KNOWLEDGE, DIAZEPAM, SINCE, V.trough_times(n=5), n=50, seed=11)
    np.testing.assert_array_equal(one.truth, five.truth)  # same simulated patients
    for label in ("diazepam clearance", "nordiazepam clearance"):
        assert five.parameter(label).width_log < one.parameter(label).width_log
        assert five.parameter(label).rmse_log < one.parameter(label).rmse_log


def test_a_drug_without_variability_cannot_be_individualised() -> None:
    assert KNOWLEDGE.analytes["oxazepam"].disposition is not None
    patient = _patient("oxazepam 15 mg tds", {"oxazepam": 300.0})
    assert free_parameters(patient) == ()
    with pytest.raises(LevelsError, match="between-subject variability"):
        fit(patient)


def test_only_an_immunoassay_cannot_inform_the_fit() -> None:
    patient = build_patient(KNOWLEDGE, [Sample(2, TROUGH, DEQ, 900.0, None)], DIAZEPAM, SINCE)
    with pytest.raises(LevelsError, match="no sample can inform the fit"):
        fit(patient)


def test_an_immunoassay_beside_two_levels_does_not_break_the_fit() -> None:
    samples = [
        Sample(2, TROUGH - timedelta(days=1), "diazepam", 600.0, None),
        Sample(3, TROUGH, DEQ, 900.0, None),
        Sample(4, TROUGH, "diazepam", 600.0, None),
    ]
    f = fit(build_patient(KNOWLEDGE, samples, DIAZEPAM, SINCE))
    assert f.used == (0, 2)


def test_an_unused_sample_does_not_change_the_fit() -> None:
    def eta(aminoclonazepam_lloq: str) -> float:
        samples = _csv(
            f"2026-03-31T07:30,7-aminoclonazepam,30,ng/mL,{aminoclonazepam_lloq}",
            "2026-03-31T07:30,clonazepam,10,ng/mL,",
        )
        return float(fit(build_patient(KNOWLEDGE, samples, "clonazepam 1 mg bd", SINCE)).eta[0])

    assert eta("20") == pytest.approx(eta(""), abs=1e-6)


# --- eliminator label ------------------------------------------------------------------------------


@pytest.mark.parametrize(("ratio", "label"), [(0.3, "slow"), (1.0, "typical"), (3.0, "fast")])
@pytest.mark.parametrize(("sig", "analytes"), [(DIAZEPAM, ["diazepam", "nordiazepam"]), (ALPRAZOLAM, ["alprazolam"])])
def test_true_clearance_gives_the_eliminator_label(sig: str, analytes: list[str], ratio: float, label: str) -> None:
    f = _noiseless(sig, V.trough_times(n=5), analytes, [math.log(ratio)] * len(analytes))
    e = classify(f)
    assert e.label == label
    assert e.clearance_ratio == pytest.approx(ratio, rel=0.1)
    assert e.ratio_interval[0] < e.clearance_ratio < e.ratio_interval[1]


# --- the simulated-patient generator ---------------------------------------------------------------


def test_simulated_etas_follow_the_priors_and_censoring_respects_the_lloq() -> None:
    patients = V.simulate_patients(
        KNOWLEDGE, DIAZEPAM, SINCE, V.trough_times(n=2), ["diazepam", "nordiazepam"], 4000, seed=5, lloq=400.0
    )
    eta = np.vstack([p.eta for p in patients])
    # omega = sqrt(ln(1 + CV^2)) for CV 0.53 (diazepam) and 0.29 (nordiazepam)
    omegas = np.sqrt(np.log1p(np.array([0.53, 0.29]) ** 2))
    np.testing.assert_allclose(eta.std(axis=0), omegas, rtol=0.05)
    np.testing.assert_allclose(eta.mean(axis=0), 0.0, atol=0.03)
    samples = [s for p in patients for s in p.samples]
    assert all(s.lloq == 400.0 for s in samples)
    assert all(s.value is None or s.value >= 400.0 for s in samples)
    censored = [s for s in samples if s.censored]
    assert 0 < len(censored) < len(samples)
    # a fast patient (high true clearance) is more often censored than a slow one
    fast = [p for p in patients if p.eta[0] > 0.5]
    slow = [p for p in patients if p.eta[0] < -0.5]
    share = lambda group: np.mean([s.censored for p in group for s in p.samples if s.analyte == "diazepam"])
    assert share(fast) > share(slow)


def test_simulated_levels_survive_a_csv_round_trip() -> None:
    (p,) = V.simulate_patients(KNOWLEDGE, DIAZEPAM, SINCE, V.trough_times(n=3), ["diazepam"], 1, seed=2, lloq=1e4)
    again = read_samples(KNOWLEDGE, samples_csv(p.samples))
    assert [s.censored for s in again] == [s.censored for s in p.samples] == [True] * 3
    assert [s.lloq for s in again] == [1e4] * 3


def test_the_outlier_option_multiplies_one_level_per_patient() -> None:
    args = (KNOWLEDGE, ALPRAZOLAM, SINCE, V.trough_times(n=5), ["alprazolam"], 20)
    plain = V.simulate_patients(*args, seed=3)
    spiked = V.simulate_patients(*args, seed=3, outlier=True)
    for a, b in zip(plain, spiked, strict=True):
        ratios = np.array([(y.value or 0) / (x.value or 1) for x, y in zip(a.samples, b.samples, strict=True)])
        assert sorted(np.round(ratios, 9).tolist()) == [1.0, 1.0, 1.0, 1.0, 10.0]


# --- validation over simulated patients ------------------------------------------------------------


@pytest.mark.slow
def test_diazepam_clearance_is_recovered_without_bias_and_with_nominal_coverage() -> None:
    r = V.recovery(KNOWLEDGE, DIAZEPAM, SINCE, V.trough_times(n=5), ["diazepam", "nordiazepam"], n=1000, seed=2026)
    print(f"\n{r.n} simulated patients on {r.sig}, 5 troughs; median fit {r.median_fit_ms:.1f} ms")
    for line in r.lines():
        print("  " + line)
    cl = r.parameter("diazepam clearance")
    assert abs(cl.mean_relative_error) < 0.10
    assert abs(cl.gmr_error) < 0.10
    assert 0.85 <= cl.coverage <= 0.95
    nord = r.parameter("nordiazepam clearance")
    assert abs(nord.gmr_error) < 0.10 and 0.85 <= nord.coverage <= 0.95
    assert r.converged == r.n


@pytest.mark.slow
def test_alprazolam_clearance_is_recovered_from_one_trough() -> None:
    r = V.recovery(KNOWLEDGE, ALPRAZOLAM, SINCE, V.trough_times(n=1), ["alprazolam"], n=400, seed=7)
    cl = r.parameter("alprazolam clearance")
    print(f"\n{r.n} simulated patients on {r.sig}, 1 trough: " + r.lines()[0])
    assert abs(cl.gmr_error) < 0.10
    assert 0.82 <= cl.coverage <= 0.96  # 400 patients: binomial SD of the coverage 1.5%
    assert cl.shrinkage < 0.2


# --- properties ------------------------------------------------------------------------------------

PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


CASES = [(ALPRAZOLAM, "alprazolam"), (DIAZEPAM, "diazepam"), (DIAZEPAM, "nordiazepam")]


def _map_clearance(sig: str, analyte: str, level: float) -> float:
    f = fit(_patient(sig, {analyte: level}))
    (j,) = (f.free[i].analyte for i in range(len(f.free)) if f.free[i].name == analyte and f.free[i].kind == "cl")
    return float(f.params().cl[0, j])


@PROPERTY
@given(st.sampled_from(CASES), st.floats(min_value=0.001, max_value=20.0), st.floats(min_value=1.01, max_value=20.0))
def test_a_higher_trough_never_gives_a_higher_clearance(
    case: tuple[str, str], times_typical: float, factor: float
) -> None:
    # from a thousandth of the typical trough upwards: log-scale residuals never saturate
    sig, analyte = case
    level = times_typical * _typical_levels(sig, [analyte])[analyte]
    assert _map_clearance(sig, analyte, level * factor) <= _map_clearance(sig, analyte, level) * (1 + 1e-6)


def test_a_tenth_of_the_typical_nordiazepam_trough_means_faster_clearance_than_a_fifth() -> None:
    typ = _typical_levels(DIAZEPAM, ["nordiazepam"])["nordiazepam"]
    assert _map_clearance(DIAZEPAM, "nordiazepam", typ / 10) >= _map_clearance(DIAZEPAM, "nordiazepam", typ / 5)


@PROPERTY
@given(
    st.lists(st.one_of(st.none(), st.floats(min_value=0.0, max_value=40000.0)), min_size=1, max_size=4),
    st.sampled_from([5.0, 50.0, 500.0]),
)
def test_any_levels_give_a_bounded_estimate_and_a_finite_interval(values: list[float | None], lloq: float) -> None:
    samples = [
        Sample(2 + k, TROUGH - timedelta(days=k), "diazepam", None if y is None or y < lloq else y, lloq)
        for k, y in enumerate(values)
    ]
    f = fit(build_patient(KNOWLEDGE, samples, DIAZEPAM, SINCE))
    omegas = np.array([p.omega for p in f.free])
    assert np.all(np.abs(f.eta) <= 5 * omegas + 1e-9)
    for j in range(len(f.free)):
        lo, hi = f.interval(j, 0.90)
        assert 0 < lo < hi < math.inf
