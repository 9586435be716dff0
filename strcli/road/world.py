"""One world per video: every person's motion on the floor, the camera's path through it.

The world frame (docs/world.md):
- y up, against gravity: the floor's normal (`strcli.road.grounding`), or the first
  frame's camera up when no foot contact is usable (the manifest then warns);
- the floor is y = 0;
- heading from the first frame's camera: x is its right and -z its forward direction,
  both laid on the floor (as a glTF camera looks down -z);
- origin on the floor under the first person's pelvis at their first frame (the track
  that starts first; the lowest id among those that start together).
Metres. A point X_p of frame p's camera is X_w = A (R_p X_p + c_p - o), with (R_p, c_p) the
camera motion and A (rows x, y, z) and o (the origin) in the first frame's camera.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from strcli.body.camera import Intrinsics
from strcli.config import CAMERA_FILE
from strcli.road.camera_motion import CameraMotion
from strcli.road.grounding import FOOT_JOINTS, Floor, find_floor
from strcli.utils.errors import output_error

# World (y up) -> AMASS (z up, y forward): (x, y, z) -> (x, -z, y).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass(frozen=True)
class TrackInCamera:
    """What the world stage needs of one person; N rows, the camera frame of each row."""

    track_id: int
    positions: np.ndarray  # (N,) int64 processed-frame positions (rows of the camera motion)
    times: np.ndarray  # (N,) float64 seconds
    global_orient: np.ndarray  # (N, 3) axis-angle, camera frame
    joints3d: np.ndarray  # (N, 24, 3) SMPL joints, camera frame, metres
    rest_pelvis: np.ndarray  # (3,) SMPL's root joint in the rest pose (its mean shape)
    sole_heights: np.ndarray  # (4,) FOOT_JOINTS' heights above the sole in the rest pose, metres


@dataclass(frozen=True)
class TrackInWorld:
    """One person in the world frame; N rows."""

    track_id: int
    global_orient: np.ndarray  # (N, 3) axis-angle: the root's orientation in the world
    transl: np.ndarray  # (N, 3) SMPL translation in the world (add to SMPL's output), metres
    joints3d: np.ndarray  # (N, 24, 3) SMPL joints in the world, metres
    contacts: np.ndarray  # (N, 4) bool, FOOT_JOINTS on the floor


@dataclass(frozen=True)
class WorldFrame:
    """The world of one video, given in the first frame's camera."""

    axes: np.ndarray  # (3, 3) rows: the world's x, y (up), z in the first camera
    origin: np.ndarray  # (3,) the world's origin in the first camera, metres
    floor: Floor

    def points(self, points_first_camera: np.ndarray) -> np.ndarray:
        """(..., 3) first-camera points -> world points."""
        return (points_first_camera - self.origin) @ self.axes.T


@dataclass(frozen=True)
class World:
    frame: WorldFrame
    tracks: list[TrackInWorld]
    camera_rotations: np.ndarray  # (P, 3, 3) camera -> world, per processed frame
    camera_positions: np.ndarray  # (P, 3) camera centre in the world, metres
    warnings: tuple[str, ...] = ()


def world_frame(floor: Floor, first_pelvis: np.ndarray | None) -> WorldFrame:
    """The axes from the floor and the first camera's heading; the origin under `first_pelvis`
    (first-camera metres; None: under the first camera)."""
    up = floor.normal / np.linalg.norm(floor.normal)
    forward = np.array([0.0, 0.0, 1.0])
    back = -(forward - (forward @ up) * up)
    if np.linalg.norm(back) < 1e-6:  # the first camera looks straight down: heading from its up
        back = np.array([0.0, 1.0, 0.0]) - up[1] * up
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    above = first_pelvis if first_pelvis is not None else np.zeros(3)
    origin = above - floor.height(above) * up
    return WorldFrame(np.stack((right, up, back)), origin, floor)


def build_world(tracks: list[TrackInCamera], camera: CameraMotion) -> World:
    """Every person of a video in one world (module docstring). Raises ValueError when a
    track's positions fall outside the camera motion."""
    first_camera = []
    for track in tracks:
        if len(track.positions) and int(track.positions.max()) >= len(camera):
            raise ValueError(f"track {track.track_id}: frame position {int(track.positions.max())} "
                             f"beyond the camera motion's {len(camera)} frames")
        r = camera.rotations[track.positions]  # (N, 3, 3)
        first_camera.append(np.einsum("nij,nkj->nki", r, track.joints3d) + camera.centres[track.positions][:, None])
    feet = [j[:, list(FOOT_JOINTS)] for j in first_camera]
    floor, contacts = find_floor(feet, [t.times for t in tracks], [t.sole_heights for t in tracks])
    warnings = []
    if floor.source == "camera":
        warnings.append("no usable foot contact (sitting, jumping or feet out of view?): gravity is the "
                        "first frame's camera up and the floor passes under the lowest feet; the world "
                        "is tilted by the camera's pitch and roll.")
    order = sorted(range(len(tracks)), key=lambda k: (int(tracks[k].positions[0]), tracks[k].track_id))
    first_pelvis = first_camera[order[0]][0, 0] if tracks else None
    frame = world_frame(floor, first_pelvis)
    placed = []
    from scipy.spatial.transform import Rotation

    for track, joints, touching in zip(tracks, first_camera, contacts):
        world_joints = frame.points(joints)
        root = Rotation.from_matrix(frame.axes @ camera.rotations[track.positions]
                                    @ Rotation.from_rotvec(track.global_orient.astype(np.float64)).as_matrix())
        placed.append(TrackInWorld(track.track_id, root.as_rotvec(), world_joints[:, 0] - track.rest_pelvis,
                                   world_joints, touching))
    camera_rotations = np.einsum("ij,njk->nik", frame.axes, camera.rotations)
    return World(frame, placed, camera_rotations, frame.points(camera.centres), tuple(warnings))


