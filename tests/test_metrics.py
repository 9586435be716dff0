"""The paper's metrics on hand-made cases with known answers."""

import math

import numpy as np
import pytest
import torch

from strcli.train import metrics


def poses(n=5, joints=14, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(0, 0.3, (n, joints, 3))).float()


def rotation(angle, axis):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return torch.from_numpy(np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k).float()


def test_a_rigidly_moved_and_scaled_copy_has_zero_pa_mpjpe_but_not_zero_mpjpe():
    target = poses()
    pred = 1.7 * target @ rotation(0.9, (1, 2, 3)).T + torch.tensor([0.3, -1.0, 4.0])
    assert metrics.pa_mpjpe(pred, target).max() < 1e-3  # mm
    assert metrics.mpjpe(pred, target).min() > 50


def test_a_mirror_image_is_not_explained_away_by_procrustes():
    target = poses()
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0])
    assert metrics.pa_mpjpe(mirrored, target).min() > 10


def test_a_known_offset_gives_a_known_mpjpe():
    target = poses()
    pred = target.clone()
    pred[:, 0] += torch.tensor([0.0, 0.014, 0.0])  # one of 14 joints (an ankle) 14 mm off
    assert metrics.mpjpe(pred, target) == pytest.approx(torch.full((5,), 1.0), abs=1e-3)
    # a translation of the whole body is removed by the pelvis alignment
    assert metrics.mpjpe(target + torch.tensor([1.0, 2.0, 3.0]), target).max() < 1e-3
    # moving a hip moves the pelvis (their mean): every other joint is then off by half of it
    pred = target.clone()
    pred[:, 2] += torch.tensor([0.02, 0.0, 0.0])
    assert metrics.mpjpe(pred, target) == pytest.approx(torch.full((5,), (13 * 10 + 10) / 14), abs=1e-3)


def test_constant_velocity_has_zero_acceleration_error_and_a_known_acceleration_a_known_one():
    target = poses(1).repeat(10, 1, 1)
    t = torch.arange(10.0)[:, None, None]
    moving = target + t * torch.tensor([0.01, 0.02, -0.03])  # constant velocity of everything
    assert metrics.accel_error(moving, target).abs().max() < 1e-3
    pred = target.clone()
    pred[:, 0, 0] += 0.0005 * t[:, 0, 0] ** 2  # joint 0 accelerates: second difference 1 mm
    assert metrics.accel_error(pred, target) == pytest.approx(torch.full((8,), 1 / 14), abs=1e-4)



def test_accel_counts_every_counted_frame_whatever_its_neighbours():
    """TCMR's rule (evaluate.py): the error at t = 1..n-2 is computed on the whole sequence
    and kept at the frames that count, even next to a frame that does not."""
    target = poses(1).repeat(10, 1, 1)
    pred = target.clone()
    pred[4, 0, 0] += 0.014  # joint 0 of frame 4 off by 14 mm: second differences 14, -28, 14 mm at t = 3, 4, 5
    full = metrics.accel_error(pred, target)
    assert full.tolist() == pytest.approx([0, 0, 1.0, 2.0, 1.0, 0, 0, 0], abs=1e-4)  # t = 1..8, mean of 14 joints
    counted = np.ones(10, bool)
    counted[[0, 4, 7]] = False  # frame 4 does not count: t = 3 and 5 still do
    kept = metrics.accel_error(pred, target, counted=counted)
    assert kept.tolist() == pytest.approx([0, 0, 1.0, 1.0, 0, 0], abs=1e-4)  # t = 1, 2, 3, 5, 6, 8


def test_mpvpe_is_the_mean_vertex_distance():
    target = torch.zeros(3, 100, 3)
    pred = target + torch.tensor([0.003, 0.004, 0.0])
    assert metrics.mpvpe(pred, target) == pytest.approx(torch.full((3,), 5.0))


def test_mpii3d_pelvis_is_its_hip_joint():
    target = poses(joints=17)
    pred = target.clone()
    pred[:, 14] += torch.tensor([0.0, 0.0, 0.017])  # the pelvis itself moves: all 16 others are off
    assert metrics.mpjpe(pred, target, metrics.MPII3D_PELVIS) == pytest.approx(torch.full((5,), 16.0), abs=1e-3)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_every_metric_refuses_non_finite_joints_with_the_frames_instead_of_a_linalg_error(bad):
    """A diverged network's NaN joints used to end in `torch.linalg.svd`'s LinAlgError
    (Procrustes), or as a NaN score; every metric refuses them, naming the frames."""
    from strcli.utils.errors import NonFiniteError

    target = poses()
    pred = target.clone()
    pred[3, 2, 1] = bad
    for metric in (metrics.pa_mpjpe, metrics.procrustes, metrics.mpjpe, metrics.accel_error, metrics.mpvpe):
        with pytest.raises(NonFiniteError, match=r"predicted (joints|vertices) hold NaN or infinite values at 1 of 5 "
                                                 r"frame\(s\) \(3\)"):
            metric(pred, target)
        with pytest.raises(NonFiniteError, match="true (joints|vertices) hold"):
            metric(target, pred)
    assert NonFiniteError.exit_code == 4
