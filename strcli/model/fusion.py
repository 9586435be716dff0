"""Attention over N features: TCMR's fusion block and STR's integration network.

TCMR (Choi et al. 2021) fuses its three GRU branches with an attention block; STR's
authors describe their integration network as the same block with ReLU (str-authors.md).
Both classes build their layers with `attention_layers`, so both keep TCMR's released
parameter names (`fc`, `attention.0/2/4`): TCMR's files load strictly into
`AttentionFusion`, strcli's checkpoints into `Integration`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

INPUT_READINGS = ("none", "relu_linear")


def attention_layers(num_inputs: int, dim: int, width: int, hidden: int,
                     activation: type[nn.Module]) -> tuple[nn.Linear, nn.Sequential]:
    """The shared projection Linear(dim, width) and the scorer Linear(N width, hidden)-act-
    Linear(hidden, hidden)-act-Linear(hidden, N)-act."""
    scorer = nn.Sequential(
        nn.Linear(width * num_inputs, hidden), activation(),
        nn.Linear(hidden, hidden), activation(),
        nn.Linear(hidden, num_inputs), activation(),
    )
    return nn.Linear(dim, width), scorer


class AttentionFusion(nn.Module):
    """TCMR's attention: stacked features (..., N, C) -> softmax weights (..., N).

    One shared Linear(C, width) projects every input; the N projections are concatenated
    and scored by `attention`; a softmax over the N inputs."""

    def __init__(self, num_inputs: int, dim: int, width: int = 256, hidden: int = 256,
                 activation: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.num_inputs = num_inputs
        self.fc, self.attention = attention_layers(num_inputs, dim, width, hidden, activation)

    def forward(self, x: Tensor) -> Tensor:
        """(..., N, C) -> (..., N) softmax weights."""
        return self.attention(self.fc(x).flatten(-2)).softmax(dim=-1)


class Integration(nn.Module):
    """STR's integration network (Section 2.4, Eq. 6-7, Algorithm 1), applied per frame.

    N features, each (..., C) -> [input_reading="relu_linear": ReLU then its own
    Linear(C, C), per input] -> shared Linear(C, proj_dim) each -> concatenate ->
    Linear(proj_dim N, hidden) -> ReLU -> Linear(hidden, hidden) -> ReLU -> Linear(hidden, N)
    -> ReLU -> softmax over N: one weight per input and frame -> the weighted sum of the N
    inputs as given, (..., C) (the authors' F_STR = a1 F_ttr + a2 STEF1 + a3 STEF2).

    `input_reading="none"` (default) is TCMR's block with ReLU; "relu_linear" is the other
    reading of the authors' sentence "we pass each feature to the ReLU activation function
    and a fully connected layer to change the size of the channel dimension to 2048"
    (docs/model.md, "Integration network"). Raises ValueError for a wrong number of inputs.
    """

    def __init__(self, num_inputs: int, dim: int, proj_dim: int = 256, hidden: int = 256,
                 input_reading: str = "none") -> None:
        super().__init__()
        if input_reading not in INPUT_READINGS:
            raise ValueError(f"input_reading must be one of {INPUT_READINGS}, got {input_reading!r}")
        self.num_inputs = num_inputs
        self.inputs = (nn.ModuleList(nn.Linear(dim, dim) for _ in range(num_inputs))
                       if input_reading == "relu_linear" else None)
        self.fc, self.attention = attention_layers(num_inputs, dim, proj_dim, hidden, nn.ReLU)

    def weights(self, features: Sequence[Tensor]) -> Tensor:
        """N tensors (..., C) -> (..., N) softmax weights."""
        if len(features) != self.num_inputs:
            raise ValueError(f"Integration built for {self.num_inputs} inputs, got {len(features)}")
        if self.inputs is not None:
            features = [layer(torch.relu(x)) for layer, x in zip(self.inputs, features)]
        stacked = torch.stack(list(features), dim=-2)  # (..., N, C)
        return self.attention(self.fc(stacked).flatten(-2)).softmax(dim=-1)  # (..., N)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """N tensors (..., C) -> their weighted sum (..., C)."""
        w = self.weights(features)  # (..., N)
        stacked = torch.stack(list(features), dim=-1)  # (..., C, N)
        return (stacked * w.unsqueeze(-2).to(stacked.dtype)).sum(dim=-1)  # (..., C)

    @staticmethod
    def per_input_parameters(width: int = 256, hidden: int = 256) -> int:
        """Parameters that exist for one input (default reading): its columns of the first
        scoring layer (width x hidden) and its row of the last (hidden weights + 1 bias).
        Dropping an input removes exactly these; the shared projection and the middle layer
        stay. ("relu_linear" adds C x C + C more per input.)"""
        return width * hidden + hidden + 1
