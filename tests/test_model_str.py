import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from strcli.utils.errors import UsageError
from strcli.model import (
    ABLATIONS,
    STR,
    TTR,
    Integration,
    MeanParams,
    SpectralEmphasis,
    STEFrequency,
    STETime,
    STRConfig,
    count_parameters,
)
from strcli.model.config import AUTHORS_ABLATIONS, TABLE2_ABLATIONS
from strcli.model.fusion import AttentionFusion
from strcli.model.str import (
    GRUBranch,
    IntegrationStrategies,
    MeanAggregation,
    PlainTemporal,
    SqueezeExcitation,
    fft_round_trip,
    temporal_shift,
)

TINY = STRConfig(feature_dim=32, gru_hidden=16, integration_dim=16, integration_hidden=16,
                 regressor_hidden=32, regressor_dropout=0.0)
# The "shifted" self-integration runs on any T divisible by 4.
TINY_ANY_T = dataclasses.replace(TINY, self_integration="shifted")


def tiny_model(ablation: str = "full", seed: int = 0, config: STRConfig = TINY) -> STR:
    torch.manual_seed(seed)
    return STR(config.ablate(ablation))


# ---- the parameter count (docs/model.md, "Size") --------------------------------------------
C, H = 2048, 1024
GRU = 3 * (H * C + H * H + 2 * H)  # one unidirectional GRU layer 2048 -> 1024
BRANCH = GRU + (H * C + C)  # + ReLU + Linear 1024 -> 2048
CONV = C * C * 3  # STE's Conv1d, kernel 3, no bias
REGRESSOR = (2205 * 1024 + 1024) + (1024 * 1024 + 1024) + 1025 * 157
SHARE = 256 * 256 + 256 + 1  # what one input adds to an integration network
SE = (C * 128 + 128) + (128 * C + C)


def fusion(n: int) -> int:
    return (C * 256 + 256) + (256 * n * 256 + 256) + (256 * 256 + 256) + (256 * n + n)


DOCUMENTED_TOTAL = 7 * BRANCH + CONV + REGRESSOR + 2 * fusion(3) + fusion(8) + 2 * fusion(2)


def default_model(ablation: str = "full") -> STR:
    with torch.device("meta"):
        return STR(STRConfig().ablate(ablation))


def test_default_model_has_the_documented_size_near_the_authors_figure():
    assert (GRU, BRANCH, REGRESSOR, fusion(3)) == (9_443_328, 11_542_528, 3_469_469, 787_971)
    model = default_model()
    assert count_parameters(model) == DOCUMENTED_TOTAL == 100_987_311
    assert abs(DOCUMENTED_TOTAL / 100.2e6 - 1) < 0.02  # the authors' 127.19M - SPIN's HMR 26.98M
    assert count_parameters(model.ttr) == 3 * BRANCH
    assert count_parameters(model.ste.time) == BRANCH + CONV
    assert count_parameters(model.ste.frequency) == BRANCH
    assert count_parameters(model.strategies) == 2 * BRANCH + fusion(8) + 2 * fusion(2)
    assert count_parameters(model.str_integration) == count_parameters(model.z_integration) == fusion(3)
    assert count_parameters(model.regressor) == REGRESSOR
    grus = [m for m in model.modules() if isinstance(m, nn.GRU)]
    assert len(grus) == 7
    assert all(g.hidden_size == 1024 and g.num_layers == 1 and not g.bidirectional for g in grus)


# Parameters each ablation removes from the default network (docs/model.md, "Ablations").
REMOVED = {
    "no_ttr": 3 * BRANCH + SHARE,
    "no_ste": 2 * BRANCH + CONV + fusion(3),  # one input left: Eq. 6 is the identity
    "no_ste_time": BRANCH + CONV + SHARE,
    "no_ste_frequency": BRANCH + SHARE,
    "no_self_integration": fusion(8),
    "no_cross_integration": 2 * fusion(2),
    "ttr_1_fragment": 2 * BRANCH,
    "ttr_2_fragments": 2 * BRANCH,
    "ttr_8_fragments": -4 * BRANCH,
    "plain_gru_for_ttr": 2 * BRANCH,
    "senet_for_ste": 2 * BRANCH + CONV + SHARE - SE,  # SE per frame, no GRU
    "ste_plain_difference": CONV,
    "self_integration_only": 2 * fusion(2),
    "cross_integration_only": fusion(8),
    "plain_aggregation": fusion(8) + 2 * fusion(2),
}


