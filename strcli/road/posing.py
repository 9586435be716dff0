"""STR predictions -> posed SMPL bodies in the full image's camera.

For a run of frames of one track: the merged per-frame SMPL parameters go through the
body model (smplx linear blend skinning), the weak-perspective crop camera becomes a
translation in the perspective camera of the whole image (`strcli.body.camera`), and the
joints are projected to pixels. Everything is expressed in the camera frame (x right,
y down, z forward, metres), so `vertices` can be drawn straight over the input frame.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from strcli.body.smpl import Body
from strcli.body.camera import Intrinsics, project, weak_to_full_translation
from strcli.road.crops import square_boxes
from strcli.model import SMPLPrediction


@dataclass(frozen=True)
class PosedFrames:
    """K frames of one person; numpy, float32, camera frame."""

    global_orient: np.ndarray  # (K, 3) axis-angle
    body_pose: np.ndarray  # (K, 69) axis-angle, 23 joints
    betas: np.ndarray  # (K, 10)
    cam_crop: np.ndarray  # (K, 3) weak-perspective [s, tx, ty] of the 224 px crop
    transl: np.ndarray  # (K, 3) body translation in the camera (add to SMPL's output)
    joints3d: np.ndarray  # (K, 24, 3) SMPL joints in the camera frame
    joints2d: np.ndarray  # (K, 24, 2) pixels of the (upright) input frame
    vertices: np.ndarray  # (K, 6890, 3) in the camera frame

    def __len__(self) -> int:
        return len(self.betas)


# Frames posed per body-model call: linear blend skinning holds a 4x4 transform per vertex
# (440 KB a frame), so the hundreds of frames one batch of windows can finish at once are
# posed a slice at a time (a few tens of MB, not hundreds).
POSE_CHUNK = 64


def pose_frames(prediction: SMPLPrediction, boxes_xyxy: np.ndarray, body: Body,
                intrinsics: Intrinsics) -> PosedFrames:
    """prediction: K frames (rotmat (K, 24, 3, 3), betas (K, 10), cam (K, 3));
    boxes_xyxy: (K, 4) the detection boxes the crops were made from."""
    count = len(prediction.betas)
    if count <= POSE_CHUNK:
        return _pose(prediction, boxes_xyxy, body, intrinsics)
    parts = [_pose(SMPLPrediction(**{f.name: getattr(prediction, f.name)[k : k + POSE_CHUNK]
                                     for f in fields(SMPLPrediction)}),
                   boxes_xyxy[k : k + POSE_CHUNK], body, intrinsics) for k in range(0, count, POSE_CHUNK)]
    return PosedFrames(**{f.name: np.concatenate([getattr(part, f.name) for part in parts])
                          for f in fields(PosedFrames)})


@torch.inference_mode()
def _pose(prediction: SMPLPrediction, boxes_xyxy: np.ndarray, body: Body, intrinsics: Intrinsics) -> PosedFrames:
    device = next(iter(body.buffers())).device
    rotmat = prediction.rotmat.to(device, torch.float32)
    betas = prediction.betas.to(device, torch.float32)
    cam = prediction.cam.to(device, torch.float32)
    squares = square_boxes(torch.as_tensor(boxes_xyxy, dtype=torch.float32, device=device))
    transl = weak_to_full_translation(cam, squares.centre, squares.side, intrinsics)  # (K, 3)
    out = body.rotmat(rotmat[:, :1], rotmat[:, 1:], betas)
    joints = out.joints + transl[:, None]  # (K, 24, 3)
    vertices = out.vertices + transl[:, None]  # (K, 6890, 3)
    joints2d = project(out.joints, transl, intrinsics)  # (K, 24, 2)
    axis_angle = prediction.axis_angle.float().cpu().numpy()  # (K, 72)

    def numpy(x: Tensor) -> np.ndarray:
        return x.float().cpu().numpy()

    return PosedFrames(global_orient=axis_angle[:, :3], body_pose=axis_angle[:, 3:], betas=numpy(betas),
                       cam_crop=numpy(cam), transl=numpy(transl), joints3d=numpy(joints),
                       joints2d=numpy(joints2d), vertices=numpy(vertices))
