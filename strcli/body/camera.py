"""Cameras: the regressor's weak-perspective crop camera and the full-image camera.

The regressor predicts [s, tx, ty] for the 224 px crop: a 3D point X lands at crop
coordinates s * (X_xy + t) in [-1, 1]. Knowing the square box that was cropped (centre
cx, cy and side h, in pixels of a W x H image), the same camera seen in the whole image is
a weak-perspective camera [sx, sy, tx', ty'] (protocols: sx = s h / W, sy = s h / H,
tx' = (cx - W/2) / (W/2) / sx + tx, ty' likewise), and, for a perspective camera of
focal f pixels centred on the image, the translation [tx', ty', 2 f / (s h)]. For points
at the body's depth both project to the same pixels; perspective then adds foreshortening.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from strcli.config import CROP_FOCAL, CROP_SIZE


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera of a W x H image, principal point at the centre."""

    focal: float  # pixels
    width: int
    height: int

    @classmethod
    def default_for(cls, width: int, height: int, focal: float | None = None) -> Intrinsics:
        """Focal length = the image diagonal in pixels (about 53 degrees of diagonal field of
        view, a typical phone or camcorder lens) unless the user knows better."""
        return cls(float(focal) if focal else math.hypot(width, height), width, height)

    @property
    def matrix(self) -> np.ndarray:
        """(3, 3) K."""
        return np.array([[self.focal, 0, self.width / 2], [0, self.focal, self.height / 2], [0, 0, 1]],
                        np.float64)


def crop_camera_translation(cam: Tensor, focal: float = CROP_FOCAL, crop: int = CROP_SIZE) -> Tensor:
    """(..., 3) [s, tx, ty] -> (..., 3) translation for a perspective camera on the crop."""
    s, tx, ty = cam.unbind(-1)
    return torch.stack((tx, ty, 2 * focal / (crop * s.clamp_min(1e-6))), dim=-1)


def weak_to_full_weak(cam: Tensor, centre: Tensor, side: Tensor, width: int, height: int) -> Tensor:
    """(..., 3) crop camera, (..., 2) box centre, (...,) box side -> (..., 4) [sx, sy, tx', ty']
    of the full image (coordinates in [-1, 1] along each axis)."""
    s, tx, ty = cam.unbind(-1)
    sx = s * side / width
    sy = s * side / height
    tx_full = (centre[..., 0] - width / 2) / (width / 2) / sx + tx
    ty_full = (centre[..., 1] - height / 2) / (height / 2) / sy + ty
    return torch.stack((sx, sy, tx_full, ty_full), dim=-1)


def weak_to_full_translation(cam: Tensor, centre: Tensor, side: Tensor, intrinsics: Intrinsics) -> Tensor:
    """(..., 3) crop camera + the box it was cropped from -> (..., 3) translation of the body
    in the full-image perspective camera `intrinsics`."""
    full = weak_to_full_weak(cam, centre, side, intrinsics.width, intrinsics.height)
    s = cam[..., 0].clamp_min(1e-6)
    tz = 2 * intrinsics.focal / (s * side)
    return torch.stack((full[..., 2], full[..., 3], tz), dim=-1)


def project(points: Tensor, translation: Tensor, intrinsics: Intrinsics) -> Tensor:
    """(..., J, 3) body-frame points + (..., 3) translation -> (..., J, 2) pixels."""
    p = points + translation[..., None, :]
    z = p[..., 2:].clamp_min(1e-6)
    centre = p.new_tensor([intrinsics.width / 2, intrinsics.height / 2])
    return intrinsics.focal * p[..., :2] / z + centre
