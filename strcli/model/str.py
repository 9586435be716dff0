"""The STR network: one module per component of the paper (Section 2).

    F (B, T, C) ─┬─ TTR ──────────┐
                 ├─ STE time ─────┼─ Integration (Eq. 6) ─ F_STR ─┐
                 ├─ STE frequency ┘                               ├─ Integration (Eq. 7) ─ Z ─ Regressor
                 └─ IntegrationStrategies (Alg. 1) ─ F_SF, F_CF ──┘

Every decision the paper leaves open is in `docs/model.md`; the switches of Table 2 are
fields of `STRConfig`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from strcli.model.config import STRConfig
from strcli.model.regressor import MeanParams, Regressor, SMPLPrediction


class TemporalGRU(nn.Module):
    """A GRU over time whose output has the input's width: (B, L, C) -> (B, L, C)."""

    def __init__(self, dim: int, hidden: int, layers: int = 1, bidirectional: bool = True) -> None:
        super().__init__()
        self.gru = nn.GRU(dim, hidden, num_layers=layers, batch_first=True,
                          bidirectional=bidirectional)
        out = hidden * (2 if bidirectional else 1)
        self.proj = nn.Identity() if out == dim else nn.Linear(out, dim)

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.gru(x)  # (B, L, hidden * directions)
        return self.proj(y)  # (B, L, C)


class TTR(nn.Module):
    """Temporal tendency reasoning (Eq. 1-2).

    F is split along time into `chunks` sub-fragments F_1..F_k of shape (B, T/k, C).
    F_1^o = F_1; F_i^o = GRU_i(F_i) + F_{i-1}^o for i >= 2 (one GRU per fragment);
    F_ttr^o = F + concat_t(F_1^o, ..., F_k^o).
    """

    def __init__(self, dim: int, hidden: int, layers: int = 1, bidirectional: bool = True,
                 chunks: int = 4) -> None:
        super().__init__()
        self.chunks = chunks
        self.grus = nn.ModuleList(
            TemporalGRU(dim, hidden, layers, bidirectional) for _ in range(chunks - 1)
        )

    def forward(self, f: Tensor) -> Tensor:
        fragments = f.chunk(self.chunks, dim=1)  # k x (B, T/k, C)
        outputs = [fragments[0]]
        for gru, fragment in zip(self.grus, fragments[1:]):
            outputs.append(gru(fragment) + outputs[-1])
        return f + torch.cat(outputs, dim=1)  # (B, T, C)


class STETime(nn.Module):
    """Time-domain spatial enhancement (Eq. 3-4).

    S_F = Conv1d_t(F); D_F, D_f = adjacent-frame differences of S_F and F (T-1 of each);
    M1 = D_F - D_f; A1 = sigmoid(avgpool_t(M1)) (one weight per channel);
    STE_1 = GRU(F) * A1.
    """

    def __init__(self, dim: int, hidden: int, layers: int = 1, bidirectional: bool = True,
                 kernel: int = 3) -> None:
        super().__init__()
        # No bias: a constant offset of S_F cancels in D_F (Eq. 3), so it could never learn.
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, bias=False)
        self.gru = TemporalGRU(dim, hidden, layers, bidirectional)

    def forward(self, f: Tensor) -> Tensor:
        s = self.conv(f.transpose(1, 2)).transpose(1, 2)  # S_F: (B, T, C)
        d_s = s[:, 1:] - s[:, :-1]  # D_F: (B, T-1, C)
        d_f = f[:, 1:] - f[:, :-1]  # D_f: (B, T-1, C)
        a1 = torch.sigmoid((d_s - d_f).mean(dim=1, keepdim=True))  # A1: (B, 1, C)
        return self.gru(f) * a1  # (B, T, C)


