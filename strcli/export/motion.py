"""A track's motion, ready for animation formats: the rest skeleton of its mean shape and
per-frame joint rotations and root positions in a y-up world.

Conventions. glTF (spec 2.0, section 3.4 "Coordinate System and Units") and Blender's BVH
importer (its default axis_up Y, axis_forward -Z) use a right-handed y-up frame whose camera
looks down -z. Two frames of strcli's tracks fit it (`--frame`):
- `world` (the default): the video's world (docs/world.md, `strcli.road.world`): y up, the
  floor y = 0, x and -z the first frame's camera's right and forward laid on the floor,
  metres. It is y-up already: the track's `world_global_orient` and `world_transl` are taken
  as they are (and `world_body_pose`, leg IK's corrected pose, instead of `body_pose` when a
  track has it).
- `camera`: the camera frame (x right, y down, z forward, metres; README "Outputs") turned
  by 180 degrees about x (y -> -y, z -> -z), `CAMERA_TO_YUP`: the camera at the origin.
SMPL's own template stands upright, y up, facing +z, so the rest pose needs no conversion:
only the root joint's rotation and position carry the frame, and every other joint keeps
SMPL's local rotation unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from strcli.body.smpl import Body
from strcli.config import SMPL_JOINTS
from strcli.road.world import CameraPath  # noqa: F401 (camera.npz's one reader, for writer, gltf and tests)

# Camera frame (x right, y down, z forward) -> y-up world (glTF, BVH): 180 degrees about x.
# Also strcli's camera axes -> a glTF camera's (looks down -z, +y up): R_gltf = R_strcli @ this.
CAMERA_TO_YUP = np.diag([1.0, -1.0, -1.0])
FRAMES = ("world", "camera")  # `strcli export --frame`
# SMPL's 24 joints in its order (names as in smplx's joint_names and the SMPL paper's figure).
SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hand", "right_hand",
)


@dataclass(frozen=True)
class RestBody:
    """One track's SMPL body at rest (zero pose) with the track's mean betas; SMPL's own
    frame (y up, facing +z, metres)."""

    betas: np.ndarray  # (10,) the mean shape
    vertices: np.ndarray  # (V, 3) the shaped template (no pose, so no pose correctives)
    joints: np.ndarray  # (24, 3) SMPL's joints of that shape (J_regressor @ vertices)
    parents: np.ndarray  # (24,) int64, -1 for the pelvis
    weights: np.ndarray  # (V, 24) SMPL's skinning weights
    faces: np.ndarray  # (F, 3) int64

    @property
    def offsets(self) -> np.ndarray:
        """(24, 3) each joint's position relative to its parent (the pelvis: its own position)."""
        parent = np.where(self.parents < 0, 0, self.parents)
        return np.where((self.parents < 0)[:, None], self.joints, self.joints - self.joints[parent])


