"""One world per video: every person's motion on the floor, the camera's path through it.

The world frame (docs/world.md):
- y up, against gravity: the floor's normal (`strcli.road.grounding`), or the first
  frame's camera up when no foot contact is usable (the manifest then warns);
- the floor is y = 0;
- heading from the first frame's camera: x is its right and -z its forward direction,
  both laid on the floor (as a glTF camera looks down -z);
- origin on the floor under the first person's pelvis at their first frame (the track
  that starts first; the lowest id among those that start together);
- a person without foot contact, on a floor found from the others', moved onto it along
  the camera's rays (`ground_track`; each track's `Grounding` says how its height was set).
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
from strcli.road.grounding import (
    FOOT_JOINTS,
    Floor,
    find_floor,
    foot_speeds,
    ground_along_rays,
    touching,
)
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
    body_pose: np.ndarray | None = None  # (N, 69) the network's local rotations (axis-angle): --foot-lock's leg IK
    feet_in_view: np.ndarray | None = None  # (N,) bool: the foot joints inside the image (None: every frame)


@dataclass(frozen=True)
class Grounding:
    """How one track's height above the floor was set: "contacts" (its own feet found the
    floor with the others'), "ray" (no contact: its depth along the camera's rays times
    `factor`, `strcli.road.grounding.ground_along_rays`) or "network" (the body network's
    depth kept; `note` says why)."""

    method: str  # one of strcli.road.grounding.GROUNDINGS
    factor: float = 1.0  # the depth factor s (1.0 but for "ray")
    note: str = ""
    shift: float = 0.0  # "ray": the pelvis's mean move along the rays, metres (< 0: nearer)


@dataclass(frozen=True)
class TrackInWorld:
    """One person in the world frame; N rows."""

    track_id: int
    global_orient: np.ndarray  # (N, 3) axis-angle: the root's orientation in the world
    transl: np.ndarray  # (N, 3) SMPL translation in the world (add to SMPL's output), metres
    joints3d: np.ndarray  # (N, 24, 3) SMPL joints in the world, metres
    contacts: np.ndarray  # (N, 4) bool, FOOT_JOINTS on the floor
    body_pose: np.ndarray | None = None  # (N, 69) the legs bent by --foot-lock's IK; None: the network's pose
    grounding: Grounding = Grounding("contacts")


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
    """Every person of a video in one world (module docstring): the floor from everyone's
    foot contacts, each track without one grounded along the camera's rays (`ground_track`),
    the world frame, each body in it. Raises ValueError when a track's positions fall
    outside the camera motion."""
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
        warnings.append("no usable foot contact (people sitting or jumping, feet out of view, or an untrained "
                        "body network, whose feet never rest): gravity is the first frame's camera up and "
                        "the floor passes under nearly all feet (their 2nd percentile); the world is tilted "
                        "by the camera's pitch and roll, and every person keeps the body network's depth. "
                        "The camera-frame keys are unaffected (`strcli export --frame camera`).")
    groundings = []
    for k, track in enumerate(tracks):
        first_camera[k], contacts[k], grounding = ground_track(track, first_camera[k], contacts[k], floor, camera)
        groundings.append(grounding)
    if floor.source != "camera":  # (on the fallback floor, the warning above says it for everyone)
        warnings += grounding_warnings(tracks, groundings)
    order = sorted(range(len(tracks)), key=lambda k: (int(tracks[k].positions[0]), tracks[k].track_id))
    first_pelvis = first_camera[order[0]][0, 0] if tracks else None
    frame = world_frame(floor, first_pelvis)
    placed = []
    from scipy.spatial.transform import Rotation

    for track, joints, touches, grounding in zip(tracks, first_camera, contacts, groundings):
        world_joints = frame.points(joints)
        root = Rotation.from_matrix(frame.axes @ camera.rotations[track.positions]
                                    @ Rotation.from_rotvec(track.global_orient.astype(np.float64)).as_matrix())
        placed.append(TrackInWorld(track.track_id, root.as_rotvec(), world_joints[:, 0] - track.rest_pelvis,
                                   world_joints, touches, grounding=grounding))
    camera_rotations = np.einsum("ij,njk->nik", frame.axes, camera.rotations)
    return World(frame, placed, camera_rotations, frame.points(camera.centres), tuple(warnings))


def ground_track(track: TrackInCamera, joints: np.ndarray, contacts: np.ndarray, floor: Floor,
                 camera: CameraMotion) -> tuple[np.ndarray, np.ndarray, Grounding]:
    """How one track stands on the floor. joints: (N, 24, 3) its joints in the first camera,
    metres; contacts: (N, 4) bool. Every track on the camera's fallback floor (no floor from
    anyone's contacts: nothing to put anyone on) keeps the network's depth ("network"), even
    where its feet rest on that floor (its contacts, which --foot-lock pins); on a floor found
    from contacts, a track with a contact is left as it is ("contacts"), and one without is
    moved along the camera's rays (`ground_along_rays`) and its contacts found again on the
    floor. Returns the joints, the contacts and how its height was set."""
    if floor.source == "camera":  # its feet may rest on this floor, but they did not find it
        return joints, contacts, Grounding("network", note="no floor from anyone's contacts")
    if contacts.any():
        return joints, contacts, Grounding("contacts")
    ray = ground_along_rays(joints, camera.centres[track.positions], floor, track.sole_heights, track.feet_in_view)
    if ray.refused:
        return joints, contacts, Grounding("network", note=ray.refused)
    moved = joints + ray.shift[:, None]
    feet = moved[:, list(FOOT_JOINTS)]
    mean_shift = float(np.linalg.norm(ray.shift, axis=1).mean()) * (1.0 if ray.factor >= 1 else -1.0)
    return moved, touching(floor, feet, foot_speeds(feet, track.times), track.sole_heights), \
        Grounding("ray", ray.factor, shift=mean_shift)


def grounding_warnings(tracks: list[TrackInCamera], groundings: list[Grounding]) -> list[str]:
    """The manifest's lines about the tracks without contacts on a floor found from others':
    which were moved along the camera's rays and by how much, which keep the network's depth and why."""
    moved = [f"{t.track_id} (depth x{g.factor:.2f}: {abs(g.shift):.2f} m {'farther' if g.shift >= 0 else 'nearer'})"
             for t, g in zip(tracks, groundings) if g.method == "ray"]
    lines = []
    if moved:
        lines.append(f"track{'s' if len(moved) > 1 else ''} {', '.join(moved)} had no foot contact: put on the "
                     "floor found from the others' feet by moving along the camera's rays (the body network's "
                     "depth times the factor).")
    for track, grounding in zip(tracks, groundings):
        if grounding.method == "network":
            lines.append(f"track {track.track_id} had no foot contact and keeps the body network's depth (it may "
                         f"float above the floor or sink below it): {grounding.note}.")
    return lines


# --foot-lock's leg IK (docs/world.md). SMPL joints of each leg: hip, knee, ankle, foot.
LEGS = ((1, 4, 7, 10), (2, 5, 8, 11))  # left, right; body_pose row = joint - 1
FADE_FRAMES = 4  # our choice: the pin fades in/out over this many frames around a contact (0.13 s at 30 fps)
MAX_REACH = 0.999  # the IK reaches at most this share of thigh + shin (a knee bent ~5 degrees), or the network's own


def lock_feet(track: TrackInWorld, sole_heights: np.ndarray, body_pose: np.ndarray | None = None
              ) -> tuple[TrackInWorld, float, float]:
    """`--foot-lock`: feet in contact do not slide. First the root: over each step where a
    foot joint touches at both ends, the body is moved back by the mean slide of the touching
    joints (the correction builds up and stays, so the body never jumps), and the touching
    soles' height above the floor is taken out, faded linearly over the frames without
    contact. Then, given the network's `body_pose` (N, 69) axis-angle, each leg's two-bone IK
    (`pin_ankles`) pins a touching ankle where its contact began, on the floor; the result's
    `body_pose` is then the corrected pose and its joints those of SMPL with it. Without
    `body_pose`, the root alone is moved. sole_heights: (4,) FOOT_JOINTS' heights above the
    sole at rest (metres). Returns the moved track and the foot slide before and after (cm
    per contact frame)."""
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
    pose = None
    if body_pose is not None:
        pose, moved = pin_ankles(moved, track.global_orient, body_pose, track.contacts, sole_heights)
    locked = replace(track, transl=track.transl + shift, joints3d=moved, body_pose=pose)
    return locked, before, foot_slide(moved, track.contacts)


def pin_offsets(ankle: np.ndarray, contact: np.ndarray, sole_height: float, fade: int = FADE_FRAMES) -> np.ndarray:
    """Where one ankle should go: ankle (N, 3) world positions, contact (N,) bool -> (N, 3)
    offsets (metres) to add. Through each run of contact frames the ankle is held where the
    run began, at `sole_height` above the floor (y = 0); within `fade` frames of a run the
    offset is interpolated linearly to 0 (or to the next run's), so the leg never jumps."""
    from scipy.ndimage import distance_transform_edt

    n = len(ankle)
    offset = np.zeros((n, 3))
    if not contact.any():
        return offset
    starts = np.flatnonzero(contact & ~np.concatenate(([False], contact[:-1])))
    ends = np.flatnonzero(contact & ~np.concatenate((contact[1:], [False]))) + 1
    for start, end in zip(starts, ends):
        lock = np.array([ankle[start, 0], sole_height, ankle[start, 2]])
        offset[start:end] = lock - ankle[start:end]
    far = distance_transform_edt(~contact) > fade  # frames the pin does not reach
    anchors = np.flatnonzero(contact | far)
    rows = np.arange(n)
    return np.stack([np.interp(rows, anchors, offset[anchors, k]) for k in range(3)], axis=1)


def pin_ankles(joints3d: np.ndarray, global_orient: np.ndarray, body_pose: np.ndarray, contacts: np.ndarray,
               sole_heights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leg IK: each touching ankle held by `pin_offsets` through a two-bone solve per frame.
    joints3d (N, 24, 3) world metres, SMPL's joints for global_orient (N, 3) and body_pose
    (N, 69) axis-angle; contacts (N, 4) FOOT_JOINTS; sole_heights (4,) metres. Per frame the
    knee bends about its own hinge to the pin's distance from the hip (on the side of the
    straight leg it was), then the leg turns by the least rotation onto the pin, so the
    knee keeps the bending plane and the swivel the network gave (its pole). The reach is
    clamped to MAX_REACH of the straight leg (or the network's own, when straighter): a leg
    is never over-extended, the ankle stops short of its pin instead. The ankle keeps its
    world orientation, so the foot (10, 11) moves with it. Returns the pose (N, 69) with new hip,
    knee and ankle rotations (others unchanged) and the joints (N, 24, 3) SMPL gives with it."""
    from scipy.spatial.transform import Rotation

    n = len(joints3d)
    joints = joints3d.astype(np.float64).copy()
    pose = np.asarray(body_pose, np.float64).reshape(n, 23, 3).copy()
    pelvis = Rotation.from_rotvec(np.asarray(global_orient, np.float64)).as_matrix()  # (N, 3, 3)
    for side, (hip, knee, ankle, foot) in enumerate(LEGS):
        offset = pin_offsets(joints[:, ankle], contacts[:, side], float(sole_heights[side]))
        rows = np.flatnonzero(np.abs(offset).max(axis=1) > 0)
        if not len(rows):
            continue
        local = Rotation.from_rotvec(pose[rows][:, [hip - 1, knee - 1, ankle - 1]].reshape(-1, 3)).as_matrix()
        local = local.reshape(len(rows), 3, 3, 3)
        g_hip = pelvis[rows] @ local[:, 0]
        g_knee = g_hip @ local[:, 1]
        g_ankle = g_knee @ local[:, 2]
        h, k, a = joints[rows, hip], joints[rows, knee], joints[rows, ankle]
        thigh, shin = k - h, a - k
        l1, l2 = np.linalg.norm(thigh, axis=1), np.linalg.norm(shin, axis=1)
        # The knee turns about its hinge (SMPL bends it about its x axis), taken square to the
        # thigh, until the hip-ankle distance is the pin's; it stays on the side of the straight
        # leg the network gave (it never passes through straight).
        hinge = g_knee[:, :, 0]
        m = _unit(hinge - np.sum(hinge * thigh, axis=1, keepdims=True) * thigh / l1[:, None] ** 2)
        across = shin - np.sum(shin * m, axis=1, keepdims=True) * m  # the shin in the bending plane
        rho = np.linalg.norm(across, axis=1)
        t_hat = thigh / l1[:, None]
        bend = np.arctan2(np.sum(np.cross(t_hat, across) * m, axis=1), np.sum(t_hat * across, axis=1))
        reach = a + offset[rows] - h
        longest = np.sqrt(l1**2 + l2**2 + 2 * l1 * rho)  # the knee straight
        shortest = np.sqrt(np.maximum(l1**2 + l2**2 - 2 * l1 * rho, 0.0))
        own = np.linalg.norm(a - h, axis=1)
        d = np.clip(np.linalg.norm(reach, axis=1), shortest + 1e-6, np.maximum(own, MAX_REACH * longest))
        new_bend = np.where(bend < 0, -1.0, 1.0) * np.arccos(np.clip((d**2 - l1**2 - l2**2) / (2 * l1 * rho), -1, 1))
        turn_knee = Rotation.from_rotvec(m * (new_bend - bend)[:, None]).as_matrix()
        # Then the whole leg turns by the least rotation that takes the ankle onto the pin.
        leg = thigh + np.einsum("nij,nj->ni", turn_knee, shin)
        turn_hip = _least_turn(leg, reach)
        new_ankle = h + d[:, None] * _unit(reach)
        new_knee = h + np.einsum("nij,nj->ni", turn_hip, thigh)
        g_hip_new = turn_hip @ g_hip
        g_knee_new = turn_hip @ turn_knee @ g_knee
        parents = np.stack((pelvis[rows], g_hip_new, g_knee_new), axis=1)  # (n, 3, 3, 3)
        new_local = np.swapaxes(parents, 2, 3) @ np.stack((g_hip_new, g_knee_new, g_ankle), axis=1)
        pose[rows[:, None], [hip - 1, knee - 1, ankle - 1]] = Rotation.from_matrix(
            new_local.reshape(-1, 3, 3)).as_rotvec().reshape(len(rows), 3, 3)
        joints[rows, foot] += new_ankle - a  # the ankle keeps its world orientation: the foot follows it
        joints[rows, knee], joints[rows, ankle] = new_knee, new_ankle
    return pose.reshape(n, 69), joints


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _least_turn(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(n, 3, 3) the smallest rotations taking each `source` direction to its `target`'s."""
    from scipy.spatial.transform import Rotation

    s, t = _unit(source), _unit(target)
    axis = np.cross(s, t)
    angle = np.arctan2(np.linalg.norm(axis, axis=1), np.sum(s * t, axis=1))
    return Rotation.from_rotvec(_unit(axis) * angle[:, None]).as_matrix()


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
    and its legs bent (when the inputs carry their body_pose) so its feet in contact do not
    slide (`lock_feet`). Returns the World (its tracks replaced by the locked
    ones) and per track (slide as written, slide before the lock or None), cm per contact frame."""
    world = build_world(inputs, camera)
    slides, placed = [], []
    for track, person in zip(world.tracks, inputs):
        if foot_lock:
            locked, before, after = lock_feet(track, person.sole_heights, person.body_pose)
            placed.append(locked)
            slides.append((after, before))
        else:
            placed.append(track)
            slides.append((foot_slide(track.joints3d, track.contacts), None))
    warnings = world.warnings
    if foot_lock and not any(t.contacts.any() for t in placed):
        warnings += ("--foot-lock: no foot contact was found in any track, so nothing was locked.",)
    return replace(world, tracks=placed, warnings=warnings), slides


@dataclass(frozen=True)
class CameraPath:
    """The video camera in the world as `write_camera_file` wrote it (OUT/<stem>/camera.npz,
    docs/world.md), what the exporters and the viewer read; P processed frames."""

    frames: np.ndarray  # (P,) int64 the file frame of each row
    times: np.ndarray  # (P,) float64 seconds from the video's first frame (strictly increasing)
    rotations: np.ndarray  # (P, 3, 3) camera -> world, strcli's camera axes (x right, y down, z forward)
    positions: np.ndarray  # (P, 3) the camera's centre in the world, metres
    model: str  # the camera model reconstruct used: static, rotating or moving

    @classmethod
    def load(cls, path: Path, fps: float = 0.0) -> CameraPath | None:
        """camera.npz, None when it is absent or not in the world frame (a video without a
        person has its camera relative to the first frame's camera: no floor, no world).
        Times are mended as track times are (`strcli.road.timing.increasing_times`; `fps`:
        the video's rate, 25 when unknown). Its keys, shapes, finite values and proper
        rotations are `strcli.road.output_check.check_output`'s (run first by every command;
        a damaged camera.npz is refused there, exit 2)."""
        from strcli.road.timing import increasing_times

        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as d:
            if "frame" not in d.files or str(d["frame"]) != "world":
                return None
            times = increasing_times(d["times"].astype(np.float64), 1 / fps if fps > 0 else 1 / 25)
            return cls(d["frames"].astype(np.int64), times, d["rotation"].astype(np.float64),
                       d["position"].astype(np.float64), str(d["model"]))

    def __len__(self) -> int:
        return len(self.times)

    def row(self, frame: int) -> int:
        """The row of a file frame: its own, else the last one before it (the first if none)."""
        return max(int(np.searchsorted(self.frames, frame, side="right")) - 1, 0)


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
