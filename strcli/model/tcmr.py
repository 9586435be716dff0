"""TCMR's temporal model (Choi et al., CVPR 2021), the paper's main baseline, written so
that the released checkpoints (`tcmr_demo_model.pth.tar`, `tcmr_table4_*_test.pth.tar`)
load into it with `strict=True`: module and parameter names and shapes follow the
released files (facts in `docs/baselines.md`), the code is ours.

    F (B, 16, C) ─┬─ gru_cur (bidirectional, all 16) ── [8] ─ relu ─ linear_cur ─┐
                  ├─ gru_bef (frames 0..7) ────────── last ─ relu ─ linear_bef ─┼─ TemporalAttention ─ Regressor
                  └─ gru_aft (frames 15..9, reversed) ─ last ─ relu ─ linear_aft ┘

TCMR predicts one frame per window: the middle one (index 8 of 16).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from strcli.config import FEATURE_DIM, WINDOW
from strcli.model.fusion import AttentionFusion
from strcli.model.regressor import MeanParams, Regressor, SMPLPrediction


class TemporalAttention(AttentionFusion):
    """TCMR's attention fusion of N branch features, with tanh: (B, N, C) -> (B, N)."""

    def __init__(self, feature_dim: int = FEATURE_DIM, branches: int = 3, width: int = 256) -> None:
        super().__init__(branches, feature_dim, width, width, activation=nn.Tanh)


class TCMREncoder(nn.Module):
    """PoseForecast + current-frame encoder: three GRUs over past, future and all frames,
    fused by attention into one feature for the middle frame. (B, T, C) -> (B, C)."""

    def __init__(self, seqlen: int = WINDOW, layers: int = 2, hidden: int = 1024,
                 feature_dim: int = FEATURE_DIM) -> None:
        super().__init__()
        self.mid = seqlen // 2
        self.gru_cur = nn.GRU(feature_dim, hidden, num_layers=layers, bidirectional=True, batch_first=True)
        self.gru_bef = nn.GRU(feature_dim, hidden, num_layers=layers, batch_first=True)
        self.gru_aft = nn.GRU(feature_dim, hidden, num_layers=layers, batch_first=True)
        self.linear_cur = nn.Linear(hidden * 2, feature_dim)
        self.linear_bef = nn.Linear(hidden, feature_dim)
        self.linear_aft = nn.Linear(hidden, feature_dim)
        self.attention = TemporalAttention(feature_dim, branches=3)

    def forward(self, x: Tensor) -> Tensor:
        cur, _ = self.gru_cur(x)  # (B, T, 2 * hidden)
        bef, _ = self.gru_bef(x[:, : self.mid])  # (B, mid, hidden): past frames, forward in time
        aft, _ = self.gru_aft(x[:, self.mid + 1 :].flip(1))  # (B, T - mid - 1, hidden): future, backwards
        y = torch.stack([
            self.linear_bef(F.relu(bef[:, -1])),
            self.linear_cur(F.relu(cur[:, self.mid])),
            self.linear_aft(F.relu(aft[:, -1])),
        ], dim=1)  # (B, 3, C): past, current, future
        weights = self.attention(y)  # (B, 3)
        return (y * weights[:, :, None]).sum(dim=1)  # (B, C)


class TCMR(nn.Module):
    """TCMR: encoder + SPIN's regressor. (B, 16, 2048) features -> SMPL of each window's
    middle frame, (B, ...)."""

    centre_only = True  # one prediction per window, for its middle frame

    def __init__(self, seqlen: int = WINDOW, layers: int = 2, hidden: int = 1024,
                 mean_params: MeanParams | None = None) -> None:
        super().__init__()
        self.encoder = TCMREncoder(seqlen, layers, hidden)
        self.regressor = Regressor(FEATURE_DIM, mean_params=mean_params)

    def forward(self, features: Tensor) -> SMPLPrediction:
        return self.regressor(self.encoder(features))  # (B, ...)
