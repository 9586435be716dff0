"""STR and its regressor. `build_model` is the one way the rest of strcli makes one."""

from __future__ import annotations

from strcli.model.config import ABLATIONS, STRConfig
from strcli.model.regressor import MeanParams, Regressor, SMPLPrediction
from strcli.model.str import (
    STE,
    STR,
    TTR,
    Integration,
    IntegrationStrategies,
    SpectralEmphasis,
    STEFrequency,
    STETime,
    count_parameters,
    parameter_table,
)

__all__ = [
    "ABLATIONS", "STE", "STR", "TTR", "Integration", "IntegrationStrategies", "MeanParams",
    "Regressor", "SMPLPrediction", "STEFrequency", "STETime", "STRConfig", "SpectralEmphasis",
    "build_model", "count_parameters", "parameter_table",
]


def build_model(config: STRConfig | None = None, mean_params: MeanParams | None = None) -> STR:
    """A randomly initialised STR (regressor started from `mean_params`)."""
    return STR(config or STRConfig(), mean_params)
