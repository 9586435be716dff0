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
  `Rotation.align_vectors`);
- for `moving`, a translation leaks into that pure rotation (a sideways step looks like a
  pan), so each step's turn is solved again together with the direction of travel (least
  squares on the points' distances from their epipolar planes, a few Levenberg-Marquardt steps,
  started from the pure turn); the direction of travel itself comes from wider windows
  (`WINDOW_STEPS` keyframe steps, 0.4 s, one every `WINDOW_STRIDE` steps) solved the same
  way, where the background is also triangulated at unit travel. The metric scale comes
  from the people: the floor under their feet (a plane through the triangulated points
  below them) and the depth of each person's feet (the body network's) give the camera's
  height above the floor in metres (median); each window's length is that height over its
  own height at unit travel (docs/world.md: approximate, and measured);
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

from collections import deque
from dataclasses import dataclass, replace
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
CORNERS = 400  # background corners followed per keyframe step (at most)
FLOOR_CORNERS = 200  # ... and fainter ones added under the people's feet for a travel's window
LK_ITERATIONS = 20  # Lucas-Kanade's iterations per pyramid level (at most)
LK_WINDOW = 11  # Lucas-Kanade's window for a keyframe step, shrunk pixels (15: twice the flow's cost, no better)
LK_WINDOW_TRAVEL = 15  # ... for a travel's window (11: its direction 3 times as wrong, docs/performance.md)
BOX_MARGIN = 0.1  # a box is masked with this fraction of its size around it
WINDOW_STEPS = 4  # moving: keyframe steps between the two views that give a travel's direction
WINDOW_STRIDE = 4  # ... one such window ending every this many keyframe steps (and at the end; 2: 1.3 times the cost)
TURN_AGREEMENT = 2.0  # degrees: a turn solved with a travel may differ this much from the pure turn
FLOOR_ABOVE_FEET = 0.15  # the floor is sought below the people's feet, from this share of their height up
FLOOR_ROWS = 2 / 3  # ... or, without people, in the image below this share of its height
FLOOR_TOLERANCE = 0.05  # a point is on the floor within this share of its distance (unit-travel noise)
MIN_FLOOR_POINTS = 8
FIT_POINTS = 150  # background points a turn-and-travel fit starts from
FIT_PIXELS = 2.0  # ... and the distance from their epipolar planes within which it keeps them
ROBUST_POINTS = 300  # ... the robust fit after it keeps at most this many of them (docs/performance.md)
ROBUST_SCALE = 0.5  # pixels: the robust fit's soft L1 loss is quadratic within about this
FIT_STEPS = 20  # a fit's Levenberg-Marquardt steps, at most (10 or 50: the dolly's errors the same to 0.002)
FIT_TOLERANCE = 1e-6  # ... stopping when one lowers its loss by less than this share
HINT_SHARE = 0.3  # the last travel is a good start when the mean squared distance is under this share of FIT_PIXELS^2
FLOOR_QUALITY = 1e-4  # goodFeaturesToTrack's quality level for the fainter corners of the floor


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
    camera_height: float = float("nan")  # moving: the camera's height above the floor that set the scale, metres

    @classmethod
    def identity(cls, count: int, requested: str = "static") -> CameraMotion:
        empty = np.zeros(0)
        return cls("static", requested, np.repeat(np.eye(3)[None], count, 0), np.zeros((count, 3)),
                   np.zeros(1 if count else 0, np.int64), empty, empty, empty)

    def __len__(self) -> int:
        return len(self.rotations)


class _Step(NamedTuple):
    rotation: np.ndarray  # (3, 3) this keyframe's camera -> the previous keyframe's (Wahba)
    degrees: float
    pixels: float  # median background motion, full-size pixels
    parallax: float  # median motion left after the rotation, full-size pixels
    solved: bool = True  # False: too few background points; the previous step's turn is repeated
    moving_rotation: np.ndarray | None = None  # (3, 3) the turn solved together with a travel