@pytest.mark.parametrize("ablation", list(REMOVED))
def test_each_ablation_removes_exactly_its_parameters(ablation):
    assert set(REMOVED) | {"full"} == set(ABLATIONS)
    full, ablated = default_model(), default_model(ablation)
    assert count_parameters(full) - count_parameters(ablated) == REMOVED[ablation]
    # Eq. 7 keeps its three inputs in every variant, and the strategies their two outputs.
    assert ablated.z_integration.num_inputs == 3
    expected_eq6 = {"no_ttr": 2, "no_ste": None, "no_ste_time": 2, "no_ste_frequency": 2, "senet_for_ste": 2}
    eq6 = ablated.str_integration.num_inputs if ablated.str_integration is not None else None
    assert eq6 == expected_eq6.get(ablation, 3)


def test_ablation_names_and_sets():
    assert list(TABLE2_ABLATIONS) == ["full", "no_ttr", "no_ste", "no_ste_time", "no_ste_frequency",
                                      "no_self_integration", "no_cross_integration"]
    assert len(AUTHORS_ABLATIONS) == 9
    for name in ABLATIONS:
        config = STRConfig().ablate(name)
        expected = {"self_integration_only": "no_cross_integration",
                    "cross_integration_only": "no_self_integration"}.get(name, name)
        assert config.ablation == expected
    assert STRConfig().ablate("ttr_8_fragments").ttr_chunks == 8


@pytest.mark.parametrize("ablation", list(ABLATIONS))
def test_every_variant_runs(ablation):
    model = tiny_model(ablation).eval()
    out = model(torch.randn(2, 16, TINY.feature_dim))
    assert out.rotmat.shape == (2, 16, 24, 3, 3) and torch.isfinite(out.rotmat).all()


def _shared_weights(source: STR, target: STR) -> None:
    own = target.state_dict()
    target.load_state_dict({k: v for k, v in source.state_dict().items() if k in own}, strict=False)


def test_self_and_cross_ablations_remove_one_phase_and_keep_the_data_flow():
    full = tiny_model().eval()
    f = torch.randn(2, 16, TINY.feature_dim)
    parts = full.strategies.encode(f)  # (B, c, L, C)
    refined = full.strategies._self(parts)
    b, t, ch = f.shape
    # w/o cross: F_SF is the self phase's output, F_CF the encoded parts, both in time order.
    no_cross = tiny_model("no_cross_integration").eval()
    _shared_weights(full, no_cross)
    out = no_cross.strategies(f)
    assert torch.allclose(out.self_features, refined.reshape(b, t, ch), atol=1e-6)
    assert torch.allclose(out.cross_features, parts.reshape(b, t, ch), atol=1e-6)
    # w/o self: the cross phase reads the encoded parts; F_CF is exactly the full model's.
    no_self = tiny_model("no_self_integration").eval()
    _shared_weights(full, no_self)
    out = no_self.strategies(f)
    assert torch.allclose(out.cross_features, full.strategies(f).cross_features, atol=1e-6)
    expected_sf = full.strategies._cross(full.strategies.cross_sf, parts).reshape(b, t, ch)
    assert torch.allclose(out.self_features, expected_sf, atol=1e-6)


