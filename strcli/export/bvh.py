"""Tracks -> BVH (Biovision hierarchy) files, one per track (`bvh/<stem>_<id>.bvh`: Blender
names the armature after the file, so the video's stem keeps the armatures of several videos
apart), for Blender, MotionBuilder and retargeting tools.

- Skeleton: SMPL's 24 joints, named as SMPL's (`SMPL_JOINT_NAMES`), each OFFSET its rest
  position relative to its parent for the track's mean betas; the root's OFFSET is zero
  and its position channels hold the pelvis's absolute position (so importers that add the
  root offset and those that replace it agree). Leaves (feet, head, hands) end in an
  `End Site` half as long as their bone, pointing the same way.
- Axes and units: the y-up frame of `strcli.export.motion` (`--frame`): the video's world
  (y up, the floor y = 0, x and -z the first camera's right and forward on the floor) or the
  camera frame turned 180 degrees about x (x right as the camera saw it, y up, z towards the
  camera), metres: what Blender's BVH importer reads with its defaults (Scale 1.0, Forward
  -Z, Up Y). `bvh/info.json` names the frame of each file (`frame`, `axes`). MotionBuilder and most mocap tools expect centimetres:
  import with a scale of 100.
- Channels: root `Xposition Yposition Zposition Zrotation Yrotation Xrotation`, joints
  `Zrotation Yrotation Xrotation`, degrees: the local rotation is Rz @ Ry @ Rx (intrinsic
  Z, then Y, then X: scipy's "ZYX"), the order of most mocap BVH files. Angles are
  unwrapped over time (no 360-degree jumps).
- Timing: BVH has one constant frame time: the video's frame time (--stride frames of its
  average rate). Where the track's frames are not on that grid (a variable frame rate
  video, or gaps longer than --max-gap), the motion is resampled onto it (rotations
  slerped, positions linearly interpolated); `bvh/info.json` says, per track, whether it
  was resampled. `Frame Time` is written with every digit of the float64 (`repr`): Blender
  sets its scene rate to 1 / frame time, and 8 decimals of 1/30 gave 30.000003 fps.
  BVH has no comment syntax that Blender's importer accepts (it requires HIERARCHY on the
  first line), so the file itself carries no note; `bvh/info.json` also gives, per track,
  the Blender scene frame its first BVH frame belongs on (`blender_frame_start`): frame 1
  (Blender's default first frame; its BVH importer starts no file before frame 1) is the
  video's first frame. Blender's glTF importer puts the .glb's time t on frame t x rate, so
  the .glb plays one frame earlier than the BVHs (docs/using-exports.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from strcli.export.motion import SMPL_JOINT_NAMES, RestBody, TrackMotion
from strcli.utils.locks import WholeSet

from strcli.config import BVH_DIR  # noqa: E402, F401 (re-exported)
INFO_NAME = "info.json"
LEGACY_NAME = "{track_id}.bvh"  # what older strcli named a track's file; `bvh_files` still finds it
EULER = "ZYX"  # scipy intrinsic: R = Rz @ Ry @ Rx, channels listed Z, Y, X
_ROTATION_CHANNELS = "Zrotation Yrotation Xrotation"
AXES = {"world": "y up, the floor at y = 0, x and -z the first frame's camera's right and forward laid on the "
                 "floor (docs/world.md; glTF's frame)",
        "camera": "y up, z towards the camera, x to the camera's right (glTF's frame)"}
_ON_GRID = 1e-3  # seconds: frames this close to the constant-rate grid are taken as on it


@dataclass(frozen=True)
class BVHInfo:
    """What `bvh/info.json` records about one track's file."""

    track_id: int
    file: str  # relative to the video's output folder
    frames: int  # BVH frames
    frame_time: float  # seconds
    start_time: float  # presentation time of the first BVH frame (seconds from the video's first frame)
    resampled: bool  # the track's frames were not on the constant-rate grid
    blender_frame_start: int  # Blender's import_anim.bvh frame_start: scene frame 1 = the video's first frame
    units: str = "metres"
    frame: str = "camera"  # "world" or "camera" (`strcli.export.motion`)
    axes: str = ""  # the frame's axes in words (`AXES`)
    euler: str = "Zrotation Yrotation Xrotation (intrinsic, R = Rz Ry Rx), degrees"
    body_model: str = ""  # a caveat about the body model: the generated test body's, else empty
    caveat: str = ""  # what says the bodies are not real results (`strcli.road.caveats`), else empty


@dataclass(frozen=True)
class BVHMotion:
    """The sampled motion written to a BVH: F frames at a constant frame time."""

    times: np.ndarray  # (F,) seconds
    root_positions: np.ndarray  # (F, 3) metres, the y-up export frame
    rotations: np.ndarray  # (F, 24, 3, 3) local rotation matrices, the root's in the y-up export frame
    resampled: bool


def sample_motion(track: TrackMotion, rest: RestBody, frame_time: float) -> BVHMotion:
    """The track on a constant grid from its first frame's time, `frame_time` apart."""
    n = len(track)
    count = int(round((track.times[-1] - track.times[0]) / frame_time)) + 1 if n > 1 else 1
    grid = track.times[0] + frame_time * np.arange(count)
    local = track.local_rotations()  # N * 24
    positions = track.root_positions(rest)
    joints = len(rest.parents)
    if count == n and np.allclose(track.times, grid, atol=_ON_GRID, rtol=0):
        return BVHMotion(track.times.copy(), positions, local.as_matrix().reshape(n, joints, 3, 3), False)
    grid = np.clip(grid, track.times[0], track.times[-1])
    mats = local.as_matrix().reshape(n, joints, 3, 3)
    rotations = np.stack([Slerp(track.times, Rotation.from_matrix(mats[:, j]))(grid).as_matrix()
                          for j in range(joints)], axis=1)
    sampled = np.stack([np.interp(grid, track.times, positions[:, c]) for c in range(3)], axis=1)
    return BVHMotion(grid, sampled, rotations, True)


