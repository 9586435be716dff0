import dataclasses

import numpy as np
import pytest
import torch

from strcli.errors import UsageError
from strcli.model import (
    ABLATIONS,
    STR,
    TTR,
    Integration,
    MeanParams,
    SpectralEmphasis,
    STETime,
    STRConfig,
    count_parameters,
)
from strcli.model.str import IntegrationStrategies, temporal_shift

TINY = STRConfig(feature_dim=32, gru_hidden=16, integration_dim=8, integration_hidden=8,
                 regressor_hidden=32, regressor_dropout=0.0)


def tiny_model(ablation: str = "full", seed: int = 0) -> STR:
    torch.manual_seed(seed)
    return STR(TINY.ablate(ablation))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("length", [4, 8, 16, 32])
def test_output_shapes(batch, length):
    out = tiny_model()(torch.randn(batch, length, TINY.feature_dim))
    assert out.pose6d.shape == (batch, length, 144)
    assert out.rotmat.shape == (batch, length, 24, 3, 3)
    assert out.betas.shape == (batch, length, 10)
    assert out.cam.shape == (batch, length, 3)
    assert out.global_orient.shape == (batch, length, 3)
    assert out.body_pose.shape == (batch, length, 69)


def test_default_model_is_the_documented_size():
    with torch.device("meta"):
        model = STR()
    # 7 bidirectional GRUs (3 TTR, 3 STE, 1 strategies) of 2048 -> 2 x 1024.
    gru = 2 * 3 * (1024 * 2048 + 1024 * 1024 + 2 * 1024)
    assert count_parameters(model.ttr) == 3 * gru
    assert count_parameters(model.ste) == 3 * gru + 2048 * 2048 * 3 + 2048  # conv, spectral gain
    assert count_parameters(model.regressor) == (2205 * 1024 + 1024) + (1024 * 1024 + 1024) + 1025 * 157


@pytest.mark.parametrize("length", [6, 10, 2])
def test_lengths_not_divisible_by_four_are_refused(length):
    with pytest.raises(UsageError, match="divisible by 4"):
        tiny_model()(torch.randn(1, length, TINY.feature_dim))


def test_every_parameter_receives_gradient():
    model = tiny_model()
    out = model(torch.randn(2, 16, TINY.feature_dim))
    loss = out.pose6d.square().sum() + out.betas.square().sum() + out.cam.square().sum()
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


# Which parameter prefixes each Table 2 ablation must remove, and which it must keep.
REMOVED = {
    "no_ttr": ["ttr."],
    "no_ste": ["ste.", "str_integration."],
    "no_ste_time": ["ste.time."],
    "no_ste_frequency": ["ste.frequency."],
    "no_self_integration": ["strategies.self_integration.", "strategies.cross_self."],
    "no_cross_integration": ["strategies.cross_self.", "strategies.cross_original."],
}


@pytest.mark.parametrize("ablation", list(REMOVED))
def test_ablation_removes_its_parameters_and_runs(ablation):
    full = dict(tiny_model().named_parameters())
    ablated_model = tiny_model(ablation)
    ablated = dict(ablated_model.named_parameters())
    for prefix in REMOVED[ablation]:
        assert any(n.startswith(prefix) for n in full)
        assert not any(n.startswith(prefix) for n in ablated), prefix
    # Nothing else disappears except the integration networks whose input count changed.
    lost = {n for n in full if n not in ablated}
    unexplained = {n for n in lost if not any(n.startswith(p) for p in REMOVED[ablation])}
    assert all(n.startswith(("str_integration.", "z_integration.")) for n in unexplained)
    out = ablated_model(torch.randn(2, 8, TINY.feature_dim))
    assert torch.isfinite(out.rotmat).all()
    assert ablated_model.config.ablation == ablation


def test_ablation_input_counts():
    counts = {name: (tiny_model(name).str_integration, tiny_model(name).z_integration)
              for name in ABLATIONS}
    n = {name: tuple(m.num_inputs if m is not None else 1 for m in pair) for name, pair in counts.items()}
    assert n["full"] == (3, 3)
    assert n["no_ttr"] == (2, 3)
    assert n["no_ste"] == (1, 3)
    assert n["no_ste_time"] == (2, 3)
    assert n["no_self_integration"] == (3, 2)
    assert n["no_cross_integration"] == (3, 2)


def test_unknown_ablation_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown ablation"):
        TINY.ablate("no_everything")


def test_ttr_is_a_hierarchical_residual():
    torch.manual_seed(0)
    ttr = TTR(dim=8, hidden=4, chunks=4)
    f = torch.randn(2, 16, 8)
    out = ttr(f)
    chunks = f.chunk(4, dim=1)
    expected = [chunks[0]]
    for gru, chunk in zip(ttr.grus, chunks[1:]):
        expected.append(gru(chunk) + expected[-1])
    assert torch.allclose(out, f + torch.cat(expected, dim=1))
    assert torch.allclose(out[:, :4], 2 * f[:, :4])  # F_1 passes untouched, plus the skip


def test_ste_time_with_identity_convolution_gates_at_one_half():
    torch.manual_seed(0)
    ste = STETime(dim=8, hidden=4, kernel=3)
    with torch.no_grad():
        ste.conv.weight.zero_()
        ste.conv.weight[:, :, 1] = torch.eye(8)
    f = torch.randn(2, 16, 8)
    # S_F = F, so M1 = D_F - D_f = 0 and A1 = sigmoid(0) = 1/2.
    assert torch.allclose(ste(f), 0.5 * ste.gru(f), atol=1e-6)


