"""STR's architecture as data: every width, reading and switch the network is built from.

The defaults are the decisions recorded in `docs/model.md` (each with its source). The
paper's Table 2 ablations and the extra ablations the authors reported later are named
variants of the same config (`STRConfig().ablate("no_ttr")`), so a checkpoint always
carries exactly the network it was trained as.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from strcli.config import FEATURE_DIM, WINDOW
from strcli.utils.errors import UsageError

# The paper's Table 2: name -> the config fields it changes.
TABLE2_ABLATIONS: dict[str, dict[str, Any]] = {
    "full": {},
    "no_ttr": {"use_ttr": False},
    "no_ste": {"use_ste_time": False, "use_ste_frequency": False},
    "no_ste_time": {"use_ste_time": False},
    "no_ste_frequency": {"use_ste_frequency": False},
    "no_self_integration": {"use_self_integration": False},
    "no_cross_integration": {"use_cross_integration": False},
}
# The extra ablations of the authors' repository (str-authors.md), in their order.
AUTHORS_ABLATIONS: dict[str, dict[str, Any]] = {
    "ttr_1_fragment": {"ttr_chunks": 1},
    "ttr_2_fragments": {"ttr_chunks": 2},
    "ttr_8_fragments": {"ttr_chunks": 8},
    "plain_gru_for_ttr": {"ttr_form": "plain_gru"},
    "senet_for_ste": {"ste_form": "senet"},
    "ste_plain_difference": {"ste_time_difference": "plain"},
    # "self-integration phase only" is w/o cross-integration, and vice versa: the same
    # networks as Table 2's rows (the authors' numbers agree: 62.7 and 62.3).
    "self_integration_only": {"use_cross_integration": False},
    "cross_integration_only": {"use_self_integration": False},
    "plain_aggregation": {"strategy_aggregation": "mean"},
}
ABLATIONS: dict[str, dict[str, Any]] = {**TABLE2_ABLATIONS, **AUTHORS_ABLATIONS}
# Names that build the same network as a Table 2 variant (and share its training run).
ABLATION_ALIASES = {"self_integration_only": "no_cross_integration",
                    "cross_integration_only": "no_self_integration"}

_CHOICES: dict[str, tuple[str, ...]] = {
    "ttr_form": ("hierarchical", "plain_gru"),
    "ttr_gru_input": ("fragment", "fragment_plus_previous"),
    "ste_form": ("ste", "senet"),
    "ste_padding": ("replicate", "zeros"),
    "ste_time_difference": ("convolved", "plain"),
    "ste_fft": ("round_trip", "ramp"),
    "self_integration": ("frames", "shifted"),
    "strategy_encoders": ("per_part", "shared"),
    "strategy_aggregation": ("learnt", "mean"),
    "integration_input": ("none", "relu_linear"),
}


@dataclass(frozen=True)
class STRConfig:
    """Hyper-parameters of the STR network and its regressor (docs/model.md has each source)."""

    feature_dim: int = FEATURE_DIM  # C: per-frame feature width (ResNet-50: 2048)
    seq_len: int = WINDOW  # T the network is built for (the paper: 16)
    # Every GRU branch: GRU(C -> gru_hidden) -> ReLU -> Linear(-> C) (the authors' form).
    gru_hidden: int = 1024
    gru_layers: int = 1
    bidirectional: bool = False
    # TTR (Eq. 1-2)
    ttr_chunks: int = 4  # sub-fragments (the paper: 4)
    ttr_form: str = "hierarchical"  # "plain_gru": one GRU branch instead of TTR (authors' ablation)
    ttr_gru_input: str = "fragment"  # GRU_i reads F_i; "fragment_plus_previous": F_i + F_{i-1}^o
    # STE (Eq. 3-5)
    ste_form: str = "ste"  # "senet": one squeeze-excitation branch instead (authors' ablation)
    ste_kernel: int = 3  # temporal kernel of STE's 1-D convolution (odd)
    ste_padding: str = "replicate"  # "zeros": zero padding (strcli 0.1; a static clip looks moving)
    ste_time_difference: str = "convolved"  # "plain": M1 = D_f, no convolution (authors' ablation)
    ste_fft: str = "round_trip"  # F_fft = real(IFFT(FFT(F))); "ramp": NOT IN THE PAPER (strcli 0.1)
    spectral_gain: float = 1.0  # initial gain of the "ramp" filter only
    se_reduction: int = 16  # SENet's channel reduction, senet_for_ste only
    # Integration networks (Section 2.4; TCMR's attention fusion with ReLU)
    integration_dim: int = 256  # the shared projection C -> 256
    integration_hidden: int = 256
    # "relu_linear": each input first through ReLU and its own Linear(C, C) (the other
    # reading of the authors' sentence; docs/model.md); "none": TCMR's block as it is.
    integration_input: str = "none"
    # Integration strategies (Algorithm 1)
    strategy_parts: int = 2  # c: temporal parts F_c1, F_c2
    strategy_encoders: str = "per_part"  # one GRU branch per part; "shared": one for all parts
    self_integration: str = "frames"  # over the part's frames; "shifted": strcli 0.1's invention
    strategy_candidates: int = 3  # N of the "shifted" reading (offsets centred on 0)
    strategy_aggregation: str = "learnt"  # "mean": plain averages (authors' ablation)
    # SPIN's regressor
    regressor_hidden: int = 1024
    regressor_iterations: int = 3
    regressor_dropout: float = 0.5
    # Table 2 switches
    use_ttr: bool = True
    use_ste_time: bool = True
    use_ste_frequency: bool = True
    use_self_integration: bool = True
    use_cross_integration: bool = True

    def __post_init__(self) -> None:
        positive = ("feature_dim", "seq_len", "gru_hidden", "gru_layers", "ttr_chunks",
                    "ste_kernel", "se_reduction", "integration_dim", "integration_hidden",
                    "strategy_parts", "strategy_candidates", "regressor_hidden",
                    "regressor_iterations")
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(f"STR config: {name} must be >= 1, got {getattr(self, name)}.")
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise UsageError(f"STR config: {name} must be one of {', '.join(choices)}, "
                                 f"got {getattr(self, name)!r}.")
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
        chunks = self.ttr_chunks if (self.use_ttr and self.ttr_form == "hierarchical") else 1
        return math.lcm(chunks, self.strategy_parts)

    @property
    def fixed_length(self) -> bool:
        """True when the network only runs on T = seq_len: self-integration over the frames of
        a part has one input per frame, so its integration network is built for T / c frames."""
        return (self.use_self_integration and self.self_integration == "frames"
                and self.strategy_aggregation == "learnt")

    @property
    def part_length(self) -> int:
        """Frames per part of the integration strategies at T = seq_len."""
        return self.seq_len // self.strategy_parts

    def check_length(self, t: int) -> None:
        if self.fixed_length and t != self.seq_len:
            raise UsageError(
                f"this STR runs on sequences of exactly {self.seq_len} frames (its self-integration "
                f"weighs the {self.part_length} frames of each temporal part); got T={t}."
            )
        if t % self.length_multiple or t < self.length_multiple:
            raise UsageError(
                f"STR needs a sequence length divisible by {self.length_multiple} "
                f"(TTR splits time into {self.ttr_chunks} chunks, the integration strategies "
                f"into {self.strategy_parts} parts); got T={t}."
            )

    def ablate(self, name: str) -> STRConfig:
        """The ablation variant `name` (Table 2 or the authors' extras) of this config."""
        if name not in ABLATIONS:
            raise UsageError(f"unknown ablation {name!r}; choose one of {', '.join(ABLATIONS)}.")
        return dataclasses.replace(self, **ABLATIONS[name])

    @property
    def ablation(self) -> str:
        """The name of this config's variant ('custom' if none matches; a Table 2 name
        before an alias that builds the same network)."""
        defaults = STRConfig.__dataclass_fields__
        current = {k: getattr(self, k) for k in _ABLATION_FIELDS}
        for name, changes in ABLATIONS.items():
            if current == {k: changes.get(k, defaults[k].default) for k in _ABLATION_FIELDS}:
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
        for f in dataclasses.fields(cls):  # a file's values, typed as the fields are (bool is no int here)
            if f.name not in data:
                continue
            value, kind = data[f.name], f.type if isinstance(f.type, str) else f.type.__name__
            fits = {"int": isinstance(value, int) and not isinstance(value, bool),
                    "bool": isinstance(value, bool), "str": isinstance(value, str),
                    "float": isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value)}.get(kind, True)
            if not fits:
                raise UsageError(f"STR config: {f.name} must be a finite {kind}, got {value!r}.")
        return cls(**data)


_ABLATION_FIELDS = tuple(sorted({k for changes in ABLATIONS.values() for k in changes}))
