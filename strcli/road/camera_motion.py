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
docs/world.md. `auto` chooses `moving` over `rotating` on windows of `WINDOW_STEPS` keyframe
steps (one every `WINDOW_STRIDE`), not on single steps: over one step a sideways travel's
parallax is within the flow's noise, and a floor's is a turn (a roll and a pan explain it),
so it lives in the few far points (a wall); over a window it grows with the baseline while
the noise does not. The camera is `moving` when the background, once the window's best
rotation is out, still moves by more than `WINDOW_PARALLAX` keyframe pixels (its
`WINDOW_PARALLAX_PERCENTILE`th percentile, the median over the windows in which the camera
moved). Each window's steps are solved for a travel only when its parallax could make the
camera `moving` (over half that); a still window is not measured.

Conventions: camera frame x right, y down, z forward (metres); `rotations[p]` takes a
direction of frame p's camera into the first frame's camera, `centres[p]` is frame p's
camera centre in the first frame's camera (metres), so X_0 = R_p X_p + c_p.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from strcli.body.camera import Intrinsics
from strcli.config import CAMERA_MODELS
from strcli.road.two_view import bearings, floor_plane, pixels_apart, relative_pose

if TYPE_CHECKING:
    from scipy.spatial.transform import Rotation

KEYFRAME_RATE = 10.0  # keyframes per second of video (every 3rd frame at 30 fps)
KEYFRAME_SIZE = 480  # keyframes' longest side, pixels (640: 3 times the cost, docs/performance.md)
STATIC_DEGREES = 0.05  # a step turning less is no turn ...
STATIC_PIXELS = 0.25  # ... when its background also moves less than this (median, full-size px)
PARALLAX_PERCENTILE = 80  # a step's parallax: this percentile of its background's motion left after the rotation
PLAUSIBLE_HEIGHT = (0.3, 30.0)  # m: a camera height outside this warns that the moving camera's scale is doubtful
WINDOW_PARALLAX = 2.0  # auto: moving when a window's background moves more once its rotation is out (keyframe px)
WINDOW_PARALLAX_PERCENTILE = 90  # ... this percentile of it (the far tenth to a fifth shows a truck), median over windows
CORNERS = 400  # background corners followed per keyframe step (at most)
FLOOR_CORNERS = 200  # ... and fainter ones added under the people's feet for a travel's window
LK_ITERATIONS = 20  # Lucas-Kanade's iterations per pyramid level (at most)
LK_WINDOW = 11  # Lucas-Kanade's window for a keyframe step, shrunk pixels (15: twice the flow's cost, no better)
LK_WINDOW_TRAVEL = 15  # ... for a travel's window (11: its direction 3 times as wrong, docs/performance.md)
BOX_MARGIN = 0.1  # a box is masked with this fraction of its size around it
WINDOW_STEPS = 4  # moving: keyframe steps between the two views that give a travel's direction
WINDOW_STRIDE = 4  # ... one such window ending every this many keyframe steps (and at the end; 2: 1.3 times the cost)
FLOOR_ABOVE_FEET = 0.15  # the floor is sought below the people's feet, from this share of their height up
FLOOR_ROWS = 2 / 3  # ... or, without people, in the image below this share of its height
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
    window_parallax: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (W,) auto: each window's, keyframe px

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
    parallax: float  # PARALLAX_PERCENTILE of the motion left after the rotation, full-size pixels
    solved: bool = True  # False: too few background points; the previous step's turn is repeated
    moving_rotation: np.ndarray | None = None  # (3, 3) the turn solved together with a travel
    rays: tuple[np.ndarray, np.ndarray] | None = None  # (n, 3), (n, 3) unit rays before, after: kept until its window


class _Window(NamedTuple):
    """Two keyframes `first` < `last` (indices into the keyframes) solved for a travel."""

    first: int
    last: int
    direction: np.ndarray  # (3,) unit travel in the first keyframe's camera
    below_feet: np.ndarray  # (m, 3) background triangulated at unit travel below the people's feet, first camera
    feet: dict[int, np.ndarray]  # track id -> (3,) ray (z = 1) through the bottom centre of its box


