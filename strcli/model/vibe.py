"""VIBE's temporal model (Kocabas et al., CVPR 2020), written so that the released
checkpoints (`vibe_model_wo_3dpw.pth.tar`, `vibe_model_w_3dpw.pth.tar`) load into it with
`strict=True`: names and shapes follow the released files (facts in `docs/baselines.md`),
the code is ours.

    F (B, T, C) ─ GRU (2 layers, one direction) ─ relu ─ linear ─ (+ F) ─ Regressor (every frame)

The motion discriminator VIBE trains with is not needed at inference and not built.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from strcli.config import FEATURE_DIM
from strcli.model.regressor import MeanParams, Regressor, SMPLPrediction


class VIBEEncoder(nn.Module):
    """Residual temporal encoder: (B, T, C) -> (B, T, C)."""

    def __init__(self, layers: int = 2, hidden: int = 1024, feature_dim: int = FEATURE_DIM) -> None:
        super().__init__()
        self.gru = nn.GRU(feature_dim, hidden, num_layers=layers, batch_first=True)
        self.linear = nn.Linear(hidden, feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.gru(x)  # (B, T, hidden)
        return self.linear(F.relu(y)) + x  # (B, T, C)


class VIBE(nn.Module):
    """VIBE: encoder + SPIN's regressor. (B, T, 2048) features -> SMPL of every frame."""

    centre_only = False

    def __init__(self, layers: int = 2, hidden: int = 1024, mean_params: MeanParams | None = None) -> None:
        super().__init__()
        self.encoder = VIBEEncoder(layers, hidden)
        self.regressor = Regressor(FEATURE_DIM, mean_params=mean_params)

    def forward(self, features: Tensor) -> SMPLPrediction:
        return self.regressor(self.encoder(features))  # (B, T, ...)