def _order(parents: np.ndarray) -> list[int]:
    """Joints in the depth-first order they appear in the file (children by SMPL index)."""
    out: list[int] = []

    def visit(j: int) -> None:
        out.append(j)
        for child in np.flatnonzero(parents == j):
            visit(int(child))

    visit(int(np.flatnonzero(parents < 0)[0]))
    return out


def bvh_text(motion: BVHMotion, rest: RestBody, frame_time: float) -> str:
    """The BVH file's text (module docstring for its conventions)."""
    parents, offsets = rest.parents, rest.offsets
    lines = ["HIERARCHY"]

    def joint(j: int, depth: int) -> None:
        pad = "  " * depth
        keyword = "ROOT" if parents[j] < 0 else "JOINT"
        lines.append(f"{pad}{keyword} {SMPL_JOINT_NAMES[j]}")
        lines.append(f"{pad}{{")
        offset = np.zeros(3) if parents[j] < 0 else offsets[j]
        lines.append(f"{pad}  OFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}")
        channels = f"6 Xposition Yposition Zposition {_ROTATION_CHANNELS}" if parents[j] < 0 \
            else f"3 {_ROTATION_CHANNELS}"
        lines.append(f"{pad}  CHANNELS {channels}")
        children = np.flatnonzero(parents == j)
        for child in children:
            joint(int(child), depth + 1)
        if len(children) == 0:
            end = offsets[j] * 0.5
            lines.extend([f"{pad}  End Site", f"{pad}  {{",
                          f"{pad}    OFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    order = _order(parents)
    joint(order[0], 0)
    frames = len(motion.times)
    euler = Rotation.from_matrix(motion.rotations[:, order].reshape(-1, 3, 3)).as_euler(EULER, degrees=True)
    euler = np.unwrap(euler.reshape(frames, len(order) * 3), period=360.0, axis=0)
    values = np.concatenate([motion.root_positions, euler], axis=1)
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {float(frame_time)!r}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in values]
    return "\n".join(lines) + "\n"


def bvh_name(stem: str, track_id: int) -> str:
    """A track's BVH file in the `bvh` folder: `<stem>_<id>.bvh`."""
    return f"{stem}_{track_id}.bvh"


def bvh_paths(folder: Path) -> list[tuple[int, Path]]:
    """Every track's BVH file in a video's output folder, in name order, as (track id, path):
    `bvh/<stem>_<id>.bvh` and the name older strcli wrote, `bvh/<id>.bvh`, both where a
    track has both; [] without a bvh folder."""
    directory = folder / BVH_DIR
    if not directory.is_dir():
        return []
    prefix, found = f"{folder.name}_", []
    for path in sorted(directory.glob("*.bvh")):
        stem = path.stem
        if stem.isdigit():
            found.append((int(stem), path))
        elif stem.startswith(prefix) and stem[len(prefix):].isdigit():
            found.append((int(stem[len(prefix):]), path))
    return found


def bvh_files(folder: Path) -> dict[int, Path]:
    """Track id -> its BVH file in a video's output folder (`bvh/<stem>_<id>.bvh`, else the
    name older strcli wrote, `bvh/<id>.bvh`)."""
    found: dict[int, Path] = {}
    for track_id, path in bvh_paths(folder):
        if track_id not in found or path.stem != str(track_id):  # the current name wins
            found[track_id] = path
    return found


def write_bvh(folder: Path, tracks: list[tuple[TrackMotion, RestBody]], frame_step: int,
              body_note: str = "", files: WholeSet | None = None, caveat: str = "") -> list[BVHInfo]:
    """bvh/<stem>_<id>.bvh per track and bvh/info.json in `folder` (the stem: the folder's
    name), written as one set (`files`, or a set of their own): under hidden temporary names,
    all renamed once every one is complete; then the files older strcli named `bvh/<id>.bvh`
    are removed, so each track has one file. `body_note` (the generated test body's caveat)
    goes into each track's info.json entry, as BVH has no place for a note, and so does
    `caveat` (untrained networks, the test body: `strcli.road.caveats.overlay_caveats`)."""
    if files is None:
        with WholeSet() as own:
            return write_bvh(folder, tracks, frame_step, body_note, own, caveat)
    infos = []
    for track, rest in tracks:
        frame_time = frame_step / track.fps
        motion = sample_motion(track, rest, frame_time)
        relative = f"{BVH_DIR}/{bvh_name(folder.name, track.track_id)}"
        files.add(folder / relative).write_text(bvh_text(motion, rest, frame_time))
        infos.append(BVHInfo(track.track_id, relative, len(motion.times), frame_time, float(motion.times[0]),
                             motion.resampled, 1 + round(float(motion.times[0]) / frame_time),
                             frame=track.frame, axes=AXES[track.frame], body_model=body_note, caveat=caveat))
    files.add(folder / BVH_DIR / INFO_NAME).write_text(json.dumps([asdict(i) for i in infos], indent=2))
    for track, _ in tracks:
        files.replaces(folder / BVH_DIR / LEGACY_NAME.format(track_id=track.track_id))
    return infos


