"""SPIN/HMR-style SMPL regressor with iterative error feedback.

Parameter names (fc1, fc2, decpose, decshape, deccam, init_pose, init_shape, init_cam)
follow SPIN's, so SPIN's pretrained regressor, the paper's initialisation, loads into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from strcli.config import CAMERA_PARAMS, SMPL_BETAS, SMPL_JOINTS, SMPL_POSE_6D
from strcli.utils.errors import CorruptAssetError
from strcli.body.rotations import rot6d_to_rotmat, rotmat_to_axis_angle


@dataclass(frozen=True)
class MeanParams:
    """The regressor's starting point: SMPL mean pose (24 x 6D), shape and camera."""

    pose6d: np.ndarray  # (144,)
    betas: np.ndarray  # (10,)
    cam: np.ndarray  # (3,) weak perspective [s, tx, ty]

    @classmethod
    def from_npz(cls, path: str | Path) -> MeanParams:
        """Read SPIN's `smpl_mean_params.npz` (keys pose, shape, cam)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                params = cls(
                    pose6d=np.asarray(data["pose"], np.float32).reshape(-1),
                    betas=np.asarray(data["shape"], np.float32).reshape(-1),
                    cam=np.asarray(data["cam"], np.float32).reshape(-1),
                )
        except (OSError, KeyError, ValueError) as err:
            raise CorruptAssetError(
                f"{path} is not a SMPL mean-parameter file ({err}).",
                "It must be SPIN's smpl_mean_params.npz with arrays pose, shape and cam; "
                "`strcli weights fetch smpl_mean_params` gets it.",
            ) from err
        expected = (SMPL_POSE_6D, SMPL_BETAS, CAMERA_PARAMS)
        if (params.pose6d.size, params.betas.size, params.cam.size) != expected:
            raise CorruptAssetError(
                f"{path} has pose/shape/cam of sizes {params.pose6d.size}/{params.betas.size}/"
                f"{params.cam.size}, expected {expected[0]}/{expected[1]}/{expected[2]}."
            )
        if not all(np.isfinite(a).all() for a in (params.pose6d, params.betas, params.cam)):
            raise CorruptAssetError(f"{path} holds NaN or infinite mean parameters.",
                                    "`strcli weights fetch smpl_mean_params` gets SPIN's file again.")
        return params

    @classmethod
    def neutral(cls) -> MeanParams:
        """SMPL's rest pose standing upright in the camera frame, zero shape, a camera that
        fills the crop: the root turned 180 degrees about x (the camera's y points down,
        SMPL's template stands along +y; SPIN's mean root is near this turn too), every
        other joint the identity.

        Used only when no mean-parameter file is given (tests, an offline run without
        SPIN's file, or a checkpoint whose buffers will overwrite these anyway). With the
        identity root instead, an untrained network's bodies stood on their heads and the
        world stage put the floor above them (a new user's trial).
        """
        pose6d = np.tile(np.array([1, 0, 0, 1, 0, 0], np.float32), SMPL_JOINTS)
        pose6d[:6] = [1, 0, 0, -1, 0, 0]  # rot6d of diag(1, -1, -1): its first two columns
        return cls(pose6d, np.zeros(SMPL_BETAS, np.float32),
                   np.array([0.9, 0.0, 0.0], np.float32))


@dataclass(frozen=True)
class SMPLPrediction:
    """Per-frame SMPL parameters as the regressor predicts them; `...` = leading dims."""

    pose6d: Tensor  # (..., 144)
    rotmat: Tensor  # (..., 24, 3, 3)
    betas: Tensor  # (..., 10)
    cam: Tensor  # (..., 3) weak-perspective [s, tx, ty] in the 224 px crop

    @property
    def axis_angle(self) -> Tensor:
        """(..., 72): global orientation then 23 body joints, axis-angle."""
        aa = rotmat_to_axis_angle(self.rotmat)  # (..., 24, 3)
        return aa.reshape(*aa.shape[:-2], SMPL_JOINTS * 3)

    @property
    def global_orient(self) -> Tensor:
        """(..., 3)."""
        return self.axis_angle[..., :3]

    @property
    def body_pose(self) -> Tensor:
        """(..., 69)."""
        return self.axis_angle[..., 3:]


class Regressor(nn.Module):
    """Iterative error feedback (HMR, SPIN): features -> SMPL pose, shape and camera.

    Each of `iterations` steps reads the feature with the current estimate and adds a
    residual. As in SPIN, fc1 and fc2 have no activation between them (only dropout);
    keeping that makes SPIN's weights load and behave as trained.
    """

    def __init__(self, feature_dim: int, hidden: int = 1024, iterations: int = 3,
                 dropout: float = 0.5, mean_params: MeanParams | None = None) -> None:
        super().__init__()
        self.iterations = iterations
        state = SMPL_POSE_6D + SMPL_BETAS + CAMERA_PARAMS  # 157
        self.fc1 = nn.Linear(feature_dim + state, hidden)
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, hidden)
        self.drop2 = nn.Dropout(dropout)
        self.decpose = nn.Linear(hidden, SMPL_POSE_6D)
        self.decshape = nn.Linear(hidden, SMPL_BETAS)
        self.deccam = nn.Linear(hidden, CAMERA_PARAMS)
        for head in (self.decpose, self.decshape, self.deccam):
            nn.init.xavier_uniform_(head.weight, gain=0.01)
            nn.init.zeros_(head.bias)  # an untrained model predicts the mean parameters
        mean = mean_params or MeanParams.neutral()
        self.register_buffer("init_pose", torch.as_tensor(mean.pose6d).float()[None])  # (1, 144)
        self.register_buffer("init_shape", torch.as_tensor(mean.betas).float()[None])  # (1, 10)
        self.register_buffer("init_cam", torch.as_tensor(mean.cam).float()[None])  # (1, 3)

    def forward(self, features: Tensor) -> SMPLPrediction:
        lead = features.shape[:-1]  # (B, T) or (N,)
        x = features.reshape(-1, features.shape[-1])  # (N, C)
        n = x.shape[0]
        pose = self.init_pose.expand(n, -1)
        shape = self.init_shape.expand(n, -1)
        cam = self.init_cam.expand(n, -1)
        for _ in range(self.iterations):
            h = torch.cat((x, pose.to(x.dtype), shape.to(x.dtype), cam.to(x.dtype)), dim=-1)
            h = self.drop2(self.fc2(self.drop1(self.fc1(h))))  # (N, hidden)
            pose = self.decpose(h) + pose
            shape = self.decshape(h) + shape
            cam = self.deccam(h) + cam
        # Rotations are orthonormalised in fp32 whatever the autocast dtype.
        rotmat = rot6d_to_rotmat(pose.float().reshape(n, SMPL_JOINTS, 6))  # (N, 24, 3, 3)
        return SMPLPrediction(
            pose6d=pose.float().reshape(*lead, SMPL_POSE_6D),
            rotmat=rotmat.reshape(*lead, SMPL_JOINTS, 3, 3),
            betas=shape.float().reshape(*lead, SMPL_BETAS),
            cam=cam.float().reshape(*lead, CAMERA_PARAMS),
        )
