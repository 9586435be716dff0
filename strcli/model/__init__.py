"""STR and its regressor. `build_model` is the one way the rest of strcli makes one."""

from __future__ import annotations

from strcli.model.config import ABLATIONS, AUTHORS_ABLATIONS, TABLE2_ABLATIONS, STRConfig
from strcli.model.fusion import AttentionFusion
from strcli.model.regressor import MeanParams, Regressor, SMPLPrediction
from strcli.model.str import (
    STE,
    STR,
    TTR,
    GRUBranch,
    Integration,
    IntegrationStrategies,
    SpectralEmphasis,
    STEFrequency,
    STETime,
    count_parameters,
    fft_round_trip,
    parameter_table,
)

__all__ = [
    "ABLATIONS", "AUTHORS_ABLATIONS", "AttentionFusion", "GRUBranch", "STE", "STR", "TABLE2_ABLATIONS", "TTR",
    "Integration", "IntegrationStrategies", "MeanParams", "Regressor", "SMPLPrediction", "STEFrequency",
    "STETime", "STRConfig", "SpectralEmphasis", "build_model", "count_parameters", "fft_round_trip",
    "parameter_table",
]


def build_model(config: STRConfig | None = None, mean_params: MeanParams | None = None) -> STR:
    """A randomly initialised STR (regressor started from `mean_params`)."""
    return STR(config or STRConfig(), mean_params)