class SpectralEmphasis(nn.Module):
    """F_fft of Eq. 5: FFT along time, a learnable high-frequency gain, inverse FFT.

    A bare IFFT(FFT(F)) is the identity. The paper's stated purpose is to "highlight the
    high-frequency motion features", so the spectrum is multiplied by
    H_c(f) = 1 + g_c * f / f_Nyquist before the inverse transform: the temporal mean
    (f = 0) passes unchanged, motion is amplified in proportion to its frequency, and the
    per-channel gain g_c (initialised to `gain`) is learnt. The filter is defined on
    normalised frequency, so it applies to any T. Computed in fp32 (cuFFT has no bf16).
    """

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
    """Frequency-domain spatial enhancement (Eq. 5).

    F_fft = SpectralEmphasis(F); M2 = GRU_a(F) - F; A2 = sigmoid(avgpool_t(M2));
    STE_2 = GRU_b(F_fft) * A2.
    """

    def __init__(self, dim: int, hidden: int, layers: int = 1, bidirectional: bool = True,
                 gain: float = 1.0) -> None:
        super().__init__()
        self.spectral = SpectralEmphasis(dim, gain)
        self.gru_offset = TemporalGRU(dim, hidden, layers, bidirectional)
        self.gru_spectral = TemporalGRU(dim, hidden, layers, bidirectional)

    def forward(self, f: Tensor) -> Tensor:
        f_fft = self.spectral(f)  # (B, T, C)
        a2 = torch.sigmoid((self.gru_offset(f) - f).mean(dim=1, keepdim=True))  # A2: (B, 1, C)
        return self.gru_spectral(f_fft) * a2  # (B, T, C)


class STE(nn.Module):
    """Spatial tendency enhancing: the time and/or frequency branch (Section 2.3)."""

    def __init__(self, config: STRConfig) -> None:
        super().__init__()
        c = config
        gru = (c.gru_hidden, c.gru_layers, c.bidirectional)
        self.time = STETime(c.feature_dim, *gru, kernel=c.ste_kernel) if c.use_ste_time else None
        self.frequency = (STEFrequency(c.feature_dim, *gru, gain=c.spectral_gain)
                          if c.use_ste_frequency else None)

    def forward(self, f: Tensor) -> list[Tensor]:
        """[STE_1, STE_2] (the enabled ones), each (B, T, C)."""
        return [branch(f) for branch in (self.time, self.frequency) if branch is not None]