def test_every_parameter_of_the_full_size_model_receives_gradient():
    torch.manual_seed(0)
    model = STR()  # the default: 100,987,311 parameters
    out = model(torch.randn(2, 16, 2048))
    (out.pose6d.square().sum() + out.betas.square().sum() + out.cam.square().sum()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


# ---- lengths ----------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [4, 8, 16, 32])
def test_shifted_self_integration_runs_on_any_multiple_of_four(length):
    out = tiny_model(config=TINY_ANY_T)(torch.randn(3, length, TINY.feature_dim))
    assert out.pose6d.shape == (3, length, 144) and out.betas.shape == (3, length, 10)
    assert out.cam.shape == (3, length, 3) and out.body_pose.shape == (3, length, 69)


@pytest.mark.parametrize("length", [8, 32])
def test_frames_self_integration_needs_the_built_length(length):
    with pytest.raises(UsageError, match="exactly 16 frames"):
        tiny_model()(torch.randn(1, length, TINY.feature_dim))


@pytest.mark.parametrize("length", [6, 10, 2])
def test_lengths_not_divisible_by_four_are_refused(length):
    with pytest.raises(UsageError, match="divisible by 4"):
        tiny_model(config=TINY_ANY_T)(torch.randn(1, length, TINY.feature_dim))


def test_unknown_ablation_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown ablation"):
        TINY.ablate("no_everything")
    with pytest.raises(UsageError, match="self_integration must be one of frames, shifted"):
        dataclasses.replace(TINY, self_integration="window")


# ---- TTR --------------------------------------------------------------------------------------
def test_ttr_is_a_hierarchical_residual():
    torch.manual_seed(0)
    config = dataclasses.replace(TINY, feature_dim=8, gru_hidden=4)
    ttr = TTR(config)
    assert len(ttr.grus) == 3 and all(isinstance(g, GRUBranch) for g in ttr.grus)
    f = torch.randn(2, 16, 8)
    chunks = f.chunk(4, dim=1)
    expected = [chunks[0]]
    for gru, chunk in zip(ttr.grus, chunks[1:]):
        expected.append(gru(chunk) + expected[-1])
    assert torch.allclose(ttr(f), f + torch.cat(expected, dim=1))
    assert torch.allclose(ttr(f)[:, :4], 2 * f[:, :4])  # F_1 passes untouched, plus the skip
    # The alternative reading: GRU_i reads F_i + F_{i-1}^o.
    other = TTR(dataclasses.replace(config, ttr_gru_input="fragment_plus_previous"))
    other.load_state_dict(ttr.state_dict())
    expected = [chunks[0]]
    for gru, chunk in zip(ttr.grus, chunks[1:]):
        expected.append(gru(chunk + expected[-1]) + expected[-1])
    assert torch.allclose(other(f), f + torch.cat(expected, dim=1))
    assert not torch.allclose(other(f), ttr(f))


def test_ttr_one_fragment_and_plain_gru():
    torch.manual_seed(0)
    config = dataclasses.replace(TINY, feature_dim=8, gru_hidden=4)
    f = torch.randn(2, 16, 8)
    one = TTR(dataclasses.replace(config, ttr_chunks=1))
    assert len(one.grus) == 1 and torch.allclose(one(f), f + one.grus[0](f))
    plain = PlainTemporal(config)
    assert torch.allclose(plain(f), plain.gru(f))
    eight = TTR(dataclasses.replace(config, ttr_chunks=8))
    assert len(eight.grus) == 7 and torch.allclose(eight(f)[:, :2], 2 * f[:, :2])


def test_gru_branch_is_gru_relu_linear():
    torch.manual_seed(0)
    branch = GRUBranch(6, 4)
    x = torch.randn(2, 5, 6)
    y, _ = branch.gru(x)
    assert torch.allclose(branch(x), branch.linear(torch.relu(y)))
    assert branch.linear.in_features == 4 and branch.linear.out_features == 6


# ---- STE --------------------------------------------------------------------------------------
SMALL_STE = dataclasses.replace(TINY, feature_dim=8, gru_hidden=4)


def test_ste_time_replicate_padding_sees_no_motion_in_a_static_clip():
    torch.manual_seed(0)
    ste = STETime(SMALL_STE)
    static = torch.randn(2, 1, 8).expand(2, 16, 8)  # the same frame 16 times
    m1 = ste.offset(static)
    assert m1.shape == (2, 15, 8) and torch.equal(m1, torch.zeros_like(m1))  # exactly zero everywhere
    assert torch.allclose(ste(static), 0.5 * ste.gru(static))  # A1 = sigmoid(0)
    zeros = STETime(dataclasses.replace(SMALL_STE, ste_padding="zeros"))
    zeros.load_state_dict(ste.state_dict())
    m1 = zeros.offset(static)
    assert m1[:, 0].abs().max() > 1e-3 and m1[:, -1].abs().max() > 1e-3  # zero padding: "motion" at the ends
    assert torch.allclose(m1[:, 1:-1], torch.zeros_like(m1[:, 1:-1]), atol=1e-6)


def test_mean_of_adjacent_differences_telescopes_to_the_end_frames():
    x = torch.randn(3, 16, 5)
    mean_difference = (x[:, 1:] - x[:, :-1]).mean(dim=1)  # AVP of Eq. 3-4's difference sequence
    assert torch.allclose(mean_difference, (x[:, -1] - x[:, 0]) / 15, atol=1e-6)


def test_ste_time_with_identity_convolution_gates_at_one_half():
    torch.manual_seed(0)
    ste = STETime(SMALL_STE)
    with torch.no_grad():
        ste.conv.weight.zero_()
        ste.conv.weight[:, :, 1] = torch.eye(8)
    f = torch.randn(2, 16, 8)
    # S_F = F, so M1 = D_F - D_f = 0 and A1 = sigmoid(0) = 1/2.
    assert torch.allclose(ste(f), 0.5 * ste.gru(f), atol=1e-6)


def test_ste_plain_difference_gates_with_the_feature_difference():
    torch.manual_seed(0)
    ste = STETime(dataclasses.replace(SMALL_STE, ste_time_difference="plain"))
    assert ste.conv is None
    f = torch.randn(2, 16, 8)
    a1 = torch.sigmoid((f[:, -1:] - f[:, :1]) / 15)
    assert torch.allclose(ste(f), ste.gru(f) * a1, atol=1e-6)


def test_fft_round_trip_reproduces_the_features():
    f = torch.randn(4, 16, 2048) * 3
    assert torch.allclose(fft_round_trip(f), f, atol=1e-5)
    g = torch.randn(2, 12, 7, dtype=torch.float64)
    assert torch.allclose(fft_round_trip(g), g, atol=1e-12)


def test_eq5_uses_one_gru_for_f_and_f_fft():
    torch.manual_seed(0)
    ste = STEFrequency(SMALL_STE)
    grus = [m for m in ste.modules() if isinstance(m, nn.GRU)]
    assert len(grus) == 1 and ste.spectral is None
    f = torch.randn(2, 16, 8)
    g_f, g_fft = ste.gru_outputs(f)
    assert torch.allclose(g_f, ste.gru(f), atol=1e-6) and torch.allclose(g_fft, ste.gru(f), atol=1e-5)
    # STE_2 = GRU(F_fft) * sigmoid(mean_t(GRU(F) - F)) = GRU(F) * A2 up to rounding.
    assert torch.allclose(ste(f), ste.gru(f) * torch.sigmoid((ste.gru(f) - f).mean(1, keepdim=True)), atol=1e-5)
    with torch.no_grad():
        grus[0].weight_hh_l0.add_(0.5)
    h_f, h_fft = ste.gru_outputs(f)
    assert not torch.allclose(h_f, g_f, atol=1e-3) and not torch.allclose(h_fft, g_fft, atol=1e-3)


def test_spectral_ramp_is_only_an_option():
    assert STEFrequency(SMALL_STE).spectral is None
    ramp = STEFrequency(dataclasses.replace(SMALL_STE, ste_fft="ramp", spectral_gain=2.0))
    assert isinstance(ramp.spectral, SpectralEmphasis)
    nyquist = torch.tensor([1.0, -1.0]).repeat(8)[None, :, None].expand(1, 16, 8)
    assert torch.allclose(ramp.transform(nyquist), 3.0 * nyquist, atol=1e-5)  # 1 + gain
    constant = torch.ones(1, 16, 8)
    assert torch.allclose(ramp.transform(constant), constant, atol=1e-6)


def test_senet_sees_one_frame_at_a_time():
    """The authors: SENet "processes each frame independently without considering temporal
    information". Permuting the other frames leaves a frame's output unchanged."""
    torch.manual_seed(0)
    se = SqueezeExcitation(dataclasses.replace(SMALL_STE, se_reduction=2))
    f = torch.randn(2, 16, 8)
    (out,) = se(f)
    w1, b1, w2, b2 = se.excite[0].weight, se.excite[0].bias, se.excite[2].weight, se.excite[2].bias
    expected = f * torch.sigmoid(torch.relu(f @ w1.T + b1) @ w2.T + b2)  # Hu et al.'s excitation, per frame
    assert torch.allclose(out, expected, atol=1e-6)
    assert se.excite[0].out_features == 4 and not any(isinstance(m, nn.GRU) for m in se.modules())
    order = torch.randperm(16)
    for t in (0, 7, 15):
        others = [i for i in order.tolist() if i != t]
        shuffled = f.clone()
        shuffled[:, [i for i in range(16) if i != t]] = f[:, others]  # frame t stays, the rest permuted
        (out_shuffled,) = se(shuffled)
        assert torch.equal(out_shuffled[:, t], out[:, t])
        assert not torch.equal(out_shuffled, out)
    single = se(f[:, 5:6])[0][:, 0]  # a frame alone gives the same
    assert torch.allclose(single, out[:, 5], atol=1e-7)


# ---- the integration network ---------------------------------------------------------------------
def test_integration_network_layout_is_tcmrs_attention_with_relu():
    net = Integration(3, 2048)
    tcmr_block = AttentionFusion(3, 2048)  # TCMR's layout, its parameter names
    assert {k: v.shape for k, v in net.state_dict().items()} == {k: v.shape for k, v in tcmr_block.state_dict().items()}
    assert isinstance(net.fc, nn.Linear) and (net.fc.in_features, net.fc.out_features) == (2048, 256)
    layers = list(net.attention)
    assert [type(m) for m in layers] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear, nn.ReLU]
    assert [(m.in_features, m.out_features) for m in layers[::2]] == [(768, 256), (256, 256), (256, 3)]
    assert count_parameters(net) == fusion(3) == 787_971
    assert [n for n, _ in net.named_children()] == ["fc", "attention"]  # one projection, shared


