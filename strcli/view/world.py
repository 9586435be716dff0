"""What the viewer reads of the world (docs/world.md): each track's world keys (the
camera's path is `strcli.road.world.CameraPath`, as the exporters read it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from strcli.road.output_check import WORLD_KEYS


@dataclass(frozen=True)
class WorldMotion:
    """One track in the world (docs/world.md), its rows as its TrackMotion's (N):
    global_orient (N, 3) axis-angle (`world_global_orient`); body_pose (N, 69)
    (`world_body_pose` where the file has it, e.g. legs bent by foot-lock IK, else the
    camera frame's: the pose below the root is the same in both frames); transl (N, 3)
    metres (`world_transl`: added to SMPL's output for the track's mean shape); joints
    (N, 24, 3) metres (`world_joints3d`); contacts (N, 4) bool (`foot_contacts`, the
    columns FOOT_JOINTS)."""

    global_orient: np.ndarray
    body_pose: np.ndarray
    transl: np.ndarray
    joints: np.ndarray
    contacts: np.ndarray

    @classmethod
    def load(cls, path: Path) -> WorldMotion | None:
        """The world keys of a track file, or None when it has none (an older strcli).
        Their shapes, dtypes, finite values and bounds, and that a folder recording a world
        has them in every track, are `strcli.road.output_check.check_output`'s (the Scene
        runs it first: a damaged file is refused there, exit 2)."""
        with np.load(path, allow_pickle=False) as data:
            if not set(WORLD_KEYS) <= set(data.files):
                return None
            pose = data["world_body_pose"] if "world_body_pose" in data.files else data["body_pose"]
            return cls(data["world_global_orient"], pose, data["world_transl"], data["world_joints3d"],
                       data["foot_contacts"])
