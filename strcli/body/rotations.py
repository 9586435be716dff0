"""Rotation representations used by the regressor, the body model and the losses.

All functions are batched over any leading dimensions and differentiable.
The 6D representation is SPIN's: the 6 numbers read as a 3x2 matrix whose two columns are
orthonormalised by Gram-Schmidt into the first two columns of the rotation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def rot6d_to_rotmat(x: Tensor) -> Tensor:
    """(..., 6) -> (..., 3, 3)."""
    a = x.reshape(*x.shape[:-1], 3, 2)
    a1, a2 = a[..., 0], a[..., 1]  # (..., 3) each
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)  # columns b1, b2, b3


def rotmat_to_rot6d(r: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 6), the inverse of `rot6d_to_rotmat` on rotation matrices."""
    return r[..., :, :2].reshape(*r.shape[:-2], 6)


def rotmat_to_quaternion(r: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 4) unit quaternions (w, x, y, z) with w >= 0.

    Four algebraically equal formulas are formed; each row is 4 q_k q for one component
    q_k, and the one with the largest q_k is numerically safe, so it is picked.
    """
    m00, m01, m02 = r[..., 0, 0], r[..., 0, 1], r[..., 0, 2]
    m10, m11, m12 = r[..., 1, 0], r[..., 1, 1], r[..., 1, 2]
    m20, m21, m22 = r[..., 2, 0], r[..., 2, 1], r[..., 2, 2]
    candidates = torch.stack(
        (
            torch.stack((1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01), -1),
            torch.stack((m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20), -1),
            torch.stack((m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21), -1),
            torch.stack((m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22), -1),
        ),
        dim=-2,
    )  # (..., 4, 4)
    diagonal = torch.diagonal(candidates, dim1=-2, dim2=-1)  # (..., 4) = 4 q_k^2
    best = diagonal.argmax(dim=-1, keepdim=True)  # (..., 1)
    q = torch.gather(candidates, -2, best[..., None].expand(*best.shape, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(q: Tensor) -> Tensor:
    """(..., 4) unit quaternions (w, x, y, z) -> (..., 3) axis * angle, angle in [0, pi]."""
    q = torch.where(q[..., :1] < 0, -q, q)
    w, v = q[..., 0], q[..., 1:]
    sin_half = v.norm(dim=-1)
    angle = 2 * torch.atan2(sin_half, w)
    small = sin_half < 1e-6
    # angle / sin(angle/2) -> 2 / w as the angle goes to 0.
    scale = torch.where(small, 2 / w.clamp_min(1e-6), angle / sin_half.clamp_min(1e-6))
    return v * scale[..., None]


def axis_angle_to_quaternion(aa: Tensor) -> Tensor:
    """(..., 3) -> (..., 4) unit quaternions (w, x, y, z)."""
    angle = aa.norm(dim=-1, keepdim=True)
    half = angle / 2
    small = angle < 1e-6
    # sin(angle/2) / angle -> 1/2 - angle^2/48 near 0.
    k = torch.where(small, 0.5 - angle**2 / 48, torch.sin(half) / angle.clamp_min(1e-6))
    return torch.cat((torch.cos(half), aa * k), dim=-1)


def quaternion_to_rotmat(q: Tensor) -> Tensor:
    """(..., 4) (w, x, y, z) -> (..., 3, 3)."""
    w, x, y, z = F.normalize(q, dim=-1).unbind(-1)
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def rotmat_to_axis_angle(r: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 3)."""
    return quaternion_to_axis_angle(rotmat_to_quaternion(r))


def axis_angle_to_rotmat(aa: Tensor) -> Tensor:
    """(..., 3) -> (..., 3, 3)."""
    return quaternion_to_rotmat(axis_angle_to_quaternion(aa))
