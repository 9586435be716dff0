"""SPIN (Kolotouros et al., ICCV 2019) as strcli runs it: the paper's per-frame baseline.

SPIN is HMR: a ResNet-50 and an iterative regressor, one frame at a time, no temporal
module. strcli's road already computes the ResNet-50 feature of every crop with SPIN's
backbone, so `--model spin` is SPIN's regressor on each frame's feature. SPIN's
`models/hmr.py` (github nkolot/SPIN) is the reference; `tests/test_published.py` checks
it against SPIN's equations on the same crops.
"""

from __future__ import annotations

from torch import Tensor, nn

from strcli.config import FEATURE_DIM
from strcli.model.regressor import MeanParams, Regressor, SMPLPrediction


class SPIN(nn.Module):
    """SPIN's regressor per frame: features (..., 2048) -> SMPL of every frame (...).

    Three iterations of error feedback from SPIN's mean parameters, no activation between
    fc1 and fc2, dropout (identity in eval), 6D -> rotation matrices (Zhou et al.): SPIN's
    `HMR.forward` after its `avgpool`. A frame's output depends on that frame only, so
    windows, strides and TCMR's evaluation windows give every frame exactly its own
    prediction (the same protocol as the temporal models)."""

    centre_only = False  # every frame of a window is predicted, each from itself
    per_frame = True

    def __init__(self, mean_params: MeanParams | None = None) -> None:
        super().__init__()
        self.regressor = Regressor(FEATURE_DIM, mean_params=mean_params)

    def forward(self, features: Tensor) -> SMPLPrediction:
        return self.regressor(features)  # (B, T, ...) or (N, ...)