def test_spectral_emphasis_keeps_the_mean_and_amplifies_high_frequencies():
    spectral = SpectralEmphasis(dim=3, gain=2.0)
    constant = torch.ones(1, 16, 3) * torch.tensor([1.0, -2.0, 5.0])
    assert torch.allclose(spectral(constant), constant, atol=1e-6)
    nyquist = torch.tensor([1.0, -1.0]).repeat(8)[None, :, None].expand(1, 16, 3)
    assert torch.allclose(spectral(nyquist), 3.0 * nyquist, atol=1e-5)  # 1 + gain
    low = torch.sin(torch.arange(16) * 2 * torch.pi / 16)[None, :, None].expand(1, 16, 3)
    assert torch.allclose(spectral(low), (1 + 2.0 / 8) * low, atol=1e-5)  # bin 1 of 8
    motion = torch.randn(2, 16, 3)
    assert not torch.allclose(spectral(motion), motion, atol=1e-3)


def test_spectral_emphasis_with_zero_gain_is_the_plain_fft_round_trip():
    f = torch.randn(2, 12, 4)
    assert torch.allclose(SpectralEmphasis(4, gain=0.0)(f), f, atol=1e-6)


def test_integration_is_a_per_frame_convex_combination():
    torch.manual_seed(0)
    integration = Integration(num_inputs=3, dim=6, proj_dim=4, hidden=5)
    xs = [torch.randn(2, 8, 6) for _ in range(3)]
    w = integration.weights(xs)
    assert w.shape == (2, 8, 3)
    assert torch.allclose(w.sum(-1), torch.ones(2, 8))
    manual = sum(w[..., i : i + 1] * xs[i] for i in range(3))
    assert torch.allclose(integration(xs), manual, atol=1e-6)
    same = torch.randn(2, 8, 6)
    assert torch.allclose(integration([same, same, same]), same, atol=1e-6)


def test_temporal_shift_repeats_edges():
    x = torch.arange(5.0)[None, :, None]
    assert temporal_shift(x, 1).flatten().tolist() == [1, 2, 3, 4, 4]
    assert temporal_shift(x, -2).flatten().tolist() == [0, 0, 0, 1, 2]


def test_cross_integration_mixes_the_two_halves():
    torch.manual_seed(0)
    strategies = IntegrationStrategies(TINY)
    f = torch.randn(1, 16, TINY.feature_dim)
    base = strategies(f)
    assert base.self_features.shape == base.cross_features.shape == (1, 16, TINY.feature_dim)
    # Changing only the second half changes the first half's cross-integrated features.
    g = f.clone()
    g[:, 8:] += 1.0
    changed = strategies(g)
    assert not torch.allclose(changed.cross_features[:, :8], base.cross_features[:, :8])
    # Without cross-integration the halves stay independent.
    alone = IntegrationStrategies(dataclasses.replace(TINY, use_cross_integration=False))
    a, b = alone(f), alone(g)
    assert b.cross_features is None
    assert torch.allclose(a.self_features[:, :8], b.self_features[:, :8])


def test_untrained_model_starts_at_the_mean_parameters(assets):
    mean = MeanParams.from_npz(assets / "smpl_helpers" / "smpl_mean_params.npz")
    torch.manual_seed(0)
    model = STR(TINY, mean_params=mean).eval()
    out = model(torch.randn(2, 8, TINY.feature_dim) * 0.1)
    # The heads start tiny (xavier gain 0.01), so the prediction is the mean plus a little.
    assert torch.allclose(out.pose6d, torch.from_numpy(mean.pose6d).expand_as(out.pose6d), atol=0.05)
    assert torch.allclose(out.cam, torch.from_numpy(mean.cam).expand_as(out.cam), atol=0.05)


def test_tiny_model_overfits_a_fixed_batch():
    torch.manual_seed(0)
    model = STR(TINY)
    features = torch.randn(2, 8, TINY.feature_dim)
    target_pose = torch.randn(2, 8, 144) * 0.5 + model.regressor.init_pose
    target_betas = torch.randn(2, 8, 10)
    target_cam = torch.randn(2, 8, 3) * 0.2
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_fn() -> torch.Tensor:
        out = model(features)
        return ((out.pose6d - target_pose).square().mean() + (out.betas - target_betas).square().mean()
                + (out.cam - target_cam).square().mean())

    first = loss_fn().item()
    for _ in range(300):
        optimiser.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimiser.step()
    assert loss_fn().item() < first / 100


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_runs_and_stays_close_to_fp32(dtype):
    model = tiny_model().eval()
    f = torch.randn(2, 16, TINY.feature_dim)
    reference = model(f)
    with torch.autocast("cpu", dtype=dtype):
        out = model(f)
    assert out.rotmat.dtype == torch.float32
    assert torch.isfinite(out.rotmat).all()
    eye = torch.eye(3).expand_as(out.rotmat)
    assert torch.allclose(out.rotmat.transpose(-1, -2) @ out.rotmat, eye, atol=1e-4)
    assert torch.allclose(out.pose6d, reference.pose6d, atol=0.05)


def test_config_round_trip_and_unknown_keys():
    config = TINY.ablate("no_ste_time")
    assert STRConfig.from_dict(config.to_dict()) == config
    with pytest.raises(UsageError, match="unknown keys: hidden"):
        STRConfig.from_dict({**config.to_dict(), "hidden": 3})
    with pytest.raises(UsageError, match="odd"):
        dataclasses.replace(TINY, ste_kernel=4)


def test_mean_params_file_is_checked(tmp_path):
    bad = tmp_path / "mean.npz"
    np.savez(bad, pose=np.zeros(72), shape=np.zeros(10), cam=np.zeros(3))
    with pytest.raises(Exception, match="expected 144/10/3"):
        MeanParams.from_npz(bad)
