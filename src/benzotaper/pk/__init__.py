"""Pharmacokinetics: regimens -> level curves of drugs and active metabolites, closed form, vectorised."""

from benzotaper.pk.engine import Doses, TimeGrid, concentrations_at, simulate_grid
from benzotaper.pk.metrics import (
    AnalyteSummary,
    DaySummary,
    analyte_summaries,
    day_summaries,
    model_half_life,
    time_to_steady_state,
)
from benzotaper.pk.modal import Modal, modal
from benzotaper.pk.model import PKModel, build_model
from benzotaper.pk.occupancy import level_for_occupancy, occupancy
from benzotaper.pk.parameters import ParameterSet, sample_population, typical
from benzotaper.pk.potency import Potency, potencies, potency
from benzotaper.pk.simulation import Curves, Simulator, engine_doses

__all__ = [
    "AnalyteSummary",
    "Curves",
    "DaySummary",
    "Doses",
    "Modal",
    "PKModel",
    "ParameterSet",
    "Potency",
    "Simulator",
    "TimeGrid",
    "analyte_summaries",
    "build_model",
    "concentrations_at",
    "day_summaries",
    "engine_doses",
    "level_for_occupancy",
    "modal",
    "model_half_life",
    "occupancy",
    "potencies",
    "potency",
    "sample_population",
    "simulate_grid",
    "time_to_steady_state",
    "typical",
]
