"""Attention fusion: N features -> N softmax weights (TCMR's block, STR's integration network).

TCMR (Choi et al. 2021) fuses its three GRU branches with it; STR's authors describe their
integration network as the same block with ReLU (str-authors.md). One class serves both so
both stay exact: TCMR's released parameter names (`fc`, `attention.0/2/4`) load strictly.
"""

from __future__ import annotations

from torch import Tensor, nn


class AttentionFusion(nn.Module):
    """N features (..., N, C) -> weights (..., N).

    One shared Linear(C, width) projects every input; the N projections are concatenated
    and pass Linear(N width, hidden)-act-Linear(hidden, hidden)-act-Linear(hidden, N)-act,
    then a softmax over the N inputs.
    """

    def __init__(self, num_inputs: int, dim: int, width: int = 256, hidden: int = 256,
                 activation: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.num_inputs = num_inputs
        self.fc = nn.Linear(dim, width)  # shared by every input
        self.attention = nn.Sequential(
            nn.Linear(width * num_inputs, hidden), activation(),
            nn.Linear(hidden, hidden), activation(),
            nn.Linear(hidden, num_inputs), activation(),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(..., N, C) -> (..., N) softmax weights."""
        return self.attention(self.fc(x).flatten(-2)).softmax(dim=-1)

    @staticmethod
    def per_input_parameters(width: int = 256, hidden: int = 256) -> int:
        """Parameters that exist for one input: its columns of the first layer (width x
        hidden) and its row of the last (hidden weights + 1 bias). Dropping an input removes
        exactly these; the shared projection and the middle layer stay."""
        return width * hidden + hidden + 1
