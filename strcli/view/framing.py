"""Where `strcli view` first looks from: a view of the world that frames the people.

Pure geometry on numpy arrays (no viser, no torch), so that it is tested alone
(tests/test_view.py). The world is strcli's (docs/world.md): y up, the floor y = 0, metres.

The view stands beside the first frame's camera, turned `AZIMUTH` towards its right and
raised `ELEVATION`, and looks at the middle of the people. Its distance is the least at
which every kept body (its root, and a standing person's extent `BODY_HEIGHT` about it)
lies inside the view with a margin, solved in closed form per point: a point at
(x, y) across the view and z along it is inside when z >= |x| / tan(horizontal fov / 2)
and z >= |y| / tan(vertical fov / 2).

Which bodies are framed: every person, at their typical place (each track's median root),
and the bulk of all positions, the `KEEP` share of all root positions (every track, every
frame) nearest their median on the floor. Framing every position of every track
(pedestrians.avi has people 6 to over 50 m from the camera) leaves every body small for
the sake of a few far frames; framing the bulk alone can leave a far person out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BODY_HEIGHT = 1.8  # metres: a standing person, the extent framed about each root
# The share of root positions framed (the nearest to their median on the floor), beside every track's
# median. On pedestrians.avi (300 frames, 21 tracks; benchmarks/view_framing.py), the median body's
# height on a 676 x 700 canvas and the share of roots in view: every root 32 px, 100%; the bulk of 0.7
# and every track's median 36 px, 100%; of 0.5 and the medians 39 px, 97%.
KEEP = 0.7
AZIMUTH = math.radians(35.0)  # the view's turn from the first camera's heading, to its right
ELEVATION = math.radians(25.0)  # the view's height: the angle it looks down at the people
FOV = math.radians(50.0)  # vertical field of view (three.js's `fov` is vertical)
ASPECT = 1.0  # width / height assumed: viser's canvas beside its sidebar in a 1000 x 700 window is near square
MARGIN = 0.9  # the framed points stay within this share of the half-width and half-height
NEAR = 1.0  # metres: the closest the view comes to a framed point along its axis


@dataclass(frozen=True)
class ViewPose:
    """A viewing camera in the world: position (3,) and look_at (3,) metres, up (3,) unit,
    fov the vertical field of view in radians."""

    position: np.ndarray
    look_at: np.ndarray
    up: np.ndarray
    fov: float


def bulk(roots: np.ndarray, keep: float = KEEP) -> np.ndarray:
    """The `keep` share (0-1] of roots (K, 3) nearest their median on the floor (x, z):
    (M, 3), M >= 1. Raises ValueError when roots is empty."""
    roots = np.asarray(roots, dtype=np.float64).reshape(-1, 3)
    if len(roots) == 0:
        raise ValueError("no root positions to frame")
    centre = np.median(roots[:, [0, 2]], axis=0)
    distance = np.linalg.norm(roots[:, [0, 2]] - centre, axis=1)
    return roots[distance <= np.quantile(distance, keep)]


def view_axes(camera_rotation: np.ndarray, azimuth: float = AZIMUTH, elevation: float = ELEVATION
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The view's right, up and backward unit axes (3,) in the world, from the first camera's
    rotation (3, 3) camera -> world (camera x right, y down, z forward): its heading laid on
    the floor, turned `azimuth` to its right and raised `elevation`."""
    forward = np.asarray(camera_rotation, dtype=np.float64)[:, 2]
    forward = np.array([forward[0], 0.0, forward[2]])
    if np.linalg.norm(forward) < 1e-6:  # a camera looking straight down: the world's heading (-z)
        forward = np.array([0.0, 0.0, -1.0])
    forward /= np.linalg.norm(forward)
    side = np.cross(forward, [0.0, 1.0, 0.0])  # the camera's right on the floor
    heading = math.cos(azimuth) * forward - math.sin(azimuth) * side  # the view looks this way...
    look = math.cos(elevation) * heading - math.sin(elevation) * np.array([0.0, 1.0, 0.0])  # ...and down
    back = -look
    right = np.cross(look, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    return right, np.cross(right, look), back


def frame_people(roots: np.ndarray, camera_rotation: np.ndarray, *, middles: np.ndarray | None = None,
                 keep: float = KEEP, fov: float = FOV, aspect: float = ASPECT, height: float = BODY_HEIGHT
                 ) -> ViewPose:
    """The first view of the viewer: roots (K, 3) every track's root (pelvis) positions in
    the world over the video, metres; middles (P, 3) each track's typical root (its median),
    framed whatever their distance, so that every person is in view; camera_rotation (3, 3)
    the first frame's camera -> world. Frames the middles and the `keep` share of the roots
    (`bulk`), each as a body `height` tall about it. Raises ValueError when roots is empty."""
    kept = bulk(roots, keep)
    if middles is not None and len(middles):
        kept = np.concatenate((kept, np.asarray(middles, dtype=np.float64).reshape(-1, 3)))
    offsets = np.array([[0.0, -height / 2, 0.0], [0.0, height / 2, 0.0]])
    points = (kept[:, None] + offsets[None]).reshape(-1, 3)  # (2 M, 3): each body's bottom and top
    look_at = (points.min(0) + points.max(0)) / 2
    right, up, back = view_axes(camera_rotation)
    rel = points - look_at
    across, upward, behind = rel @ right, rel @ up, rel @ back
    tan_v = math.tan(fov / 2) * MARGIN
    tan_h = math.tan(fov / 2) * aspect * MARGIN
    # A point is at depth d - behind from a view d behind look_at: inside when that depth is
    # at least |across| / tan_h and |upward| / tan_v (and NEAR).
    needed = np.maximum(np.maximum(np.abs(across) / tan_h, np.abs(upward) / tan_v), NEAR) + behind
    distance = float(max(needed.max(), NEAR))
    return ViewPose(look_at + distance * back, look_at, up, fov)


def project(points: np.ndarray, view: ViewPose, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions (K, 2) and depths (K,) of world points (K, 3) in a `view` drawn on a
    canvas of `size` (width, height) pixels, as three.js's perspective camera draws them
    (vertical fov, square pixels; origin top left, y down)."""
    look = view.look_at - view.position
    look = look / np.linalg.norm(look)
    right = np.cross(look, view.up)
    right /= np.linalg.norm(right)
    up = np.cross(right, look)
    rel = np.asarray(points, dtype=np.float64) - view.position
    depth = rel @ look
    focal = size[1] / 2 / math.tan(view.fov / 2)
    pixels = np.stack((size[0] / 2 + focal * (rel @ right) / depth, size[1] / 2 - focal * (rel @ up) / depth), -1)
    return pixels, depth