def test_integration_is_a_per_frame_convex_combination_with_a_shared_projection():
    torch.manual_seed(0)
    net = Integration(num_inputs=3, dim=6, proj_dim=4, hidden=5)
    xs = [torch.randn(2, 8, 6) for _ in range(3)]
    w = net.weights(xs)
    projected = torch.cat([net.fc(x) for x in xs], dim=-1)  # the same fc on every input
    assert torch.allclose(w, net.attention(projected).softmax(-1), atol=1e-6)
    assert w.shape == (2, 8, 3) and torch.allclose(w.sum(-1), torch.ones(2, 8))
    manual = sum(w[..., i : i + 1] * xs[i] for i in range(3))
    assert torch.allclose(net(xs), manual, atol=1e-6)
    same = torch.randn(2, 8, 6)
    assert torch.allclose(net([same, same, same]), same, atol=1e-6)


def test_integration_relu_linear_reading_is_an_option_with_its_own_count():
    """The other reading of the authors' sentence ("we pass each feature to the ReLU activation
    function and a fully connected layer to change the size of the channel dimension to
    2048"): ReLU and a Linear(C, C) per input before the shared projection. Not the default."""
    assert STRConfig().integration_input == "none"
    torch.manual_seed(0)
    net = Integration(3, 6, proj_dim=4, hidden=5, input_reading="relu_linear")
    xs = [torch.randn(2, 8, 6) for _ in range(3)]
    projected = torch.cat([net.fc(layer(torch.relu(x))) for layer, x in zip(net.inputs, xs)], dim=-1)
    w = net.attention(projected).softmax(-1)
    assert torch.allclose(net.weights(xs), w, atol=1e-6)
    assert torch.allclose(net(xs), sum(w[..., i:i + 1] * xs[i] for i in range(3)), atol=1e-6)  # the inputs as given
    with pytest.raises(ValueError):
        Integration(3, 6, input_reading="other")
    with pytest.raises(UsageError):
        STRConfig(integration_input="other")
    with torch.device("meta"):
        other = STR(STRConfig(integration_input="relu_linear"))
    inputs = 3 + 3 + 8 + 2 + 2  # Eq. 6, Eq. 7, self phase, two cross networks
    assert count_parameters(other) == DOCUMENTED_TOTAL + inputs * (C * C + C) == 176_521_647
    # Only Eq. 6 (the sentence's context: F_STR = a1 F_ttr + a2 STEF1 + a3 STEF2) would add 3 of these.
    assert DOCUMENTED_TOTAL + 3 * (C * C + C) == 113_576_367