@dataclass(frozen=True)
class TrackMotion:
    """One track of `tracks/<id>.npz` in one frame (`frame`: module docstring); N frames (gaps
    of more than --max-gap are absent)."""

    track_id: int
    frames: np.ndarray  # (N,) int64 frame indices in the video file
    times: np.ndarray  # (N,) float64 presentation times, seconds from the video's first frame
    global_orient: np.ndarray  # (N, 3) axis-angle, in `frame` (camera: the camera frame, y down)
    body_pose: np.ndarray  # (N, 69) axis-angle
    betas: np.ndarray  # (N, 10) per frame
    transl: np.ndarray  # (N, 3) SMPL's transl, in `frame`
    fps: float  # the video's average frame rate
    image_size: tuple[int, int]  # width, height
    focal: float  # pixels
    frame: str = "camera"  # "world" or "camera" (module docstring)

    @classmethod
    def load(cls, path: Path, frame: str = "camera") -> TrackMotion:
        """Read tracks/<id>.npz in `frame`: "camera" (global_orient, transl) or "world"
        (world_global_orient, world_transl, and world_body_pose when the file has it; KeyError
        when the file has no world keys: a folder of a strcli older than the world stage, whose
        manifest has no `world` section). Shapes, dtypes, finite values
        and bounds are not checked here: the commands read a folder only after
        `strcli.road.output_check.check_output` passed it. Times that do not increase (a
        folder of an older strcli, which kept a file's repeated timestamps) are mended by
        `FrameClock`'s rule, so interpolation (`Slerp`) and glTF key times get strictly
        increasing ones."""
        from strcli.road.timing import increasing_times

        prefix = "world_" if frame == "world" else ""
        with np.load(path, allow_pickle=False) as d:
            width, height = (int(v) for v in d["image_size"])
            fps = float(d["fps"])
            times = increasing_times(d["times"].astype(np.float64), 1 / fps if fps > 0 else 1 / 25)
            pose = d["world_body_pose"] if frame == "world" and "world_body_pose" in d.files else d["body_pose"]
            track = cls(int(d["track_id"]), d["frames"].astype(np.int64), times,
                        d[f"{prefix}global_orient"].astype(np.float64), pose.astype(np.float64),
                        d["betas"].astype(np.float64), d[f"{prefix}transl"].astype(np.float64), float(d["fps"]),
                        (width, height), float(d["intrinsics"][0, 0]), frame)
        return track

    @property
    def to_yup(self) -> np.ndarray:
        """(3, 3) the turn from the track's frame into the y-up export frame: `CAMERA_TO_YUP`
        for the camera frame, the identity for the world (y up already)."""
        return CAMERA_TO_YUP if self.frame == "camera" else np.eye(3)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def mean_betas(self) -> np.ndarray:
        """(10,) the one shape a skinned mesh or skeleton can have."""
        return self.betas.mean(axis=0)

    def local_rotations(self) -> Rotation:
        """(N * 24) rotations, frame-major: each joint's rotation relative to its parent,
        the root's in the y-up export frame (`to_yup`)."""
        n = len(self)
        rotvecs = np.concatenate([self.global_orient, self.body_pose], axis=1).reshape(n, SMPL_JOINTS, 3)
        mats = Rotation.from_rotvec(rotvecs.reshape(-1, 3)).as_matrix().reshape(n, SMPL_JOINTS, 3, 3)
        mats[:, 0] = self.to_yup @ mats[:, 0]
        return Rotation.from_matrix(mats.reshape(-1, 3, 3))

    def root_positions(self, rest: RestBody) -> np.ndarray:
        """(N, 3) the pelvis in the y-up export frame: SMPL rotates about the rest pelvis J0 and
        then adds transl, so the pelvis is at J0 + transl in the track's frame."""
        return (self.transl + rest.joints[0]) @ self.to_yup.T


@torch.inference_mode()
def rest_body(body: Body, betas: np.ndarray) -> RestBody:
    """SMPL at zero pose with `betas` (10,), through strcli's body model (smplx)."""
    device = next(iter(body.buffers())).device
    zeros = torch.zeros(1, 3, device=device)
    out = body.axis_angle(zeros, torch.zeros(1, 69, device=device),
                          torch.as_tensor(betas, dtype=torch.float32, device=device)[None])
    parents = body.smpl.parents.cpu().numpy().astype(np.int64)
    parents[0] = -1
    return RestBody(betas=np.asarray(betas, np.float64), vertices=out.vertices[0].double().cpu().numpy(),
                    joints=out.joints[0].double().cpu().numpy(), parents=parents,
                    weights=body.smpl.lbs_weights.double().cpu().numpy(), faces=body.faces)


def frame_runs(frames: np.ndarray, step: int) -> list[tuple[int, int]]:
    """(N,) sorted frame indices -> [(first row, last row)] of runs without a gap, i.e.
    where consecutive frames are `step` apart."""
    breaks = np.flatnonzero(np.diff(frames) != step) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks - 1, [len(frames) - 1]])
    return [(int(a), int(b)) for a, b in zip(starts, ends)]
