import math

import numpy as np
import torch

from strcli.body.camera import (
    Intrinsics,
    crop_camera_translation,
    project,
    weak_to_full_translation,
    weak_to_full_weak,
)
from strcli.config import CROP_SIZE


def crop_pixels(points, cam, centre, side):
    """Weak-perspective projection in the crop, mapped back to image pixels."""
    s, tx, ty = cam
    crop_xy = s * (points[:, :2] + torch.tensor([tx, ty]))  # [-1, 1] in the crop
    crop_px = (crop_xy + 1) * CROP_SIZE / 2
    return torch.tensor(centre) - side / 2 + crop_px * side / CROP_SIZE


def test_full_camera_reproduces_the_crop_projection_at_body_depth():
    g = torch.Generator().manual_seed(0)
    points = torch.randn(50, 3, generator=g, dtype=torch.float64) * 0.4
    points[:, 2] = 0  # on the plane through the body's origin, perspective = weak perspective
    cam, centre, side = (0.9, 0.1, -0.2), (1400.0, 300.0), 500.0
    intrinsics = Intrinsics.default_for(1920, 1080)
    t = weak_to_full_translation(torch.tensor(cam, dtype=torch.float64), torch.tensor(centre, dtype=torch.float64),
                                 torch.tensor(side, dtype=torch.float64), intrinsics)
    ours = project(points, t, intrinsics)
    expected = crop_pixels(points, cam, centre, side)
    assert torch.allclose(ours, expected, atol=1e-9)


def test_depth_follows_the_focal_length_and_box_size():
    cam = torch.tensor([0.8, 0.0, 0.0])
    a = weak_to_full_translation(cam, torch.tensor([320.0, 240.0]), torch.tensor(200.0), Intrinsics(1000, 640, 480))
    b = weak_to_full_translation(cam, torch.tensor([320.0, 240.0]), torch.tensor(100.0), Intrinsics(1000, 640, 480))
    assert math.isclose(a[2].item(), 2 * 1000 / (0.8 * 200), rel_tol=1e-6)
    assert math.isclose(b[2].item(), 2 * a[2].item(), rel_tol=1e-6)  # half the box, twice as far


def test_full_weak_camera_matches_the_protocol_formulas():
    cam = torch.tensor([1.1, 0.05, 0.02])
    full = weak_to_full_weak(cam, torch.tensor([100.0, 50.0]), torch.tensor(80.0), 400, 200)
    sx, sy = 1.1 * 80 / 400, 1.1 * 80 / 200
    expected = [sx, sy, (100 - 200) / 200 / sx + 0.05, (50 - 100) / 100 / sy + 0.02]
    assert np.allclose(full.numpy(), expected)


def test_crop_camera_translation_uses_focal_5000():
    t = crop_camera_translation(torch.tensor([[0.9, 0.1, 0.2]]))
    assert torch.allclose(t, torch.tensor([[0.1, 0.2, 2 * 5000 / (224 * 0.9)]]))


def test_default_intrinsics():
    k = Intrinsics.default_for(1920, 1080)
    assert math.isclose(k.focal, math.hypot(1920, 1080))
    assert Intrinsics.default_for(1920, 1080, focal=1500).focal == 1500
    assert np.allclose(k.matrix[:2, 2], [960, 540])
