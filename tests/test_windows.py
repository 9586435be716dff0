import numpy as np
import pytest
import torch

from strcli.model import STR, SMPLPrediction, STRConfig
from strcli.road.windows import StreamingWindows, plan_windows, predict_sequences, tcmr_window_index, tent_weights

FRAMEWISE = STRConfig(feature_dim=16, gru_hidden=8, integration_dim=4, integration_hidden=4,
                      regressor_hidden=16, use_ttr=False, use_ste_time=False, use_ste_frequency=False,
                      use_self_integration=False, use_cross_integration=False)


@pytest.mark.parametrize("length", [1, 5, 16, 17, 37, 100])
def test_windows_cover_every_frame(length):
    plan = plan_windows(length, window=16)
    seen = plan.frame_index()[plan.is_real()]
    assert sorted(set(seen.tolist())) == list(range(length))
    assert plan.frame_index().shape[1] == 16
    if length > 16:
        assert plan.starts[-1] == length - 16 and np.all(np.diff(plan.starts) <= 8)


def test_short_sequences_are_padded_with_their_edge_frames():
    plan = plan_windows(5, window=16)
    index = plan.frame_index()[0]
    assert index[: plan.pad_before].tolist() == [0] * plan.pad_before
    assert index[-3:].tolist() == [4, 4, 4]
    assert plan.is_real().sum() == 5


def test_tent_weights_favour_the_centre():
    w = tent_weights(16)
    assert w.argmax() in (7, 8) and w.min() > 0 and np.allclose(w, w[::-1])


@pytest.mark.parametrize("length", [3, 16, 37])
def test_a_framewise_network_gives_the_same_result_windowed(length):
    """With every temporal component switched off STR is per-frame, so merging windows must
    reproduce the regressor applied to each frame exactly."""
    torch.manual_seed(0)
    model = STR(FRAMEWISE).eval()
    features = torch.randn(length, 16)
    (merged,) = predict_sequences(model, [features], window=16, stride=8, batch_size=3)
    direct = model.regressor(features)
    assert torch.allclose(merged.pose6d, direct.pose6d, atol=1e-5)
    assert torch.allclose(merged.rotmat, direct.rotmat, atol=1e-5)
    assert torch.allclose(merged.cam, direct.cam, atol=1e-5)
    assert merged.betas.shape == (length, 10)


def test_several_tracks_at_once_match_one_at_a_time():
    torch.manual_seed(0)
    model = STR(STRConfig(feature_dim=16, gru_hidden=8, integration_dim=4, integration_hidden=4,
                          regressor_hidden=16)).eval()
    tracks = [torch.randn(n, 16) for n in (20, 7, 33)]
    together = predict_sequences(model, tracks, batch_size=4)
    for features, merged in zip(tracks, together):
        (alone,) = predict_sequences(model, [features])
        assert merged.pose6d.shape == (len(features), 144)
        assert torch.allclose(merged.pose6d, alone.pose6d, atol=1e-5)


def test_streaming_equals_batched_and_holds_at_most_a_window():
    torch.manual_seed(0)
    model = STR(STRConfig(feature_dim=16, gru_hidden=8, integration_dim=4, integration_hidden=4,
                          regressor_hidden=16)).eval()
    tracks = [torch.randn(n, 16) for n in (200, 7, 33, 16, 1)]
    reference = predict_sequences(model, tracks, batch_size=4)
    stream = StreamingWindows(model, [len(t) for t in tracks], batch_size=3)
    rng = np.random.default_rng(1)
    done = [0] * len(tracks)
    finals, most_held = [], 0
    while any(d < len(t) for d, t in zip(done, tracks)):
        i = int(rng.choice([i for i, t in enumerate(tracks) if done[i] < len(t)]))
        k = int(rng.integers(1, 4))
        finals += stream.add(i, tracks[i][done[i] : done[i] + k])
        done[i] = min(done[i] + k, len(tracks[i]))
        most_held = max(most_held, max(len(s.features) + len(s.sums) for s in stream.sequences))
    finals += stream.flush()
    assert most_held <= 2 * 16 + 3  # bounded by the window, not by the 200-frame track
    for i, ref in enumerate(reference):
        mine = sorted((f for f in finals if f.sequence == i), key=lambda f: f.first)
        assert [f.first for f in mine] == sorted({f.first for f in mine})
        pose = torch.cat([f.prediction.pose6d for f in mine])
        assert pose.shape == ref.pose6d.shape and torch.allclose(pose, ref.pose6d, atol=1e-5)
        assert torch.allclose(torch.cat([f.prediction.cam for f in mine]), ref.cam, atol=1e-5)
    with pytest.raises(ValueError, match="got more"):
        stream.add(1, torch.randn(1, 16))


def test_tcmr_edge_windows_are_sixteen_copies_of_the_frame():
    """TCMR's rule (split_into_chunks(is_train=False) + get_sequence; its demo's
    FeatureDataset): on 24 frames, frames 0-7 and 17-23 each see 16 copies of themselves,
    frames 8-16 see t-8 .. t+7."""
    index = tcmr_window_index(24, 16)
    assert index.shape == (24, 16)
    for t in list(range(8)) + list(range(17, 24)):
        assert index[t].tolist() == [t] * 16, t
    for t in range(8, 17):
        assert index[t].tolist() == list(range(t - 8, t + 8)), t
    assert (index[:, 8] == np.arange(24)).all()  # every frame sits at the centre of its own window
    # shorter than a window: no frame has a full window, every one sees only itself
    assert (tcmr_window_index(10, 16) == np.arange(10)[:, None]).all()
    plan = plan_windows(24, 16, centred=True)
    assert (plan.frame_index() == index).all() and plan.is_real().all()


class WindowSpy(torch.nn.Module):
    """A centre-only model (like TCMR) whose 'pose' is the list of frames its window saw:
    frame t's features are all t, and the output's first 16 numbers are the window's frames."""

    centre_only = True

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, clips):
        b, t, _ = clips.shape
        pose6d = torch.zeros(b, 144)
        pose6d[:, :t] = clips[:, :, 0]
        pose6d[:, t::2] = 1.0  # keeps the 6D -> matrix conversion finite
        return SMPLPrediction(pose6d=pose6d, rotmat=torch.eye(3).expand(b, 24, 3, 3), betas=torch.zeros(b, 10),
                              cam=torch.ones(b, 3))


def test_reconstruct_model_tcmr_streams_tcmr_windows():
    """`reconstruct --model tcmr` (StreamingWindows with a centre-only model) and the batched
    path give each frame exactly the window TCMR's demo gives it."""
    n = 24
    features = torch.arange(n, dtype=torch.float32)[:, None].expand(n, 4).contiguous()
    expected = torch.from_numpy(tcmr_window_index(n, 16)).float()
    (batched,) = predict_sequences(WindowSpy(), [features], window=16, batch_size=5)
    assert torch.equal(batched.pose6d[:, :16], expected)
    stream = StreamingWindows(WindowSpy(), [n], batch_size=3)
    finals = []
    for start in range(0, n, 5):
        finals += stream.add(0, features[start:start + 5])
    finals += stream.flush()
    streamed = torch.cat([f.prediction.pose6d for f in sorted(finals, key=lambda f: f.first)])
    assert torch.equal(streamed[:, :16], expected)