class CameraMotionEstimator:
    """Feed every processed frame in order (`add`), then `finish`. Holds `WINDOW_STEPS` + 1
    shrunk grey keyframes, the rays of the steps since the last window (`WINDOW_STRIDE` at
    most) and per-keyframe numbers, whatever the video's length."""

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
        self._closed = 0  # steps before this one belong to a window already decided
        self.window_parallax: list[float] = []  # auto: each measured window's, keyframe pixels
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
        if step is not None and (len(self.steps) % self.stride == 0 or final):
            self._close_window()

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
        none = _Step(np.eye(3), 0.0, 0.0, 0.0, solved=False)
        p0, p1 = self._follow(index, before, before_boxes, after, after_boxes)
        if len(p0) < 12:
            return none
        pixels = float(np.median(np.linalg.norm(p1 - p0, axis=1))) / self.scale
        rotation, residual, rays = self._best_rotation(p0, p1)
        parallax = float(np.percentile(residual, PARALLAX_PERCENTILE)) / self.scale
        return _Step(rotation.as_matrix(), float(np.degrees(rotation.magnitude())), pixels, parallax,
                     rays=rays if self.requested in ("auto", "moving") else None)

    def _best_rotation(self, p0: np.ndarray, p1: np.ndarray) -> tuple[Rotation, np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """p0, p1: (n, 2) matched background points, shrunk pixels -> the pure rotation that best
        aligns them (scipy `Rotation`, after -> before), each point's distance from its match
        turned back by it (n,) shrunk pixels, and their unit rays (n, 3), (n, 3)."""
        import cv2
        from scipy.spatial.transform import Rotation

        b0, b1 = bearings(p0, self._k_inv), bearings(p1, self._k_inv)
        _, inliers = cv2.findHomography(p0, p1, cv2.RANSAC, 1.0, maxIters=2000, confidence=0.999)
        use = inliers[:, 0].astype(bool) if inliers is not None and inliers.sum() >= 8 else np.ones(len(p0), bool)
        # Refit on every point the rotation explains within a pixel (the homography's
        # inliers are a plane's, and may leave a far background out); what it leaves
        # unexplained in the nearer part of the background is the parallax of a translation.
        rotation = Rotation.align_vectors(b0[use], b1[use])[0]  # R b1 ~ b0: after -> before
        residual = pixels_apart(rotation.as_matrix(), b0, b1, self._k)
        fit = residual < 1.0
        if fit.sum() >= 8:
            rotation = Rotation.align_vectors(b0[fit], b1[fit])[0]
            residual = pixels_apart(rotation.as_matrix(), b0, b1, self._k)
        return rotation, residual, (b0, b1)

    def _close_window(self) -> None:
        """The keyframe steps since the last window are decided: `auto` measures the parallax of
        the window ending now; under `moving`, or when that parallax could make the camera
        `moving`, each step's turn is solved again with a travel and the window's travel is
        solved. The steps' rays are dropped."""
        travel = self.requested == "moving"
        first = len(self.keyframes) - len(self._recent)  # the window's first keyframe
        still = all(s.degrees < STATIC_DEGREES and s.pixels < STATIC_PIXELS for s in self.steps[first:])
        if self.requested == "auto" and not still:
            parallax = self._window_parallax(first)
            if parallax is not None:
                self.window_parallax.append(parallax)
                travel = parallax > WINDOW_PARALLAX / 2
        for index in range(self._closed, len(self.steps)):
            step = self.steps[index]
            if travel and step.rays is not None:
                step = step._replace(moving_rotation=self._turn_with_travel(step))
            self.steps[index] = step._replace(rays=None)
        self._closed = len(self.steps)
        if travel:
            self._travel_window()

    def _window_parallax(self, first: int) -> float | None:
        """The background's motion between keyframe `first` (the oldest kept) and the newest, once
        their best pure rotation is out: its WINDOW_PARALLAX_PERCENTILE, keyframe pixels; None:
        too few points followed."""
        (before, before_boxes, _), (after, after_boxes, _) = self._recent[0], self._recent[-1]
        p0, p1 = self._follow(first, before, before_boxes, after, after_boxes)
        if len(p0) < 12:
            return None
        return float(np.percentile(self._best_rotation(p0, p1)[1], WINDOW_PARALLAX_PERCENTILE))

    def _turn_with_travel(self, step: _Step) -> np.ndarray:
        """(3, 3) a step's turn solved again together with a direction of travel (a translation
        leaks into the best pure rotation: a sideways step looks like a pan), started from its
        pure turn; the pure turn when that fails."""
        solved = relative_pose(*step.rays, step.rotation, self._k[0, 0], self._hint)
        if solved is None:
            return step.rotation
        self._hint = solved[1]
        return solved[0]

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
        b0, b1 = bearings(p0, self._k_inv), bearings(p1, self._k_inv)
        solved = relative_pose(b0, b1, turn, self._k[0, 0], self._hint)
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
        elif self._closed < len(self.steps):
            self._close_window()  # the video ended on a keyframe between two windows
        keys = np.array(self.keyframes, np.int64)
        degrees = np.array([s.degrees for s in self.steps])
        pixels = np.array([s.pixels for s in self.steps])
        parallax = np.array([s.parallax for s in self.steps])
        windows = np.array(self.window_parallax)
        solved = np.array([s.solved for s in self.steps], bool)
        failed = int((~solved).sum())
        # still: every step that saw the background (an unseen one says nothing either way)
        static = bool(np.all(((degrees < STATIC_DEGREES) & (pixels < STATIC_PIXELS)) | ~solved))
        model = self.requested
        if model == "auto":
            moving = len(windows) and float(np.median(windows)) > WINDOW_PARALLAX
            model = "static" if static else "moving" if moving else "rotating"
        if model == "static" or len(keys) < 2:
            motion = CameraMotion.identity(count, self.requested)
            return replace(motion, keyframes=keys, step_degrees=degrees, step_pixels=pixels, parallax_pixels=parallax,
                           window_parallax=windows, warnings=_unseen_warnings(failed, len(self.steps)))
        chained = [np.eye(3)]
        turn = np.eye(3)
        for step in self.steps:
            own = step.moving_rotation if model == "moving" and step.moving_rotation is not None else step.rotation
            turn = own if step.solved else turn  # constant turning speed over a gap
            chained.append(chained[-1] @ turn)
        rotations = Slerp(keys, Rotation.from_matrix(np.stack(chained)))(np.arange(count)).as_matrix()
        centres = np.zeros((count, 3))
        warnings = list(_unseen_warnings(failed, len(self.steps), still=False))
        source, height = "", float("nan")
        if model == "moving":
            key_centres, height, source, more = self._centres(chained, person_depths or {})
            warnings += more
            centres = np.stack([np.interp(np.arange(count), keys, key_centres[:, a]) for a in range(3)], axis=1)
        return CameraMotion(model, self.requested, rotations, centres, keys, degrees, pixels, parallax,
                            source, tuple(warnings), height, windows)

    def _centres(self, chained: list[np.ndarray], person_depths: dict[int, dict[int, float]]
                 ) -> tuple[np.ndarray, float, str, list[str]]:
        """Keyframe centres (K, 3) in the first camera, metres; the camera height that set their
        scale; its source; warnings. The camera's height above the floor is the median over
        windows and people of (the feet's depth) x (the floor's normal . the ray through the
        feet); each window's travel is that height over its unit-travel height, spread evenly
        over its steps; each step takes the mean of the windows covering it."""
        floors = [floor_plane(w.below_feet) for w in self.windows]
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
                       "feet); camera translation set to zero. If the camera does not travel, pass "
                       "--camera rotating; trained bodies whose feet rest on the floor give the scale.")
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
        low, high = PLAUSIBLE_HEIGHT
        warnings = [] if low <= height <= high else [
            f"camera model 'moving': the people's depths put the camera {height:.2f} m above the floor, outside "
            f"{low:g}-{high:g} m: the scale of its path is likely wrong (the body network's depths, or no floor "
            "under the people); its direction holds. If the camera does not travel, pass --camera rotating."]
        return np.vstack((np.zeros(3), np.cumsum(travel, axis=0))), height, source, warnings


def _unseen_warnings(failed: int, steps: int, still: bool = True) -> tuple[str, ...]:
    """The manifest's warning when `failed` of a camera's `steps` keyframe steps saw too little
    background to follow: none when every step saw it. `still`: the camera was taken as still
    (none saw it, or the others saw no motion); else it was assumed to keep turning over them."""
    if not failed:
        return ()
    if still and failed == steps:
        return (f"camera motion: none of the {steps} keyframe steps had background to follow (the people fill "
                "the frame, or it is dark or blurred): the camera is taken as still; if it moved, force "
                "--camera rotating or --camera moving.",)
    then = ("the others saw a still camera, so it is taken as still throughout" if still else
            "the camera was assumed to keep turning as before over them")
    return (f"camera motion: {failed} of {steps} keyframe steps had too little background to follow (the people "
            f"fill the frame, or it is dark or blurred); {then}.",)
