"""Shared hypothesis strategies: drugs with PK data, dose schedules."""

from __future__ import annotations

from hypothesis import strategies as st

SIMULATED = [
    "diazepam",
    "alprazolam",
    "lorazepam",
    "clonazepam",
    "clorazepate",
    "oxazepam",
    "temazepam",
    "zolpidem",
    "chlordiazepoxide",
    "nitrazepam",
]

drugs = st.sampled_from(SIMULATED)
doses_mg = st.floats(min_value=0.1, max_value=50.0, allow_nan=False)
intervals_h = st.sampled_from([6.0, 8.0, 12.0, 24.0])
dose_times = st.lists(st.floats(min_value=0.0, max_value=200.0, allow_nan=False), min_size=1, max_size=12)