# ---- integration strategies -------------------------------------------------------------------
def test_self_integration_weighs_the_frames_of_the_part():
    torch.manual_seed(0)
    strategies = IntegrationStrategies(TINY)
    assert len(strategies.encoders) == 2  # one GRU branch per part
    assert strategies.self_integration.num_inputs == 8  # T / c frames
    parts = torch.randn(2, 2, 8, TINY.feature_dim)
    out = strategies._self(parts)
    # frame i of part p: input k is frame (i + k) mod 8 of the same part
    for p, i in [(0, 0), (1, 5)]:
        inputs = [parts[:, p, (i + k) % 8] for k in range(8)]
        assert torch.allclose(out[:, p, i], strategies.self_integration(inputs), atol=1e-6)
    # a frame of part 1 changes nothing of part 0's self phase
    other = parts.clone()
    other[:, 1, 3] += 1
    assert torch.allclose(strategies._self(other)[:, 0], out[:, 0])
    assert not torch.allclose(strategies._self(other)[:, 1, 0], out[:, 1, 0])


def test_shifted_candidates_option_and_shared_encoder():
    strategies = IntegrationStrategies(dataclasses.replace(TINY_ANY_T, strategy_encoders="shared"))
    assert len(strategies.encoders) == 1 and strategies.self_integration.num_inputs == 3
    x = torch.arange(5.0)[None, :, None]
    assert temporal_shift(x, 1).flatten().tolist() == [1, 2, 3, 4, 4]
    assert temporal_shift(x, -2).flatten().tolist() == [0, 0, 0, 1, 2]


