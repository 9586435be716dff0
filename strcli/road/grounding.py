"""Foot contacts and the floor: where every person of a video stands.

Input: every person's SMPL joints in the first frame's camera (the camera's own motion
taken out, `strcli.road.camera_motion`). A foot joint (SMPL's ankles 7, 8 and feet 10, 11)
is a contact candidate when it is nearly still (under `CONTACT_SPEED`). Each candidate is
moved down to the sole (by that joint's height above the lowest vertex of the person's
rest body), and the floor is the plane RANSAC finds through the soles of *all* people's
candidates (3 cm inlier band; a plane scores the sum over people of the squared share of
their candidates it holds, so it is the plane most people stand on wholly, not the one
through most soles), refitted by least squares (SVD) on its inliers; gravity is its
normal. When the soles lie along a line (one person walking straight ahead), the plane
through that line closest to the first camera's up is taken; when they cover a spot, the
camera's up. Contacts are then the candidates whose sole is within `CONTACT_HEIGHT` of it.

No usable contact (fewer than `MIN_CONTACTS` soles on one plane: sitting, jumping, legs out
of view): gravity is the first camera's up (-y) and the floor passes under the lowest soles
(their 2nd percentile): `Floor.source` says "camera", and the caller warns.

A person without a single contact on a floor found from the others' (`ground_along_rays`)
is put on it by one depth factor along the camera's rays, the body network's least certain
quantity: their pelvis moves from r to s r (r its offset from that frame's camera centre),
which keeps its image in place. s sets the `RAY_PERCENTILE`th percentile over the frames of
their lowest sole's height to 0 (the frames their feet are down: they may jump or lift a
foot), then the median height of the frames resting within `CONTACT_HEIGHT` of the floor
at that s (a low percentile alone is pulled down by noise and feet dipping through the
floor). Refused (the network's depth kept, and the reason given) for a short track, feet
out of view, a lying body, a camera level with the pelvis, or a factor outside
`DEPTH_FACTOR_RANGE`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FOOT_JOINTS = (7, 8, 10, 11)  # SMPL: left ankle, right ankle, left foot, right foot
CONTACT_SPEED = 0.4  # m/s: a foot joint slower than this (over 5 frames) may be on the floor
CONTACT_HEIGHT = 0.05  # m: ... when its sole is this close to the floor
FLOOR_BAND = 0.03  # m: RANSAC inlier distance
MIN_CONTACTS = 20  # soles on the plane below which the floor is not trusted
SPREAD = 0.15  # m: the soles' spread across their main direction for a plane (else a line)
CAMERA_UP = np.array([0.0, -1.0, 0.0])  # the camera frame's up (y points down)
# Grounding along the rays (docs/world.md, "A person without contacts"); measured there.
RAY_PERCENTILE = 20.0  # the lowest sole's height over the frames first set to 0 at this percentile
MIN_RAY_FRAMES = 15  # frames with the feet in view below which the network's depth is kept
DEPTH_FACTOR_RANGE = (0.5, 2.0)  # a factor outside: not a depth error (another floor, a screen, a poster)
MIN_RAY_DROP = 0.3  # m: the pelvis at least this far below (or above) the camera along gravity
LYING_TILT = 60.0  # degrees: a torso (pelvis -> neck) tilted more from up, in most frames, is lying
NECK = 12  # SMPL joint
BOTTOM_EDGE = 0.005  # share of the image height: a person's box ending this near the bottom edge cuts the feet off
GROUNDINGS = ("contacts", "ray", "network")  # how a track's height was set: its own contacts, the rays, none


@dataclass(frozen=True)
class Floor:
    """A plane n . X = offset in the first frame's camera (metres); n points up."""

    normal: np.ndarray  # (3,) unit
    offset: float
    source: str  # "contacts" (a plane), "contacts-line" (a line + the camera's up), "camera" (fallback)
    contacts_used: int  # soles on the plane

    def height(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) -> (...,) metres above the floor."""
        return points @ self.normal - self.offset


def foot_speeds(feet: np.ndarray, times: np.ndarray) -> np.ndarray:
    """feet: (N, F, 3) positions, times: (N,) seconds -> (N, F) speed (m/s) of the positions
    averaged over 5 frames (a network's frame-to-frame jitter is not motion), the larger of
    the steps before and after each frame (a lone frame: infinite)."""
    from scipy.ndimage import uniform_filter1d

    n = len(feet)
    if n < 2:
        return np.full(feet.shape[:2], np.inf)
    feet = uniform_filter1d(feet, size=min(5, n), axis=0, mode="nearest")
    step = np.linalg.norm(np.diff(feet, axis=0), axis=2) / np.maximum(np.diff(times), 1e-6)[:, None]
    before = np.vstack((step[:1], step))
    after = np.vstack((step, step[-1:]))
    return np.maximum(before, after)


def fit_floor(soles: list[np.ndarray], seed: int = 0) -> Floor | None:
    """soles: per person (M_k, 3) candidate sole points in the first camera -> the floor,
    or None when there are fewer than MIN_CONTACTS on one plane."""
    points = np.concatenate([s.reshape(-1, 3) for s in soles]) if soles else np.zeros((0, 3))
    if len(points) < MIN_CONTACTS:
        return None
    rng = np.random.default_rng(seed)
    counts = np.array([len(s.reshape(-1, 3)) for s in soles])
    person = np.repeat(np.arange(len(soles)), counts)  # (M,) whose sole each point is
    weight = np.minimum(1.0, counts / MIN_CONTACTS)  # (P,) a person with few candidates counts less
    best, best_score = np.zeros(len(points), bool), (0.0, 0)
    for _ in range(300):
        a, b, c = points[rng.choice(len(points), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        length = np.linalg.norm(normal)
        if length < 1e-9:
            continue
        normal /= length
        inliers = np.abs((points - a) @ normal) < FLOOR_BAND
        share = np.bincount(person[inliers], minlength=len(soles)) / np.maximum(counts, 1)  # (P,)
        score = (round(float((weight * share**2).sum()), 9), int(inliers.sum()))
        if score > best_score:
            best, best_score = inliers, score
    if best.sum() < MIN_CONTACTS:
        # Every triple was degenerate or disagreed: the soles lie along a line or at a spot.
        best = np.abs((points - np.median(points, 0)) @ CAMERA_UP) < 3 * FLOOR_BAND
        if best.sum() < MIN_CONTACTS:
            return None
    return _refit(points[best])


def _refit(points: np.ndarray) -> Floor:
    centre = points.mean(axis=0)
    _, spread, axes = np.linalg.svd(points - centre, full_matrices=False)
    spread = spread / np.sqrt(len(points))  # metres (standard deviations)
    if spread[1] >= SPREAD:
        normal, source = axes[2], "contacts"
    elif spread[0] >= SPREAD:  # a line: the plane through it nearest the camera's up
        line = axes[0]
        normal = CAMERA_UP - (CAMERA_UP @ line) * line
        normal /= np.linalg.norm(normal)
        source = "contacts-line"
    else:
        normal, source = CAMERA_UP.copy(), "contacts-line"
    if normal @ CAMERA_UP < 0:
        normal = -normal
    return Floor(normal, float(centre @ normal), source, len(points))


def fallback_floor(soles: np.ndarray) -> Floor:
    """(M, 3) every sole point of the video -> the camera's up, under the lowest soles."""
    heights = soles.reshape(-1, 3) @ CAMERA_UP
    offset = float(np.percentile(heights, 2)) if len(heights) else 0.0
    return Floor(CAMERA_UP.copy(), offset, "camera", 0)


def find_floor(feet: list[np.ndarray], times: list[np.ndarray], sole_heights: list[np.ndarray]
               ) -> tuple[Floor, list[np.ndarray]]:
    """feet: per person (N_k, 4, 3) FOOT_JOINTS in the first camera; times: (N_k,) seconds;
    sole_heights: (4,) each foot joint's height above the sole in the rest pose (metres).
    Returns the floor and per person (N_k, 4) bool contacts."""
    speeds = [foot_speeds(f, t) for f, t in zip(feet, times)]
    up = CAMERA_UP
    floor = None
    for _ in range(2):  # the soles hang below the joints along gravity: once with the camera's up, once with the floor's
        soles = [f - h[None, :, None] * up for f, h in zip(feet, sole_heights)]
        candidates = [s[v < CONTACT_SPEED] for s, v in zip(soles, speeds)]
        floor = fit_floor(candidates)
        if floor is None:
            break
        up = floor.normal
    if floor is None:
        every = np.concatenate([(f - h[None, :, None] * CAMERA_UP).reshape(-1, 3)
                                for f, h in zip(feet, sole_heights)]) if feet else np.zeros((0, 3))
        floor = fallback_floor(every)
    return floor, [touching(floor, f, v, h) for f, v, h in zip(feet, speeds, sole_heights)]


def touching(floor: Floor, feet: np.ndarray, speeds: np.ndarray, sole_heights: np.ndarray) -> np.ndarray:
    """feet: (N, 4, 3) FOOT_JOINTS in the first camera, speeds: (N, 4) m/s (`foot_speeds`),
    sole_heights: (4,) metres -> (N, 4) bool: still, with the sole within CONTACT_HEIGHT of the floor."""
    return (speeds < CONTACT_SPEED) & (np.abs(floor.height(feet) - sole_heights[None]) < CONTACT_HEIGHT)


@dataclass(frozen=True)
class RayGrounding:
    """How a track without contacts was put on the floor along the camera's rays, or why not."""

    factor: float  # s: the pelvis's distance from the camera times this; 1.0 when refused
    shift: np.ndarray  # (N, 3) first-camera metres to add to every joint of each frame; zeros when refused
    refused: str  # why the network's depth is kept ("" when moved)


def ground_along_rays(joints: np.ndarray, centres: np.ndarray, floor: Floor, sole_heights: np.ndarray,
                      feet_in_view: np.ndarray | None = None, percentile: float = RAY_PERCENTILE) -> RayGrounding:
    """One person on `floor` by one depth factor (module docstring). joints: (N, 24, 3) SMPL
    joints in the first camera, metres; centres: (N, 3) each row's camera centre there;
    sole_heights: (4,) FOOT_JOINTS' heights above the sole at rest; feet_in_view: (N,) bool,
    the frames whose foot joints are inside the image (None: all)."""
    n = len(joints)

    def keep(why: str) -> RayGrounding:
        return RayGrounding(1.0, np.zeros((n, 3)), why)

    if n < MIN_RAY_FRAMES:
        return keep(f"{n} frames, under {MIN_RAY_FRAMES}")
    seen = np.ones(n, bool) if feet_in_view is None else np.asarray(feet_in_view, bool)
    if seen.sum() < MIN_RAY_FRAMES:
        return keep(f"feet out of view in {n - int(seen.sum())} of {n} frames")
    tilt = lying_tilt(joints[seen], floor.normal)
    if tilt > LYING_TILT:
        return keep(f"lying (torso {tilt:.0f} deg from upright): a lying body rests on what it lies on")
    offsets = joints[:, 0] - centres  # (N, 3) the pelvis from its frame's camera centre
    drop = offsets[seen] @ floor.normal  # (M,) metres; < 0: the camera above the pelvis
    side = np.sign(np.median(drop))
    if (side * drop).min() < MIN_RAY_DROP:
        return keep(f"the camera comes within {100 * np.abs(drop).min():.0f} cm of the pelvis's height "
                    f"(under {100 * MIN_RAY_DROP:.0f} cm): its depth barely moves it up or down")
    lowest = (floor.height(joints[seen][:, list(FOOT_JOINTS)]) - sole_heights[None]).min(axis=1)  # (M,) metres
    # Each frame's lowest sole reaches the floor at s_t = 1 - lowest / drop; the height is linear in
    # s with the slope `drop`, so the heights' percentile q is 0 at the s_t's percentile q (camera
    # above the pelvis: heights fall as s grows) or 100 - q (camera below).
    factors = 1.0 - lowest / drop
    rough = float(np.percentile(factors, percentile if side < 0 else 100 - percentile))
    # Then the frames whose lowest sole is on the floor at that factor (within CONTACT_HEIGHT):
    # their median, which a few frames of feet dipping through the floor do not pull.
    resting = np.abs(drop * (rough - factors)) < CONTACT_HEIGHT  # the height at `rough`: drop (rough - s_t)
    factor = float(np.median(factors[resting])) if resting.any() else rough
    low, high = DEPTH_FACTOR_RANGE
    if not low <= factor <= high:
        return keep(f"its depth would be x{factor:.2f}, outside {low:g}-{high:g}: not a depth error "
                    "(another floor, stairs, a screen?)")
    return RayGrounding(factor, (factor - 1.0) * offsets, "")


def feet_in_view(feet2d: np.ndarray, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """feet2d: (N, 4, 2) FOOT_JOINTS projected, pixels; boxes: (N, 4) the person's x1 y1 x2 y2
    -> (N,) bool: the frames whose foot joints fall inside the image and whose box ends
    above its bottom edge (a box cut by the edge: the network guesses feet it cannot see,
    often inside the image)."""
    inside = ((feet2d >= 0) & (feet2d < np.array([width, height]))).all(axis=(1, 2))
    return inside & (boxes[:, 3] < height * (1 - BOTTOM_EDGE))


def lying_tilt(joints: np.ndarray, up: np.ndarray) -> float:
    """(N, 24, 3) joints, (3,) up -> the median angle (degrees) of the torso (pelvis -> neck) from up."""
    torso = joints[:, NECK] - joints[:, 0]
    cosine = torso @ up / np.maximum(np.linalg.norm(torso, axis=1), 1e-9)
    return float(np.degrees(np.arccos(np.clip(np.median(cosine), -1.0, 1.0))))
