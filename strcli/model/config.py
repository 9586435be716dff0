"""STR's architecture as data: every width and switch the network is built from.

The defaults are the decisions recorded in `docs/model.md`. The Table 2 ablations of the
paper are named variants of the same config (`STRConfig().ablate("no_ttr")`), so a
checkpoint always carries exactly the network it was trained as.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from strcli.config import FEATURE_DIM, WINDOW
from strcli.errors import UsageError

# Table 2 of the paper: name -> the switches it turns off.
ABLATIONS: dict[str, dict[str, bool]] = {
    "full": {},
    "no_ttr": {"use_ttr": False},
    "no_ste": {"use_ste_time": False, "use_ste_frequency": False},
    "no_ste_time": {"use_ste_time": False},
    "no_ste_frequency": {"use_ste_frequency": False},
    "no_self_integration": {"use_self_integration": False},
    "no_cross_integration": {"use_cross_integration": False},
}


@dataclass(frozen=True)
class STRConfig:
    """Hyper-parameters of the STR network and its regressor."""

    feature_dim: int = FEATURE_DIM  # C: per-frame feature width (ResNet-50: 2048)
    seq_len: int = WINDOW  # T the network is trained on; any T divisible by ttr_chunks runs
    gru_hidden: int = 1024  # hidden size of every temporal GRU
    gru_layers: int = 1
    bidirectional: bool = True  # 2 x 1024 = 2048: the GRU output matches C without projection
    ttr_chunks: int = 4  # sub-fragments of TTR (the paper: 4)
    ste_kernel: int = 3  # temporal kernel of STE's 1D convolution (odd)
    spectral_gain: float = 1.0  # initial high-frequency gain of STE's FFT branch
    integration_dim: int = 256  # per-input projection inside an integration network
    integration_hidden: int = 256  # hidden width of the integration scorer
    strategy_parts: int = 2  # c in Algorithm 1: temporal parts F_c1, F_c2
    strategy_candidates: int = 3  # N in Algorithm 1: temporal offsets each frame selects from
    regressor_hidden: int = 1024
    regressor_iterations: int = 3
    regressor_dropout: float = 0.5
    use_ttr: bool = True
    use_ste_time: bool = True
    use_ste_frequency: bool = True
    use_self_integration: bool = True
    use_cross_integration: bool = True

    def __post_init__(self) -> None:
        positive = ("feature_dim", "seq_len", "gru_hidden", "gru_layers", "ttr_chunks",
                    "ste_kernel", "integration_dim", "integration_hidden", "strategy_parts",
                    "strategy_candidates", "regressor_hidden", "regressor_iterations")
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(f"STR config: {name} must be >= 1, got {getattr(self, name)}.")
        if self.ste_kernel % 2 == 0:
            raise UsageError(f"STR config: ste_kernel must be odd, got {self.ste_kernel}.")
        if self.strategy_parts < 2:
            raise UsageError("STR config: strategy_parts must be >= 2 for cross-integration.")
        if not 0.0 <= self.regressor_dropout < 1.0:
            raise UsageError("STR config: regressor_dropout must be in [0, 1).")
        self.check_length(self.seq_len)

    @property
    def length_multiple(self) -> int:
        """Every sequence length must be a multiple of this."""
        a, b = self.ttr_chunks, self.strategy_parts
        while b:
            a, b = b, a % b
        return self.ttr_chunks * self.strategy_parts // a

    def check_length(self, t: int) -> None:
        if t % self.length_multiple or t < self.length_multiple:
            raise UsageError(
                f"STR needs a sequence length divisible by {self.length_multiple} "
                f"(TTR splits time into {self.ttr_chunks} chunks, the integration strategies "
                f"into {self.strategy_parts} parts); got T={t}."
            )

    def ablate(self, name: str) -> STRConfig:
        """The Table 2 variant `name` of this config."""
        if name not in ABLATIONS:
            raise UsageError(f"unknown ablation {name!r}; choose one of {', '.join(ABLATIONS)}.")
        return dataclasses.replace(self, **ABLATIONS[name])

    @property
    def ablation(self) -> str:
        """The Table 2 name of this config's switches ('custom' if none matches)."""
        switches = {k: getattr(self, k) for k in _SWITCHES}
        for name, off in ABLATIONS.items():
            if switches == {k: off.get(k, True) for k in _SWITCHES}:
                return name
        return "custom"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> STRConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"STR config has unknown keys: {', '.join(unknown)}.")
        return cls(**data)


_SWITCHES = ("use_ttr", "use_ste_time", "use_ste_frequency", "use_self_integration",
             "use_cross_integration")