class Integration(nn.Module):
    """The integration network (Section 2.4, Fig. 2).

    N features (B, L, C) -> per input Linear(C, d) -> concatenate -> ReLU -> Linear(N d, h)
    -> ReLU -> Linear(h, N) -> softmax over N: one weight per input and frame -> weighted sum.
    """

    def __init__(self, num_inputs: int, dim: int, proj_dim: int = 256, hidden: int = 256) -> None:
        super().__init__()
        self.num_inputs = num_inputs
        self.project = nn.ModuleList(nn.Linear(dim, proj_dim) for _ in range(num_inputs))
        self.score = nn.Sequential(
            nn.ReLU(), nn.Linear(num_inputs * proj_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, num_inputs),
        )

    def weights(self, features: Sequence[Tensor]) -> Tensor:
        """(B, L, N) softmax weights."""
        if len(features) != self.num_inputs:
            raise ValueError(f"Integration built for {self.num_inputs} inputs, got {len(features)}")
        z = torch.cat([p(x) for p, x in zip(self.project, features)], dim=-1)  # (B, L, N d)
        return self.score(z).softmax(dim=-1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        w = self.weights(features)  # (B, L, N)
        stacked = torch.stack(list(features), dim=-1)  # (B, L, C, N)
        return (stacked * w.unsqueeze(-2).to(stacked.dtype)).sum(dim=-1)  # (B, L, C)


@dataclass(frozen=True)
class StrategyFeatures:
    """What the integration strategies hand to Eq. 7; None where an ablation removed it."""

    self_features: Tensor | None  # F_SF (B, T, C)
    cross_features: Tensor | None  # F_CF (B, T, C)


def temporal_shift(x: Tensor, offset: int) -> Tensor:
    """x[:, t + offset] for every t, repeating the edge frame: (B, L, C) -> (B, L, C)."""
    index = (torch.arange(x.shape[1], device=x.device) + offset).clamp(0, x.shape[1] - 1)
    return x[:, index]


class IntegrationStrategies(nn.Module):
    """Algorithm 1: split, GRU-encode, self-integration, cross-integration.

    F (B, T, C) is split along time into c parts F_c (B, T/c, C), encoded by one shared GRU.
    Self-integration: each frame of a part selects, with integration weights, among the
    N candidates "the part shifted by o frames" for N offsets o centred on 0 -> F_c^s.
    Cross-integration: each part is integrated with the other parts at the same position
    (own part first), the results put back in time order: F_SF from the self-integrated
    parts, F_CF from the encoded parts.
    Without cross-integration F_SF is the self-integrated parts rejoined and F_CF is absent;
    without self-integration F_SF is absent.
    """

    def __init__(self, config: STRConfig) -> None:
        super().__init__()
        c = config
        self.parts = c.strategy_parts
        n = c.strategy_candidates
        self.offsets = tuple(range(-(n // 2), n - n // 2))  # N offsets centred on 0
        integration = (c.feature_dim, c.integration_dim, c.integration_hidden)
        self.encoder = TemporalGRU(c.feature_dim, c.gru_hidden, c.gru_layers, c.bidirectional)
        self.self_integration = Integration(n, *integration) if c.use_self_integration else None
        use_cross = c.use_cross_integration
        self.cross_self = (Integration(self.parts, *integration)
                           if use_cross and c.use_self_integration else None)
        self.cross_original = Integration(self.parts, *integration) if use_cross else None

    def _cross(self, integration: Integration, parts: Tensor, batch: int) -> Tensor:
        """(B c, L, C) -> (B, T, C): part p integrated with parts p+1, ..., p-1."""
        _, length, channels = parts.shape
        grouped = parts.reshape(batch, self.parts, length, channels)
        candidates = [grouped.roll(-k, dims=1).reshape(-1, length, channels)
                      for k in range(self.parts)]  # candidate k of part p is part (p + k) % c
        return integration(candidates).reshape(batch, self.parts * length, channels)

    def forward(self, f: Tensor) -> StrategyFeatures:
        b, t, ch = f.shape
        parts = self.encoder(f.reshape(b * self.parts, t // self.parts, ch))  # F_c: (B c, T/c, C)
        refined = None
        if self.self_integration is not None:
            refined = self.self_integration([temporal_shift(parts, o) for o in self.offsets])
        if self.cross_original is None:  # no cross-integration
            sf = refined.reshape(b, t, ch) if refined is not None else None
            return StrategyFeatures(self_features=sf, cross_features=None)
        sf = self._cross(self.cross_self, refined, b) if refined is not None else None
        return StrategyFeatures(self_features=sf, cross_features=self._cross(self.cross_original, parts, b))


class STR(nn.Module):
    """Spatio-temporal tendency reasoning: features (B, T, C) -> per-frame SMPL."""

    def __init__(self, config: STRConfig | None = None,
                 mean_params: MeanParams | None = None) -> None:
        super().__init__()
        self.config = c = config or STRConfig()
        integration = (c.feature_dim, c.integration_dim, c.integration_hidden)
        self.ttr = (TTR(c.feature_dim, c.gru_hidden, c.gru_layers, c.bidirectional, c.ttr_chunks)
                    if c.use_ttr else None)
        self.ste = STE(c) if (c.use_ste_time or c.use_ste_frequency) else None
        n_str = int(c.use_ttr) + int(c.use_ste_time) + int(c.use_ste_frequency)
        self.str_integration = Integration(n_str, *integration) if n_str > 1 else None  # Eq. 6
        has_strategies = c.use_self_integration or c.use_cross_integration
        self.strategies = IntegrationStrategies(c) if has_strategies else None
        n_z = 1 + int(c.use_self_integration) + int(c.use_cross_integration)
        self.z_integration = Integration(n_z, *integration) if n_z > 1 else None  # Eq. 7
        self.regressor = Regressor(c.feature_dim, c.regressor_hidden, c.regressor_iterations,
                                   c.regressor_dropout, mean_params)

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
        if self.strategies is None:
            return f_str
        strategy = self.strategies(f)
        inputs = [x for x in (strategy.self_features, f_str, strategy.cross_features)
                  if x is not None]
        return self.z_integration(inputs) if self.z_integration is not None else inputs[0]  # Eq. 7

    def forward(self, f: Tensor) -> SMPLPrediction:
        """(B, T, C) -> SMPL parameters for every one of the T frames."""
        return self.regressor(self.encode(f))


def count_parameters(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def parameter_table(model: STR) -> list[tuple[str, int]]:
    """(component, parameters) for each top-level component, then the total."""
    rows = [(name, count_parameters(child)) for name, child in model.named_children()]
    return rows + [("total", count_parameters(model))]