def lock_feet(track: TrackInWorld, sole_heights: np.ndarray) -> tuple[TrackInWorld, float, float]:
    """`--foot-lock`: the root is moved so that feet in contact do not slide. Over each step
    where a foot joint touches at both ends, the body is moved back by the mean slide of the
    touching joints (the correction builds up and stays, so the body never jumps), and the
    touching soles' height above the floor is taken out, faded linearly over the frames
    without contact. sole_heights: (4,) FOOT_JOINTS' heights above the sole at rest (metres).
    Returns the moved track and the foot slide before and after (cm per contact frame)."""
    before = foot_slide(track.joints3d, track.contacts)
    n = len(track.transl)
    feet = track.joints3d[:, list(FOOT_JOINTS)]  # (N, 4, 3)
    both = track.contacts[1:] & track.contacts[:-1]  # (N-1, 4)
    step = np.diff(feet, axis=0)  # (N-1, 4, 3)
    # each step's mean slide of the joints touching at both ends (0 where none), summed up
    touching_both = both.sum(axis=1, keepdims=True)  # (N-1, 1)
    slide = (step * both[..., None]).sum(axis=1) / np.maximum(touching_both, 1)  # (N-1, 3)
    shift = np.zeros((n, 3))
    shift[1:, [0, 2]] = -np.cumsum(slide[:, [0, 2]], axis=0)
    touching = track.contacts.any(axis=1)
    if touching.any():
        above = feet[:, :, 1] - sole_heights[None]  # (N, 4) each sole's height above the floor
        error = np.where(touching, np.where(track.contacts, above, 0).sum(1) / np.maximum(track.contacts.sum(1), 1), 0)
        rows = np.arange(n)
        shift[:, 1] = -np.interp(rows, rows[touching], error[touching])
    moved = track.joints3d + shift[:, None]
    locked = TrackInWorld(track.track_id, track.global_orient, track.transl + shift, moved, track.contacts)
    return locked, before, foot_slide(moved, track.contacts)


def foot_slide(joints3d: np.ndarray, contacts: np.ndarray) -> float:
    """Mean horizontal travel (cm) of a foot joint between consecutive frames in which it
    touches the floor; 0 without such frames. joints3d: (N, 24, 3) world; contacts (N, 4)."""
    feet = joints3d[:, list(FOOT_JOINTS)][:, :, [0, 2]]
    both = contacts[1:] & contacts[:-1]
    if not both.any():
        return 0.0
    return float(np.linalg.norm(np.diff(feet, axis=0), axis=2)[both].mean() * 100)


def place_in_world(inputs: list[TrackInCamera], camera: CameraMotion, foot_lock: bool
                   ) -> tuple[World, list[tuple[float, float | None]]]:
    """One model's tracks in the video's world; with `foot_lock`, each track's root is moved
    so its feet in contact do not slide. Returns the World (its tracks replaced by the locked
    ones) and per track (slide as written, slide before the lock or None), cm per contact frame."""
    world = build_world(inputs, camera)
    slides, placed = [], []
    for track, person in zip(world.tracks, inputs):
        if foot_lock:
            locked, before, after = lock_feet(track, person.sole_heights)
            placed.append(locked)
            slides.append((after, before))
        else:
            placed.append(track)
            slides.append((foot_slide(track.joints3d, track.contacts), None))
    return replace(world, tracks=placed), slides


def write_camera_file(folder: Path, camera: CameraMotion, world: World | None, frames: np.ndarray,
                      times: np.ndarray, intrinsics: Intrinsics) -> None:
    """OUT/<stem>/camera.npz (docs/world.md): per processed frame the camera's rotation
    (camera -> world, (P, 3, 3)) and position (P, 3) metres in the world, the file frame and
    time of each row (frames (P,) int, times (P,) seconds), the intrinsics (3, 3) and the camera model chosen. Without a world (no
    person), rotations and positions are relative to the first frame's camera."""
    rotations = world.camera_rotations if world is not None else camera.rotations
    positions = world.camera_positions if world is not None else camera.centres
    arrays = {"rotation": rotations.astype(np.float64), "position": positions.astype(np.float64),
              "frames": frames.astype(np.int64), "times": times.astype(np.float64),
              "intrinsics": intrinsics.matrix, "image_size": np.array([intrinsics.width, intrinsics.height]),
              "model": np.array(camera.model), "requested": np.array(camera.requested),
              "relative_rotation": camera.rotations, "relative_position": camera.centres,
              "scale_source": np.array(camera.scale_source), "camera_height": np.array(camera.camera_height),
              "frame": np.array("world" if world is not None else "first camera")}
    if world is not None:
        arrays.update(world_axes=world.frame.axes, world_origin=world.frame.origin,
                      floor_source=np.array(world.frame.floor.source))
    path = folder / CAMERA_FILE
    try:
        np.savez(path, **arrays)
    except OSError as err:
        raise output_error(err, path) from err