class _Window(NamedTuple):
    """Two keyframes `first` < `last` (indices into the keyframes) solved for a travel."""

    first: int
    last: int
    direction: np.ndarray  # (3,) unit travel in the first keyframe's camera
    below_feet: np.ndarray  # (m, 3) background triangulated at unit travel below the people's feet, first camera
    feet: dict[int, np.ndarray]  # track id -> (3,) ray (z = 1) through the bottom centre of its box


class CameraMotionEstimator:
    """Feed every processed frame in order (`add`), then `finish`. Holds `WINDOW_STEPS` + 1
    shrunk grey keyframes and per-keyframe numbers, whatever the video's length."""

    def __init__(self, intrinsics: Intrinsics, fps: float, requested: str = "auto",
                 every: int | None = None, size: int = KEYFRAME_SIZE, window: int = WINDOW_STEPS,
                 stride: int = WINDOW_STRIDE) -> None:
        if requested not in CAMERA_MODELS:
            raise ValueError(f"camera model {requested!r}: one of {CAMERA_MODELS}")
        self.intrinsics, self.requested = intrinsics, requested
        self.every = every or max(1, round((fps or KEYFRAME_RATE) / KEYFRAME_RATE))
        self.scale = min(1.0, size / max(intrinsics.width, intrinsics.height))
        self.window, self.stride = window, stride
        self.count = 0
        self._recent: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque(maxlen=window + 1)  # (grey, boxes, ids)
        self._pending: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None  # a non-keyframe, kept for the end
        self.keyframes: list[int] = []
        self.steps: list[_Step] = []
        self.windows: list[_Window] = []
        self._hint: np.ndarray | None = None  # the last travel's direction: where the next fit starts
        self._corners: dict[int, np.ndarray] = {}  # keyframe index -> its background corners (a window reuses them)
        k = intrinsics.matrix.copy()
        k[:2] *= self.scale
        self._k, self._k_inv = k, np.linalg.inv(k)

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

        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)  # grey first: a third of the pixels to shrink
        if self.scale < 1.0:
            size = (round(grey.shape[1] * self.scale), round(grey.shape[0] * self.scale))
            # Exact halves first (INTER_AREA's 2 x 2 mean, its fast path), then the rest: the
            # same area average within rounding, at half the cost of one non-integer INTER_AREA
            # (docs/performance.md).
            while grey.shape[1] >= 2 * size[0] and grey.shape[0] >= 2 * size[1]:
                grey = cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2), interpolation=cv2.INTER_AREA)
            if grey.shape[1::-1] != size:
                grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        return grey

    def _keyframe(self, position: int, grey: np.ndarray, boxes: np.ndarray, ids: np.ndarray,
                  final: bool = False) -> None:
        step = self._solve(len(self.keyframes) - 1, *self._recent[-1][:2], grey, boxes) if self._recent else None
        if step is not None:
            self.steps.append(step)
        self.keyframes.append(position)
        self._recent.append((grey, boxes, ids))
        # a travel is seen: solve it over a wider baseline, every `stride` keyframes and at the end
        if step is not None and step.moving_rotation is not None and (len(self.steps) % self.stride == 0 or final):
            self._travel_window()

    def _mask(self, shape: tuple[int, ...], boxes: np.ndarray) -> np.ndarray:
        mask = np.full(shape[:2], 255, np.uint8)
        for x1, y1, x2, y2 in boxes * self.scale:
            mx, my = BOX_MARGIN * (x2 - x1), BOX_MARGIN * (y2 - y1)
            mask[max(0, int(y1 - my)):max(0, int(np.ceil(y2 + my))), max(0, int(x1 - mx)):max(0, int(np.ceil(x2 + mx)))] = 0
        return mask

    def _follow(self, index: int, before: np.ndarray, before_boxes: np.ndarray, after: np.ndarray,
                after_boxes: np.ndarray, floor_top: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Background corners of `before` (keyframe `index`) and where they are in `after`:
        (n, 2), (n, 2) shrunk pixels. floor_top: a row (shrunk pixels) below which fainter
        corners are added too (a floor is often smooth; its points set a moving camera's scale).
        A keyframe's corners are found once: a travel's window starts from its first step's."""
        import cv2

        mask = self._mask(before.shape, before_boxes)
        if index not in self._corners:
            self._corners = {k: v for k, v in self._corners.items() if k > index - self.window}  # those still in reach
            self._corners[index] = cv2.goodFeaturesToTrack(before, maxCorners=CORNERS, qualityLevel=0.001,
                                                           minDistance=9, mask=mask, blockSize=7)
        corners = self._corners[index]
        if floor_top is not None:
            mask[:max(0, int(floor_top))] = 0
            faint = cv2.goodFeaturesToTrack(before, maxCorners=FLOOR_CORNERS, qualityLevel=FLOOR_QUALITY, minDistance=5,
                                            mask=mask, blockSize=7)
            if faint is not None:
                corners = faint if corners is None else np.concatenate((corners, faint))
        if corners is None or len(corners) < 12:
            return np.zeros((0, 2)), np.zeros((0, 2))
        size = LK_WINDOW if floor_top is None else LK_WINDOW_TRAVEL
        window = {"winSize": (size, size), "maxLevel": 3,
                  "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, LK_ITERATIONS, 0.03)}
        moved, ok, _ = cv2.calcOpticalFlowPyrLK(before, after, corners, None, **window)
        back, ok_back, _ = cv2.calcOpticalFlowPyrLK(after, before, moved, None, **window)
        good = (ok[:, 0] == 1) & (ok_back[:, 0] == 1) & (np.linalg.norm(back - corners, axis=2)[:, 0] < 0.5)
        p0, p1 = corners[good, 0].astype(np.float64), moved[good, 0].astype(np.float64)
        inside = self._mask(after.shape, after_boxes)
        h, w = after.shape
        xi, yi = np.clip(p1[:, 0].astype(int), 0, w - 1), np.clip(p1[:, 1].astype(int), 0, h - 1)
        keep = (inside[yi, xi] > 0) & (p1[:, 0] >= 0) & (p1[:, 0] < w) & (p1[:, 1] >= 0) & (p1[:, 1] < h)
        return p0[keep], p1[keep]

    def _solve(self, index: int, before: np.ndarray, before_boxes: np.ndarray, after: np.ndarray,
               after_boxes: np.ndarray) -> _Step:
        import cv2
        from scipy.spatial.transform import Rotation

        none = _Step(np.eye(3), 0.0, 0.0, 0.0, solved=False)
        p0, p1 = self._follow(index, before, before_boxes, after, after_boxes)
        if len(p0) < 12:
            return none
        pixels = float(np.median(np.linalg.norm(p1 - p0, axis=1))) / self.scale
        k = self._k
        b0, b1 = _bearings(p0, self._k_inv), _bearings(p1, self._k_inv)
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
        turn = None
        if self.requested == "moving" or (self.requested == "auto" and parallax > PARALLAX_PIXELS / 2):
            # A translation leaks into the best pure rotation (a sideways step looks like a
            # pan): the turn is solved again together with the direction of travel.
            solved = _relative_pose(b0, b1, matrix, k[0, 0], self._hint)
            turn = solved[0] if solved is not None else matrix
            if solved is not None:
                self._hint = solved[1]
        return _Step(matrix, float(np.degrees(rotation.magnitude())), pixels, parallax, moving_rotation=turn)

    def _travel_window(self) -> None:
        """The travel between the oldest kept keyframe and the newest (up to `window` steps
        apart): its direction, and the floor at unit travel under the people of the first one."""
        last = len(self.keyframes) - 1
        first = last - (len(self._recent) - 1)
        (before, before_boxes, before_ids), (after, after_boxes, _) = self._recent[0], self._recent[-1]
        turn = np.eye(3)
        for step in self.steps[first:last]:
            turn = turn @ (step.moving_rotation if step.moving_rotation is not None else step.rotation)
        boxes = before_boxes * self.scale
        tall = boxes[:, 3] - boxes[:, 1]
        top = float(np.min(boxes[:, 3] - FLOOR_ABOVE_FEET * tall)) if len(boxes) else FLOOR_ROWS * after.shape[0]
        p0, p1 = self._follow(first, before, before_boxes, after, after_boxes, top)
        if len(p0) < 12:
            return
        b0, b1 = _bearings(p0, self._k_inv), _bearings(p1, self._k_inv)
        solved = _relative_pose(b0, b1, turn, self._k[0, 0], self._hint)
        if solved is None:
            return
        rotation, direction, inliers = solved
        # Triangulated at unit travel (X = depth0 * b0 = depth1 * R b1 + direction), in the first camera.
        rays = np.stack((b0[inliers], -(b1[inliers] @ rotation.T)), axis=2)  # (n, 3, 2)
        normal = np.einsum("nij,nik->njk", rays, rays)  # least squares per point, the 2 x 2 normal equations
        depths = np.linalg.solve(normal, np.einsum("nij,i->nj", rays, direction)[..., None])[..., 0]  # (n, 2)
        points = depths[:, :1] * b0[inliers]
        pixels = p0[inliers]
        front = (depths > 0).all(axis=1)
        if np.median(depths[:, 0]) < 0:  # the travel's sign: the scene is in front of the camera
            direction, points, front = -direction, -points, (depths < 0).all(axis=1)
        feet = {int(track): self._k_inv @ np.array([(x1 + x2) / 2, y2, 1.0])  # z = 1: per metre of depth
                for (x1, _, x2, y2), track in zip(boxes, before_ids) if track >= 0}
        self.windows.append(_Window(first, last, direction, points[front & (pixels[:, 1] > top)], feet))

    def finish(self, person_depths: dict[int, dict[int, float]] | None = None) -> CameraMotion:
        """The motion of every frame added. person_depths: track id -> {position: depth of
        the person's feet (metres, camera z; reconstruct: the mean of SMPL's ankle and foot
        joints)}, for a moving camera's scale."""
        from scipy.spatial.transform import Rotation, Slerp

        count = self.count
        if self.requested == "static" or count == 0:
            return CameraMotion.identity(count, self.requested)
        if self._pending is not None:  # the last frame is always solved
            position, image, boxes, ids = self._pending
            self._keyframe(position, self._grey(image), boxes, ids, final=True)
            self._pending = None
        elif self.steps and self.steps[-1].moving_rotation is not None and len(self.steps) % self.stride:
            self._travel_window()  # the video ended on a keyframe between two windows
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
            return replace(motion, keyframes=keys, step_degrees=degrees, step_pixels=pixels, parallax_pixels=parallax)
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
        source, height = "", float("nan")
        if model == "moving":
            key_centres, height, source, more = self._centres(chained, person_depths or {})
            warnings += more
            centres = np.stack([np.interp(np.arange(count), keys, key_centres[:, a]) for a in range(3)], axis=1)
        return CameraMotion(model, self.requested, rotations, centres, keys, degrees, pixels, parallax,
                            source, tuple(warnings), height)

    def _centres(self, chained: list[np.ndarray], person_depths: dict[int, dict[int, float]]
                 ) -> tuple[np.ndarray, float, str, list[str]]:
        """Keyframe centres (K, 3) in the first camera, metres; the camera height that set their
        scale; its source; warnings. The camera's height above the floor is the median over
        windows and people of (the feet's depth) x (the floor's normal . the ray through the
        feet); each window's travel is that height over its unit-travel height, spread evenly
        over its steps; each step takes the mean of the windows covering it."""
        floors = [_floor_plane(w.below_feet) for w in self.windows]
        normals = [chained[w.first] @ f[0] for w, f in zip(self.windows, floors) if f is not None]
        heights = []
        if normals:  # one floor direction for the video (in the first camera): the windows' median
            normal = np.median(normals, axis=0)
            normal /= np.linalg.norm(normal)
            unit = []
            for w, f in zip(self.windows, floors):
                own = chained[w.first].T @ normal  # the floor's normal in this window's first camera
                unit.append(float(np.median(w.below_feet[f[2]] @ own)) if f is not None else np.nan)
                at = self.keyframes[w.first]
                heights += [person_depths[t][at] * float(ray @ own) for t, ray in w.feet.items()
                            if person_depths.get(t, {}).get(at, 0.0) > 0 and ray @ own > 0]
        steps = len(self.steps)
        # metres per keyframe step of each window (nan: no floor seen), at the people's camera height
        height = float(np.median(heights)) if heights else np.nan
        per_step = np.array([height / h / (w.last - w.first) if h > 0 else np.nan for w, h in zip(self.windows, unit)]
                            ) if heights else np.zeros(0)
        seen = int(np.isfinite(per_step).sum())
        if not seen:
            source = ("none: no floor seen under the people at unit travel; the camera's position is left "
                      "at the start")
            warning = ("camera model 'moving': no metric scale found (no floor seen under any person's "
                       "feet); camera translation set to zero.")
            return np.zeros((steps + 1, 3)), float("nan"), source, [warning]
        per_step[~np.isfinite(per_step)] = np.nanmedian(per_step)  # a window without a floor: the median
        travel, covered = np.zeros((steps, 3)), np.zeros(steps)
        for w, length in zip(self.windows, per_step):
            travel[w.first:w.last] += chained[w.first] @ w.direction * length
            covered[w.first:w.last] += 1
        known = covered > 0
        travel[known] /= covered[known, None]
        if known.any():  # steps no window covers: the median step
            travel[~known] = np.median(travel[known], axis=0)
        source = (f"camera height {height:.2f} m from {len(heights)} people-frames (their feet's depths against the "
                  f"floor triangulated under their feet); travel from {len(self.windows)} windows of up to "
                  f"{self.window} keyframe steps ({seen} saw the floor), {int(known.sum())} of {steps} steps covered")
        return np.vstack((np.zeros(3), np.cumsum(travel, axis=0))), height, source, []


def _around(direction: np.ndarray) -> np.ndarray:
    """(3,) unit -> (3, 3) rows: the direction and two unit vectors across it."""
    across = np.linalg.svd(direction[None])[2][1:]
    return np.vstack((direction, across))


def _relative_pose(b0: np.ndarray, b1: np.ndarray, rotation: np.ndarray, focal: float,
                   hint: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Two views' turn and direction of travel together (5 degrees of freedom): least squares
    (Levenberg-Marquardt, `_fit`) on each point's distance from its epipolar plane, in pixels,
    starting from `rotation` (3, 3) after -> before with the travel along `hint` (the last
    travel, when it explains most points) or else along each camera axis, then again on the
    points the best start explains within FIT_PIXELS (at most ROBUST_POINTS of them, a seeded
    sample). b0, b1: (n, 3) unit
    rays (the last fit robust: a soft L1 loss, half a pixel). Returns (rotation, unit direction with an arbitrary sign, (n,) bool inliers within
    a pixel), or None when the turn strays over TURN_AGREEMENT degrees from `rotation` or too
    few points agree."""
    sample = np.random.default_rng(0).permutation(len(b0))[:FIT_POINTS]  # enough for 5 unknowns, and fast
    best, basis, cost = np.zeros(5), np.eye(3), np.inf
    starts = [_around(hint)] if hint is not None else []
    for k, around in enumerate(starts + [np.roll(np.eye(3), -axis, axis=0) for axis in range(3)]):
        if k == 1 and hint is not None and cost < HINT_SHARE * len(sample) * FIT_PIXELS ** 2:
            break  # the last travel's direction was a good start: the camera axes are not tried
        x = _fit(np.zeros(5), b0[sample], b1[sample], rotation, focal, around, robust=False)
        fun = _epipolar_pixels(x, b0[sample], b1[sample], rotation, focal, around)
        robust = float(np.minimum(fun ** 2, FIT_PIXELS ** 2).sum())  # outliers count as FIT_PIXELS each
        if robust < cost:
            best, basis, cost = x, around, robust
    near = np.flatnonzero(np.abs(_epipolar_pixels(best, b0, b1, rotation, focal, basis)) < FIT_PIXELS)
    if len(near) < 12:
        return None
    near = near[np.sort(np.random.default_rng(1).permutation(len(near))[:ROBUST_POINTS])]
    best = _fit(best, b0[near], b1[near], rotation, focal, basis, robust=True)
    inliers = np.abs(_epipolar_pixels(best, b0, b1, rotation, focal, basis)) < 1.0
    if np.degrees(np.linalg.norm(best[:3])) > TURN_AGREEMENT or inliers.sum() < 12:
        return None
    travel = basis.T @ np.array([1.0, *best[3:]])
    return rotation @ _rodrigues(best[:3]), travel / np.linalg.norm(travel), inliers


def _fit(params: np.ndarray, b0: np.ndarray, b1: np.ndarray, rotation: np.ndarray, focal: float,
         basis: np.ndarray, robust: bool) -> np.ndarray:
    """`_epipolar_pixels`' parameters (5,) refined from `params`: Levenberg-Marquardt, damped
    Gauss-Newton steps each kept only when it lowers the loss, at most FIT_STEPS of them, under
    squares or, robust, under the soft L1 loss with a scale of ROBUST_SCALE pixels (scipy's
    `least_squares` soft_l1), by reweighting each step (weights 1 / sqrt(1 + (r / scale)^2)).
    b0, b1: (n, 3) unit rays. Our few numpy steps instead of scipy's `least_squares`: its
    per-call overhead was most of the fits' time, and the dolly's errors are the same to 0.002
    (docs/performance.md)."""
    def loss(residuals: np.ndarray) -> float:
        if not robust:
            return float(residuals @ residuals)
        return float(np.sum(np.sqrt(1 + (residuals / ROBUST_SCALE) ** 2) - 1))

    residuals = _epipolar_pixels(params, b0, b1, rotation, focal, basis)
    cost, damping = loss(residuals), 1e-3
    for _ in range(FIT_STEPS):
        jacobian = _epipolar_jacobian(params, b0, b1, rotation, focal, basis)  # (n, 5)
        weights = 1 / np.sqrt(1 + (residuals / ROBUST_SCALE) ** 2) if robust else np.ones(len(residuals))
        normal = jacobian.T @ (weights[:, None] * jacobian)
        gradient = jacobian.T @ (weights * residuals)
        while damping < 1e6:
            # Marquardt's scaling (the diagonal), kept invertible when a parameter has no effect
            trial = params - np.linalg.solve(normal + damping * np.diag(np.maximum(np.diag(normal), 1e-9)), gradient)
            trial_residuals = _epipolar_pixels(trial, b0, b1, rotation, focal, basis)
            trial_cost = loss(trial_residuals)
            if trial_cost < cost:
                params, residuals, damping = trial, trial_residuals, damping / 10
                break
            damping *= 10
        else:
            break  # no step lowers the loss: a minimum
        if cost - trial_cost < FIT_TOLERANCE * cost:
            cost = trial_cost
            break
        cost = trial_cost
    return params


def _skew(vector: np.ndarray) -> np.ndarray:
    """(3,) v -> (3, 3) the matrix of v x."""
    x, y, z = vector
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def _rodrigues(vector: np.ndarray) -> np.ndarray:
    """(3,) rotation vector -> (3, 3) matrix (a small turn, in the residuals' inner loop)."""
    angle = float(np.sqrt(vector @ vector))
    cross = _skew(vector)
    if angle < 1e-12:
        return np.eye(3) + cross
    return np.eye(3) + np.sin(angle) / angle * cross + (1 - np.cos(angle)) / angle ** 2 * cross @ cross


def _epipolar_pixels(params: np.ndarray, b0: np.ndarray, b1: np.ndarray, rotation: np.ndarray, focal: float,
                     basis: np.ndarray) -> np.ndarray:
    """params: a turn (rotation vector) after `rotation`, and (u, v), the travel being
    basis[0] + u basis[1] + v basis[2] -> (n,) each before-ray's distance (pixels) from the
    plane through the travel and its after-ray turned back."""
    across = _skew(basis.T @ np.array([1.0, params[3], params[4]]))  # travel x ...
    normals = b1 @ (across @ rotation @ _rodrigues(params[:3])).T  # ... each after-ray turned back
    return np.einsum("ij,ij->i", b0, normals) * focal / np.maximum(np.sqrt(np.einsum("ij,ij->i", normals, normals)),
                                                                   1e-12)


_AXES_SKEW = np.array([[[0.0, 0, 0], [0, 0, -1], [0, 1, 0]], [[0, 0, 1], [0, 0, 0], [-1, 0, 0]],
                       [[0, -1, 0], [1, 0, 0], [0, 0, 0]]])  # (3, 3, 3) _skew of each axis


def _epipolar_jacobian(params: np.ndarray, b0: np.ndarray, b1: np.ndarray, rotation: np.ndarray, focal: float,
                       basis: np.ndarray) -> np.ndarray:
    """(n, 5) derivatives of `_epipolar_pixels` by its parameters (the turn's taken about the
    current turn: exact at no turn, close for the small turns a fit is allowed)."""
    turn = rotation @ _rodrigues(params[:3])
    across = _skew(basis.T @ np.array([1.0, params[3], params[4]]))  # travel x
    turned = b1 @ turn.T  # (n, 3)
    normals = turned @ across.T  # (n, 3)
    # the five derivatives of the normals' matrix (across @ turn), (5, 3, 3), applied to every ray at once
    changes = np.concatenate((across @ turn @ _AXES_SKEW, [_skew(basis[1]) @ turn, _skew(basis[2]) @ turn]))
    changes = (b1 @ changes.reshape(15, 3).T).reshape(-1, 5, 3)  # (n, 5, 3)
    length = np.sqrt(np.einsum("ij,ij->i", normals, normals))[:, None]  # (n, 1)
    along = np.einsum("ij,ikj->ik", b0, changes)  # (n, 5)
    stretch = np.einsum("ij,ikj->ik", normals, changes)  # (n, 5)
    seen = np.einsum("ij,ij->i", b0, normals)[:, None]
    return focal * (along / length - seen * stretch / length ** 3)


def _floor_plane(points: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float, np.ndarray] | None:
    """(n, 3) points in a camera -> the floor through them: its unit normal pointing down
    (towards the floor, within 60 degrees of the camera's down) and the camera's height above
    it, by RANSAC (inliers within FLOOR_TOLERANCE of their distance) and least squares, and
    the (n,) bool inliers; None when fewer than MIN_FLOOR_POINTS agree."""
    if len(points) < MIN_FLOOR_POINTS:
        return None
    rng = np.random.default_rng(seed)
    band = FLOOR_TOLERANCE * np.linalg.norm(points, axis=1)
    a, b, c = points[np.stack([rng.choice(len(points), 3, replace=False) for _ in range(200)])].transpose(1, 0, 2)
    normals = np.cross(b - a, c - a)  # (200, 3) the planes through 200 random triples
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12) * np.where(normals[:, 1:2] < 0, -1, 1)
    inliers = np.abs(points @ normals.T - np.sum(a * normals, axis=1)) < band[:, None]  # (n, 200)
    inliers &= normals[:, 1] >= 0.5  # the floor is below the camera, not a wall
    best = inliers[:, int(np.argmax(inliers.sum(axis=0)))]
    if best.sum() < MIN_FLOOR_POINTS:
        return None
    centre = points[best].mean(axis=0)
    normal = np.linalg.svd(points[best] - centre)[2][2]
    normal *= 1 if normal[1] >= 0 else -1
    height = float(centre @ normal)
    return (normal, height, best) if normal[1] >= 0.5 and height > 0 else None


def _bearings(points: np.ndarray, k_inv: np.ndarray) -> np.ndarray:
    """(n, 2) pixels -> (n, 3) unit rays."""
    rays = np.hstack((points, np.ones((len(points), 1)))) @ k_inv.T
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def _pixels_apart(rotation: np.ndarray, b0: np.ndarray, b1: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Pixels between each before-point and its after-point turned back by `rotation`."""
    turned = b1 @ rotation.T @ k.T
    seen = b0 @ k.T
    return np.linalg.norm(turned[:, :2] / turned[:, 2:] - seen[:, :2] / seen[:, 2:], axis=1)