def test_cross_integration_mixes_the_two_halves():
    torch.manual_seed(0)
    strategies = IntegrationStrategies(TINY)
    f = torch.randn(1, 16, TINY.feature_dim)
    base = strategies(f)
    assert base.self_features.shape == base.cross_features.shape == (1, 16, TINY.feature_dim)
    g = f.clone()
    g[:, 8:] += 1.0
    changed = strategies(g)
    assert not torch.allclose(changed.cross_features[:, :8], base.cross_features[:, :8])
    assert torch.allclose(strategies.encode(g)[:, 0], strategies.encode(f)[:, 0])  # per-part encoders
    alone = IntegrationStrategies(dataclasses.replace(TINY, use_cross_integration=False))
    a, b = alone(f), alone(g)
    assert torch.allclose(a.self_features[:, :8], b.self_features[:, :8])
    assert torch.allclose(a.cross_features[:, :8], b.cross_features[:, :8])


def test_plain_aggregation_averages():
    torch.manual_seed(0)
    strategies = IntegrationStrategies(TINY.ablate("plain_aggregation"))
    assert isinstance(strategies.self_integration, MeanAggregation)
    assert count_parameters(strategies) == sum(count_parameters(e) for e in strategies.encoders)
    f = torch.randn(2, 16, TINY.feature_dim)
    parts = strategies.encode(f)
    refined = parts.mean(dim=2, keepdim=True).expand_as(parts)  # every frame: its part's mean
    sf = refined.mean(dim=1, keepdim=True).expand_as(parts)  # then the mean over the parts
    assert torch.allclose(strategies(f).self_features, sf.reshape(2, 16, -1), atol=1e-6)
    assert torch.allclose(strategies(f).cross_features,
                          parts.mean(dim=1, keepdim=True).expand_as(parts).reshape(2, 16, -1), atol=1e-6)


# ---- the whole model --------------------------------------------------------------------------
def test_untrained_model_starts_at_the_mean_parameters(assets):
    mean = MeanParams.from_npz(assets / "smpl_helpers" / "smpl_mean_params.npz")
    torch.manual_seed(0)
    model = STR(TINY, mean_params=mean).eval()
    out = model(torch.randn(2, 16, TINY.feature_dim) * 0.1)
    # The heads start tiny (xavier gain 0.01), so the prediction is the mean plus a little.
    assert torch.allclose(out.pose6d, torch.from_numpy(mean.pose6d).expand_as(out.pose6d), atol=0.05)
    assert torch.allclose(out.cam, torch.from_numpy(mean.cam).expand_as(out.cam), atol=0.05)


def test_tiny_model_overfits_a_fixed_batch():
    torch.manual_seed(0)
    model = STR(TINY)
    features = torch.randn(2, 16, TINY.feature_dim)
    target_pose = torch.randn(2, 16, 144) * 0.5 + model.regressor.init_pose
    target_betas = torch.randn(2, 16, 10)
    target_cam = torch.randn(2, 16, 3) * 0.2
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_fn() -> torch.Tensor:
        out = model(features)
        return ((out.pose6d - target_pose).square().mean() + (out.betas - target_betas).square().mean()
                + (out.cam - target_cam).square().mean())

    first = loss_fn().item()
    for _ in range(150):
        optimiser.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimiser.step()
    assert loss_fn().item() < first / 10  # measured: first / 17 after 150 steps


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
