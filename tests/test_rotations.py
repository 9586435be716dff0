import math

import pytest
import torch
from smplx.lbs import batch_rodrigues

from strcli.body.rotations import (
    axis_angle_to_rotmat,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    rotmat_to_quaternion,
    rotmat_to_rot6d,
)


def random_axis_angle(n: int, max_angle: float = math.pi * 0.999) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1)
    angle = torch.rand(n, 1, generator=g, dtype=torch.float64) * max_angle
    return axis * angle


def test_axis_angle_to_rotmat_matches_smplx_rodrigues():
    aa = random_axis_angle(500)
    ours = axis_angle_to_rotmat(aa)
    theirs = batch_rodrigues(aa)
    assert torch.allclose(ours, theirs, atol=1e-7)


@pytest.mark.parametrize("max_angle", [1e-5, 1.0, math.pi * 0.999])
def test_rotmat_axis_angle_round_trip(max_angle):
    aa = random_axis_angle(400, max_angle)
    back = rotmat_to_axis_angle(axis_angle_to_rotmat(aa))
    assert torch.allclose(back, aa, atol=1e-6)


def test_half_turn_gives_angle_pi():
    r = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # pi about x
    aa = rotmat_to_axis_angle(r)
    assert torch.allclose(aa.abs(), torch.tensor([math.pi, 0, 0], dtype=torch.float64), atol=1e-6)


def test_quaternion_has_non_negative_w():
    q = rotmat_to_quaternion(axis_angle_to_rotmat(random_axis_angle(100)))
    assert (q[:, 0] >= 0).all()
    assert torch.allclose(q.norm(dim=-1), torch.ones(100, dtype=torch.float64))


def test_rot6d_gives_rotations_and_inverts():
    x = torch.randn(300, 6, dtype=torch.float64)
    r = rot6d_to_rotmat(x)
    eye = torch.eye(3, dtype=torch.float64).expand(300, 3, 3)
    assert torch.allclose(r.transpose(-1, -2) @ r, eye, atol=1e-10)
    assert torch.allclose(torch.linalg.det(r), torch.ones(300, dtype=torch.float64))
    # On a rotation, 6D -> matrix -> 6D is exact.
    six = rotmat_to_rot6d(r)
    assert torch.allclose(rot6d_to_rotmat(six), r, atol=1e-10)


def test_rot6d_reads_columns_like_spin():
    # Identity in SPIN's layout: first two columns of I, read row-major as a 3x2 matrix.
    identity = torch.tensor([1.0, 0, 0, 1, 0, 0])
    assert torch.equal(rot6d_to_rotmat(identity), torch.eye(3))
