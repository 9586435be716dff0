"""The STR network: one module per component of the paper (Section 2).

    F (B, T, C) ─┬─ TTR ──────────┐
                 ├─ STE time ─────┼─ Integration (Eq. 6) ─ F_STR ─┐
                 ├─ STE frequency ┘                               ├─ Integration (Eq. 7) ─ Z ─ Regressor
                 └─ IntegrationStrategies (Alg. 1) ─ F_SF, F_CF ──┘

Every decision the paper leaves open is in `docs/model.md` with its source; the variants
of Table 2 and the authors' extra ablations are fields of `STRConfig`. The integration
network (`Integration`) is in `strcli/model/fusion.py`, beside TCMR's attention block it
shares its layers with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from strcli.model.config import STRConfig
from strcli.model.fusion import Integration
from strcli.model.regressor import MeanParams, Regressor, SMPLPrediction


class GRUBranch(nn.Module):
    """The authors' GRU branch (TCMR's pattern): GRU -> ReLU -> Linear back to the feature
    width. (B, L, C) -> (B, L, C)."""

    def __init__(self, dim: int, hidden: int, layers: int = 1, bidirectional: bool = False) -> None:
        super().__init__()
        self.gru = nn.GRU(dim, hidden, num_layers=layers, batch_first=True,
                          bidirectional=bidirectional)
        self.linear = nn.Linear(hidden * (2 if bidirectional else 1), dim)

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.gru(x)  # (B, L, hidden * directions)
        return self.linear(F.relu(y))  # (B, L, C)


def _branch(c: STRConfig) -> GRUBranch:
    return GRUBranch(c.feature_dim, c.gru_hidden, c.gru_layers, c.bidirectional)


class TTR(nn.Module):
    """Temporal tendency reasoning (Eq. 1-2).

    F is split along time into k sub-fragments F_1..F_k of shape (B, T/k, C);
    F_1^o = F_1; F_i^o = GRU_i(F_i) + F_{i-1}^o for i >= 2 (k - 1 identical GRU branches,
    each its own weights); F_ttr^o = F + concat_t(F_1^o, ..., F_k^o).
    `gru_input="fragment_plus_previous"`: GRU_i reads F_i + F_{i-1}^o instead.
    With k = 1 (the authors' "input not divided") there is nothing to cascade: one GRU
    branch reads all of F, F_ttr^o = F + GRU(F).
    """

    def __init__(self, config: STRConfig) -> None:
        super().__init__()
        self.chunks = config.ttr_chunks
        self.add_previous = config.ttr_gru_input == "fragment_plus_previous"
        self.grus = nn.ModuleList(_branch(config) for _ in range(max(self.chunks - 1, 1)))

    def forward(self, f: Tensor) -> Tensor:
        if self.chunks == 1:
            return f + self.grus[0](f)
        fragments = f.chunk(self.chunks, dim=1)  # k x (B, T/k, C)
        outputs = [fragments[0]]
        for gru, fragment in zip(self.grus, fragments[1:]):
            x = fragment + outputs[-1] if self.add_previous else fragment
            outputs.append(gru(x) + outputs[-1])
        return f + torch.cat(outputs, dim=1)  # (B, T, C)


class PlainTemporal(nn.Module):
    """The authors' "plain GRU instead of TTR": one GRU branch over all of F, no split, no
    cascade, no skip. (B, T, C) -> (B, T, C)."""

    def __init__(self, config: STRConfig) -> None:
        super().__init__()
        self.gru = _branch(config)

    def forward(self, f: Tensor) -> Tensor:
        return self.gru(f)


class STETime(nn.Module):
    """Time-domain spatial enhancement (Eq. 3-4).

    S_F = Conv1d_t(F) (edge frames replicated); D_F, D_f = adjacent-frame differences of S_F
    and F; M1 = D_F - D_f (T-1 steps); A1 = sigmoid(avgpool_t(M1)), one weight per channel;
    STE_1 = GRU(F) * A1. `difference="plain"` (authors' ablation): M1 = D_f, no convolution.
    """

    def __init__(self, config: STRConfig) -> None:
        super().__init__()
        c = config
        # No bias: a constant offset of S_F cancels in D_F (Eq. 3), so it could never learn.
        self.conv = (nn.Conv1d(c.feature_dim, c.feature_dim, c.ste_kernel, padding=c.ste_kernel // 2,
                               padding_mode="replicate" if c.ste_padding == "replicate" else "zeros",
                               bias=False)
                     if c.ste_time_difference == "convolved" else None)
        self.gru = _branch(c)

    def offset(self, f: Tensor) -> Tensor:
        """M1: (B, T, C) -> (B, T-1, C)."""
        d_f = f[:, 1:] - f[:, :-1]  # D_f
        if self.conv is None:
            return d_f
        s = self.conv(f.transpose(1, 2)).transpose(1, 2)  # S_F: (B, T, C)
        return (s[:, 1:] - s[:, :-1]) - d_f  # D_F - D_f

    def forward(self, f: Tensor) -> Tensor:
        a1 = torch.sigmoid(self.offset(f).mean(dim=1, keepdim=True))  # A1: (B, 1, C)
        return self.gru(f) * a1  # (B, T, C)


def fft_round_trip(f: Tensor) -> Tensor:
    """F_fft = real(IFFT(FFT(F))) along time: (B, T, C) -> (B, T, C).

    The identity up to float rounding (about 1e-7 relative in fp32). Computed in fp32
    (cuFFT has no bf16)."""
    with torch.autocast(device_type=f.device.type, enabled=False):
        x = f if f.dtype in (torch.float32, torch.float64) else f.float()
        out = torch.fft.ifft(torch.fft.fft(x, dim=1), dim=1).real
    return out.to(f.dtype)


class SpectralEmphasis(nn.Module):
    """NOT IN THE PAPER (strcli 0.1's F_fft; opt-in `ste_fft="ramp"`): FFT along time, a
    learnable per-channel high-frequency gain H_c(f) = 1 + g_c f / f_Nyquist, inverse FFT.
    (B, T, C) -> (B, T, C); fp32 inside."""

    def __init__(self, dim: int, gain: float = 1.0) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.full((dim,), float(gain)))

    def forward(self, f: Tensor) -> Tensor:
        t = f.shape[1]
        with torch.autocast(device_type=f.device.type, enabled=False):
            spectrum = torch.fft.rfft(f.float(), dim=1)  # (B, T//2+1, C) complex
            freq = torch.linspace(0.0, 1.0, spectrum.shape[1], device=f.device)  # f / f_Nyquist
            response = 1.0 + freq[:, None] * self.gain.float()[None, :]  # (T//2+1, C)
            out = torch.fft.irfft(spectrum * response, n=t, dim=1)  # (B, T, C)
        return out.to(f.dtype)


class STEFrequency(nn.Module):
    """Frequency-domain spatial enhancement (Eq. 5), with ONE GRU branch for both GRU(F) and
    GRU(F_fft).

    F_fft = real(IFFT(FFT(F))); M2 = GRU(F) - F; A2 = sigmoid(avgpool_t(M2));
    STE_2 = GRU(F_fft) * A2. Since F_fft = F up to rounding, STE_2 = GRU(F) * A2 up to
    rounding: the GRU's output gated by the per-channel mean of its own residual.
    """

    def __init__(self, config: STRConfig) -> None:
        super().__init__()
        self.spectral = (SpectralEmphasis(config.feature_dim, config.spectral_gain)
                         if config.ste_fft == "ramp" else None)
        self.gru = _branch(config)

    def transform(self, f: Tensor) -> Tensor:
        """F_fft: (B, T, C) -> (B, T, C)."""
        return fft_round_trip(f) if self.spectral is None else self.spectral(f)

    def gru_outputs(self, f: Tensor) -> tuple[Tensor, Tensor]:
        """(GRU(F), GRU(F_fft)), each (B, T, C), from one batched call of the one GRU."""
        both = self.gru(torch.cat((f, self.transform(f)), dim=0))  # (2B, T, C)
        return both[: f.shape[0]], both[f.shape[0]:]

    def forward(self, f: Tensor) -> Tensor:
        g_f, g_fft = self.gru_outputs(f)
        a2 = torch.sigmoid((g_f - f).mean(dim=1, keepdim=True))  # A2 = sigmoid(AVP(M2)): (B, 1, C)
        return g_fft * a2  # (B, T, C)


class STE(nn.Module):
    """Spatial tendency enhancing: the time and/or frequency branch (Section 2.3)."""

    def __init__(self, config: STRConfig) -> None:
        super().__init__()
        self.time = STETime(config) if config.use_ste_time else None
        self.frequency = STEFrequency(config) if config.use_ste_frequency else None

    def forward(self, f: Tensor) -> list[Tensor]:
        """[STE_1, STE_2] (the enabled ones), each (B, T, C)."""
        return [branch(f) for branch in (self.time, self.frequency) if branch is not None]


class SqueezeExcitation(nn.Module):
    """The authors' "SENet instead of STE": a squeeze-excitation block (Hu et al. 2018) on
    each frame alone. A frame's feature is already pooled (the squeeze is the identity),
    so frame t gives f_t * sigmoid(W2 ReLU(W1 f_t)), W1: C -> C / se_reduction.
    (B, T, C) -> [(B, T, C)]; no frame sees another.

    Per frame because the authors say SENet, applied to spatio-temporal features,
    "processes each frame independently without considering temporal information"
    (their answer to the reviewers, str-authors.md); no GRU because that sentence is
    what sets it apart from STE [ours]."""

    def __init__(self, config: STRConfig) -> None:
        super().__init__()
        c = config
        reduced = max(c.feature_dim // c.se_reduction, 1)
        self.excite = nn.Sequential(nn.Linear(c.feature_dim, reduced), nn.ReLU(),
                                    nn.Linear(reduced, c.feature_dim), nn.Sigmoid())

    def forward(self, f: Tensor) -> list[Tensor]:
        return [f * self.excite(f)]  # (B, T, C), each frame by its own channel weights


class MeanAggregation(nn.Module):
    """The authors' "plain aggregation": the mean of the N inputs, no parameters."""

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        return torch.stack(list(features), dim=0).mean(dim=0)


@dataclass(frozen=True)
class StrategyFeatures:
    """What the integration strategies hand to Eq. 7."""

    self_features: Tensor  # F_SF (B, T, C)
    cross_features: Tensor  # F_CF (B, T, C)


def temporal_shift(x: Tensor, offset: int, dim: int = 1) -> Tensor:
    """x[t + offset] for every t along `dim`, repeating the edge frame."""
    index = (torch.arange(x.shape[dim], device=x.device) + offset).clamp(0, x.shape[dim] - 1)
    return x.index_select(dim, index)


class IntegrationStrategies(nn.Module):
    """Algorithm 1: split, GRU-encode, self-integration phase, cross-integration phase.

    F (B, T, C) is split along time into c parts; each is encoded by its own GRU branch
    (`strategy_encoders="shared"`: one for all) -> F_c, grouped (B, c, L, C), L = T/c.
    Self phase ("frames"): frame i of a part integrates the L frames of its part, ordered
    from i onwards (frame (i + k) mod L is input k) -> F_c^i. ("shifted", strcli 0.1's
    invention: the part shifted by N offsets centred on 0, edges repeated.)
    Cross phase: frame j of part p integrates frame j of every part (own part first, then
    the following ones cyclically): F_SF from the self-integrated parts, F_CF from the
    encoded ones; back in time order, (B, T, C).
    Without the self phase the parts pass to the cross phase unchanged (F_SF integrates the
    encoded parts with its own network); without the cross phase F_SF is the self-integrated
    parts and F_CF the encoded parts, each rejoined in time order. Eq. 7 keeps both.
    """

    def __init__(self, config: STRConfig) -> None:
        super().__init__()
        c = config
        self.parts = c.strategy_parts
        self.mode = c.self_integration
        n_encoders = c.strategy_parts if c.strategy_encoders == "per_part" else 1
        self.encoders = nn.ModuleList(_branch(c) for _ in range(n_encoders))
        self.offsets = tuple(range(-(c.strategy_candidates // 2),
                                   c.strategy_candidates - c.strategy_candidates // 2))
        learnt = c.strategy_aggregation == "learnt"
        n_self = c.part_length if self.mode == "frames" else c.strategy_candidates

        def integration(n: int) -> nn.Module:
            return (Integration(n, c.feature_dim, c.integration_dim, c.integration_hidden, c.integration_input)
                    if learnt else MeanAggregation())

        self.self_integration = integration(n_self) if c.use_self_integration else None
        self.cross_sf = integration(self.parts) if c.use_cross_integration else None
        self.cross_cf = integration(self.parts) if c.use_cross_integration else None

    def encode(self, f: Tensor) -> Tensor:
        """GRU(SPLIT(F)): (B, T, C) -> (B, c, L, C)."""
        b, t, ch = f.shape
        grouped = f.reshape(b, self.parts, t // self.parts, ch)
        if len(self.encoders) == 1:
            flat = self.encoders[0](grouped.flatten(0, 1))  # (B c, L, C)
            return flat.reshape(grouped.shape)
        return torch.stack([enc(grouped[:, p]) for p, enc in enumerate(self.encoders)], dim=1)

    def _self(self, parts: Tensor) -> Tensor:
        """Self phase: (B, c, L, C) -> (B, c, L, C)."""
        if self.mode == "frames":
            candidates = [parts.roll(-k, dims=2) for k in range(parts.shape[2])]
        else:
            candidates = [temporal_shift(parts, o, dim=2) for o in self.offsets]
        return self.self_integration(candidates)

    def _cross(self, integration: nn.Module, parts: Tensor) -> Tensor:
        """Cross phase: (B, c, L, C) -> (B, c, L, C), part p with parts p+1, ..., p-1."""
        return integration([parts.roll(-k, dims=1) for k in range(self.parts)])

    def forward(self, f: Tensor) -> StrategyFeatures:
        b, t, ch = f.shape
        parts = self.encode(f)  # F_c1, F_c2, ...
        refined = self._self(parts) if self.self_integration is not None else parts
        if self.cross_sf is not None:
            sf, cf = self._cross(self.cross_sf, refined), self._cross(self.cross_cf, parts)
        else:
            sf, cf = refined, parts
        return StrategyFeatures(self_features=sf.reshape(b, t, ch), cross_features=cf.reshape(b, t, ch))


class STR(nn.Module):
    """Spatio-temporal tendency reasoning: features (B, T, C) -> per-frame SMPL."""

    def __init__(self, config: STRConfig | None = None,
                 mean_params: MeanParams | None = None) -> None:
        super().__init__()
        self.config = c = config or STRConfig()
        integration = (c.feature_dim, c.integration_dim, c.integration_hidden, c.integration_input)
        self.ttr: nn.Module | None = None
        if c.use_ttr:
            self.ttr = TTR(c) if c.ttr_form == "hierarchical" else PlainTemporal(c)
        self.ste: nn.Module | None = None
        if c.ste_form == "senet":
            self.ste = SqueezeExcitation(c)
        elif c.use_ste_time or c.use_ste_frequency:
            self.ste = STE(c)
        n_str = int(self.ttr is not None) + self.ste_outputs
        # Eq. 6; over one input softmax gives weight 1 (the identity), so no network.
        self.str_integration = Integration(n_str, *integration) if n_str > 1 else None
        # Algorithm 1 and Eq. 7 (F_SF, F_STR, F_CF). Every ablation keeps at least one phase;
        # a config with neither has no integration strategies at all, and Z = F_STR.
        has_strategies = c.use_self_integration or c.use_cross_integration
        self.strategies = IntegrationStrategies(c) if has_strategies else None
        self.z_integration = Integration(3, *integration) if has_strategies else None
        self.regressor = Regressor(c.feature_dim, c.regressor_hidden, c.regressor_iterations,
                                   c.regressor_dropout, mean_params)

    @property
    def ste_outputs(self) -> int:
        c = self.config
        if c.ste_form == "senet":
            return 1
        return int(c.use_ste_time) + int(c.use_ste_frequency)

    def encode(self, f: Tensor) -> Tensor:
        """The final spatio-temporal feature Z: (B, T, C) -> (B, T, C)."""
        self.config.check_length(f.shape[1])
        branches = []
        if self.ttr is not None:
            branches.append(self.ttr(f))  # F_ttr^o
        if self.ste is not None:
            branches.extend(self.ste(f))  # STE_1^o, STE_2^o
        if self.str_integration is not None:
            f_str = self.str_integration(branches)  # Eq. 6
        else:
            f_str = branches[0] if branches else f
        if self.strategies is None or self.z_integration is None:
            return f_str
        strategy = self.strategies(f)  # Algorithm 1
        return self.z_integration([strategy.self_features, f_str, strategy.cross_features])  # Eq. 7

    def forward(self, f: Tensor) -> SMPLPrediction:
        """(B, T, C) -> SMPL parameters for every one of the T frames."""
        return self.regressor(self.encode(f))


def count_parameters(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def parameter_table(model: STR) -> list[tuple[str, int]]:
    """(component, parameters) for each top-level component, then the total."""
    rows = [(name, count_parameters(child)) for name, child in model.named_children()]
    return rows + [("total", count_parameters(model))]
