"""Two-view geometry for the camera-motion stage (`strcli.road.camera_motion`): pure numpy
on bearing rays, no state.

- `relative_pose`: two views' turn and direction of travel solved together (5 degrees of
  freedom) by a robust least squares on each point's distance from its epipolar plane, in
  pixels; our own few Levenberg-Marquardt steps (`_fit`) instead of scipy's `least_squares`,
  whose per-call overhead was most of the moving camera's cost (docs/performance.md);
- `floor_plane`: a RANSAC plane through triangulated background points (the floor under the
  people, for a moving camera's metric scale);
- `bearings`, `pixels_apart`: pixels to unit rays, and how far a turn leaves matched rays
  apart in pixels.

Conventions as in `strcli.road.camera_motion`: camera x right, y down, z forward; a
rotation takes the later view's directions into the earlier view's.
"""

from __future__ import annotations

import numpy as np

TURN_AGREEMENT = 2.0  # degrees: a turn solved with a travel may differ this much from the pure turn
FLOOR_TOLERANCE = 0.05  # a point is on the floor within this share of its distance (unit-travel noise)
MIN_FLOOR_POINTS = 8
FIT_POINTS = 150  # background points a turn-and-travel fit starts from
FIT_PIXELS = 2.0  # ... and the distance from their epipolar planes within which it keeps them
ROBUST_POINTS = 300  # ... the robust fit after it keeps at most this many of them (docs/performance.md)
ROBUST_SCALE = 0.5  # pixels: the robust fit's soft L1 loss is quadratic within about this
FIT_STEPS = 20  # a fit's Levenberg-Marquardt steps, at most (10 or 50: the dolly's errors the same to 0.002)
FIT_TOLERANCE = 1e-6  # ... stopping when one lowers its loss by less than this share
HINT_SHARE = 0.3  # the last travel is a good start when the mean squared distance is under this share of FIT_PIXELS^2


def _around(direction: np.ndarray) -> np.ndarray:
    """(3,) unit -> (3, 3) rows: the direction and two unit vectors across it."""
    across = np.linalg.svd(direction[None])[2][1:]
    return np.vstack((direction, across))


def relative_pose(b0: np.ndarray, b1: np.ndarray, rotation: np.ndarray, focal: float,
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


def floor_plane(points: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float, np.ndarray] | None:
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


def bearings(points: np.ndarray, k_inv: np.ndarray) -> np.ndarray:
    """(n, 2) pixels -> (n, 3) unit rays."""
    rays = np.hstack((points, np.ones((len(points), 1)))) @ k_inv.T
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def pixels_apart(rotation: np.ndarray, b0: np.ndarray, b1: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Pixels between each before-point and its after-point turned back by `rotation`."""
    turned = b1 @ rotation.T @ k.T
    seen = b0 @ k.T
    return np.linalg.norm(turned[:, :2] / turned[:, 2:] - seen[:, :2] / seen[:, 2:], axis=1)
