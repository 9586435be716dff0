"""Camera motion: how the video's camera turned (and moved) relative to its first frame.

A stage of its own after tracking. It sees the frames of pass 2 as they are decoded, with
every tracked person's box of that frame, and keeps only per-keyframe numbers:
- every `every`-th processed frame (and the last) is a keyframe, shrunk so its longest side
  is `size` pixels and made grey;
- corners (OpenCV `goodFeaturesToTrack`) of the previous keyframe's *background* (every
  tracked box masked out, with a margin) are followed into the keyframe by pyramidal
  Lucas-Kanade flow, kept when the flow back lands within half a pixel of where they
  started, and dropped when they land inside a box;
- a robust two-view solve with the video's intrinsics: RANSAC homography inliers (OpenCV),
  then the rotation that best aligns their bearing vectors (Wahba's problem, scipy's
  `Rotation.align_vectors`); for `moving`, the essential matrix (RANSAC) and `recoverPose`
  give the rotation and the direction of travel, and the background triangulated at unit
  baseline near each person's feet gives the metric scale against the people's depths;
- keyframe motions are chained and interpolated to every frame (scipy `Slerp` for the
  rotation, linear for the position).

A static camera (tripod) is recognised when every keyframe step turns less than
`STATIC_DEGREES` and its background moves less than `STATIC_PIXELS` (median, full-size
pixels): the result is then the identity exactly, with no drift. Thresholds measured in
docs/world.md. `auto` chooses `moving` over `rotating` when the background, once the best
rotation is taken out, still moves by more than `PARALLAX_PIXELS` (median over steps).

Conventions: camera frame x right, y down, z forward (metres); `rotations[p]` takes a
direction of frame p's camera into the first frame's camera, `centres[p]` is frame p's
camera centre in the first frame's camera (metres), so X_0 = R_p X_p + c_p.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from strcli.body.camera import Intrinsics
from strcli.config import CAMERA_MODELS

KEYFRAME_RATE = 10.0  # keyframes per second of video (every 3rd frame at 30 fps)
KEYFRAME_SIZE = 480  # keyframes' longest side, pixels (640: 3 times the cost, docs/performance.md)
STATIC_DEGREES = 0.05  # a step turning less is no turn ...
STATIC_PIXELS = 0.25  # ... when its background also moves less than this (median, full-size px)
PARALLAX_PIXELS = 1.5  # background motion left once the rotation is out: a moving camera
PARALLAX_PERCENTILE = 80  # ... for this share of the background (the near part shows it)
BOX_MARGIN = 0.1  # a box is masked with this fraction of its size around it


@dataclass(frozen=True)
class CameraMotion:
    """The camera of every processed frame P, relative to the first one (module docstring)."""

    model: str  # static, rotating or moving: the model used
    requested: str  # --camera: auto, static, rotating or moving
    rotations: np.ndarray  # (P, 3, 3) float64 frame p's camera -> first frame's camera
    centres: np.ndarray  # (P, 3) float64 camera centre in the first camera, metres (0 unless moving)
    keyframes: np.ndarray  # (K,) int64 processed positions that were solved
    step_degrees: np.ndarray  # (K-1,) rotation between consecutive keyframes, degrees
    step_pixels: np.ndarray  # (K-1,) median background motion, full-size pixels
    parallax_pixels: np.ndarray  # (K-1,) median background motion left after the rotation
    scale_source: str = ""  # moving: how the translation's metres were found
    warnings: tuple[str, ...] = ()

    @classmethod
    def identity(cls, count: int, requested: str = "static") -> CameraMotion:
        empty = np.zeros(0)
        return cls("static", requested, np.repeat(np.eye(3)[None], count, 0), np.zeros((count, 3)),
                   np.zeros(1 if count else 0, np.int64), empty, empty, empty)

    def __len__(self) -> int:
        return len(self.rotations)


class _Step(NamedTuple):
    rotation: np.ndarray  # (3, 3) this keyframe's camera -> the previous keyframe's
    direction: np.ndarray  # (3,) unit travel in the previous keyframe's camera (0: none found)
    degrees: float
    pixels: float  # median background motion, full-size pixels
    parallax: float  # median motion left after the rotation, full-size pixels
    feet_depths: dict[int, float]  # track id -> background depth near its feet at unit baseline
    solved: bool = True  # False: too few background points; the previous step's turn is repeated
    moving_rotation: np.ndarray | None = None  # (3, 3) the essential matrix's turn, when solved for travel


class CameraMotionEstimator:
    """Feed every processed frame in order (`add`), then `finish`. Holds two shrunk grey
    keyframes and per-keyframe numbers, whatever the video's length."""

    def __init__(self, intrinsics: Intrinsics, fps: float, requested: str = "auto",
                 every: int | None = None, size: int = KEYFRAME_SIZE) -> None:
        if requested not in CAMERA_MODELS:
            raise ValueError(f"camera model {requested!r}: one of {CAMERA_MODELS}")
        self.intrinsics, self.requested = intrinsics, requested
        self.every = every or max(1, round((fps or KEYFRAME_RATE) / KEYFRAME_RATE))
        self.scale = min(1.0, size / max(intrinsics.width, intrinsics.height))
        self.count = 0
        self._previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (grey, boxes, ids) of the last keyframe
        self._pending: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None  # a non-keyframe, kept for the end
        self.keyframes: list[int] = []
        self.steps: list[_Step] = []

    def add(self, position: int, image: np.ndarray, boxes: np.ndarray, track_ids: np.ndarray | None = None) -> None:
        """image: (H, W, 3) uint8 RGB; boxes: (n, 4) x1, y1, x2, y2 full-size pixels of the
        people in this frame; track_ids: (n,) their tracks (for the moving camera's scale)."""
        if position != self.count:
            raise ValueError(f"camera motion: frame {position} given, {self.count} expected")
        self.count += 1
        if self.requested == "static":
            return
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        ids = np.full(len(boxes), -1) if track_ids is None else np.asarray(track_ids)
        if position % self.every == 0:
            self._keyframe(position, self._grey(image), boxes, ids)
            self._pending = None
        else:
            self._pending = (position, image, boxes, ids)

    def _grey(self, image: np.ndarray) -> np.ndarray:
        import cv2

        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if self.scale < 1.0:
            size = (round(grey.shape[1] * self.scale), round(grey.shape[0] * self.scale))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        return grey

    def _keyframe(self, position: int, grey: np.ndarray, boxes: np.ndarray, ids: np.ndarray) -> None:
        if self._previous is not None:
            self.steps.append(self._solve(*self._previous, grey, boxes, ids))
        self.keyframes.append(position)
        self._previous = (grey, boxes, ids)

    def _mask(self, shape: tuple[int, ...], boxes: np.ndarray) -> np.ndarray:
        mask = np.full(shape[:2], 255, np.uint8)
        for x1, y1, x2, y2 in boxes * self.scale:
            mx, my = BOX_MARGIN * (x2 - x1), BOX_MARGIN * (y2 - y1)
            mask[max(0, int(y1 - my)):max(0, int(np.ceil(y2 + my))), max(0, int(x1 - mx)):max(0, int(np.ceil(x2 + mx)))] = 0
        return mask

    def _solve(self, before: np.ndarray, before_boxes: np.ndarray, before_ids: np.ndarray,
               after: np.ndarray, after_boxes: np.ndarray, after_ids: np.ndarray) -> _Step:
        import cv2
        from scipy.spatial.transform import Rotation

        none = _Step(np.eye(3), np.zeros(3), 0.0, 0.0, 0.0, {}, solved=False)
        corners = cv2.goodFeaturesToTrack(before, maxCorners=400, qualityLevel=0.001, minDistance=9,
                                          mask=self._mask(before.shape, before_boxes), blockSize=7)
        if corners is None or len(corners) < 12:
            return none
        window = {"winSize": (15, 15), "maxLevel": 3,
                  "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)}
        moved, ok, _ = cv2.calcOpticalFlowPyrLK(before, after, corners, None, **window)
        back, ok_back, _ = cv2.calcOpticalFlowPyrLK(after, before, moved, None, **window)
        good = (ok[:, 0] == 1) & (ok_back[:, 0] == 1) & (np.linalg.norm(back - corners, axis=2)[:, 0] < 0.5)
        p0, p1 = corners[good, 0].astype(np.float64), moved[good, 0].astype(np.float64)
        inside = self._mask(after.shape, after_boxes)
        h, w = after.shape
        xi, yi = np.clip(p1[:, 0].astype(int), 0, w - 1), np.clip(p1[:, 1].astype(int), 0, h - 1)
        keep = (inside[yi, xi] > 0) & (p1[:, 0] >= 0) & (p1[:, 0] < w) & (p1[:, 1] >= 0) & (p1[:, 1] < h)
        p0, p1 = p0[keep], p1[keep]
        if len(p0) < 12:
            return none
        pixels = float(np.median(np.linalg.norm(p1 - p0, axis=1))) / self.scale
        k = self.intrinsics.matrix.copy()
        k[:2] *= self.scale
        k_inv = np.linalg.inv(k)
        b0 = _bearings(p0, k_inv)
        b1 = _bearings(p1, k_inv)
        _, inliers = cv2.findHomography(p0, p1, cv2.RANSAC, 1.0, maxIters=2000, confidence=0.999)
        use = inliers[:, 0].astype(bool) if inliers is not None and inliers.sum() >= 8 else np.ones(len(p0), bool)
        # Refit on every point the rotation explains within a pixel (the homography's
        # inliers are a plane's, and may leave a far background out); what it leaves
        # unexplained in the nearer part of the background is the parallax of a translation.
        rotation = Rotation.align_vectors(b0[use], b1[use])[0]  # R b1 ~ b0: after -> before
        residual = _pixels_apart(rotation.as_matrix(), b0, b1, k)
        fit = residual < 1.0
        if fit.sum() >= 8:
            rotation = Rotation.align_vectors(b0[fit], b1[fit])[0]
            residual = _pixels_apart(rotation.as_matrix(), b0, b1, k)
        parallax = float(np.percentile(residual, PARALLAX_PERCENTILE)) / self.scale
        matrix = rotation.as_matrix()
        direction, feet, turn = np.zeros(3), {}, None
        if self.requested in ("moving", "auto") and parallax > PARALLAX_PIXELS / 2:
            turn, direction, feet = self._travel(p0, p1, k, before_boxes, before_ids, matrix)
        return _Step(matrix, direction, float(np.degrees(rotation.magnitude())), pixels, parallax, feet,
                     moving_rotation=turn)

    def _travel(self, p0: np.ndarray, p1: np.ndarray, k: np.ndarray, boxes: np.ndarray, ids: np.ndarray,
                rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
        """Essential matrix -> (after -> before rotation, unit travel in the before camera,
        background depth at unit baseline near each person's feet)."""
        import cv2

        essential, inliers = cv2.findEssentialMat(p0, p1, k, cv2.RANSAC, 0.999, 1.0)
        if essential is None or essential.shape != (3, 3) or inliers.sum() < 12:
            return rotation, np.zeros(3), {}
        _, r, t, pose_ok = cv2.recoverPose(essential, p0, p1, k, mask=inliers.copy())
        use = pose_ok[:, 0] > 0
        if use.sum() < 12:
            return rotation, np.zeros(3), {}
        # x_after = r x_before + t: the after camera's centre in the before camera is -r^T t.
        centre = -(r.T @ t[:, 0])
        first = k @ np.hstack((np.eye(3), np.zeros((3, 1))))
        second = k @ np.hstack((r, t))
        points = cv2.triangulatePoints(first, second, p0[use].T, p1[use].T)
        depth = points[2] / points[3]
        pixels = p0[use]
        feet: dict[int, float] = {}
        for (x1, y1, x2, y2), track in zip(boxes * self.scale, ids):
            tall = y2 - y1
            near = ((pixels[:, 0] > x1 - 0.5 * tall) & (pixels[:, 0] < x2 + 0.5 * tall)
                    & (pixels[:, 1] > y2 - 0.15 * tall) & (pixels[:, 1] < y2 + 0.25 * tall) & (depth > 0))
            if near.sum() >= 3 and track >= 0:
                feet[int(track)] = float(np.median(depth[near]))
        return r.T, centre / max(np.linalg.norm(centre), 1e-12), feet

    def finish(self, person_depths: dict[int, dict[int, float]] | None = None) -> CameraMotion:
        """The motion of every frame added. person_depths: track id -> {position: depth of
        the body (metres, camera z)}, for a moving camera's scale."""
        from scipy.spatial.transform import Rotation, Slerp

        count = self.count
        if self.requested == "static" or count == 0:
            return CameraMotion.identity(count, self.requested)
        if self._pending is not None:  # the last frame is always solved
            position, image, boxes, ids = self._pending
            self._keyframe(position, self._grey(image), boxes, ids)
            self._pending = None
        keys = np.array(self.keyframes, np.int64)
        degrees = np.array([s.degrees for s in self.steps])
        pixels = np.array([s.pixels for s in self.steps])
        parallax = np.array([s.parallax for s in self.steps])
        static = bool(np.all((degrees < STATIC_DEGREES) & (pixels < STATIC_PIXELS)))
        model = self.requested
        if model == "auto":
            moving = len(parallax) and float(np.median(parallax)) > PARALLAX_PIXELS
            model = "static" if static else "moving" if moving else "rotating"
        if model == "static" or len(keys) < 2:
            motion = CameraMotion.identity(count, self.requested)
            return CameraMotion(**{**motion.__dict__, "keyframes": keys, "step_degrees": degrees,
                                   "step_pixels": pixels, "parallax_pixels": parallax})
        chained = [np.eye(3)]
        turn = np.eye(3)
        for step in self.steps:
            own = step.moving_rotation if model == "moving" and step.moving_rotation is not None else step.rotation
            turn = own if step.solved else turn  # constant turning speed over a gap
            chained.append(chained[-1] @ turn)
        failed = sum(not step.solved for step in self.steps)
        rotations = Slerp(keys, Rotation.from_matrix(np.stack(chained)))(np.arange(count)).as_matrix()
        centres = np.zeros((count, 3))
        warnings: list[str] = []
        if failed:
            warnings.append(f"camera motion: {failed} of {len(self.steps)} keyframe steps had too little "
                            "background to follow (the people fill the frame, or it is dark or blurred); "
                            "the camera was assumed to keep turning as before over them.")
        source = ""
        if model == "moving":
            key_centres, source, more = self._centres(chained, person_depths or {})
            warnings += more
            centres = np.stack([np.interp(np.arange(count), keys, key_centres[:, a]) for a in range(3)], axis=1)
        return CameraMotion(model, self.requested, rotations, centres, keys, degrees, pixels, parallax,
                            source, tuple(warnings))

    def _centres(self, chained: list[np.ndarray], person_depths: dict[int, dict[int, float]]
                 ) -> tuple[np.ndarray, str, list[str]]:
        """Chain the unit travels with a metric length each: per step, the median over the
        people of (their body's depth) / (the background's depth near their feet at unit
        baseline); steps without one take the median of the others."""
        lengths = np.full(len(self.steps), np.nan)
        for s, step in enumerate(self.steps):
            at = int(self.keyframes[s])
            ratios = [person_depths[t][at] / d for t, d in step.feet_depths.items()
                      if at in person_depths.get(t, {}) and d > 0]
            if ratios and np.linalg.norm(step.direction) > 0:
                lengths[s] = float(np.median(ratios))
        known = np.isfinite(lengths)
        warnings = []
        if not known.any():
            lengths[:] = 0.0
            source = "none: no background near the people's feet; the camera's position is left at the start"
            warnings.append("camera model 'moving': no metric scale found (no background near any "
                            "person's feet); camera translation set to zero.")
        else:
            lengths[~known] = float(np.median(lengths[known]))
            source = f"people's depths against the background near their feet ({int(known.sum())} of {len(lengths)} steps)"
        centres = [np.zeros(3)]
        for s, step in enumerate(self.steps):
            centres.append(centres[-1] + chained[s] @ (lengths[s] * step.direction))
        return np.stack(centres), source, warnings


def _bearings(points: np.ndarray, k_inv: np.ndarray) -> np.ndarray:
    """(n, 2) pixels -> (n, 3) unit rays."""
    rays = np.hstack((points, np.ones((len(points), 1)))) @ k_inv.T
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def _pixels_apart(rotation: np.ndarray, b0: np.ndarray, b1: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Pixels between each before-point and its after-point turned back by `rotation`."""
    turned = b1 @ rotation.T @ k.T
    seen = b0 @ k.T
    return np.linalg.norm(turned[:, :2] / turned[:, 2:] - seen[:, :2] / seen[:, 2:], axis=1)
